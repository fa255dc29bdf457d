package sqlstore

import (
	"context"
	"fmt"

	"github.com/mitra-cert/mitra/internal/store"
)

var _ store.GroupAdder = (*Store)(nil)

// AddGroup implements store.GroupAdder: the requests' objects are planned
// as one AddObjects call (store.PlanGroup) and go out with its statements,
// the statuses and the audit records in one transaction under the
// collection's lock; one commit (one WAL sync) makes the group durable.
func (s *Store) AddGroup(ctx context.Context, collectionID string, reqs []*store.AddRequest) error {
	return s.write(ctx, "add objects", func(tx Tx) error {
		cid, lastAdded, lastSeq, err := s.lockCollection(ctx, tx, collectionID)
		if err != nil {
			return err
		}
		objs := store.GroupObjects(reqs)
		existing, err := loadVersions(ctx, tx, s.d, cid, objs, nil)
		if err != nil {
			return err
		}
		// Owners are claimed inside the lock, as AddBatches does: who owns
		// an id is decided by the first version committed (contract.go).
		owners, err := s.claimOwners(ctx, tx, objs)
		if err != nil {
			return err
		}
		plan := store.PlanGroup(reqs, objs, existing, owners, micros(s.now()), lastAdded, lastSeq)
		b := &Batch{}
		if len(plan.Rows) > 0 {
			s.d.InsertVersions(b, cid, plan.Rows, true)
		}
		if len(plan.Superseded) > 0 {
			var a Args
			b.Queue(`UPDATE objects SET latest = false WHERE `+s.d.In(&a, "rid", plan.Superseded), a...)
		}
		b.Queue(`UPDATE collections SET last_added = ?, last_seq = ? WHERE cid = ?`, plan.LastAdded, plan.LastSeq, cid)
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
			b.Queue(`INSERT INTO audit (at, principal, organisation, action, path, collection, objects, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				micros(at), r.Principal, r.Organisation, r.Action, r.Path, r.Collection, s.d.ListValue(r.Objects), r.Detail)
		}
		if err := tx.Send(ctx, b); err != nil {
			return fmt.Errorf("add objects: %w", err)
		}
		return nil
	})
}
