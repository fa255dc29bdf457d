package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/mitra-cert/mitra/internal/store/storetest"
)

// gated is the SQLite store whose AddGroup waits for a go-ahead and
// records the size of every group, so that the test can hold a group
// while others queue behind it.
type gated struct {
	*sqlite.Store
	gate    chan struct{}
	entered chan struct{}
	mu      sync.Mutex
	groups  []int
}

func (g *gated) AddGroup(ctx context.Context, collectionID string, reqs []*store.AddRequest) error {
	g.entered <- struct{}{}
	<-g.gate
	g.mu.Lock()
	g.groups = append(g.groups, len(reqs))
	g.mu.Unlock()
	return g.Store.AddGroup(ctx, collectionID, reqs)
}

func TestCommitterGroupsWaitingRequests(t *testing.T) {
	ctx := t.Context()
	s, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := &store.Collection{Title: "c"}
	if err := s.CreateCollection(ctx, c); err != nil {
		t.Fatal(err)
	}
	g := &gated{Store: s, gate: make(chan struct{}), entered: make(chan struct{}, 10)}
	cm := store.NewCommitter(g, 0)
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	req := func() *store.AddRequest {
		return &store.AddRequest{
			Objects: []store.Object{storetest.Obj(t, storetest.Indicator("indicator--"+uuid.NewString(), base, base))},
			Status:  &store.Status{ID: uuid.NewString(), CollectionID: c.ID, RequestTimestamp: base, Complete: true},
		}
	}
	results := make(chan error, 10)
	add := func(ctx context.Context, r *store.AddRequest) { results <- cm.Add(ctx, c.ID, r) }
	// The first request leads and is held at the gate; three more queue.
	go add(ctx, req())
	<-g.entered
	var queuedReqs []*store.AddRequest
	for range 3 {
		r := req()
		queuedReqs = append(queuedReqs, r)
		go add(ctx, r)
	}
	// A fourth queued request is withdrawn by its context: it must store
	// nothing.
	cctx, cancel := context.WithCancel(ctx)
	withdrawn := req()
	go add(cctx, withdrawn)
	waitFor(t, func() bool { return queued(cm, c.ID) == 4 })
	cancel()
	waitFor(t, func() bool { return queued(cm, c.ID) == 3 })
	g.gate <- struct{}{} // the first group
	g.gate <- struct{}{} // the three queued requests, together
	var errs []error
	for range 5 {
		errs = append(errs, <-results)
	}
	canceled := 0
	for _, err := range errs {
		if errors.Is(err, context.Canceled) {
			canceled++
		} else if err != nil {
			t.Errorf("add: %v", err)
		}
	}
	if canceled != 1 {
		t.Errorf("%d requests cancelled, want 1", canceled)
	}
	if len(g.groups) != 2 || g.groups[0] != 1 || g.groups[1] != 3 {
		t.Errorf("groups %v, want [1 3]", g.groups)
	}
	for _, r := range queuedReqs {
		if len(r.Results) != 1 || r.Results[0].Err != nil {
			t.Errorf("results %+v", r.Results)
		}
		if _, err := s.GetStatus(ctx, r.Status.ID); err != nil {
			t.Errorf("status of a grouped request: %v", err)
		}
	}
	if _, err := s.GetStatus(ctx, withdrawn.Status.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("status of the withdrawn request: %v, want not found", err)
	}
	page, err := s.QueryObjects(ctx, c.ID, store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != 4 {
		t.Errorf("%d objects stored, want 4", len(page.Entries))
	}
}

func queued(cm *store.Committer, collectionID string) int { return cm.Waiting(collectionID) }

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}
