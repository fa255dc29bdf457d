package postgres

import (
	"context"
	"fmt"
	"io/fs"
	"time"
)

// PruneAudit implements store.Retention.
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM audit WHERE at < $1`, micros(before))
	if err != nil {
		return 0, fmt.Errorf("prune audit: %w", err)
	}
	return tag.RowsAffected(), nil
}

// PruneStatuses implements store.Retention.
func (s *Store) PruneStatuses(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM statuses WHERE request_ts < $1`, micros(before))
	if err != nil {
		return 0, fmt.Errorf("prune statuses: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Ping implements store.Health.
func (s *Store) Ping(ctx context.Context) error {
	var cur int
	if err := s.pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	if cur != len(names) {
		return fmt.Errorf("ping: the database schema is at version %d, this mitra expects %d", cur, len(names))
	}
	return nil
}
