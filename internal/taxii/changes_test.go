package taxii_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxiiclient"
)

// feedChange is one change as the feed sends it.
type feedChange struct {
	Seq       int64           `json:"seq"`
	Op        string          `json:"op"`
	ID        string          `json:"id"`
	Version   string          `json:"version"`
	DateAdded string          `json:"date_added"`
	Object    json.RawMessage `json:"object"`
}

// feedPage is a page of the feed.
type feedPage struct {
	Changes []feedChange `json:"changes"`
	More    bool         `json:"more"`
	Next    *int64       `json:"next"`
	Oldest  *int64       `json:"oldest"`
}

func changesPath(c string) string { return collectionPath(c) + "x-mitra-changes/" }

// feed reads one page.
func (c *client) feed(col string, after int64, limit int) feedPage {
	c.t.Helper()
	r := c.get(withQuery(changesPath(col), fmt.Sprintf("after=%d&limit=%d", after, limit))).ok(http.StatusOK)
	var p feedPage
	if err := json.Unmarshal(r.body, &p); err != nil {
		c.t.Fatalf("%s: %v: %s", r.req, err, r.body)
	}
	if p.Next == nil || p.Oldest == nil || p.Changes == nil {
		c.t.Fatalf("%s: next, oldest or changes missing: %s", r.req, r.body)
	}
	return p
}

// feedAll follows the feed from after with pages of limit, checking that
// every page with more=true is full, and returns the changes and the final
// next.
func (c *client) feedAll(col string, after int64, limit int) ([]feedChange, int64) {
	c.t.Helper()
	var out []feedChange
	for range 1000 {
		p := c.feed(col, after, limit)
		if p.More && len(p.Changes) != limit {
			c.t.Fatalf("%s: a page with more=true holds %d changes, want %d", c.name, len(p.Changes), limit)
		}
		if *p.Next < after {
			c.t.Fatalf("%s: next %d goes back from %d", c.name, *p.Next, after)
		}
		out = append(out, p.Changes...)
		if len(p.Changes) > 0 && *p.Next < p.Changes[len(p.Changes)-1].Seq {
			c.t.Fatalf("%s: next %d before the last change %d", c.name, *p.Next, p.Changes[len(p.Changes)-1].Seq)
		}
		after = *p.Next
		if !p.More {
			return out, after
		}
	}
	c.t.Fatal("too many pages")
	return nil, 0
}

func opsOf(chs []feedChange) []string {
	var out []string
	for _, c := range chs {
		out = append(out, c.Op+" "+c.ID+"@"+c.Version)
	}
	return out
}

