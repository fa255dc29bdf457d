package postgres

import (
	"context"
	"fmt"
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
