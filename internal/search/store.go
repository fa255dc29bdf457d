package search

import (
	"context"

	"github.com/mitra-cert/mitra/internal/store"
)

// Store is what the search service reads: the text and reference indexes
// (store.Searcher), the collections with their grants, the organisations
// (for anonymous sightings), and the collections' objects and change logs,
// which the value index follows.
type Store interface {
	store.Searcher
	ListCollections(ctx context.Context) ([]*store.Collection, error)
	ListOrganisations(ctx context.Context) ([]*store.Organisation, error)
	QueryObjects(ctx context.Context, collectionID string, q store.Query) (*store.Page, error)
	Changes(ctx context.Context, collectionID string, afterSeq int64, limit int) ([]store.Change, error)
}
