package pattern

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"net/netip"
	"runtime"
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

	eq *eqIndex
	// blocks files every ISSUBSET constant under blockKey, beside its
	// path's trie (see blockKey)
	blocks *eqIndex
	types  atomic.Pointer[typeTable]
	pool   sync.Pool

	budgetHits atomic.Int64

	// Multi-observation patterns holding state, so that state whose
	// window has closed is dropped even if the pattern sees nothing more.
	amu       sync.Mutex
	active    map[*record]struct{}
	clock     atomic.Int64 // newest first_observed seen, Unix ns
	seen      atomic.Uint64
	sweepLock sync.Mutex
}

// sweepEvery is how many observations pass between sweeps of idle state.
const sweepEvery = 16384

// typeTable maps an object type to what a root object of that type is
// looked up in: its indexed paths and its scan list (observation
// expressions with nothing indexable). It is replaced whole on change.
type typeTable struct {
	byType map[string]*typeEntry
}

type typeEntry struct {
	paths []*pathIdx
	scan  []leafRef
}

// publishTypes replaces the type table: scan lists are edited by edit
// (for the types it names), and the path lists are rebuilt if paths is
// set. Writers only.
func (m *Matcher) publishTypes(paths bool, edit map[string]func([]leafRef) []leafRef) {
	old := m.types.Load()
	nt := &typeTable{byType: make(map[string]*typeEntry, len(old.byType)+len(edit))}
	for t, e := range old.byType {
		nt.byType[t] = e
	}
	for t, f := range edit {
		e := typeEntry{}
		if o := nt.byType[t]; o != nil {
			e = *o
		}
		e.scan = f(e.scan)
		nt.byType[t] = &e
	}
	if paths {
		byType := map[string][]*pathIdx{}
		for _, pi := range m.pathByKey {
			byType[pi.typ] = append(byType[pi.typ], pi)
		}
		for t, l := range byType {
			slices.SortFunc(l, func(a, b *pathIdx) int { return int(a.id) - int(b.id) })
			e := typeEntry{}
			if o := nt.byType[t]; o != nil {
				e = *o
			}
			e.paths = l
			nt.byType[t] = &e
		}
	}
	for t, e := range nt.byType {
		if len(e.paths) == 0 && len(e.scan) == 0 {
			delete(nt.byType, t)
		}
	}
	m.types.Store(nt)
}

// record is one loaded indicator.
type record struct {
	// ent is the entry filed for the first index key of the indicator
	// that no other indicator had (see eqIndex.add): a hit then reads the
	// entry and the record from one allocation, on one page, where two
	// allocations cost two TLB misses when the index is large. It comes
	// first, so that it is on a cache line of its own.
	ent     eqEntry
	entUsed bool // writers only

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
		blocks:    newEqIndex(),
		active:    make(map[*record]struct{}),
	}
	m.types.Store(&typeTable{byType: map[string]*typeEntry{}})
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
		var as []anchor
		// The value property of an address object itself is always
		// compared as an address when the constant is one, so the string
		// entry would never be probed; other paths need both.
		if !ip.IsValid() || !isAddrValuePath(p) {
			as = append(as, anchor{path: p, kind: aEq, key: ikey{kind: kString, s: l.Str}})
		}
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

func isAddrValuePath(p *ObjectPath) bool {
	return (p.Type == "ipv4-addr" || p.Type == "ipv6-addr") && len(p.Steps) == 1 && p.Steps[0].Name == "value"
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

// compileAll parses indicators, on all CPUs for big batches: parsing is
// the larger part of loading, and needs no lock.
func compileAll(inds []Indicator) ([]*compiled, []error) {
	out := make([]*compiled, len(inds))
	errs := make([]error, len(inds))
	work := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			p, err := Parse(inds[i].Pattern)
			if err != nil {
				errs[i] = fmt.Errorf("indicator %s: %w", inds[i].ID, err)
				continue
			}
			out[i] = compileIndicator(inds[i], p)
		}
	}
	workers := runtime.GOMAXPROCS(0)
	if len(inds) < 4096 || workers == 1 {
		work(0, len(inds))
	} else {
		var wg sync.WaitGroup
		chunk := (len(inds) + workers - 1) / workers
		for lo := 0; lo < len(inds); lo += chunk {
			wg.Add(1)
			go func(lo, hi int) {
				defer wg.Done()
				work(lo, hi)
			}(lo, min(lo+chunk, len(inds)))
		}
		wg.Wait()
	}
	comp := out[:0]
	for _, c := range out {
		if c != nil {
			comp = append(comp, c)
		}
	}
	var bad []error
	for _, e := range errs {
		if e != nil {
			bad = append(bad, e)
		}
	}
	return comp, bad
}

