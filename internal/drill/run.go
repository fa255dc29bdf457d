package drill

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/assist"
	"github.com/mitra-cert/mitra/internal/incident"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/taxiiclient"
)

// Clock is the drill's clock.
type Clock interface {
	Now() time.Time
	// Until returns when the drill time t has come: a real clock waits,
	// an injected one moves to t.
	Until(ctx context.Context, t time.Time) error
}

// RealClock runs the drill in real time, Speed times faster (1 when zero).
type RealClock struct {
	Speed float64
	once  sync.Once
	// origin pairs a drill time with the real time it was read.
	origin, real time.Time
}

func (c *RealClock) init() {
	c.once.Do(func() { c.origin, c.real = time.Now().UTC(), time.Now() })
}

// Now implements Clock.
func (c *RealClock) Now() time.Time {
	c.init()
	speed := cmp.Or(c.Speed, 1)
	return c.origin.Add(time.Duration(float64(time.Since(c.real)) * speed))
}

// Until implements Clock.
func (c *RealClock) Until(ctx context.Context, t time.Time) error {
	speed := cmp.Or(c.Speed, 1)
	wait := time.Duration(float64(t.Sub(c.Now())) / speed)
	if wait <= 0 {
		return nil
	}
	tm := time.NewTimer(wait)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// FileClock keeps the drill time in a file that the servers taking part
// read as their clock (mitra serve --assist-clock-file): the drill moves
// it step by step and never waits (tests, table-top replays).
type FileClock struct{ Path string }

// Now implements Clock.
func (c FileClock) Now() time.Time {
	b, err := os.ReadFile(c.Path)
	if err != nil {
		return time.Now().UTC()
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
	if err != nil {
		return time.Now().UTC()
	}
	return t
}

// Until implements Clock.
func (c FileClock) Until(_ context.Context, t time.Time) error {
	if !t.After(c.Now()) {
		return nil
	}
	tmp := c.Path + ".tmp"
	if err := os.WriteFile(tmp, []byte(t.UTC().Format(time.RFC3339Nano)), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, c.Path)
}

// Runner plays a scenario.
type Runner struct {
	Scenario *Scenario
	Clock    Clock
	// Assist is the organiser's drill assistance API; TAXII its drill
	// collection (incidents and indicators are published there).
	Assist *assist.Client
	TAXII  *taxiiclient.Client
	// Participants are the assistance clients of the participants'
	// servers, for the steps they play (built from the scenario when nil).
	Participants map[string]*assist.Client
	// DrillPrefix is the drill API path on every server.
	DrillPrefix string
	Getenv      func(string) string
	// Progress, when set, hears of each step.
	Progress io.Writer
	// Collection is the organiser's drill collection (id or alias) the
	// drill's incidents are reported to.
	Collection string

	// incidents are the incident API clients on the organiser's server:
	// "" the operator's, else a participant's.
	incidents map[string]*incident.Client
	reported  []*Incident
	start     time.Time
}

// incidentClient returns the drills' incident API on the organiser's
// server as the operator (who "") or as a participant.
func (r *Runner) incidentClient(who string) (*incident.Client, error) {
	if cl, ok := r.incidents[who]; ok {
		return cl, nil
	}
	acct := r.Scenario.Operator
	if who != "" {
		acct = r.Scenario.participant(who).Incident
	}
	cl, err := incident.NewClient(r.Assist.BaseURL)
	if err != nil {
		return nil, err
	}
	cl.Prefix, cl.User, cl.Password = IncidentPrefix, acct.User, r.Getenv(acct.PasswordEnv)
	if r.incidents == nil {
		r.incidents = map[string]*incident.Client{}
	}
	r.incidents[who] = cl
	return cl, nil
}

// tlpAmber is the TLP 2.0 AMBER marking of drill objects.
const tlpAmber = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"

// Run plays every step at its time and returns the report at the end.
func (r *Runner) Run(ctx context.Context) (*Report, error) {
	s := r.Scenario
	start := s.Start
	if start.IsZero() {
		start = r.Clock.Now().UTC().Truncate(time.Second)
	}
	if err := r.Clock.Until(ctx, start); err != nil {
		return nil, err
	}
	r.start = start
	if r.Participants == nil {
		r.Participants = map[string]*assist.Client{}
		for _, p := range s.Participants {
			if p.URL == "" {
				continue
			}
			cl, err := assist.NewClient(p.URL)
			if err != nil {
				return nil, fmt.Errorf("participant %s: %w", p.Name, err)
			}
			cl.User, cl.Password = p.User, r.Getenv(p.PasswordEnv)
			cl.Prefix, cl.PocPrefix = r.DrillPrefix, r.DrillPrefix
			r.Participants[p.Name] = cl
		}
	}
	stixIDs := map[string]string{}
	var requests []*Request
	for i := range s.Steps {
		st := &s.Steps[i]
		at := start.Add(st.Offset)
		if err := r.Clock.Until(ctx, at); err != nil {
			return nil, err
		}
		if err := r.play(ctx, st, at, stixIDs); err != nil {
			return nil, fmt.Errorf("step at line %d (%s): %w", st.Line, st.At, err)
		}
		if st.Request != nil {
			requests = append(requests, st.Request)
		}
		if err := r.tick(ctx); err != nil {
			return nil, err
		}
		if r.Progress != nil {
			fmt.Fprintf(r.Progress, "%s  step %d/%d (line %d) done\n", at.Format(time.RFC3339), i+1, len(s.Steps), st.Line)
		}
	}
	end := start.Add(s.Steps[len(s.Steps)-1].Offset)
	return r.report(ctx, start, end, requests, r.reported, stixIDs)
}

// tick runs every server's drill clock now, so that deliveries made by
// the last step go through before the next.
func (r *Runner) tick(ctx context.Context) error {
	if _, err := r.Assist.Tick(ctx); err != nil {
		return fmt.Errorf("organiser tick: %w", err)
	}
	names := make([]string, 0, len(r.Participants))
	for n := range r.Participants {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if _, err := r.Participants[n].Tick(ctx); err != nil {
			return fmt.Errorf("participant %s tick: %w", n, err)
		}
	}
	return nil
}

func (r *Runner) play(ctx context.Context, st *Step, at time.Time, stixIDs map[string]string) error {
	ts := at.UTC().Format("2006-01-02T15:04:05.000Z")
	marks := []string{tlpAmber, stix.ExerciseMarkingID}
	publish := func(obj map[string]any) error {
		raw, err := json.Marshal(obj)
		if err != nil {
			return err
		}
		res, err := r.TAXII.Push(ctx, []json.RawMessage{stix.ExerciseMarking, raw})
		if err != nil {
			return err
		}
		if res.FailureCount > 0 && len(res.Failures) > 0 {
			return fmt.Errorf("refused: %s", res.Failures[0].Message)
		}
		return nil
	}
	switch {
	case st.Incident != nil:
		// Through the drills' incident service, under its regime: the
		// service marks it as an exercise and starts the regime's clocks
		// on the drill clock.
		in := st.Incident
		cl, err := r.incidentClient("")
		if err != nil {
			return err
		}
		desc := fmt.Sprintf("EXERCISE. Reported by the fictitious operator %s", in.Operator)
		if in.Description != "" {
			desc += ". " + in.Description
		}
		got, err := cl.Report(ctx, incident.Report{Collection: r.Collection, Regime: cmp.Or(in.Regime, "nis2"),
			CERT: r.Scenario.participant(in.CERT).Organisation, Name: "[EXERCISE] " + in.Name, Description: desc,
			Sector: cmp.Or(in.Sector, "energy"), Severity: cmp.Or(in.Severity, "high"), AwareAt: at, Exercise: true,
			// A re-run step (after a lost answer) finds the same incident.
			IdempotencyKey: fmt.Sprintf("drill/%s/%s/%s", r.Scenario.Name, r.start.Format(time.RFC3339), in.ID)})
		if err != nil {
			return err
		}
		stixIDs[in.ID] = got.ID
		r.reported = append(r.reported, in)
		return nil
	case st.Update != nil:
		u := st.Update
		cl, err := r.incidentClient(st.By)
		if err != nil {
			return err
		}
		id := stixIDs[u.Incident]
		switch {
		case u.State != "":
			_, err = cl.Transition(ctx, id, u.State, u.Text)
		case u.Report != "":
			_, err = cl.FollowUp(ctx, id, incident.FollowUp{Kind: u.Report, Text: cmp.Or(u.Text, "[EXERCISE] "+u.Report+" report")})
		default:
			_, err = cl.MeetStage(ctx, id, u.Stage, u.Text)
		}
		return err
	case st.Indicator != nil:
		in := st.Indicator
		id := "indicator--" + uuid.NewString()
		stixIDs[in.ID] = id
		return publish(map[string]any{"type": "indicator", "spec_version": "2.1", "id": id, "created": ts, "modified": ts,
			"name": "[EXERCISE] " + in.Name, "pattern": in.Pattern, "pattern_type": "stix", "valid_from": ts, "object_marking_refs": marks})
	case st.Request != nil:
		rq := st.Request
		p := r.Scenario.participant(rq.To)
		var concerns []string
		for _, c := range rq.Concerns {
			concerns = append(concerns, stixIDs[c])
		}
		got, err := r.Assist.Raise(ctx, assist.RaiseBody{Contact: p.Contact, Kind: rq.Kind, Concerns: concerns, TLP: rq.TLP,
			ResponseTime: rq.responseTime.String(), Abstract: "[EXERCISE] " + rq.Kind + " request " + rq.ID, Content: rq.Content})
		if err != nil {
			return err
		}
		stixIDs[rq.ID] = got.ID
		return nil
	case st.Respond != nil:
		cl := r.Participants[st.By]
		if cl == nil {
			return fmt.Errorf("participant %s cannot be reached", st.By)
		}
		_, err := cl.Step(ctx, stixIDs[st.Respond.Request], st.Respond.Message, st.Respond.Content)
		return err
	}
	return nil
}
