package notify

import (
	"context"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
)

// Store is what the queue needs of the store: deliveries that survive a
// restart, claimed under a lease so that two servers of one database do
// not send the same delivery at once.
type Store interface {
	// EnqueueNotifications stores new pending deliveries.
	EnqueueNotifications(ctx context.Context, ds ...store.Notification) error
	// ClaimNotifications leases up to limit pending deliveries due at now
	// (NextAttempt <= now and no live lease) until now+lease.
	ClaimNotifications(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.Notification, error)
	// FinishNotification records an attempt's outcome (State, Attempts,
	// NextAttempt, LastError, Delivered) and drops the lease.
	FinishNotification(ctx context.Context, d *store.Notification) error
	// ListNotifications lists deliveries, newest first.
	ListNotifications(ctx context.Context, f store.NotificationFilter) ([]store.Notification, error)
}