// batch gathers the copy-on-write updates of one writer call so each
// snapshot is replaced once.
type batch struct {
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
	// Within one batch the last indicator with an ID wins; dropping the
	// earlier ones here keeps their entries from being filed at all.
	last := make(map[string]int, len(inds))
	for i, ind := range inds {
		last[ind.ID] = i
	}
	if len(last) < len(inds) {
		uniq := make([]Indicator, 0, len(last))
		for i, ind := range inds {
			if last[ind.ID] == i {
				uniq = append(uniq, ind)
			}
		}
		inds = uniq
	}
	comp, errs := compileAll(inds)
	m.wmu.Lock()
	defer m.wmu.Unlock()
	b := &batch{tries: map[*pathIdx]*trieOps{}, likes: map[*pathIdx][]likeEntry{}, scanAdd: map[string][]leafRef{}}
	nAnchors, nSub := 0, 0
	for _, c := range comp {
		for _, as := range c.anchors {
			for _, a := range as {
				if a.kind == aSub {
					nSub++
				} else {
					nAnchors++
				}
			}
		}
	}
	m.eq.reserve(nAnchors)
	m.blocks.reserve(nSub)
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
						// the index before the trie and its filter, so
						// that a reader the filter passes finds it
						m.blocks.add(blockKey(pi.id, a.prefix), ref)
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
		applyTrie(&pi.sub, ops.sub, &pi.subFilter)
		applyTrie(&pi.sup, ops.sup, nil)
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
	if len(b.scanAdd) > 0 || b.newPaths {
		edit := map[string]func([]leafRef) []leafRef{}
		for t, add := range b.scanAdd {
			edit[t] = func(l []leafRef) []leafRef { return append(slices.Clip(l), add...) }
		}
		m.publishTypes(b.newPaths, edit)
	}
}

// applyTrie applies insertions or deletions to a CIDR trie. Few changes
// use bart's persistent operations (each copies only the touched path);
// many clone the table once and change the clone in place.
// When filter is given it is kept a superset of the trie's prefixes, and
// is updated before the new trie is published, so a reader that loads the
// trie and then the filter never misses a prefix of that trie.
func applyTrie(p *atomic.Pointer[bart.Table[postings]], ops []trieOp, filter *atomic.Pointer[prefixFilter]) {
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
	if filter != nil {
		updateFilter(filter, t, ops)
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
	if rec.state != nil {
		m.amu.Lock()
		delete(m.active, rec)
		m.amu.Unlock()
	}
	p := rec.pat
	if p == nil {
		p = MustParse(rec.src) // it parsed when added
	}
	b := &batch{tries: map[*pathIdx]*trieOps{}}
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
					m.blocks.remove(blockKey(pi.id, a.prefix), rec)
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
		applyTrie(&pi.sub, ops.sub, &pi.subFilter)
		applyTrie(&pi.sup, ops.sup, nil)
	}
	if len(scanTypes) > 0 {
		edit := map[string]func([]leafRef) []leafRef{}
		for t := range scanTypes {
			edit[t] = func(l []leafRef) []leafRef {
				var keep []leafRef
				for _, r := range l {
					if r.rec != rec {
						keep = append(keep, r)
					}
				}
				return keep
			}
		}
		m.publishTypes(false, edit)
	}
}

// ---- matching ------------------------------------------------------------

