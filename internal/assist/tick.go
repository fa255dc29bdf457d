package assist

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
)

// TickResult says what one tick did.
type TickResult struct {
	Escalated []string `json:"escalated"`
	// Overdue are requests past due with no contact left to escalate to.
	Overdue []string `json:"overdue"`
	// OutOfHours are overdue requests whose further contacts are all off
	// duty now (working hours): they escalate at the first tick one is
	// staffed.
	OutOfHours []string `json:"out_of_hours,omitempty"`
	Delivered  int      `json:"delivered"`
	Failed     int      `json:"failed"`
	// Errors are the reasons of the failed deliveries.
	Errors []string `json:"errors,omitempty"`
	// Busy: another process was running this clock; nothing was done.
	Busy bool `json:"busy,omitempty"`
}

// Tick runs the clock once: it escalates the overdue requests this server
// raised and attempts the deliveries that are due.
//
// Several servers on one database take turns: the one holding the
// collection's lease ticks, the others find Busy set and do nothing (an
// escalation is never made twice).
func (s *Service) Tick(ctx context.Context) (TickResult, error) {
	var res TickResult
	key := "assist/" + s.cfg.Collection
	ok, err := s.cfg.Store.TakeLease(ctx, key, s.holder, time.Minute)
	if err != nil {
		return res, err
	}
	if !ok {
		res.Busy = true
		return res, nil
	}
	defer func() { _ = s.cfg.Store.ReleaseLease(context.WithoutCancel(ctx), key, s.holder) }()
	if err := s.escalate(ctx, &res); err != nil {
		return res, err
	}
	return res, s.deliver(ctx, &res)
}

// Run ticks every interval until ctx ends.
func (s *Service) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if res, err := s.Tick(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.cfg.Log.Error("assistance tick", "err", err)
		} else if len(res.Escalated)+res.Delivered+res.Failed > 0 {
			s.cfg.Log.Info("assistance tick", "escalated", len(res.Escalated), "delivered", res.Delivered, "failed", res.Failed)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// escalate adds an escalation step to each overdue request raised here
// (the requester's clock decides) whose organisation has a next contact,
// and sends the request with its history to that contact.
func (s *Service) escalate(ctx context.Context, res *TickResult) error {
	all, col, err := s.requests(ctx, nil)
	if err != nil {
		return err
	}
	var contacts []Contact
	loaded := false
	now := s.now()
	for _, r := range all {
		if r.Incoming || !r.Overdue {
			continue
		}
		if !loaded {
			if contacts, err = s.Contacts(ctx, nil); err != nil {
				return err
			}
			loaded = true
		}
		next, outcome := nextContact(contacts, r.Contact, r.ContactOrganisation, now)
		switch outcome {
		case noneLeft:
			res.Overdue = append(res.Overdue, r.ID)
			continue
		case noneStaffed:
			res.OutOfHours = append(res.OutOfHours, r.ID)
			continue
		}
		level, _ := access.ParseTLP(r.TLP)
		recipients := append(append([]string{}, r.recipients...), next.Organisation)
		raw, id, err := newNote(now, fmt.Sprintf("escalated: %s to %s", r.ID, next.Name),
			fmt.Sprintf("No response from the previous contact within %s: escalated to %s.", r.ResponseTime, next.Name),
			[]string{r.ID}, level, recipients, s.cfg.Exercise,
			ext{Message: MsgEscalate, RequestRef: r.ID, AuthorRef: r.Requester, AuthorName: r.RequesterName, ContactRef: next.ID, Escalation: r.Escalations + 1})
		if err != nil {
			return err
		}
		// The server writes as the requesting organisation.
		p := &access.Principal{User: "mitra:assist", Organisation: r.Requester}
		if err := s.write(ctx, p, col, false, raw); err != nil {
			return fmt.Errorf("escalate %s: %w", r.ID, err)
		}
		objs := []string{r.ID}
		for _, st := range r.Steps {
			objs = append(objs, st.ID)
		}
		objs = append(objs, id)
		if err := s.cfg.Store.EnqueueDelivery(ctx, &store.Delivery{Label: r.ID, Collection: col.ID, Objects: objs, Route: "contact:" + next.ID, NextAttempt: now}); err != nil {
			return err
		}
		res.Escalated = append(res.Escalated, r.ID)
	}
	return nil
}

// backoff is the wait after the n-th failed attempt: 1 minute doubling up
// to an hour; a delivery is never given up.
func backoff(n int) time.Duration {
	d := time.Minute
	for i := 1; i < n && d < time.Hour; i++ {
		d *= 2
	}
	return min(d, time.Hour)
}

// deliver attempts the due deliveries.
func (s *Service) deliver(ctx context.Context, res *TickResult) error {
	now := s.now()
	due, err := s.cfg.Store.DueDeliveries(ctx, now, 100)
	if err != nil {
		return err
	}
	var contacts []Contact
	var cerr error
	loaded := false
	loadContacts := func() ([]Contact, error) {
		if !loaded {
			contacts, cerr = s.Contacts(ctx, nil)
			loaded = true
		}
		return contacts, cerr
	}
	for i := range due {
		d := &due[i]
		err := s.attempt(ctx, d, loadContacts)
		if err == nil {
			if err := s.cfg.Store.DeliveryDone(ctx, d.Seq, now); err != nil {
				return err
			}
			res.Delivered++
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		res.Failed++
		res.Errors = append(res.Errors, fmt.Sprintf("%s to %s: %v", d.Label, d.Route, err))
		if err := s.cfg.Store.DeliveryFailed(ctx, d.Seq, err.Error(), now.Add(backoff(d.Attempts+1))); err != nil {
			return err
		}
	}
	return nil
}

// attempt sends one delivery: its objects' latest versions, with the
// extension definitions (so that any TAXII peer can read them).
func (s *Service) attempt(ctx context.Context, d *store.Delivery, contacts func() ([]Contact, error)) error {
	peer, remote, err := s.route(ctx, d, contacts)
	if err != nil {
		return err
	}
	if s.cfg.Sender == nil {
		return fmt.Errorf("no sender configured")
	}
	page, err := s.cfg.Store.QueryObjects(ctx, d.Collection, store.Query{IDs: d.Objects, WithBody: true})
	if err != nil {
		return err
	}
	if len(page.Entries) == 0 {
		return fmt.Errorf("objects %v are no longer stored", d.Objects)
	}
	objs := []json.RawMessage{MitraIdentity, ExtensionDefinition}
	exercise := false
	for _, e := range page.Entries {
		objs = append(objs, e.Raw)
		exercise = exercise || stix.IsExercise(e.Raw)
	}
	if exercise {
		objs = append(objs, stix.ExerciseMarking)
	}
	return s.cfg.Sender.Send(ctx, peer, remote, objs)
}
