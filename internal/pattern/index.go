package pattern

import (
	"hash/maphash"
	"math"
	"math/bits"
	"net/netip"
	"slices"
	"sync/atomic"
	"unsafe"

	"github.com/gaissmai/bart"
)

// leafRef names one observation expression of one indicator.
type leafRef struct {
	rec  *record
	leaf int32
	// exact: an index hit proves the leaf matched, so no evaluation is
	// needed (the leaf is an OR of exactly indexed comparisons).
	exact bool
}

// postings is the immutable list of leaves filed under one index key. The
// first entry is stored inline because almost every key has one.
type postings struct {
	one  leafRef
	more []leafRef
}

func (p postings) len() int {
	if p.one.rec == nil {
		return 0
	}
	return 1 + len(p.more)
}

func (p postings) each(f func(leafRef)) {
	if p.one.rec == nil {
		return
	}
	f(p.one)
	for _, r := range p.more {
		f(r)
	}
}

// with returns the postings with r added; the receiver still reads as
// before, so readers holding it are unaffected. When the list has spare
// capacity r is written past the receiver's length, where no reader of
// the receiver looks, so adding many entries to one key costs amortised
// O(1) each instead of a copy each.
func (p postings) with(r leafRef) postings {
	if p.one.rec == nil {
		return postings{one: r}
	}
	if len(p.more) < cap(p.more) {
		return postings{one: p.one, more: append(p.more, r)}
	}
	more := make([]leafRef, len(p.more), 2*len(p.more)+1)
	copy(more, p.more)
	return postings{one: p.one, more: append(more, r)}
}

// without returns a fresh copy with every entry of rec removed (never
// shared with the receiver, whose readers may still be looking).
func (p postings) without(rec *record) postings {
	var out postings
	n := 0
	p.each(func(r leafRef) {
		if r.rec != rec {
			n++
		}
	})
	if n > 1 {
		out.more = make([]leafRef, 0, n-1)
	}
	p.each(func(r leafRef) {
		if r.rec == rec {
			return
		}
		if out.one.rec == nil {
			out.one = r
		} else {
			out.more = append(out.more, r)
		}
	})
	return out
}

// Clone lets bart copy values when it clones nodes; postings are
// immutable, so a shallow copy is a deep copy.
func (p postings) Clone() postings { return p }

type keyKind uint8

const (
	kString keyKind = iota + 1
	kInt
	kFloat
	kBool
	kIP
	kBlock // an ISSUBSET constant, in Matcher.blocks (see blockKey)
)

// ikey is a hash-index key: (object type and path, value). The path is
// interned to a small integer; values are a string or up to 128 bits.
type ikey struct {
	s    string
	a, b uint64
	path uint32
	kind keyKind
	bits uint8
}

const nShards = 64

// eqIndex is the equality/IN hash index: open-addressing tables, one per
// shard, that readers search without locks. Each slot holds a 64-bit
// fingerprint of its key's hash and a pointer to an immutable entry (key
// and postings), so a lookup can read the slots of a whole chunk of probes
// first, then their entries, then their key strings, in passes whose cache
// misses overlap (as hash joins do); a lock per lookup, or a Go map, would
// put a locked instruction or a chain of dependent loads between them.
// Writers are serialised by the Matcher's writer lock; they replace entries
// whole and publish slots fingerprint last, and grow a table by publishing
// a new one, so a reader always sees a consistent entry.
type eqIndex struct {
	seed   maphash.Seed
	shards [nShards]eqShard
	// filter is a blocked Bloom filter over the keys: most probes of a
	// stream miss, and the filter answers those from a few megabytes
	// instead of a cache miss into a table of a million entries. Bits of
	// removed keys stay set until the next resize.
	filter atomic.Pointer[bloom]
	nkeys  int // guarded by the Matcher's writer lock
}

// bloom sets three bits per key in one 64-bit word. A third bit halves
// the false positives of two at the sizes newBloom picks (about 2%
// instead of 3.5% at ten bits a key), each of which costs a search of
// the table: a cache miss, and at a million keys a TLB miss too.
type bloom struct {
	words []uint64
	mask  uint64
	// deep: the filter is too large to stay in the first-level caches,
	// and so is the index behind it, so lookups prefetch what they read
	// next (see filterAll); in a small index the lines are near and the
	// prefetches would cost more than they save.
	deep bool
}

func (b *bloom) bits(h uint64) (idx uint64, bits uint64) {
	// the word from the low bits, the bits from the top ones; the
	// shards use bits 32 to 37
	return h & b.mask, 1<<((h>>57)&63) | 1<<((h>>51)&63) | 1<<((h>>45)&63)
}

// word returns the word that h's bits are in, for prefetching.
func (b *bloom) word(h uint64) unsafe.Pointer { return unsafe.Pointer(&b.words[h&b.mask]) }

