package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/search"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/mitra-cert/mitra/internal/taxii"
)

// TestSearchAndLookupCommands posts objects through TAXII (so markings,
// TLP and the store's indexes are those of a real ingest) and runs
// 'mitra search' and 'mitra lookup' against the server as serve mounts
// the search API.
func TestSearchAndLookupCommands(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	org := &store.Organisation{Name: "National CERT"}
	if err := st.CreateOrganisation(ctx, org); err != nil {
		t.Fatal(err)
	}
	if _, err := access.CreateUser(ctx, st, "anna", "correct horse battery", access.RoleAnalyst, org.ID); err != nil {
		t.Fatal(err)
	}
	coll := &store.Collection{Title: "intel", Alias: "intel", Grants: []store.Grant{{Kind: store.GrantOrg, Subject: org.ID, Read: true, Write: true}}}
	if err := st.CreateCollection(ctx, coll); err != nil {
		t.Fatal(err)
	}
	srv := taxii.NewServer(taxii.Config{Store: st, Auth: access.NewAuthenticator(st, nil), Validator: newValidator()})
	svc := search.New(search.Config{Store: st})
	srv.Mount(search.Prefix, search.NewHandler(svc, search.HandlerOptions{Authenticate: srv.Authenticate}))
	ts := httptest.NewServer(srv)
	defer ts.Close()

	env := `{"objects":[
 {"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2026-02-01T00:00:00.000Z","modified":"2026-02-01T00:00:00.000Z",
  "name":"Botnet controller range","description":"Controllers of the Mirai variant seen in January.","pattern":"[ipv4-addr:value ISSUBSET '192.0.2.0/24']",
  "pattern_type":"stix","valid_from":"2026-02-01T00:00:00Z","object_marking_refs":["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]},
 {"type":"sighting","spec_version":"2.1","id":"sighting--ee20065d-2555-424f-ad9e-0f8428623c75","created":"2026-02-02T00:00:00.000Z","modified":"2026-02-02T00:00:00.000Z",
  "sighting_of_ref":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"}]}`
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/api/collections/"+coll.ID+"/objects/", strings.NewReader(env))
	req.SetBasicAuth("anna", "correct horse battery")
	req.Header.Set("Content-Type", "application/taxii+json;version=2.1")
	req.Header.Set("Accept", "application/taxii+json;version=2.1")
	res, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		t.Fatalf("POST objects: %d", res.StatusCode)
	}
	if err := svc.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	envs := map[string]string{"MITRA_URL": ts.URL, "MITRA_USER": "anna", "MITRA_PASSWORD": "correct horse battery"}

	out, stderr, err := mitra(t, envs, "", "search", "mirai", "--type", "indicator", "--tlp", "green")
	if err != nil || !strings.Contains(out, "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f\tGREEN\t"+coll.ID) || !strings.Contains(out, "Mirai variant") {
		t.Errorf("search: %v %q %q", err, out, stderr)
	}
	if out, _, err := mitra(t, envs, "", "search", "mirai", "--tlp", "red"); err != nil || out != "" {
		t.Errorf("search --tlp red: %v %q", err, out)
	}
	out, _, err = mitra(t, envs, "", "lookup", "192.0.2.77", "198.51.100.1")
	if err != nil || !strings.Contains(out, "192.0.2.77\tknown") || !strings.Contains(out, "(in 192.0.2.0/24)") ||
		!strings.Contains(out, "sighting\tsighting--ee20065d-2555-424f-ad9e-0f8428623c75") || !strings.Contains(out, "198.51.100.1\tunknown") {
		t.Errorf("lookup: %v %q", err, out)
	}
	// Nothing known: exit status 1, like grep.
	if _, _, err := mitra(t, envs, "10.1.1.1\n# comment\n", "lookup", "--file", "-", "--json"); exitCode(err) != 1 {
		t.Errorf("lookup of unknown values: exit %d", exitCode(err))
	}
	if _, _, err := mitra(t, map[string]string{"MITRA_URL": ts.URL, "MITRA_USER": "anna", "MITRA_PASSWORD": "wrong password!"}, "", "search", "x"); err == nil ||
		!strings.Contains(err.Error(), "401") {
		t.Errorf("wrong password: %v", err)
	}
}
