package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/mitra-cert/mitra/internal/store"
)

// Update implements store.Updater. The transaction takes the collection's
// row first, like AddObjects, so writers of the collection in every
// process wait for it. On SQLite it holds the database's write lock from
// its first statement to commit: fn must not call other writing methods
// of s.
func (s *Store) Update(ctx context.Context, collectionID string, fn func(ctx context.Context, tx store.Tx) error) error {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	defer tx.Rollback(ctx)
	t := &writeTx{s: s, tx: tx, collection: collectionID}
	if t.m.cid, t.m.lastAdded, t.m.lastSeq, err = s.lockCollection(ctx, tx, collectionID); err != nil {
		return err
	}
	err = fn(ctx, t)
	t.done = true
	if err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("update: commit: %w", err)
	}
	return nil
}

// writeTx is the store.Tx of Update. It is not safe for concurrent use.
type writeTx struct {
	s    *Store
	tx   Tx
	m    marks
	done bool
	// read are the versions Latest read since the transaction last wrote
	// objects: Add plans with them instead of reading them again (a
	// federation pull reads the latest versions of a page, then adds it).
	read storedVersions
	// collection is the public id of the collection; added are the
	// versions Add inserted (by id and raw version), addedOrder the same
	// in date_added order: RecordProvenance names them by runs of
	// date_added. Delete forgets them (a deleted version's provenance is
	// kept by id).
	collection string
	added      map[string]*addedVersion
	addedOrder []*addedVersion
}

var errTxDone = errors.New("store: transaction used after Update returned")

// Latest implements store.Tx.
func (t *writeTx) Latest(ctx context.Context, ids []string) (map[string]store.Entry, error) {
	if t.done {
		return nil, errTxDone
	}
	// Every version of the ids is read, not only the latest: Add needs
	// them all, and a new object has none, which one index probe per id
	// tells either way.
	out := make(map[string]store.Entry, len(ids))
	if t.read == nil {
		t.read = storedVersions{}
	}
	for _, id := range ids {
		if _, ok := t.read[id]; !ok {
			t.read[id] = nil
		}
	}
	err := inChunks(ids, func(part []string) error {
		a := Args{t.m.cid}
		rows, err := t.tx.Query(ctx, `SELECT `+entryCols+`, o.body, o.rid, o.version, o.latest FROM objects o WHERE o.cid = ? AND `+t.s.d.In(&a, "o.id", part), a...)
		sc := newEntryScan(true)
		var v store.StoredVersion
		sc.dest = append(sc.dest, &v.RID, &v.Version, &v.Latest)
		_, err = collect(rows, err, "latest", func(r Row) (struct{}, error) {
			e, _, err := sc.scan(r)
			if err != nil {
				return struct{}{}, err
			}
			v.VersionRaw, v.Spec, v.Body = e.VersionRaw, e.SpecVersion, e.Raw
			if vs := t.read[e.ID]; !slices.ContainsFunc(vs, func(x store.StoredVersion) bool { return x.RID == v.RID }) {
				t.read[e.ID] = append(vs, v)
			}
			if v.Latest {
				out[e.ID] = e
			}
			return struct{}{}, nil
		})
		return err
	})
	if err != nil {
		t.read = nil
		return nil, err
	}
	return out, nil
}

// Add implements store.Tx: the AddObjects path, in this transaction.
func (t *writeTx) Add(ctx context.Context, objs []store.Object) ([]store.AddResult, error) {
	if t.done {
		return nil, errTxDone
	}
	known := t.read
	t.read = nil // the versions change
	plan, err := t.s.addBatch(ctx, t.tx, &t.m, objs, nil, false, known)
	if err != nil {
		return nil, err
	}
	t.noteAdded(plan.Rows)
	return plan.Results, nil
}

// Delete implements store.Tx: the DeleteObject path, in this transaction.
func (t *writeTx) Delete(ctx context.Context, objectID string, q store.Query) (int, error) {
	if t.done {
		return 0, errTxDone
	}
	t.read = nil // the versions change
	t.added, t.addedOrder = nil, nil
	return t.s.deleteIn(ctx, t.tx, &t.m, objectID, q)
}

// Cursor implements store.Tx.
func (t *writeTx) Cursor(ctx context.Context, key string) ([]byte, error) {
	if t.done {
		return nil, errTxDone
	}
	var v []byte
	err := t.tx.QueryRow(ctx, `SELECT value FROM cursors WHERE key = ?`, key).Scan(&v)
	if noRows(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cursor %s: %w", key, err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// SetCursor implements store.Tx.
func (t *writeTx) SetCursor(ctx context.Context, key string, value []byte) error {
	if t.done {
		return errTxDone
	}
	if key == "" {
		return fmt.Errorf("cursor key is empty: %w", store.ErrInvalid)
	}
	if value == nil {
		value = []byte{}
	}
	if _, err := t.tx.Exec(ctx, `INSERT INTO cursors (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value); err != nil {
		return fmt.Errorf("set cursor %s: %w", key, err)
	}
	return nil
}