func (b *bloom) mayHave(h uint64) bool {
	i, bits := b.bits(h)
	return atomic.LoadUint64(&b.words[i])&bits == bits
}

func (b *bloom) set(h uint64) {
	i, bits := b.bits(h)
	atomic.OrUint64(&b.words[i], bits)
}

// bloomBitsPerKey keeps false positives at 6% or less (1 to 2% for most
// sizes, the word count being a power of two) while a filter that the
// first-level caches can hold stays there. A deep filter gets twice the
// words (see newBloom): it is read from the outer caches whatever its
// size (a stream's observations alone evict it from the core's L2
// between two reads of a word), so more words cost little, and each
// false positive they save is a table search that misses.
const bloomBitsPerKey = 6

// bloomDeepWords is the filter size (64 KiB, some 87,000 keys) from
// which bloom.deep is set.
const bloomDeepWords = 8192

func newBloom(keys int) *bloom {
	n := 1 << 10
	for n*64 < keys*bloomBitsPerKey {
		n <<= 1
	}
	if n >= bloomDeepWords {
		n <<= 1 // see bloomBitsPerKey
	}
	b := &bloom{words: make([]uint64, n), mask: uint64(n - 1), deep: n >= bloomDeepWords}
	hugePages(unsafe.Pointer(&b.words[0]), uintptr(n)*8)
	return b
}

// eqShard is one shard's table and the writers' counts for it.
type eqShard struct {
	tab  atomic.Pointer[eqTable]
	live int // keys filed; writers only
	used int // slots not empty (keys and tombstones); writers only
	_    [40]byte
}

// eqTable is a linear-probing table. A slot's fingerprint is 0 when empty,
// fpTomb once its key was removed, and the key's hash with the top bit set
// otherwise; at least a quarter of the slots stay empty, so every search
// ends.
type eqTable struct {
	slots []eqSlot
	mask  uint64
}

type eqSlot struct {
	fp  atomic.Uint64
	ent atomic.Pointer[eqEntry]
}

// eqEntry is immutable once published: a change files a new one. It is
// 64 bytes, the size of a cache line and of its allocation size class, so
// what a hit reads (the key and the first posting) is on one line: the
// hash lives in the slot's fingerprint instead (see eqIndex.hash), and
// the rare further postings behind a pointer.
type eqEntry struct {
	key  ikey
	one  leafRef
	more *[]leafRef
}

func newEqEntry(k ikey, p postings) *eqEntry {
	en := &eqEntry{key: k, one: p.one}
	if len(p.more) > 0 {
		en.more = &p.more
	}
	return en
}

// newEntry returns the record's own entry (see record.ent) the first
// time, a new one after. Writers only.
func (rec *record) newEntry() *eqEntry {
	if rec.entUsed {
		return new(eqEntry)
	}
	rec.entUsed = true
	return &rec.ent
}

func (en *eqEntry) post() postings {
	p := postings{one: en.one}
	if en.more != nil {
		p.more = *en.more
	}
	return p
}

const fpTomb = 1

// fingerprint is what a slot holds for a key of hash h: h itself, whose
// top bit eqIndex.hash sets, so a slot's fingerprint gives back the hash
// when a table or the filter is rebuilt.
func fingerprint(h uint64) uint64 { return h | 1<<63 }

func newEqTable(keys int) *eqTable {
	n := 16
	for n < 2*keys {
		n <<= 1
	}
	t := &eqTable{slots: make([]eqSlot, n), mask: uint64(n - 1)}
	hugePages(unsafe.Pointer(&t.slots[0]), uintptr(n)*unsafe.Sizeof(eqSlot{}))
	return t
}

// get searches t for k from the slot its hash picks.
func (t *eqTable) get(k *ikey, h uint64) *eqEntry {
	fp := fingerprint(h)
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		f := s.fp.Load()
		if f == 0 {
			return nil
		}
		if f == fp {
			if e := s.ent.Load(); e != nil && e.key == *k {
				return e
			}
		}
	}
}

// find returns the slot holding k, or -1 and the slot where k would go
// (the first tombstone on its path, else the empty slot that ends it).
// Writers only.
func (t *eqTable) find(k *ikey, h uint64) (at, free int) {
	fp := fingerprint(h)
	free = -1
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		switch f := s.fp.Load(); f {
		case 0:
			if free < 0 {
				free = int(i)
			}
			return -1, free
		case fpTomb:
			if free < 0 {
				free = int(i)
			}
		case fp:
			if e := s.ent.Load(); e != nil && e.key == *k {
				return int(i), -1
			}
		}
	}
}

// put files e, whose key's hash is h, in a table no reader sees yet.
func (t *eqTable) put(e *eqEntry, h uint64) {
	i := h & t.mask
	for t.slots[i].fp.Load() != 0 {
		i = (i + 1) & t.mask
	}
	t.slots[i].ent.Store(e)
	t.slots[i].fp.Store(fingerprint(h))
}

