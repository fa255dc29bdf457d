package admin_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/admin"
	"github.com/mitra-cert/mitra/internal/store"
)

func TestRetentionPrunesOldStatusesAndAudit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	now := time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC)
	for i, age := range []time.Duration{40 * 24 * time.Hour, 10 * 24 * time.Hour} {
		st := &store.Status{ID: []string{"2d086da7-4bdc-4f91-900e-d77486753710", "6a1c2c77-3b5e-4d87-9b1c-0f0e7c1d2a3b"}[i],
			Owner: "alice", RequestTimestamp: now.Add(-age), Complete: true}
		if err := e.st.SaveStatus(e.ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.st.AppendAudit(e.ctx,
		store.AuditRecord{At: now.Add(-400 * 24 * time.Hour), Principal: "old", Action: "objects.add"},
		store.AuditRecord{At: now.Add(-100 * 24 * time.Hour), Principal: "recent", Action: "objects.add"}); err != nil {
		t.Fatal(err)
	}
	statuses, audit, err := admin.Prune(e.ctx, e.st, admin.Retention{Statuses: 30 * 24 * time.Hour, Audit: 365 * 24 * time.Hour}, now, "test")
	if err != nil || statuses != 1 || audit != 1 {
		t.Fatalf("pruned %d statuses, %d audit records, %v; want 1, 1", statuses, audit, err)
	}
	if _, err := e.st.GetStatus(e.ctx, "2d086da7-4bdc-4f91-900e-d77486753710"); err == nil {
		t.Error("the 40-day-old status survived")
	}
	if _, err := e.st.GetStatus(e.ctx, "6a1c2c77-3b5e-4d87-9b1c-0f0e7c1d2a3b"); err != nil {
		t.Errorf("the 10-day-old status: %v", err)
	}
	recs, err := e.st.ListAudit(e.ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var principals []string
	for _, r := range recs {
		principals = append(principals, r.Principal)
	}
	if len(recs) != 2 || recs[0].Action != "admin.retention.prune" || recs[1].Principal != "recent" {
		t.Errorf("audit after pruning: %v", principals)
	}
	// Zero keeps everything.
	if s, a, err := admin.Prune(e.ctx, e.st, admin.Retention{}, now.Add(10*365*24*time.Hour), "test"); s != 0 || a != 0 || err != nil {
		t.Errorf("zero retention pruned %d, %d, %v", s, a, err)
	}
}

func TestRetentionPrunesChangeLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := &store.Collection{Title: "feed"}
	if err := e.st.CreateCollection(e.ctx, c); err != nil {
		t.Fatal(err)
	}
	raw := []byte(`{"type":"malware","spec_version":"2.1","id":"malware--2d086da7-4bdc-4f91-900e-d77486753710","created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","name":"m","is_family":false}`)
	obj := store.Object{ID: "malware--2d086da7-4bdc-4f91-900e-d77486753710", Type: "malware", SpecVersion: "2.1",
		Version: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), VersionRaw: "2024-01-01T00:00:00.000Z", Raw: raw}
	if _, err := e.st.AddObjects(e.ctx, c.ID, []store.Object{obj}, nil); err != nil {
		t.Fatal(err)
	}
	r := admin.Retention{Changes: 90 * 24 * time.Hour}
	if _, _, err := admin.Prune(e.ctx, e.st, r, time.Now(), "test"); err != nil {
		t.Fatal(err)
	}
	if p, err := e.st.ChangeFeed(e.ctx, c.ID, 0, 0, nil); err != nil || len(p.Changes) != 1 {
		t.Fatalf("a recent change was pruned: %+v, %v", p, err)
	}
	if _, _, err := admin.Prune(e.ctx, e.st, r, time.Now().Add(91*24*time.Hour), "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.ChangeFeed(e.ctx, c.ID, 0, 0, nil); !errors.Is(err, store.ErrPositionExpired) {
		t.Errorf("after 91 days: %v, want ErrPositionExpired", err)
	}
	recs, err := e.st.ListAudit(e.ctx, store.AuditFilter{Action: "admin.retention.prune"})
	if err != nil || len(recs) != 1 || !strings.Contains(recs[0].Detail, "1 change-log records") {
		t.Errorf("audit: %+v, %v", recs, err)
	}
}
