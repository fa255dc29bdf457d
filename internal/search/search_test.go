package search_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/search"
	"github.com/mitra-cert/mitra/internal/store"
)

func TestSearchTextFiltersAndPages(t *testing.T) {
	eachBackend(t, func(t *testing.T, w *world) {
		a := w.org("A", false)
		feed := w.collection("feed", access.TLPGreen, nil, readOrg(a))
		other := w.collection("other", access.TLPAmber, nil, readOrg(a))
		fancy := w.add(feed, a, 0, nil, map[string]any{"type": "intrusion-set", "id": id("intrusion-set"), "name": "Fancy Bear",
			"description": "Russian state actor", "labels": []string{"apt"}})
		bearInd := w.add(feed, a, access.TLPAmber, nil, indicator(id("indicator"), "C2 of the bear", "[ipv4-addr:value = '198.51.100.7']",
			"description", "Command and control server used by Fancy Bear.", "modified", "2026-03-01T00:00:00.000Z", "created", "2026-03-01T00:00:00.000Z"))
		w.add(other, a, access.TLPGreen, nil, map[string]any{"type": "malware", "id": id("malware"), "name": "Zebrocy", "is_family": true,
			"description": "Downloader written in Delphi, used by Fancy Bear"})
		w.add(feed, a, 0, nil, map[string]any{"type": "malware", "id": id("malware"), "name": "Unrelated", "is_family": true, "description": "nothing here"})
		p := principal(a)

		res := w.search(p, search.Query{Text: "fancy bear"})
		if len(res.Hits) != 3 {
			t.Fatalf("fancy bear: %d hits, want 3: %+v", len(res.Hits), res.Hits)
		}
		if res.Hits[0].ID != fancy {
			t.Errorf("the object named Fancy Bear should rank first, got %s (%s)", res.Hits[0].ID, res.Hits[0].Name)
		}
		if res.Hits[0].Name != "Fancy Bear" || res.Hits[0].Type != "intrusion-set" || res.Hits[0].Collection != feed || res.Hits[0].TLP != "GREEN" {
			t.Errorf("hit fields: %+v", res.Hits[0])
		}
		// Pattern values are searched.
		if got := ids(w.search(p, search.Query{Text: "198.51.100.7"}).Hits); !slices.Equal(got, []string{bearInd}) {
			t.Errorf("search by pattern value: %v, want %v", got, []string{bearInd})
		}
		// Labels, and a prefix.
		if got := ids(w.search(p, search.Query{Text: "ap*"}).Hits); !slices.Equal(got, []string{fancy}) {
			t.Errorf("search by label prefix: %v", got)
		}
		// Filters: type, TLP (effective: the collection default for
		// unmarked objects), collection by alias, time.
		if got := w.search(p, search.Query{Text: "bear", Types: []string{"malware"}}).Hits; len(got) != 1 || got[0].Name != "Zebrocy" {
			t.Errorf("type filter: %+v", got)
		}
		if got := ids(w.search(p, search.Query{Text: "bear", TLPs: []string{"amber"}}).Hits); !slices.Equal(got, []string{bearInd}) {
			t.Errorf("TLP amber filter: %v", got)
		}
		if got := w.search(p, search.Query{Text: "bear", TLPs: []string{"green"}, Collections: []string{"feed"}}).Hits; len(got) != 1 || got[0].ID != fancy {
			t.Errorf("TLP green (by default) in feed: %+v", got)
		}
		if got := ids(w.search(p, search.Query{Text: "bear", ModifiedFrom: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)}).Hits); !slices.Equal(got, []string{bearInd}) {
			t.Errorf("modified_from: %v", got)
		}
		if got := w.search(p, search.Query{Text: "bear", Organisations: []string{"identity--00000000-0000-4000-8000-000000000999"}}).Hits; len(got) != 0 {
			t.Errorf("organisation filter: %+v", got)
		}
		// Pages: every hit once, the last page without a cursor.
		var paged []string
		q := search.Query{Text: "bear", Limit: 1}
		for range 10 {
			r := w.search(p, q)
			paged = append(paged, ids(r.Hits)...)
			if r.Next == "" {
				break
			}
			q.Cursor = r.Next
		}
		all := ids(w.search(p, search.Query{Text: "bear"}).Hits)
		if !slices.Equal(paged, all) || len(all) != 3 {
			t.Errorf("pages %v, all %v", paged, all)
		}
		// Without text: everything readable, newest first.
		if got := w.search(p, search.Query{}).Hits; len(got) != 4 {
			t.Errorf("no text: %d hits, want 4", len(got))
		}
		// Text with no searchable word, and FTS syntax, are not errors.
		for _, text := range []string{`"`, `***`, `NEAR(a b) OR "x`, `a:b -c`} {
			if _, err := w.svc.Search(t.Context(), p, search.Query{Text: text}); err != nil {
				t.Errorf("search %q: %v", text, err)
			}
		}
		for _, bad := range []search.Query{{Limit: search.MaxLimit + 1}, {Cursor: "!!"}, {TLPs: []string{"purple"}}} {
			if _, err := w.svc.Search(t.Context(), p, bad); !errors.Is(err, search.ErrInvalid) {
				t.Errorf("%+v: %v, want ErrInvalid", bad, err)
			}
		}
	})
}

