// Exports of active indicators to the formats defenders already run:
// Suricata, Zeek Intel, plain lists and firewall EDLs, DNS RPZ, CSV, STIX
// 2.1 bundles and MISP feeds, each computed for one requester through
// access.Decide.

package feeds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/pattern"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
)

// ErrNotFound: no such collection or indicator for this requester. A
// collection or object the requester may not read gives the same error as
// one that does not exist.
var ErrNotFound = errors.New("not found")

// Indicator is an active indicator selected for export.
type Indicator struct {
	ID          string
	Name        string
	Collection  string // the collection it was read from (the first, by id)
	Raw         []byte // the STIX object as stored
	TLP         access.TLP
	Confidence  int
	Labels      []string
	Created     time.Time
	Modified    time.Time
	ValidFrom   time.Time
	ValidUntil  time.Time // zero: open-ended
	PatternType string
	Pattern     string
	// Values are the values its pattern matches; Expressible is false when
	// the pattern is more than a list of values (only STIX carries it).
	Values      []Value
	Expressible bool
	Score       Score
}

// Selection is the set of indicators an export holds, sorted by id, and
// how many indicators were left out for each reason.
type Selection struct {
	Indicators []*Indicator
	Skipped    map[string]int
	// Newest is the latest modification among Indicators.
	Newest time.Time
	// Inactive names the indicators left out and why.
	Inactive map[string]string
}

func (s *Selection) skip(reason string) { s.Skipped[reason]++ }

// Request says what to export and for whom.
type Request struct {
	Principal *access.Principal
	// Collections (ids or aliases); every collection the principal may
	// read when empty.
	Collections []string
	// MinConfidence leaves out indicators with a lower confidence.
	MinConfidence int
	// Search, when not nil, limits the export to the indicators among
	// the results of this search (the search API's parameters, see
	// Matcher), every page of them.
	Search url.Values
	// SkipRaw leaves Indicator.Raw nil: only the stix format renders
	// the stored objects (see NeedsRaw), and at a million indicators
	// they are the largest part of a selection.
	SkipRaw bool
}

// NeedsRaw says whether format renders the indicators as stored
// (Indicator.Raw).
func NeedsRaw(format string) bool { return format == "stix" }

// Exporter selects and renders exports.
type Exporter struct {
	Store ExportStore
	// Flags, when set, names indicators a warning list made inactive.
	Flags Flags
	// Model is the lifecycle; DefaultModel when HalfLife is nil.
	Model Model
	Now   func() time.Time
	// Matcher answers exports from a search (Request.Search); without
	// one they are refused.
	Matcher Matcher
}

func (x *Exporter) model() Model {
	if x.Model.HalfLife == nil {
		return DefaultModel()
	}
	return x.Model
}

func (x *Exporter) now() time.Time {
	if x.Now != nil {
		return x.Now()
	}
	return time.Now()
}

// indicatorDoc is what an export reads of an indicator (STIX 2.1 §4.7).
type indicatorDoc struct {
	Name              string   `json:"name"`
	Created           string   `json:"created"`
	Modified          string   `json:"modified"`
	Pattern           string   `json:"pattern"`
	PatternType       string   `json:"pattern_type"`
	ValidFrom         string   `json:"valid_from"`
	ValidUntil        string   `json:"valid_until"`
	Revoked           bool     `json:"revoked"`
	Confidence        *int     `json:"confidence"`
	Labels            []string `json:"labels"`
	ObjectMarkingRefs []string `json:"object_marking_refs"`
}

// evidenceDoc is what a sighting (§5.2) or opinion (§4.11) says about
// indicators.
type evidenceDoc struct {
	SightingOfRef string   `json:"sighting_of_ref"`
	ObjectRefs    []string `json:"object_refs"`
	Opinion       string   `json:"opinion"`
	Created       string   `json:"created"`
	Modified      string   `json:"modified"`
	LastSeen      string   `json:"last_seen"`
}

