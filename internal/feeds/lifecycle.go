package feeds

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"time"
)

// Class groups indicators whose relevance fades at the same pace. An
// indicator's class is the kind of the values its pattern matches (the
// fastest-fading one when it mixes kinds); "other" when none is
// extractable.
type Class string

// Indicator classes.
const (
	ClassIP     Class = "ip"
	ClassDomain Class = "domain"
	ClassURL    Class = "url"
	ClassHash   Class = "hash"
	ClassEmail  Class = "email"
	ClassOther  Class = "other"
)

// classOf is the class of an indicator matching vals.
func (m Model) classOf(vals []Value) Class {
	best, bestHL := ClassOther, time.Duration(math.MaxInt64)
	for _, v := range vals {
		var c Class
		switch v.Kind {
		case KindIP:
			c = ClassIP
		case KindDomain:
			c = ClassDomain
		case KindURL:
			c = ClassURL
		case KindEmail:
			c = ClassEmail
		default:
			c = ClassHash
		}
		if hl := m.HalfLife[c]; hl < bestHL {
			best, bestHL = c, hl
		}
	}
	return best
}

// Model is the indicator lifecycle: an indicator's score starts at its
// confidence, halves every half-life of its class since it was last
// confirmed (modified by its producer, sighted, or judged a true
// positive), gains SightingBoost points per sighting and true-positive
// verdict (up to 100), and is multiplied by FalsePositiveFactor per
// false-positive verdict. Below Threshold it leaves exports and the
// detector's set.
type Model struct {
	HalfLife            map[Class]time.Duration
	SightingBoost       float64
	FalsePositiveFactor float64
	Threshold           float64
	// DefaultConfidence stands for a missing confidence property (STIX 2.1
	// §3.2 leaves it optional: "not specified" is neither 0 nor 100).
	DefaultConfidence int
}

// DefaultModel: addresses are reassigned within weeks, domains and URLs
// within months, file hashes stay true for years.
func DefaultModel() Model {
	return Model{
		HalfLife: map[Class]time.Duration{
			ClassIP: 30 * 24 * time.Hour, ClassURL: 60 * 24 * time.Hour, ClassDomain: 90 * 24 * time.Hour,
			ClassEmail: 180 * 24 * time.Hour, ClassOther: 180 * 24 * time.Hour, ClassHash: 3 * 365 * 24 * time.Hour,
		},
		SightingBoost: 10, FalsePositiveFactor: 0.5, Threshold: 20, DefaultConfidence: 50,
	}
}

// modelFile is the JSON form of a Model: durations as Go durations
// ("720h"); absent fields keep the default.
type modelFile struct {
	HalfLife            map[Class]string `json:"half_life"`
	SightingBoost       *float64         `json:"sighting_boost"`
	FalsePositiveFactor *float64         `json:"false_positive_factor"`
	Threshold           *float64         `json:"threshold"`
	DefaultConfidence   *int             `json:"default_confidence"`
}

// LoadModel reads a model file over the defaults.
func LoadModel(path string) (Model, error) {
	m := DefaultModel()
	data, err := os.ReadFile(path)
	if err != nil {
		return m, err
	}
	var f modelFile
	if err := json.Unmarshal(data, &f); err != nil {
		return m, fmt.Errorf("lifecycle model %s: %w", path, err)
	}
	for c, s := range f.HalfLife {
		if _, known := m.HalfLife[c]; !known {
			return m, fmt.Errorf("lifecycle model %s: unknown class %q", path, c)
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return m, fmt.Errorf("lifecycle model %s: half_life %s: want a positive duration", path, c)
		}
		m.HalfLife[c] = d
	}
	if f.SightingBoost != nil {
		m.SightingBoost = *f.SightingBoost
	}
	if f.FalsePositiveFactor != nil {
		if *f.FalsePositiveFactor < 0 || *f.FalsePositiveFactor > 1 {
			return m, fmt.Errorf("lifecycle model %s: false_positive_factor must be within [0, 1]", path)
		}
		m.FalsePositiveFactor = *f.FalsePositiveFactor
	}
	if f.Threshold != nil {
		m.Threshold = *f.Threshold
	}
	if f.DefaultConfidence != nil {
		m.DefaultConfidence = *f.DefaultConfidence
	}
	return m, nil
}

// Evidence is what readers reported about an indicator: sightings and
// verdicts (opinions, §4.11: agree is a true positive, disagree a false
// positive), as visible to the one asking.
type Evidence struct {
	Sightings      int
	TruePositives  int
	FalsePositives int
	// Last is the latest sighting or true-positive verdict.
	Last time.Time
}

