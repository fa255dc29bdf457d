package detect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/pattern"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
)

// Indicators keeps a Matcher loaded with the active indicators.
type Indicators interface {
	// Sync loads the full set into m, replacing what it loaded before.
	Sync(ctx context.Context, m *pattern.Matcher) error
	// Poll applies what changed since the last Sync or Poll.
	Poll(ctx context.Context, m *pattern.Matcher) error
	// Active reports whether the indicator may still produce sightings
	// at now (checked on every match).
	Active(id string, now time.Time) bool
	// Len is the number of indicators loaded in the matcher.
	Len() int
	// Marking is the indicator's TLP level as the store applies it and
	// the organisations (identity ids) that may read it beyond its
	// collection's audience (its submitter and recipients): a sighting of
	// it is marked at least as strictly and released to them.
	Marking(id string) (access.TLP, []string)
}

// indicatorDoc is the part of an indicator (§4.7) that decides whether and
// what to match.
type indicatorDoc struct {
	ID          string `json:"id"`
	Modified    string `json:"modified"`
	Pattern     string `json:"pattern"`
	PatternType string `json:"pattern_type"`
	ValidFrom   string `json:"valid_from"`
	ValidUntil  string `json:"valid_until"`
	Revoked     bool   `json:"revoked"`

	version    time.Time
	tlp        access.TLP
	readers    []string // submitter and recipients
	validFrom  time.Time
	validUntil time.Time // zero: open-ended
}

func parseIndicator(raw []byte) (*indicatorDoc, error) {
	var d indicatorDoc
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, err
	}
	var err error
	if d.Modified != "" {
		if d.version, err = stix.ParseTimestamp(d.Modified); err != nil {
			return nil, fmt.Errorf("modified: %w", err)
		}
	}
	if d.ValidFrom != "" {
		if d.validFrom, err = stix.ParseTimestamp(d.ValidFrom); err != nil {
			return nil, fmt.Errorf("valid_from: %w", err)
		}
	}
	if d.ValidUntil != "" {
		if d.validUntil, err = stix.ParseTimestamp(d.ValidUntil); err != nil {
			return nil, fmt.Errorf("valid_until: %w", err)
		}
	}
	return &d, nil
}

// matchable: a STIX pattern, not revoked.
func (d *indicatorDoc) matchable() bool {
	return !d.Revoked && d.PatternType == "stix" && d.Pattern != ""
}

// activeAt: inside [valid_from, valid_until).
func (d *indicatorDoc) activeAt(now time.Time) bool {
	return !now.Before(d.validFrom) && (d.validUntil.IsZero() || now.Before(d.validUntil))
}

// StoreIndicators reads indicators from collections of a store, as the
// organisation of Principal may see them (access.Decide).
type StoreIndicators struct {
	Store     IndicatorStore
	Principal *access.Principal
	// Collections to read (ids or aliases); empty means every collection
	// the principal may read, re-listed on every full Sync.
	Collections []string
	Logger      *slog.Logger
	Now         func() time.Time
	// Filter, when set, retires indicators it rejects from the matcher
	// (the indicator lifecycle: decayed, warning-listed); it is asked
	// again for the whole set every FilterEvery (a minute when zero).
	Filter      func(id string) bool
	FilterEvery time.Duration

	mu sync.RWMutex
	// filtered is when the whole set last went through Filter.
	filtered time.Time
	colls    map[string]*store.Collection
	seq      map[string]int64
	docs     map[string]map[string]*indicatorDoc // id -> collection -> latest visible version there
	loaded   map[string]*indicatorDoc            // what the matcher holds
	// nextEdge is the next valid_from or valid_until ahead (zero: unknown).
	nextEdge time.Time
}

func (s *StoreIndicators) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *StoreIndicators) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Len implements Indicators.
func (s *StoreIndicators) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.loaded)
}

// Active implements Indicators.
func (s *StoreIndicators) Active(id string, now time.Time) bool {
	s.mu.RLock()
	d := s.loaded[id]
	s.mu.RUnlock()
	return d != nil && d.activeAt(now) && (s.Filter == nil || s.Filter(id))
}

// Marking implements Indicators: the strictest level among the
// collections the indicator is read from, and all their readers.
func (s *StoreIndicators) Marking(id string) (access.TLP, []string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	level := access.TLPUnmarked
	var readers []string
	for _, d := range s.docs[id] {
		level = max(level, d.tlp)
		readers = append(readers, d.readers...)
	}
	return level, readers
}

