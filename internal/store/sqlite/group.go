package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/mitra-cert/mitra/internal/store"
)

var _ store.GroupAdder = (*Store)(nil)

// AddGroup implements store.GroupAdder: the requests' objects are planned
// as one AddObjects call and written with its statements; statuses and
// audit records join the same transaction, so one commit (one WAL sync)
// makes the whole group durable.
func (s *Store) AddGroup(ctx context.Context, collectionID string, reqs []*store.AddRequest) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add objects: %w", err)
	}
	defer tx.Rollback()
	var cid, lastAdded, lastSeq int64
	err = tx.QueryRowContext(ctx, `SELECT cid, last_added, last_seq FROM collections WHERE id = ?`, collectionID).Scan(&cid, &lastAdded, &lastSeq)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("collection %s: %w", collectionID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("add objects: %w", err)
	}
	objs := store.GroupObjects(reqs)
	existing, err := loadVersions(ctx, tx, cid, objs)
	if err != nil {
		return err
	}
	plan := store.PlanGroup(reqs, objs, existing, micros(s.now()), lastAdded, lastSeq)
	if err := s.insertRows(ctx, tx, cid, plan.Rows); err != nil {
		return err
	}
	for _, rid := range plan.Superseded {
		if _, err := tx.ExecContext(ctx, `UPDATE objects SET latest = 0 WHERE rid = ?`, rid); err != nil {
			return fmt.Errorf("add objects: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE collections SET last_added = ?, last_seq = ? WHERE cid = ?`, plan.LastAdded, plan.LastSeq, cid); err != nil {
		return fmt.Errorf("add objects: %w", err)
	}
	for _, r := range reqs {
		if r.Status != nil {
			if err := saveStatus(ctx, tx, r.Status); err != nil {
				return err
			}
		}
	}
	for _, r := range store.GroupAudit(reqs) {
		at := r.At
		if at.IsZero() {
			at = s.now()
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit (at, principal, organisation, action, path, collection, objects, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			micros(at), r.Principal, r.Organisation, r.Action, r.Path, r.Collection, jsonList(r.Objects), r.Detail); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("add objects: commit: %w", err)
	}
	return nil
}
