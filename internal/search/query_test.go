package search_test

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"testing"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/search"
	"github.com/mitra-cert/mitra/internal/store"
)

// TestMatchingIDs: the ids an export from a search reads are every page's
// (pages of 4 here, over 23 matches), each once though one indicator is in
// two collections, and only those the caller may read: B never gets A's
// RED indicators, interleaved with the GREEN ones, nor anything from A's
// own collection, and its answer is the same with a page larger than
// everything. A malformed search wraps store.ErrInvalid.
func TestMatchingIDs(t *testing.T) {
	eachBackend(t, func(t *testing.T, w *world) {
		a, b := w.org("A", false), w.org("B", false)
		shared := w.collection("shared", access.TLPGreen, nil, readOrg(a), readOrg(b))
		own := w.collection("own", access.TLPGreen, nil, readOrg(a))
		var visible, all []string
		for i := range 22 {
			vid := w.add(shared, a, access.TLPGreen, nil, indicator(id("indicator"), fmt.Sprintf("beacon %d", i), "[domain-name:value = 'v.example']"))
			visible, all = append(visible, vid), append(all, vid)
			if i%2 == 0 {
				hid := w.add(shared, a, access.TLPRed, nil, indicator(id("indicator"), fmt.Sprintf("beacon red %d", i), "[domain-name:value = 'r.example']"))
				all = append(all, hid)
			}
		}
		twice := indicator(id("indicator"), "beacon twice", "[domain-name:value = 't.example']")
		w.add(shared, a, access.TLPGreen, nil, twice)
		w.add(own, a, access.TLPGreen, nil, twice)
		visible, all = append(visible, twice["id"].(string)), append(all, twice["id"].(string))
		all = append(all, w.add(own, a, access.TLPGreen, nil, indicator(id("indicator"), "beacon own", "[domain-name:value = 'o.example']")))
		w.add(shared, a, access.TLPGreen, nil, indicator(id("indicator"), "unrelated", "[domain-name:value = 'u.example']"))

		got := func(p *access.Principal, params url.Values) []string {
			t.Helper()
			ids, err := w.svc.MatchingIDs(t.Context(), p, params)
			if err != nil {
				t.Fatal(err)
			}
			return ids
		}
		sorted := func(l []string) []string { l = slices.Clone(l); slices.Sort(l); return l }
		q := url.Values{"q": {"beacon"}, "type": {"indicator"}}
		restore := search.SetIDsPage(4)
		small := got(principal(b), q)
		if !slices.Equal(sorted(small), sorted(visible)) {
			t.Fatalf("B, pages of 4: %d ids %v, want %d %v", len(small), small, len(visible), visible)
		}
		if ga := got(principal(a), q); !slices.Equal(sorted(ga), sorted(all)) {
			t.Fatalf("A, pages of 4: %d ids, want %d", len(ga), len(all))
		}
		restore()
		if large := got(principal(b), q); !slices.Equal(large, small) {
			t.Fatalf("B: one page %v, pages of 4 %v", large, small)
		}
		if gb := got(principal(b), url.Values{"q": {"beacon"}, "collection": {"own"}}); len(gb) != 0 {
			t.Fatalf("B in A's collection: %v", gb)
		}
		for _, bad := range []url.Values{{"tlp": {"purple"}}, {"modified_to": {"soon"}}} {
			_, err := w.svc.MatchingIDs(t.Context(), principal(b), bad)
			if !errors.Is(err, store.ErrInvalid) || !errors.Is(err, search.ErrInvalid) {
				t.Errorf("%v: %v", bad, err)
			}
		}
	})
}
