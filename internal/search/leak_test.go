package search_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/search"
	"github.com/mitra-cert/mitra/internal/store"
)

// Fixed ids, so that two stores can be compared answer for answer.
const (
	orgA, orgB, orgC, orgD, orgS = "identity--0000000a-0000-4000-8000-000000000000", "identity--0000000b-0000-4000-8000-000000000000",
		"identity--0000000c-0000-4000-8000-000000000000", "identity--0000000d-0000-4000-8000-000000000000", "identity--00000005-0000-4000-8000-000000000000"
	groupG                            = "6a6a6a6a-0000-4000-8000-000000000000"
	collShared, collPriv, collSecret  = "c0000000-0000-4000-8000-000000000001", "c0000000-0000-4000-8000-000000000002", "c0000000-0000-4000-8000-000000000003"
	collStrictB                       = "c0000000-0000-4000-8000-000000000004"
	green1, strictB, report1, rel1    = "indicator--10000000-0000-4000-8000-000000000001", "indicator--10000000-0000-4000-8000-000000000002", "report--10000000-0000-4000-8000-000000000003", "relationship--10000000-0000-4000-8000-000000000004"
	malware1, viaColl, sightS, identS = "malware--10000000-0000-4000-8000-000000000005", "indicator--10000000-0000-4000-8000-000000000006", "sighting--10000000-0000-4000-8000-000000000007", "identity--00000005-0000-4000-8000-000000000000"
	redX, strictY, privZ, unresolvedU = "indicator--20000000-0000-4000-8000-000000000001", "indicator--20000000-0000-4000-8000-000000000002", "indicator--20000000-0000-4000-8000-000000000003", "indicator--20000000-0000-4000-8000-000000000004"
	redSighting, redReport, redRel    = "sighting--20000000-0000-4000-8000-000000000005", "report--20000000-0000-4000-8000-000000000006", "relationship--20000000-0000-4000-8000-000000000007"
	secretDefault                     = "indicator--20000000-0000-4000-8000-000000000008"
)

