package stix

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// attackBundle reads the real MITRE ATT&CK for ICS bundle kept beside the
// repository (/work/shared/data), or beside a directory above it (a git
// worktree). Outside CI it may be absent; in CI (CI=true) its absence is a
// failure.
func attackBundle(t testing.TB) []byte {
	t.Helper()
	const name = "ics-attack-18.1.json.gz"
	p := filepath.Join("..", "..", "..", "shared", "data", name)
	for dir := filepath.Join("..", "..", ".."); len(dir) < 20; dir = filepath.Join(dir, "..") {
		if _, err := os.Stat(filepath.Join(dir, "shared", "data", name)); err == nil {
			p = filepath.Join(dir, "shared", "data", name)
			break
		}
	}
	f, err := os.Open(p)
	if err != nil {
		if os.Getenv("CI") != "true" {
			t.Skipf("ATT&CK data not available: %v", err)
		}
		t.Fatalf("ATT&CK data: %v", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestATTACKBundleIsValid(t *testing.T) {
	data := attackBundle(t)
	objs, err := SplitInput(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1826 {
		t.Fatalf("SplitInput found %d objects, want 1826", len(objs))
	}
	var v Validator
	bad := 0
	for _, o := range objs {
		for _, p := range v.Validate(o) {
			bad++
			if bad <= 20 {
				t.Errorf("%s", p)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d problems in a bundle of valid objects", bad)
	}
}

func BenchmarkValidateATTACK(b *testing.B) {
	data := attackBundle(b)
	objs, err := SplitInput(data)
	if err != nil {
		b.Fatal(err)
	}
	var v Validator
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		for _, o := range objs {
			v.Validate(o)
		}
		n += len(objs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "objects/s")
}

// BenchmarkInspectIndicator validates an indicator like those of a threat
// feed (and of mitra bench ingest), the commonest object on the ingest path.
func BenchmarkInspectIndicator(b *testing.B) {
	raw := []byte(`{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2024-06-03T10:11:12.345Z","modified":"2024-07-01T08:00:00.000Z",` +
		`"name":"Malicious activity 4242","description":"Observed in campaign 12 by sensor 7; block and hunt for related activity.",` +
		`"indicator_types":["malicious-activity"],"pattern":"[domain-name:value = 'h1a2b3c.example7.com'] OR [ipv4-addr:value = '10.1.2.3']","pattern_type":"stix","valid_from":"2024-06-03T10:11:12.345Z",` +
		`"kill_chain_phases":[{"kill_chain_name":"mitre-attack","phase_name":"execution"}],` +
		`"labels":["c2","campaign-17"],"confidence":80,"object_marking_refs":["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"],` +
		`"external_references":[{"source_name":"cert","external_id":"CERT-4242","url":"https://cert.example/advisories/4242"}]}`)
	var v Validator
	if _, probs := v.Inspect(raw); len(probs) > 0 {
		b.Fatal(probs)
	}
	b.ReportAllocs()
	for b.Loop() {
		v.Inspect(raw)
	}
}
