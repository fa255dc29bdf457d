package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/mitra-cert/mitra/internal/store"
)

// UpdateUser implements store.AccountChanges.
func (s *Store) UpdateUser(ctx context.Context, u *store.User) error {
	if err := store.CheckUserUpdate(u); err != nil {
		return err
	}
	var created int64
	err := s.pool.QueryRow(ctx, `UPDATE users SET organisation = $1, role = $2, password_hash = $3 WHERE name = $4 RETURNING created`,
		u.Organisation, u.Role, u.PasswordHash, u.Name).Scan(&created)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("user %q: %w", u.Name, store.ErrNotFound)
	}
	if isForeignKey(err) {
		return fmt.Errorf("organisation %q: %w", u.Organisation, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("update user: %w", err)
	}
	u.Created = fromMicros(created)
	return nil
}

// SetGroupOrgs implements store.AccountChanges.
func (s *Store) SetGroupOrgs(ctx context.Context, groupID string, orgs []string) error {
	tx, err := s.beginWrite(ctx)
	if err != nil {
		return fmt.Errorf("set group members: %w", err)
	}
	defer tx.Rollback(ctx)
	// Locks the group row: concurrent replacements of one group's members
	// apply one after the other.
	var id string
	err = tx.QueryRow(ctx, `SELECT id FROM groups_ WHERE id = $1 FOR UPDATE`, groupID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("group %q: %w", groupID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("set group members: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM group_members WHERE group_id = $1`, groupID); err != nil {
		return fmt.Errorf("set group members: %w", err)
	}
	if err := addMembers(ctx, tx, groupID, orgs); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("set group members: commit: %w", err)
	}
	return nil
}
