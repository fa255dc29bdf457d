package incident

import (
	"time"

	"github.com/mitra-cert/mitra/internal/store"
)

// Stage statuses.
const (
	StatusMet     = "met"     // done (Late says whether after the deadline)
	StatusDue     = "due"     // running: Left is the time left
	StatusOverdue = "overdue" // the deadline passed unmet
	StatusWaiting = "waiting" // counts from an earlier stage not yet met
	StatusClosed  = "closed"  // the incident closed before the deadline, unmet
)

// StageStatus is one stage of an incident under its regime at a moment.
type StageStatus struct {
	Stage
	Status string `json:"status"`
	// Due is the deadline (zero while waiting).
	Due time.Time `json:"due,omitzero"`
	// Left is Due minus the moment of evaluation (negative: overdue by);
	// for a met stage, the time that was left when it was met.
	Left time.Duration `json:"left_ns"`
	// LeftText is Left for people ("5h0m0s", "-2h0m0s").
	LeftText string          `json:"left"`
	Met      *store.StageMet `json:"met,omitempty"`
	Late     bool            `json:"late,omitempty"`
}

// Clocks evaluates every stage of r at now for an incident the operator
// became aware of at aware and reported at reported, with the stages met
// so far. closed, when not zero, stops the clocks at that moment.
func Clocks(r Regime, aware, reported time.Time, met map[string]store.StageMet, now, closed time.Time) []StageStatus {
	out := make([]StageStatus, 0, len(r.Stages))
	at := now
	if !closed.IsZero() && closed.Before(now) {
		at = closed
	}
	for _, s := range r.Stages {
		st := StageStatus{Stage: s}
		var base time.Time
		switch s.After {
		case AfterAwareness:
			base = aware
		case AfterReported:
			base = reported
		default:
			if m, ok := met[s.After]; ok {
				base = m.At
			}
		}
		if !base.IsZero() {
			st.Due = base.Add(time.Duration(s.Within))
		}
		m, isMet := met[s.Name]
		switch {
		case isMet:
			mm := m
			st.Status, st.Met = StatusMet, &mm
			if !st.Due.IsZero() {
				st.Left = st.Due.Sub(m.At)
				st.Late = st.Left < 0
			}
		case st.Due.IsZero():
			st.Status = StatusWaiting
		default:
			st.Left = st.Due.Sub(at)
			switch {
			case st.Left < 0:
				st.Status = StatusOverdue
			case at.Equal(closed):
				st.Status = StatusClosed
			default:
				st.Status = StatusDue
			}
		}
		if st.Status != StatusWaiting {
			st.LeftText = st.Left.Round(time.Second).String()
		}
		out = append(out, st)
	}
	return out
}
