package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/store"
)

// testAuditPages: a newest-first listing paged with Before visits every
// record once.
func testAuditPages(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 25
	for i := range n {
		if err := s.AppendAudit(ctx, store.AuditRecord{Principal: "p", Action: "objects.read", Path: "/", Detail: string(rune('a' + i))}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	var before int64
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatal("paging does not end")
		}
		recs, err := s.ListAudit(ctx, store.AuditFilter{Limit: 4, Before: before})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			got = append(got, r.Detail)
		}
		before = recs[len(recs)-1].Seq
	}
	var want []string
	for i := n - 1; i >= 0; i-- {
		want = append(want, string(rune('a'+i)))
	}
	eq(t, "details, newest first", got, want)
}

// testRetention: PruneAudit and PruneStatuses remove what is older than
// the cutoff and nothing else.
func testRetention(t *testing.T, s store.Store) {
	ctx := context.Background()
	old, cut, recent := base, base.Add(24*time.Hour), base.Add(48*time.Hour)
	if err := s.AppendAudit(ctx,
		store.AuditRecord{At: old, Principal: "p", Action: "objects.read", Path: "/old"},
		store.AuditRecord{At: old.Add(time.Hour), Principal: "p", Action: "objects.read", Path: "/old2"},
		store.AuditRecord{At: cut, Principal: "p", Action: "objects.read", Path: "/cut"},
		store.AuditRecord{At: recent, Principal: "p", Action: "objects.read", Path: "/recent"},
	); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneAudit(ctx, cut)
	if err != nil || n != 2 {
		t.Errorf("PruneAudit = %d, %v; want 2", n, err)
	}
	recs, err := s.ListAudit(ctx, store.AuditFilter{})
	if err != nil || len(recs) != 2 || recs[0].Path != "/recent" || recs[1].Path != "/cut" {
		t.Errorf("audit after pruning: %+v, %v", recs, err)
	}
	if n, err := s.PruneAudit(ctx, cut); err != nil || n != 0 {
		t.Errorf("second PruneAudit = %d, %v", n, err)
	}

	cid := newCollection(t, s)
	ids := map[time.Time]string{}
	for _, at := range []time.Time{old, cut, recent} {
		st := &store.Status{ID: uuid.NewString(), Owner: "u", CollectionID: cid, RequestTimestamp: at, Complete: true}
		if err := s.SaveStatus(ctx, st); err != nil {
			t.Fatal(err)
		}
		ids[at] = st.ID
	}
	if n, err := s.PruneStatuses(ctx, cut); err != nil || n != 1 {
		t.Errorf("PruneStatuses = %d, %v; want 1", n, err)
	}
	if _, err := s.GetStatus(ctx, ids[old]); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("old status: %v, want ErrNotFound", err)
	}
	for _, at := range []time.Time{cut, recent} {
		if _, err := s.GetStatus(ctx, ids[at]); err != nil {
			t.Errorf("status of %s: %v", at, err)
		}
	}
}

// testPing: a freshly opened store is healthy; a cancelled context is not.
func testPing(t *testing.T, s store.Store) {
	if err := s.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping with a cancelled context succeeded")
	}
}
