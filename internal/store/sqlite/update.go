package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mitra-cert/mitra/internal/store"
)

// Update implements store.Updater. The transaction is a BEGIN IMMEDIATE
// one on the writer connection, like AddObjects: it holds SQLite's write
// lock (for every collection, and against other processes on the file)
// from its first statement to commit. fn must not call other writing
// methods of s: the writer connection is busy until fn returns.
func (s *Store) Update(ctx context.Context, collectionID string, fn func(ctx context.Context, tx store.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	defer tx.Rollback()
	t := &writeTx{s: s, tx: tx}
	err = tx.QueryRowContext(ctx, `SELECT cid, last_added, last_seq FROM collections WHERE id = ?`, collectionID).Scan(&t.cid, &t.lastAdded, &t.lastSeq)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("collection %s: %w", collectionID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	err = fn(ctx, t)
	t.done = true
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("update: commit: %w", err)
	}
	return nil
}

// writeTx is the store.Tx of Update. It is not safe for concurrent use.
type writeTx struct {
	s                       *Store
	tx                      *sql.Tx
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
	for len(ids) > 0 {
		n := min(idChunk, len(ids))
		args := []any{t.cid}
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		ids = ids[n:]
		rows, err := t.tx.QueryContext(ctx, `SELECT id, type, spec_version, version_raw, date_added, submitter, tlp, recipients, body
			FROM objects WHERE cid = ? AND latest = 1 AND id IN (`+placeholders(n)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("latest: %w", err)
		}
		for rows.Next() {
			var e store.Entry
			var added int64
			var recipients string
			if err := rows.Scan(&e.ID, &e.Type, &e.SpecVersion, &e.VersionRaw, &added, &e.Submitter, &e.TLP, &recipients, &e.Raw); err != nil {
				rows.Close()
				return nil, fmt.Errorf("latest: %w", err)
			}
			e.DateAdded = fromMicros(added)
			if recipients != "[]" && recipients != "" {
				if err := json.Unmarshal([]byte(recipients), &e.Recipients); err != nil {
					rows.Close()
					return nil, fmt.Errorf("latest: recipients of %s: %w", e.ID, err)
				}
			}
			out[e.ID] = e
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("latest: %w", err)
		}
	}
	return out, nil
}

// Add implements store.Tx: the AddObjects path, in this transaction.
func (t *writeTx) Add(ctx context.Context, objs []store.Object) ([]store.AddResult, error) {
	if t.done {
		return nil, errTxDone
	}
	plan, err := t.s.addBatch(ctx, t.tx, t.cid, t.lastAdded, t.lastSeq, objs)
	if err != nil {
		return nil, err
	}
	t.lastAdded, t.lastSeq = plan.LastAdded, plan.LastSeq
	if _, err := t.tx.ExecContext(ctx, `UPDATE collections SET last_added = ?, last_seq = ? WHERE cid = ?`, t.lastAdded, t.lastSeq, t.cid); err != nil {
		return nil, fmt.Errorf("add objects: %w", err)
	}
	return plan.Results, nil
}

// Cursor implements store.Tx.
func (t *writeTx) Cursor(ctx context.Context, key string) ([]byte, error) {
	if t.done {
		return nil, errTxDone
	}
	var v []byte
	err := t.tx.QueryRowContext(ctx, `SELECT value FROM cursors WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
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
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO cursors (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value); err != nil {
		return fmt.Errorf("set cursor %s: %w", key, err)
	}
	return nil
}