// collections lists the readable collections to watch.
func (s *StoreIndicators) collections(ctx context.Context) (map[string]*store.Collection, error) {
	out := map[string]*store.Collection{}
	if len(s.Collections) > 0 {
		for _, name := range s.Collections {
			c, err := s.Store.GetCollection(ctx, name)
			if err != nil {
				return nil, fmt.Errorf("indicator collection %s: %w", name, err)
			}
			if read, _ := access.CollectionAccess(s.Principal, c); !read {
				return nil, fmt.Errorf("indicator collection %s: organisation %s may not read it", name, s.Principal.Organisation)
			}
			out[c.ID] = c
		}
		return out, nil
	}
	all, err := s.Store.ListCollections(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range all {
		if read, _ := access.CollectionAccess(s.Principal, c); read {
			out[c.ID] = c
		}
	}
	return out, nil
}

// lastSeq is the newest change-log position of a collection.
func (s *StoreIndicators) lastSeqs(ctx context.Context, colls map[string]*store.Collection) (map[string]int64, error) {
	out := map[string]int64{}
	if ex, ok := s.Store.(store.Exporter); ok {
		recs, err := ex.ExportCollections(ctx)
		if err == nil {
			for _, r := range recs {
				if _, want := colls[r.ID]; want {
					out[r.ID] = r.LastSeq
				}
			}
			return out, nil
		}
	}
	for id := range colls {
		var seq int64
		for {
			chs, err := s.Store.Changes(ctx, id, seq, 10000)
			if err != nil {
				return nil, err
			}
			if len(chs) == 0 {
				break
			}
			seq = chs[len(chs)-1].Seq
		}
		out[id] = seq
	}
	return out, nil
}

// query reads the latest visible indicator versions of a collection,
// all of them (ids nil) or those named.
func (s *StoreIndicators) query(ctx context.Context, c *store.Collection, ids []string) (map[string]*indicatorDoc, error) {
	out := map[string]*indicatorDoc{}
	q := store.Query{Types: []string{"indicator"}, IDs: ids, WithBody: true, Limit: 1000,
		Visible: func(e *store.Entry) bool { return access.Decide(s.Principal, c, e).Allowed }}
	for {
		page, err := s.Store.QueryObjects(ctx, c.ID, q)
		if err != nil {
			return nil, fmt.Errorf("collection %s: %w", c.ID, err)
		}
		for _, e := range page.Entries {
			d, err := parseIndicator(e.Raw)
			if err != nil {
				s.log().Warn("indicator skipped", "id", e.ID, "collection", c.ID, "err", err)
				continue
			}
			d.ID = e.ID
			d.tlp = access.EffectiveTLP(c, &e)
			d.readers = append([]string{e.Submitter}, e.Recipients...)
			if d.tlp >= access.TLPAmberStrict {
				d.readers = append(d.readers, c.Recipients...)
			}
			out[e.ID] = d
		}
		if !page.More || len(page.Entries) == 0 {
			return out, nil
		}
		q.AddedAfter = page.Entries[len(page.Entries)-1].DateAdded
	}
}

// Sync implements Indicators.
func (s *StoreIndicators) Sync(ctx context.Context, m *pattern.Matcher) error {
	colls, err := s.collections(ctx)
	if err != nil {
		return err
	}
	seqs, err := s.lastSeqs(ctx, colls)
	if err != nil {
		return err
	}
	docs := map[string]map[string]*indicatorDoc{}
	for id, c := range colls {
		got, err := s.query(ctx, c, nil)
		if err != nil {
			return err
		}
		for iid, d := range got {
			if docs[iid] == nil {
				docs[iid] = map[string]*indicatorDoc{}
			}
			docs[iid][id] = d
		}
	}
	s.mu.Lock()
	s.colls, s.seq, s.docs, s.nextEdge = colls, seqs, docs, time.Time{}
	s.mu.Unlock()
	ids := make([]string, 0, len(docs))
	for id := range docs {
		ids = append(ids, id)
	}
	s.mu.RLock()
	for id := range s.loaded {
		if docs[id] == nil {
			ids = append(ids, id)
		}
	}
	s.mu.RUnlock()
	return s.apply(m, ids)
}

// Poll implements Indicators: new change-log records of every watched
// collection, then indicators entering or leaving their validity window.
func (s *StoreIndicators) Poll(ctx context.Context, m *pattern.Matcher) error {
	s.mu.RLock()
	colls := s.colls
	s.mu.RUnlock()
	var changed []string
	for cid, c := range colls {
		s.mu.RLock()
		seq := s.seq[cid]
		s.mu.RUnlock()
		idset := map[string]bool{}
		for {
			chs, err := s.Store.Changes(ctx, cid, seq, 10000)
			if errors.Is(err, store.ErrNotFound) {
				break // deleted collection: the next Sync drops it
			}
			if err != nil {
				return err
			}
			for _, ch := range chs {
				if strings.HasPrefix(ch.ObjectID, "indicator--") {
					idset[ch.ObjectID] = true
				}
				seq = ch.Seq
			}
			if len(chs) < 10000 {
				break
			}
		}
		if len(idset) > 0 {
			ids := make([]string, 0, len(idset))
			for id := range idset {
				ids = append(ids, id)
			}
			for lo := 0; lo < len(ids); lo += 500 {
				part := ids[lo:min(lo+500, len(ids))]
				got, err := s.query(ctx, c, part)
				if err != nil {
					return err
				}
				s.mu.Lock()
				for _, id := range part {
					if d := got[id]; d != nil {
						if s.docs[id] == nil {
							s.docs[id] = map[string]*indicatorDoc{}
						}
						s.docs[id][cid] = d
					} else if s.docs[id] != nil {
						delete(s.docs[id], cid)
						if len(s.docs[id]) == 0 {
							delete(s.docs, id)
						}
					}
				}
				s.mu.Unlock()
			}
			changed = append(changed, ids...)
		}
		s.mu.Lock()
		s.seq[cid] = seq
		s.mu.Unlock()
	}
	// Indicators whose window opens or closes: the whole set is scanned
	// only when a validity boundary has passed (or the set changed), not on
	// every poll.
	now := s.now()
	s.mu.RLock()
	scan := len(changed) > 0 || s.nextEdge.IsZero() || !now.Before(s.nextEdge)
	every := s.FilterEvery
	if every <= 0 {
		every = time.Minute
	}
	refilter := s.Filter != nil && now.Sub(s.filtered) >= every
	scan = scan || refilter
	s.mu.RUnlock()
	if !scan {
		return nil
	}
	var next time.Time
	edge := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	s.mu.RLock()
	for id, byColl := range s.docs {
		d := latest(byColl)
		want := d.matchable() && d.activeAt(now) && (s.Filter == nil || s.Filter(id))
		if want != (s.loaded[id] != nil) {
			changed = append(changed, id)
		}
		edge(d.validFrom)
		edge(d.validUntil)
	}
	for id, d := range s.loaded {
		if !d.activeAt(now) {
			changed = append(changed, id)
		}
	}
	s.mu.RUnlock()
	s.mu.Lock()
	if refilter {
		s.filtered = now
	}
	s.nextEdge = next
	if next.IsZero() {
		s.nextEdge = now.Add(time.Hour) // no boundary ahead: look again in an hour
	}
	s.mu.Unlock()
	return s.apply(m, changed)
}

func latest(byColl map[string]*indicatorDoc) *indicatorDoc {
	var best *indicatorDoc
	for _, d := range byColl {
		if best == nil || d.version.After(best.version) {
			best = d
		}
	}
	return best
}

// apply brings the matcher in line with docs for the given ids.
func (s *StoreIndicators) apply(m *pattern.Matcher, ids []string) error {
	now := s.now()
	var add []pattern.Indicator
	var remove []string
	s.mu.Lock()
	if s.loaded == nil {
		s.loaded = map[string]*indicatorDoc{}
	}
	for _, id := range ids {
		var want *indicatorDoc
		if byColl := s.docs[id]; len(byColl) > 0 {
			if d := latest(byColl); d.matchable() && d.activeAt(now) && (s.Filter == nil || s.Filter(id)) {
				want = d
			}
		}
		have := s.loaded[id]
		switch {
		case want == nil && have != nil:
			remove = append(remove, id)
			delete(s.loaded, id)
		case want != nil && (have == nil || have.Pattern != want.Pattern):
			add = append(add, pattern.Indicator{ID: id, Pattern: want.Pattern})
			s.loaded[id] = want
		case want != nil:
			s.loaded[id] = want // same pattern, new validity
		}
	}
	s.mu.Unlock()
	for _, id := range remove {
		m.Remove(id)
	}
	if len(add) == 0 {
		return nil
	}
	if err := m.AddAll(add); err != nil {
		// Invalid patterns are skipped, the others are loaded.
		s.log().Warn("indicators with patterns the matcher refuses", "err", err)
	}
	return nil
}

// StaticIndicators is a fixed set, for tests and benchmarks.
type StaticIndicators struct {
	List []pattern.Indicator
	n    int
}

// Sync implements Indicators.
func (s *StaticIndicators) Sync(_ context.Context, m *pattern.Matcher) error {
	s.n = len(s.List)
	return m.AddAll(s.List)
}

// Poll implements Indicators.
func (s *StaticIndicators) Poll(context.Context, *pattern.Matcher) error { return nil }

// Active implements Indicators.
func (s *StaticIndicators) Active(string, time.Time) bool { return true }

// Len implements Indicators.
func (s *StaticIndicators) Len() int { return s.n }

// Marking implements Indicators: unmarked (the detector's TLP applies).
func (s *StaticIndicators) Marking(string) (access.TLP, []string) { return access.TLPUnmarked, nil }