func TestLookupValuesAndRanges(t *testing.T) {
	eachBackend(t, func(t *testing.T, w *world) {
		a := w.org("A", false)
		feed := w.collection("feed", access.TLPGreen, nil, readOrg(a))
		p := principal(a)
		cidr := w.add(feed, a, 0, nil, indicator(id("indicator"), "Bad range", "[ipv4-addr:value ISSUBSET '203.0.113.0/24']"))
		multi := w.add(feed, a, 0, nil, indicator(id("indicator"), "Bad things",
			"[domain-name:value = 'Evil.Example.'] OR [url:value = 'http://evil.example/x'] OR [file:hashes.'SHA-256' = 'AAAA000000000000000000000000000000000000000000000000000000000001'] OR [ipv6-addr:value = '2001:db8::/32']"))
		obs := w.add(feed, a, 0, nil, map[string]any{"type": "ipv4-addr", "id": id("ipv4-addr"), "value": "192.0.2.1"})
		od := w.add(feed, a, 0, nil, map[string]any{"type": "observed-data", "id": id("observed-data"), "first_observed": "2026-01-01T00:00:00Z",
			"last_observed": "2026-01-01T00:00:00Z", "number_observed": 1, "object_refs": []string{obs}})
		sight := w.add(feed, a, 0, nil, map[string]any{"type": "sighting", "id": id("sighting"), "sighting_of_ref": cidr})
		sightOD := w.add(feed, a, 0, nil, map[string]any{"type": "sighting", "id": id("sighting"), "sighting_of_ref": multi, "observed_data_refs": []string{od}})
		rep := w.add(feed, a, 0, nil, map[string]any{"type": "report", "id": id("report"), "name": "Weekly", "published": "2026-01-01T00:00:00Z",
			"object_refs": []string{multi}})
		negated := w.add(feed, a, 0, nil, indicator(id("indicator"), "Not this", "[ipv4-addr:value != '10.9.9.9']"))
		_ = negated

		if _, err := w.svc.Lookup(t.Context(), p, []string{"1.2.3.4"}); !errors.Is(err, search.ErrNotReady) {
			t.Fatalf("lookup before the first load: %v, want ErrNotReady", err)
		}
		w.sync()
		res := w.lookup(p, "203.0.113.77", "evil.example", "EVIL.EXAMPLE", "http://evil.example/x",
			"aaaa000000000000000000000000000000000000000000000000000000000001", "2001:db8:1::5", "192.0.2.1", "10.9.9.9", "203.0.114.1")
		want := []struct {
			known               bool
			inds, obs, sig, rep []string
		}{
			{true, []string{cidr}, nil, []string{sight}, nil},
			{true, []string{multi}, nil, []string{sightOD}, []string{rep}},
			{true, []string{multi}, nil, []string{sightOD}, []string{rep}},
			{true, []string{multi}, nil, []string{sightOD}, []string{rep}},
			{true, []string{multi}, nil, []string{sightOD}, []string{rep}},
			{true, []string{multi}, nil, []string{sightOD}, []string{rep}},
			{true, nil, []string{obs}, []string{sightOD}, nil},
			{false, nil, nil, nil, nil},
			{false, nil, nil, nil, nil},
		}
		for i, wnt := range want {
			r := res[i]
			if r.Known != wnt.known || !sameIDs(refIDs(r.Indicators), wnt.inds) || !sameIDs(refIDs(r.Observables), wnt.obs) ||
				!sameIDs(refIDs(r.Sightings), wnt.sig) || !sameIDs(refIDs(r.Reports), wnt.rep) {
				t.Errorf("lookup %q: %+v, want %+v", r.Value, r, wnt)
			}
		}
		if m := res[0].Indicators[0].Match; m != "203.0.113.0/24" {
			t.Errorf("a CIDR match names the range, got %q", m)
		}

		// The index follows the change log: a new indicator, a deletion.
		late := w.add(feed, a, 0, nil, indicator(id("indicator"), "Late", "[domain-name:value = 'late.example']"))
		if _, err := w.st.DeleteObject(t.Context(), feed, cidr, store.Query{}); err != nil {
			t.Fatal(err)
		}
		w.poll()
		res = w.lookup(p, "late.example", "203.0.113.77")
		if !slices.Equal(refIDs(res[0].Indicators), []string{late}) || res[1].Known {
			t.Errorf("after poll: %+v", res)
		}
		// A restart rebuilds it from the store.
		w.svc = search.New(search.Config{Store: w.st})
		w.sync()
		if res = w.lookup(p, "late.example"); !res[0].Known {
			t.Errorf("after a restart the indicator is missing")
		}
		if _, err := w.svc.Lookup(t.Context(), p, make([]string, search.MaxLookupValues+1)); !errors.Is(err, search.ErrInvalid) {
			t.Errorf("too many values: %v", err)
		}
	})
}

