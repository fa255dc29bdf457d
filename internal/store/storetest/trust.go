package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/store"
)

// from is Obj with the submitting organisation set.
func from(t testing.TB, raw []byte, submitter string) store.Object {
	o := Obj(t, raw)
	o.Submitter = submitter
	return o
}

func addOne(t *testing.T, s store.Store, cid string, o store.Object) store.AddResult {
	t.Helper()
	res, err := s.AddObjects(context.Background(), cid, []store.Object{o}, nil)
	if err != nil {
		t.Fatalf("add: %v", err)
	}
	return res[0]
}

// testOwnership: only the organisation that created an object may add
// versions of it, on the whole server (STIX 2.1 §3.6).
func testOwnership(t *testing.T, s store.Store) {
	ctx := context.Background()
	c1, c2 := newCollection(t, s), newCollection(t, s)
	const orgA, orgB = "identity--a", "identity--b"
	x := "indicator--" + uuid.NewString()
	t1, t2, t3 := base, base.Add(time.Minute), base.Add(2*time.Minute)

	if r := addOne(t, s, c1, from(t, Indicator(x, t1, t1), orgA)); r.Err != nil || r.Duplicate {
		t.Fatalf("first version: %+v", r)
	}
	if r := addOne(t, s, c1, from(t, Indicator(x, t1, t1), orgB)); !r.Duplicate || r.Err != nil {
		t.Errorf("identical copy from another organisation: %+v, want a duplicate", r)
	}
	st := &store.Status{ID: uuid.NewString(), Owner: "bob", CollectionID: c1, RequestTimestamp: base, Complete: true, TotalCount: 2}
	other := Indicator(x, t1, t1)
	other = []byte(strings.Replace(string(other), "10.0.0.1", "10.6.6.6", 1))
	res, err := s.AddObjects(ctx, c1, []store.Object{from(t, Indicator(x, t1, t2), orgB), from(t, other, orgB)}, st)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if !errors.Is(r.Err, store.ErrForbidden) || errors.Is(r.Err, store.ErrConflict) {
			t.Errorf("version %d from a non-owner: %v, want ErrForbidden", i, r.Err)
		}
	}
	got, err := s.GetStatus(ctx, st.ID)
	if err != nil || len(got.Failures) != 2 || len(got.Successes) != 0 {
		t.Fatalf("status = %+v, %v", got, err)
	}
	if got.Failures[0].Message != got.Failures[1].Message || strings.Contains(got.Failures[0].Message, "already") {
		t.Errorf("refusals must not reveal what is stored: %q, %q", got.Failures[0].Message, got.Failures[1].Message)
	}
	// Server-wide: the same id in another collection.
	if r := addOne(t, s, c2, from(t, Indicator(x, t1, t3), orgB)); !errors.Is(r.Err, store.ErrForbidden) {
		t.Errorf("version in another collection from a non-owner: %+v", r)
	}
	// Owner speaks for the owner (created_by_ref accepted by the server).
	o := from(t, Indicator(x, t1, t2), orgB)
	o.Owner = orgA
	if r := addOne(t, s, c1, o); r.Err != nil || r.Duplicate {
		t.Errorf("version with Owner = owner: %+v", r)
	}
	if r := addOne(t, s, c2, from(t, Indicator(x, t1, t3), orgA)); r.Err != nil {
		t.Errorf("owner's version in another collection: %+v", r)
	}
	eq(t, "c1 versions", versions(query(t, s, c1, store.Query{IDs: []string{x}, Versions: store.VersionFilter{All: true}})),
		[]string{x + "@" + t1.Format("2006-01-02T15:04:05.000Z"), x + "@" + t2.Format("2006-01-02T15:04:05.000Z")})

	// Owner set on a first version records that owner.
	y := "indicator--" + uuid.NewString()
	o = from(t, Indicator(y, t1, t1), orgB)
	o.Owner = orgA
	addOne(t, s, c1, o)
	// Unversioned objects: anyone adds, the first records the owner.
	sco := "ipv4-addr--" + uuid.NewString()
	addOne(t, s, c1, from(t, fmt.Appendf(nil, `{"type":"ipv4-addr","id":%q,"value":"10.0.0.1"}`, sco), orgB))
	if r := addOne(t, s, c1, from(t, fmt.Appendf(nil, `{"type":"ipv4-addr","id":%q,"value":"10.0.0.2"}`, sco), orgA)); r.Err != nil || r.Duplicate {
		t.Errorf("unversioned object from another organisation: %+v", r)
	}
	owners, err := s.ObjectOwners(ctx, []string{x, y, sco, "indicator--" + uuid.NewString()})
	if err != nil || len(owners) != 3 || owners[x] != orgA || owners[y] != orgA || owners[sco] != orgB {
		t.Errorf("owners = %v, %v", owners, err)
	}

	// Deletes: a non-owner removes nothing; the owner and the server may.
	if _, err := s.DeleteObject(ctx, c1, x, store.Query{Owner: orgB}); !errors.Is(err, store.ErrForbidden) {
		t.Errorf("delete by a non-owner: %v", err)
	}
	if n := len(query(t, s, c1, store.Query{IDs: []string{x}, Versions: store.VersionFilter{All: true}}).Entries); n != 2 {
		t.Errorf("refused delete removed versions: %d left", n)
	}
	if _, err := s.DeleteObject(ctx, c1, "indicator--"+uuid.NewString(), store.Query{Owner: orgB}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete of a missing object by a non-owner: %v, want ErrNotFound", err)
	}
	if n, err := s.DeleteObject(ctx, c1, x, store.Query{Owner: orgA}); err != nil || n != 2 {
		t.Errorf("delete by the owner: %d, %v", n, err)
	}
	if n, err := s.DeleteObject(ctx, c2, x, store.Query{}); err != nil || n != 1 {
		t.Errorf("delete by the server: %d, %v", n, err)
	}
	// The owner outlives its versions: the id stays the owner's.
	if r := addOne(t, s, c1, from(t, Indicator(x, t1, t3.Add(time.Minute)), orgB)); !errors.Is(r.Err, store.ErrForbidden) {
		t.Errorf("new version after deletion by a non-owner: %+v", r)
	}
}

