package pattern

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gaissmai/bart"
)

// Indicator is a pattern to load into a Matcher under an ID (usually the
// STIX indicator id).
type Indicator struct {
	ID      string
	Pattern string
}

// Match reports that an indicator's pattern matched.
type Match struct {
	ID string
	// Observations are the observations bound to a pattern that spans
	// several (AND, FOLLOWEDBY, REPEATS...). It is nil for patterns that a
	// single observation decides: then it is the observation just matched.
	Observations []*Observation
}

// MatcherOptions tunes a Matcher. Zero values select the defaults.
type MatcherOptions struct {
	// MaxEvents caps the observations remembered per multi-observation
	// pattern (default 1024); the oldest are dropped first.
	MaxEvents int
	// SearchBudget caps the search steps spent per observation on one
	// multi-observation pattern (default 100000); see ErrBudget.
	SearchBudget int
}

// Matcher matches a stream of observations against many patterns at once.
// See the package documentation for its design. All methods are safe for
// concurrent use; Add and Remove never pause concurrent Match calls.
type Matcher struct {
	opts MatcherOptions

	wmu       sync.Mutex // serialises writers
	byID      map[string]*record
	pathByKey map[string]*pathIdx
	nextPath  uint32

	eq    *eqIndex
	paths atomic.Pointer[typeTable[*pathIdx]]
	scan  atomic.Pointer[typeTable[leafRef]]
	pool  sync.Pool

	budgetHits atomic.Int64
}

// typeTable maps an object type to a list; replaced whole on change.
type typeTable[T any] struct {
	byType map[string][]T
}

// record is one loaded indicator.
type record struct {
	id  string
	src string
	// pat is kept unless the indicator is a single observation expression
	// answered exactly by the indexes; those are re-parsed from src on
	// removal, which keeps a million simple indicators small.
	pat     *Pattern
	state   *tstate // patterns spanning several observations
	removed atomic.Bool
}

// NewMatcher returns an empty Matcher.
func NewMatcher(opts MatcherOptions) *Matcher {
	if opts.MaxEvents <= 0 {
		opts.MaxEvents = 1024
	}
	if opts.SearchBudget <= 0 {
		opts.SearchBudget = 100_000
	}
	m := &Matcher{
		opts:      opts,
		byID:      make(map[string]*record),
		pathByKey: make(map[string]*pathIdx),
		eq:        newEqIndex(),
	}
	m.paths.Store(&typeTable[*pathIdx]{byType: map[string][]*pathIdx{}})
	m.scan.Store(&typeTable[leafRef]{byType: map[string][]leafRef{}})
	m.pool.New = func() any { return &scratch{} }
	return m
}

// Len returns the number of loaded indicators.
func (m *Matcher) Len() int {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	return len(m.byID)
}

// BudgetExceeded counts searches cut off by SearchBudget (they count as no
// match).
func (m *Matcher) BudgetExceeded() int64 { return m.budgetHits.Load() }

// Add loads one indicator, replacing any with the same ID.
func (m *Matcher) Add(id, pattern string) error {
	return m.AddAll([]Indicator{{ID: id, Pattern: pattern}})
}

// ---- anchors ------------------------------------------------------------

type anchorKind uint8

const (
	aEq anchorKind = iota
	aSub
	aSup
	aLike
)

// anchor is one index entry that a leaf files itself under: whenever the
// leaf matches with some root object, at least one of its anchors is hit
// by a value of that object.
type anchor struct {
	path   *ObjectPath
	kind   anchorKind
	key    ikey // aEq, path id filled in at registration
	prefix netip.Prefix
	like   *likePattern
}

// anchorsOf picks anchors for a comparison tree. ok is false when no set
// of anchors covers it (the leaf then goes to the per-type scan list);
// exact is true when an index hit alone proves the comparison true.
func anchorsOf(e CompExpr) (as []anchor, exact, ok bool) {
	switch x := e.(type) {
	case *CompBinary:
		l, le, lok := anchorsOf(x.Left)
		r, re, rok := anchorsOf(x.Right)
		if !x.And {
			if !lok || !rok {
				return nil, false, false
			}
			return append(l, r...), le && re, true
		}
		// AND: one side suffices to find candidates; prefer the side with
		// fewer, cheaper anchors.
		switch {
		case lok && rok:
			if anchorCost(r) < anchorCost(l) {
				return r, false, true
			}
			return l, false, true
		case lok:
			return l, false, true
		case rok:
			return r, false, true
		}
		return nil, false, false
	case *Comparison:
		return comparisonAnchors(x)
	}
	return nil, false, false
}

