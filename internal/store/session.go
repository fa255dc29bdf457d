package store

import (
	"context"
	"time"
)

// Session is a signed-in console session (issue 17). The store keeps only
// the hash of the session's secret, so a copy of the database does not
// sign anyone in.
type Session struct {
	// Hash is the SHA-256 (hex) of the secret the browser holds.
	Hash string
	User string
	// CSRF is the token every state-changing request of the session must
	// carry.
	CSRF    string
	Created time.Time
	Expires time.Time
}

// Sessions keeps console sessions and each user's console language.
type Sessions interface {
	// CreateSession stores s; ErrConflict when its hash is taken.
	CreateSession(ctx context.Context, s *Session) error
	// GetSession returns the session with hash, expired or not (the caller
	// compares Expires with its clock); ErrNotFound when there is none.
	GetSession(ctx context.Context, hash string) (*Session, error)
	// DeleteSession removes the session with hash (signing out); deleting
	// an absent session is not an error.
	DeleteSession(ctx context.Context, hash string) error
	// DeleteUserSessions removes every session of user.
	DeleteUserSessions(ctx context.Context, user string) error
	// PruneSessions removes the sessions that expired before t and returns
	// how many.
	PruneSessions(ctx context.Context, t time.Time) (int, error)
	// SetUserLanguage records user's console language (a BCP 47 tag).
	SetUserLanguage(ctx context.Context, user, lang string) error
	// UserLanguage returns user's console language, "" when never set.
	UserLanguage(ctx context.Context, user string) (string, error)
}
