package sqlstore

import (
	"context"
	"fmt"

	"github.com/mitra-cert/mitra/internal/store"
)

var (
	_ store.GroupAdder = (*Store)(nil)
	_ store.Prefetcher = (*Store)(nil)
)

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
		existing, err := s.groupVersions(ctx, tx, cid, reqs, objs)
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

// Prefetch implements store.Prefetcher: it reads the stored versions of
// objs' ids outside any write transaction, after the collection's change
// log position.
func (s *Store) Prefetch(ctx context.Context, collectionID string, objs []store.Object) (*store.Prefetched, error) {
	p := &store.Prefetched{}
	err := s.db.QueryRow(ctx, `SELECT cid, last_seq FROM collections WHERE id = ?`, collectionID).Scan(&p.CID, &p.Seq)
	if noRows(err) {
		return nil, fmt.Errorf("collection %s: %w", collectionID, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("prefetch versions: %w", err)
	}
	if p.Versions, err = loadVersions(ctx, s.db, s.d, p.CID, objs); err != nil {
		return nil, err
	}
	return p, nil
}

// groupVersions returns the stored versions of the group's ids, under the
// collection's write lock. When every request prefetched its ids, only
// those the change log shows as added or deleted since the earliest
// prefetch are read again; otherwise all are read.
func (s *Store) groupVersions(ctx context.Context, tx Tx, cid int64, reqs []*store.AddRequest, objs []store.Object) (map[string][]store.StoredVersion, error) {
	since := int64(-1)
	for _, r := range reqs {
		if len(r.Objects) == 0 {
			continue
		}
		p := r.Prefetched
		if p == nil || p.CID != cid {
			return loadVersions(ctx, tx, s.d, cid, objs)
		}
		if since < 0 || p.Seq < since {
			since = p.Seq
		}
	}
	existing := make(map[string][]store.StoredVersion, len(objs))
	if since < 0 {
		return existing, nil
	}
	rows, err := tx.Query(ctx, `SELECT DISTINCT object_id FROM changes WHERE cid = ? AND seq > ?`, cid, since)
	if err != nil {
		return nil, fmt.Errorf("add objects: changed ids: %w", err)
	}
	changed := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("add objects: changed ids: %w", err)
		}
		changed[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("add objects: changed ids: %w", err)
	}
	var reload []store.Object
	for _, r := range reqs {
		for _, o := range r.Objects {
			if changed[o.ID] {
				reload = append(reload, o)
			} else if vs, ok := r.Prefetched.Versions[o.ID]; ok {
				existing[o.ID] = vs
			}
		}
	}
	if len(reload) > 0 {
		again, err := loadVersions(ctx, tx, s.d, cid, reload)
		if err != nil {
			return nil, err
		}
		for _, o := range reload {
			delete(existing, o.ID)
		}
		for id, vs := range again {
			existing[id] = vs
		}
	}
	return existing, nil
}