// resize publishes a copy of the shard's table sized for keys, without
// tombstones. Writers only.
func (s *eqShard) resize(keys int) {
	nt := newEqTable(keys)
	if t := s.tab.Load(); t != nil {
		for i := range t.slots {
			if f := t.slots[i].fp.Load(); f > fpTomb {
				nt.put(t.slots[i].ent.Load(), f)
			}
		}
	}
	s.used = s.live
	s.tab.Store(nt)
}

// reserve grows the tables and the filter ahead of adding n keys.
// Writers only.
func (e *eqIndex) reserve(n int) {
	if per := n / nShards; per > 1024 {
		// A big batch: size the shard tables once instead of letting them
		// double their way up.
		for i := range e.shards {
			s := &e.shards[i]
			if t := s.tab.Load(); 4*(s.used+per) > 3*len(t.slots) {
				s.resize(s.live + per)
			}
		}
	}
	f := e.filter.Load()
	want := e.nkeys + n
	if len(f.words)*64 >= want*bloomBitsPerKey {
		return
	}
	nf := newBloom(want)
	for i := range e.shards {
		t := e.shards[i].tab.Load()
		for j := range t.slots {
			if f := t.slots[j].fp.Load(); f > fpTomb {
				nf.set(f)
			}
		}
	}
	e.filter.Store(nf)
}

func newEqIndex() *eqIndex {
	e := &eqIndex{seed: maphash.MakeSeed()}
	for i := range e.shards {
		e.shards[i].resize(0)
	}
	e.filter.Store(newBloom(0))
	return e
}

func (e *eqIndex) hash(k *ikey) uint64 {
	var h uint64
	if k.s != "" {
		h = maphash.String(e.seed, k.s)
	}
	h ^= (k.a*0x9E3779B97F4A7C15 ^ k.b ^ uint64(k.path)<<8 ^ uint64(k.kind) ^ uint64(k.bits)<<40) * 0xBF58476D1CE4E5B9
	// the top bit is always set, so a hash is its own fingerprint (see
	// eqEntry); the filter and the shards use the 63 bits below it
	return (h ^ h>>31) | 1<<63
}

func (e *eqIndex) shard(h uint64) *eqShard { return &e.shards[(h>>32)%nShards] }

// getAll looks up every probe of a chunk: filterAll, searchAll and
// finishAll in turn. matchChunk calls the three itself, with its other
// passes between them, so that the lines each one prefetches arrive
// while that other work runs.
func (e *eqIndex) getAll(ps []eqProbe) {
	e.filterAll(ps)
	e.searchAll(ps)
	e.finishAll(ps)
}

// The lookups of a chunk run in passes whose loads are independent, so
// that their cache misses overlap (as hash joins do), and when the index
// has outgrown the core's caches (see bloom.deep) each pass also
// prefetches the lines the next one reads, which the CPU then fetches
// without holding up the instructions in between: the Bloom-filter word
// (prefetched when the key is hashed, see Matcher.addEq), for the probes
// that pass it the table slot, then the entry whose fingerprint matches,
// then its key string and record.

// filterAll tests every probe against the Bloom filter, and for those
// that pass picks the shard table and prefetches the slot where their
// search starts.
func (e *eqIndex) filterAll(ps []eqProbe) {
	f := e.filter.Load()
	for i := range ps {
		p := &ps[i]
		p.ent = nil
		p.tab = nil
		if !f.mayHave(p.h) {
			continue
		}
		// the table is loaded after the filter's bits, which a writer
		// sets after publishing the entry (see add)
		t := e.shard(p.h).tab.Load()
		p.tab = t
		if f.deep {
			prefetch(unsafe.Pointer(&t.slots[p.h&t.mask]))
		}
	}
}

// tablesAll is filterAll without the filter, for probes that another
// filter passed (see blockKey).
func (e *eqIndex) tablesAll(ps []eqProbe) {
	deep := e.filter.Load().deep
	for i := range ps {
		p := &ps[i]
		p.ent = nil
		t := e.shard(p.h).tab.Load()
		p.tab = t
		if deep {
			prefetch(unsafe.Pointer(&t.slots[p.h&t.mask]))
		}
	}
}

// searchAll searches the table of every probe that passed the filter
// for the first entry whose fingerprint matches (finishAll compares its
// key), and prefetches that entry.
func (e *eqIndex) searchAll(ps []eqProbe) {
	deep := e.filter.Load().deep
	for i := range ps {
		p := &ps[i]
		t := p.tab
		if t == nil {
			continue
		}
		fp := fingerprint(p.h)
		for j := p.h & t.mask; ; j = (j + 1) & t.mask {
			f := t.slots[j].fp.Load()
			if f == 0 {
				break
			}
			if f == fp {
				if en := t.slots[j].ent.Load(); en != nil {
					p.ent = en
					if deep {
						prefetch(unsafe.Pointer(en))
					}
					break
				}
			}
		}
	}
}

