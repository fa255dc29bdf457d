package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/store"
)

// mitra detect for an organisation that asked for anonymity, with --tlp:
// the sightings it writes are marked at the telemetry's level and name
// the anonymous identity, never the organisation; a bad --tlp is refused.
func TestDetectCommandTLPAndAnonymity(t *testing.T) {
	data := t.TempDir()
	ctx := context.Background()
	run := func(stdin string, args ...string) string {
		t.Helper()
		out, errOut, err := mitra(t, nil, stdin, append(args, "--data", data)...)
		if err != nil {
			t.Fatalf("mitra %v: %v\n%s", args, err, errOut)
		}
		return out
	}
	org := strings.TrimSpace(run("", "org", "create", "Anon Sensor", "--anonymise-sightings"))
	intel := strings.TrimSpace(run("", "collection", "create", "--title", "Intel"))
	out := strings.TrimSpace(run("", "collection", "create", "--title", "Sightings"))
	run("", "collection", "grant", intel, "--read", "--org", org)
	run("", "collection", "grant", out, "--read", "--write", "--org", org)
	st, err := (StoreFlags{Data: data, Store: "sqlite:"}).open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Modified now, so that the lifecycle (on by default) keeps it; valid
	// since before the telemetry's time (2024).
	now := time.Now().UTC().Truncate(time.Millisecond)
	mod := now.Format("2006-01-02T15:04:05.000Z")
	raw := []byte(`{"type":"indicator","spec_version":"2.1","id":"indicator--e0000000-0000-4000-8000-000000000001","created":"` + mod + `","modified":"` + mod + `","pattern":"[domain-name:value = 'evil.example.com']","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z"}`)
	if _, err := st.AddObjects(ctx, intel, []store.Object{{ID: "indicator--e0000000-0000-4000-8000-000000000001", Type: "indicator", SpecVersion: "2.1",
		Raw: raw, Submitter: org, Version: now, VersionRaw: mod}}, nil); err != nil {
		t.Fatal(err)
	}
	st.Close()

	if _, _, err := mitra(t, nil, "", "detect", "--data", data, "--org", org, "--collection", out, "--tlp", "purple", "-"); err == nil || !strings.Contains(err.Error(), "--tlp") {
		t.Errorf("--tlp purple: %v", err)
	}
	line := `{"_path":"dns","ts":1709287200.5,"id.orig_h":"10.0.0.1","id.resp_h":"10.0.0.53","query":"evil.example.com"}` + "\n"
	run(line+line, "detect", "--org", org, "--collection", out, "--tlp", "red", "--progress", "0", "-")

	st, err = (StoreFlags{Data: data, Store: "sqlite:"}).open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	page, err := st.QueryObjects(ctx, out, store.Query{WithBody: true, Versions: store.VersionFilter{All: true}})
	if err != nil {
		t.Fatal(err)
	}
	sightings := 0
	for _, e := range page.Entries {
		if strings.Contains(string(e.Raw), org) {
			t.Errorf("%s names the anonymous organisation: %s", e.ID, e.Raw)
		}
		if access.TLP(e.TLP) != access.TLPRed {
			t.Errorf("%s is %v, want TLP:RED from --tlp red", e.ID, access.TLP(e.TLP))
		}
		if e.Type == "sighting" {
			sightings++
			if !strings.Contains(string(e.Raw), `"count":2`) || !strings.Contains(string(e.Raw), access.AnonymousIdentity) {
				t.Errorf("sighting: %s", e.Raw)
			}
		}
	}
	if sightings != 1 {
		t.Errorf("%d sightings written, want 1", sightings)
	}
}
