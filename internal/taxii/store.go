package taxii

import (
	"context"
	"iter"

	"github.com/mitra-cert/mitra/internal/store"
)

// Store is what the TAXII server needs of the store: a collection's
// objects, the collections, statuses, the audit log and the organisations
// (to name them). Any store.Store is one.
type Store interface {
	AddBatches(ctx context.Context, collectionID string, batches iter.Seq[[]store.Object], status *store.Status) ([]store.AddResult, error)
	QueryObjects(ctx context.Context, collectionID string, q store.Query) (*store.Page, error)
	DeleteObject(ctx context.Context, collectionID, objectID string, q store.Query) (int, error)
	GetCollection(ctx context.Context, idOrAlias string) (*store.Collection, error)
	ListCollections(ctx context.Context) ([]*store.Collection, error)
	GetStatus(ctx context.Context, id string) (*store.Status, error)
	ListOrganisations(ctx context.Context) ([]*store.Organisation, error)
	AppendAudit(ctx context.Context, recs ...store.AuditRecord) error
	// Ping answers /readyz.
	store.Health
	// Owners and markings: who may version an object (STIX 2.1 §3.6) and
	// what TLP a stored marking definition stands for.
	store.Owners
	store.Markings
	// The federation change feed (changes.go).
	store.Feed
}
