package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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
	now := time.Now().UTC().Format(time.RFC3339) // the CLI runs on the real clock
	add := func(id, pat string, extra string) {
		raw := `{"type":"indicator","spec_version":"2.1","id":"` + id + `","created":"` + now + `","modified":"` + now + `",` +
			`"valid_from":"` + now + `","pattern_type":"stix","confidence":90,"pattern":"` + pat + `"` + extra + `}`
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

// TestServeExports: 'mitra serve' answers /x-mitra-export/ for an
// authenticated reader, with an ETag that gives 304 on the next fetch.
func TestServeExports(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped in -short")
	}
	bin, err := buildMitra()
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	runCLI(t, bin, []string{"MITRA_USER_PASSWORD=alice-password-1"}, "user", "create", "--data", data, "alice")
	col := strings.TrimSpace(runCLI(t, bin, nil, "collection", "create", "--data", data, "--title", "Intel", "--readers", "alice", "--writers", "alice"))
	srv := launchServer(t, bin, "--data", data)
	srv.waitListening(t)
	alice := &client{t: t, base: srv.base, user: "alice", pass: "alice-password-1"}
	// Created now: the lifecycle retires domains of confidence 90 within
	// a year.
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	ind := `{"type":"indicator","spec_version":"2.1","id":"indicator--6c2f0b0d-2a4e-4c59-9d6e-0f7d8c1e2a11","created":"` + now + `","modified":"` + now +
		`","name":"evil","pattern":"[domain-name:value = 'evil.example.com']","pattern_type":"stix","valid_from":"` + now + `","confidence":90}`
	if code, _, body := alice.do("POST", "/api/collections/"+col+"/objects/", []byte(`{"objects":[`+ind+`]}`)); code != http.StatusAccepted {
		t.Fatalf("POST indicator: %d %s", code, body)
	}
	get := func(etag string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", srv.base+"/x-mitra-export/rpz?collection="+col, nil)
		req.SetBasicAuth("alice", "alice-password-1")
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	res, body := get("")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "evil.example.com IN CNAME .") {
		t.Fatalf("rpz: %d %s", res.StatusCode, body)
	}
	if res2, _ := get(res.Header.Get("ETag")); res2.StatusCode != http.StatusNotModified {
		t.Fatalf("second fetch: %d", res2.StatusCode)
	}
}

