package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

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
	a := &store.Session{Hash: "ha", User: "alice", CSRF: "ca", Expires: t0}
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
	if got.User != "alice" || got.CSRF != "ca" || !got.Expires.Equal(t0) || got.Created.IsZero() {
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