// collections resolves the requested collections the principal may read.
// One it may not read is reported exactly as one that does not exist.
func (x *Exporter) collections(ctx context.Context, req Request) ([]*store.Collection, error) {
	if len(req.Collections) == 0 {
		all, err := x.Store.ListCollections(ctx)
		if err != nil {
			return nil, err
		}
		var out []*store.Collection
		for _, c := range all {
			if read, _ := access.CollectionAccess(req.Principal, c); read {
				out = append(out, c)
			}
		}
		return out, nil
	}
	var out []*store.Collection
	seen := map[string]bool{}
	for _, name := range req.Collections {
		c, err := x.Store.GetCollection(ctx, name)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if c == nil || err != nil {
			return nil, fmt.Errorf("collection %q: %w", name, ErrNotFound)
		}
		if read, _ := access.CollectionAccess(req.Principal, c); !read {
			return nil, fmt.Errorf("collection %q: %w", name, ErrNotFound)
		}
		if !seen[c.ID] {
			seen[c.ID] = true
			out = append(out, c)
		}
	}
	return out, nil
}

// scan reads the latest visible versions of objects of the given types in
// c, page by page.
func (x *Exporter) scan(ctx context.Context, p *access.Principal, c *store.Collection, types []string, ids []string, fn func(e *store.Entry) error) error {
	q := store.Query{Types: types, IDs: ids, WithBody: true, Limit: 1000,
		Visible: func(e *store.Entry) bool { return access.Decide(p, c, e).Allowed }}
	for {
		page, err := x.Store.QueryObjects(ctx, c.ID, q)
		if errors.Is(err, store.ErrNotFound) {
			return nil // deleted meanwhile: nothing to export from it
		}
		if err != nil {
			return fmt.Errorf("collection %s: %w", c.ID, err)
		}
		for i := range page.Entries {
			if err := fn(&page.Entries[i]); err != nil {
				return err
			}
		}
		if !page.More || len(page.Entries) == 0 {
			return nil
		}
		q.AddedAfter = page.Entries[len(page.Entries)-1].DateAdded
	}
}

// maxStoreIDs is the most ids one store query names.
const maxStoreIDs = 500

// opinionRec is an opinion read, resolved once every sighting is known.
type opinionRec struct {
	id      string
	refs    []string
	opinion string
	at      time.Time
	org     string // submitting organisation
}

// laterVerdict: an opinion (at, id) replaces an organisation's earlier
// verdict (prevAt, prevID) on an indicator.
func laterVerdict(at time.Time, id string, prevAt time.Time, prevID string) bool {
	return at.After(prevAt) || at.Equal(prevAt) && id > prevID
}

// candidate is an indicator version read, before the lifecycle decides.
type candidate struct {
	ind        *Indicator
	confidence *int // nil: not given
	revoked    bool
	exercise   bool
}

