package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/store"
)

// testSessions: console sessions are kept by hash until deleted or pruned
// after expiry; a user's sessions go together; the console language is
// kept per user and replaced.
func testSessions(t *testing.T, s store.Store) {
	ctx := context.Background()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := s.CreateSession(ctx, &store.Session{Hash: "h", User: "u"}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("session without CSRF token and expiry: %v", err)
	}
	a := &store.Session{Hash: "ha", User: "alice", CSRF: "ca", Credential: "cred", Expires: t0}
	b := &store.Session{Hash: "hb", User: "alice", CSRF: "cb", Expires: t0.Add(time.Hour)}
	c := &store.Session{Hash: "hc", User: "bob", CSRF: "cc", Expires: t0.Add(2 * time.Hour)}
	for _, ss := range []*store.Session{a, b, c} {
		if err := s.CreateSession(ctx, ss); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateSession(ctx, &store.Session{Hash: "ha", User: "mallory", CSRF: "x", Expires: t0}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second session with the same hash: %v", err)
	}
	got, err := s.GetSession(ctx, "ha")
	if err != nil {
		t.Fatal(err)
	}
	if got.User != "alice" || got.CSRF != "ca" || got.Credential != "cred" || !got.Expires.Equal(t0) || got.Created.IsZero() {
		t.Errorf("session = %+v", got)
	}
	if n, err := s.PruneSessions(ctx, t0.Add(time.Minute)); err != nil || n != 1 {
		t.Errorf("prune = %d, %v; want 1", n, err)
	}
	if _, err := s.GetSession(ctx, "ha"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("pruned session: %v", err)
	}
	if err := s.DeleteSession(ctx, "hb"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSession(ctx, "hb"); err != nil {
		t.Errorf("deleting an absent session: %v", err)
	}
	if _, err := s.GetSession(ctx, "hb"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted session: %v", err)
	}
	if err := s.DeleteUserSessions(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSession(ctx, "hc"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("session of a signed-out user: %v", err)
	}

	if l, err := s.UserLanguage(ctx, "alice"); err != nil || l != "" {
		t.Errorf("language never set = %q, %v", l, err)
	}
	for _, l := range []string{"id", "ru"} {
		if err := s.SetUserLanguage(ctx, "alice", l); err != nil {
			t.Fatal(err)
		}
		if got, err := s.UserLanguage(ctx, "alice"); err != nil || got != l {
			t.Errorf("language = %q, %v; want %q", got, err, l)
		}
	}
	if l, _ := s.UserLanguage(ctx, "bob"); l != "" {
		t.Errorf("another user's language = %q", l)
	}
}

// testObjectCounts: the counts group the latest versions of a collection's
// objects by type, TLP, submitter and recipients (older versions and other
// collections do not count), and per UTC day of their addition.
func testObjectCounts(t *testing.T, s store.Store) {
	ctx := context.Background()
	cid, other := newCollection(t, s), newCollection(t, s)
	t0 := time.Now().UTC().Add(-time.Hour)
	add := func(c string, raw []byte, tlp int, sub string, rcpt ...string) {
		t.Helper()
		o := Obj(t, raw)
		o.TLP, o.Submitter, o.Recipients = tlp, sub, rcpt
		if _, err := s.AddObjects(ctx, c, []store.Object{o}, nil); err != nil {
			t.Fatal(err)
		}
	}
	id1, id2, id3 := "indicator--"+uuid.NewString(), "indicator--"+uuid.NewString(), "indicator--"+uuid.NewString()
	add(cid, Indicator(id1, t0, t0), 2, "identity--a")
	add(cid, Indicator(id1, t0, t0.Add(time.Minute)), 2, "identity--a") // a new version: still one object
	add(cid, Indicator(id2, t0, t0), 2, "identity--a")
	add(cid, Indicator(id3, t0, t0), 5, "identity--a", "identity--b")
	add(other, Indicator("indicator--"+uuid.NewString(), t0, t0), 2, "identity--a")
	sighting := fmt.Appendf(nil, `{"type":"sighting","spec_version":"2.1","id":"sighting--%s","created":%q,"modified":%q,"sighting_of_ref":%q}`,
		uuid.NewString(), t0.Format(time.RFC3339Nano), t0.Format(time.RFC3339Nano), id1)
	add(cid, sighting, 0, "identity--b")

	got, err := s.CountObjects(ctx, cid)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"indicator/2/identity--a/[]": 2, "indicator/5/identity--a/[identity--b]": 1, "sighting/0/identity--b/[]": 1}
	if len(got) != len(want) {
		t.Errorf("counts = %+v", got)
	}
	for _, c := range got {
		k := fmt.Sprintf("%s/%d/%s/%v", c.Type, c.TLP, c.Submitter, c.Recipients)
		if c.Recipients == nil {
			k = fmt.Sprintf("%s/%d/%s/[]", c.Type, c.TLP, c.Submitter)
		}
		if want[k] != c.N {
			t.Errorf("count %s = %d, want %d", k, c.N, want[k])
		}
	}
	days, err := s.CountSightingsPerDay(ctx, cid, time.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	if len(days) != 1 || days[0].N != 1 || days[0].Submitter != "identity--b" || !(days[0].Day.Equal(today) || days[0].Day.Equal(today.Add(-24*time.Hour))) {
		t.Errorf("sightings per day = %+v", days)
	}
	if days, err := s.CountSightingsPerDay(ctx, cid, time.Now().Add(time.Hour)); err != nil || len(days) != 0 {
		t.Errorf("sightings added in the future = %+v, %v", days, err)
	}
}
