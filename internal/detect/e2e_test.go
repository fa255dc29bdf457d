package detect_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/detect"
	"github.com/mitra-cert/mitra/internal/pattern"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/mitra-cert/mitra/internal/taxii"
	"github.com/mitra-cert/mitra/internal/taxiiclient"
)

const pw = "correct horse battery"

// tenv is a TAXII server over a SQLite store with two organisations.
type tenv struct {
	st         store.Store
	url        string
	orgA, orgB *store.Organisation
	intel, out *store.Collection
}

func newTEnv(t *testing.T) *tenv {
	t.Helper()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &tenv{st: st, orgA: &store.Organisation{Name: "Grid Operator"}, orgB: &store.Organisation{Name: "Other CERT"}}
	for _, o := range []*store.Organisation{e.orgA, e.orgB} {
		if err := st.CreateOrganisation(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := access.CreateUser(ctx, st, "alice", pw, access.RoleAnalyst, e.orgA.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := access.CreateUser(ctx, st, "bob", pw, access.RoleAnalyst, e.orgB.ID); err != nil {
		t.Fatal(err)
	}
	e.intel = &store.Collection{Title: "Indicators"}
	e.out = &store.Collection{Title: "Sightings"}
	for _, c := range []*store.Collection{e.intel, e.out} {
		if err := st.CreateCollection(ctx, c); err != nil {
			t.Fatal(err)
		}
		for _, o := range []*store.Organisation{e.orgA, e.orgB} {
			if err := st.SetPartyGrant(ctx, c.ID, store.GrantOrg, o.ID, true, true); err != nil {
				t.Fatal(err)
			}
		}
	}
	srv := taxii.NewServer(taxii.Config{Store: st, Auth: access.NewAuthenticator(st, nil), Validator: &stix.Validator{CheckPattern: pattern.Check}})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	e.url = ts.URL + "/api/"
	return e
}

func (e *tenv) client(t *testing.T, user, collection string) *taxiiclient.Client {
	t.Helper()
	c, err := taxiiclient.NewClient(e.url, collection)
	if err != nil {
		t.Fatal(err)
	}
	c.User, c.Password = user, pw
	return c
}

func indicator(id, pat, modified string, extra map[string]any) json.RawMessage {
	m := map[string]any{"type": "indicator", "spec_version": "2.1", "id": id, "created": "2024-01-01T00:00:00.000Z",
		"modified": modified, "name": "test " + id[len(id)-4:], "pattern": pat, "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z"}
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}

func post(t *testing.T, c *taxiiclient.Client, objs ...json.RawMessage) {
	t.Helper()
	st, err := c.AddObjects(t.Context(), objs)
	if err != nil {
		t.Fatal(err)
	}
	if st.SuccessCount != len(objs) {
		t.Fatalf("posted %d objects, status %+v", len(objs), st)
	}
}

const (
	eDNS     = "indicator--a1111111-1111-4111-8111-111111111111"
	eRed     = "indicator--a2222222-2222-4222-8222-222222222222"
	eRevoked = "indicator--a3333333-3333-4333-8333-333333333333"
	eExpired = "indicator--a4444444-4444-4444-8444-444444444444"
	eHash    = "indicator--a5555555-5555-4555-8555-555555555555"
)

// Indicators POSTed over TAXII, a Zeek dns log and a Suricata EVE file fed
// to the detector, sightings posted to and read back over TAXII.
func TestEndToEndTAXII(t *testing.T) {
	e := newTEnv(t)
	alice := e.client(t, "alice", e.intel.ID)
	bob := e.client(t, "bob", e.intel.ID)
	v1 := "2024-01-01T00:00:00.000Z"
	post(t, alice,
		indicator(eDNS, "[domain-name:value = 'evil.example.com']", v1, nil),
		indicator(eRevoked, "[url:value = 'http://bad.example.net/payload.exe']", v1, nil),
		indicator(eExpired, "[domain-name:value = 'c2.example.org']", v1, map[string]any{"valid_until": "2024-02-01T00:00:00Z"}),
		indicator(eHash, "[file:hashes.'SHA-256' = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855']", v1, nil),
	)
	post(t, alice, indicator(eRevoked, "[url:value = 'http://bad.example.net/payload.exe']", "2024-01-02T00:00:00.000Z", map[string]any{"revoked": true}))
	// TLP:RED from another organisation: not readable by the detector's.
	post(t, bob, indicator(eRed, "[ipv4-addr:value = '203.0.113.66']", v1,
		map[string]any{"object_marking_refs": []string{"marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"}}))

	p := &access.Principal{Organisation: e.orgA.ID, Role: access.RoleAnalyst}
	d, err := detect.New(detect.Config{
		Indicators: &detect.StoreIndicators{Store: e.st, Principal: p},
		Sink:       &detect.TAXIISink{Client: e.client(t, "alice", e.out.ID)},
		Identity:   e.orgA.ID,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	err = d.Run(ctx,
		&detect.FileSource{Path: "testdata/zeek/dns.log"},
		&detect.FileSource{Path: "testdata/suricata/eve.json"})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Stats().Indicators; got != 2 {
		t.Errorf("%d indicators active, want 2 (revoked, expired and RED ones left out)", got)
	}

	// Read back, one object per page, following next.
	reader := e.client(t, "alice", e.out.ID)
	byID := map[string]map[string]any{}
	pages := 0
	err = reader.GetObjects(t.Context(), taxiiclient.ObjectsQuery{Limit: 1}, func(pg taxiiclient.ObjectsPage) error {
		pages++
		for _, raw := range pg.Objects {
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				return err
			}
			byID[m["id"].(string)] = m
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if pages < len(byID) {
		t.Errorf("%d pages for %d objects with limit 1", pages, len(byID))
	}
	counts := map[string][]int{}
	for _, m := range byID {
		if m["type"] != "sighting" {
			continue
		}
		ind := m["sighting_of_ref"].(string)
		counts[ind] = append(counts[ind], int(m["count"].(float64)))
		if w := fmt.Sprint(m["where_sighted_refs"]); w != "["+e.orgA.ID+"]" {
			t.Errorf("where_sighted_refs %s", w)
		}
		refs := m["observed_data_refs"].([]any)
		od := byID[refs[0].(string)]
		if od == nil {
			t.Fatalf("observed-data %s not readable", refs[0])
		}
		if od["number_observed"] != m["count"] {
			t.Errorf("number_observed %v, count %v", od["number_observed"], m["count"])
		}
		for _, r := range od["object_refs"].([]any) {
			if byID[r.(string)] == nil {
				t.Errorf("SCO %s not readable", r)
			}
		}
	}
	sum := func(xs []int) (s int) {
		for _, x := range xs {
			s += x
		}
		return s
	}
	// dns.log: evil.example.com twice in 10:00 and once in 10:01; eve.json:
	// query and answer in 10:10. fileinfo: one hash.
	if len(counts[eDNS]) != 3 || sum(counts[eDNS]) != 5 {
		t.Errorf("evil.example.com sightings %v, want 3 summing to 5", counts[eDNS])
	}
	if fmt.Sprint(counts[eHash]) != "[1]" {
		t.Errorf("hash sightings %v, want [1]", counts[eHash])
	}
	for _, id := range []string{eRed, eRevoked, eExpired} {
		if len(counts[id]) > 0 {
			t.Errorf("sightings of %s, which the detector must not use: %v", id, counts[id])
		}
	}
	// Errors come back as TAXII error resources.
	bad := e.client(t, "alice", "no-such-collection")
	_, err = bad.AddObjects(t.Context(), []json.RawMessage{indicator(eDNS, "[domain-name:value = 'x']", v1, nil)})
	var te *taxiiclient.Error
	if !asTAXIIError(err, &te) || te.Status != 404 || te.Title == "" {
		t.Errorf("unknown collection: %v", err)
	}
}