func TestChangesOrderAndResumption(t *testing.T) {
	e := newEnv(t)
	w := e.user("writer", "analyst")
	c := e.collection("feed", []string{"writer"}, []string{"writer"})
	// Spacing kept: the feed must send the stored bytes, not a re-encoding.
	m1 := `{"type": "malware", "spec_version": "2.1", "id": "` + malwareID(1) + `", "created": "` + created + `", "modified": "2024-01-01T00:00:00.000Z", "name": "m", "is_family": false}`
	m2 := malware(1, "2024-02-01T00:00:00.000Z")
	revoked := strings.Replace(malware(1, "2024-03-01T00:00:00.000Z"), `"is_family":false`, `"is_family":false,"revoked":true`, 1)
	w.post(c.ID, m1, indicator(2, "2024-01-01T00:00:00.000Z"))
	w.post(c.ID, m2, ipv4(3))
	w.post(c.ID, revoked, indicator(2, "2024-05-01T00:00:00.000Z"))
	// One version of the indicator, then a whole object.
	w.do(http.MethodDelete, withQuery(objectPath(c.ID, indicatorID(2)), "match[version]=2024-01-01T00:00:00.000Z"), nil).want(http.StatusOK)
	w.do(http.MethodDelete, objectPath(c.Alias, ipv4ID(3)), nil).want(http.StatusOK)

	all, next := w.feedAll(c.Alias, 0, 1000)
	var ipVersion string
	for _, ch := range all {
		if ch.ID == ipv4ID(3) {
			ipVersion = ch.Version // the store names an SCO's version by its date_added
		}
	}
	want := []string{
		"add " + malwareID(1) + "@2024-01-01T00:00:00.000Z",
		"add " + indicatorID(2) + "@2024-01-01T00:00:00.000Z",
		"add " + malwareID(1) + "@2024-02-01T00:00:00.000Z",
		"add " + ipv4ID(3) + "@" + ipVersion,
		"add " + malwareID(1) + "@2024-03-01T00:00:00.000Z",
		"add " + indicatorID(2) + "@2024-05-01T00:00:00.000Z",
		"delete " + indicatorID(2) + "@2024-01-01T00:00:00.000Z",
		"delete " + ipv4ID(3) + "@" + ipVersion,
	}
	// The first add of the indicator was deleted since: the feed skips it
	// (its tombstone follows) and the same holds for the address.
	want = slices.Delete(want, 3, 4)
	want = slices.Delete(want, 1, 2)
	wantList(t, "feed", opsOf(all), want)
	for i, ch := range all {
		if i > 0 && ch.Seq <= all[i-1].Seq {
			t.Errorf("seq %d after %d", ch.Seq, all[i-1].Seq)
		}
		switch ch.Op {
		case "add":
			if !microRE.MatchString(ch.DateAdded) || ch.Object == nil {
				t.Errorf("add %d: date_added %q, object %s", ch.Seq, ch.DateAdded, ch.Object)
			}
		case "delete":
			if ch.Object != nil || ch.DateAdded != "" {
				t.Errorf("tombstone %d carries %s %q", ch.Seq, ch.Object, ch.DateAdded)
			}
		}
	}
	if string(all[0].Object) != m1 {
		t.Errorf("object not byte for byte:\n got %s\nwant %s", all[0].Object, m1)
	}
	if string(all[2].Object) != revoked {
		t.Errorf("revocation: %s", all[2].Object)
	}
	// 8 changes in all: 6 adds (two skipped since), 2 deletes.
	if next != 8 || all[len(all)-1].Seq != 8 {
		t.Errorf("next = %d, last seq %d, want 8", next, all[len(all)-1].Seq)
	}
	// Resumption from any position, in pages of any size, gives the rest.
	for after := int64(0); after <= 8; after++ {
		for _, limit := range []int{1, 2, 1000} {
			got, n := w.feedAll(c.ID, after, limit)
			var rest []feedChange
			for _, ch := range all {
				if ch.Seq > after {
					rest = append(rest, ch)
				}
			}
			wantList(t, fmt.Sprintf("after=%d limit=%d", after, limit), opsOf(got), opsOf(rest))
			if n != 8 {
				t.Errorf("after=%d limit=%d: next %d, want 8", after, limit, n)
			}
		}
	}
	// Up to date: an empty page that keeps the position.
	if p := w.feed(c.ID, 8, 10); len(p.Changes) != 0 || p.More || *p.Next != 8 || *p.Oldest != 1 {
		t.Errorf("at the end: %+v next %d oldest %d", p.Changes, *p.Next, *p.Oldest)
	}
}

func TestChangesBadRequests(t *testing.T) {
	e := newEnv(t)
	w := e.user("writer", "analyst")
	c := e.collection("feed", []string{"writer"}, []string{"writer"})
	for _, q := range []string{"after=-1", "after=x", "limit=0", "limit=-3", "limit=many"} {
		w.get(withQuery(changesPath(c.ID), q)).wantError(http.StatusBadRequest)
	}
	// limit is capped, not refused.
	w.get(withQuery(changesPath(c.ID), "limit=50000")).ok(http.StatusOK)
	e.anonymous().get(changesPath(c.ID)).wantError(http.StatusUnauthorized)
	w.get(changesPath("00000000-0000-4000-8000-000000000999")).wantError(http.StatusNotFound)
	w.do(http.MethodPost, changesPath(c.ID), []byte(`{}`)).wantError(http.StatusMethodNotAllowed)
}

