package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/store"
)

// counterNote is a note whose x_count a writer increments, one version per
// increment.
func counterNote(id string, n int) []byte {
	mod := base.Add(time.Duration(n) * time.Second).Format("2006-01-02T15:04:05.000Z")
	return fmt.Appendf(nil, `{"type":"note","spec_version":"2.1","id":%q,"created":%q,"modified":%q,"content":"counter","object_refs":["indicator--00000000-0000-4000-8000-000000000000"],"x_count":%d}`,
		id, base.Format("2006-01-02T15:04:05.000Z"), mod, n)
}

// testUpdate: Update runs read-modify-write transactions that see their own
// writes, roll back on error and respect ownership.
func testUpdate(t *testing.T, s store.Store) {
	ctx := context.Background()
	cid := newCollection(t, s)
	id := "note--" + uuid.NewString()
	const org = "identity--a"
	err := s.Update(ctx, cid, func(ctx context.Context, tx store.Tx) error {
		if c, err := tx.Cursor(ctx, "test/none"); err != nil || c != nil {
			return fmt.Errorf("missing cursor: %q, %v", c, err)
		}
		res, err := tx.Add(ctx, []store.Object{from(t, counterNote(id, 0), org)})
		if err != nil || res[0].Err != nil {
			return fmt.Errorf("add: %v %v", res, err)
		}
		res, err = tx.Add(ctx, []store.Object{from(t, counterNote(id, 1), org), from(t, counterNote(id, 0), org)})
		if err != nil || res[0].Err != nil || !res[1].Duplicate {
			return fmt.Errorf("second add: %+v %v", res, err)
		}
		latest, err := tx.Latest(ctx, []string{id, "note--" + uuid.NewString()})
		if err != nil || len(latest) != 1 || string(latest[id].Raw) != string(counterNote(id, 1)) || latest[id].Submitter != org {
			return fmt.Errorf("latest in the transaction: %+v, %v", latest, err)
		}
		return tx.SetCursor(ctx, "test/c", []byte("1"))
	})
	if err != nil {
		t.Fatal(err)
	}
	all := query(t, s, cid, store.Query{Versions: store.VersionFilter{All: true}})
	if len(all.Entries) != 2 || !all.Entries[1].DateAdded.After(all.Entries[0].DateAdded) {
		t.Errorf("versions after update: %v", versions(all))
	}

	// An error rolls everything back.
	boom := errors.New("boom")
	err = s.Update(ctx, cid, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.Add(ctx, []store.Object{from(t, counterNote(id, 2), org)}); err != nil {
			return err
		}
		if err := tx.SetCursor(ctx, "test/c", []byte("2")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("update error: %v, want boom", err)
	}
	if n := len(query(t, s, cid, store.Query{Versions: store.VersionFilter{All: true}}).Entries); n != 2 {
		t.Errorf("rolled-back update left %d versions, want 2", n)
	}
	// Ownership holds inside Update; the cursor kept its committed value.
	err = s.Update(ctx, cid, func(ctx context.Context, tx store.Tx) error {
		res, err := tx.Add(ctx, []store.Object{from(t, counterNote(id, 3), "identity--b")})
		if err != nil {
			return err
		}
		if !errors.Is(res[0].Err, store.ErrForbidden) {
			return fmt.Errorf("version from a non-owner in Update: %+v", res[0])
		}
		if c, err := tx.Cursor(ctx, "test/c"); err != nil || string(c) != "1" {
			return fmt.Errorf("cursor after rollback: %q, %v", c, err)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	if err := s.Update(ctx, uuid.NewString(), func(context.Context, store.Tx) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update of a missing collection: %v", err)
	}
}

// testUpdateConcurrent: concurrent read-modify-write transactions on a
// counter object and a cursor lose no increment.
func testUpdateConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	cid := newCollection(t, s)
	id := "note--" + uuid.NewString()
	const org = "identity--a"
	const writers, each = 4, 6
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				err := s.Update(ctx, cid, func(ctx context.Context, tx store.Tx) error {
					n := 0
					latest, err := tx.Latest(ctx, []string{id})
					if err != nil {
						return err
					}
					if e, ok := latest[id]; ok {
						var v struct {
							N int `json:"x_count"`
						}
						if err := json.Unmarshal(e.Raw, &v); err != nil {
							return err
						}
						n = v.N
					}
					c, err := tx.Cursor(ctx, "test/counter")
					if err != nil {
						return err
					}
					m := 0
					if c != nil {
						if m, err = strconv.Atoi(string(c)); err != nil {
							return err
						}
					}
					res, err := tx.Add(ctx, []store.Object{from(t, counterNote(id, n+1), org)})
					if err != nil {
						return err
					}
					if res[0].Err != nil || res[0].Duplicate {
						return fmt.Errorf("increment to %d: %+v", n+1, res[0])
					}
					return tx.SetCursor(ctx, "test/counter", []byte(strconv.Itoa(m+1)))
				})
				if err != nil {
					t.Errorf("update: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	const want = writers * each
	all := query(t, s, cid, store.Query{Versions: store.VersionFilter{All: true}, WithBody: true})
	if len(all.Entries) != want || string(all.Entries[want-1].Raw) != string(counterNote(id, want)) {
		t.Errorf("%d versions (want %d), last %s", len(all.Entries), want, all.Entries[len(all.Entries)-1].Raw)
	}
	err := s.Update(ctx, cid, func(ctx context.Context, tx store.Tx) error {
		c, err := tx.Cursor(ctx, "test/counter")
		if err != nil || string(c) != strconv.Itoa(want) {
			return fmt.Errorf("cursor = %q, %v; want %d", c, err, want)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// testUpdateDelete: Tx.Delete deletes inside the transaction exactly as
// DeleteObject does (tombstones in the change log, the owner check, the
// latest version moving back), commits with the rest of the transaction
// and rolls back with it.
func testUpdateDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	cid := newCollection(t, s)
	const org = "identity--a"
	id, other := "note--"+uuid.NewString(), "note--"+uuid.NewString()
	if _, err := s.AddObjects(ctx, cid, []store.Object{from(t, counterNote(id, 0), org), from(t, counterNote(id, 1), org),
		from(t, counterNote(id, 2), org), from(t, counterNote(other, 0), org)}, nil); err != nil {
		t.Fatal(err)
	}
	before, err := s.Changes(ctx, cid, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	last := before[len(before)-1].Seq

	// An error after the delete rolls it back.
	boom := errors.New("boom")
	err = s.Update(ctx, cid, func(ctx context.Context, tx store.Tx) error {
		if n, err := tx.Delete(ctx, id, store.Query{}); err != nil || n != 3 {
			return fmt.Errorf("delete: %d, %v", n, err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("update: %v, want boom", err)
	}
	if n := len(query(t, s, cid, store.Query{IDs: []string{id}, Versions: store.VersionFilter{All: true}}).Entries); n != 3 {
		t.Fatalf("rolled-back delete left %d versions, want 3", n)
	}

	// Refusals leave the transaction usable; a version delete moves the
	// latest version back, seen by Latest in the same transaction; a whole
	// delete goes with the cursor.
	v2 := base.Add(2 * time.Second)
	err = s.Update(ctx, cid, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.Delete(ctx, "note--"+uuid.NewString(), store.Query{}); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("delete of a missing object: %v", err)
		}
		if _, err := tx.Delete(ctx, id, store.Query{Owner: "identity--b"}); !errors.Is(err, store.ErrForbidden) {
			return fmt.Errorf("delete by a non-owner: %v", err)
		}
		if n, err := tx.Delete(ctx, id, store.Query{Owner: org, Versions: store.VersionFilter{Exact: []time.Time{v2}}}); err != nil || n != 1 {
			return fmt.Errorf("delete of the last version: %d, %v", n, err)
		}
		latest, err := tx.Latest(ctx, []string{id})
		if err != nil || string(latest[id].Raw) != string(counterNote(id, 1)) {
			return fmt.Errorf("latest after deleting the last version: %s, %v", latest[id].Raw, err)
		}
		if _, err := tx.Add(ctx, []store.Object{from(t, counterNote(other, 1), org)}); err != nil {
			return err
		}
		if n, err := tx.Delete(ctx, other, store.Query{}); err != nil || n != 2 {
			return fmt.Errorf("delete of a version added in the transaction: %d, %v", n, err)
		}
		return tx.SetCursor(ctx, "test/delete", []byte("done"))
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := func(n int) string { return base.Add(time.Duration(n) * time.Second).Format("2006-01-02T15:04:05.000Z") }
	if got, want := versions(query(t, s, cid, store.Query{Versions: store.VersionFilter{All: true}})), []string{id + "@" + ts(0), id + "@" + ts(1)}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("versions after Tx.Delete: %v, want %v", got, want)
	}
	after, err := s.Changes(ctx, cid, last, 100)
	if err != nil {
		t.Fatal(err)
	}
	// One tombstone for id's last version, an add and two tombstones for
	// other, in order with increasing seq.
	var ops []string
	for i, c := range after {
		ops = append(ops, string(c.Op)+" "+c.ObjectID)
		if c.Seq != last+int64(i)+1 {
			t.Errorf("change %d has seq %d, want %d", i, c.Seq, last+int64(i)+1)
		}
		if c.Op == store.OpDelete && (c.Deleted == nil || c.Deleted.Submitter != org || c.Deleted.Type != "note") {
			t.Errorf("tombstone %+v lacks what the feed's policy needs", c)
		}
	}
	want := []string{"delete " + id, "add " + other, "delete " + other, "delete " + other}
	if fmt.Sprint(ops) != fmt.Sprint(want) {
		t.Errorf("changes after Tx.Delete: %v, want %v", ops, want)
	}
	err = s.Update(ctx, cid, func(ctx context.Context, tx store.Tx) error {
		if c, err := tx.Cursor(ctx, "test/delete"); err != nil || string(c) != "done" {
			return fmt.Errorf("cursor: %q, %v", c, err)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// testUpdateLatestThenAdd: Add in a transaction that read the latest
// versions first (as a federation pull does, and the store reuses what
// Latest read) decides duplicates, new versions and the latest flag as
// AddObjects does, and sees what the transaction added since.
func testUpdateLatestThenAdd(t *testing.T, s store.Store) {
	ctx := context.Background()
	cid := newCollection(t, s)
	const org = "identity--a"
	x, y := "note--"+uuid.NewString(), "note--"+uuid.NewString()
	for n := range 2 {
		if res, err := s.AddObjects(ctx, cid, []store.Object{from(t, counterNote(x, n), org)}, nil); err != nil || res[0].Err != nil {
			t.Fatalf("add: %+v %v", res, err)
		}
	}
	err := s.Update(ctx, cid, func(ctx context.Context, tx store.Tx) error {
		latest, err := tx.Latest(ctx, []string{x, y})
		if err != nil || len(latest) != 1 || string(latest[x].Raw) != string(counterNote(x, 1)) {
			return fmt.Errorf("latest: %+v, %v", latest, err)
		}
		res, err := tx.Add(ctx, []store.Object{from(t, counterNote(x, 1), org), from(t, counterNote(x, 2), org),
			from(t, counterNote(y, 0), org), from(t, counterNote(y, 0), org)})
		if err != nil {
			return err
		}
		if !res[0].Duplicate || res[1].Err != nil || res[1].Duplicate || res[2].Err != nil || res[2].Duplicate || !res[3].Duplicate {
			return fmt.Errorf("add after latest: %+v", res)
		}
		// What the transaction added is read again: y is stored now.
		if _, err := tx.Latest(ctx, []string{y}); err != nil {
			return err
		}
		if res, err = tx.Add(ctx, []store.Object{from(t, counterNote(y, 0), org), from(t, counterNote(x, 3), org)}); err != nil {
			return err
		}
		if !res[0].Duplicate || res[1].Err != nil || res[1].Duplicate {
			return fmt.Errorf("second add: %+v", res)
		}
		// No Latest since the last Add: nothing stale is reused.
		if res, err = tx.Add(ctx, []store.Object{from(t, counterNote(x, 3), org)}); err != nil || !res[0].Duplicate {
			return fmt.Errorf("third add: %+v %v", res, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	all := query(t, s, cid, store.Query{Versions: store.VersionFilter{All: true}})
	if len(all.Entries) != 5 {
		t.Errorf("versions = %v, want 4 of x and 1 of y", versions(all))
	}
	latest := query(t, s, cid, store.Query{})
	got := map[string]string{}
	for _, e := range latest.Entries {
		got[e.ID] = e.VersionRaw
	}
	if len(got) != 2 || got[x] != base.Add(3*time.Second).Format("2006-01-02T15:04:05.000Z") || got[y] != base.Format("2006-01-02T15:04:05.000Z") {
		t.Errorf("latest versions = %v", got)
	}
}
