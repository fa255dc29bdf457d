package storetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/store"
)

// testChangeFeedConcurrent: a follower of the change feed, reading while
// several writers add and delete, gets every change once, in sequence
// order, with no gap, and skips exactly the changes its filter hides.
func testChangeFeedConcurrent(t *testing.T, s store.Store) {
	cid := newCollection(t, s)
	const writers, batches, per = 3, 10, 5
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range batches {
				objs := make([]store.Object, per)
				for i := range objs {
					objs[i] = Obj(t, Indicator("indicator--"+uuid.NewString(), base, base))
					objs[i].Submitter = "org-" + string(rune('a'+i%2))
				}
				if _, err := s.AddObjects(ctx, cid, objs, nil); err != nil {
					errs <- err
					return
				}
				if _, err := s.DeleteObject(ctx, cid, objs[0].ID, store.Query{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	// Only org-a's versions are visible (half of them by submitter).
	visible := func(e *store.Entry) bool { return e.Submitter == "org-a" }
	var seen []store.FeedEntry
	var after int64
	finished := false
	for {
		p, err := s.ChangeFeed(ctx, cid, after, 3, visible)
		if err != nil {
			t.Fatal(err)
		}
		if p.More && len(p.Changes) != 3 {
			t.Fatalf("a page with More holds %d changes", len(p.Changes))
		}
		for _, c := range p.Changes {
			if c.Seq <= after {
				t.Fatalf("change %d after position %d", c.Seq, after)
			}
			after = c.Seq
			seen = append(seen, c)
		}
		after = p.Next
		if !p.More {
			if finished {
				break
			}
			select {
			case <-done:
				finished = true
			default:
				time.Sleep(time.Millisecond)
			}
		}
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// What a reader that sees everything finds at the end, in one page.
	all, err := s.ChangeFeed(ctx, cid, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	total := writers * batches * (per + 1)
	if after != int64(total) || all.Next != int64(total) {
		t.Errorf("follower ends at %d, full read at %d, want %d", after, all.Next, total)
	}
	var want []int64
	for _, c := range all.Changes {
		if c.Entry.Submitter == "org-a" {
			want = append(want, c.Seq)
		}
	}
	// Adds of versions deleted since are skipped by both readers; a
	// follower may have read some of them before the delete.
	got := map[int64]bool{}
	for _, c := range seen {
		if c.Entry.Submitter != "org-a" {
			t.Errorf("change %d of %q leaked", c.Seq, c.Entry.Submitter)
		}
		got[c.Seq] = true
	}
	for _, seq := range want {
		if !got[seq] {
			t.Errorf("follower missed change %d", seq)
		}
	}
}

// testChangeRetention: pruning keeps an unbroken run of the newest
// changes, even where record times are out of sequence order, and a
// position before it gets ErrPositionExpired.
func testChangeRetention(t *testing.T, s store.Store) {
	imp, ok := s.(store.Importer)
	if !ok {
		t.Skip("the store cannot import change records")
	}
	ctx := context.Background()
	cid := newCollection(t, s)
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	at := []int{1, 5, 2, 6, 7} // seq 2 is later than seq 3
	var chs []store.Change
	for i, h := range at {
		chs = append(chs, store.Change{Seq: int64(i + 1), Op: store.OpDelete, ObjectID: "indicator--" + uuid.NewString(), VersionRaw: "2024-01-01T00:00:00.000Z", At: t0.Add(time.Duration(h) * time.Hour)})
	}
	if err := imp.ImportChanges(ctx, cid, chs); err != nil {
		t.Fatal(err)
	}
	if p, err := s.ChangeFeed(ctx, cid, 0, 0, nil); err != nil || p.Oldest != 1 || len(p.Changes) != 5 {
		t.Fatalf("before pruning: %+v, %v", p, err)
	}
	// Imported tombstones carry no decision inputs: nobody may read them.
	for _, c := range mustFeed(t, s, cid, 0).Changes {
		if c.Entry.Submitter != "" || c.Entry.TLP != 6 {
			t.Errorf("imported tombstone %d: submitter %q, TLP %d; want none, 6", c.Seq, c.Entry.Submitter, c.Entry.TLP)
		}
	}
	n, err := s.PruneChanges(ctx, t0.Add(3*time.Hour))
	if err != nil || n != 3 {
		t.Fatalf("PruneChanges = %d, %v; want 3 (seq 1 to 3)", n, err)
	}
	if p, err := s.ChangeFeed(ctx, cid, 1, 0, nil); !errors.Is(err, store.ErrPositionExpired) || p == nil || p.Oldest != 4 {
		t.Errorf("after=1: %+v, %v; want ErrPositionExpired, oldest 4", p, err)
	}
	if p, err := s.ChangeFeed(ctx, newCollection(t, s), 0, 0, nil); err != nil || p.Oldest != 1 || p.Latest != 0 || p.Next != 0 {
		t.Errorf("empty log: %+v, %v", p, err)
	}
	p := mustFeed(t, s, cid, 3)
	if p.Oldest != 4 || len(p.Changes) != 2 || p.Changes[0].Seq != 4 || p.Next != 5 {
		t.Errorf("after=3: oldest %d, next %d, %d changes", p.Oldest, p.Next, len(p.Changes))
	}
	if n, err := s.PruneChanges(ctx, t0); err != nil || n != 0 {
		t.Errorf("nothing older: %d, %v", n, err)
	}
	if _, err := s.ChangeFeed(ctx, uuid.NewString(), 0, 0, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing collection: %v", err)
	}
}

func mustFeed(t *testing.T, s store.Store, cid string, after int64) *store.FeedPage {
	t.Helper()
	p, err := s.ChangeFeed(context.Background(), cid, after, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testTombstoneInputs: a delete records the deleted version's decision
// inputs; the change log hands them out (export) and an import keeps them.
func testTombstoneInputs(t *testing.T, s store.Store) {
	ctx := context.Background()
	cid := newCollection(t, s)
	o := Obj(t, Indicator("indicator--"+uuid.NewString(), base, base))
	o.Submitter, o.TLP, o.Recipients = "org-a", 5, []string{"org-b"}
	if _, err := s.AddObjects(ctx, cid, []store.Object{o}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteObject(ctx, cid, o.ID, store.Query{}); err != nil {
		t.Fatal(err)
	}
	chs, err := s.Changes(ctx, cid, 0, 0)
	if err != nil || len(chs) != 2 || chs[0].Deleted != nil || chs[1].Deleted == nil {
		t.Fatalf("changes = %+v, %v", chs, err)
	}
	check := func(what string, d store.Entry) {
		t.Helper()
		if d.Type != "indicator" || d.Submitter != "org-a" || d.TLP != 5 || len(d.Recipients) != 1 || d.Recipients[0] != "org-b" {
			t.Errorf("%s: %+v", what, d)
		}
	}
	check("Changes", *chs[1].Deleted)
	check("ChangeFeed", mustFeed(t, s, cid, 0).Changes[0].Entry)
	imp, ok := s.(store.Importer)
	if !ok {
		return
	}
	other := newCollection(t, s)
	if err := imp.ImportChanges(ctx, other, chs); err != nil {
		t.Fatal(err)
	}
	p := mustFeed(t, s, other, 0)
	if len(p.Changes) != 1 || p.Changes[0].Op != store.OpDelete { // the add's version is not in other
		t.Fatalf("imported feed: %+v", p.Changes)
	}
	check("imported", p.Changes[0].Entry)
}

// testDeletionFeed: the deletion feed serves exactly the change feed's
// visible delete records, page by page, and moves a reader past the adds
// after the last delete so that they are not scanned again.
func testDeletionFeed(t *testing.T, s store.Store) {
	df, ok := s.(store.DeletionFeed)
	if !ok {
		t.Skip("the store has no deletion feed")
	}
	ctx := context.Background()
	cid := newCollection(t, s)
	var objs []store.Object
	for i := range 12 {
		id := "indicator--" + uuid.NewString()
		for v := range 2 {
			o := Obj(t, Indicator(id, base, base.Add(time.Duration(v)*time.Hour)))
			o.Submitter, o.TLP = "org-a", 1
			if i%3 == 0 {
				o.Submitter = "org-b"
			}
			objs = append(objs, o)
		}
	}
	if _, err := s.AddObjects(ctx, cid, objs, nil); err != nil {
		t.Fatal(err)
	}
	// Whole objects and single versions, of both submitters.
	for i := 0; i < len(objs); i += 4 {
		q := store.Query{}
		if i%8 == 0 {
			q.Versions = store.VersionFilter{Exact: []time.Time{base}}
		}
		if _, err := s.DeleteObject(ctx, cid, objs[i].ID, q); err != nil {
			t.Fatal(err)
		}
	}
	// Adds after the last delete, which the deletion feed steps over.
	if _, err := s.AddObjects(ctx, cid, []store.Object{Obj(t, Indicator("indicator--"+uuid.NewString(), base, base))}, nil); err != nil {
		t.Fatal(err)
	}
	visible := func(e *store.Entry) bool { return e.Submitter == "org-a" }
	full := mustFeed(t, s, cid, 0)
	var want []int64
	for _, c := range full.Changes {
		if c.Op == store.OpDelete && visible(&c.Entry) {
			want = append(want, c.Seq)
		}
	}
	if len(want) < 3 {
		t.Fatalf("only %d visible deletes to read", len(want))
	}
	var got []int64
	after := int64(0)
	for range 100 {
		p, err := df.DeletionFeed(ctx, cid, after, 2, visible)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range p.Changes {
			if c.Op != store.OpDelete || c.Entry.Submitter != "org-a" || c.Entry.Type != "indicator" || c.Entry.Raw != nil {
				t.Errorf("change %d: %s of %q (%s)", c.Seq, c.Op, c.Entry.Submitter, c.Entry.Type)
			}
			got = append(got, c.Seq)
		}
		if p.Next < after {
			t.Fatalf("position went back from %d to %d", after, p.Next)
		}
		after = p.Next
		if !p.More {
			if p.Next != p.Latest || p.Latest != full.Latest {
				t.Errorf("last page: next %d, latest %d; want both %d", p.Next, p.Latest, full.Latest)
			}
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("deletion feed served %v, want %v", got, want)
	}
	// Nothing after the position: the page is empty and stays put.
	if p, err := df.DeletionFeed(ctx, cid, full.Latest, 0, nil); err != nil || len(p.Changes) != 0 || p.Next != full.Latest {
		t.Errorf("at the end: %+v, %v", p, err)
	}
	if _, err := df.DeletionFeed(ctx, uuid.NewString(), 0, 0, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing collection: %v", err)
	}
}