func TestChangesLeak(t *testing.T) {
	w := newLeakWorld(t)
	// Deletes of every kind: A's AMBER (every energy reader saw it), A's
	// RED (only A), A's AMBER+STRICT naming B (A and B), B's own RED (only
	// B), C's RED in water (only C).
	del := func(c *client, col *store.Collection, label string) {
		t.Helper()
		c.do(http.MethodDelete, objectPath(col.ID, w.ids[label]), nil).want(http.StatusOK)
	}
	del(w.a, w.energy, "amber")
	del(w.a, w.energy, "red")
	del(w.a, w.energy, "amber+strict for B")
	del(w.b, w.energy, "B red")
	del(w.c, w.water, "C red")
	// A new version (a revocation) of a CLEAR object: every reader gets it.
	revoked := strings.Replace(leakIndicator(1, "", []string{tlpClear}, `,"revoked":true`), "2025-01-01T00:00:00.000Z\",\"name", "2025-06-01T00:00:00.000Z\",\"name", 1)
	w.a.post(w.energy.ID, revoked)

	everyoneInEnergy := []string{"clear", "white", "green", "amber1", "unmarked"}
	cases := []struct {
		who        *client
		collection *store.Collection
		adds       []string // labels of objects with an add; nil: collection invisible
		deletes    []string
	}{
		{w.a, w.energy, append(slices.Clone(everyoneInEnergy), "clear", "amber+strict", "red1", "red for B", "granular red", "green and red"),
			[]string{"amber", "red", "amber+strict for B"}},
		{w.b, w.energy, append(slices.Clone(everyoneInEnergy), "clear", "red for B", "B amber+strict"),
			[]string{"amber", "amber+strict for B", "B red"}},
		{w.c, w.energy, nil, nil},
		{w.d, w.energy, nil, nil},
		{w.a, w.water, nil, nil}, // a named recipient without a grant
		{w.b, w.water, []string{"C unmarked"}, nil},
		{w.c, w.water, []string{"C unmarked", "C amber+strict"}, []string{"C red"}},
		{w.d, w.water, nil, nil},
	}
	// The end of each log, as the organisation that sees most of it reads it.
	_, lastEnergy := w.a.feedAll(w.energy.ID, 0, 1000)
	_, lastWater := w.c.feedAll(w.water.ID, 0, 1000)
	last := map[string]int64{w.energy.ID: lastEnergy, w.water.ID: lastWater}
	missing := w.a.get(changesPath("00000000-0000-4000-8000-000000000999")).wantError(http.StatusNotFound)
	for _, tc := range cases {
		t.Run(tc.who.name+"/"+tc.collection.Title, func(t *testing.T) {
			if tc.adds == nil {
				got := tc.who.get(changesPath(tc.collection.ID)).wantError(http.StatusNotFound)
				if fmt.Sprint(got) != fmt.Sprint(missing) {
					t.Errorf("an unreadable collection answers %v, a missing one %v", got, missing)
				}
				return
			}
			// One change per page: a page with more=true is full.
			chs, next := tc.who.feedAll(tc.collection.ID, 0, 1)
			all, _ := tc.who.feedAll(tc.collection.ID, 0, 1000)
			wantList(t, "paged = whole", opsOf(chs), opsOf(all))
			var adds, deletes []string
			for _, ch := range chs {
				if ch.Op == "add" {
					adds = append(adds, ch.ID)
				} else {
					deletes = append(deletes, ch.ID)
				}
			}
			slices.Sort(adds)
			slices.Sort(deletes)
			wantList(t, "adds", adds, w.labels(tc.adds...))
			wantList(t, "deletes", deletes, w.labels(tc.deletes...))
			// Every reader reaches the same end position, past what it
			// may not see.
			if want := tc.who.feed(tc.collection.ID, next, 1); next == 0 || len(want.Changes) != 0 || *want.Next != next {
				t.Errorf("end position %d does not hold", next)
			}
			if next != last[tc.collection.ID] {
				t.Errorf("%s stops at %d, A at %d", tc.who.name, next, last[tc.collection.ID])
			}
		})
	}
}

