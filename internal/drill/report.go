package drill

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/mitra-cert/mitra/internal/incident"
)

// Stage outcomes.
const (
	StageMet    = "met"
	StageMissed = "missed"
	StageOpen   = "open" // not met, deadline after the end of the drill
)

// Report is the outcome of a drill, per participant.
type Report struct {
	Scenario     string              `json:"scenario"`
	Start        time.Time           `json:"start"`
	End          time.Time           `json:"end"`
	Participants []ParticipantReport `json:"participants"`
}

// ParticipantReport is one participant's outcome.
type ParticipantReport struct {
	Name         string          `json:"name"`
	Requests     []RequestReport `json:"requests"`
	StagesMet    int             `json:"stages_met"`
	StagesMissed int             `json:"stages_missed"`
	// Incidents are the drill incidents reported to the participant as
	// their CERT, with every stage of their regime; the participant's
	// own (CERT) stages are counted in IncidentStagesMet and
	// IncidentStagesMissed, the operator's (played by the organiser) are
	// listed only.
	Incidents            []IncidentReport `json:"incidents,omitempty"`
	IncidentStagesMet    int              `json:"incident_stages_met"`
	IncidentStagesMissed int              `json:"incident_stages_missed"`
}

// IncidentReport is one drill incident's outcome under its regime.
type IncidentReport struct {
	ID      string                `json:"id"`
	STIXID  string                `json:"stix_id"`
	Name    string                `json:"name"`
	Regime  string                `json:"regime"`
	State   string                `json:"state"`
	AwareAt time.Time             `json:"aware_at"`
	Stages  []IncidentStageReport `json:"stages"`
}

// IncidentStageReport is one regime stage of a drill incident at the end
// of the drill: met in time, missed (met late, or overdue unmet) or open
// (its deadline after the end, or waiting on an earlier stage).
type IncidentStageReport struct {
	Name     string    `json:"name"`
	Party    string    `json:"party"`
	Deadline time.Time `json:"deadline,omitzero"`
	MetAt    time.Time `json:"met_at,omitzero"`
	MetBy    string    `json:"met_by,omitempty"`
	Outcome  string    `json:"outcome"`
}

// incidentStage reads a stage's outcome from the incident service's clock.
func incidentStage(s incident.StageStatus) IncidentStageReport {
	out := IncidentStageReport{Name: s.Name, Party: s.Party, Deadline: s.Due}
	if s.Met != nil {
		out.MetAt, out.MetBy = s.Met.At, s.Met.Organisation
	}
	switch {
	case s.Status == incident.StatusMet && !s.Late:
		out.Outcome = StageMet
	case s.Status == incident.StatusMet, s.Status == incident.StatusOverdue:
		out.Outcome = StageMissed
	default:
		out.Outcome = StageOpen
	}
	return out
}

// RequestReport is one request's outcome.
type RequestReport struct {
	ID     string    `json:"id"`
	STIXID string    `json:"stix_id"`
	Kind   string    `json:"kind"`
	Raised time.Time `json:"raised"`
	// TimeToAcknowledge and TimeToAnswer are zero when it did not happen
	// (Acknowledged/Answered false).
	Acknowledged      bool          `json:"acknowledged"`
	TimeToAcknowledge time.Duration `json:"time_to_acknowledge_ns"`
	Answered          bool          `json:"answered"`
	TimeToAnswer      time.Duration `json:"time_to_answer_ns"`
	State             string        `json:"state"`
	Escalations       int           `json:"escalations"`
	Stages            []StageReport `json:"stages"`
}

// StageReport is one stage of a request.
type StageReport struct {
	Name     string        `json:"name"`
	Within   time.Duration `json:"within_ns"`
	Deadline time.Time     `json:"deadline"`
	Outcome  string        `json:"outcome"`
}

func stage(name string, raised time.Time, within time.Duration, done bool, took time.Duration, end time.Time) StageReport {
	s := StageReport{Name: name, Within: within, Deadline: raised.Add(within)}
	switch {
	case done && took <= within:
		s.Outcome = StageMet
	case done || !end.Before(s.Deadline):
		s.Outcome = StageMissed
	default:
		s.Outcome = StageOpen
	}
	return s
}

