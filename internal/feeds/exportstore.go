package feeds

import (
	"context"

	"github.com/mitra-cert/mitra/internal/store"
)

// ExportStore is what exports and the indicator lifecycle need of the
// store: collections and their objects. Any store.Store is one (the
// sqlstore implementation serves both dialects).
type ExportStore interface {
	GetCollection(ctx context.Context, idOrAlias string) (*store.Collection, error)
	ListCollections(ctx context.Context) ([]*store.Collection, error)
	QueryObjects(ctx context.Context, collectionID string, q store.Query) (*store.Page, error)
}

// Flags says whether an indicator was flagged inactive (by a warning list
// at import) and why. Flagged indicators are never exported.
type Flags interface {
	Inactive(ctx context.Context, id string) (reason string, inactive bool, err error)
}
