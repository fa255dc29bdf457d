package detect

import (
	"context"

	"github.com/mitra-cert/mitra/internal/store"
)

// IndicatorStore is what StoreIndicators reads: collections, their objects
// and change logs. Any store.Store is one.
type IndicatorStore interface {
	GetCollection(ctx context.Context, idOrAlias string) (*store.Collection, error)
	ListCollections(ctx context.Context) ([]*store.Collection, error)
	QueryObjects(ctx context.Context, collectionID string, q store.Query) (*store.Page, error)
	Changes(ctx context.Context, collectionID string, afterSeq int64, limit int) ([]store.Change, error)
}

// ObjectAdder is what StoreSink writes to.
type ObjectAdder interface {
	AddObjects(ctx context.Context, collectionID string, objs []store.Object, status *store.Status) ([]store.AddResult, error)
}