func TestChangesPositionExpired(t *testing.T) {
	e := newEnv(t)
	w := e.user("writer", "analyst")
	c := e.collection("feed", []string{"writer"}, []string{"writer"})
	w.post(c.ID, malware(1, "2024-01-01T00:00:00.000Z"), malware(2, "2024-01-01T00:00:00.000Z"))
	time.Sleep(5 * time.Millisecond)
	cut := time.Now()
	time.Sleep(5 * time.Millisecond)
	w.post(c.ID, malware(3, "2024-01-01T00:00:00.000Z"))
	n, err := e.st.PruneChanges(e.ctx, cut)
	if err != nil || n != 2 {
		t.Fatalf("PruneChanges = %d, %v; want 2", n, err)
	}
	for _, after := range []int64{0, 1} {
		em := w.get(withQuery(changesPath(c.ID), fmt.Sprintf("after=%d", after))).wantError(http.StatusGone)
		if em["title"] != "position expired" || !strings.Contains(fmt.Sprint(em["description"]), "oldest change kept is 3") {
			t.Errorf("after=%d: %v", after, em)
		}
	}
	p := w.feed(c.ID, 2, 10)
	if *p.Oldest != 3 || len(p.Changes) != 1 || p.Changes[0].ID != malwareID(3) {
		t.Errorf("after=2: oldest %d, %v", *p.Oldest, opsOf(p.Changes))
	}
	// Everything pruned: the oldest is the next change to come.
	if _, err := e.st.PruneChanges(e.ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	w.get(withQuery(changesPath(c.ID), "after=2")).wantError(http.StatusGone)
	if p := w.feed(c.ID, 3, 10); *p.Oldest != 4 || len(p.Changes) != 0 || *p.Next != 3 {
		t.Errorf("after=3 with nothing kept: oldest %d next %d %v", *p.Oldest, *p.Next, opsOf(p.Changes))
	}
	w.post(c.ID, malware(4, "2024-01-01T00:00:00.000Z"))
	if p := w.feed(c.ID, 3, 10); len(p.Changes) != 1 || p.Changes[0].Seq != 4 {
		t.Errorf("after the pruning: %v", opsOf(p.Changes))
	}
}

func TestChangesClient(t *testing.T) {
	e := newEnv(t)
	e.user("writer", "analyst")
	c := e.collection("feed", []string{"writer"}, []string{"writer"})
	other := e.collection("other", []string{"writer"}, []string{"writer"})
	cl, err := taxiiclient.NewClient(e.ts.URL+"/api/", c.ID)
	if err != nil {
		t.Fatal(err)
	}
	cl.User, cl.Password = "writer", password
	m1 := malware(1, "2024-01-01T00:00:00.000Z")
	w := e.basic("writer", password)
	w.post(c.ID, m1, malware(2, "2024-01-01T00:00:00.000Z"))
	w.post(other.ID, malware(3, "2024-01-01T00:00:00.000Z"))
	p, err := cl.Changes(e.ctx, "", 0, 1)
	if err != nil || len(p.Changes) != 1 || !p.More || p.Next != 1 || p.Oldest != 1 || string(p.Changes[0].Object) != m1 || p.Changes[0].Op != "add" {
		t.Fatalf("Changes = %+v, %v", p, err)
	}
	p, err = cl.Changes(e.ctx, "", p.Next, 0)
	if err != nil || len(p.Changes) != 1 || p.More || p.Next != 2 || p.Changes[0].ID != malwareID(2) {
		t.Fatalf("second page = %+v, %v", p, err)
	}
	// Another collection of the same API root, by alias.
	p, err = cl.Changes(e.ctx, "other", 0, 10)
	if err != nil || len(p.Changes) != 1 || p.Changes[0].ID != malwareID(3) {
		t.Fatalf("other = %+v, %v", p, err)
	}
	if _, err := e.st.PruneChanges(e.ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	_, err = cl.Changes(e.ctx, "", 0, 10)
	var pe *taxiiclient.PositionExpiredError
	if !errors.Is(err, taxiiclient.ErrPositionExpired) || !errors.As(err, &pe) || pe.Oldest != 3 || pe.Latest != 2 {
		t.Fatalf("after pruning: %v (%+v)", err, pe)
	}
	_, err = cl.Changes(e.ctx, "missing", 0, 10)
	var te *taxiiclient.Error
	if !errors.As(err, &te) || te.Status != http.StatusNotFound || errors.Is(err, taxiiclient.ErrPositionExpired) {
		t.Fatalf("missing collection: %v", err)
	}
}
