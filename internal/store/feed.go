package store

import (
	"context"
	"errors"
	"time"
)

// ErrPositionExpired: a change-feed position is older than the change log
// keeps (retention pruned the changes after it); the reader must
// resynchronise fully.
var ErrPositionExpired = errors.New("position expired")

// FeedEntry is one change-log record as the federation feed serves it.
type FeedEntry struct {
	Change
	// Entry is the version the change is about, the input of the access
	// decision: for an add, the stored version with its body (Raw); for a
	// delete, what was recorded about the deleted version when it was
	// deleted (no body).
	Entry Entry
}

// FeedPage is one page of a collection's change feed.
type FeedPage struct {
	Changes []FeedEntry
	// More is true when a visible change follows the last one.
	More bool
	// Next is the position to resume after: the last change of the page
	// when More, else the last change scanned, visible or not.
	Next int64
	// Oldest is the oldest sequence number the log still keeps (the next
	// one to be written when the log is empty).
	Oldest int64
	// Latest is the newest sequence number written (0 when none): where a
	// reader that must resynchronise resumes after its full read.
	Latest int64
}

// Feed serves a collection's change log to federation peers.
type Feed interface {
	// ChangeFeed returns up to limit changes with Seq > after, in Seq
	// order, that visible admits (all when visible is nil). Hidden changes
	// are skipped as if absent: the page is still filled up to limit. An
	// add whose version has been deleted since is skipped: its tombstone
	// follows. ErrNotFound when the collection does not exist; when
	// retention has pruned changes after after (after < Oldest-1), an error
	// wrapping ErrPositionExpired with the page's Oldest set.
	ChangeFeed(ctx context.Context, collectionID string, after int64, limit int, visible func(*Entry) bool) (*FeedPage, error)
}

// DeletionFeed serves only the delete records of a collection's change
// log: what a federation link that sends deletions reads, without the
// cost of reading every added version.
type DeletionFeed interface {
	// DeletionFeed is ChangeFeed restricted to delete records (visible
	// sees only those). When More is false, Next is past every change the
	// log held when the call began, adds included, so that a reader does
	// not scan the same adds again.
	DeletionFeed(ctx context.Context, collectionID string, after int64, limit int, visible func(*Entry) bool) (*FeedPage, error)
}

// ChangeRetention prunes the change log.
type ChangeRetention interface {
	// PruneChanges removes, in every collection, the change records up to
	// and including the last one recorded before before, so that what is
	// kept is always an unbroken run of sequence numbers up to the newest:
	// a feed reader either gets every change after its position or
	// ErrPositionExpired. It returns how many records it removed.
	PruneChanges(ctx context.Context, before time.Time) (int64, error)
}
