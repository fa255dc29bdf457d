package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/mitra-cert/mitra/internal/store"
)

// Update implements store.Updater. The transaction locks the collection's
// row first, like AddObjects (see the package comment), so writers of the
// collection in every process wait for it.
func (s *Store) Update(ctx context.Context, collectionID string, fn func(ctx context.Context, tx store.Tx) error) error {
	tx, err := s.beginWrite(ctx)
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	defer tx.Rollback(ctx)
	t := &writeTx{s: s, tx: tx}
	if t.cid, t.lastAdded, t.lastSeq, err = lockCollection(ctx, tx, collectionID); err != nil {
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
	s                       *Store
	tx                      pgx.Tx
	cid, lastAdded, lastSeq int64
	done                    bool
}

var errTxDone = errors.New("store: transaction used after Update returned")

// Latest implements store.Tx.
func (t *writeTx) Latest(ctx context.Context, ids []string) (map[string]store.Entry, error) {
	if t.done {
		return nil, errTxDone
	}
	out := make(map[string]store.Entry, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := t.tx.Query(ctx, `SELECT id, type, spec_version, version_raw, date_added, submitter, tlp, recipients, body
		FROM objects WHERE cid = $1 AND latest AND id = ANY($2::text[])`, t.cid, ids)
	if err != nil {
		return nil, fmt.Errorf("latest: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e store.Entry
		var added int64
		var tlp int32
		var recipients string
		if err := rows.Scan(&e.ID, &e.Type, &e.SpecVersion, &e.VersionRaw, &added, &e.Submitter, &tlp, &recipients, &e.Raw); err != nil {
			return nil, fmt.Errorf("latest: %w", err)
		}
		e.DateAdded, e.TLP = fromMicros(added), int(tlp)
		if e.Recipients, err = parseList(recipients); err != nil {
			return nil, fmt.Errorf("latest: recipients of %s: %w", e.ID, err)
		}
		out[e.ID] = e
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("latest: %w", err)
	}
	return out, nil
}

// Add implements store.Tx: the AddObjects path, in this transaction.
func (t *writeTx) Add(ctx context.Context, objs []store.Object) ([]store.AddResult, error) {
	if t.done {
		return nil, errTxDone
	}
	plan, err := t.s.addRows(ctx, t.tx, t.cid, t.lastAdded, t.lastSeq, objs, nil)
	if err != nil {
		return nil, err
	}
	t.lastAdded, t.lastSeq = plan.LastAdded, plan.LastSeq
	return plan.Results, nil
}

// Cursor implements store.Tx.
func (t *writeTx) Cursor(ctx context.Context, key string) ([]byte, error) {
	if t.done {
		return nil, errTxDone
	}
	var v []byte
	err := t.tx.QueryRow(ctx, `SELECT value FROM cursors WHERE key = $1`, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
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
	if _, err := t.tx.Exec(ctx, `INSERT INTO cursors (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value); err != nil {
		return fmt.Errorf("set cursor %s: %w", key, err)
	}
	return nil
}