func anchorCost(as []anchor) int {
	c := 0
	for _, a := range as {
		switch a.kind {
		case aEq:
			c += 1
		case aSub, aSup:
			c += 2
		default:
			c += 8
		}
	}
	return c
}

func lastProp(p *ObjectPath) string {
	for i := len(p.Steps) - 1; i >= 0; i-- {
		if p.Steps[i].Kind == StepProp {
			return p.Steps[i].Name
		}
	}
	return ""
}

func comparisonAnchors(c *Comparison) ([]anchor, bool, bool) {
	if c.Negated || isBinaryProp(lastProp(c.Path)) {
		return nil, false, false
	}
	switch c.Op {
	case OpEq:
		as, ok := literalAnchors(c.Path, c.Value, c.prefix)
		return as, true, ok
	case OpIn:
		var out []anchor
		for i, l := range c.Set {
			as, ok := literalAnchors(c.Path, l, c.setIP[i])
			if !ok {
				return nil, false, false
			}
			out = append(out, as...)
		}
		// IN () can never match: no anchors at all is exact
		return out, true, true
	case OpIsSubset:
		return []anchor{{path: c.Path, kind: aSub, prefix: c.prefix}}, true, true
	case OpIsSuperset:
		return []anchor{{path: c.Path, kind: aSup, prefix: c.prefix}}, true, true
	case OpLike:
		return []anchor{{path: c.Path, kind: aLike, like: c.like}}, true, true
	}
	return nil, false, false
}

// literalAnchors mirrors Comparison.equal: a string constant is filed as a
// string, and also as an address when it is one, because which comparison
// applies depends on the object the path reaches.
func literalAnchors(p *ObjectPath, l Literal, ip netip.Prefix) ([]anchor, bool) {
	switch l.Kind {
	case LitString:
		as := []anchor{{path: p, kind: aEq, key: ikey{kind: kString, s: l.Str}}}
		if ip.IsValid() {
			a, b, bits := ipKey(ip)
			as = append(as, anchor{path: p, kind: aEq, key: ikey{kind: kIP, a: a, b: b, bits: bits}})
		}
		return as, true
	case LitInt:
		k, a := numKey(num{i: l.Int}, true)
		return []anchor{{path: p, kind: aEq, key: ikey{kind: k, a: a}}}, true
	case LitFloat:
		k, a := numKey(num{f: l.Float}, false)
		return []anchor{{path: p, kind: aEq, key: ikey{kind: k, a: a}}}, true
	case LitBool:
		var a uint64
		if l.Bool {
			a = 1
		}
		return []anchor{{path: p, kind: aEq, key: ikey{kind: kBool, a: a}}}, true
	}
	return nil, false
}

// ---- adding and removing --------------------------------------------------

// compiled is an indicator ready to be filed.
type compiled struct {
	rec     *record
	anchors [][]anchor // per leaf; nil slice with scan[leaf] set = scan list
	exact   []bool
	scan    []bool
	pat     *Pattern
}

func compileIndicator(ind Indicator, p *Pattern) *compiled {
	c := &compiled{rec: &record{id: ind.ID, src: ind.Pattern}, pat: p}
	keepAST := !p.stateless || len(p.leaves) != 1
	for _, l := range p.leaves {
		as, exact, ok := anchorsOf(l.Expr)
		c.anchors = append(c.anchors, as)
		c.exact = append(c.exact, exact && ok)
		c.scan = append(c.scan, !ok)
		if !ok || !exact || len(l.windows) > 0 {
			keepAST = true
		}
	}
	if keepAST {
		c.rec.pat = p
	}
	if !p.stateless {
		c.rec.state = &tstate{}
	}
	return c
}

// batch gathers the copy-on-write updates of one writer call so each
// snapshot is replaced once.
type batch struct {
	m        *Matcher
	newPaths bool
	tries    map[*pathIdx]*trieOps
	likes    map[*pathIdx][]likeEntry
	scanAdd  map[string][]leafRef
}

