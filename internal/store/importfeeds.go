package store

import (
	"context"
	"time"
)

// ImportFeed is a feed pulled on a schedule into a collection (issue 16):
// its source, format and import options, the user it imports as, and what
// its last run saw.
type ImportFeed struct {
	Name   string
	URL    string
	Format string
	// Collection is the collection id the feed imports into.
	Collection string
	// User and Organisation are who the feed imports as: the user who
	// added it, so that the collection's grants and ownership apply.
	User         string
	Organisation string
	// Options are the import options, as JSON (owned by the importer).
	Options  []byte
	Interval time.Duration
	// ETag and LastModified are the validators of the last fetched body.
	ETag         string
	LastModified string
	LastRun      time.Time
	NextRun      time.Time
	// LastReport is the last run's report, as JSON.
	LastReport []byte
	Created    time.Time
}

// WarningList is a stored list of values that must never become active
// indicators.
type WarningList struct {
	Name        string
	Kind        string // cidr, hostname, string, substring
	Description string
	Entries     []string
	Updated     time.Time
}

// InactiveFlag says that an object was kept but must not be an active
// indicator: one of its values is on a warning list.
type InactiveFlag struct {
	ObjectID   string
	Collection string
	List       string
	Value      string
	Reason     string
	At         time.Time
}

// ImportFeeds keeps scheduled feeds and warning lists.
type ImportFeeds interface {
	// CreateImportFeed stores f; a taken name gives ErrConflict.
	CreateImportFeed(ctx context.Context, f *ImportFeed) error
	GetImportFeed(ctx context.Context, name string) (*ImportFeed, error)
	ListImportFeeds(ctx context.Context) ([]*ImportFeed, error)
	DeleteImportFeed(ctx context.Context, name string) error
	// SaveImportFeedRun records a run: validators, times and report.
	SaveImportFeedRun(ctx context.Context, f *ImportFeed) error
	// ClaimImportFeed moves a due feed's next run from due to next, and
	// reports whether this caller did it: of several servers sharing a
	// database, one runs each due feed.
	ClaimImportFeed(ctx context.Context, name string, due, next time.Time) (bool, error)

	// PutWarningList creates or replaces a list.
	PutWarningList(ctx context.Context, l *WarningList) error
	ListWarningLists(ctx context.Context) ([]*WarningList, error)
	DeleteWarningList(ctx context.Context, name string) error

	// Inactive says whether objectID is flagged inactive, and why.
	Inactive(ctx context.Context, objectID string) (reason string, inactive bool, err error)
	// ListInactive lists the flags of a collection's objects.
	ListInactive(ctx context.Context, collectionID string) ([]InactiveFlag, error)
}

// ImportTx is what Updater transactions of the SQL backends add for
// imports: flags committed together with the objects they concern, so
// that no flagged object is ever stored without its flag.
type ImportTx interface {
	// FlagInactive records flags (replacing an object's earlier flag).
	FlagInactive(ctx context.Context, flags []InactiveFlag) error
	// ClearInactive removes the flags of ids (a new version no longer hits
	// a warning list).
	ClearInactive(ctx context.Context, ids []string) error
}
