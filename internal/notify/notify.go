// Package notify delivers notifications over webhooks (JSON signed with
// HMAC-SHA256 and a timestamp) and e-mail (SMTP), from a durable queue:
// a delivery is stored before anyone is told it was accepted, sent by a
// worker that leases it, retried with exponential backoff, and kept,
// visible, whatever happens. A process killed while sending leaves the
// lease to expire; the delivery is sent again (at least once: receivers
// deduplicate by the X-Mitra-Delivery id).
package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"net/url"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/store"
)

// Channels.
const (
	ChannelWebhook = "webhook"
	ChannelEmail   = "email"
)

// ErrInvalid marks a delivery that cannot be queued (bad target).
var ErrInvalid = errors.New("invalid")

// Message is what a notification says: an event name, a one-line subject
// and a JSON payload.
type Message struct {
	Event   string
	Subject string
	Payload any
}

// Webhook returns a delivery of m to the webhook at target (http or https
// URL).
func Webhook(target string, m Message) (store.Notification, error) {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return store.Notification{}, fmt.Errorf("webhook %q: want an http or https URL: %w", target, ErrInvalid)
	}
	return newDelivery(ChannelWebhook, target, m)
}

// Email returns a delivery of m to the e-mail address to.
func Email(to string, m Message) (store.Notification, error) {
	if _, err := mail.ParseAddress(to); err != nil {
		return store.Notification{}, fmt.Errorf("e-mail %q: %v: %w", to, err, ErrInvalid)
	}
	return newDelivery(ChannelEmail, to, m)
}

func newDelivery(channel, target string, m Message) (store.Notification, error) {
	if m.Event == "" {
		return store.Notification{}, fmt.Errorf("notification without an event: %w", ErrInvalid)
	}
	body, err := json.Marshal(envelope{Event: m.Event, Subject: m.Subject, Data: m.Payload})
	if err != nil {
		return store.Notification{}, fmt.Errorf("notification %s: %w", m.Event, err)
	}
	return store.Notification{ID: "delivery--" + uuid.NewString(), Channel: channel, Target: target, Event: m.Event,
		Subject: m.Subject, Body: body, State: store.NotificationPending}, nil
}

// envelope is the JSON document a webhook receives (and an e-mail
// carries): {"event":..,"subject":..,"data":..}; the delivery id and the
// time of sending travel in headers.
type envelope struct {
	Event   string `json:"event"`
	Subject string `json:"subject,omitempty"`
	Data    any    `json:"data,omitempty"`
}

// Targets are the configured receivers of every notification of a server.
type Targets struct {
	Webhooks []string
	Emails   []string
}

// Validate checks every target.
func (t Targets) Validate() error {
	_, err := t.Deliveries(Message{Event: "check"})
	return err
}