type trieOps struct {
	sub, sup []trieOp
}

type trieOp struct {
	pfx netip.Prefix
	ref leafRef
	del *record
}

func (m *Matcher) pathFor(b *batch, p *ObjectPath) *pathIdx {
	k := p.String()
	if pi, ok := m.pathByKey[k]; ok {
		return pi
	}
	m.nextPath++
	pi := &pathIdx{id: m.nextPath, typ: p.Type, path: p}
	if len(p.Steps) == 1 {
		pi.single = p.Steps[0].Name
	}
	m.pathByKey[k] = pi
	b.newPaths = true
	return pi
}

// AddAll loads indicators in one batch, replacing any with the same ID.
// Invalid patterns are skipped and reported together in the error; the
// valid ones are loaded either way.
func (m *Matcher) AddAll(inds []Indicator) error {
	var errs []error
	comp := make([]*compiled, 0, len(inds))
	for _, ind := range inds {
		p, err := Parse(ind.Pattern)
		if err != nil {
			errs = append(errs, fmt.Errorf("indicator %s: %w", ind.ID, err))
			continue
		}
		comp = append(comp, compileIndicator(ind, p))
	}
	m.wmu.Lock()
	defer m.wmu.Unlock()
	b := &batch{m: m, tries: map[*pathIdx]*trieOps{}, likes: map[*pathIdx][]likeEntry{}, scanAdd: map[string][]leafRef{}}
	nAnchors := 0
	for _, c := range comp {
		for _, as := range c.anchors {
			nAnchors += len(as)
		}
	}
	m.eq.reserve(nAnchors)
	for _, c := range comp {
		if old, ok := m.byID[c.rec.id]; ok {
			m.removeLocked(old)
		}
		m.byID[c.rec.id] = c.rec
		for li, l := range c.pat.leaves {
			if c.scan[li] {
				ref := leafRef{rec: c.rec, leaf: int32(li)}
				for _, t := range l.types {
					b.scanAdd[t] = append(b.scanAdd[t], ref)
				}
				continue
			}
			ref := leafRef{rec: c.rec, leaf: int32(li), exact: c.exact[li]}
			for _, a := range c.anchors[li] {
				pi := m.pathFor(b, a.path)
				switch a.kind {
				case aEq:
					k := a.key
					k.path = pi.id
					m.eq.add(k, ref)
					if k.kind == kIP {
						pi.nIP.Add(1)
					} else {
						pi.nEq.Add(1)
					}
				case aSub, aSup:
					ops := b.tries[pi]
					if ops == nil {
						ops = &trieOps{}
						b.tries[pi] = ops
					}
					if a.kind == aSub {
						ops.sub = append(ops.sub, trieOp{pfx: a.prefix, ref: ref})
					} else {
						ops.sup = append(ops.sup, trieOp{pfx: a.prefix, ref: ref})
					}
				case aLike:
					b.likes[pi] = append(b.likes[pi], likeEntry{ref: ref, like: a.like})
				}
			}
		}
	}
	m.commit(b)
	return errors.Join(errs...)
}

// commit publishes the copy-on-write parts of a batch. Paths are published
// last so a reader never sees a path whose structures are not ready.
func (m *Matcher) commit(b *batch) {
	for pi, ops := range b.tries {
		applyTrie(&pi.sub, ops.sub)
		applyTrie(&pi.sup, ops.sup)
	}
	for pi, es := range b.likes {
		li := pi.like.Load()
		if len(es) > likeRebuildAt(0) {
			pi.like.Store(buildLikeIndex(append(li.entries(), es...)))
			continue
		}
		for _, e := range es {
			li = li.with(e)
		}
		pi.like.Store(li)
	}
	if len(b.scanAdd) > 0 {
		old := m.scan.Load()
		nt := &typeTable[leafRef]{byType: make(map[string][]leafRef, len(old.byType)+len(b.scanAdd))}
		for t, l := range old.byType {
			nt.byType[t] = l
		}
		for t, l := range b.scanAdd {
			nt.byType[t] = append(slices.Clip(nt.byType[t]), l...)
		}
		m.scan.Store(nt)
	}
	if b.newPaths {
		nt := &typeTable[*pathIdx]{byType: map[string][]*pathIdx{}}
		for _, pi := range m.pathByKey {
			nt.byType[pi.typ] = append(nt.byType[pi.typ], pi)
		}
		for _, l := range nt.byType {
			slices.SortFunc(l, func(a, b *pathIdx) int { return int(a.id) - int(b.id) })
		}
		m.paths.Store(nt)
	}
}

