package incident

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Parties: who must act to meet a stage.
const (
	PartyOperator = "operator" // the reporting organisation
	PartyCERT     = "cert"     // the CERT the incident is reported to
)

// Bases a stage's deadline counts from, besides an earlier stage's name.
const (
	AfterAwareness = "awareness" // when the operator became aware
	AfterReported  = "reported"  // when the incident was reported here
)

// Events that meet a stage without naming it.
const (
	OnReport       = "report"       // the incident report itself
	OnAcknowledge  = "acknowledge"  // the CERT's first step out of "reported"
	OnIntermediate = "intermediate" // an intermediate follow-up report
	OnFinal        = "final"        // a final follow-up report
	OnFeedback     = "feedback"     // the CERT's feedback report
)

// Follow-up kinds (STIX report objects referring to the incident).
var FollowUpKinds = []string{OnIntermediate, OnFinal, OnFeedback}

// Duration is a time.Duration written as "24h", "90m" or "30d" (days).
type Duration time.Duration

var dayRE = regexp.MustCompile(`^(\d+)d$`)

// ParseDuration reads a Duration: a Go duration or a whole number of days.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if m := dayRE.FindStringSubmatch(s); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil {
			return 0, err
		}
		return Duration(time.Duration(n) * 24 * time.Hour), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (24h, 90m, 30d)", s)
	}
	return Duration(d), nil
}

func (d Duration) String() string {
	t := time.Duration(d)
	if t > 0 && t%(24*time.Hour) == 0 {
		return strconv.Itoa(int(t/(24*time.Hour))) + "d"
	}
	return t.String()
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	*d = v
	return err
}

// Stage is one step a regime asks for, with its deadline.
type Stage struct {
	Name  string `json:"name"`
	Title string `json:"title,omitempty"`
	// Party must act: PartyOperator or PartyCERT.
	Party string `json:"party"`
	// Within is the deadline, counted from After: AfterAwareness,
	// AfterReported or the name of an earlier stage (from when it was met;
	// until then this stage waits).
	Within Duration `json:"within"`
	After  string   `json:"after"`
	// On names the event that meets the stage (OnReport, OnAcknowledge, a
	// follow-up kind); empty: it is met only by name.
	On string `json:"on,omitempty"`
	// Warn is how long before the deadline the parties are warned;
	// default a quarter of Within.
	Warn Duration `json:"warn,omitempty"`
	// Basis cites the rule (article, order) the stage follows.
	Basis string `json:"basis,omitempty"`
}

// warn is the warning lead time.
func (s Stage) warn() time.Duration {
	if s.Warn > 0 {
		return time.Duration(s.Warn)
	}
	return time.Duration(s.Within) / 4
}

// Regime is a set of reporting stages with deadlines, as a law or a CERT
// sets them: data, not code.
type Regime struct {
	Name        string  `json:"name"`
	Title       string  `json:"title,omitempty"`
	Description string  `json:"description,omitempty"`
	Stages      []Stage `json:"stages"`
}

