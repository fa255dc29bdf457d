package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
)

// This file implements the incident package's Store and the notify
// package's Store (migration 7).

const incidentCols = `id, collection, regime, regime_def, reporter, cert, name, state, aware_at, reported_at, updated_at`

func scanIncident(r Row) (*store.IncidentRecord, error) {
	var rec store.IncidentRecord
	var def string
	var aware, reported, updated int64
	if err := r.Scan(&rec.ID, &rec.Collection, &rec.Regime, &def, &rec.Reporter, &rec.CERT, &rec.Name, &rec.State, &aware, &reported, &updated); err != nil {
		return nil, err
	}
	rec.RegimeDef = []byte(def)
	rec.AwareAt, rec.Reported, rec.Updated = fromMicros(aware), fromMicros(reported), fromMicros(updated)
	return &rec, nil
}

// CreateIncident records a new incident with its first event, the stages
// its report met and its notifications, in one transaction.
func (s *Store) CreateIncident(ctx context.Context, rec *store.IncidentRecord, ev store.IncidentEvent, met []store.StageMet, ds []store.Notification) error {
	if rec.ID == "" || rec.Collection == "" || rec.Regime == "" {
		return fmt.Errorf("incident needs an id, a collection and a regime: %w", store.ErrInvalid)
	}
	return s.write(ctx, "create incident", func(tx Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO incidents (`+incidentCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			rec.ID, rec.Collection, rec.Regime, string(rec.RegimeDef), rec.Reporter, rec.CERT, rec.Name, rec.State,
			micros(rec.AwareAt), micros(rec.Reported), micros(rec.Updated))
		if s.d.IsUnique(err) {
			return fmt.Errorf("incident %s: %w", rec.ID, store.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("create incident: %w", err)
		}
		return s.incidentStep(ctx, tx, ev, met, ds)
	})
}

// incidentStep appends an event, marks stages met (a stage met before keeps
// its first meeting) and queues notifications, in tx.
func (s *Store) incidentStep(ctx context.Context, tx Tx, ev store.IncidentEvent, met []store.StageMet, ds []store.Notification) error {
	b := &Batch{}
	b.Queue(`INSERT INTO incident_events (incident, at, username, organisation, kind, from_state, to_state, stage, note, ref) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ev.Incident, micros(ev.At), ev.User, ev.Organisation, ev.Kind, ev.From, ev.To, ev.Stage, ev.Note, ev.Ref)
	for _, m := range met {
		b.Queue(`INSERT INTO incident_stages (incident, stage, met_at, username, organisation, ref) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			m.Incident, m.Stage, micros(m.At), m.User, m.Organisation, m.Ref)
	}
	queueNotifications(b, ds)
	if err := tx.Send(ctx, b); err != nil {
		return fmt.Errorf("incident %s: %w", ev.Incident, err)
	}
	return nil
}

// GetIncident returns an incident's record.
func (s *Store) GetIncident(ctx context.Context, id string) (*store.IncidentRecord, error) {
	rec, err := scanIncident(s.db.QueryRow(ctx, `SELECT `+incidentCols+` FROM incidents WHERE id = ?`, id))
	if noRows(err) {
		return nil, fmt.Errorf("incident %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("incident %s: %w", id, err)
	}
	return rec, nil
}

// ListIncidents lists incidents, most recently updated first.
func (s *Store) ListIncidents(ctx context.Context, f store.IncidentFilter) ([]*store.IncidentRecord, error) {
	var a Args
	q := `SELECT ` + incidentCols + ` FROM incidents WHERE true`
	if f.State != "" {
		q += ` AND state = ` + a.Add(f.State)
	}
	if f.Open {
		q += ` AND state <> 'closed'`
	}
	if f.Organisation != "" {
		q += ` AND (reporter = ` + a.Add(f.Organisation) + ` OR cert = ` + a.Add(f.Organisation) + `)`
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	q += ` ORDER BY updated_at DESC, id LIMIT ` + a.Add(limit)
	rows, err := s.db.Query(ctx, q, a...)
	return collect(rows, err, "list incidents", scanIncident)
}

// IncidentStages lists the stages an incident met, in the order met.
func (s *Store) IncidentStages(ctx context.Context, id string) ([]store.StageMet, error) {
	rows, err := s.db.Query(ctx, `SELECT incident, stage, met_at, username, organisation, ref FROM incident_stages WHERE incident = ? ORDER BY met_at, stage`, id)
	return collect(rows, err, "incident stages", func(r Row) (store.StageMet, error) {
		var m store.StageMet
		var at int64
		err := r.Scan(&m.Incident, &m.Stage, &at, &m.User, &m.Organisation, &m.Ref)
		m.At = fromMicros(at)
		return m, err
	})
}

// IncidentEvents lists an incident's history, oldest first.
func (s *Store) IncidentEvents(ctx context.Context, id string) ([]store.IncidentEvent, error) {
	rows, err := s.db.Query(ctx, `SELECT seq, incident, at, username, organisation, kind, from_state, to_state, stage, note, ref FROM incident_events WHERE incident = ? ORDER BY seq`, id)
	return collect(rows, err, "incident events", func(r Row) (store.IncidentEvent, error) {
		var e store.IncidentEvent
		var at int64
		err := r.Scan(&e.Seq, &e.Incident, &at, &e.User, &e.Organisation, &e.Kind, &e.From, &e.To, &e.Stage, &e.Note, &e.Ref)
		e.At = fromMicros(at)
		return e, err
	})
}

// RecordIncidentStep records one step of an incident in one transaction.
func (s *Store) RecordIncidentStep(ctx context.Context, step store.IncidentStep) error {
	return s.write(ctx, "incident step", func(tx Tx) error {
		var n int64
		var err error
		if step.To != "" {
			n, err = tx.Exec(ctx, `UPDATE incidents SET state = ?, updated_at = ? WHERE id = ? AND state = ?`, step.To, micros(step.At), step.Incident, step.From)
		} else {
			n, err = tx.Exec(ctx, `UPDATE incidents SET updated_at = ? WHERE id = ?`, micros(step.At), step.Incident)
		}
		if err != nil {
			return fmt.Errorf("incident %s: %w", step.Incident, err)
		}
		if n == 0 {
			if _, err := s.GetIncident(ctx, step.Incident); err != nil {
				return err
			}
			return fmt.Errorf("incident %s is no longer %s: %w", step.Incident, step.From, store.ErrConflict)
		}
		return s.incidentStep(ctx, tx, step.Event, step.Met, step.Deliveries)
	})
}

// ClaimAlert records an alert once and queues its notifications with it.
func (s *Store) ClaimAlert(ctx context.Context, al store.Alert, ds []store.Notification) (bool, error) {
	claimed := false
	err := s.write(ctx, "incident alert", func(tx Tx) error {
		n, err := tx.Exec(ctx, `INSERT INTO incident_alerts (incident, stage, kind, at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			al.Incident, al.Stage, al.Kind, micros(al.At))
		if err != nil {
			return fmt.Errorf("incident alert: %w", err)
		}
		if n == 0 {
			return nil
		}
		claimed = true
		b := &Batch{}
		queueNotifications(b, ds)
		if b.Len() == 0 {
			return nil
		}
		return tx.Send(ctx, b)
	})
	return claimed, err
}

func queueNotifications(b *Batch, ds []store.Notification) {
	for _, d := range ds {
		b.Queue(`INSERT INTO notify_deliveries (id, channel, target, event, subject, body, organisation, state, attempts, next_attempt, leased_until, last_error, created, delivered) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, 0)`,
			d.ID, d.Channel, d.Target, d.Event, d.Subject, d.Body, d.Organisation, d.State, d.Attempts, micros(d.NextAttempt), d.LastError, micros(d.Created))
	}
}

// EnqueueNotifications stores new notifications.
func (s *Store) EnqueueNotifications(ctx context.Context, ds ...store.Notification) error {
	for _, d := range ds {
		if d.ID == "" || d.Channel == "" || d.Target == "" || d.State == "" {
			return fmt.Errorf("notification needs an id, a channel, a target and a state: %w", store.ErrInvalid)
		}
	}
	return s.write(ctx, "enqueue notifications", func(tx Tx) error {
		b := &Batch{}
		queueNotifications(b, ds)
		if err := tx.Send(ctx, b); err != nil {
			if s.d.IsUnique(err) {
				return fmt.Errorf("enqueue notifications: %w", store.ErrConflict)
			}
			return fmt.Errorf("enqueue notifications: %w", err)
		}
		return nil
	})
}

const notificationCols = `id, channel, target, event, subject, body, organisation, state, attempts, next_attempt, leased_until, last_error, created, delivered`

func scanNotification(r Row) (store.Notification, error) {
	var d store.Notification
	var next, leased, created, delivered int64
	err := r.Scan(&d.ID, &d.Channel, &d.Target, &d.Event, &d.Subject, &d.Body, &d.Organisation, &d.State, &d.Attempts, &next, &leased, &d.LastError, &created, &delivered)
	d.NextAttempt, d.LeasedUntil, d.Created, d.Delivered = fromMicros(next), fromMicros(leased), fromMicros(created), fromMicros(delivered)
	return d, err
}

// ClaimNotifications leases due pending notifications. Each is taken by a
// conditional update, so two servers of one database never hold the same
// one at once.
func (s *Store) ClaimNotifications(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.Notification, error) {
	rows, err := s.db.Query(ctx, `SELECT `+notificationCols+` FROM notify_deliveries WHERE state = ? AND next_attempt <= ? AND leased_until <= ? ORDER BY next_attempt, seq LIMIT ?`,
		store.NotificationPending, micros(now), micros(now), limit)
	cands, err := collect(rows, err, "due notifications", scanNotification)
	if err != nil {
		return nil, err
	}
	until := now.Add(lease)
	var out []store.Notification
	for _, d := range cands {
		n, err := s.db.Exec(ctx, `UPDATE notify_deliveries SET leased_until = ? WHERE id = ? AND state = ? AND leased_until <= ?`,
			micros(until), d.ID, store.NotificationPending, micros(now))
		if err != nil {
			return out, fmt.Errorf("claim notification %s: %w", d.ID, err)
		}
		if n == 1 {
			d.LeasedUntil = until
			out = append(out, d)
		}
	}
	return out, nil
}

// FinishNotification records an attempt's outcome and drops the lease.
func (s *Store) FinishNotification(ctx context.Context, d *store.Notification) error {
	n, err := s.db.Exec(ctx, `UPDATE notify_deliveries SET state = ?, attempts = ?, next_attempt = ?, leased_until = 0, last_error = ?, delivered = ? WHERE id = ?`,
		d.State, d.Attempts, micros(d.NextAttempt), d.LastError, micros(d.Delivered), d.ID)
	if err != nil {
		return fmt.Errorf("notification %s: %w", d.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("notification %s: %w", d.ID, store.ErrNotFound)
	}
	return nil
}

// ListNotifications lists notifications, newest first.
func (s *Store) ListNotifications(ctx context.Context, f store.NotificationFilter) ([]store.Notification, error) {
	var a Args
	q := `SELECT ` + notificationCols + ` FROM notify_deliveries WHERE true`
	if f.State != "" {
		q += ` AND state = ` + a.Add(f.State)
	}
	if f.Organisation != "" {
		q += ` AND organisation = ` + a.Add(f.Organisation)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	q += ` ORDER BY created DESC, seq DESC LIMIT ` + a.Add(limit)
	rows, err := s.db.Query(ctx, q, a...)
	return collect(rows, err, "list notifications", scanNotification)
}
