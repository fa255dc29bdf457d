package sqlite

import (
	"context"
	"fmt"
	"time"
)

// pruneChunk bounds the rows one retention transaction removes, so that
// pruning a long history never holds the write lock for long.
const pruneChunk = 5000

// PruneAudit implements store.Retention.
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (int64, error) {
	return s.prune(ctx, "audit", `DELETE FROM audit WHERE seq IN (SELECT seq FROM audit WHERE at < ? LIMIT ?)`, before)
}

// PruneStatuses implements store.Retention.
func (s *Store) PruneStatuses(ctx context.Context, before time.Time) (int64, error) {
	return s.prune(ctx, "statuses", `DELETE FROM statuses WHERE id IN (SELECT id FROM statuses WHERE request_ts < ? LIMIT ?)`, before)
}

// prune runs a chunked DELETE until it removes nothing more.
func (s *Store) prune(ctx context.Context, what, query string, before time.Time) (int64, error) {
	var total int64
	for {
		res, err := s.w.ExecContext(ctx, query, micros(before), pruneChunk)
		if err != nil {
			return total, fmt.Errorf("prune %s: %w", what, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("prune %s: %w", what, err)
		}
		total += n
		if n < pruneChunk {
			return total, nil
		}
	}
}