// report reads each request's history from the organiser's server.
func (r *Runner) report(ctx context.Context, start, end time.Time, requests []*Request, incidents []*Incident, stixIDs map[string]string) (*Report, error) {
	rep := &Report{Scenario: r.Scenario.Name, Start: start, End: end}
	byName := map[string]*ParticipantReport{}
	for _, p := range r.Scenario.Participants {
		rep.Participants = append(rep.Participants, ParticipantReport{Name: p.Name})
	}
	for i := range rep.Participants {
		byName[rep.Participants[i].Name] = &rep.Participants[i]
	}
	for _, rq := range requests {
		got, err := r.Assist.Get(ctx, stixIDs[rq.ID])
		if err != nil {
			return nil, fmt.Errorf("request %s: %w", rq.ID, err)
		}
		rr := RequestReport{ID: rq.ID, STIXID: got.ID, Kind: got.Kind, Raised: got.Created, State: got.State, Escalations: got.Escalations}
		if !got.Acknowledged.IsZero() {
			rr.Acknowledged, rr.TimeToAcknowledge = true, got.Acknowledged.Sub(got.Created)
		}
		if !got.Responded.IsZero() {
			rr.Answered, rr.TimeToAnswer = true, got.Responded.Sub(got.Created)
		}
		// A response without a separate acknowledgement acknowledges too.
		ackDone, ackTook := rr.Acknowledged, rr.TimeToAcknowledge
		if rr.Answered && (!ackDone || rr.TimeToAnswer < ackTook) {
			ackDone, ackTook = true, rr.TimeToAnswer
		}
		rr.Stages = []StageReport{
			stage("acknowledge", got.Created, rq.ackWithin, ackDone, ackTook, end),
			stage("respond", got.Created, rq.responseTime, rr.Answered, rr.TimeToAnswer, end),
		}
		pr := byName[rq.To]
		for _, s := range rr.Stages {
			switch s.Outcome {
			case StageMet:
				pr.StagesMet++
			case StageMissed:
				pr.StagesMissed++
			}
		}
		pr.Requests = append(pr.Requests, rr)
	}
	// The incidents' clocks as the drill's incident service keeps them, at
	// the drill time of the end (the servers' drill clock).
	for _, in := range incidents {
		cl, err := r.incidentClient("")
		if err != nil {
			return nil, err
		}
		got, err := cl.Get(ctx, stixIDs[in.ID])
		if err != nil {
			return nil, fmt.Errorf("incident %s: %w", in.ID, err)
		}
		ir := IncidentReport{ID: in.ID, STIXID: got.ID, Name: got.Name, Regime: got.Regime, State: string(got.State), AwareAt: got.AwareAt}
		pr := byName[in.CERT]
		for _, st := range got.Stages {
			sr := incidentStage(st)
			ir.Stages = append(ir.Stages, sr)
			if st.Party != incident.PartyCERT {
				continue
			}
			switch sr.Outcome {
			case StageMet:
				pr.IncidentStagesMet++
			case StageMissed:
				pr.IncidentStagesMissed++
			}
		}
		pr.Incidents = append(pr.Incidents, ir)
	}
	return rep, nil
}

// Print writes the report for people.
func (rep *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "Drill %q, %s to %s\n", rep.Scenario, rep.Start.Format(time.RFC3339), rep.End.Format(time.RFC3339))
	for _, p := range rep.Participants {
		fmt.Fprintf(w, "\nParticipant %s: %d stages met, %d missed\n", p.Name, p.StagesMet, p.StagesMissed)
		for _, r := range p.Requests {
			ack, ans := "not acknowledged", "not answered"
			if r.Acknowledged {
				ack = "acknowledged after " + r.TimeToAcknowledge.String()
			}
			if r.Answered {
				ans = "answered after " + r.TimeToAnswer.String()
			}
			fmt.Fprintf(w, "  %s (%s): %s, %s; state %s; %d escalations\n", r.ID, r.Kind, ack, ans, r.State, r.Escalations)
			for _, s := range r.Stages {
				fmt.Fprintf(w, "    %-12s within %-8s %s\n", s.Name, s.Within, s.Outcome)
			}
		}
		if len(p.Incidents) > 0 {
			fmt.Fprintf(w, "  Incidents as CERT: %d stages met, %d missed\n", p.IncidentStagesMet, p.IncidentStagesMissed)
		}
		for _, in := range p.Incidents {
			fmt.Fprintf(w, "  %s (%s, %s): state %s\n", in.ID, in.Name, in.Regime, in.State)
			for _, s := range in.Stages {
				line := fmt.Sprintf("    %-16s %-8s %-7s", s.Name, s.Party, s.Outcome)
				if !s.Deadline.IsZero() {
					line += " due " + s.Deadline.Format(time.RFC3339)
				}
				if !s.MetAt.IsZero() {
					line += " met " + s.MetAt.Format(time.RFC3339)
				}
				fmt.Fprintln(w, line)
			}
		}
	}
}