// cand is a leaf that an index hit or a scan proposed for one root object
// of the observation at index obs of the chunk being matched.
type cand struct {
	ref  leafRef
	root Object
	obs  int32
}

// eqProbe is one hash-index lookup of a chunk: the key a value of root
// asks for, its hash, and (after the lookup passes) what is filed there.
type eqProbe struct {
	key  ikey
	h    uint64
	root Object
	post postings
	obs  int32

	// during the lookup passes (see eqIndex.getAll): the shard table,
	// once the probe passed the Bloom filter, and the entry found
	tab *eqTable
	ent *eqEntry
}

// scratch is per-call working memory, pooled so matching does not
// allocate in the steady state.
type scratch struct {
	cands []cand
	hits  []leafRef
	fired []*record
	w     walker

	// chunk state: the hash-index and trie probes and the other
	// candidates (LIKE, scan lists) of every observation of the chunk,
	// each list in observation order
	eqp   []eqProbe
	blkp  []eqProbe // lookups in Matcher.blocks
	other []cand
	ipp   []ipProbe
	tries []cand
	cur   int32 // observation being gathered
	sink  byte  // keeps the loads of the touch passes
	// bloom is the equality index's filter while the chunk is gathered,
	// if it is deep: hashing a key then prefetches its word
	bloom *bloom
	out   []BatchMatch
}

// ipProbe is one lookup of an address or block in a path's CIDR tries.
type ipProbe struct {
	pfx      netip.Prefix
	sub, sup *bart.Table[postings]
	filter   *prefixFilter // over sub
	root     Object
	obs      int32
	path     uint32 // the pathIdx's id, for blockKey
	maybe    bool   // some constant of sub may contain pfx
	// is4: pfx is a single IPv4 address, v4, and filter is set; the
	// filter's IPv4 tests take the address as a number
	is4 bool
	v4  uint32
}

// BatchMatch is a match of one observation of a batch given to
// MatchBatch.
type BatchMatch struct {
	// Obs is the index, in the batch, of the observation that matched.
	Obs int
	Match
}

// batchChunk is how many observations MatchBatch gathers before looking
// them up: enough probes to keep many cache misses in flight, few enough
// that the chunk's working set stays in the first-level caches.
const batchChunk = 64

// Match matches one observation and returns the indicators that matched.
func (m *Matcher) Match(obs *Observation) []Match { return m.MatchAppend(nil, obs) }

// MatchAppend is Match appending to dst, for callers that reuse a slice.
// It is MatchBatch with a batch of one; callers with a stream should
// prefer MatchBatch, which is faster per observation on large indexes.
func (m *Matcher) MatchAppend(dst []Match, obs *Observation) []Match {
	sc := m.pool.Get().(*scratch)
	one := [1]*Observation{obs}
	sc.out = m.matchChunk(sc, sc.out[:0], one[:], 0)
	for i := range sc.out {
		dst = append(dst, sc.out[i].Match)
	}
	clear(sc.out)
	sc.out = sc.out[:0]
	m.pool.Put(sc)
	return dst
}

// MatchBatch matches every observation of batch and appends the matches to
// dst, each with the index in batch of the observation that produced it,
// in batch order. The result is the one calling MatchAppend on each
// observation in turn would give (multi-observation patterns see the
// observations in batch order, so give them in stream order), but faster
// when the indexes are larger than the CPU caches: the batch is processed
// in chunks of 64, and for each chunk every index key is hashed first,
// then the Bloom-filter words, the hash table and the CIDR tries and
// their filter are read in passes whose loads do not depend on each
// other, so their cache misses overlap instead of being paid one after
// the other. It allocates nothing per
// observation beyond the matches it appends (and the state kept for
// multi-observation patterns). Safe for concurrent use, like Match.
func (m *Matcher) MatchBatch(dst []BatchMatch, batch []*Observation) []BatchMatch {
	sc := m.pool.Get().(*scratch)
	for lo := 0; lo < len(batch); lo += batchChunk {
		dst = m.matchChunk(sc, dst, batch[lo:min(lo+batchChunk, len(batch))], lo)
	}
	m.pool.Put(sc)
	return dst
}

