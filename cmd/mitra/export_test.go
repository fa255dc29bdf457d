package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mitra-cert/mitra/internal/store"
)

// TestExportCommand: 'mitra export' writes the default organisation's
// active indicators (to standard output, or every file to --out), counts
// the skipped ones on standard error, and 'mitra indicator score' says
// why a retired one is retired.
func TestExportCommand(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	st, err := openStore(ctx, "sqlite:", data)
	if err != nil {
		t.Fatal(err)
	}
	org, err := st.DefaultOrganisation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := &store.Collection{Title: "feed", Alias: "feed", DefaultTLP: 2, Grants: []store.Grant{{Kind: store.GrantOrg, Subject: org.ID, Read: true}}}
	if err := st.CreateCollection(ctx, c); err != nil {
		t.Fatal(err)
	}
	add := func(id, pat string, extra string) {
		raw := `{"type":"indicator","spec_version":"2.1","id":"` + id + `","created":"2026-01-01T00:00:00Z","modified":"2026-01-01T00:00:00Z",` +
			`"valid_from":"2026-01-01T00:00:00Z","pattern_type":"stix","confidence":90,"pattern":"` + pat + `"` + extra + `}`
		if _, err := st.AddObjects(ctx, c.ID, []store.Object{{ID: id, Type: "indicator", SpecVersion: "2.1", Raw: []byte(raw), Submitter: org.ID}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	const live, dead = "indicator--d1111111-1111-4111-8111-111111111111", "indicator--d2222222-2222-4222-8222-222222222222"
	add(live, "[file:hashes.MD5 = '0123456789abcdef0123456789abcdef']", "")
	add(dead, "[domain-name:value = 'old.example']", `,"revoked":true`)
	st.Close()

	out, errOut, err := mitra(t, nil, "", "export", "plain", "--data", data, "--collection", "feed")
	if err != nil || out != "0123456789abcdef0123456789abcdef\n" || !strings.Contains(errOut, "revoked: 1") {
		t.Fatalf("export plain: %v\n%s\n%s", err, out, errOut)
	}
	dir := filepath.Join(t.TempDir(), "misp")
	if _, errOut, err := mitra(t, nil, "", "export", "misp", "--data", data, "--out", dir); err != nil {
		t.Fatalf("export misp: %v %s", err, errOut)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("misp feed: %d files", len(entries))
	}
	if _, _, err := mitra(t, nil, "", "export", "nope", "--data", data); err == nil {
		t.Error("unknown format accepted")
	}
	if _, _, err := mitra(t, nil, "", "export", "csv", "--data", data, "--collection", "missing"); err == nil {
		t.Error("missing collection accepted")
	}
	out, _, err = mitra(t, nil, "", "indicator", "score", dead, "--data", data, "--threshold", "10")
	var s struct {
		Active    bool    `json:"active"`
		Reason    string  `json:"reason"`
		Threshold float64 `json:"threshold"`
	}
	if err != nil || json.Unmarshal([]byte(out), &s) != nil || s.Active || s.Reason != "revoked" || s.Threshold != 10 {
		t.Fatalf("indicator score: %v %s", err, out)
	}
}
