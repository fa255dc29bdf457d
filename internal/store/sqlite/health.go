package sqlite

import (
	"context"
	"fmt"
	"io/fs"
)

// Ping implements store.Health.
func (s *Store) Ping(ctx context.Context) error {
	var cur int
	if err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
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
