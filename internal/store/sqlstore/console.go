package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
)

// This file implements store.Sessions for the console (consolecounts.go
// its counts).

var _ store.Sessions = (*Store)(nil)

// CreateSession implements store.Sessions.
func (s *Store) CreateSession(ctx context.Context, ss *store.Session) error {
	if ss.Hash == "" || ss.User == "" || ss.CSRF == "" || ss.Expires.IsZero() {
		return fmt.Errorf("session needs a hash, a user, a CSRF token and an expiry: %w", store.ErrInvalid)
	}
	ss.Created = fromMicros(micros(s.now()))
	_, err := s.db.Exec(ctx, `INSERT INTO console_sessions (hash, user_name, csrf, credential, created, expires) VALUES (?, ?, ?, ?, ?, ?)`,
		ss.Hash, ss.User, ss.CSRF, ss.Credential, micros(ss.Created), micros(ss.Expires))
	if s.d.IsUnique(err) {
		return fmt.Errorf("session: %w", store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// GetSession implements store.Sessions.
func (s *Store) GetSession(ctx context.Context, hash string) (*store.Session, error) {
	var ss store.Session
	var created, expires int64
	err := s.db.QueryRow(ctx, `SELECT hash, user_name, csrf, credential, created, expires FROM console_sessions WHERE hash = ?`, hash).
		Scan(&ss.Hash, &ss.User, &ss.CSRF, &ss.Credential, &created, &expires)
	if noRows(err) {
		return nil, fmt.Errorf("session: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get session: %w", err)
	}
	ss.Created, ss.Expires = fromMicros(created), fromMicros(expires)
	return &ss, nil
}

// DeleteSession implements store.Sessions.
func (s *Store) DeleteSession(ctx context.Context, hash string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM console_sessions WHERE hash = ?`, hash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteUserSessions implements store.Sessions.
func (s *Store) DeleteUserSessions(ctx context.Context, user string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM console_sessions WHERE user_name = ?`, user); err != nil {
		return fmt.Errorf("delete sessions: %w", err)
	}
	return nil
}

// PruneSessions implements store.Sessions.
func (s *Store) PruneSessions(ctx context.Context, t time.Time) (int, error) {
	n, err := s.db.Exec(ctx, `DELETE FROM console_sessions WHERE expires < ?`, micros(t))
	if err != nil {
		return 0, fmt.Errorf("prune sessions: %w", err)
	}
	return int(n), nil
}

// SetUserLanguage implements store.Sessions.
func (s *Store) SetUserLanguage(ctx context.Context, user, lang string) error {
	if user == "" {
		return fmt.Errorf("language needs a user: %w", store.ErrInvalid)
	}
	// Update first, insert when absent: portable across both dialects.
	n, err := s.db.Exec(ctx, `UPDATE console_prefs SET lang = ? WHERE user_name = ?`, lang, user)
	if err != nil {
		return fmt.Errorf("set language: %w", err)
	}
	if n > 0 {
		return nil
	}
	_, err = s.db.Exec(ctx, `INSERT INTO console_prefs (user_name, lang) VALUES (?, ?)`, user, lang)
	if s.d.IsUnique(err) {
		// Set concurrently: the other write wins, as a later one would.
		return nil
	}
	if err != nil {
		return fmt.Errorf("set language: %w", err)
	}
	return nil
}

// UserLanguage implements store.Sessions.
func (s *Store) UserLanguage(ctx context.Context, user string) (string, error) {
	var lang string
	err := s.db.QueryRow(ctx, `SELECT lang FROM console_prefs WHERE user_name = ?`, user).Scan(&lang)
	if noRows(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("user language: %w", err)
	}
	return lang, nil
}
