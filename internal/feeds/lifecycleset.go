package feeds

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/pattern"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
)

// ActiveSet tells the detector which indicators the lifecycle and the
// export rules have retired, for one principal (the detector's
// organisation): exactly the indicators Exporter.Select leaves out for
// Request, with the same reasons. Indicators it has not seen yet are
// allowed, so that a new indicator matches before the next refresh.
//
// The first Refresh reads the collections once; later ones follow their
// change logs and the warning-list flags, and re-decide only the
// indicators that a new indicator version, sighting or opinion, or a
// changed flag concerns, plus those whose validity window or decaying
// score crosses a boundary by now (computed from what the set keeps, no
// store read). A change in the collections (one added, removed, or its
// grants or policy changed) reloads everything. A store without a change
// log (ChangeLog) or flags that cannot be listed (FlagLister) make every
// Refresh a full Select.
type ActiveSet struct {
	Exporter *Exporter
	Request  Request

	refreshMu sync.Mutex // one refresh at a time; guards st
	st        *lcState

	mu       sync.RWMutex
	inactive map[string]string
}

// ChangeLog is what ActiveSet needs of a store to follow it (any
// store.Store is one).
type ChangeLog interface {
	Changes(ctx context.Context, collectionID string, afterSeq int64, limit int) ([]store.Change, error)
}

// FlagLister lists every warning-list flag at once (the SQL stores do),
// so that ActiveSet notices flags a rescan changed.
type FlagLister interface {
	AllInactive(ctx context.Context) ([]store.InactiveFlag, error)
}

// Refresh brings the set up to date with the store and the clock.
func (a *ActiveSet) Refresh(ctx context.Context) error {
	a.refreshMu.Lock()
	defer a.refreshMu.Unlock()
	x := a.Exporter
	log, okLog := x.Store.(ChangeLog)
	lister, okFlags := x.Flags.(FlagLister)
	if !okLog || (x.Flags != nil && !okFlags) || a.Request.Search != nil {
		sel, err := x.Select(ctx, a.Request)
		if err != nil {
			return err
		}
		a.mu.Lock()
		a.inactive = sel.Inactive
		a.mu.Unlock()
		return nil
	}
	if a.Request.Principal == nil {
		return fmt.Errorf("no principal: %w", ErrInvalid)
	}
	colls, err := x.collections(ctx, a.Request)
	if err != nil {
		return err
	}
	fp, err := json.Marshal(colls)
	if err != nil {
		return err
	}
	dirty := map[string]bool{}
	st := a.st
	if st == nil || st.fingerprint != string(fp) {
		st = &lcState{x: x, p: a.Request.Principal, m: x.model(), minConfidence: a.Request.MinConfidence,
			log: log, lister: lister, fingerprint: string(fp), colls: colls,
			seq: map[string]int64{}, order: map[string]int{},
			inds: map[string][]*indVer{}, evs: map[string][]*evVer{},
			sightingsOf: map[string]map[string]bool{}, opinionsOn: map[string]map[string]bool{},
			flags: map[string]string{}, dueAt: map[string]time.Time{}}
		if err := st.load(ctx, dirty); err != nil {
			return err
		}
	} else if err := st.follow(ctx, dirty); err != nil {
		return err
	}
	if err := st.readFlags(ctx, dirty); err != nil {
		return err
	}
	inactive := st.decide(x.now(), dirty)
	fresh := a.st != st
	a.st = st
	a.mu.Lock()
	if fresh || a.inactive == nil {
		a.inactive = map[string]string{}
	}
	for id, reason := range inactive {
		if reason == "" {
			delete(a.inactive, id)
		} else {
			a.inactive[id] = reason
		}
	}
	a.mu.Unlock()
	return nil
}

// Allow reports whether indicator id may match (detect's
// StoreIndicators.Filter).
func (a *ActiveSet) Allow(id string) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	_, out := a.inactive[id]
	return !out
}

// Reason says why id is retired ("" when it is not).
func (a *ActiveSet) Reason(id string) string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.inactive[id]
}

