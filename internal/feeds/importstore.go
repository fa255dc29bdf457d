package feeds

import (
	"context"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
)

// ImportStore is what an import needs of the store: the collection, the
// latest stored versions of converted objects (to keep re-imports
// unchanged), one write transaction per batch (objects and inactive flags
// together) and the audit log.
type ImportStore interface {
	GetCollection(ctx context.Context, idOrAlias string) (*store.Collection, error)
	QueryObjects(ctx context.Context, collectionID string, q store.Query) (*store.Page, error)
	store.Updater
	AppendAudit(ctx context.Context, recs ...store.AuditRecord) error
}

// FlagStore answers whether an object is flagged inactive. The exporter
// and the detector ask it (through WarningLists.Inactive or directly).
type FlagStore interface {
	Inactive(ctx context.Context, objectID string) (reason string, inactive bool, err error)
	ListInactive(ctx context.Context, collectionID string) ([]store.InactiveFlag, error)
}

// ListStore keeps the warning lists managed through the admin API.
type ListStore interface {
	PutWarningList(ctx context.Context, l *store.WarningList) error
	ListWarningLists(ctx context.Context) ([]*store.WarningList, error)
	DeleteWarningList(ctx context.Context, name string) error
}

// FeedStore keeps scheduled feeds.
type FeedStore interface {
	CreateImportFeed(ctx context.Context, f *store.ImportFeed) error
	GetImportFeed(ctx context.Context, name string) (*store.ImportFeed, error)
	ListImportFeeds(ctx context.Context) ([]*store.ImportFeed, error)
	DeleteImportFeed(ctx context.Context, name string) error
	SaveImportFeedRun(ctx context.Context, f *store.ImportFeed) error
	ClaimImportFeed(ctx context.Context, name string, due, next time.Time) (bool, error)
}

// GroupStore resolves the Mitra sharing group a MISP sharing group maps
// to.
type GroupStore interface {
	GetGroup(ctx context.Context, idOrName string) (*store.Group, error)
}

// UserStore resolves the user a feed imports as.
type UserStore interface {
	GetUser(ctx context.Context, name string) (*store.User, error)
	GroupsOf(ctx context.Context, org string) ([]string, error)
}