// matchChunk matches a chunk of at most batchChunk observations; base is
// the index of its first observation in the caller's batch.
func (m *Matcher) matchChunk(sc *scratch, dst []BatchMatch, obs []*Observation, base int) []BatchMatch {
	types := m.types.Load()
	sc.eqp, sc.blkp, sc.other, sc.ipp, sc.tries = sc.eqp[:0], sc.blkp[:0], sc.other[:0], sc.ipp[:0], sc.tries[:0]
	// Pass 0: load the observations' objects and values, which may have
	// left the caches since they were decoded; the loads are independent,
	// so their misses overlap.
	var sink byte
	for _, o := range obs {
		for _, obj := range o.Objects {
			if sco, ok := obj.(*SCO); ok && len(sco.Value) > 0 {
				sink += sco.Value[0] + sco.Value[len(sco.Value)-1]
			}
		}
	}
	sc.sink = sink
	sc.bloom = nil
	if f := m.eq.filter.Load(); f.deep {
		sc.bloom = f
	}
	// Pass 1: read the indexed values and hash their keys. The LIKE
	// automata and the scan lists are answered here.
	for i, o := range obs {
		sc.cur = int32(i)
		for _, obj := range o.Objects {
			te := types.byType[obj.Type()]
			if te == nil {
				continue
			}
			for _, pi := range te.paths {
				m.probe(sc, o, obj, pi)
			}
			for _, ref := range te.scan {
				sc.other = append(sc.other, cand{ref: ref, root: obj, obs: int32(i)})
			}
		}
	}
	// Passes 2 to 6: the hash-index lookups (see eqIndex.filterAll)
	// interleaved with the CIDR prefix filters and tries, so that the
	// lines each lookup pass prefetches arrive during the pass after it.
	m.eq.filterAll(sc.eqp)
	m.ipFilters(sc)
	m.eq.searchAll(sc.eqp)
	m.blockProbes(sc)
	m.blocks.tablesAll(sc.blkp)
	for i := range sc.ipp {
		// most addresses of a large index were ruled out by the prefix
		// filter: the call would find nothing
		if p := &sc.ipp[i]; p.maybe || p.sup != nil {
			sc.tries = trieLookup(sc.tries, p)
		}
	}
	m.eq.finishAll(sc.eqp)
	m.blocks.searchAll(sc.blkp)
	m.blocks.finishAll(sc.blkp)
	// Pass 7: verify and report, one observation after the other. Every
	// list is in observation order.
	eqAt, blkAt, trAt, otAt := 0, 0, 0, 0
	// the stream clock advances once per chunk (Sweep, its only reader,
	// runs from tick after the chunk's observations were fed)
	newest, ticks := int64(math.MinInt64), uint64(0)
	for i, o := range obs {
		sc.cands, sc.hits, sc.fired = sc.cands[:0], sc.hits[:0], sc.fired[:0]
		for ; eqAt < len(sc.eqp) && sc.eqp[eqAt].obs == int32(i); eqAt++ {
			p := &sc.eqp[eqAt]
			addPostings(&sc.cands, p.root, p.post, int32(i))
		}
		for ; blkAt < len(sc.blkp) && sc.blkp[blkAt].obs == int32(i); blkAt++ {
			p := &sc.blkp[blkAt]
			addPostings(&sc.cands, p.root, p.post, int32(i))
		}
		lo := trAt
		for trAt < len(sc.tries) && sc.tries[trAt].obs == int32(i) {
			trAt++
		}
		sc.cands = append(sc.cands, sc.tries[lo:trAt]...)
		lo = otAt
		for otAt < len(sc.other) && sc.other[otAt].obs == int32(i) {
			otAt++
		}
		sc.cands = append(sc.cands, sc.other[lo:otAt]...)
		dst = m.verify(sc, dst, o, base+i)
		if sec := o.FirstObserved.Unix(); sec >= minUnixNanoSec && sec <= maxUnixNanoSec {
			newest = max(newest, o.FirstObserved.UnixNano())
			ticks++
		}
	}
	m.tick(newest, ticks)
	sc.bloom = nil
	// drop references to objects
	clear(sc.cands)
	clear(sc.hits)
	clear(sc.fired)
	clear(sc.eqp)
	clear(sc.blkp)
	clear(sc.other)
	clear(sc.ipp)
	clear(sc.tries)
	return dst
}