// finishAll prefetches the key strings and first records of the entries
// found, then compares the keys and sets every probe's postings.
func (e *eqIndex) finishAll(ps []eqProbe) {
	if e.filter.Load().deep {
		for i := range ps {
			if en := ps[i].ent; en != nil {
				if len(en.key.s) > 0 {
					prefetch(unsafe.Pointer(unsafe.StringData(en.key.s)))
				}
				// the record's second line, if the entry is its own
				// (see record.ent); the first was prefetched with the
				// entry
				prefetch(unsafe.Add(unsafe.Pointer(en.one.rec), 64))
			}
		}
	}
	for i := range ps {
		p := &ps[i]
		en := p.ent
		if en != nil && en.key != p.key {
			// two keys with one fingerprint: search the whole path
			en = p.tab.get(&p.key, p.h)
		}
		if en != nil {
			p.post = en.post()
		} else {
			p.post = postings{}
		}
		p.tab, p.ent = nil, nil
	}
}

// add files r under k. Writers only (the Matcher's writer lock is held).
func (e *eqIndex) add(k ikey, r leafRef) {
	h := e.hash(&k)
	e.reserve(1)
	s := e.shard(h)
	t := s.tab.Load()
	at, free := t.find(&k, h)
	if at >= 0 {
		old := t.slots[at].ent.Load().post()
		if old.one == r || len(old.more) > 0 && old.more[len(old.more)-1] == r {
			return // the same leaf filed twice under one key (IN ('x', 'x'))
		}
		t.slots[at].ent.Store(newEqEntry(k, old.with(r)))
		return
	}
	en := r.rec.newEntry()
	*en = eqEntry{key: k, one: r}
	if t.slots[free].fp.Load() == 0 {
		if 4*(s.used+1) > 3*len(t.slots) {
			s.resize(2 * (s.live + 1))
			t = s.tab.Load()
			_, free = t.find(&k, h)
		}
		if t.slots[free].fp.Load() == 0 {
			s.used++
		}
	}
	// the entry first, then the fingerprint a reader matches on
	t.slots[free].ent.Store(en)
	t.slots[free].fp.Store(fingerprint(h))
	s.live++
	e.nkeys++
	// set the bits after the entry exists, so a reader that passes the
	// filter finds it
	e.filter.Load().set(h)
}

func (e *eqIndex) remove(k ikey, rec *record) {
	h := e.hash(&k)
	s := e.shard(h)
	t := s.tab.Load()
	at, _ := t.find(&k, h)
	if at < 0 {
		return
	}
	sl := &t.slots[at]
	p := sl.ent.Load().post().without(rec)
	if p.len() > 0 {
		sl.ent.Store(newEqEntry(k, p))
		return
	}
	// a reader that loaded the fingerprint before the tombstone may still
	// read the entry: it reads the postings as they were before the
	// removal, as if it had run first (and the record is marked removed)
	sl.fp.Store(fpTomb)
	sl.ent.Store(nil)
	s.live--
	e.nkeys--
}

// numKey files numbers so that equal values share a key however they were
// written: integral floats become integers (§9.2: 1 = 1.0, 1 != 1.5).
func numKey(n num, isInt bool) (keyKind, uint64) {
	if isInt {
		return kInt, uint64(n.i)
	}
	f := n.f
	if f == math.Trunc(f) && f >= -9223372036854775808.0 && f < 9223372036854775808.0 {
		return kInt, uint64(int64(f))
	}
	return kFloat, math.Float64bits(f)
}

func ipKey(p netip.Prefix) (a, b uint64, bits uint8) {
	a16 := p.Addr().As16()
	for i := 0; i < 8; i++ {
		a = a<<8 | uint64(a16[i])
		b = b<<8 | uint64(a16[8+i])
	}
	bits = uint8(p.Bits())
	if p.Addr().Is4() {
		bits |= 0x80 // keep 1.2.3.4/32 apart from ::ffff:1.2.3.4/32
	}
	return a, b, bits
}

// blockKey is the key an ISSUBSET constant p of a path is filed under in
// Matcher.blocks, where a single address is looked up at the lengths its
// path's prefix filter gives (see prefixFilter.lengths) instead of
// walking the trie: with a hundred thousand blocks the trie's walk is a
// chain of dependent cache misses, where the lookups of a chunk's
// addresses overlap theirs.
func blockKey(path uint32, p netip.Prefix) ikey {
	a, b, bits := ipKey(p.Masked())
	return ikey{kind: kBlock, a: a, b: b, bits: bits, path: path}
}

// blockKey4 is blockKey of the IPv4 address v masked to bits (0 to 32),
// without netip: the 16 bytes of ipKey are those of ::ffff:v.
func blockKey4(path uint32, v uint32, bits int) ikey {
	m := uint64(v) &^ (1<<(32-bits) - 1)
	return ikey{kind: kBlock, b: 0xffff<<32 | m, bits: uint8(bits) | 0x80, path: path}
}

