package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mitra-cert/mitra/internal/store"
)

// This file implements object ownership (STIX 2.1 §3.6, store/contract.go).

// querier is what both *pgxpool.Pool and pgx.Tx offer.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// claimOwners records the owner of each id of objs that has none yet and
// returns the recorded owner of every id of objs that has one. Writers of
// different collections run concurrently: when two claim one id, the
// owners primary key makes the second INSERT wait for the first
// transaction and then do nothing. One statement claims and reads (the
// rows it inserted through RETURNING, the others from its snapshot); an id
// it neither inserted nor saw was claimed by a transaction that committed
// meanwhile, and a second statement (a new snapshot under READ COMMITTED)
// reads the winner. Ids are claimed in sorted order, so two claimants
// never wait for each other in a cycle.
func claimOwners(ctx context.Context, tx querier, objs []store.Object) (map[string]string, error) {
	ids, owners := store.OwnerClaims(objs)
	all := make([]string, 0, len(objs))
	seen := make(map[string]bool, len(objs))
	for _, o := range objs {
		if !seen[o.ID] {
			seen[o.ID] = true
			all = append(all, o.ID)
		}
	}
	if len(ids) == 0 {
		return loadOwners(ctx, tx, all)
	}
	rows, err := tx.Query(ctx, `WITH ins AS (
			INSERT INTO owners (id, owner)
			SELECT u.id, u.owner FROM unnest($1::text[], $2::text[]) AS u(id, owner) ORDER BY u.id
			ON CONFLICT DO NOTHING RETURNING id, owner)
		SELECT id, owner FROM ins
		UNION ALL
		SELECT id, owner FROM owners WHERE id = ANY($3::text[])`, ids, owners, all)
	if err != nil {
		return nil, fmt.Errorf("add objects: record owners: %w", err)
	}
	out := make(map[string]string, len(all))
	for rows.Next() {
		var id, owner string
		if err := rows.Scan(&id, &owner); err != nil {
			rows.Close()
			return nil, fmt.Errorf("add objects: record owners: %w", err)
		}
		out[id] = owner
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("add objects: record owners: %w", err)
	}
	var late []string
	for _, id := range ids {
		if _, ok := out[id]; !ok {
			late = append(late, id)
		}
	}
	if len(late) > 0 {
		won, err := loadOwners(ctx, tx, late)
		if err != nil {
			return nil, err
		}
		maps.Copy(out, won)
	}
	return out, nil
}

// loadOwners reads the recorded owners of ids.
func loadOwners(ctx context.Context, db querier, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := db.Query(ctx, `SELECT id, owner FROM owners WHERE id = ANY($1::text[])`, ids)
	if err != nil {
		return nil, fmt.Errorf("owners: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, owner string
		if err := rows.Scan(&id, &owner); err != nil {
			return nil, fmt.Errorf("owners: %w", err)
		}
		out[id] = owner
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("owners: %w", err)
	}
	return out, nil
}

// checkDeleteOwner refuses a delete by an organisation that does not own
// the object (contract.go); owner "" is server moderation.
func checkDeleteOwner(ctx context.Context, tx querier, objectID, owner string) error {
	if owner == "" {
		return nil
	}
	var rec string
	err := tx.QueryRow(ctx, `SELECT owner FROM owners WHERE id = $1`, objectID).Scan(&rec)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete object: owner: %w", err)
	}
	if rec != owner {
		return fmt.Errorf("delete object %s: only the organisation that created it may delete it: %w", objectID, store.ErrForbidden)
	}
	return nil
}

// ObjectOwners implements store.Owners.
func (s *Store) ObjectOwners(ctx context.Context, ids []string) (map[string]string, error) {
	return loadOwners(ctx, s.pool, ids)
}