// ipFilters runs the first test of the prefix filters over the chunk's
// addresses. It and blockProbes, which only large indexes need, are
// kept out of matchChunk, whose loops every index runs.
func (m *Matcher) ipFilters(sc *scratch) {
	for i := range sc.ipp {
		p := &sc.ipp[i]
		p.maybe = p.sub != nil
		if !p.maybe || p.filter == nil {
			continue
		}
		// the first test of the prefix filter (lengths), whose word
		// was prefetched: of the IPv4 addresses that pass it, and of
		// IPv6 ones, prefetch the blocks the other tests read
		switch {
		case p.is4:
			if !p.filter.mayHave4(p.v4) {
				p.maybe = false
				continue
			}
			p.filter.prefetchBlocks4(p.v4)
		case p.pfx.IsSingleIP():
			p.filter.prefetchBlocks6(p.pfx.Addr())
		}
	}
}

// blockProbes queues the block-index lookups of the chunk: a single
// address that its path's prefix filter passes is looked up in the
// block index at the lengths the filter gives, instead of in the trie
// (see blockKey).
func (m *Matcher) blockProbes(sc *scratch) {
	for i := range sc.ipp {
		p := &sc.ipp[i]
		if !p.maybe || p.filter == nil || !p.is4 && !p.pfx.IsSingleIP() {
			continue
		}
		p.maybe = false
		queue := func(k ikey) {
			sc.blkp = append(sc.blkp, eqProbe{key: k, h: m.blocks.hash(&k), root: p.root, obs: p.obs})
		}
		if p.is4 {
			for l := p.filter.lengths4(p.v4, true)[0]; l != 0; l &= l - 1 {
				queue(blockKey4(p.path, p.v4, bits.TrailingZeros64(l)))
			}
			continue
		}
		a := p.pfx.Addr()
		for w, l := range p.filter.lengths(a, true) {
			for ; l != 0; l &= l - 1 {
				queue(blockKey(p.path, netip.PrefixFrom(a, w*64+bits.TrailingZeros64(l))))
			}
		}
	}
}

// trieLookup appends the candidates of one address or block: ISSUBSET
// constants that contain it and ISSUPERSET constants it contains.
func trieLookup(dst []cand, p *ipProbe) []cand {
	// for a single address the longest-prefix lookup rules out most
	// misses without iterating
	if p.maybe && (!p.pfx.IsSingleIP() || hasLPM(p.sub, p.pfx.Addr())) {
		for _, post := range p.sub.Supernets(p.pfx) {
			addPostings(&dst, p.root, post, p.obs)
		}
	}
	if p.sup != nil {
		for _, post := range p.sup.Subnets(p.pfx) {
			addPostings(&dst, p.root, post, p.obs)
		}
	}
	return dst
}

// verify checks the candidates of one observation and reports what
// matched.
func (m *Matcher) verify(sc *scratch, dst []BatchMatch, obs *Observation, idx int) []BatchMatch {
	// A leaf needs to match with one root only.
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
			dst = append(dst, BatchMatch{Obs: idx, Match: Match{ID: h.rec.id}})
			continue
		}
		var leaves []int32
		for _, h2 := range sc.hits {
			if h2.rec == h.rec {
				leaves = append(leaves, h2.leaf)
			}
		}
		if bound, ok := m.feed(h.rec, obs, leaves); ok {
			dst = append(dst, BatchMatch{Obs: idx, Match: Match{ID: h.rec.id, Observations: bound}})
		}
	}
	return dst
}

// The first_observed seconds whose Unix nanoseconds fit an int64; an
// observation outside them (year 1677 or 2262 on) does not move the
// clock.
const (
	minUnixNanoSec = math.MinInt64/1_000_000_000 + 1
	maxUnixNanoSec = math.MaxInt64/1_000_000_000 - 1
)

