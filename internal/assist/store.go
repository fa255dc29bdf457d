package assist

import (
	"context"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
)

// Store is what the assistance service needs of the store.
type Store interface {
	store.Assistance
	QueryObjects(ctx context.Context, collectionID string, q store.Query) (*store.Page, error)
	AddObjects(ctx context.Context, collectionID string, objs []store.Object, status *store.Status) ([]store.AddResult, error)
	GetCollection(ctx context.Context, idOrAlias string) (*store.Collection, error)
	GetOrganisation(ctx context.Context, idOrName string) (*store.Organisation, error)
	ListPeers(ctx context.Context) ([]*store.Peer, error)
	AppendAudit(ctx context.Context, recs ...store.AuditRecord) error
	// The federation leases (by name) let one process of a shared
	// database run a collection's assistance clock at a time.
	TakeLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error
}
