package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// This file declares what the store adds for ownership (STIX 2.1 §3.6),
// marking resolution, account changes, retention and transactional writers
// (the detector's exactly-once counts, federation's link cursors). All are
// part of Store; storetest checks them on every backend.

// ErrForbidden: the caller's organisation does not own the object it tries
// to version or delete. Only the creator of an object may create new
// versions of it (STIX 2.1 §3.6).
var ErrForbidden = errors.New("forbidden")

// Ownership rules, applied by every backend inside the collection's write
// transaction (decided in PlanAdd where possible):
//
//   - An object id has one owner on the whole server (across collections):
//     the Object.Owner of its first stored version (Submitter when Owner is
//     empty), recorded in the store.
//   - A new version (a different version of an id already owned) whose Owner
//     (or Submitter) differs from the recorded owner is refused with an
//     AddResult.Err wrapping ErrForbidden. A duplicate (identical content) is
//     still a duplicate, whoever sends it.
//   - Unversioned objects (Version zero: most SCOs, whose ids are derived
//     from their content, STIX 2.1 §2.9) may be added by anyone; their owner
//     is still recorded for deletes.
//   - DeleteObject with Query.Owner set refuses with ErrForbidden (and
//     removes nothing) when the object's recorded owner differs; an empty
//     Query.Owner deletes regardless (server moderation).

// Markings resolves marking-definition objects stored on the server.
type Markings interface {
	// MarkingDefinitions returns the raw body of the latest stored version
	// of each of ids that is a stored marking-definition, in any
	// collection. Ids not stored are absent from the map.
	MarkingDefinitions(ctx context.Context, ids []string) (map[string][]byte, error)
}

// Owners reports who owns stored objects.
type Owners interface {
	// ObjectOwners returns the recorded owner organisation of each of ids
	// that has one.
	ObjectOwners(ctx context.Context, ids []string) (map[string]string, error)
}

// AccountChanges changes existing accounts and groups.
type AccountChanges interface {
	// UpdateUser replaces the organisation, role and password hash of the
	// user named u.Name; ErrNotFound when there is none, ErrNotFound (wrapped)
	// when u.Organisation is not an organisation.
	UpdateUser(ctx context.Context, u *User) error
	// SetGroupOrgs replaces the members of a group; unknown organisations
	// give ErrNotFound.
	SetGroupOrgs(ctx context.Context, groupID string, orgs []string) error
}

// Retention removes old records so that a server running for years does
// not grow without bound.
type Retention interface {
	// PruneAudit removes audit records older than before and returns how
	// many were removed.
	PruneAudit(ctx context.Context, before time.Time) (int64, error)
	// PruneStatuses removes TAXII status resources requested before before.
	PruneStatuses(ctx context.Context, before time.Time) (int64, error)
}

// Health reports whether the store can serve.
type Health interface {
	// Ping returns nil when the database answers and its schema is the one
	// this binary expects.
	Ping(ctx context.Context) error
}

// Updater runs read-modify-write transactions on one collection, for
// writers that must commit objects together with their own progress (the
// detector's applied stream positions and merged counts, federation's link
// cursors), so that a crash never separates the two.
type Updater interface {
	// Update runs fn in one write transaction holding the collection's
	// write lock (the same lock AddObjects takes, so date_added stays
	// strictly increasing in commit order). fn's error rolls everything
	// back. Several processes may call Update on one database.
	Update(ctx context.Context, collectionID string, fn func(ctx context.Context, tx Tx) error) error
}

// Tx is one write transaction of Updater.Update.
type Tx interface {
	// Latest returns the latest version (the one served by default, with
	// its body) of each of ids stored in the collection, including versions
	// added earlier in this transaction.
	Latest(ctx context.Context, ids []string) (map[string]Entry, error)
	// Add stores objects exactly as AddObjects does, in this transaction.
	Add(ctx context.Context, objs []Object) ([]AddResult, error)
	// Delete deletes versions of objectID in the collection exactly as
	// DeleteObject does (all of them when q.Versions is zero; q.Owner and
	// q.Visible as there; a tombstone per version in the change log), in
	// this transaction. ErrNotFound and ErrForbidden leave the
	// transaction usable.
	Delete(ctx context.Context, objectID string, q Query) (int, error)
	// Cursor returns the value stored under key (nil when none). Keys are
	// global to the store, not per collection; callers namespace them
	// ("detect/<org>/<stream>", "federation/<link>").
	Cursor(ctx context.Context, key string) ([]byte, error)
	// SetCursor stores value under key, in this transaction.
	SetCursor(ctx context.Context, key string, value []byte) error
}

// CheckUserUpdate checks an UpdateUser request before it reaches the
// database: the user is named and the organisation given (UpdateUser
// replaces it; an empty one would not be an organisation).
func CheckUserUpdate(u *User) error {
	if u.Name == "" {
		return fmt.Errorf("user name is empty: %w", ErrInvalid)
	}
	if u.Organisation == "" {
		return fmt.Errorf("user %q: organisation is empty: %w", u.Name, ErrInvalid)
	}
	return nil
}