// tick advances the stream clock to newest (Unix ns) after n observations
// and sweeps idle state each time the count passes a multiple of
// sweepEvery.
func (m *Matcher) tick(newest int64, n uint64) {
	if n == 0 {
		return
	}
	for {
		cur := m.clock.Load()
		if newest <= cur || m.clock.CompareAndSwap(cur, newest) {
			break
		}
	}
	if seen := m.seen.Add(n); seen/sweepEvery != (seen-n)/sweepEvery && m.sweepLock.TryLock() {
		m.Sweep(time.Unix(0, m.clock.Load()))
		m.sweepLock.Unlock()
	}
}

// Sweep drops remembered observations whose WITHIN window has closed as of
// now (stream time), for every multi-observation pattern, and returns how
// many patterns with a WITHIN window still hold state. Match calls it every few thousand
// observations with the newest first_observed seen; call it directly when
// the stream goes quiet.
func (m *Matcher) Sweep(now time.Time) int {
	m.amu.Lock()
	recs := make([]*record, 0, len(m.active))
	for r := range m.active {
		recs = append(recs, r)
	}
	m.amu.Unlock()
	for _, r := range recs {
		st := r.state
		st.mu.Lock()
		if now.After(st.watermark) {
			st.watermark = now
		}
		st.evict(r.pat.horizon)
		if len(st.events) == 0 || r.removed.Load() {
			// lock order everywhere: state, then the active set
			m.amu.Lock()
			delete(m.active, r)
			m.amu.Unlock()
		}
		st.mu.Unlock()
	}
	m.amu.Lock()
	defer m.amu.Unlock()
	return len(m.active)
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
			m.addEq(sc, root, ikey{kind: kBool, a: a, path: pi.id})
		}
		return
	}
	if n, isInt, ok := number(it.v); ok && pi.nEq.Load() > 0 {
		k, a := numKey(n, isInt)
		m.addEq(sc, root, ikey{kind: k, a: a, path: pi.id})
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
			m.addEq(sc, root, ikey{kind: kIP, a: a, b: b, bits: bits, path: pi.id})
		}
	} else if pi.nEq.Load() > 0 {
		m.addEq(sc, root, ikey{kind: kString, s: s, path: pi.id})
	}
	if isIP && needIP {
		filter := pi.subFilter.Load()
		is4, v4 := false, uint32(0)
		if filter != nil && pfx.IsSingleIP() && pfx.Addr().Is4() {
			// the filter's bitmap outgrows the core's caches (it is only
			// built for large tries): fetch the word mayHave4 reads
			// while the rest of the chunk is gathered
			is4, v4 = true, ipv4Bits(pfx.Addr())
			prefetch(filter.cellWord(v4))
		}
		// the trie walks wait for a pass of their own (see matchChunk);
		// the filter is loaded after the trie (see applyTrie)
		sc.ipp = append(sc.ipp, ipProbe{pfx: pfx, sub: sub, sup: sup, filter: filter, root: root, obs: sc.cur, path: pi.id, is4: is4, v4: v4})
	}
	if li := pi.like.Load(); li != nil {
		text, _ := textOf(it, true)
		m.probeLike(sc, root, li, text)
	}
}

func hasLPM(t *bart.Table[postings], a netip.Addr) bool {
	_, ok := t.Lookup(a)
	return ok
}

