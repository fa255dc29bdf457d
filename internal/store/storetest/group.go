package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/store"
)

// testGroup checks store.GroupAdder: several requests in one transaction
// behave as consecutive AddObjects calls, each with its own results,
// status and audit records.
func testGroup(t *testing.T, s store.Store) {
	g, ok := s.(store.GroupAdder)
	if !ok {
		t.Skip("the backend does not implement store.GroupAdder")
	}
	ctx := context.Background()
	c := &store.Collection{Title: "group"}
	if err := s.CreateCollection(ctx, c); err != nil {
		t.Fatal(err)
	}
	shared := "indicator--" + uuid.NewString()
	t1, t2 := base, base.Add(time.Hour)
	stored := Obj(t, Indicator(shared, t1, t1))
	if _, err := s.AddObjects(ctx, c.ID, []store.Object{stored}, nil); err != nil {
		t.Fatal(err)
	}
	fresh := "indicator--" + uuid.NewString()
	conflicting := Obj(t, append([]byte(nil), Indicator(shared, t1, t1)...))
	conflicting.Raw = []byte(string(conflicting.Raw[:len(conflicting.Raw)-1]) + `,"name":"other"}`)
	reqs := []*store.AddRequest{
		// A new object and a new version of a stored one.
		{Objects: []store.Object{Obj(t, Indicator(fresh, t1, t1)), Obj(t, Indicator(shared, t1, t2))}},
		// The object the first request adds (a duplicate, seen within
		// the transaction) and a conflict with the stored version.
		{Objects: []store.Object{Obj(t, Indicator(fresh, t1, t1)), conflicting}},
		// Nothing to store: a request whose objects were all refused
		// before the store still gets its status saved.
		{},
	}
	for i, r := range reqs {
		r.Status = &store.Status{ID: uuid.NewString(), Owner: "u", CollectionID: c.ID, RequestTimestamp: base, Complete: true, TotalCount: len(r.Objects)}
		r.Audit = func(r *store.AddRequest) []store.AuditRecord {
			return []store.AuditRecord{{Principal: fmt.Sprintf("user%d", i), Action: "objects.add", Collection: c.ID,
				Detail: fmt.Sprintf("%d successes, %d results", len(r.Status.Successes), len(r.Results))}}
		}
	}
	if err := g.AddGroup(ctx, c.ID, reqs); err != nil {
		t.Fatal(err)
	}
	if r := reqs[0].Results; len(r) != 2 || r[0].Err != nil || r[0].Duplicate || r[1].Err != nil || r[1].Duplicate {
		t.Errorf("first request's results: %+v", r)
	}
	if r := reqs[1].Results; len(r) != 2 || !r[0].Duplicate || !errors.Is(r[1].Err, store.ErrConflict) {
		t.Errorf("second request's results: %+v", r)
	}
	if len(reqs[2].Results) != 0 {
		t.Errorf("third request's results: %+v", reqs[2].Results)
	}
	for i, want := range [][2]int{{2, 0}, {1, 1}, {0, 0}} {
		st, err := s.GetStatus(ctx, reqs[i].Status.ID)
		if err != nil {
			t.Fatalf("status of request %d: %v", i, err)
		}
		if len(st.Successes) != want[0] || len(st.Failures) != want[1] {
			t.Errorf("status of request %d: %d successes, %d failures; want %d, %d", i, len(st.Successes), len(st.Failures), want[0], want[1])
		}
	}
	recs, err := s.ListAudit(ctx, store.AuditFilter{Action: "objects.add"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range recs {
		got[r.Principal] = r.Detail
	}
	for i, want := range []string{"2 successes, 2 results", "1 successes, 2 results", "0 successes, 0 results"} {
		if p := fmt.Sprintf("user%d", i); got[p] != want {
			t.Errorf("audit of request %d: %q, want %q", i, got[p], want)
		}
	}
	// Versions: both versions of shared, the fresh object once.
	page, err := s.QueryObjects(ctx, c.ID, store.Query{Versions: store.VersionFilter{All: true}})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for i, e := range page.Entries {
		count[e.ID]++
		if i > 0 && !e.DateAdded.After(page.Entries[i-1].DateAdded) {
			t.Errorf("date_added not increasing at %d", i)
		}
	}
	if count[shared] != 2 || count[fresh] != 1 || len(page.Entries) != 3 {
		t.Errorf("stored versions: %v", count)
	}
	// The change log has one record per stored version, in order.
	ch, err := s.Changes(ctx, c.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch) != 3 {
		t.Errorf("%d change records, want 3", len(ch))
	}
	// An unknown collection fails the whole group.
	if err := g.AddGroup(ctx, uuid.NewString(), []*store.AddRequest{{Objects: []store.Object{Obj(t, Indicator("indicator--"+uuid.NewString(), t1, t1))}}}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown collection: %v, want ErrNotFound", err)
	}
}

// testCommitter runs many concurrent requests through a store.Committer:
// every request gets its own results and a saved status, nothing is lost or
// stored twice, and date_added stays strictly increasing.
func testCommitter(t *testing.T, s store.Store) {
	g, ok := s.(store.GroupAdder)
	if !ok {
		t.Skip("the backend does not implement store.GroupAdder")
	}
	ctx := context.Background()
	c := &store.Collection{Title: "committer"}
	if err := s.CreateCollection(ctx, c); err != nil {
		t.Fatal(err)
	}
	cm := store.NewCommitter(g, 25)
	const clients, perClient, per = 6, 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, clients*perClient)
	for k := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perClient {
				r := &store.AddRequest{Status: &store.Status{ID: uuid.NewString(), CollectionID: c.ID, RequestTimestamp: base, Complete: true}}
				for range per {
					r.Objects = append(r.Objects, Obj(t, Indicator("indicator--"+uuid.NewString(), base, base)))
				}
				// A duplicate inside the request: refused as one, not twice.
				r.Objects = append(r.Objects, r.Objects[0])
				if err := cm.Add(ctx, c.ID, r); err != nil {
					errs <- fmt.Errorf("client %d: %w", k, err)
					return
				}
				if len(r.Results) != per+1 || r.Results[0].Duplicate || !r.Results[per].Duplicate {
					errs <- fmt.Errorf("client %d: results %+v", k, r.Results)
					return
				}
				st, err := s.GetStatus(ctx, r.Status.ID)
				if err != nil || len(st.Successes) != per+1 {
					errs <- fmt.Errorf("client %d: status %+v, %v", k, st, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var after time.Time
	n := 0
	for {
		p, err := s.QueryObjects(ctx, c.ID, store.Query{AddedAfter: after, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Entries {
			if !e.DateAdded.After(after) {
				t.Fatalf("date_added not increasing: %v after %v", e.DateAdded, after)
			}
			after = e.DateAdded
			n++
		}
		if !p.More {
			break
		}
	}
	if n != clients*perClient*per {
		t.Errorf("%d objects stored, want %d", n, clients*perClient*per)
	}
}

// testGroupOwnership checks that a group applies the ownership rules
// (contract.go) across its requests: the first request's new object is
// owned by its submitter, and a later request of the same group from
// another organisation may not version it.
func testGroupOwnership(t *testing.T, s store.Store) {
	g, ok := s.(store.GroupAdder)
	if !ok {
		t.Skip("the backend does not implement store.GroupAdder")
	}
	ctx := context.Background()
	c := &store.Collection{Title: "group ownership"}
	if err := s.CreateCollection(ctx, c); err != nil {
		t.Fatal(err)
	}
	const orgA, orgB = "identity--a", "identity--b"
	x := "indicator--" + uuid.NewString()
	t1, t2 := base, base.Add(time.Minute)
	reqs := []*store.AddRequest{
		{Objects: []store.Object{from(t, Indicator(x, t1, t1), orgA)}},
		{Objects: []store.Object{from(t, Indicator(x, t1, t2), orgB)}},
		{Objects: []store.Object{from(t, Indicator(x, t1, t2.Add(time.Minute)), orgA)}},
	}
	if err := g.AddGroup(ctx, c.ID, reqs); err != nil {
		t.Fatal(err)
	}
	if r := reqs[0].Results[0]; r.Err != nil || r.Duplicate {
		t.Errorf("first version: %+v", r)
	}
	if r := reqs[1].Results[0]; !errors.Is(r.Err, store.ErrForbidden) {
		t.Errorf("a version from another organisation: %v, want ErrForbidden", r.Err)
	}
	if r := reqs[2].Results[0]; r.Err != nil || r.Duplicate {
		t.Errorf("a version from the owner: %+v", r)
	}
	if o, ok := s.(store.Owners); ok {
		owners, err := o.ObjectOwners(ctx, []string{x})
		if err != nil || owners[x] != orgA {
			t.Errorf("owner of %s: %q, %v; want %s", x, owners[x], err, orgA)
		}
	}
}
