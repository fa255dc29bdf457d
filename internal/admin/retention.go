package admin

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
)

// Retention says how long old records are kept, so that a server running
// for years does not grow without bound. Zero keeps them forever.
type Retention struct {
	// Statuses: TAXII status resources, by request time.
	Statuses time.Duration
	// Audit: audit records, by time.
	Audit time.Duration
	// Changes: the federation change log, by time. Pruning moves the
	// feed's oldest kept position forward; a peer behind it gets "position
	// expired" and resynchronises the whole collection.
	Changes time.Duration
}

// RetentionStore is what pruning needs of the store.
type RetentionStore interface {
	store.Retention
	store.ChangeRetention
	store.Audit
}

// Prune removes the records older than r allows, as of now, and records
// in the audit log what it removed. It returns the statuses and audit
// records removed; change-log records removed are in the audit record.
func Prune(ctx context.Context, st RetentionStore, r Retention, now time.Time, who string) (statuses, audit int64, err error) {
	var changes int64
	if r.Changes > 0 {
		if changes, err = st.PruneChanges(ctx, now.Add(-r.Changes)); err != nil {
			return 0, 0, fmt.Errorf("retention: %w", err)
		}
		if changes > 0 {
			err = st.AppendAudit(ctx, store.AuditRecord{Principal: who, Action: "admin.retention.prune", Path: "retention",
				Detail: fmt.Sprintf("removed %d change-log records older than %s", changes, r.Changes)})
			if err != nil {
				return 0, 0, fmt.Errorf("retention: %w", err)
			}
		}
	}
	if r.Statuses > 0 {
		if statuses, err = st.PruneStatuses(ctx, now.Add(-r.Statuses)); err != nil {
			return statuses, 0, fmt.Errorf("retention: %w", err)
		}
	}
	if r.Audit > 0 {
		if audit, err = st.PruneAudit(ctx, now.Add(-r.Audit)); err != nil {
			return statuses, audit, fmt.Errorf("retention: %w", err)
		}
	}
	if statuses+audit > 0 {
		err = st.AppendAudit(ctx, store.AuditRecord{Principal: who, Action: "admin.retention.prune", Path: "retention",
			Detail: fmt.Sprintf("removed %d statuses older than %s and %d audit records older than %s", statuses, r.Statuses, audit, r.Audit)})
	}
	return statuses, audit, err
}

// RunRetention prunes at once and then every interval until ctx ends.
// Failures are logged and retried at the next interval.
func RunRetention(ctx context.Context, st RetentionStore, r Retention, every time.Duration, log *slog.Logger) {
	if r.Statuses <= 0 && r.Audit <= 0 && r.Changes <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		statuses, audit, err := Prune(ctx, st, r, time.Now(), "server")
		if err != nil && ctx.Err() == nil {
			log.ErrorContext(ctx, "retention", "err", err)
		} else if statuses+audit > 0 {
			log.InfoContext(ctx, "retention: pruned", "statuses", statuses, "audit", audit)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
