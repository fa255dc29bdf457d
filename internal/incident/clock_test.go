package incident_test

import (
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/incident"
	"github.com/mitra-cert/mitra/internal/store"
)

// TestEveryBuiltinDeadline walks every stage of every built-in regime:
// due with the full time left when its clock starts, due with a second
// left just before its deadline, overdue a second after, met in time or
// late; stages counting from an unmet one wait.
func TestEveryBuiltinDeadline(t *testing.T) {
	want := map[string]map[string]time.Duration{
		"nis2": {"early-warning": 24 * time.Hour, "acknowledgement": 24 * time.Hour, "notification": 72 * time.Hour,
			"final-report": 30 * 24 * time.Hour, "feedback": 14 * 24 * time.Hour},
		"gossopka":             {"notification": 24 * time.Hour, "acknowledgement": 24 * time.Hour, "final-report": 30 * 24 * time.Hour, "feedback": 14 * 24 * time.Hour},
		"gossopka-significant": {"notification": 3 * time.Hour, "acknowledgement": 24 * time.Hour, "final-report": 30 * 24 * time.Hour, "feedback": 14 * 24 * time.Hour},
	}
	aware := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	reported := aware.Add(30 * time.Minute)
	for _, r := range incident.Builtin() {
		if len(r.Stages) != len(want[r.Name]) {
			t.Fatalf("%s has %d stages, want %d", r.Name, len(r.Stages), len(want[r.Name]))
		}
		met := map[string]store.StageMet{}
		for i, st := range r.Stages {
			within := want[r.Name][st.Name]
			if time.Duration(st.Within) != within {
				t.Errorf("%s %s within %v, want %v", r.Name, st.Name, time.Duration(st.Within), within)
			}
			// Where its clock starts.
			var start time.Time
			switch st.After {
			case incident.AfterAwareness:
				start = aware
			case incident.AfterReported:
				start = reported
			default:
				m, ok := met[st.After]
				if !ok {
					t.Fatalf("%s %s counts from %s, not met yet", r.Name, st.Name, st.After)
				}
				start = m.At
				// Before that stage is met this one waits.
				delete(met, st.After)
				if s := incident.Clocks(r, aware, reported, met, start, time.Time{})[i]; s.Status != incident.StatusWaiting || !s.Due.IsZero() {
					t.Errorf("%s %s before %s is met: %+v", r.Name, st.Name, st.After, s)
				}
				met[st.After] = m
			}
			due := start.Add(within)
			at := func(now time.Time) incident.StageStatus {
				return incident.Clocks(r, aware, reported, met, now, time.Time{})[i]
			}
			if s := at(start); s.Status != incident.StatusDue || s.Left != within || !s.Due.Equal(due) {
				t.Errorf("%s %s at its start: %+v", r.Name, st.Name, s)
			}
			if s := at(due.Add(-time.Second)); s.Status != incident.StatusDue || s.Left != time.Second {
				t.Errorf("%s %s a second before: %+v", r.Name, st.Name, s)
			}
			if s := at(due.Add(time.Second)); s.Status != incident.StatusOverdue || s.Left != -time.Second || s.LeftText != "-1s" {
				t.Errorf("%s %s a second after: %+v", r.Name, st.Name, s)
			}
			// Closed before the deadline: frozen, not overdue later.
			closed := due.Add(-time.Hour)
			if s := incident.Clocks(r, aware, reported, met, due.Add(48*time.Hour), closed)[i]; s.Status != incident.StatusClosed || s.Left != time.Hour {
				t.Errorf("%s %s closed an hour before: %+v", r.Name, st.Name, s)
			}
			// Met late, then (for the next stages) met in time, half-way.
			met[st.Name] = store.StageMet{Stage: st.Name, At: due.Add(time.Minute), User: "u"}
			if s := at(due.Add(time.Hour)); s.Status != incident.StatusMet || !s.Late || s.Left != -time.Minute {
				t.Errorf("%s %s met a minute late: %+v", r.Name, st.Name, s)
			}
			met[st.Name] = store.StageMet{Stage: st.Name, At: start.Add(within / 2), User: "u"}
			if s := at(due.Add(time.Hour)); s.Status != incident.StatusMet || s.Late || s.Left != within/2 {
				t.Errorf("%s %s met in time: %+v", r.Name, st.Name, s)
			}
		}
	}
}