// TestDetectLifecycle: 'mitra detect' (the lifecycle is on by default)
// matches a fresh indicator and not one the lifecycle retired (a domain
// last confirmed in 2024: its score has halved every 90 days since);
// with --lifecycle=false or --no-lifecycle it matches both.
func TestDetectLifecycle(t *testing.T) {
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
	org := strings.TrimSpace(run("", "org", "create", "Sensor Org"))
	intel := strings.TrimSpace(run("", "collection", "create", "--title", "Intel"))
	out := strings.TrimSpace(run("", "collection", "create", "--title", "Sightings"))
	off := strings.TrimSpace(run("", "collection", "create", "--title", "Sightings without lifecycle"))
	off2 := strings.TrimSpace(run("", "collection", "create", "--title", "Sightings with --no-lifecycle"))
	run("", "collection", "grant", intel, "--read", "--org", org)
	for _, c := range []string{out, off, off2} {
		run("", "collection", "grant", c, "--read", "--write", "--org", org)
	}
	st, err := (StoreFlags{Data: data, Store: "sqlite:"}).open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Format(time.RFC3339)
	for id, v := range map[string][2]string{
		"indicator--e1000000-0000-4000-8000-000000000001": {"old.example.com", "2024-01-01T00:00:00Z"},
		"indicator--e1000000-0000-4000-8000-000000000002": {"fresh.example.com", now},
	} {
		raw := []byte(`{"type":"indicator","spec_version":"2.1","id":"` + id + `","created":"` + v[1] + `","modified":"` + v[1] +
			`","pattern":"[domain-name:value = '` + v[0] + `']","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z"}`)
		ts, _ := time.Parse(time.RFC3339, v[1])
		if _, err := st.AddObjects(ctx, intel, []store.Object{{ID: id, Type: "indicator", SpecVersion: "2.1", Raw: raw, Submitter: org,
			Version: ts, VersionRaw: v[1]}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	lines := `{"_path":"dns","ts":1709287200.5,"id.orig_h":"10.0.0.1","id.resp_h":"10.0.0.53","query":"old.example.com"}` + "\n" +
		`{"_path":"dns","ts":1709287200.5,"id.orig_h":"10.0.0.1","id.resp_h":"10.0.0.53","query":"fresh.example.com"}` + "\n"
	run(lines, "detect", "--org", org, "--collection", out, "--progress", "0", "-")
	run(lines, "detect", "--org", org, "--collection", off, "--lifecycle=false", "--progress", "0", "-")
	run(lines, "detect", "--org", org, "--collection", off2, "--no-lifecycle", "--progress", "0", "-")
	st, err = (StoreFlags{Data: data, Store: "sqlite:"}).open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sighted := func(coll string) []string {
		page, err := st.QueryObjects(ctx, coll, store.Query{Types: []string{"sighting"}, WithBody: true})
		if err != nil {
			t.Fatal(err)
		}
		var of []string
		for _, e := range page.Entries {
			var s struct {
				Of string `json:"sighting_of_ref"`
			}
			_ = json.Unmarshal(e.Raw, &s)
			of = append(of, s.Of)
		}
		slices.Sort(of)
		return of
	}
	if of := sighted(out); len(of) != 1 || of[0] != "indicator--e1000000-0000-4000-8000-000000000002" {
		t.Fatalf("sightings of %v, want only the fresh indicator", of)
	}
	for _, c := range []string{off, off2} {
		if of := sighted(c); len(of) != 2 || of[0] != "indicator--e1000000-0000-4000-8000-000000000001" {
			t.Fatalf("without the lifecycle: sightings of %v, want both indicators", of)
		}
	}
}

// TestExportCommandFromSearch: 'mitra export FORMAT --query ..' exports
// the active indicators among the search's results the organisation may
// read: not an indicator the search does not match, nor one in a
// collection only another organisation reads; the revoked match is
// counted; other filters narrow it; a malformed filter is an error.
func TestExportCommandFromSearch(t *testing.T) {
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
	other := &store.Organisation{Name: "Other"}
	if err := st.CreateOrganisation(ctx, other); err != nil {
		t.Fatal(err)
	}
	feed := &store.Collection{Title: "feed", Alias: "feed", DefaultTLP: 2, Grants: []store.Grant{{Kind: store.GrantOrg, Subject: org.ID, Read: true}}}
	theirs := &store.Collection{Title: "theirs", Alias: "theirs", DefaultTLP: 2, Grants: []store.Grant{{Kind: store.GrantOrg, Subject: other.ID, Read: true}}}
	for _, c := range []*store.Collection{feed, theirs} {
		if err := st.CreateCollection(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC().Format(time.RFC3339) // the CLI runs on the real clock
	add := func(c *store.Collection, by, id, name, pat, extra string) {
		raw := `{"type":"indicator","spec_version":"2.1","id":"` + id + `","created":"` + now + `","modified":"` + now + `","name":"` + name + `",` +
			`"valid_from":"` + now + `","pattern_type":"stix","confidence":90,"pattern":"` + pat + `"` + extra + `}`
		if _, err := st.AddObjects(ctx, c.ID, []store.Object{{ID: id, Type: "indicator", SpecVersion: "2.1", Raw: []byte(raw), Submitter: by}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	add(feed, org.ID, "indicator--e1111111-1111-4111-8111-111111111111", "beacon alpha", "[file:hashes.MD5 = '0123456789abcdef0123456789abcdef']", "")
	add(feed, org.ID, "indicator--e2222222-2222-4222-8222-222222222222", "beacon old", "[domain-name:value = 'old.example']", `,"revoked":true`)
	add(feed, org.ID, "indicator--e3333333-3333-4333-8333-333333333333", "unrelated", "[domain-name:value = 'unrelated.example']", "")
	add(theirs, other.ID, "indicator--e4444444-4444-4444-8444-444444444444", "beacon theirs", "[domain-name:value = 'theirs.example']", "")
	st.Close()

	out, errOut, err := mitra(t, nil, "", "export", "plain", "--data", data, "--query", "beacon")
	if err != nil || out != "0123456789abcdef0123456789abcdef\n" || !strings.Contains(errOut, "revoked: 1") {
		t.Fatalf("export plain --query beacon: %v\n%s\n%s", err, out, errOut)
	}
	out, _, err = mitra(t, nil, "", "export", "plain", "--data", data, "--query", "unrelated", "--collection", "feed", "--type", "indicator", "--organisation", org.ID)
	if err != nil || out != "unrelated.example\n" {
		t.Fatalf("export plain --query unrelated: %v %q", err, out)
	}
	for _, narrow := range [][]string{{"--tlp", "red"}, {"--type", "malware"}, {"--modified-to", "2020-01-01"}} {
		out, _, err = mitra(t, nil, "", append([]string{"export", "plain", "--data", data, "--query", "beacon"}, narrow...)...)
		if err != nil || out != "" {
			t.Errorf("export plain --query beacon %v: %v %q", narrow, err, out)
		}
	}
	if _, _, err := mitra(t, nil, "", "export", "csv", "--data", data, "--modified-from", "soon"); err == nil {
		t.Error("a malformed date accepted")
	}
}