// addVerdict counts one organisation's latest verdict (an opinion's
// value, given at at): agree and strongly-agree are true positives,
// disagree and strongly-disagree false ones, neutral neither.
func (e *Evidence) addVerdict(opinion string, at time.Time) {
	switch opinion {
	case "agree", "strongly-agree":
		e.TruePositives++
		if at.After(e.Last) {
			e.Last = at
		}
	case "disagree", "strongly-disagree":
		e.FalsePositives++
	}
}

// Score is an indicator's lifecycle score at a time, with what it was
// computed from: what its producer sees when asking why an indicator left
// the exports.
type Score struct {
	Indicator      string    `json:"indicator"`
	Class          Class     `json:"class"`
	Confidence     int       `json:"confidence"`
	Since          time.Time `json:"since"`
	HalfLife       string    `json:"half_life"`
	Sightings      int       `json:"sightings"`
	TruePositives  int       `json:"true_positives"`
	FalsePositives int       `json:"false_positives"`
	Value          float64   `json:"score"`
	Threshold      float64   `json:"threshold"`
	Active         bool      `json:"active"`
	// Reason says why the indicator is not exported ("" when it is).
	Reason string `json:"reason,omitempty"`
}

// Score computes the score of an indicator confirmed last at since
// (its modified time, or a later sighting or verdict).
func (m Model) Score(id string, class Class, confidence int, since time.Time, ev Evidence, now time.Time) Score {
	v, hl, since := m.value(class, confidence, since, ev, now)
	s := Score{Indicator: id, Class: class, Confidence: confidence, Since: since.UTC(), HalfLife: hl.String(),
		Sightings: ev.Sightings, TruePositives: ev.TruePositives, FalsePositives: ev.FalsePositives,
		Value: v, Threshold: m.Threshold, Active: v >= m.Threshold}
	if !s.Active {
		s.Reason = fmt.Sprintf("score %.2f below threshold %.2f (%s class, half-life %s, %d false-positive verdicts)",
			v, m.Threshold, class, hl, ev.FalsePositives)
	}
	return s
}

// value is the score at now (rounded to hundredths), the half-life
// applied and the time decay counts from: Score and the detector's
// ActiveSet compute it the same way.
func (m Model) value(class Class, confidence int, since time.Time, ev Evidence, now time.Time) (float64, time.Duration, time.Time) {
	if ev.Last.After(since) {
		since = ev.Last
	}
	hl := m.HalfLife[class]
	if hl <= 0 {
		hl = m.HalfLife[ClassOther]
	}
	base := math.Min(100, float64(confidence)+m.SightingBoost*float64(ev.Sightings+ev.TruePositives))
	age := max(now.Sub(since), 0)
	v := base * math.Exp2(-age.Hours()/hl.Hours()) * math.Pow(m.FalsePositiveFactor, float64(ev.FalsePositives))
	return math.Round(v*100) / 100, hl, since
}

// retireBy is a time at or before which a score that is above the
// threshold now falls below it, with nothing else changing (a score only
// decreases with time): when its unrounded value reaches the threshold
// plus a hundredth (the rounded value Score compares can fall below the
// threshold once the unrounded one is within half a hundredth of it), a
// second early. ok is false when it never falls below.
func (m Model) retireBy(class Class, confidence int, since time.Time, ev Evidence) (time.Time, bool) {
	if ev.Last.After(since) {
		since = ev.Last
	}
	hl := m.HalfLife[class]
	if hl <= 0 {
		hl = m.HalfLife[ClassOther]
	}
	if m.Threshold <= 0 {
		return time.Time{}, false // a score is never negative
	}
	if hl <= 0 {
		return since, true // no usable half-life: look at every refresh
	}
	base := math.Min(100, float64(confidence)+m.SightingBoost*float64(ev.Sightings+ev.TruePositives))
	start := base * math.Pow(m.FalsePositiveFactor, float64(ev.FalsePositives))
	target := m.Threshold + 0.01
	if !(start > target) {
		return since, true
	}
	halvings := math.Log2(start / target)
	const maxAhead = 200 * 365 * 24 * time.Hour
	ahead := halvings * float64(hl)
	if math.IsNaN(ahead) || ahead >= float64(maxAhead) {
		return time.Time{}, false
	}
	return since.Add(time.Duration(ahead) - time.Second), true
}
