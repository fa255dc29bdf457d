package contenthash

import (
	"cmp"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sync"
)

// Index is a near-neighbour index of PDQ hashes by multi-index hashing
// (Norouzi, Punjani, Fleet, "Fast search in Hamming space with multi-index
// hashing", CVPR 2012): each 256-bit hash is cut into 12 substrings of 21
// or 22 bits, each indexed in its own table. If two hashes are within
// distance r, by the pigeonhole principle some substring differs in at most
// r/12 bits, so a query looks up only the table buckets near its own
// substrings and verifies those candidates by full Hamming distance. At the
// PDQ threshold of 31 a query verifies about 0.1% of a random population
// instead of all of it.
//
// Hashes get dense ids (slots) from Add, reused after Remove, so a caller
// keeps what an id stands for (an indicator, its owner and marking) in a
// slice indexed by id, and passes Query a filter over ids. Add and Remove
// take effect for queries that start after they return; nothing is ever
// rebuilt. An Index is safe for concurrent use.
//
// Memory: 32 bytes per hash for the hashes themselves plus 4 bytes per hash
// per table (48) for the postings, about 85 bytes per hash in all.
type Index struct {
	mu     sync.RWMutex
	chunks [][]uint64 // hashes, 4 words each, most significant first
	live   []uint64   // bit per slot
	slots  int        // high-water mark of slots used
	count  int
	free   []uint32
	tables [mihTables][mihBuckets][]uint32
}

const (
	mihTables = 12
	// Each table buckets a substring by its top 16 bits; the rest of the
	// substring (5 or 6 bits) is kept in the top bits of each posting, the
	// slot in the low mihIDBits.
	mihBucketBits = 16
	mihBuckets    = 1 << mihBucketBits
	mihIDBits     = 26
	mihIDMask     = 1<<mihIDBits - 1
	// MaxIndexSize is the most hashes an Index holds (2^26, 67 million).
	MaxIndexSize = 1 << mihIDBits
	chunkShift   = 16 // 65536 hashes (2 MiB) per chunk
	chunkSize    = 1 << chunkShift
	// Beyond this radius per substring, bucket enumeration costs more than
	// a linear scan of the hashes.
	mihMaxRadius = 3
)

// substring k spans bits [mihOffset[k], mihOffset[k]+mihLen[k]) of the hash
// counted from the most significant: four of 22 bits and eight of 21.
var mihLen, mihOffset = func() (l, o [mihTables]int) {
	off := 0
	for k := range l {
		l[k] = 21
		if k < 4 {
			l[k] = 22
		}
		o[k] = off
		off += l[k]
	}
	if off != 256 {
		panic("mih substrings do not cover 256 bits")
	}
	return l, o
}()

// flipMasks[w] lists the 16-bit masks of weight w, to enumerate buckets.
var flipMasks = func() [mihMaxRadius + 1][]uint32 {
	var m [mihMaxRadius + 1][]uint32
	for x := uint32(0); x < mihBuckets; x++ {
		if w := bits.OnesCount32(x); w <= mihMaxRadius {
			m[w] = append(m[w], x)
		}
	}
	return m
}()

func substring(w *[4]uint64, k int) uint32 {
	off, l := mihOffset[k], mihLen[k]
	i, s := off/64, off%64
	x := w[i] << s
	if s+l > 64 {
		x |= w[i+1] >> (64 - s)
	}
	return uint32(x >> (64 - l))
}

// ErrIndexFull is returned by Add when the index holds MaxIndexSize hashes.
var ErrIndexFull = errors.New("pdq index full")

// Match is a stored hash within a query's threshold.
type Match struct {
	ID       uint32
	Distance int
}

// NewIndex returns an empty index.
func NewIndex() *Index { return &Index{} }

// Len returns the number of hashes held.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.count
}

// Add stores h and returns its id.
func (x *Index) Add(h PDQ) (uint32, error) {
	w := h.words()
	x.mu.Lock()
	defer x.mu.Unlock()
	var id uint32
	if n := len(x.free); n > 0 {
		id = x.free[n-1]
		x.free = x.free[:n-1]
	} else {
		if x.slots >= MaxIndexSize {
			return 0, fmt.Errorf("add pdq hash: %w (%d hashes)", ErrIndexFull, x.count)
		}
		id = uint32(x.slots)
		x.slots++
		if int(id)>>chunkShift >= len(x.chunks) {
			x.chunks = append(x.chunks, make([]uint64, 4*chunkSize))
		}
		if int(id)/64 >= len(x.live) {
			x.live = append(x.live, 0)
		}
	}
	copy(x.chunks[id>>chunkShift][4*(id&(chunkSize-1)):], w[:])
	x.live[id/64] |= 1 << (id % 64)
	x.count++
	for k := range x.tables {
		b, p := posting(&w, k, id)
		bucket := x.tables[k][b]
		if len(bucket) == cap(bucket) {
			// Grow by a quarter, not the double append would, to keep
			// memory near the postings' size.
			bucket = slices.Grow(bucket, cap(bucket)/4+4)
		}
		x.tables[k][b] = append(bucket, p)
	}
	return id, nil
}

