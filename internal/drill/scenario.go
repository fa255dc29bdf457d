// Package drill plays incident drills (capacity-building exercises such
// as the annual ASEAN CERT Incident Drill): a scenario file says, on a
// clock, which fictitious operators report incidents, which indicators are
// published and which assistance requests go to participating peers, and
// may script the participants' answers. Everything a drill creates carries
// the exercise marking (stix.ExerciseMarkingID) and lives in the drill's
// own collections (a separate namespace), so it never enters real exports
// or real federation links. At the end a report per participant says how
// long each request took to be acknowledged and answered, and which
// stages were met and missed.
package drill

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ErrScenario marks a scenario with bad content.
var ErrScenario = errors.New("bad scenario")

// Scenario is a parsed scenario file.
type Scenario struct {
	Name string `yaml:"name"`
	// Start is the drill time of offset 0 (default: when the run starts).
	Start time.Time `yaml:"start"`
	// Operator is the account on the organiser's server whose organisation
	// plays the fictitious operators: it reports the drill's incidents and
	// their follow-ups (required when the scenario has incidents).
	Operator     *Account      `yaml:"operator"`
	Participants []Participant `yaml:"participants"`
	Steps        []Step        `yaml:"steps"`
}

// Account is a user of the organiser's server, its password in an
// environment variable.
type Account struct {
	User        string `yaml:"user"`
	PasswordEnv string `yaml:"password_env"`
}

// Participant is a peer taking part.
type Participant struct {
	Name string `yaml:"name"`
	// Contact is the participant's point of contact in the organiser's
	// drill directory (an identity id).
	Contact string `yaml:"contact"`
	// URL, User and PasswordEnv reach the participant's server for the
	// scripted steps played "by" it (optional).
	URL         string `yaml:"url"`
	User        string `yaml:"user"`
	PasswordEnv string `yaml:"password_env"`
	// Organisation is the participant's organisation on the organiser's
	// server (an identity id): the CERT the drill's incidents naming it
	// are reported to. Incident is its account there, for the incident
	// steps it plays (acknowledging, feedback).
	Organisation string   `yaml:"organisation"`
	Incident     *Account `yaml:"incident_account"`
}

// Step is one timed step. Exactly one of its actions is set.
type Step struct {
	// At is the offset from the start ("90m", "1h30m").
	At string `yaml:"at"`
	// By names the participant that plays the step (respond only); the
	// organiser plays the others.
	By        string     `yaml:"by"`
	Incident  *Incident  `yaml:"incident"`
	Indicator *Indicator `yaml:"indicator"`
	Request   *Request   `yaml:"request"`
	Respond   *Respond   `yaml:"respond"`
	Update    *Update    `yaml:"update"`

	Line   int           `yaml:"-"`
	Offset time.Duration `yaml:"-"`
}

// Incident is an incident reported by a fictitious operator.
type Incident struct {
	ID          string `yaml:"id"`
	Operator    string `yaml:"operator"`
	Name        string `yaml:"name"`
	Sector      string `yaml:"sector"`
	Description string `yaml:"description"`
	// Regime is the reporting regime the incident is reported under
	// (default nis2); CERT the participant it is reported to.
	Regime   string `yaml:"regime"`
	CERT     string `yaml:"cert"`
	Severity string `yaml:"severity"`
}

// Update is a step on a drill incident: exactly one of State (a
// transition, "acknowledged" the CERT's acknowledgement), Report (a
// follow-up report: intermediate and final from the operator, feedback
// from the CERT) and Stage (a stage met by other means). Played by the
// operator, or by the participant named in the step's by.
type Update struct {
	Incident string `yaml:"incident"`
	State    string `yaml:"state"`
	Report   string `yaml:"report"`
	Stage    string `yaml:"stage"`
	Text     string `yaml:"text"`
}

// Indicator is an indicator published during the drill.
type Indicator struct {
	ID      string `yaml:"id"`
	Name    string `yaml:"name"`
	Pattern string `yaml:"pattern"`
}

// Request is an assistance request to a participant, with its stages.
type Request struct {
	ID           string   `yaml:"id"`
	To           string   `yaml:"to"`
	Kind         string   `yaml:"kind"`
	Concerns     []string `yaml:"concerns"`
	TLP          string   `yaml:"tlp"`
	ResponseTime string   `yaml:"response_time"`
	// AcknowledgeWithin is the acknowledgement stage (default: a quarter
	// of the response time).
	AcknowledgeWithin string `yaml:"acknowledge_within"`
	Content           string `yaml:"content"`

	responseTime, ackWithin time.Duration
}