// applyTrie applies insertions or deletions to a CIDR trie. Few changes
// use bart's persistent operations (each copies only the touched path);
// many clone the table once and change the clone in place.
func applyTrie(p *atomic.Pointer[bart.Table[postings]], ops []trieOp) {
	if len(ops) == 0 {
		return
	}
	t := p.Load()
	if t == nil {
		t = new(bart.Table[postings])
	}
	mod := func(op trieOp) func(postings, bool) (postings, bool) {
		return func(old postings, _ bool) (postings, bool) {
			var n postings
			if op.del != nil {
				n = old.without(op.del)
			} else {
				n = old.with(op.ref)
			}
			return n, n.len() == 0
		}
	}
	if len(ops) > 64 {
		t = t.Clone()
		for _, op := range ops {
			t.Modify(op.pfx, mod(op))
		}
	} else {
		for _, op := range ops {
			t = t.ModifyPersist(op.pfx, mod(op))
		}
	}
	p.Store(t)
}

// Remove unloads an indicator; it reports whether the ID was loaded.
func (m *Matcher) Remove(id string) bool {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	rec, ok := m.byID[id]
	if !ok {
		return false
	}
	m.removeLocked(rec)
	return true
}

func (m *Matcher) removeLocked(rec *record) {
	// Readers that already hold a reference drop it from here on.
	rec.removed.Store(true)
	delete(m.byID, rec.id)
	p := rec.pat
	if p == nil {
		p = MustParse(rec.src) // it parsed when added
	}
	b := &batch{m: m, tries: map[*pathIdx]*trieOps{}}
	scanTypes := map[string]bool{}
	for _, l := range p.leaves {
		as, _, ok := anchorsOf(l.Expr)
		if !ok {
			for _, t := range l.types {
				scanTypes[t] = true
			}
			continue
		}
		for _, a := range as {
			pi := m.pathByKey[a.path.String()]
			if pi == nil {
				continue
			}
			switch a.kind {
			case aEq:
				k := a.key
				k.path = pi.id
				m.eq.remove(k, rec)
				if k.kind == kIP {
					pi.nIP.Add(-1)
				} else {
					pi.nEq.Add(-1)
				}
			case aSub, aSup:
				ops := b.tries[pi]
				if ops == nil {
					ops = &trieOps{}
					b.tries[pi] = ops
				}
				if a.kind == aSub {
					ops.sub = append(ops.sub, trieOp{pfx: a.prefix, del: rec})
				} else {
					ops.sup = append(ops.sup, trieOp{pfx: a.prefix, del: rec})
				}
			case aLike:
				if li := pi.like.Load(); li != nil {
					pi.like.Store(li.without(rec))
				}
			}
		}
	}
	for pi, ops := range b.tries {
		applyTrie(&pi.sub, ops.sub)
		applyTrie(&pi.sup, ops.sup)
	}
	if len(scanTypes) > 0 {
		old := m.scan.Load()
		nt := &typeTable[leafRef]{byType: make(map[string][]leafRef, len(old.byType))}
		for t, l := range old.byType {
			if scanTypes[t] {
				var keep []leafRef
				for _, r := range l {
					if r.rec != rec {
						keep = append(keep, r)
					}
				}
				l = keep
			}
			if len(l) > 0 {
				nt.byType[t] = l
			}
		}
		m.scan.Store(nt)
	}
}

// ---- matching ------------------------------------------------------------

// cand is a leaf that an index hit or a scan proposed for one root object.
type cand struct {
	ref  leafRef
	root Object
}

// scratch is per-call working memory, pooled so matching does not
// allocate in the steady state.
type scratch struct {
	cands []cand
	hits  []leafRef
	fired []*record
	w     walker
}

// Match matches one observation and returns the indicators that matched.
func (m *Matcher) Match(obs *Observation) []Match { return m.MatchAppend(nil, obs) }