// posting returns the bucket and posting of slot id in table k.
func posting(w *[4]uint64, k int, id uint32) (uint32, uint32) {
	s := substring(w, k)
	rb := uint(mihLen[k] - mihBucketBits)
	return s >> rb, (s&(1<<rb-1))<<mihIDBits | id
}

// Remove deletes the hash with this id, reporting whether it was there.
func (x *Index) Remove(id uint32) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.isLive(id) {
		return false
	}
	w := x.hash(id)
	for k := range x.tables {
		b, p := posting(&w, k, id)
		bucket := x.tables[k][b]
		if i := slices.Index(bucket, p); i >= 0 {
			last := len(bucket) - 1
			bucket[i] = bucket[last]
			x.tables[k][b] = bucket[:last]
		}
	}
	x.live[id/64] &^= 1 << (id % 64)
	x.count--
	x.free = append(x.free, id)
	return true
}

// Get returns the hash stored under id.
func (x *Index) Get(id uint32) (PDQ, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if !x.isLive(id) {
		return PDQ{}, false
	}
	return pdqFromWords(x.hash(id)), true
}

func (x *Index) isLive(id uint32) bool {
	return int(id) < x.slots && x.live[id/64]&(1<<(id%64)) != 0
}

func (x *Index) hash(id uint32) [4]uint64 {
	c := x.chunks[id>>chunkShift][4*(id&(chunkSize-1)):]
	return [4]uint64{c[0], c[1], c[2], c[3]}
}

func (x *Index) distance(q *[4]uint64, id uint32) int {
	c := x.chunks[id>>chunkShift][4*(id&(chunkSize-1)):]
	c = c[:4]
	return bits.OnesCount64(q[0]^c[0]) + bits.OnesCount64(q[1]^c[1]) +
		bits.OnesCount64(q[2]^c[2]) + bits.OnesCount64(q[3]^c[3])
}

// Query returns every stored hash within Hamming distance threshold of q
// for which allow returns true (nil allows all), nearest first. allow is
// called once per matching id, after the index lock is released, so it
// may consult other state (or this index) freely; it decides visibility,
// and hidden ids never reach the result, not even as a count.
func (x *Index) Query(q PDQ, threshold int, allow func(id uint32) bool) []Match {
	if threshold < 0 {
		return nil
	}
	threshold = min(threshold, 256)
	w := q.words()
	// Pigeonhole with remainder: with threshold = 12r + a, a match has a
	// substring among the first a+1 within r bits, or one among the
	// others within r-1 bits.
	r, a := threshold/mihTables, threshold%mihTables
	var out []Match
	x.mu.RLock()
	if r > mihMaxRadius {
		out = x.scanLocked(&w, threshold)
	} else {
		for k := range x.tables {
			radius := r
			if k > a {
				radius = r - 1
			}
			if radius < 0 {
				continue
			}
			out = x.probe(&w, k, radius, threshold, out)
		}
	}
	x.mu.RUnlock()
	return finish(out, allow)
}

// probe verifies the postings of table k whose substring is within radius
// of the query's.
func (x *Index) probe(w *[4]uint64, k, radius, threshold int, out []Match) []Match {
	s := substring(w, k)
	rb := uint(mihLen[k] - mihBucketBits)
	top, res := s>>rb, s&(1<<rb-1)
	table := &x.tables[k]
	for flips := 0; flips <= radius; flips++ {
		left := radius - flips
		for _, m := range flipMasks[flips] {
			for _, p := range table[top^m] {
				if bits.OnesCount32(p>>mihIDBits^res) > left {
					continue
				}
				id := p & mihIDMask
				if d := x.distance(w, id); d <= threshold {
					out = append(out, Match{ID: id, Distance: d})
				}
			}
		}
	}
	return out
}

// Scan is Query by linear scan of every stored hash: the baseline the
// index is measured and tested against, and the method for thresholds
// too large for multi-index hashing to pay.
func (x *Index) Scan(q PDQ, threshold int, allow func(id uint32) bool) []Match {
	if threshold < 0 {
		return nil
	}
	w := q.words()
	x.mu.RLock()
	out := x.scanLocked(&w, threshold)
	x.mu.RUnlock()
	return finish(out, allow)
}

func (x *Index) scanLocked(w *[4]uint64, threshold int) []Match {
	var out []Match
	for c, chunk := range x.chunks {
		n := min(chunkSize, x.slots-c*chunkSize)
		for i := 0; i < n; i++ {
			h := chunk[4*i : 4*i+4]
			d := bits.OnesCount64(w[0]^h[0]) + bits.OnesCount64(w[1]^h[1]) +
				bits.OnesCount64(w[2]^h[2]) + bits.OnesCount64(w[3]^h[3])
			if d <= threshold {
				id := uint32(c*chunkSize + i)
				if x.live[id/64]&(1<<(id%64)) != 0 {
					out = append(out, Match{ID: id, Distance: d})
				}
			}
		}
	}
	return out
}

// finish sorts matches nearest first, drops duplicates (a hash may be
// found through several substrings) and applies the filter.
func finish(out []Match, allow func(uint32) bool) []Match {
	slices.SortFunc(out, func(a, b Match) int {
		if c := cmp.Compare(a.Distance, b.Distance); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	out = slices.Compact(out)
	if allow != nil {
		out = slices.DeleteFunc(out, func(m Match) bool { return !allow(m.ID) })
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
