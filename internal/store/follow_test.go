package store_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/mitra-cert/mitra/internal/store"
)

// changeLog is a change log per collection; a collection missing from it
// answers ErrNotFound.
type changeLog map[string][]store.Change

func (l changeLog) Changes(_ context.Context, cid string, after int64, limit int) ([]store.Change, error) {
	chs, ok := l[cid]
	if !ok {
		return nil, store.ErrNotFound
	}
	var out []store.Change
	for _, ch := range chs {
		if ch.Seq > after && len(out) < limit {
			out = append(out, ch)
		}
	}
	return out, nil
}

// TestFollower: a collection is dropped and loaded whole when first seen;
// after that only the wanted objects its change log names since are
// loaded, in id order; a forgotten (or reset) collection is loaded whole
// again, and a collection gone from the store is passed over.
func TestFollower(t *testing.T) {
	ctx := context.Background()
	log := changeLog{"c1": {{Seq: 1, ObjectID: "indicator--b"}, {Seq: 2, ObjectID: "malware--x"}}}
	var calls []string
	f := &store.Follower{
		Store: log,
		Wants: func(id string) bool { return strings.HasPrefix(id, "indicator--") },
		Load: func(_ context.Context, cid string, ids []string) error {
			if ids == nil {
				calls = append(calls, "load "+cid+" all")
			} else {
				calls = append(calls, "load "+cid+" "+strings.Join(ids, ","))
			}
			return nil
		},
		Drop: func(cid string) { calls = append(calls, "drop "+cid) },
	}
	poll := func(want ...string) {
		t.Helper()
		calls = nil
		if err := f.Poll(ctx, []string{"c1"}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(calls, want) {
			t.Errorf("poll: %q, want %q", calls, want)
		}
	}
	poll("drop c1", "load c1 all")
	poll() // nothing new
	log["c1"] = append(log["c1"], store.Change{Seq: 3, ObjectID: "indicator--c"}, store.Change{Seq: 4, ObjectID: "malware--y"},
		store.Change{Seq: 5, ObjectID: "indicator--a"}, store.Change{Seq: 6, ObjectID: "indicator--c"})
	poll("load c1 indicator--a,indicator--c")
	poll()
	f.Forget("c1")
	poll("drop c1", "load c1 all")
	f.Reset()
	poll("drop c1", "load c1 all")
	delete(log, "c1") // deleted between ListCollections and Changes
	poll()
}