// Stage returns the stage named name.
func (r Regime) Stage(name string) (Stage, bool) {
	i := slices.IndexFunc(r.Stages, func(s Stage) bool { return s.Name == name })
	if i < 0 {
		return Stage{}, false
	}
	return r.Stages[i], true
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// Validate checks a regime; the error names the stage and field.
func (r Regime) Validate() error {
	if !nameRE.MatchString(r.Name) {
		return fmt.Errorf("name: %q: want lower-case letters, digits and hyphens", r.Name)
	}
	if len(r.Stages) == 0 {
		return errors.New("stages: a regime needs at least one stage")
	}
	seen := map[string]bool{}
	for i, s := range r.Stages {
		at := fmt.Sprintf("stages[%d]", i)
		if err := s.validate(seen); err != nil {
			return fmt.Errorf("%s.%w", at, err)
		}
		seen[s.Name] = true
	}
	return nil
}

// fieldError names the field of a stage that is wrong.
type fieldError struct {
	field string
	msg   string
}

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

func (s Stage) validate(earlier map[string]bool) error {
	switch {
	case !nameRE.MatchString(s.Name):
		return &fieldError{"name", fmt.Sprintf("%q: want lower-case letters, digits and hyphens", s.Name)}
	case earlier[s.Name]:
		return &fieldError{"name", fmt.Sprintf("%q: two stages have this name", s.Name)}
	case s.Party != PartyOperator && s.Party != PartyCERT:
		return &fieldError{"party", fmt.Sprintf("%q: want %s or %s", s.Party, PartyOperator, PartyCERT)}
	case s.Within <= 0:
		return &fieldError{"within", "want a positive duration (24h, 90m, 30d)"}
	case s.Warn < 0 || s.Warn >= s.Within:
		return &fieldError{"warn", "want a positive duration shorter than within"}
	case s.After != AfterAwareness && s.After != AfterReported && !earlier[s.After]:
		return &fieldError{"after", fmt.Sprintf("%q: want %s, %s or the name of an earlier stage", s.After, AfterAwareness, AfterReported)}
	case s.On != "" && s.On != OnReport && s.On != OnAcknowledge && !slices.Contains(FollowUpKinds, s.On):
		return &fieldError{"on", fmt.Sprintf("%q: want %s, %s, %s or empty", s.On, OnReport, OnAcknowledge, strings.Join(FollowUpKinds, ", "))}
	case s.On == OnAcknowledge && s.Party != PartyCERT, s.On == OnFeedback && s.Party != PartyCERT:
		return &fieldError{"on", fmt.Sprintf("%q is the CERT's act: want party %s", s.On, PartyCERT)}
	case (s.On == OnReport || s.On == OnIntermediate || s.On == OnFinal) && s.Party != PartyOperator:
		return &fieldError{"on", fmt.Sprintf("%q is the operator's act: want party %s", s.On, PartyOperator)}
	}
	return nil
}

// Builtin returns the regimes Mitra knows without a file:
//
//   - nis2: Directive (EU) 2022/2555 Art. 23(4): an early warning within
//     24 hours of becoming aware, an incident notification within 72 hours,
//     a final report within one month of the notification; Art. 23(5):
//     the CSIRT responds to the early warning within 24 hours.
//   - gossopka and gossopka-significant: the Russian Federation's
//     GosSOPKA reporting to the NCCCI (FSB order No. 282 of 19.06.2019):
//     within 24 hours of detection, or 3 hours for a significant
//     critical-information-infrastructure object.
//
// Each also has a CERT feedback stage (Mitra's default, not the law's).
func Builtin() []Regime {
	return []Regime{
		{Name: "nis2", Title: "NIS2 (Directive (EU) 2022/2555, Art. 23)", Stages: []Stage{
			{Name: "early-warning", Title: "Early warning", Party: PartyOperator, Within: Duration(24 * time.Hour), After: AfterAwareness, On: OnReport, Basis: "NIS2 Art. 23(4)(a)"},
			{Name: "acknowledgement", Title: "CSIRT response to the early warning", Party: PartyCERT, Within: Duration(24 * time.Hour), After: "early-warning", On: OnAcknowledge, Basis: "NIS2 Art. 23(5)"},
			{Name: "notification", Title: "Incident notification", Party: PartyOperator, Within: Duration(72 * time.Hour), After: AfterAwareness, On: OnIntermediate, Basis: "NIS2 Art. 23(4)(b)"},
			{Name: "final-report", Title: "Final report", Party: PartyOperator, Within: Duration(30 * 24 * time.Hour), After: "notification", On: OnFinal, Basis: "NIS2 Art. 23(4)(d)"},
			{Name: "feedback", Title: "CSIRT feedback on the final report", Party: PartyCERT, Within: Duration(14 * 24 * time.Hour), After: "final-report", On: OnFeedback},
		}},
		gossopka("gossopka", "GosSOPKA (other objects: 24 hours)", 24*time.Hour),
		gossopka("gossopka-significant", "GosSOPKA (significant CII object: 3 hours)", 3*time.Hour),
	}
}

func gossopka(name, title string, within time.Duration) Regime {
	return Regime{Name: name, Title: title, Stages: []Stage{
		{Name: "notification", Title: "Notification to the NCCCI", Party: PartyOperator, Within: Duration(within), After: AfterAwareness, On: OnReport, Basis: "FSB order No. 282, item 4"},
		{Name: "acknowledgement", Title: "NCCCI acknowledgement", Party: PartyCERT, Within: Duration(24 * time.Hour), After: "notification", On: OnAcknowledge},
		{Name: "final-report", Title: "Results of the response", Party: PartyOperator, Within: Duration(30 * 24 * time.Hour), After: "notification", On: OnFinal},
		{Name: "feedback", Title: "NCCCI feedback", Party: PartyCERT, Within: Duration(14 * 24 * time.Hour), After: "final-report", On: OnFeedback},
	}}
}

// Regimes is the set of regimes a server knows, by name.
type Regimes struct {
	byName map[string]Regime
	order  []string
}

// NewRegimes returns the built-in regimes plus extra ones; an extra regime
// may replace a built-in one of the same name.
func NewRegimes(extra ...Regime) (*Regimes, error) {
	rs := &Regimes{byName: map[string]Regime{}}
	for _, r := range append(Builtin(), extra...) {
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("regime %s: %w", r.Name, err)
		}
		if _, ok := rs.byName[r.Name]; !ok {
			rs.order = append(rs.order, r.Name)
		}
		rs.byName[r.Name] = r
	}
	return rs, nil
}

