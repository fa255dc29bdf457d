package stix

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// attackBundle reads the real MITRE ATT&CK for ICS bundle kept beside the
// repository (/work/shared/data). Outside CI it may be absent; in CI
// (CI=true) its absence is a failure.
func attackBundle(t testing.TB) []byte {
	t.Helper()
	p := filepath.Join("..", "..", "..", "shared", "data", "ics-attack-18.1.json.gz")
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