// Inactive is a copy of the retired indicators and their reasons (as
// Selection.Inactive).
func (a *ActiveSet) Inactive() map[string]string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := make(map[string]string, len(a.inactive))
	for id, r := range a.inactive {
		out[id] = r
	}
	return out
}

// Run refreshes the set every period until ctx ends; a failed refresh
// keeps the previous set (logged by the caller through onErr when set).
func (a *ActiveSet) Run(ctx context.Context, every time.Duration, onErr func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := a.Refresh(ctx); err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// indVer is what the lifecycle keeps of the latest version of an
// indicator visible in one collection.
type indVer struct {
	order                                 int // the collection's place in the request
	modified, created, validFrom, validTo time.Time
	confidence                            int
	revoked, exercise                     bool
	class                                 Class
}

// evVer is what the lifecycle keeps of the latest version of a sighting
// or an opinion visible in one collection.
type evVer struct {
	order    int
	sighting bool
	of       string // a sighting's indicator ("" when it names none)
	org      string // submitting organisation
	at       time.Time
	refs     []string // an opinion's object_refs
	opinion  string
}

// lcState is the kept state of an ActiveSet. Like Select, it takes an
// indicator's newest version (the first collection's on a tie) and an
// evidence object's version from the first collection holding one.
type lcState struct {
	x             *Exporter
	p             *access.Principal
	m             Model
	minConfidence int
	log           ChangeLog
	lister        FlagLister

	fingerprint string
	colls       []*store.Collection
	order       map[string]int
	seq         map[string]int64

	inds        map[string][]*indVer       // indicator -> its versions, one per collection
	evs         map[string][]*evVer        // sighting or opinion -> its versions
	sightingsOf map[string]map[string]bool // indicator -> sightings of it
	opinionsOn  map[string]map[string]bool // indicator or sighting -> opinions naming it
	flags       map[string]string          // warning-list flags: id -> reason

	decided map[string]string // indicator -> reason it is out ("" in)
	dueAt   map[string]time.Time
	due     dueHeap
}

// load reads every watched collection. The change-log positions are read
// first: what changes during the load is read again by the next follow.
func (s *lcState) load(ctx context.Context, dirty map[string]bool) error {
	for i, c := range s.colls {
		s.order[c.ID] = i
	}
	if err := s.lastSeqs(ctx); err != nil {
		return err
	}
	s.decided = map[string]string{}
	for i, c := range s.colls {
		if err := s.read(ctx, c, i, nil, dirty); err != nil {
			return err
		}
	}
	return nil
}

func (s *lcState) lastSeqs(ctx context.Context) error {
	if ex, ok := s.x.Store.(store.Exporter); ok {
		if recs, err := ex.ExportCollections(ctx); err == nil {
			for _, r := range recs {
				if _, want := s.order[r.ID]; want {
					s.seq[r.ID] = r.LastSeq
				}
			}
			return nil
		}
	}
	for _, c := range s.colls {
		var seq int64
		for {
			chs, err := s.log.Changes(ctx, c.ID, seq, 10000)
			if err != nil {
				return fmt.Errorf("collection %s: changes: %w", c.ID, err)
			}
			if len(chs) == 0 {
				break
			}
			seq = chs[len(chs)-1].Seq
		}
		s.seq[c.ID] = seq
	}
	return nil
}

// follow reads the objects the change logs name since the last refresh.
func (s *lcState) follow(ctx context.Context, dirty map[string]bool) error {
	for i, c := range s.colls {
		seq := s.seq[c.ID]
		ids := map[string]bool{}
		for {
			chs, err := s.log.Changes(ctx, c.ID, seq, 10000)
			if errors.Is(err, store.ErrNotFound) {
				break // deleted: the next refresh sees the collections changed
			}
			if err != nil {
				return fmt.Errorf("collection %s: changes: %w", c.ID, err)
			}
			for _, ch := range chs {
				typ, _, _ := strings.Cut(ch.ObjectID, "--")
				if typ == "indicator" || typ == "sighting" || typ == "opinion" {
					ids[ch.ObjectID] = true
				}
				seq = ch.Seq
			}
			if len(chs) < 10000 {
				break
			}
		}
		list := make([]string, 0, len(ids))
		for id := range ids {
			list = append(list, id)
		}
		slices.Sort(list)
		for lo := 0; lo < len(list); lo += maxStoreIDs {
			if err := s.read(ctx, c, i, list[lo:min(lo+maxStoreIDs, len(list))], dirty); err != nil {
				return err
			}
		}
		s.seq[c.ID] = seq
	}
	return nil
}

// read reads the latest versions visible to the principal (access.Decide,
// as Select) of a collection's indicators, sightings and opinions: all of
// them (ids nil), or those named, an id not found being dropped.
func (s *lcState) read(ctx context.Context, c *store.Collection, order int, ids []string, dirty map[string]bool) error {
	seen := map[string]bool{}
	q := store.Query{Types: []string{"indicator", "sighting", "opinion"}, IDs: ids, WithBody: true, Limit: 1000,
		Visible: func(e *store.Entry) bool { return access.Decide(s.p, c, e).Allowed }}
	for {
		page, err := s.x.Store.QueryObjects(ctx, c.ID, q)
		if errors.Is(err, store.ErrNotFound) {
			break // deleted meanwhile: the next refresh reloads
		}
		if err != nil {
			return fmt.Errorf("collection %s: %w", c.ID, err)
		}
		for i := range page.Entries {
			e := &page.Entries[i]
			seen[e.ID] = true
			if e.Type == "indicator" {
				s.setIndicator(e.ID, order, indicatorVersion(e, order, s.m), dirty)
			} else {
				s.setEvidence(e.ID, order, evidenceVersion(e, order), dirty)
			}
		}
		if !page.More || len(page.Entries) == 0 {
			break
		}
		q.AddedAfter = page.Entries[len(page.Entries)-1].DateAdded
	}
	for _, id := range ids {
		if seen[id] {
			continue
		}
		if strings.HasPrefix(id, "indicator--") {
			s.setIndicator(id, order, nil, dirty)
		} else {
			s.setEvidence(id, order, nil, dirty)
		}
	}
	return nil
}

// indicatorVersion reads what the lifecycle needs of an indicator, as
// Select reads it (nil when unreadable: Select leaves it out too).
func indicatorVersion(e *store.Entry, order int, m Model) *indVer {
	var d indicatorDoc
	if json.Unmarshal(e.Raw, &d) != nil {
		return nil
	}
	v := &indVer{order: order, revoked: d.Revoked, exercise: slices.Contains(d.ObjectMarkingRefs, stix.ExerciseMarkingID),
		confidence: m.DefaultConfidence}
	v.modified, _ = stix.ParseTimestamp(d.Modified)
	v.created, _ = stix.ParseTimestamp(d.Created)
	v.validFrom, _ = stix.ParseTimestamp(d.ValidFrom)
	if d.ValidUntil != "" {
		v.validTo, _ = stix.ParseTimestamp(d.ValidUntil)
	}
	if d.Confidence != nil {
		v.confidence = *d.Confidence
	}
	var vals []Value
	if d.PatternType == "stix" {
		if p, err := pattern.Parse(d.Pattern); err == nil {
			vals, _ = valuesOf(p)
		}
	}
	v.class = m.classOf(vals)
	return v
}

// evidenceVersion reads a sighting or an opinion as Select does (nil
// when unreadable).
func evidenceVersion(e *store.Entry, order int) *evVer {
	var d evidenceDoc
	if json.Unmarshal(e.Raw, &d) != nil {
		return nil
	}
	v := &evVer{order: order, org: e.Submitter}
	v.at, _ = stix.ParseTimestamp(d.Modified)
	if e.Type == "sighting" {
		v.sighting = true
		if !strings.HasPrefix(d.SightingOfRef, "indicator--") {
			return v
		}
		v.of = d.SightingOfRef
		if t, err := stix.ParseTimestamp(d.LastSeen); err == nil && d.LastSeen != "" {
			v.at = t
		}
		return v
	}
	v.refs, v.opinion = d.ObjectRefs, d.Opinion
	return v
}

// setIndicator replaces (v nil: drops) the version of indicator id
// read from the collection at order.
func (s *lcState) setIndicator(id string, order int, v *indVer, dirty map[string]bool) {
	vs := slices.DeleteFunc(s.inds[id], func(o *indVer) bool { return o.order == order })
	if v != nil {
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		delete(s.inds, id)
	} else {
		s.inds[id] = vs
	}
	dirty[id] = true
}

// indicator is the version of id Select would take: the newest, the
// first collection's on a tie.
func (s *lcState) indicator(id string) *indVer {
	var best *indVer
	for _, v := range s.inds[id] {
		if best == nil || v.modified.After(best.modified) || v.modified.Equal(best.modified) && v.order < best.order {
			best = v
		}
	}
	return best
}

// evidence is the version of a sighting or opinion Select would take:
// the first collection's.
func (s *lcState) evidence(id string) *evVer {
	var best *evVer
	for _, v := range s.evs[id] {
		if best == nil || v.order < best.order {
			best = v
		}
	}
	return best
}

// setEvidence replaces (v nil: drops) the version of a sighting or an
// opinion read from the collection at order, and marks dirty the
// indicators whose evidence it changes.
func (s *lcState) setEvidence(id string, order int, v *evVer, dirty map[string]bool) {
	old := s.evidence(id)
	vs := slices.DeleteFunc(s.evs[id], func(o *evVer) bool { return o.order == order })
	if v != nil {
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		delete(s.evs, id)
	} else {
		s.evs[id] = vs
	}
	now := s.evidence(id)
	if old == now {
		return
	}
	if old != nil {
		s.index(id, old, false, dirty)
	}
	if now != nil {
		s.index(id, now, true, dirty)
	}
}

// index adds (or removes) the links of an evidence version and marks the
// indicators they reach.
func (s *lcState) index(id string, v *evVer, add bool, dirty map[string]bool) {
	link := func(m map[string]map[string]bool, key string) {
		if add {
			if m[key] == nil {
				m[key] = map[string]bool{}
			}
			m[key][id] = true
			return
		}
		delete(m[key], id)
		if len(m[key]) == 0 {
			delete(m, key)
		}
	}
	if v.sighting {
		if v.of != "" {
			link(s.sightingsOf, v.of)
			dirty[v.of] = true
		}
		return
	}
	for _, ref := range v.refs {
		switch {
		case strings.HasPrefix(ref, "indicator--"):
			link(s.opinionsOn, ref)
			dirty[ref] = true
		case strings.HasPrefix(ref, "sighting--"):
			link(s.opinionsOn, ref)
			if sv := s.evidence(ref); sv != nil && sv.of != "" {
				dirty[sv.of] = true
			}
		}
	}
}

// evidenceOf sums up what the kept sightings and opinions say of an
// indicator, as Select does.
func (s *lcState) evidenceOf(ind string) Evidence {
	var ev Evidence
	type verdict struct {
		at      time.Time
		id      string
		opinion string
	}
	latest := map[string]verdict{} // organisation -> its latest verdict
	consider := func(opID string) {
		o := s.evidence(opID)
		if o == nil || o.sighting {
			return
		}
		if prev, ok := latest[o.org]; !ok || laterVerdict(o.at, opID, prev.at, prev.id) {
			latest[o.org] = verdict{o.at, opID, o.opinion}
		}
	}
	for sid := range s.sightingsOf[ind] {
		sv := s.evidence(sid)
		ev.Sightings++
		if sv.at.After(ev.Last) {
			ev.Last = sv.at
		}
		for op := range s.opinionsOn[sid] {
			if o := s.evidence(op); o != nil && o.org == sv.org {
				consider(op)
			}
		}
	}
	for op := range s.opinionsOn[ind] {
		consider(op)
	}
	for _, v := range latest {
		ev.addVerdict(v.opinion, v.at)
	}
	return ev
}

// readFlags reads the warning-list flags and marks the indicators whose
// flag changed.
func (s *lcState) readFlags(ctx context.Context, dirty map[string]bool) error {
	if s.lister == nil {
		return nil
	}
	all, err := s.lister.AllInactive(ctx)
	if err != nil {
		return fmt.Errorf("warning-list flags: %w", err)
	}
	flags := make(map[string]string, len(all))
	for _, f := range all {
		flags[f.ObjectID] = f.Reason
		if r, ok := s.flags[f.ObjectID]; !ok || r != f.Reason {
			dirty[f.ObjectID] = true
		}
	}
	for id := range s.flags {
		if _, ok := flags[id]; !ok {
			dirty[id] = true
		}
	}
	s.flags = flags
	return nil
}

// decide re-decides the dirty indicators and those due by now, and
// returns what changed: id -> reason it is out ("" when it is in or
// gone).
func (s *lcState) decide(now time.Time, dirty map[string]bool) map[string]string {
	for len(s.due) > 0 && !s.due[0].at.After(now) {
		d := heap.Pop(&s.due).(dueEntry)
		if at, ok := s.dueAt[d.id]; ok && at.Equal(d.at) {
			delete(s.dueAt, d.id)
			dirty[d.id] = true
		}
	}
	changed := map[string]string{}
	for id := range dirty {
		reason, next, known := s.decideOne(id, now)
		if prev, had := s.decided[id]; !known {
			delete(s.decided, id)
			if had && prev != "" {
				changed[id] = ""
			}
		} else {
			s.decided[id] = reason
			if prev != reason || !had {
				changed[id] = reason
			}
		}
		if next.IsZero() {
			delete(s.dueAt, id)
			continue
		}
		if at, ok := s.dueAt[id]; ok && at.Equal(next) {
			continue
		}
		s.dueAt[id] = next
		heap.Push(&s.due, dueEntry{next, id})
	}
	// A re-decided indicator leaves its earlier entry behind (skipped
	// when popped); rebuild when those outnumber the live ones.
	if len(s.due) > 2*len(s.dueAt)+1024 {
		s.due = s.due[:0]
		for id, at := range s.dueAt {
			s.due = append(s.due, dueEntry{at, id})
		}
		heap.Init(&s.due)
	}
	return changed
}

// decideOne applies the export rules to an indicator at now (as
// Select's active) and says when its decision may change next with time
// alone: at valid_from, at valid_until, or when its score falls below the
// threshold (zero: never).
func (s *lcState) decideOne(id string, now time.Time) (reason string, next time.Time, known bool) {
	v := s.indicator(id)
	if v == nil {
		return "", time.Time{}, false
	}
	ev := s.evidenceOf(id)
	since := v.modified
	if since.IsZero() {
		since = v.created
	}
	score, _, _ := s.m.value(v.class, v.confidence, since, ev, now)
	active := score >= s.m.Threshold
	reason = ruleOut(v.revoked, v.exercise, v.validFrom, v.validTo, v.confidence, s.minConfidence, active, now)
	if reason == "" {
		if r, ok := s.flags[id]; ok {
			reason = flaggedReason(r)
		}
	}
	if v.revoked || v.exercise {
		// No time changes these, nor the reason (they come first).
		return reason, time.Time{}, true
	}
	// Out for its confidence, it stays out, but the validity rules come
	// first: its reason changes at valid_from and valid_until.
	soonest := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	soonest(v.validFrom)
	if !v.validTo.IsZero() {
		soonest(v.validTo)
	}
	if active {
		if at, ok := s.m.retireBy(v.class, v.confidence, since, ev); ok {
			if !at.After(now) {
				at = now.Add(time.Nanosecond) // rounding keeps it in a little longer: look again next time
			}
			soonest(at)
		}
	}
	return reason, next, true
}

// dueEntry is an indicator to re-decide at a time.
type dueEntry struct {
	at time.Time
	id string
}

// dueHeap orders dueEntry by time.
type dueHeap []dueEntry

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueEntry)) }
func (h *dueHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