// Get returns the regime named name.
func (rs *Regimes) Get(name string) (Regime, bool) {
	r, ok := rs.byName[name]
	return r, ok
}

// List returns the regimes, built-in ones first.
func (rs *Regimes) List() []Regime {
	out := make([]Regime, 0, len(rs.order))
	for _, n := range rs.order {
		out = append(out, rs.byName[n])
	}
	return out
}

// FileError is a bad regime file: it names the file, the line and the
// field.
type FileError struct {
	File  string
	Line  int
	Field string // e.g. regimes[0].stages[2].within
	Msg   string
}

func (e *FileError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Field, e.Msg)
}

// ParseRegimes reads regimes from a YAML document:
//
//	regimes:
//	  - name: ncsc-xx
//	    title: National rules of XX
//	    stages:
//	      - name: notification
//	        party: operator        # operator | cert
//	        within: 6h             # Go duration or days: 30d
//	        after: awareness       # awareness | reported | an earlier stage
//	        on: report             # report | acknowledge | intermediate | final | feedback
//	        warn: 1h               # optional
//	        basis: Order 12, item 3
//
// A bad document gets a *FileError naming the line and the field; unknown
// fields are errors (a misspelt "within" must not silently drop a clock).
func ParseRegimes(file string, data []byte) ([]Regime, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		line := 0
		if m := regexp.MustCompile(`line (\d+)`).FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
		return nil, &FileError{File: file, Line: line, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(doc.Content) == 0 {
		return nil, &FileError{File: file, Line: 1, Msg: "empty document: want a 'regimes' list"}
	}
	p := parser{file: file}
	root := doc.Content[0]
	var list *yaml.Node
	if err := p.mapping(root, "", map[string]func(*yaml.Node, string) error{
		"regimes": func(n *yaml.Node, f string) error { list = n; return p.kind(n, f, yaml.SequenceNode, "a list") },
	}); err != nil {
		return nil, err
	}
	if list == nil {
		return nil, &FileError{File: file, Line: root.Line, Field: "regimes", Msg: "missing"}
	}
	var out []Regime
	names := map[string]bool{}
	for i, rn := range list.Content {
		f := fmt.Sprintf("regimes[%d]", i)
		var r Regime
		var stages *yaml.Node
		lines := map[string]int{}
		err := p.mapping(rn, f, map[string]func(*yaml.Node, string) error{
			"name":        p.str(&r.Name, lines),
			"title":       p.str(&r.Title, lines),
			"description": p.str(&r.Description, lines),
			"stages": func(n *yaml.Node, f string) error {
				stages = n
				return p.kind(n, f, yaml.SequenceNode, "a list")
			},
		})
		if err != nil {
			return nil, err
		}
		if r.Name == "" {
			return nil, &FileError{File: file, Line: rn.Line, Field: f + ".name", Msg: "missing"}
		}
		if !nameRE.MatchString(r.Name) {
			return nil, &FileError{File: file, Line: lines["name"], Field: f + ".name", Msg: fmt.Sprintf("%q: want lower-case letters, digits and hyphens", r.Name)}
		}
		if names[r.Name] {
			return nil, &FileError{File: file, Line: lines["name"], Field: f + ".name", Msg: fmt.Sprintf("%q: two regimes have this name", r.Name)}
		}
		names[r.Name] = true
		if stages == nil || len(stages.Content) == 0 {
			return nil, &FileError{File: file, Line: rn.Line, Field: f + ".stages", Msg: "a regime needs at least one stage"}
		}
		seen := map[string]bool{}
		for j, sn := range stages.Content {
			sf := fmt.Sprintf("%s.stages[%d]", f, j)
			var s Stage
			sl := map[string]int{}
			err := p.mapping(sn, sf, map[string]func(*yaml.Node, string) error{
				"name":   p.str(&s.Name, sl),
				"title":  p.str(&s.Title, sl),
				"party":  p.str(&s.Party, sl),
				"after":  p.str(&s.After, sl),
				"on":     p.str(&s.On, sl),
				"basis":  p.str(&s.Basis, sl),
				"within": p.dur(&s.Within, sl),
				"warn":   p.dur(&s.Warn, sl),
			})
			if err != nil {
				return nil, err
			}
			if err := s.validate(seen); err != nil {
				var fe *fieldError
				if errors.As(err, &fe) {
					line, ok := sl[fe.field]
					msg := fe.msg
					if !ok {
						line, msg = sn.Line, "missing"
						if fe.field == "party" || fe.field == "after" || fe.field == "within" || fe.field == "name" {
							msg = "missing: " + fe.msg
						}
					}
					return nil, &FileError{File: file, Line: line, Field: sf + "." + fe.field, Msg: msg}
				}
				return nil, &FileError{File: file, Line: sn.Line, Field: sf, Msg: err.Error()}
			}
			seen[s.Name] = true
			r.Stages = append(r.Stages, s)
		}
		out = append(out, r)
	}
	return out, nil
}

type parser struct{ file string }

func (p parser) err(n *yaml.Node, field, msg string) error {
	return &FileError{File: p.file, Line: n.Line, Field: field, Msg: msg}
}

func (p parser) kind(n *yaml.Node, field string, k yaml.Kind, what string) error {
	if n.Kind != k {
		return p.err(n, field, "want "+what)
	}
	return nil
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// mapping walks a mapping node, calling the handler of each key; an
// unknown or repeated key is an error at its line.
func (p parser) mapping(n *yaml.Node, field string, handlers map[string]func(*yaml.Node, string) error) error {
	if n.Kind != yaml.MappingNode {
		f := field
		if f == "" {
			f = "(document)"
		}
		return p.err(n, f, "want a mapping of fields")
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		h, ok := handlers[k.Value]
		if !ok {
			known := make([]string, 0, len(handlers))
			for name := range handlers {
				known = append(known, name)
			}
			slices.Sort(known)
			return p.err(k, join(field, k.Value), "unknown field (known: "+strings.Join(known, ", ")+")")
		}
		if seen[k.Value] {
			return p.err(k, join(field, k.Value), "given twice")
		}
		seen[k.Value] = true
		if err := h(v, join(field, k.Value)); err != nil {
			return err
		}
	}
	return nil
}

func (p parser) str(dst *string, lines map[string]int) func(*yaml.Node, string) error {
	return func(n *yaml.Node, f string) error {
		if n.Kind != yaml.ScalarNode {
			return p.err(n, f, "want a string")
		}
		*dst = n.Value
		lines[f[strings.LastIndex(f, ".")+1:]] = n.Line
		return nil
	}
}

func (p parser) dur(dst *Duration, lines map[string]int) func(*yaml.Node, string) error {
	return func(n *yaml.Node, f string) error {
		if n.Kind != yaml.ScalarNode {
			return p.err(n, f, "want a duration (24h, 90m, 30d)")
		}
		d, err := ParseDuration(n.Value)
		if err != nil {
			return p.err(n, f, err.Error())
		}
		*dst = d
		lines[f[strings.LastIndex(f, ".")+1:]] = n.Line
		return nil
	}
}
