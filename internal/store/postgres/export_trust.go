package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/mitra-cert/mitra/internal/store"
)

// ExportOwners implements store.Exporter.
func (s *Store) ExportOwners(ctx context.Context, fn func([]store.OwnerRecord) error) error {
	after := ""
	for {
		rows, err := s.pool.Query(ctx, `SELECT id, owner FROM owners WHERE id > $1 ORDER BY id LIMIT $2`, after, store.ExportBatch)
		if err != nil {
			return fmt.Errorf("export owners: %w", err)
		}
		batch, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.OwnerRecord, error) {
			var o store.OwnerRecord
			return o, r.Scan(&o.ID, &o.Owner)
		})
		if err != nil {
			return fmt.Errorf("export owners: %w", err)
		}
		if len(batch) == 0 {
			return nil
		}
		if err := fn(batch); err != nil {
			return err
		}
		after = batch[len(batch)-1].ID
	}
}

// ExportCursors implements store.Exporter.
func (s *Store) ExportCursors(ctx context.Context, fn func([]store.CursorRecord) error) error {
	after := ""
	for {
		rows, err := s.pool.Query(ctx, `SELECT key, value FROM cursors WHERE key > $1 ORDER BY key LIMIT $2`, after, store.ExportBatch)
		if err != nil {
			return fmt.Errorf("export cursors: %w", err)
		}
		batch, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.CursorRecord, error) {
			var c store.CursorRecord
			err := r.Scan(&c.Key, &c.Value)
			if c.Value == nil {
				c.Value = []byte{} // an empty value is a value, as Cursor reports it
			}
			return c, err
		})
		if err != nil {
			return fmt.Errorf("export cursors: %w", err)
		}
		if len(batch) == 0 {
			return nil
		}
		if err := fn(batch); err != nil {
			return err
		}
		after = batch[len(batch)-1].Key
	}
}

// ImportOwners implements store.Importer.
func (s *Store) ImportOwners(ctx context.Context, owners []store.OwnerRecord) error {
	ids, ws := make([]string, len(owners)), make([]string, len(owners))
	for i, o := range owners {
		ids[i], ws[i] = o.ID, o.Owner
	}
	return s.importTx(ctx, "owners", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO owners (id, owner) SELECT * FROM unnest($1::text[], $2::text[])`, ids, ws)
		return err
	})
}

// ImportCursors implements store.Importer.
func (s *Store) ImportCursors(ctx context.Context, cursors []store.CursorRecord) error {
	keys, vals := make([]string, len(cursors)), make([][]byte, len(cursors))
	for i, c := range cursors {
		keys[i], vals[i] = c.Key, c.Value
		if vals[i] == nil {
			vals[i] = []byte{}
		}
	}
	return s.importTx(ctx, "cursors", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO cursors (key, value) SELECT * FROM unnest($1::text[], $2::bytea[])`, keys, vals)
		return err
	})
}
