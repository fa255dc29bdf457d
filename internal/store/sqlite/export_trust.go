package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/mitra-cert/mitra/internal/store"
)

// ExportOwners implements store.Exporter.
func (s *Store) ExportOwners(ctx context.Context, fn func([]store.OwnerRecord) error) error {
	after := ""
	for {
		rows, err := s.r.QueryContext(ctx, `SELECT id, owner FROM owners WHERE id > ? ORDER BY id LIMIT ?`, after, store.ExportBatch)
		if err != nil {
			return fmt.Errorf("export owners: %w", err)
		}
		var batch []store.OwnerRecord
		for rows.Next() {
			var r store.OwnerRecord
			if err := rows.Scan(&r.ID, &r.Owner); err != nil {
				rows.Close()
				return fmt.Errorf("export owners: %w", err)
			}
			batch = append(batch, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
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
		rows, err := s.r.QueryContext(ctx, `SELECT key, value FROM cursors WHERE key > ? ORDER BY key LIMIT ?`, after, store.ExportBatch)
		if err != nil {
			return fmt.Errorf("export cursors: %w", err)
		}
		var batch []store.CursorRecord
		for rows.Next() {
			var r store.CursorRecord
			if err := rows.Scan(&r.Key, &r.Value); err != nil {
				rows.Close()
				return fmt.Errorf("export cursors: %w", err)
			}
			if r.Value == nil {
				r.Value = []byte{} // an empty value is a value, as Cursor reports it
			}
			batch = append(batch, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
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
	return s.importTx(ctx, "owners", func(tx *sql.Tx) error {
		for _, o := range owners {
			if _, err := tx.ExecContext(ctx, `INSERT INTO owners (id, owner) VALUES (?, ?)`, o.ID, o.Owner); err != nil {
				return err
			}
		}
		return nil
	})
}

// ImportCursors implements store.Importer.
func (s *Store) ImportCursors(ctx context.Context, cursors []store.CursorRecord) error {
	return s.importTx(ctx, "cursors", func(tx *sql.Tx) error {
		for _, c := range cursors {
			v := c.Value
			if v == nil {
				v = []byte{}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO cursors (key, value) VALUES (?, ?)`, c.Key, v); err != nil {
				return err
			}
		}
		return nil
	})
}