// Respond is a participant's scripted step on a request.
type Respond struct {
	Request string `yaml:"request"`
	Message string `yaml:"message"`
	Content string `yaml:"content"`
}

// lineError is an error at a line of the file.
func lineError(file string, line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s: %w", file, line, fmt.Sprintf(format, args...), ErrScenario)
}

// Parse reads a scenario (YAML) and checks it; errors name the file and
// the line at fault.
func Parse(file string, data []byte) (*Scenario, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %v: %w", file, err, ErrScenario)
	}
	if len(root.Content) == 0 {
		return nil, fmt.Errorf("%s: empty scenario: %w", file, ErrScenario)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var s Scenario
	if err := dec.Decode(&s); err != nil {
		// yaml.v3 says "line N: field x not found in type ...".
		return nil, fmt.Errorf("%s: %v: %w", file, err, ErrScenario)
	}
	doc := root.Content[0]
	lineOf := func(key string, i int) int {
		for j := 0; j+1 < len(doc.Content); j += 2 {
			if doc.Content[j].Value == key && doc.Content[j+1].Kind == yaml.SequenceNode && i < len(doc.Content[j+1].Content) {
				return doc.Content[j+1].Content[i].Line
			}
		}
		return doc.Line
	}
	if strings.TrimSpace(s.Name) == "" {
		return nil, lineError(file, doc.Line, "the scenario needs a name")
	}
	names := map[string]bool{}
	for i, p := range s.Participants {
		line := lineOf("participants", i)
		switch {
		case p.Name == "":
			return nil, lineError(file, line, "participant needs a name")
		case names[p.Name]:
			return nil, lineError(file, line, "participant %q twice", p.Name)
		case !strings.HasPrefix(p.Contact, "identity--"):
			return nil, lineError(file, line, "participant %s: contact %q: want an identity id", p.Name, p.Contact)
		case p.URL != "" && (p.User == "" || p.PasswordEnv == ""):
			return nil, lineError(file, line, "participant %s: a url needs user and password_env", p.Name)
		case p.Organisation != "" && !strings.HasPrefix(p.Organisation, "identity--"):
			return nil, lineError(file, line, "participant %s: organisation %q: want an identity id", p.Name, p.Organisation)
		case p.Incident != nil && (p.Incident.User == "" || p.Incident.PasswordEnv == ""):
			return nil, lineError(file, line, "participant %s: incident_account needs user and password_env", p.Name)
		}
		names[p.Name] = true
	}
	// keyLine is the line of a key of the i-th step (the step's line when
	// absent), so that an error points at the action at fault.
	keyLine := func(i int, keys ...string) int {
		for j := 0; j+1 < len(doc.Content); j += 2 {
			if doc.Content[j].Value != "steps" || doc.Content[j+1].Kind != yaml.SequenceNode || i >= len(doc.Content[j+1].Content) {
				continue
			}
			m := doc.Content[j+1].Content[i]
			for k := 0; k+1 < len(m.Content); k += 2 {
				for _, key := range keys {
					if m.Content[k].Value == key {
						return m.Content[k].Line
					}
				}
			}
			return m.Line
		}
		return doc.Line
	}
	ids := map[string]string{} // scenario id -> kind
	var last time.Duration
	for i := range s.Steps {
		st := &s.Steps[i]
		st.Line = lineOf("steps", i)
		atLine := keyLine(i, "at")
		d, err := time.ParseDuration(st.At)
		if err != nil || d < 0 {
			return nil, lineError(file, atLine, "at %q: want an offset such as 90m", st.At)
		}
		if d < last {
			return nil, lineError(file, atLine, "at %s comes before the previous step (%s)", d, last)
		}
		st.Offset, last = d, d
		n := 0
		for _, set := range []bool{st.Incident != nil, st.Indicator != nil, st.Request != nil, st.Respond != nil, st.Update != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			return nil, lineError(file, st.Line, "a step has exactly one of incident, indicator, request, respond, update")
		}
		// Errors about the action point at its line.
		st.Line = keyLine(i, "incident", "indicator", "request", "respond", "update")
		if st.By != "" && st.Respond == nil && st.Update == nil {
			return nil, lineError(file, st.Line, "only respond and update steps are played by a participant")
		}
		newID := func(id, kind string) error {
			if id == "" {
				return lineError(file, st.Line, "%s needs an id", kind)
			}
			if _, dup := ids[id]; dup {
				return lineError(file, st.Line, "id %q used twice", id)
			}
			ids[id] = kind
			return nil
		}
		switch {
		case st.Incident != nil:
			if err := newID(st.Incident.ID, "incident"); err != nil {
				return nil, err
			}
			in := st.Incident
			if in.Operator == "" || in.Name == "" {
				return nil, lineError(file, st.Line, "incident %s needs an operator and a name", in.ID)
			}
			if s.Operator == nil || s.Operator.User == "" || s.Operator.PasswordEnv == "" {
				return nil, lineError(file, st.Line, "incident %s: the scenario needs an operator account (operator: {user, password_env})", in.ID)
			}
			if p := s.participant(in.CERT); p == nil || p.Organisation == "" {
				return nil, lineError(file, st.Line, "incident %s: cert %q: want a participant with an organisation", in.ID, in.CERT)
			}
		case st.Indicator != nil:
			if err := newID(st.Indicator.ID, "indicator"); err != nil {
				return nil, err
			}
			if st.Indicator.Pattern == "" {
				return nil, lineError(file, st.Line, "indicator %s needs a pattern", st.Indicator.ID)
			}
		case st.Request != nil:
			r := st.Request
			if err := newID(r.ID, "request"); err != nil {
				return nil, err
			}
			if !names[r.To] {
				return nil, lineError(file, st.Line, "request %s: unknown participant %q", r.ID, r.To)
			}
			if len(r.Concerns) == 0 {
				return nil, lineError(file, st.Line, "request %s concerns no incident or indicator", r.ID)
			}
			for _, c := range r.Concerns {
				if k := ids[c]; k != "incident" && k != "indicator" {
					return nil, lineError(file, st.Line, "request %s: %q is not an earlier incident or indicator", r.ID, c)
				}
			}
			if r.responseTime, err = time.ParseDuration(r.ResponseTime); err != nil || r.responseTime < time.Minute {
				return nil, lineError(file, st.Line, "request %s: response_time %q: want a duration of at least 1m", r.ID, r.ResponseTime)
			}
			r.ackWithin = r.responseTime / 4
			if r.AcknowledgeWithin != "" {
				if r.ackWithin, err = time.ParseDuration(r.AcknowledgeWithin); err != nil || r.ackWithin <= 0 {
					return nil, lineError(file, st.Line, "request %s: acknowledge_within %q: want a duration", r.ID, r.AcknowledgeWithin)
				}
			}
		case st.Update != nil:
			u := st.Update
			if ids[u.Incident] != "incident" {
				return nil, lineError(file, st.Line, "update: %q is not an earlier incident", u.Incident)
			}
			n := 0
			for _, v := range []string{u.State, u.Report, u.Stage} {
				if v != "" {
					n++
				}
			}
			if n != 1 {
				return nil, lineError(file, st.Line, "update of %s: want exactly one of state, report, stage", u.Incident)
			}
			if u.Report != "" && !slices.Contains([]string{"intermediate", "final", "feedback"}, u.Report) {
				return nil, lineError(file, st.Line, "update of %s: report %q: want intermediate, final or feedback", u.Incident, u.Report)
			}
			if st.By != "" {
				if p := s.participant(st.By); p == nil || p.Incident == nil {
					return nil, lineError(file, st.Line, "update: by %q: want a participant with an incident_account", st.By)
				}
			}
		case st.Respond != nil:
			if !names[st.By] {
				return nil, lineError(file, st.Line, "respond: by %q: want a participant", st.By)
			}
			if ids[st.Respond.Request] != "request" {
				return nil, lineError(file, st.Line, "respond: %q is not an earlier request", st.Respond.Request)
			}
			if !slices.Contains([]string{"acknowledge", "answer", "more-information", "accept", "decline"}, st.Respond.Message) {
				return nil, lineError(file, st.Line, "respond: message %q: want acknowledge, answer, more-information, accept or decline", st.Respond.Message)
			}
			p := s.participant(st.By)
			if p.URL == "" {
				return nil, lineError(file, st.Line, "respond: participant %s has no url to play it on", st.By)
			}
		}
	}
	if len(s.Steps) == 0 {
		return nil, lineError(file, doc.Line, "the scenario has no steps")
	}
	return &s, nil
}

// HasIncidents reports whether the scenario reports incidents.
func (s *Scenario) HasIncidents() bool {
	return slices.ContainsFunc(s.Steps, func(st Step) bool { return st.Incident != nil })
}

func (s *Scenario) participant(name string) *Participant {
	for i := range s.Participants {
		if s.Participants[i].Name == name {
			return &s.Participants[i]
		}
	}
	return nil
}

// Prefix is where a server serves its drill service: the assistance and
// directory APIs over the drill's own collections, everything marked as
// an exercise.
const Prefix = "/x-mitra-drill/"

// IncidentPrefix is where a server serves the drills' incident API: the
// incident service over exercise incidents only (incident.Config.Exercise).
const IncidentPrefix = Prefix + "incidents/"
