package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
)

// UpdateUser implements store.AccountChanges.
func (s *Store) UpdateUser(ctx context.Context, u *store.User) error {
	if err := store.CheckUserUpdate(u); err != nil {
		return err
	}
	var created int64
	err := s.write(ctx, "update user", func(tx Tx) error {
		err := tx.QueryRow(ctx, `UPDATE users SET organisation = ?, role = ?, password_hash = ? WHERE name = ? RETURNING created`,
			u.Organisation, u.Role, u.PasswordHash, u.Name).Scan(&created)
		switch {
		case noRows(err):
			return fmt.Errorf("user %q: %w", u.Name, store.ErrNotFound)
		case s.d.IsForeignKey(err):
			return fmt.Errorf("organisation %q: %w", u.Organisation, store.ErrNotFound)
		case err != nil:
			return fmt.Errorf("update user: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	u.Created = fromMicros(created)
	return nil
}

// SetGroupOrgs implements store.AccountChanges.
func (s *Store) SetGroupOrgs(ctx context.Context, groupID string, orgs []string) error {
	return s.write(ctx, "set group members", func(tx Tx) error {
		// Locks the group row: concurrent replacements of one group's
		// members apply one after the other.
		var id string
		err := tx.QueryRow(ctx, `SELECT id FROM groups_ WHERE id = ?`+s.d.ForUpdate(), groupID).Scan(&id)
		if noRows(err) {
			return fmt.Errorf("group %q: %w", groupID, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("set group members: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM group_members WHERE group_id = ?`, groupID); err != nil {
			return fmt.Errorf("set group members: %w", err)
		}
		return s.addMembers(ctx, tx, groupID, orgs)
	})
}

// PruneAudit implements store.Retention.
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (int64, error) {
	n, err := s.db.Exec(ctx, `DELETE FROM audit WHERE at < ?`, micros(before))
	if err != nil {
		return 0, fmt.Errorf("prune audit: %w", err)
	}
	return n, nil
}

// PruneStatuses implements store.Retention.
func (s *Store) PruneStatuses(ctx context.Context, before time.Time) (int64, error) {
	n, err := s.db.Exec(ctx, `DELETE FROM statuses WHERE request_ts < ?`, micros(before))
	if err != nil {
		return 0, fmt.Errorf("prune statuses: %w", err)
	}
	return n, nil
}

// Ping implements store.Health.
func (s *Store) Ping(ctx context.Context) error {
	cur, err := SchemaVersion(ctx, s.db)
	if err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	if cur != s.schema {
		return fmt.Errorf("ping: the database schema is at version %d, this mitra expects %d", cur, s.schema)
	}
	return nil
}

// ExportOwners implements store.Exporter.
func (s *Store) ExportOwners(ctx context.Context, fn func([]store.OwnerRecord) error) error {
	after := ""
	return exportPages(ctx, func(ctx context.Context) ([]store.OwnerRecord, error) {
		rows, err := s.db.Query(ctx, `SELECT id, owner FROM owners WHERE id > ? ORDER BY id`+s.d.Binary()+` LIMIT ?`, after, store.ExportBatch)
		batch, err := collect(rows, err, "export owners", func(r Row) (store.OwnerRecord, error) {
			var o store.OwnerRecord
			return o, r.Scan(&o.ID, &o.Owner)
		})
		if len(batch) > 0 {
			after = batch[len(batch)-1].ID
		}
		return batch, err
	}, fn)
}

// ExportCursors implements store.Exporter.
func (s *Store) ExportCursors(ctx context.Context, fn func([]store.CursorRecord) error) error {
	after := ""
	return exportPages(ctx, func(ctx context.Context) ([]store.CursorRecord, error) {
		rows, err := s.db.Query(ctx, `SELECT key, value FROM cursors WHERE key > ? ORDER BY key`+s.d.Binary()+` LIMIT ?`, after, store.ExportBatch)
		batch, err := collect(rows, err, "export cursors", func(r Row) (store.CursorRecord, error) {
			var c store.CursorRecord
			err := r.Scan(&c.Key, &c.Value)
			if c.Value == nil {
				c.Value = []byte{} // an empty value is a value, as Cursor reports it
			}
			return c, err
		})
		if len(batch) > 0 {
			after = batch[len(batch)-1].Key
		}
		return batch, err
	}, fn)
}

// ImportOwners implements store.Importer.
func (s *Store) ImportOwners(ctx context.Context, owners []store.OwnerRecord) error {
	ids, ws := make([]string, len(owners)), make([]string, len(owners))
	for i, o := range owners {
		ids[i], ws[i] = o.ID, o.Owner
	}
	return s.importBatch(ctx, "owners", func(b *Batch) { s.d.InsertOwners(b, ids, ws, false) })
}

// ImportCursors implements store.Importer.
func (s *Store) ImportCursors(ctx context.Context, cursors []store.CursorRecord) error {
	return s.importBatch(ctx, "cursors", func(b *Batch) {
		for _, c := range cursors {
			v := c.Value
			if v == nil {
				v = []byte{}
			}
			b.Queue(`INSERT INTO cursors (key, value) VALUES (?, ?)`, c.Key, v)
		}
	})
}
