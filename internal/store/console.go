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
	CSRF string
	// Credential is a digest of the user's credentials at sign-in (the
	// console compares it on every request, so that a password change
	// ends the sessions opened before it).
	Credential string
	Created    time.Time
	Expires    time.Time
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

// ObjectCount is how many objects of a collection share the properties
// the access decision reads (type, TLP, submitter, recipients): the
// console counts what a user may read by deciding once per group instead
// of once per object.
type ObjectCount struct {
	Type       string
	TLP        int
	Submitter  string
	Recipients []string
	// Day is the UTC day the objects were added, for CountSightingsPerDay.
	Day time.Time
	N   int
}

// ObjectCounts aggregates a collection's objects for the console's dashboard.
type ObjectCounts interface {
	// CountObjects counts the latest versions (those TAXII serves by
	// default) of the objects of a collection, grouped as ObjectCount.
	CountObjects(ctx context.Context, collectionID string) ([]ObjectCount, error)
	// CountSightingsPerDay counts the latest versions of the sightings
	// added to a collection on the UTC days that start at or after since
	// (the counts are kept per day: a since within a day starts at the
	// next), grouped as ObjectCount and by UTC day. Only sightings are
	// counted per day, so that other objects' writes do not pay for it.
	CountSightingsPerDay(ctx context.Context, collectionID string, since time.Time) ([]ObjectCount, error)
}
