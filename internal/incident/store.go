package incident

import (
	"context"
	"iter"

	"github.com/mitra-cert/mitra/internal/store"
)

// Store is what the service keeps beside the STIX objects: each incident's
// regime and state, the stages met, the history and the deadline alerts,
// with the notifications each step causes queued in the same transaction
// (so that no step is recorded without its notifications, nor the other
// way round).
type Store interface {
	// CreateIncident records a newly reported incident with its first
	// event, the stages its report met and its notifications; ErrConflict
	// when the id is taken.
	CreateIncident(ctx context.Context, rec *store.IncidentRecord, ev store.IncidentEvent, met []store.StageMet, ds []store.Notification) error
	GetIncident(ctx context.Context, id string) (*store.IncidentRecord, error)
	// ListIncidents lists incidents, most recently updated first.
	ListIncidents(ctx context.Context, f store.IncidentFilter) ([]*store.IncidentRecord, error)
	IncidentStages(ctx context.Context, id string) ([]store.StageMet, error)
	IncidentEvents(ctx context.Context, id string) ([]store.IncidentEvent, error)
	// RecordIncidentStep records one step: when step.To is set the state
	// moves from step.From to it (ErrConflict when the state is no longer
	// step.From), stages not yet met are marked met (a stage already met
	// keeps its first meeting), the event is appended and the deliveries
	// queued, all at once.
	RecordIncidentStep(ctx context.Context, step store.IncidentStep) error
	// ClaimAlert records a deadline alert and queues its deliveries unless
	// the same alert (incident, stage, kind) was recorded before; it
	// reports whether this call recorded it.
	ClaimAlert(ctx context.Context, a store.Alert, ds []store.Notification) (bool, error)
}

// Objects is what the service reads of the collections: the incident
// objects, to decide with access.Decide who may see an incident, and the
// organisations.
type Objects interface {
	GetCollection(ctx context.Context, idOrAlias string) (*store.Collection, error)
	QueryObjects(ctx context.Context, collectionID string, q store.Query) (*store.Page, error)
	ListOrganisations(ctx context.Context) ([]*store.Organisation, error)
}

// IngestStore is what Ingest writes to: the objects a principal publishes
// and their audit records.
type IngestStore interface {
	GetCollection(ctx context.Context, idOrAlias string) (*store.Collection, error)
	AddBatches(ctx context.Context, collectionID string, batches iter.Seq[[]store.Object], status *store.Status) ([]store.AddResult, error)
	AppendAudit(ctx context.Context, recs ...store.AuditRecord) error
}

// Auditor appends audit records.
type Auditor interface {
	AppendAudit(ctx context.Context, recs ...store.AuditRecord) error
}