// MatchAppend is Match appending to dst, for callers that reuse a slice.
func (m *Matcher) MatchAppend(dst []Match, obs *Observation) []Match {
	sc := m.pool.Get().(*scratch)
	sc.cands, sc.hits, sc.fired = sc.cands[:0], sc.hits[:0], sc.fired[:0]
	paths := m.paths.Load()
	scan := m.scan.Load()
	for _, obj := range obs.Objects {
		typ := obj.Type()
		for _, pi := range paths.byType[typ] {
			m.probe(sc, obs, obj, pi)
		}
		for _, ref := range scan.byType[typ] {
			sc.cands = append(sc.cands, cand{ref: ref, root: obj})
		}
	}
	// Verify candidates; a leaf needs to match with one root only.
	for i := range sc.cands {
		c := &sc.cands[i]
		rec := c.ref.rec
		if rec.removed.Load() || hasHit(sc.hits, c.ref) {
			continue
		}
		if !c.ref.exact {
			if !matchComp(rec.pat.leaves[c.ref.leaf].Expr, obs, c.root, &sc.w) {
				continue
			}
		}
		if rec.pat != nil {
			l := rec.pat.leaves[c.ref.leaf]
			if !inWindows(l.windows, obs.FirstObserved, obs.LastObserved) {
				continue
			}
		}
		sc.hits = append(sc.hits, leafRef{rec: rec, leaf: c.ref.leaf})
	}
	for _, h := range sc.hits {
		if slices.Contains(sc.fired, h.rec) {
			continue
		}
		sc.fired = append(sc.fired, h.rec)
		if h.rec.state == nil {
			dst = append(dst, Match{ID: h.rec.id})
			continue
		}
		var leaves []int32
		for _, h2 := range sc.hits {
			if h2.rec == h.rec {
				leaves = append(leaves, h2.leaf)
			}
		}
		if bound, ok := m.feed(h.rec, obs, leaves); ok {
			dst = append(dst, Match{ID: h.rec.id, Observations: bound})
		}
	}
	clear(sc.cands) // drop references to objects
	clear(sc.hits)
	clear(sc.fired)
	m.pool.Put(sc)
	return dst
}

func hasHit(hits []leafRef, r leafRef) bool {
	for _, h := range hits {
		if h.rec == r.rec && h.leaf == r.leaf {
			return true
		}
	}
	return false
}

// probe looks up the values an object has at one indexed path.
func (m *Matcher) probe(sc *scratch, obs *Observation, obj Object, pi *pathIdx) {
	if pi.single != "" {
		if sp, ok := obj.(StringPropObject); ok {
			if s, ok := sp.StringProp(pi.single); ok {
				m.probeString(sc, obj, pi, s, obj, pi.single)
				return
			}
		}
	}
	sc.w.walk(obs, obj, pi.path.Steps, func(it item) bool {
		m.probeItem(sc, obj, pi, it)
		return true
	})
}

func (m *Matcher) probeItem(sc *scratch, root Object, pi *pathIdx, it item) {
	if s, ok := it.str(); ok {
		m.probeString(sc, root, pi, s, it.holder, it.prop)
		return
	}
	switch v := it.v.(type) {
	case bool:
		if pi.nEq.Load() > 0 {
			var a uint64
			if v {
				a = 1
			}
			m.addPostings(sc, root, m.eq.get(ikey{kind: kBool, a: a, path: pi.id}))
		}
		return
	}
	if n, isInt, ok := number(it.v); ok && pi.nEq.Load() > 0 {
		k, a := numKey(n, isInt)
		m.addPostings(sc, root, m.eq.get(ikey{kind: k, a: a, path: pi.id}))
	}
}

