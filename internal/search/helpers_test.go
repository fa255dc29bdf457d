package search_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/search"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/postgres"
	"github.com/mitra-cert/mitra/internal/store/postgres/pgtest"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
)

// fullStore is a store the tests can set up and search.
type fullStore interface {
	store.Store
	search.Store
}

// backend opens an empty store.
type backend struct {
	name string
	open func(t testing.TB) fullStore
}

var backends = []backend{
	{"sqlite", func(t testing.TB) fullStore {
		st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
	{"postgres", func(t testing.TB) fullStore {
		st, err := postgres.Open(t.Context(), pgtest.NewSchema(t), postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
}

// eachBackend runs fn on a fresh store of every backend.
func eachBackend(t *testing.T, fn func(t *testing.T, w *world)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			st := b.open(t)
			fn(t, &world{t: t, st: st, svc: search.New(search.Config{Store: st})})
		})
	}
}

type world struct {
	t     testing.TB
	st    fullStore
	svc   *search.Service
	orgID string
}

func (w *world) org(name string, anonymise bool) string {
	w.t.Helper()
	o := &store.Organisation{Name: name, AnonymiseSightings: anonymise}
	if err := w.st.CreateOrganisation(w.t.Context(), o); err != nil {
		w.t.Fatal(err)
	}
	return o.ID
}

func (w *world) group(name string, orgs ...string) string {
	w.t.Helper()
	g := &store.Group{Name: name, Orgs: orgs}
	if err := w.st.CreateGroup(w.t.Context(), g); err != nil {
		w.t.Fatal(err)
	}
	return g.ID
}

// collection creates a collection readable through the given grants.
func (w *world) collection(title string, defaultTLP access.TLP, recipients []string, grants ...store.Grant) string {
	w.t.Helper()
	c := &store.Collection{Title: title, Alias: title, DefaultTLP: int(defaultTLP), Recipients: recipients}
	if err := w.st.CreateCollection(w.t.Context(), c); err != nil {
		w.t.Fatal(err)
	}
	for _, g := range grants {
		if err := w.st.SetPartyGrant(w.t.Context(), c.ID, g.Kind, g.Subject, g.Read, g.Write); err != nil {
			w.t.Fatal(err)
		}
	}
	if err := w.st.SetCollectionPolicy(w.t.Context(), c.ID, int(defaultTLP), recipients); err != nil {
		w.t.Fatal(err)
	}
	return c.ID
}

func readOrg(org string) store.Grant {
	return store.Grant{Kind: store.GrantOrg, Subject: org, Read: true}
}
func readGroup(group string) store.Grant {
	return store.Grant{Kind: store.GrantGroup, Subject: group, Read: true}
}

// add stores one object as submitted by org with the given TLP level (0:
// unmarked) and recipients.
func (w *world) add(coll, org string, tlp access.TLP, recipients []string, obj map[string]any) string {
	w.t.Helper()
	if obj["spec_version"] == nil && obj["type"] != "ipv4-addr" && obj["type"] != "domain-name" && obj["type"] != "url" {
		obj["spec_version"] = "2.1"
	}
	if _, ok := obj["created"]; !ok && !isSCO(obj["type"].(string)) {
		obj["created"] = "2026-01-01T00:00:00.000Z"
		obj["modified"] = "2026-01-01T00:00:00.000Z"
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		w.t.Fatal(err)
	}
	o := store.Object{ID: obj["id"].(string), Type: obj["type"].(string), SpecVersion: "2.1", Raw: raw, Submitter: org, TLP: int(tlp), Recipients: recipients}
	if m, ok := obj["modified"].(string); ok {
		o.Version, _ = stix.ParseTimestamp(m)
		o.VersionRaw = m
	}
	res, err := w.st.AddObjects(w.t.Context(), coll, []store.Object{o}, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	if res[0].Err != nil {
		w.t.Fatal(res[0].Err)
	}
	return o.ID
}

func isSCO(t string) bool {
	switch t {
	case "ipv4-addr", "ipv6-addr", "domain-name", "url", "file", "email-addr":
		return true
	}
	return false
}

var seq int

// id returns a fresh STIX id of type t.
func id(t string) string {
	seq++
	return fmt.Sprintf("%s--00000000-0000-4000-8000-%012d", t, seq)
}

func indicator(id, name, pattern string, extra ...any) map[string]any {
	m := map[string]any{"type": "indicator", "id": id, "name": name, "pattern": pattern, "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z"}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i].(string)] = extra[i+1]
	}
	return m
}

func principal(org string, groups ...string) *access.Principal {
	return &access.Principal{User: "u-" + org, Organisation: org, Groups: groups, Role: access.RoleAnalyst}
}

func (w *world) sync() {
	w.t.Helper()
	if err := w.svc.Sync(w.t.Context()); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) poll() {
	w.t.Helper()
	if err := w.svc.Poll(w.t.Context()); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) search(p *access.Principal, q search.Query) search.Result {
	w.t.Helper()
	res, err := w.svc.Search(w.t.Context(), p, q)
	if err != nil {
		w.t.Fatal(err)
	}
	return res
}

func (w *world) lookup(p *access.Principal, values ...string) []search.LookupResult {
	w.t.Helper()
	res, err := w.svc.Lookup(w.t.Context(), p, values)
	if err != nil {
		w.t.Fatal(err)
	}
	return res
}

func ids(hits []search.Hit) []string {
	out := []string{}
	for _, h := range hits {
		out = append(out, h.ID)
	}
	return out
}

func refIDs(refs []search.Ref) []string {
	out := []string{}
	for _, r := range refs {
		out = append(out, r.ID)
	}
	return out
}
