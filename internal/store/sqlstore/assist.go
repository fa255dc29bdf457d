package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
)

// This file implements store.Assistance.

var _ store.Assistance = (*Store)(nil)

// EnqueueDelivery implements store.Assistance.
func (s *Store) EnqueueDelivery(ctx context.Context, d *store.Delivery) error {
	if d.Label == "" || d.Collection == "" || len(d.Objects) == 0 || d.Route == "" {
		return fmt.Errorf("delivery needs a label, a collection, objects and a route: %w", store.ErrInvalid)
	}
	objs, err := json.Marshal(d.Objects)
	if err != nil {
		return err
	}
	d.Created = s.now().UTC()
	if d.NextAttempt.IsZero() {
		d.NextAttempt = d.Created
	}
	// RETURNING reads: it runs in a write transaction (the embedded
	// store's pool reads only).
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("enqueue delivery: %w", err)
	}
	defer tx.Rollback(ctx)
	err = tx.QueryRow(ctx, `INSERT INTO assist_deliveries (label, collection, objects, route, remote_collection, next_attempt, created) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING seq`,
		d.Label, d.Collection, string(objs), d.Route, d.RemoteCollection, micros(d.NextAttempt), micros(d.Created)).Scan(&d.Seq)
	if err != nil {
		return fmt.Errorf("enqueue delivery: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("enqueue delivery: %w", err)
	}
	return nil
}

const deliveryCols = `seq, label, collection, objects, route, remote_collection, attempts, next_attempt, last_error, delivered, created`

func scanDelivery(r Row) (store.Delivery, error) {
	var d store.Delivery
	var objs string
	var next, delivered, created int64
	if err := r.Scan(&d.Seq, &d.Label, &d.Collection, &objs, &d.Route, &d.RemoteCollection, &d.Attempts, &next, &d.LastError, &delivered, &created); err != nil {
		return d, err
	}
	if err := json.Unmarshal([]byte(objs), &d.Objects); err != nil {
		return d, fmt.Errorf("delivery %d objects: %w", d.Seq, err)
	}
	d.NextAttempt, d.Delivered, d.Created = fromMicros(next), fromMicros(delivered), fromMicros(created)
	return d, nil
}

// DueDeliveries implements store.Assistance.
func (s *Store) DueDeliveries(ctx context.Context, now time.Time, limit int) ([]store.Delivery, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.Query(ctx, `SELECT `+deliveryCols+` FROM assist_deliveries WHERE delivered = 0 AND next_attempt <= ? ORDER BY seq LIMIT ?`, micros(now), limit)
	return collect(rows, err, "due deliveries", scanDelivery)
}

// DeliveryDone implements store.Assistance.
func (s *Store) DeliveryDone(ctx context.Context, seq int64, at time.Time) error {
	n, err := s.db.Exec(ctx, `UPDATE assist_deliveries SET delivered = ?, attempts = attempts + 1, last_error = '' WHERE seq = ? AND delivered = 0`, micros(at), seq)
	if err != nil {
		return fmt.Errorf("delivery %d: %w", seq, err)
	}
	if n == 0 {
		return s.deliveryExists(ctx, seq)
	}
	return nil
}

// DeliveryFailed implements store.Assistance.
func (s *Store) DeliveryFailed(ctx context.Context, seq int64, reason string, next time.Time) error {
	n, err := s.db.Exec(ctx, `UPDATE assist_deliveries SET attempts = attempts + 1, last_error = ?, next_attempt = ? WHERE seq = ? AND delivered = 0`, reason, micros(next), seq)
	if err != nil {
		return fmt.Errorf("delivery %d: %w", seq, err)
	}
	if n == 0 {
		return s.deliveryExists(ctx, seq)
	}
	return nil
}

// deliveryExists is nil for a delivery already delivered (another process
// finished it), ErrNotFound for none.
func (s *Store) deliveryExists(ctx context.Context, seq int64) error {
	var n int
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM assist_deliveries WHERE seq = ?`, seq).Scan(&n); err != nil {
		return fmt.Errorf("delivery %d: %w", seq, err)
	}
	if n == 0 {
		return fmt.Errorf("delivery %d: %w", seq, store.ErrNotFound)
	}
	return nil
}

// Deliveries implements store.Assistance.
func (s *Store) Deliveries(ctx context.Context, label string) ([]store.Delivery, error) {
	q, args := `SELECT `+deliveryCols+` FROM assist_deliveries ORDER BY seq`, []any{}
	if label != "" {
		q, args = `SELECT `+deliveryCols+` FROM assist_deliveries WHERE label = ? ORDER BY seq`, []any{label}
	}
	rows, err := s.db.Query(ctx, q, args...)
	return collect(rows, err, "deliveries", scanDelivery)
}

// CreateChallenge implements store.Assistance.
func (s *Store) CreateChallenge(ctx context.Context, c *store.Challenge) error {
	if c.ID == "" || c.Contact == "" {
		return fmt.Errorf("challenge needs an id and a contact: %w", store.ErrInvalid)
	}
	_, err := s.db.Exec(ctx, `INSERT INTO poc_challenges (id, contact, channel, sent, send_error) VALUES (?, ?, ?, ?, ?)`,
		c.ID, c.Contact, c.Channel, micros(c.Sent), c.SendError)
	if s.d.IsUnique(err) {
		return fmt.Errorf("challenge %s: %w", c.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create challenge: %w", err)
	}
	return nil
}

const challengeCols = `id, contact, channel, sent, send_error, answered, answered_via`

func scanChallenge(r Row) (store.Challenge, error) {
	var c store.Challenge
	var sent, answered int64
	if err := r.Scan(&c.ID, &c.Contact, &c.Channel, &sent, &c.SendError, &answered, &c.AnsweredVia); err != nil {
		return c, err
	}
	c.Sent, c.Answered = fromMicros(sent), fromMicros(answered)
	return c, nil
}

// AnswerChallenge implements store.Assistance.
func (s *Store) AnswerChallenge(ctx context.Context, id string, at time.Time, via string) (*store.Challenge, error) {
	if _, err := s.db.Exec(ctx, `UPDATE poc_challenges SET answered = ?, answered_via = ? WHERE id = ? AND answered = 0`, micros(at), via, id); err != nil {
		return nil, fmt.Errorf("answer challenge: %w", err)
	}
	c, err := scanChallenge(s.db.QueryRow(ctx, `SELECT `+challengeCols+` FROM poc_challenges WHERE id = ?`, id))
	if noRows(err) {
		return nil, fmt.Errorf("challenge %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("challenge %s: %w", id, err)
	}
	return &c, nil
}

// Challenges implements store.Assistance.
func (s *Store) Challenges(ctx context.Context, contact string, since time.Time) ([]store.Challenge, error) {
	q, args := `SELECT `+challengeCols+` FROM poc_challenges WHERE sent >= ? ORDER BY sent, id`, []any{micros(since)}
	if contact != "" {
		q, args = `SELECT `+challengeCols+` FROM poc_challenges WHERE contact = ? AND sent >= ? ORDER BY sent, id`, []any{contact, micros(since)}
	}
	rows, err := s.db.Query(ctx, q, args...)
	return collect(rows, err, "challenges", scanChallenge)
}