// Deliveries returns one delivery of m per target.
func (t Targets) Deliveries(m Message) ([]store.Notification, error) {
	var out []store.Notification
	for _, w := range t.Webhooks {
		d, err := Webhook(w, m)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	for _, e := range t.Emails {
		d, err := Email(e, m)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// Sender sends one delivery over its channel. An error means "try again
// later"; a *Permanent error means the target refused it for good.
type Sender interface {
	Send(ctx context.Context, d store.Notification, at time.Time) error
}

// Permanent wraps a failure that retrying cannot fix (a 4xx answer other
// than 408 and 429, a rejected address): the delivery is marked failed.
type Permanent struct{ Err error }

func (p *Permanent) Error() string { return p.Err.Error() }
func (p *Permanent) Unwrap() error { return p.Err }

// Config configures a Queue.
type Config struct {
	Store Store
	// Senders by channel; a delivery whose channel has none waits (it is
	// kept and retried, e.g. until SMTP is configured).
	Senders map[string]Sender
	Now     func() time.Time
	Logger  *slog.Logger
	// Backoff after the nth failed attempt: Base * 2^(n-1), at most Max.
	// Defaults 30s and 1h.
	BackoffBase, BackoffMax time.Duration
	// MaxAttempts before a delivery is marked failed; 0 retries forever.
	MaxAttempts int
	// Lease is how long a claimed delivery is held by one sender before
	// another may take it (it bounds the redelivery delay after a crash);
	// default 2m. Keep it above the senders' timeouts.
	Lease time.Duration
	// Batch is how many deliveries one pass claims; default 20.
	Batch int
}

// Queue is the durable notification queue.
type Queue struct {
	cfg Config
}

// New returns a queue.
func New(cfg Config) *Queue {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = 30 * time.Second
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = time.Hour
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 2 * time.Minute
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 20
	}
	return &Queue{cfg: cfg}
}

// Enqueue stores deliveries (from Webhook, Email or Targets.Deliveries)
// durably; when it returns nil they will be sent, across restarts.
func (q *Queue) Enqueue(ctx context.Context, ds ...store.Notification) error {
	if len(ds) == 0 {
		return nil
	}
	now := q.cfg.Now().UTC()
	for i := range ds {
		Prepare(&ds[i], now)
	}
	return q.cfg.Store.EnqueueNotifications(ctx, ds...)
}

// Prepare fills what a delivery needs before it is stored (id, state,
// creation and first attempt at now), for callers that enqueue it in
// their own transaction.
func Prepare(d *store.Notification, now time.Time) {
	if d.ID == "" {
		d.ID = "delivery--" + uuid.NewString()
	}
	d.State, d.Attempts, d.LastError = store.NotificationPending, 0, ""
	d.Created, d.NextAttempt = now, now
}

// List lists deliveries, newest first.
func (q *Queue) List(ctx context.Context, f store.NotificationFilter) ([]store.Notification, error) {
	return q.cfg.Store.ListNotifications(ctx, f)
}

// Backoff is the wait after the nth failed attempt (n >= 1).
func (q *Queue) Backoff(n int) time.Duration {
	d := q.cfg.BackoffBase
	for i := 1; i < n; i++ {
		d *= 2
		if d >= q.cfg.BackoffMax {
			return q.cfg.BackoffMax
		}
	}
	return min(d, q.cfg.BackoffMax)
}

// RunOnce sends the deliveries due now, once each, and returns how many
// it attempted.
func (q *Queue) RunOnce(ctx context.Context) (int, error) {
	now := q.cfg.Now().UTC()
	ds, err := q.cfg.Store.ClaimNotifications(ctx, now, q.cfg.Lease, q.cfg.Batch)
	if err != nil {
		return 0, fmt.Errorf("claim deliveries: %w", err)
	}
	for i := range ds {
		d := &ds[i]
		s, ok := q.cfg.Senders[d.Channel]
		var err error
		if !ok {
			err = fmt.Errorf("no %s sender configured", d.Channel)
		} else {
			err = s.Send(ctx, *d, q.cfg.Now().UTC())
		}
		if ctx.Err() != nil {
			// Shutting down: the lease expires and the delivery is sent
			// again; do not count the interrupted attempt.
			return i, ctx.Err()
		}
		at := q.cfg.Now().UTC()
		d.Attempts++
		var perm *Permanent
		switch {
		case err == nil:
			d.State, d.Delivered, d.LastError = store.NotificationDelivered, at, ""
		case errors.As(err, &perm) || (q.cfg.MaxAttempts > 0 && d.Attempts >= q.cfg.MaxAttempts):
			d.State, d.LastError = store.NotificationFailed, err.Error()
			q.cfg.Logger.Warn("notification failed for good", "delivery", d.ID, "target", d.Target, "attempts", d.Attempts, "err", err)
		default:
			d.NextAttempt, d.LastError = at.Add(q.Backoff(d.Attempts)), err.Error()
			q.cfg.Logger.Info("notification will be retried", "delivery", d.ID, "target", d.Target, "attempts", d.Attempts, "next", d.NextAttempt, "err", err)
		}
		if err := q.cfg.Store.FinishNotification(ctx, d); err != nil {
			return i + 1, fmt.Errorf("record delivery %s: %w", d.ID, err)
		}
	}
	return len(ds), nil
}

// Run sends due deliveries every interval until ctx ends.
func (q *Queue) Run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for {
			n, err := q.RunOnce(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				q.cfg.Logger.Error("notification queue", "err", err)
				break
			}
			if n < q.cfg.Batch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