func (m *Matcher) probeLike(sc *scratch, root Object, li *likeIndex, text string) {
	try := func(e likeEntry) {
		if e.like.match(text) {
			sc.other = append(sc.other, cand{ref: e.ref, root: root, obs: sc.cur})
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

// addEq queues a hash-index lookup of k for the chunk's later passes,
// and prefetches the filter word the first of them reads.
func (m *Matcher) addEq(sc *scratch, root Object, k ikey) {
	h := m.eq.hash(&k)
	if f := sc.bloom; f != nil {
		prefetch(f.word(h))
	}
	sc.eqp = append(sc.eqp, eqProbe{key: k, h: h, root: root, obs: sc.cur})
}

func addPostings(dst *[]cand, root Object, p postings, obs int32) {
	if p.one.rec == nil {
		return
	}
	*dst = append(*dst, cand{ref: p.one, root: root, obs: obs})
	for _, r := range p.more {
		*dst = append(*dst, cand{ref: r, root: root, obs: obs})
	}
}

// ---- multi-observation patterns -----------------------------------------

// tstate remembers, for one multi-observation pattern, the recent
// observations that matched any of its leaves.
type tstate struct {
	mu        sync.Mutex
	events    []tevent
	perLeaf   []int // events per leaf
	watermark time.Time
}

// recount rebuilds perLeaf after events were dropped.
func (st *tstate) recount() {
	clear(st.perLeaf)
	for _, e := range st.events {
		for _, l := range e.leaves {
			st.perLeaf[l]++
		}
	}
}

func (st *tstate) expired(e tevent, horizon time.Duration) bool {
	return !e.obs.LastObserved.After(st.watermark.Add(-horizon))
}

// evictFront drops expired events from the front only.
func (st *tstate) evictFront(horizon time.Duration) bool {
	if horizon <= 0 {
		return false
	}
	n := 0
	for n < len(st.events) && st.expired(st.events[n], horizon) {
		n++
	}
	if n == 0 {
		return false
	}
	clear(st.events[:n])
	st.events = slices.Delete(st.events, 0, n)
	return true
}

type tevent struct {
	obs    *Observation
	leaves []int32
}

// evict drops events that can no longer take part in a match: an event
// whose last_observed is a full window before the newest first_observed
// can never again share a WITHIN window (§9.5.1) with an observation still
// to come. Without an enclosing WITHIN nothing expires by time.
func (st *tstate) evict(horizon time.Duration) {
	if horizon <= 0 || len(st.events) == 0 {
		return
	}
	keep := st.events[:0]
	for _, e := range st.events {
		if !st.expired(e, horizon) {
			keep = append(keep, e)
		}
	}
	if len(keep) == len(st.events) {
		return
	}
	clear(st.events[len(keep):])
	st.events = keep
	if st.perLeaf != nil {
		st.recount()
	}
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
	if len(st.events) == 0 && p.horizon > 0 {
		// only state that can expire by time is worth sweeping; the rest
		// is bounded by MaxEvents
		m.amu.Lock()
		m.active[rec] = struct{}{}
		m.amu.Unlock()
	}
	st.events = append(st.events, tevent{obs: obs, leaves: leaves})
	if st.perLeaf == nil {
		st.perLeaf = make([]int, len(p.leaves))
	}
	for _, l := range leaves {
		st.perLeaf[l]++
	}
	// In a time-ordered stream the oldest events are first, so checking
	// the front is enough here; Sweep does the full pass.
	dropped := st.evictFront(p.horizon)
	if over := len(st.events) - m.opts.MaxEvents; over > 0 {
		clear(st.events[:over])
		st.events = slices.Delete(st.events, 0, over)
		dropped = true
	}
	if dropped {
		st.recount()
	}
	// Without an event for every leaf the pattern needs, no search can
	// succeed: skip building it.
	if !feasibleWith(p.Root, st.perLeaf) {
		return nil, false
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
	clear(st.perLeaf)
	return out, true
}

// feasibleWith reports whether n could match given which leaves have
// events at all.
func feasibleWith(n ObservationExpr, perLeaf []int) bool {
	switch x := n.(type) {
	case *ObsLeaf:
		return perLeaf[x.index] > 0
	case *ObsBinary:
		if x.Op == ObsOr {
			return feasibleWith(x.Left, perLeaf) || feasibleWith(x.Right, perLeaf)
		}
		return feasibleWith(x.Left, perLeaf) && feasibleWith(x.Right, perLeaf)
	case *ObsWithin:
		return feasibleWith(x.X, perLeaf)
	case *ObsRepeats:
		return feasibleWith(x.X, perLeaf)
	case *ObsStartStop:
		return feasibleWith(x.X, perLeaf)
	}
	return false
}