func sameIDs(got, want []string) bool {
	if len(want) == 0 {
		return len(got) == 0
	}
	return slices.Equal(got, want)
}

func TestPivotBothDirections(t *testing.T) {
	eachBackend(t, func(t *testing.T, w *world) {
		a := w.org("A", false)
		feed := w.collection("feed", access.TLPGreen, nil, readOrg(a))
		p := principal(a)
		apt := w.add(feed, a, 0, nil, map[string]any{"type": "intrusion-set", "id": id("intrusion-set"), "name": "APT X"})
		mal := w.add(feed, a, 0, nil, map[string]any{"type": "malware", "id": id("malware"), "name": "Dropper", "is_family": true})
		ind := w.add(feed, a, 0, nil, indicator(id("indicator"), "Dropper C2", "[domain-name:value = 'c2.example']"))
		rel1 := w.add(feed, a, 0, nil, map[string]any{"type": "relationship", "id": id("relationship"), "relationship_type": "uses", "source_ref": apt, "target_ref": mal})
		rel2 := w.add(feed, a, 0, nil, map[string]any{"type": "relationship", "id": id("relationship"), "relationship_type": "indicates", "source_ref": ind, "target_ref": mal})
		sight := w.add(feed, a, 0, nil, map[string]any{"type": "sighting", "id": id("sighting"), "sighting_of_ref": ind})
		rep := w.add(feed, a, 0, nil, map[string]any{"type": "report", "id": id("report"), "name": "R", "published": "2026-01-01T00:00:00Z", "object_refs": []string{apt}})

		g, err := w.svc.Pivot(t.Context(), p, mal, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got := nodeIDs(g); !sameSet(got, []string{mal, apt, ind}) {
			t.Errorf("1 hop from malware: nodes %v", got)
		}
		if !hasEdge(g, apt, mal, "uses", rel1) || !hasEdge(g, ind, mal, "indicates", rel2) {
			t.Errorf("1 hop: edges %+v", g.Edges)
		}
		g, err = w.svc.Pivot(t.Context(), p, mal, 2)
		if err != nil {
			t.Fatal(err)
		}
		if got := nodeIDs(g); !sameSet(got, []string{mal, apt, ind, sight, rep}) {
			t.Errorf("2 hops from malware: nodes %v", got)
		}
		if !hasEdge(g, sight, ind, "sighting_of_ref", "") || !hasEdge(g, rep, apt, "object_refs", "") {
			t.Errorf("2 hops: edges %+v", g.Edges)
		}
		// Outgoing: from the report.
		g, err = w.svc.Pivot(t.Context(), p, rep, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !sameSet(nodeIDs(g), []string{rep, apt}) || !hasEdge(g, rep, apt, "object_refs", "") {
			t.Errorf("from the report: %+v", g)
		}
		if _, err := w.svc.Pivot(t.Context(), p, "malware--00000000-0000-4000-8000-999999999999", 1); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("missing object: %v", err)
		}
		if _, err := w.svc.Pivot(t.Context(), p, mal, 3); !errors.Is(err, search.ErrInvalid) {
			t.Errorf("3 hops: %v", err)
		}
	})
}

func nodeIDs(g search.Graph) []string {
	var out []string
	for _, n := range g.Nodes {
		out = append(out, n.ID)
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func hasEdge(g search.Graph, src, dst, kind, rel string) bool {
	return slices.Contains(g.Edges, search.Edge{Source: src, Target: dst, Kind: kind, Relationship: rel})
}

// TestSearchPagesPastTheRankWindow pages through more matches than the
// store ranks at once (the newest 2,000): every visible match comes
// exactly once, hidden ones never, and the best ones first.
func TestSearchPagesPastTheRankWindow(t *testing.T) {
	eachBackend(t, func(t *testing.T, w *world) {
		a, b := w.org("A", false), w.org("B", false)
		feed := w.collection("feed", access.TLPGreen, nil, readOrg(a), readOrg(b))
		const n = 2300
		objs := make([]store.Object, 0, n)
		want := map[string]bool{}
		for i := range n {
			id := fmt.Sprintf("indicator--00000000-0000-4000-8000-1%011d", i)
			name := "Beacon host"
			if i == 10 {
				name = "Other" // matches by description only: ranks last in the window
			}
			raw := fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":%q,"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":%q,"description":"beacon seen","pattern":"[ipv4-addr:value = '10.0.0.1']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`, id, name)
			o := store.Object{ID: id, Type: "indicator", SpecVersion: "2.1", Raw: []byte(raw), Submitter: a, VersionRaw: "2026-01-01T00:00:00.000Z",
				Version: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			if i%10 == 3 {
				o.TLP = int(access.TLPRed) // A's own: hidden from B
			} else {
				want[id] = true
			}
			objs = append(objs, o)
		}
		if _, err := w.st.AddObjects(t.Context(), feed, objs, nil); err != nil {
			t.Fatal(err)
		}
		p := principal(b)
		seen := map[string]bool{}
		q := search.Query{Text: "beacon", Limit: 300} // a page crosses the window
		pages := 0
		for {
			res := w.search(p, q)
			pages++
			for _, h := range res.Hits {
				if seen[h.ID] || !want[h.ID] {
					t.Fatalf("page %d: %s again or hidden", pages, h.ID)
				}
				seen[h.ID] = true
			}
			if res.Next == "" {
				break
			}
			q.Cursor = res.Next
		}
		if len(seen) != len(want) {
			t.Errorf("paged %d hits, want %d", len(seen), len(want))
		}
		first := w.search(p, search.Query{Text: "beacon", Limit: 1})
		if len(first.Hits) != 1 || first.Hits[0].Name != "Beacon host" {
			t.Errorf("best hit: %+v", first.Hits)
		}
	})
}
