package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/mitra-cert/mitra/internal/store"
)

// This file implements object ownership (STIX 2.1 §3.6, store/contract.go).

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// idChunk bounds the number of ids in one IN list.
const idChunk = 500

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// claimOwners records the owner of each id of objs that has none yet and
// returns the recorded owner of every id of objs that has one. It runs in
// the add transaction, which holds SQLite's write lock: no other writer can
// claim in between.
func claimOwners(ctx context.Context, tx querier, objs []store.Object) (map[string]string, error) {
	ids, owners := store.OwnerClaims(objs)
	for len(ids) > 0 {
		n := min(idChunk, len(ids))
		args := make([]any, 0, 2*n)
		for i := range n {
			args = append(args, ids[i], owners[i])
		}
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO owners (id, owner) VALUES `+repeatValues("(?,?)", n), args...); err != nil {
			return nil, fmt.Errorf("add objects: record owners: %w", err)
		}
		ids, owners = ids[n:], owners[n:]
	}
	all := make([]string, 0, len(objs))
	seen := make(map[string]bool, len(objs))
	for _, o := range objs {
		if !seen[o.ID] {
			seen[o.ID] = true
			all = append(all, o.ID)
		}
	}
	return loadOwners(ctx, tx, all)
}

// loadOwners reads the recorded owners of ids.
func loadOwners(ctx context.Context, db querier, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	for len(ids) > 0 {
		n := min(idChunk, len(ids))
		args := make([]any, n)
		for i := range n {
			args[i] = ids[i]
		}
		ids = ids[n:]
		rows, err := db.QueryContext(ctx, `SELECT id, owner FROM owners WHERE id IN (`+placeholders(n)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("owners: %w", err)
		}
		for rows.Next() {
			var id, owner string
			if err := rows.Scan(&id, &owner); err != nil {
				rows.Close()
				return nil, fmt.Errorf("owners: %w", err)
			}
			out[id] = owner
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("owners: %w", err)
		}
	}
	return out, nil
}

// checkDeleteOwner refuses a delete by an organisation that does not own
// the object (contract.go); owner "" is server moderation.
func checkDeleteOwner(ctx context.Context, tx querier, objectID, owner string) error {
	if owner == "" {
		return nil
	}
	rec, err := loadOwners(ctx, tx, []string{objectID})
	if err != nil {
		return fmt.Errorf("delete object: %w", err)
	}
	if w, ok := rec[objectID]; ok && w != owner {
		return fmt.Errorf("delete object %s: only the organisation that created it may delete it: %w", objectID, store.ErrForbidden)
	}
	return nil
}

// ObjectOwners implements store.Owners.
func (s *Store) ObjectOwners(ctx context.Context, ids []string) (map[string]string, error) {
	return loadOwners(ctx, s.r, ids)
}