// pathIdx holds the per-(type, path) structures that are not hash-keyed:
// CIDR tries and the LIKE automaton. They are copy-on-write snapshots
// behind atomic pointers, so readers never wait.
type pathIdx struct {
	id   uint32
	typ  string
	path *ObjectPath
	// single is the property name when the path is one plain step, which
	// lets the matcher read it without walking.
	single string

	nEq, nIP  atomic.Int64
	sub, sup  atomic.Pointer[bart.Table[postings]] // ISSUBSET, ISSUPERSET constants
	subFilter atomic.Pointer[prefixFilter]         // in front of sub
	like      atomic.Pointer[likeIndex]
}

// likeIndex pre-filters LIKE constants with an Aho-Corasick automaton over
// each constant's longest literal run; constants added since the last
// build wait in pending, and those without any literal are always tried.
type likeIndex struct {
	ac      *acMachine
	byLit   [][]likeEntry // per automaton pattern
	pending []likeEntry
	always  []likeEntry
	n       int
}

type likeEntry struct {
	ref  leafRef
	like *likePattern
}

// likeRebuildAt is how many pending entries trigger a rebuild of the
// automaton; rebuilding is linear in all entries, so the threshold grows
// with the index to keep additions amortised O(1).
func likeRebuildAt(n int) int { return max(64, n/8) }

func (li *likeIndex) entries() []likeEntry {
	if li == nil {
		return nil
	}
	var out []likeEntry
	for _, l := range li.byLit {
		out = append(out, l...)
	}
	out = append(out, li.pending...)
	return append(out, li.always...)
}

func buildLikeIndex(all []likeEntry) *likeIndex {
	li := &likeIndex{n: len(all)}
	litIdx := map[string]int{}
	var lits []string
	for _, e := range all {
		lit := e.like.longestLiteral()
		if lit == "" {
			li.always = append(li.always, e)
			continue
		}
		i, ok := litIdx[lit]
		if !ok {
			i = len(lits)
			litIdx[lit] = i
			lits = append(lits, lit)
			li.byLit = append(li.byLit, nil)
		}
		li.byLit[i] = append(li.byLit[i], e)
	}
	li.ac = buildAC(lits)
	return li
}

func (li *likeIndex) with(e likeEntry) *likeIndex {
	if li == nil {
		return buildLikeIndex([]likeEntry{e})
	}
	if len(li.pending)+1 >= likeRebuildAt(li.n) {
		return buildLikeIndex(append(li.entries(), e))
	}
	out := *li
	out.pending = append(slices.Clip(li.pending), e)
	out.n++
	return &out
}

func (li *likeIndex) without(rec *record) *likeIndex {
	var keep []likeEntry
	for _, e := range li.entries() {
		if e.ref.rec != rec {
			keep = append(keep, e)
		}
	}
	if len(keep) == 0 {
		return nil
	}
	return buildLikeIndex(keep)
}

// acMachine is a byte-level Aho-Corasick automaton with a dense root row
// and sparse rows elsewhere.
type acMachine struct {
	root  [256]int32
	nodes []acNode
}

type acNode struct {
	edges []acEdge
	fail  int32
	out   []int32 // patterns ending here, including via suffix links
}

type acEdge struct {
	c    byte
	next int32
}

func (n *acNode) next(c byte) int32 {
	for _, e := range n.edges {
		if e.c == c {
			return e.next
		}
	}
	return -1
}

func buildAC(pats []string) *acMachine {
	m := &acMachine{nodes: []acNode{{}}}
	for pi, p := range pats {
		cur := int32(0)
		for i := 0; i < len(p); i++ {
			nx := m.nodes[cur].next(p[i])
			if nx < 0 {
				nx = int32(len(m.nodes))
				m.nodes = append(m.nodes, acNode{})
				m.nodes[cur].edges = append(m.nodes[cur].edges, acEdge{p[i], nx})
			}
			cur = nx
		}
		m.nodes[cur].out = append(m.nodes[cur].out, int32(pi))
	}
	for c := 0; c < 256; c++ {
		m.root[c] = 0
	}
	queue := []int32{}
	for _, e := range m.nodes[0].edges {
		m.root[e.c] = e.next
		m.nodes[e.next].fail = 0
		queue = append(queue, e.next)
	}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		for _, e := range m.nodes[u].edges {
			v := e.next
			f := m.nodes[u].fail
			m.nodes[v].fail = m.step(f, e.c)
			if ff := m.nodes[v].fail; len(m.nodes[ff].out) > 0 {
				m.nodes[v].out = append(slices.Clip(m.nodes[v].out), m.nodes[ff].out...)
			}
			queue = append(queue, v)
		}
	}
	return m
}

func (m *acMachine) step(state int32, c byte) int32 {
	for state != 0 {
		if nx := m.nodes[state].next(c); nx >= 0 {
			return nx
		}
		state = m.nodes[state].fail
	}
	return m.root[c]
}