func (m *Matcher) probeString(sc *scratch, root Object, pi *pathIdx, s string, holder Object, prop string) {
	if isBinaryProp(prop) {
		return // binary properties are never indexed
	}
	pfx, isIP := netip.Prefix{}, false
	sub, sup := pi.sub.Load(), pi.sup.Load()
	needIP := sub != nil || sup != nil
	if pi.nIP.Load() > 0 || needIP {
		pfx, isIP = parseIPPrefix(s)
	}
	it := strItem(s, holder, prop)
	if isIP && ipHolder(it) {
		// Comparison.equal compares addresses here, never spellings.
		if pi.nIP.Load() > 0 {
			a, b, bits := ipKey(pfx)
			m.addPostings(sc, root, m.eq.get(ikey{kind: kIP, a: a, b: b, bits: bits, path: pi.id}))
		}
	} else if pi.nEq.Load() > 0 {
		m.addPostings(sc, root, m.eq.get(ikey{kind: kString, s: s, path: pi.id}))
	}
	if isIP {
		if sub != nil {
			// constants that contain the value
			if pfx.IsSingleIP() {
				if _, ok := sub.Lookup(pfx.Addr()); !ok {
					goto superset
				}
			}
			for _, p := range sub.Supernets(pfx) {
				m.addPostings(sc, root, p)
			}
		}
	superset:
		if sup != nil {
			// constants the value contains
			for _, p := range sup.Subnets(pfx) {
				m.addPostings(sc, root, p)
			}
		}
	}
	if li := pi.like.Load(); li != nil {
		text, _ := textOf(it, true)
		m.probeLike(sc, root, li, text)
	}
}

func (m *Matcher) probeLike(sc *scratch, root Object, li *likeIndex, text string) {
	try := func(e likeEntry) {
		if e.like.match(text) {
			sc.cands = append(sc.cands, cand{ref: e.ref, root: root})
		}
	}
	if li.ac != nil && len(li.byLit) > 0 {
		li.ac.scan(text, func(p int32) {
			for _, e := range li.byLit[p] {
				try(e)
			}
		})
	}
	for _, e := range li.pending {
		try(e)
	}
	for _, e := range li.always {
		try(e)
	}
}

func (m *Matcher) addPostings(sc *scratch, root Object, p postings) {
	if p.one.rec == nil {
		return
	}
	sc.cands = append(sc.cands, cand{ref: p.one, root: root})
	for _, r := range p.more {
		sc.cands = append(sc.cands, cand{ref: r, root: root})
	}
}

// ---- multi-observation patterns -----------------------------------------

// tstate remembers, for one multi-observation pattern, the recent
// observations that matched any of its leaves.
type tstate struct {
	mu        sync.Mutex
	events    []tevent
	watermark time.Time
}

type tevent struct {
	obs    *Observation
	leaves []int32
}

// feed adds an observation that matched some leaves and runs the binding
// search over what is remembered. State is bounded: events that the
// pattern's enclosing WITHIN can no longer use are evicted (the window has
// closed for them), at most MaxEvents are kept, and a match consumes the
// state so each completion is reported once.
func (m *Matcher) feed(rec *record, obs *Observation, leaves []int32) ([]*Observation, bool) {
	st := rec.state
	p := rec.pat
	st.mu.Lock()
	defer st.mu.Unlock()
	if obs.FirstObserved.After(st.watermark) {
		st.watermark = obs.FirstObserved
	}
	st.events = append(st.events, tevent{obs: obs, leaves: leaves})
	if p.horizon > 0 {
		// An event whose last_observed is a full window before the newest
		// first_observed can never again share a WITHIN window (§9.5.1)
		// with an observation still to come.
		limit := st.watermark.Add(-p.horizon)
		keep := st.events[:0]
		for _, e := range st.events {
			if e.obs.LastObserved.After(limit) {
				keep = append(keep, e)
			}
		}
		clear(st.events[len(keep):])
		st.events = keep
	}
	if over := len(st.events) - m.opts.MaxEvents; over > 0 {
		clear(st.events[:over])
		st.events = slices.Delete(st.events, 0, over)
	}
	units := make([]unit, len(st.events))
	cands := make([][]int32, len(p.leaves))
	for i, e := range st.events {
		units[i] = unit{first: e.obs.FirstObserved, last: e.obs.LastObserved, count: e.obs.NumberObserved}
		for _, l := range e.leaves {
			cands[l] = append(cands[l], int32(i))
		}
	}
	bound, ok, err := p.search(units, cands, m.opts.SearchBudget)
	if err != nil {
		m.budgetHits.Add(1)
		return nil, false
	}
	if !ok {
		return nil, false
	}
	slices.Sort(bound)
	bound = slices.Compact(bound)
	out := make([]*Observation, len(bound))
	for i, u := range bound {
		out[i] = st.events[u].obs
	}
	clear(st.events)
	st.events = st.events[:0]
	return out, true
}
