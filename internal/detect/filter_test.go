package detect_test

import (
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/detect"
	"github.com/mitra-cert/mitra/internal/pattern"
)

// TestIndicatorFilterRetires: an indicator StoreIndicators.Filter rejects
// (the lifecycle retired it) is not loaded nor active; when the filter
// changes its mind it is loaded again at the next refilter, and not
// before FilterEvery has passed.
func TestIndicatorFilterRetires(t *testing.T) {
	e := newTEnv(t)
	const keep, retire = "indicator--c1111111-1111-4111-8111-111111111111", "indicator--c2222222-2222-4222-8222-222222222222"
	addLocal(t, e.st, e.intel.ID, e.orgA.ID, indicator(keep, "[domain-name:value = 'keep.example']", "2024-01-01T00:00:00.000Z", nil))
	addLocal(t, e.st, e.intel.ID, e.orgA.ID, indicator(retire, "[domain-name:value = 'retire.example']", "2024-01-01T00:00:00.000Z", nil))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	retired := map[string]bool{retire: true}
	s := &detect.StoreIndicators{Store: e.st, Principal: &access.Principal{Organisation: e.orgA.ID, Role: access.RoleAnalyst},
		Now: func() time.Time { return now }, Filter: func(id string) bool { return !retired[id] }, FilterEvery: time.Minute}
	m := pattern.NewMatcher(pattern.MatcherOptions{})
	if err := s.Sync(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 1 || !s.Active(keep, now) || s.Active(retire, now) {
		t.Fatalf("after sync: %d loaded, keep %v retire %v", s.Len(), s.Active(keep, now), s.Active(retire, now))
	}
	if err := s.Poll(t.Context(), m); err != nil { // the first refilter
		t.Fatal(err)
	}
	delete(retired, retire)
	now = now.Add(30 * time.Second)
	if err := s.Poll(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 1 {
		t.Fatalf("refiltered before FilterEvery: %d loaded", s.Len())
	}
	now = now.Add(time.Minute)
	if err := s.Poll(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 2 || !s.Active(retire, now) {
		t.Fatalf("after refilter: %d loaded", s.Len())
	}
}