// leakWorld builds the same organisations, groups, collections and
// visible objects in a fresh store; with hidden, also objects that B, C
// and D may not read (RED, AMBER+STRICT without them as recipients, an
// unresolved marking, a collection only A reads, a collection whose
// default is RED).
func leakWorld(t *testing.T, b backend, hidden bool) *world {
	st := b.open(t)
	w := &world{t: t, st: st, svc: search.New(search.Config{Store: st})}
	ctx := t.Context()
	for _, o := range []*store.Organisation{{ID: orgA, Name: "A"}, {ID: orgB, Name: "B"}, {ID: orgC, Name: "C"}, {ID: orgD, Name: "D"},
		{ID: orgS, Name: "S", AnonymiseSightings: true}} {
		if err := st.CreateOrganisation(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CreateGroup(ctx, &store.Group{ID: groupG, Name: "G", Orgs: []string{orgA, orgB, orgS}}); err != nil {
		t.Fatal(err)
	}
	mk := func(id, title string, def access.TLP, recipients []string, grants ...store.Grant) {
		if err := st.CreateCollection(ctx, &store.Collection{ID: id, Title: title, Alias: title}); err != nil {
			t.Fatal(err)
		}
		for _, g := range grants {
			if err := st.SetPartyGrant(ctx, id, g.Kind, g.Subject, g.Read, g.Write); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.SetCollectionPolicy(ctx, id, int(def), recipients); err != nil {
			t.Fatal(err)
		}
	}
	mk(collShared, "shared", access.TLPGreen, nil, readGroup(groupG), readOrg(orgC))
	mk(collPriv, "private", access.TLPAmber, nil, readOrg(orgA))
	mk(collSecret, "secret", access.TLPRed, nil, readGroup(groupG), readOrg(orgC))
	mk(collStrictB, "strict-b", access.TLPAmberStrict, []string{orgB}, readGroup(groupG), readOrg(orgC))

	// Visible to B (and some to C).
	w.add(collShared, orgA, access.TLPGreen, nil, indicator(green1, "Campaign lure domain", "[domain-name:value = 'evil.example'] OR [ipv4-addr:value = '203.0.113.5']"))
	w.add(collShared, orgA, access.TLPAmberStrict, []string{orgB}, indicator(strictB, "Campaign range for B", "[ipv4-addr:value ISSUBSET '198.51.100.0/24']"))
	w.add(collStrictB, orgA, 0, nil, indicator(viaColl, "Campaign via collection recipients", "[url:value = 'http://evil.example/b']"))
	w.add(collShared, orgA, access.TLPGreen, nil, map[string]any{"type": "malware", "id": malware1, "name": "Campaign dropper", "is_family": true})
	w.add(collShared, orgA, access.TLPGreen, nil, map[string]any{"type": "relationship", "id": rel1, "relationship_type": "indicates", "source_ref": green1, "target_ref": redX})
	w.add(collShared, orgA, access.TLPGreen, nil, map[string]any{"type": "report", "id": report1, "name": "Campaign report", "published": "2026-01-01T00:00:00Z",
		"object_refs": []string{green1, redX, malware1}})
	w.add(collShared, orgS, access.TLPGreen, nil, map[string]any{"type": "identity", "id": identS, "name": "S", "identity_class": "organization"})
	w.add(collShared, orgS, access.TLPGreen, nil, map[string]any{"type": "sighting", "id": sightS, "sighting_of_ref": green1,
		"where_sighted_refs": []string{identS}, "created_by_ref": identS})
	if hidden {
		w.add(collShared, orgA, access.TLPRed, nil, indicator(redX, "Campaign secret operation", "[ipv4-addr:value = '203.0.113.9'] OR [domain-name:value = 'evil.example']"))
		w.add(collShared, orgA, access.TLPAmberStrict, nil, indicator(strictY, "Campaign strict", "[domain-name:value = 'evil.example']"))
		w.add(collPriv, orgA, 0, nil, indicator(privZ, "Campaign private", "[ipv4-addr:value ISSUBSET '198.51.0.0/16']"))
		w.add(collShared, orgA, access.TLPUnresolved, nil, indicator(unresolvedU, "Campaign unresolved", "[url:value = 'http://evil.example/x']"))
		w.add(collSecret, orgA, 0, nil, indicator(secretDefault, "Campaign red by default", "[ipv4-addr:value = '203.0.113.5']"))
		w.add(collShared, orgA, access.TLPRed, nil, map[string]any{"type": "sighting", "id": redSighting, "sighting_of_ref": green1})
		w.add(collShared, orgA, access.TLPRed, nil, map[string]any{"type": "report", "id": redReport, "name": "Campaign red report", "published": "2026-01-01T00:00:00Z",
			"object_refs": []string{green1, malware1}})
		w.add(collShared, orgA, access.TLPRed, nil, map[string]any{"type": "relationship", "id": redRel, "relationship_type": "uses", "source_ref": malware1, "target_ref": green1})
	}
	w.sync()
	return w
}

// transcript is everything p is answered to a fixed list of searches,
// lookups and pivots, as JSON.
func transcript(t *testing.T, w *world, p *access.Principal) string {
	var out []any
	note := func(what string, v any, err error) {
		if err != nil {
			out = append(out, map[string]string{what: "error: " + err.Error()})
			return
		}
		out = append(out, map[string]any{what: v})
	}
	ctx := t.Context()
	for _, q := range []search.Query{{Text: "campaign"}, {}, {Text: "campaign", Types: []string{"indicator"}}, {Text: "campaign", TLPs: []string{"red"}},
		{Text: "campaign", TLPs: []string{"amber+strict"}}, {Text: "campaign", Collections: []string{"private", collSecret}},
		{Text: "campaign", Organisations: []string{orgA}}, {Text: "evil.example"}, {Text: "203.0.113.9"}, {Organisations: []string{orgS}}} {
		res, err := w.svc.Search(ctx, p, q)
		note(fmt.Sprintf("search %+v", q), res, err)
		// Every page of one hit.
		q.Limit = 1
		for range 20 {
			res, err := w.svc.Search(ctx, p, q)
			note("page", res, err)
			if err != nil || res.Next == "" {
				break
			}
			q.Cursor = res.Next
		}
	}
	values := []string{"evil.example", "203.0.113.9", "203.0.113.5", "198.51.100.20", "198.51.7.7", "http://evil.example/x", "http://evil.example/b", "10.0.0.1"}
	res, err := w.svc.Lookup(ctx, p, values)
	note("bulk lookup", res, err)
	for _, v := range values {
		res, err := w.svc.Lookup(ctx, p, []string{v})
		note("lookup "+v, res, err)
	}
	for _, id := range []string{green1, report1, malware1, rel1, redX, strictY, privZ, unresolvedU, redSighting, "indicator--99999999-0000-4000-8000-000000000000", identS} {
		for hops := 1; hops <= 2; hops++ {
			g, err := w.svc.Pivot(ctx, p, id, hops)
			note(fmt.Sprintf("pivot %s %d", id, hops), g, err)
		}
	}
	b, err := json.MarshalIndent(out, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestHiddenObjectsAreIndistinguishableFromMissing compares, for
// organisations B (group member, recipient of some AMBER+STRICT objects),
// C (reads the shared collections through an organisation grant) and D
// (reads nothing), every answer of a store holding objects they may not
// read with a store where those objects do not exist: they must be
// identical, byte for byte (hits, order, scores, cursors, lookups, graphs,
// truncation flags, errors).
func TestHiddenObjectsAreIndistinguishableFromMissing(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			full, bare := leakWorld(t, b, true), leakWorld(t, b, false)
			for _, p := range []*access.Principal{principal(orgB, groupG), principal(orgC), principal(orgD)} {
				if got, want := transcript(t, full, p), transcript(t, bare, p); got != want {
					t.Errorf("%s is answered differently when hidden objects exist:\n%s", p.Organisation, firstDiff(got, want))
				}
			}
			// The hidden objects are there: A finds them.
			a := principal(orgA, groupG)
			hits := ids(full.search(a, search.Query{Text: "campaign", Limit: 100}).Hits)
			for _, id := range []string{redX, strictY, privZ, unresolvedU, secretDefault, redReport} {
				if !slices.Contains(hits, id) {
					t.Errorf("A does not find its own %s", id)
				}
			}
			if r := full.lookup(a, "203.0.113.9"); !r[0].Known {
				t.Errorf("A's lookup misses its RED indicator")
			}
			// And what B reads is found: the AMBER+STRICT objects naming
			// it (in the object, by the collection), not C.
			bp, cp := principal(orgB, groupG), principal(orgC)
			bh, ch := ids(full.search(bp, search.Query{Text: "campaign", Limit: 100}).Hits), ids(full.search(cp, search.Query{Text: "campaign", Limit: 100}).Hits)
			for _, id := range []string{green1, strictB, viaColl, report1} {
				if !slices.Contains(bh, id) {
					t.Errorf("B does not find %s", id)
				}
			}
			if slices.Contains(ch, strictB) || slices.Contains(ch, viaColl) || !slices.Contains(ch, green1) {
				t.Errorf("C's hits: %v", ch)
			}
			if r := full.lookup(bp, "198.51.100.20"); !slices.Equal(refIDs(r[0].Indicators), []string{strictB}) {
				t.Errorf("B's CIDR lookup: %+v", r[0])
			}
			for _, p := range []*access.Principal{bp, cp} {
				for _, hidden := range []string{redX, strictY, privZ, unresolvedU, secretDefault, redSighting, redReport, redRel} {
					if slices.Contains(ids(full.search(p, search.Query{Limit: 500}).Hits), hidden) {
						t.Errorf("%s sees %s", p.Organisation, hidden)
					}
				}
			}
			// Anonymous sightings: B sees S's sighting but not that S made
			// it, nor finds it from S's identity; S itself does.
			g, err := full.svc.Pivot(t.Context(), bp, identS, 2)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(nodeIDs(g), sightS) {
				t.Errorf("B finds S's anonymous sighting from S's identity: %v", nodeIDs(g))
			}
			g, err = full.svc.Pivot(t.Context(), bp, sightS, 1)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(nodeIDs(g), identS) {
				t.Errorf("B's pivot from S's sighting names S: %+v", g)
			}
			g, err = full.svc.Pivot(t.Context(), principal(orgS, groupG), sightS, 1)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(nodeIDs(g), identS) {
				t.Errorf("S's own pivot from its sighting misses its identity: %+v", g)
			}
			if res := full.search(bp, search.Query{Organisations: []string{orgS}}); slices.Contains(ids(res.Hits), sightS) {
				t.Errorf("B finds S's anonymous sighting by naming S")
			}
		})
	}
}

// firstDiff shows where two transcripts part.
func firstDiff(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	lo := max(0, i-600)
	return fmt.Sprintf("with hidden objects: …%s…\nwithout:              …%s…", a[lo:min(len(a), i+200)], b[lo:min(len(b), i+200)])
}
