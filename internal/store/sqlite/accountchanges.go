package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/mitra-cert/mitra/internal/store"
)

// UpdateUser implements store.AccountChanges.
func (s *Store) UpdateUser(ctx context.Context, u *store.User) error {
	if err := store.CheckUserUpdate(u); err != nil {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("update user: %w", err)
	}
	defer tx.Rollback()
	var ok int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM organisations WHERE id = ?`, u.Organisation).Scan(&ok)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("organisation %q: %w", u.Organisation, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("update user: %w", err)
	}
	var created int64
	err = tx.QueryRowContext(ctx, `UPDATE users SET organisation = ?, role = ?, password_hash = ? WHERE name = ? RETURNING created`,
		u.Organisation, u.Role, u.PasswordHash, u.Name).Scan(&created)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("user %q: %w", u.Name, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("update user: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("update user: commit: %w", err)
	}
	u.Created = fromMicros(created)
	return nil
}

// SetGroupOrgs implements store.AccountChanges.
func (s *Store) SetGroupOrgs(ctx context.Context, groupID string, orgs []string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("set group members: %w", err)
	}
	defer tx.Rollback()
	var ok int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM groups_ WHERE id = ?`, groupID).Scan(&ok)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("group %q: %w", groupID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("set group members: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM group_members WHERE group_id = ?`, groupID); err != nil {
		return fmt.Errorf("set group members: %w", err)
	}
	for _, org := range orgs {
		res, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO group_members (group_id, organisation) SELECT ?, id FROM organisations WHERE id = ?`, groupID, org)
		if err != nil {
			return fmt.Errorf("set group members: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM organisations WHERE id = ?`, org).Scan(&ok)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("organisation %q: %w", org, store.ErrNotFound)
			}
			if err != nil {
				return fmt.Errorf("set group members: %w", err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("set group members: commit: %w", err)
	}
	return nil
}
