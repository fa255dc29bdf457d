package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/mitra-cert/mitra/internal/store"
)

var _ store.GroupAdder = (*Store)(nil)

// AddGroup implements store.GroupAdder: the requests' objects are planned
// as one AddObjects call and sent with its statements in one batch, with
// the statuses and audit records, under the collection's row lock; one
// commit makes the whole group durable.
func (s *Store) AddGroup(ctx context.Context, collectionID string, reqs []*store.AddRequest) error {
	tx, err := s.beginWrite(ctx)
	if err != nil {
		return fmt.Errorf("add objects: %w", err)
	}
	defer tx.Rollback(ctx)
	cid, lastAdded, lastSeq, err := lockCollection(ctx, tx, collectionID)
	if err != nil {
		return err
	}
	objs := store.GroupObjects(reqs)
	existing, err := loadVersions(ctx, tx, cid, objs)
	if err != nil {
		return err
	}
	plan := store.PlanGroup(reqs, objs, existing, micros(s.now()), lastAdded, lastSeq)
	var rows newRows
	for _, r := range plan.Rows {
		rows.add(r)
	}
	b := &pgx.Batch{}
	if len(rows.id) > 0 {
		b.Queue(insertObjectsSQL, cid, rows.added, rows.id, rows.typ, rows.spec, rows.version, rows.versionRaw, rows.latest, rows.body,
			rows.submitter, rows.tlp, rows.recipients)
		b.Queue(`INSERT INTO changes (cid, seq, op, object_id, version_raw, at)
			SELECT $1, u.seq, 'add', u.object_id, u.version_raw, u.at FROM unnest($2::bigint[], $3::text[], $4::text[], $5::bigint[]) AS u(seq, object_id, version_raw, at)`,
			cid, rows.seq, rows.id, rows.versionRaw, rows.added)
	}
	if len(plan.Superseded) > 0 {
		b.Queue(`UPDATE objects SET latest = false WHERE rid = ANY($1)`, plan.Superseded)
	}
	b.Queue(`UPDATE collections SET last_added = $1, last_seq = $2 WHERE cid = $3`, plan.LastAdded, plan.LastSeq, cid)
	for _, r := range reqs {
		if r.Status != nil {
			queueSaveStatus(b, r.Status)
		}
	}
	for _, r := range store.GroupAudit(reqs) {
		at := r.At
		if at.IsZero() {
			at = s.now()
		}
		objs := r.Objects
		if objs == nil {
			objs = []string{}
		}
		b.Queue(`INSERT INTO audit (at, principal, organisation, action, path, collection, objects, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			micros(at), r.Principal, r.Organisation, r.Action, r.Path, r.Collection, objs, r.Detail)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("add objects: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("add objects: commit: %w", err)
	}
	return nil
}