// testOwnershipManyClaims: a transaction adds more first versions than one
// statement can claim owners for (a federation transaction holds tens of
// thousands): every new id gets the adder as its owner, and ids owned by
// another organisation, wherever they fall among the claims, keep their
// owner and refuse the version.
func testOwnershipManyClaims(t *testing.T, s store.Store) {
	ctx := context.Background()
	cid := newCollection(t, s)
	const orgA, orgB = "identity--a", "identity--b"
	const n = 12_500
	t1, t2 := base, base.Add(time.Minute)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "indicator--" + uuid.NewString()
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	taken := map[string]bool{sorted[3]: true, sorted[n/2]: true, sorted[n-2]: true}
	for id := range taken {
		if r := addOne(t, s, cid, from(t, Indicator(id, t1, t1), orgB)); r.Err != nil {
			t.Fatalf("B's version: %+v", r)
		}
	}
	objs := make([]store.Object, n)
	for i, id := range ids {
		objs[i] = from(t, Indicator(id, t1, t2), orgA)
	}
	var res []store.AddResult
	err := s.Update(ctx, cid, func(ctx context.Context, tx store.Tx) error {
		var err error
		res, err = tx.Add(ctx, objs)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if taken[ids[i]] != errors.Is(r.Err, store.ErrForbidden) || (!taken[ids[i]] && (r.Err != nil || r.Duplicate)) {
			t.Errorf("%s (B's: %v): %+v", ids[i], taken[ids[i]], r)
		}
	}
	owners, err := s.ObjectOwners(ctx, ids)
	if err != nil || len(owners) != n {
		t.Fatalf("%d owners, %v", len(owners), err)
	}
	for _, id := range ids {
		if want := map[bool]string{true: orgB, false: orgA}[taken[id]]; owners[id] != want {
			t.Errorf("owner of %s = %s, want %s", id, owners[id], want)
		}
	}
}

// testOwnershipRace: two organisations send first versions of the same
// ids at once, into one collection and into two: each id gets exactly one
// owner, and only that owner's version is stored.
func testOwnershipRace(t *testing.T, s store.Store) {
	ctx := context.Background()
	shared := newCollection(t, s)
	cols := map[string][2]string{"one collection": {shared, shared}, "two collections": {newCollection(t, s), newCollection(t, s)}}
	for name, cs := range cols {
		t.Run(name, func(t *testing.T) {
			const n = 30
			ids := make([]string, n)
			for i := range ids {
				ids[i] = "indicator--" + uuid.NewString()
			}
			orgs := [2]string{"identity--a", "identity--b"}
			results := make([][]store.AddResult, 2)
			var wg sync.WaitGroup
			for g := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range n {
						// Different content per organisation, same version.
						raw := Indicator(ids[i], base, base)
						raw = []byte(strings.Replace(string(raw), "10.0.0.1", fmt.Sprintf("10.0.%d.%d", g, i), 1))
						res, err := s.AddObjects(ctx, cs[g], []store.Object{from(t, raw, orgs[g])}, nil)
						if err != nil {
							t.Errorf("add: %v", err)
							return
						}
						results[g] = append(results[g], res[0])
					}
				}()
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			owners, err := s.ObjectOwners(ctx, ids)
			if err != nil {
				t.Fatal(err)
			}
			for i, id := range ids {
				w, ok := owners[id]
				if !ok {
					t.Errorf("%s: no owner", id)
					continue
				}
				for g := range 2 {
					r := results[g][i]
					wantOK := orgs[g] == w
					if (r.Err == nil) != wantOK || (r.Err != nil && !errors.Is(r.Err, store.ErrForbidden)) {
						t.Errorf("%s owned by %s: %s got %+v", id, w, orgs[g], r)
					}
				}
			}
		})
	}
}