// Select returns the indicators req's principal may read that are active
// now: inside valid_from/valid_until, not revoked, not a drill object, at
// or above MinConfidence, not flagged by a warning list, and scoring at or
// above the lifecycle threshold.
func (x *Exporter) Select(ctx context.Context, req Request) (*Selection, error) {
	cands, ev, err := x.read(ctx, req, nil)
	if err != nil {
		return nil, err
	}
	now := x.now()
	m := x.model()
	sel := &Selection{Skipped: map[string]int{}, Inactive: map[string]string{}}
	ids := make([]string, 0, len(cands))
	for id := range cands {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	flags := x.Flags
	if lister, ok := x.Flags.(FlagLister); ok && len(cands) >= 256 {
		// One read of every flag instead of a query per indicator (at a
		// million indicators, most of a selection's time).
		all, err := lister.AllInactive(ctx)
		if err != nil {
			return nil, fmt.Errorf("warning-list flags: %w", err)
		}
		snap := make(flagSnapshot, len(all))
		for _, f := range all {
			snap[f.ObjectID] = f.Reason
		}
		flags = snap
	}
	for _, id := range ids {
		c := cands[id]
		ok, err := x.active(ctx, c, ev[id], req, m, now, flags, func(reason string) {
			sel.skip(reason)
			sel.Inactive[id] = reason
		})
		if err != nil {
			return nil, err
		}
		if ok {
			sel.Indicators = append(sel.Indicators, c.ind)
			if c.ind.Modified.After(sel.Newest) {
				sel.Newest = c.ind.Modified
			}
		}
	}
	return sel, nil
}

// ScoreOf explains the lifecycle state of one indicator to req's
// principal: its score and, when it is not exported, why. An indicator
// the principal may not read is ErrNotFound, as a missing one.
func (x *Exporter) ScoreOf(ctx context.Context, req Request, id string) (Score, error) {
	if !strings.HasPrefix(id, "indicator--") {
		return Score{}, fmt.Errorf("%q is not an indicator id: %w", id, ErrInvalid)
	}
	cands, ev, err := x.read(ctx, req, []string{id})
	if err != nil {
		return Score{}, err
	}
	c := cands[id]
	if c == nil {
		return Score{}, fmt.Errorf("indicator %s: %w", id, ErrNotFound)
	}
	var reason string
	if _, err := x.active(ctx, c, ev[id], req, x.model(), x.now(), x.Flags, func(r string) { reason = r }); err != nil {
		return Score{}, err
	}
	s := c.ind.Score
	if reason != "" {
		s.Active, s.Reason = false, reason
	}
	return s, nil
}

// read collects the latest visible version of each indicator (ids: all,
// or those) and the evidence on them.
func (x *Exporter) read(ctx context.Context, req Request, ids []string) (map[string]*candidate, map[string]*Evidence, error) {
	if req.Principal == nil {
		return nil, nil, fmt.Errorf("no principal: %w", ErrInvalid)
	}
	colls, err := x.collections(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	cands := map[string]*candidate{}
	ev := map[string]*Evidence{}
	if req.Search != nil {
		found, err := x.searchIDs(ctx, req)
		if err != nil {
			return nil, nil, err
		}
		if ids != nil {
			found = slices.DeleteFunc(found, func(id string) bool { return !slices.Contains(ids, id) })
		}
		if len(found) == 0 {
			return cands, ev, nil // an empty ids would read everything
		}
		ids = found
	}
	var only map[string]bool
	if ids != nil {
		only = make(map[string]bool, len(ids))
		for _, id := range ids {
			only[id] = true
		}
	}
	want := func(id string) bool { return only == nil || only[id] }
	// A long list of ids is not sent to the store (a statement has a
	// bounded number of arguments): the indicators are read whole and
	// filtered here.
	storeIDs := ids
	if len(ids) > maxStoreIDs {
		storeIDs = nil
	}
	seenEv := map[string]bool{}
	sightingOf := map[string]string{}  // sighting id -> indicator id
	sightingOrg := map[string]string{} // sighting id -> submitting organisation
	var opinions []opinionRec
	evOf := func(id string) *Evidence {
		if ev[id] == nil {
			ev[id] = &Evidence{}
		}
		return ev[id]
	}
	for _, c := range colls {
		err := x.scan(ctx, req.Principal, c, []string{"indicator"}, storeIDs, func(e *store.Entry) error {
			if !want(e.ID) {
				return nil
			}
			var d indicatorDoc
			if json.Unmarshal(e.Raw, &d) != nil {
				return nil // stored objects were validated; an unreadable one is not exportable
			}
			modified, _ := stix.ParseTimestamp(d.Modified)
			tlp := access.EffectiveTLP(c, e)
			if prev := cands[e.ID]; prev != nil {
				// The same indicator in several collections: the newest
				// version, marked as strictly as the strictest copy.
				tlp = max(tlp, prev.ind.TLP)
				if !modified.After(prev.ind.Modified) {
					prev.ind.TLP = tlp
					return nil
				}
			}
			ind := &Indicator{ID: e.ID, Name: d.Name, Collection: c.ID, Raw: e.Raw, TLP: tlp, Labels: d.Labels,
				Modified: modified, PatternType: d.PatternType, Pattern: d.Pattern}
			ind.Created, _ = stix.ParseTimestamp(d.Created)
			ind.ValidFrom, _ = stix.ParseTimestamp(d.ValidFrom)
			if d.ValidUntil != "" {
				ind.ValidUntil, _ = stix.ParseTimestamp(d.ValidUntil)
			}
			if req.SkipRaw {
				ind.Raw = nil
			}
			cands[e.ID] = &candidate{ind: ind, confidence: d.Confidence, revoked: d.Revoked, exercise: slices.Contains(d.ObjectMarkingRefs, stix.ExerciseMarkingID)}
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
		err = x.scan(ctx, req.Principal, c, []string{"sighting", "opinion"}, nil, func(e *store.Entry) error {
			if seenEv[e.ID] {
				return nil // the same object in another collection counts once
			}
			var d evidenceDoc
			if json.Unmarshal(e.Raw, &d) != nil {
				return nil
			}
			seenEv[e.ID] = true
			at, _ := stix.ParseTimestamp(d.Modified)
			if e.Type == "sighting" {
				if !strings.HasPrefix(d.SightingOfRef, "indicator--") {
					return nil
				}
				sightingOf[e.ID] = d.SightingOfRef
				sightingOrg[e.ID] = e.Submitter
				if !want(d.SightingOfRef) {
					return nil
				}
				if t, err := stix.ParseTimestamp(d.LastSeen); err == nil && d.LastSeen != "" {
					at = t
				}
				v := evOf(d.SightingOfRef)
				v.Sightings++
				if at.After(v.Last) {
					v.Last = at
				}
				return nil
			}
			opinions = append(opinions, opinionRec{id: e.ID, refs: d.ObjectRefs, opinion: d.Opinion, at: at, org: e.Submitter})
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
	}
	// A verdict names the indicator, or the sighting it judges; a verdict
	// on a sighting counts only from the organisation that made the
	// sighting (its feedback on its own report). Each organisation has one
	// verdict per indicator, its latest, so repeating an opinion does not
	// push an indicator out (of two at the same time, the greater id, so
	// that the order the store returns them in does not matter).
	type judge struct{ org, indicator string }
	latest := map[judge]opinionRec{}
	for _, op := range opinions {
		for _, ref := range op.refs {
			if strings.HasPrefix(ref, "sighting--") {
				if sightingOrg[ref] != op.org {
					continue
				}
				ref = sightingOf[ref]
			}
			if !strings.HasPrefix(ref, "indicator--") || !want(ref) {
				continue
			}
			k := judge{op.org, ref}
			if prev, ok := latest[k]; !ok || laterVerdict(op.at, op.id, prev.at, prev.id) {
				latest[k] = op
			}
		}
	}
	for k, op := range latest {
		evOf(k.indicator).addVerdict(op.opinion, op.at)
	}
	return cands, ev, nil
}

// active applies the export rules to one candidate, naming the first rule
// that leaves it out through skip. It fills the indicator's values and
// score.
func (x *Exporter) active(ctx context.Context, c *candidate, ev *Evidence, req Request, m Model, now time.Time, flags Flags, skip func(string)) (bool, error) {
	ind := c.ind
	confidence := m.DefaultConfidence
	if c.confidence != nil {
		confidence = *c.confidence
	}
	ind.Confidence = confidence
	if ind.PatternType == "stix" {
		if p, err := pattern.Parse(ind.Pattern); err == nil {
			ind.Values, ind.Expressible = valuesOf(p)
		}
	}
	if ev == nil {
		ev = &Evidence{}
	}
	since := ind.Modified
	if since.IsZero() {
		since = ind.Created
	}
	ind.Score = m.Score(ind.ID, m.classOf(ind.Values), confidence, since, *ev, now)
	if reason := ruleOut(c.revoked, c.exercise, ind.ValidFrom, ind.ValidUntil, confidence, req.MinConfidence, ind.Score.Active, now); reason != "" {
		skip(reason)
		return false, nil
	}
	if flags != nil {
		reason, inactive, err := flags.Inactive(ctx, ind.ID)
		if err != nil {
			return false, fmt.Errorf("warning-list flag of %s: %w", ind.ID, err)
		}
		if inactive {
			skip(flaggedReason(reason))
			return false, nil
		}
	}
	return true, nil
}

// ruleOut names the first export rule, before the warning-list flag, that
// leaves an indicator out at now ("" when none does). Select and the
// detector's ActiveSet share it, so that they decide alike.
func ruleOut(revoked, exercise bool, validFrom, validUntil time.Time, confidence, minConfidence int, scoreActive bool, now time.Time) string {
	switch {
	case revoked:
		return "revoked"
	case exercise:
		return "exercise (drill) object"
	case now.Before(validFrom):
		return "not yet valid (valid_from)"
	case !validUntil.IsZero() && !now.Before(validUntil):
		return "expired (valid_until)"
	case confidence < minConfidence:
		return fmt.Sprintf("confidence below %d", minConfidence)
	case !scoreActive:
		return "lifecycle score below threshold"
	}
	return ""
}

// flagSnapshot is every warning-list flag, read at once: id -> reason.
type flagSnapshot map[string]string

// Inactive implements Flags.
func (f flagSnapshot) Inactive(_ context.Context, id string) (string, bool, error) {
	r, ok := f[id]
	return r, ok, nil
}

// flaggedReason is the reason given for an indicator a warning list
// flagged.
func flaggedReason(reason string) string { return "flagged inactive: " + reason }