// scan calls f for every pattern occurrence in s (a pattern may repeat).
func (m *acMachine) scan(s string, f func(pat int32)) {
	state := int32(0)
	for i := 0; i < len(s); i++ {
		state = m.step(state, s[i])
		for _, p := range m.nodes[state].out {
			f(p)
		}
	}
}

// prefixFilter is a blocked Bloom filter over the CIDR blocks of an
// ISSUBSET trie, keyed by (address masked to the block's length, length),
// with the set of lengths in use. Whether some block contains an address
// is then one test per length in use, in a filter small enough for the
// core's caches, where the trie's longest-prefix walk is a chain of
// dependent loads that miss once the trie outgrows the caches. The
// filter's 64-byte block is chosen by the address masked to
// filterBlockBits (or to the length, if shorter), so the tests of all the
// long lengths of one address read one cache line.
// Bits are only ever set (removed blocks leave false positives until the
// next rebuild), with atomic operations, so readers need no lock.
//
// In front of the IPv4 tests sit two occupancy bitmaps over the address
// space: short, a bit per /16, for the blocks of length 16 or less, and
// cells, a bit per 2^(32-cellBits) addresses, for the longer ones. A
// block sets the bit of every /16 or cell it overlaps, so a clear bit
// proves that no block of its lengths contains an address, with one load
// where the per-length tests cost a hash each. Kept apart, a few broad
// blocks (a /10 sets 64 bits of short) do not fill cells, and an address
// in a broad block, which feeds name often, is tested at the few short
// lengths only, not at every length in use; cells is sized to stay a few
// percent full (and in the core's L2 cache), short is 8 KiB.
type prefixFilter struct {
	short    []uint64         // IPv4 occupancy of blocks up to /16, bit per /16
	cells    []uint64         // IPv4 occupancy of longer blocks, bit per cell
	cellBits int              // log2 of the number of cells, 16 to 24
	words    []uint64         // blocks of 8
	mask     uint64           // block count - 1
	lens4    atomic.Uint64    // bit L: an IPv4 block of length L
	lens6    [3]atomic.Uint64 // bit L%64 of word L/64: an IPv6 block of length L
	cap      int              // blocks it was sized for
	n        int              // blocks added; writers only
}

// prefixFilterMin is the trie size from which a filter is kept.
const prefixFilterMin = 8192

// prefixFilterBits keeps each test's false positives near 1% (the block
// count is rounded up to a power of two, so there are 10 to 20 bits per
// block).
const prefixFilterBits = 10

// filterBlockBits is the length, IPv4 and IPv6, whose prefix of an
// address picks the filter block for longer lengths.
func filterBlockBits(a netip.Addr) int {
	if a.Is4() {
		return 16
	}
	return 32
}

func newPrefixFilter(n int) *prefixFilter {
	n = max(n, 1024)
	blocks := 1
	for blocks*512 < n*prefixFilterBits {
		blocks <<= 1
	}
	// about 16 cells per block keeps the bitmap a few percent full when
	// blocks are long; 2^24 cells (2 MiB) is the cap, a /24 per cell
	cellBits := 16
	for cellBits < 24 && 1<<cellBits < 16*n {
		cellBits++
	}
	f := &prefixFilter{
		short: make([]uint64, 1<<16/64),
		cells: make([]uint64, 1<<cellBits/64), cellBits: cellBits,
		words: make([]uint64, 8*blocks), mask: uint64(blocks - 1), cap: n,
	}
	hugePages(unsafe.Pointer(&f.cells[0]), uintptr(len(f.cells))*8)
	hugePages(unsafe.Pointer(&f.words[0]), uintptr(len(f.words))*8)
	return f
}

func ipv4Bits(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// shortBits is the longest length whose blocks are in prefixFilter.short.
const shortBits = 16

// addCells sets the bits an IPv4 block overlaps: in short for a block up
// to /16, 2^(16-bits) of them; in cells for a longer one, one for a block
// at least as long as a cell, 2^(cellBits-bits) for a shorter one (at
// most the whole bitmap, so a rebuild costs at most a bitmap per length
// whatever the blocks).
func (f *prefixFilter) addCells(v uint32, bits int) {
	if bits <= shortBits {
		setBits(f.short, uint64(v)>>(32-shortBits), shortBits-bits)
		return
	}
	setBits(f.cells, uint64(v)>>(32-f.cellBits), max(f.cellBits-bits, 0))
}

// setBits sets the 2^log bits of bm from bit first rounded down to a
// multiple of 2^log.
func setBits(bm []uint64, first uint64, log int) {
	n := uint64(1) << log
	first &^= n - 1
	for c := first; c < first+n; {
		if c%64 == 0 && first+n-c >= 64 {
			atomic.StoreUint64(&bm[c/64], ^uint64(0))
			c += 64
			continue
		}
		atomic.OrUint64(&bm[c/64], 1<<(c%64))
		c++
	}
}

// cellWord returns the word of cells that mayHave4 reads for v, for
// prefetching (short is small enough to stay in the first-level cache).
func (f *prefixFilter) cellWord(v uint32) unsafe.Pointer {
	c := v >> (32 - f.cellBits)
	return unsafe.Pointer(&f.cells[c/64])
}

// prefetchBlocks6 prefetches the blocks of words that lengths reads for
// the IPv6 address a: one for every length from filterBlockBits(a) up,
// one for each shorter length in use (prefetchBlocks4 is for IPv4).
func (f *prefixFilter) prefetchBlocks6(a netip.Addr) {
	long := filterBlockBits(a)
	prefetch(unsafe.Pointer(&f.words[f.block(a, long)]))
	for l := f.lens6[0].Load() & (1<<long - 1); l != 0; l &= l - 1 {
		prefetch(unsafe.Pointer(&f.words[f.block(a, bits.TrailingZeros64(l))]))
	}
}

// inShort reports whether some block up to /16 overlaps the /16 of v.
func (f *prefixFilter) inShort(v uint32) bool {
	c := v >> (32 - shortBits)
	return atomic.LoadUint64(&f.short[c/64])&(1<<(c%64)) != 0
}

// inCell reports whether some block longer than /16 overlaps the cell
// of v.
func (f *prefixFilter) inCell(v uint32) bool {
	c := v >> (32 - f.cellBits)
	return atomic.LoadUint64(&f.cells[c/64])&(1<<(c%64)) != 0
}

// mayHave4 reports whether some block may contain the IPv4 address v:
// the occupancy bitmaps' answer, before the per-length tests.
func (f *prefixFilter) mayHave4(v uint32) bool { return f.inShort(v) || f.inCell(v) }

// prefetchBlocks4 is prefetchBlocks6 for the IPv4 address v, which
// mayHave4 passed: of the lengths the bitmaps leave, it prefetches what
// lengths4 reads.
func (f *prefixFilter) prefetchBlocks4(v uint32) {
	lens := f.lens4Of(v)
	for l := lens & (1<<filterBlockBits4 - 1); l != 0; l &= l - 1 {
		prefetch(unsafe.Pointer(&f.words[8*(hash4(v, bits.TrailingZeros64(l))>>7&f.mask)]))
	}
	if lens>>filterBlockBits4 != 0 {
		prefetch(unsafe.Pointer(&f.words[8*(hash4(v, filterBlockBits4)>>7&f.mask)]))
	}
}

// lens4Of returns the IPv4 lengths in use that the occupancy bitmaps
// leave for v: those up to /16 if its /16 has a bit in short, the
// longer ones if its cell has a bit in cells.
func (f *prefixFilter) lens4Of(v uint32) uint64 {
	l := f.lens4.Load()
	if !f.inShort(v) {
		l &^= 1<<(shortBits+1) - 1
	}
	if !f.inCell(v) {
		l &= 1<<(shortBits+1) - 1
	}
	return l
}

// filterBlockBits4 is filterBlockBits of an IPv4 address.
const filterBlockBits4 = 16

// hash4 is prefixHash of the IPv4 address v masked to bits (0 to 32),
// without netip.Addr.
func hash4(v uint32, bits int) uint64 {
	// prefixHash's lo term: the low half of 1<<63 * 0xC2B2AE3D27D4EB4F
	// is 1<<63, the multiplier being odd
	const lc = uint64(1) << 63
	x := ((uint64(v)&^(1<<(32-bits)-1))*0x9E3779B97F4A7C15 ^ lc ^ uint64(bits)) * 0xBF58476D1CE4E5B9
	return x ^ x>>31
}

// prefixHash hashes an address masked to bits, with the length.
func prefixHash(a netip.Addr, bits int) uint64 {
	var hi, lo uint64
	if a.Is4() {
		b := a.As4()
		v := uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
		hi = v &^ (1<<(32-bits) - 1) // bits is at most 32
		lo = 1 << 63
	} else {
		b := a.As16()
		for i := 0; i < 8; i++ {
			hi = hi<<8 | uint64(b[i])
			lo = lo<<8 | uint64(b[8+i])
		}
		if bits <= 64 {
			hi &= ^uint64(0) << (64 - bits) // 0 when bits is 0
			lo = 0
		} else {
			lo &= ^uint64(0) << (128 - bits)
		}
	}
	h := (hi*0x9E3779B97F4A7C15 ^ lo*0xC2B2AE3D27D4EB4F ^ uint64(bits)) * 0xBF58476D1CE4E5B9
	return h ^ h>>31
}

// block returns the first word of the block for a and length bits.
func (f *prefixFilter) block(a netip.Addr, bits int) uint64 {
	return 8 * (prefixHash(a, min(bits, filterBlockBits(a))) >> 7 & f.mask)
}

func (f *prefixFilter) add(p netip.Prefix) {
	a, bits := p.Addr(), p.Bits()
	if a.Is4() {
		f.addCells(ipv4Bits(a), bits)
		f.lens4.Or(1 << bits)
	} else {
		f.lens6[bits/64].Or(1 << (bits % 64))
	}
	w, h := f.block(a, bits), prefixHash(a, bits)
	for _, bit := range [3]uint64{h >> 55, h >> 46 & 511, h >> 37 & 511} {
		atomic.OrUint64(&f.words[w+bit/64], 1<<(bit%64))
	}
	f.n++
}

// lengths returns the lengths at which a block added may contain a: bit
// L%64 of word L/64 for length L. Every block that contains a has its
// length there (the filter has no false negatives), so looking a up at
// those lengths alone finds every such block. With all false it stops at
// the first length found. It is prefixHash and block unrolled over the
// lengths in use, with the address read once;
// TestPrefixFilterNoFalseNegatives holds them to the same answers.
func (f *prefixFilter) lengths(a netip.Addr, all bool) (out [3]uint64) {
	if a.Is4() {
		return f.lengths4(ipv4Bits(a), all)
	}
	var hi, lo uint64
	long := filterBlockBits(a)
	b := a.As16()
	for i := 0; i < 8; i++ {
		hi = hi<<8 | uint64(b[i])
		lo = lo<<8 | uint64(b[8+i])
	}
	hash := func(bits int) uint64 {
		h, l := hi, lo
		switch {
		case bits <= 64:
			h &= ^uint64(0) << (64 - bits)
			l = 0
		default:
			l &= ^uint64(0) << (128 - bits)
		}
		x := (h*0x9E3779B97F4A7C15 ^ l*0xC2B2AE3D27D4EB4F ^ uint64(bits)) * 0xBF58476D1CE4E5B9
		return x ^ x>>31
	}
	wLong := 8 * (hash(long) >> 7 & f.mask)
	try := func(bits int) bool {
		h := hash(bits)
		w := wLong
		if bits < long {
			w = 8 * (h >> 7 & f.mask)
		}
		words := f.words[w : w+8 : w+8]
		for _, bit := range [3]uint64{h >> 55, h >> 46 & 511, h >> 37 & 511} {
			if atomic.LoadUint64(&words[bit/64])&(1<<(bit%64)) == 0 {
				return false
			}
		}
		return true
	}
	for i := range f.lens6 {
		for l := f.lens6[i].Load(); l != 0; l &= l - 1 {
			if b := bits.TrailingZeros64(l); try(i*64 + b) {
				out[i] |= 1 << b
				if !all {
					return out
				}
			}
		}
	}
	return out
}

// lengths4 is lengths for the IPv4 address v, unrolled further: the
// prefix filter is consulted for every IPv4 address of a large feed, and
// a closure call per length in use was most of its cost.
func (f *prefixFilter) lengths4(v uint32, all bool) (out [3]uint64) {
	lens := f.lens4Of(v)
	if lens == 0 {
		return out
	}
	const long = filterBlockBits4
	wLong := 8 * (hash4(v, long) >> 7 & f.mask)
	for l := lens; l != 0; l &= l - 1 {
		b := bits.TrailingZeros64(l)
		h := hash4(v, b)
		w := wLong
		if b < long {
			w = 8 * (h >> 7 & f.mask)
		}
		words := f.words[w : w+8 : w+8]
		b0, b1, b2 := h>>55, h>>46&511, h>>37&511
		if atomic.LoadUint64(&words[b0/64])&(1<<(b0%64)) != 0 &&
			atomic.LoadUint64(&words[b1/64])&(1<<(b1%64)) != 0 &&
			atomic.LoadUint64(&words[b2/64])&(1<<(b2%64)) != 0 {
			out[0] |= 1 << b
			if !all {
				return out
			}
		}
	}
	return out
}

// updateFilter files the blocks ops add to t in *fp, rebuilding the
// filter from t when it would be over-full. Writers only.
func updateFilter(fp *atomic.Pointer[prefixFilter], t *bart.Table[postings], ops []trieOp) {
	adds := 0
	for _, op := range ops {
		if op.del == nil {
			adds++
		}
	}
	if adds == 0 {
		return
	}
	if t.Size() < prefixFilterMin {
		// a small trie stays in the caches and its walk is cheaper than
		// testing every length in use
		fp.Store(nil)
		return
	}
	f := fp.Load()
	if f == nil || f.n+adds > f.cap {
		// t holds the additions already; leave room for a quarter more
		// before the next rebuild, so the filter stays small enough for
		// the caches and rebuilds stay amortised O(1) per block
		nf := newPrefixFilter(t.Size() + t.Size()/4)
		for p := range t.All() {
			nf.add(p)
		}
		fp.Store(nf)
		return
	}
	for _, op := range ops {
		if op.del == nil {
			f.add(op.pfx)
		}
	}
}
