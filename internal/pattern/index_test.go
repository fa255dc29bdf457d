package pattern

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// eqLookup looks keys up through getAll, as matchChunk does, and returns
// the records filed under each.
func eqLookup(e *eqIndex, keys []ikey) [][]*record {
	ps := make([]eqProbe, len(keys))
	for i, k := range keys {
		ps[i] = eqProbe{key: k, h: e.hash(&k)}
	}
	e.getAll(ps)
	out := make([][]*record, len(ps))
	for i := range ps {
		ps[i].post.each(func(r leafRef) { out[i] = append(out[i], r.rec) })
	}
	return out
}

// newDeepEqIndex returns an empty index sized for enough keys that its
// filter is deep (its lookups prefetch), so that tests with few keys
// take the path a large index takes.
func newDeepEqIndex(t *testing.T) *eqIndex {
	t.Helper()
	e := newEqIndex()
	e.reserve(bloomDeepWords * 64 / bloomBitsPerKey)
	if !e.filter.Load().deep {
		t.Fatal("the filter is not deep: the test misses the path it is for")
	}
	return e
}

// eachDepth runs f on an empty index that is shallow and on one that is
// deep (see newDeepEqIndex).
func eachDepth(t *testing.T, f func(t *testing.T, e *eqIndex)) {
	t.Run("shallow", func(t *testing.T) {
		e := newEqIndex()
		if e.filter.Load().deep {
			t.Fatal("a new index's filter is deep")
		}
		f(t, e)
	})
	t.Run("deep", func(t *testing.T) { f(t, newDeepEqIndex(t)) })
}

// TestEqIndexAgainstMap adds and removes entries at random, through table
// growth, tombstones and keys added again after removal, and checks every
// key's postings against a plain map after each round.
func TestEqIndexAgainstMap(t *testing.T) { eachDepth(t, testEqIndexAgainstMap) }

func testEqIndexAgainstMap(t *testing.T, e *eqIndex) {
	r := rand.New(rand.NewPCG(1, 2))
	const universe = 6000
	key := func(i int) ikey {
		switch i % 3 {
		case 0:
			return ikey{kind: kString, s: fmt.Sprintf("v%d", i), path: uint32(1 + i%2)}
		case 1:
			return ikey{kind: kInt, a: uint64(i), path: 1}
		}
		return ikey{kind: kIP, a: uint64(i), b: uint64(i) << 7, bits: 128, path: 3}
	}
	recs := make([]*record, 8)
	for i := range recs {
		recs[i] = &record{id: fmt.Sprint(i)}
	}
	want := map[ikey][]*record{}
	all := make([]ikey, universe)
	for i := range all {
		all[i] = key(i)
	}
	for round := range 6 {
		if round == 2 {
			e.reserve(universe) // the batch path sizes tables up front
		}
		for range 4000 {
			k := all[r.IntN(universe)]
			rec := recs[r.IntN(len(recs))]
			if r.IntN(3) == 0 {
				e.remove(k, rec)
				want[k] = slices.DeleteFunc(want[k], func(x *record) bool { return x == rec })
				continue
			}
			if slices.Contains(want[k], rec) {
				continue // the Matcher files a leaf under a key once
			}
			e.add(k, leafRef{rec: rec})
			want[k] = append(want[k], rec)
		}
		got := eqLookup(e, all)
		for i, k := range all {
			g, w := got[i], want[k]
			byID := func(a, b *record) int { return strings.Compare(a.id, b.id) }
			slices.SortFunc(g, byID)
			slices.SortFunc(w, byID)
			if !slices.Equal(g, w) {
				t.Fatalf("round %d: key %+v has %d records, want %d", round, k, len(g), len(w))
			}
		}
		n := 0
		for _, l := range want {
			if len(l) > 0 {
				n++
			}
		}
		if e.nkeys != n {
			t.Fatalf("round %d: %d keys counted, want %d", round, e.nkeys, n)
		}
	}
}

// TestEqIndexFingerprintCollision files two keys whose hashes are equal
// (so are their fingerprints): the lookup must compare the keys and find
// each one's own postings, whichever slot comes first.
func TestEqIndexFingerprintCollision(t *testing.T) {
	eachDepth(t, testEqIndexFingerprintCollision)
}

func testEqIndexFingerprintCollision(t *testing.T, e *eqIndex) {
	a, b := ikey{kind: kString, s: "a", path: 1}, ikey{kind: kString, s: "b", path: 1}
	ra, rb := &record{id: "a"}, &record{id: "b"}
	const h = 0x1234_5678_9abc_def0 | 1<<63 // as eqIndex.hash gives them
	s := e.shard(h)
	s.tab.Load().put(&eqEntry{key: a, one: leafRef{rec: ra}}, h)
	s.tab.Load().put(&eqEntry{key: b, one: leafRef{rec: rb}}, h)
	e.filter.Load().set(h)
	for _, c := range []struct {
		k    ikey
		want *record
	}{{a, ra}, {b, rb}} {
		ps := []eqProbe{{key: c.k, h: h}}
		e.getAll(ps)
		if ps[0].post.one.rec != c.want || ps[0].post.len() != 1 {
			t.Fatalf("key %q found %v, want record %s", c.k.s, ps[0].post.one.rec, c.want.id)
		}
	}
	ps := []eqProbe{{key: ikey{kind: kString, s: "c", path: 1}, h: h}}
	e.getAll(ps)
	if ps[0].post.len() != 0 {
		t.Fatal("a key never filed found postings")
	}
}

// TestEqIndexConcurrentGrowth reads while a writer grows every table many
// times over, removes keys (leaving tombstones) and re-adds them: keys
// filed before the readers start must be found with their postings
// throughout, and keys never filed never found. Run it with -race.
func TestEqIndexConcurrentGrowth(t *testing.T) { eachDepth(t, testEqIndexConcurrentGrowth) }

func testEqIndexConcurrentGrowth(t *testing.T, e *eqIndex) {
	stable := &record{id: "stable"}
	var keep, never []ikey
	for i := range 256 {
		k := ikey{kind: kString, s: fmt.Sprintf("keep%d", i), path: 1}
		e.add(k, leafRef{rec: stable})
		keep = append(keep, k)
		never = append(never, ikey{kind: kString, s: fmt.Sprintf("never%d", i), path: 1})
	}
	stop := make(chan struct{})
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				for i, got := range eqLookup(e, keep) {
					if len(got) != 1 || got[0] != stable {
						errs <- fmt.Errorf("key %s: %d records during updates", keep[i].s, len(got))
						return
					}
				}
				for i, got := range eqLookup(e, never) {
					if len(got) != 0 {
						errs <- fmt.Errorf("key %s never filed but found", never[i].s)
						return
					}
				}
			}
		}()
	}
	churn := &record{id: "churn"}
	for i := range 20000 {
		k := ikey{kind: kString, s: fmt.Sprintf("churn%d", i), path: 1}
		e.add(k, leafRef{rec: churn})
		if i%3 == 0 {
			e.remove(ikey{kind: kString, s: fmt.Sprintf("churn%d", i/2), path: 1}, churn)
		}
	}
	close(stop)
	wg.Wait()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestEqEntryIsOneLine holds eqEntry to 64 bytes: a hit reads its key and
// first posting, and an entry of 64 bytes (a size class of its own) never
// straddles two cache lines, where one of 96 did half the time.
func TestEqEntryIsOneLine(t *testing.T) {
	if s := unsafe.Sizeof(eqEntry{}); s != 64 {
		t.Fatalf("eqEntry is %d bytes, want 64", s)
	}
}

// TestPrefetchNil holds prefetch to being a hint, which reads nothing and
// so cannot fault, even on nil.
func TestPrefetchNil(t *testing.T) {
	prefetch(nil)
	b := make([]byte, 64)
	prefetch(unsafe.Pointer(&b[0]))
}

// TestBloomFalsePositives files random hashes in a filter sized as the
// index sizes it and checks that every one passes and that few others
// do: at 100,000 keys the filter is deep, so it has twice the words of
// ten bits a key (see bloomBitsPerKey), where three bits a key give
// under 0.6% (half the words give about 2%).
func TestBloomFalsePositives(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	const keys = 100_000
	f := newBloom(keys)
	if !f.deep {
		t.Fatal("the filter is not deep: the bound below is for a deep one")
	}
	if bits := float64(len(f.words)*64) / keys; bits < 19 || bits > 22 {
		t.Fatalf("%.1f bits a key: the bound below is for twenty", bits)
	}
	in := make([]uint64, keys)
	for i := range in {
		in[i] = r.Uint64() | 1<<63 // as eqIndex.hash gives them
		f.set(in[i])
	}
	for _, h := range in {
		if !f.mayHave(h) {
			t.Fatalf("hash %x was set but the filter says no", h)
		}
	}
	const tries = 200_000
	pass := 0
	for range tries {
		if f.mayHave(r.Uint64() | 1<<63) {
			pass++
		}
	}
	if rate := float64(pass) / tries; rate > 0.006 {
		t.Fatalf("%.2f%% false positives, want under 0.6%%", 100*rate)
	} else {
		t.Logf("%.2f%% false positives", 100*rate)
	}
}

// TestRecordOwnsItsFirstEntry checks that the first new key filed for a
// record gets the record's own entry, that later ones and keys already
// filed get entries of their own, that an entry once published is never
// written again (the record's own included), and the layout that puts
// the entry and the record's fields on two lines of one allocation.
func TestRecordOwnsItsFirstEntry(t *testing.T) {
	if off := unsafe.Offsetof(record{}.ent); off != 0 {
		t.Fatalf("record.ent at offset %d, want 0", off)
	}
	if off := unsafe.Offsetof(record{}.id); off < 64 {
		t.Fatalf("record.id at offset %d, on the entry's line", off)
	}
	if s := unsafe.Sizeof(record{}); s > 128 {
		t.Fatalf("record is %d bytes, want 128 at most (one size class)", s)
	}
	eachDepth(t, func(t *testing.T, e *eqIndex) {
		key := func(s string) ikey { return ikey{kind: kString, s: s, path: 1} }
		entry := func(k ikey) *eqEntry {
			h := e.hash(&k)
			return e.shard(h).tab.Load().get(&k, h)
		}
		r1, r2 := &record{id: "1"}, &record{id: "2"}
		e.add(key("a"), leafRef{rec: r1})
		if entry(key("a")) != &r1.ent {
			t.Fatal("the first key of a record did not get the record's entry")
		}
		e.add(key("a"), leafRef{rec: r2}) // a key filed already
		if en := entry(key("a")); en == &r1.ent || en == &r2.ent {
			t.Fatal("a changed entry was written in place")
		}
		e.add(key("b"), leafRef{rec: r2})
		if entry(key("b")) != &r2.ent {
			t.Fatal("the first new key of a record did not get the record's entry")
		}
		e.add(key("c"), leafRef{rec: r1}) // r1's entry is taken
		if en := entry(key("c")); en == &r1.ent {
			t.Fatal("a record's entry was used twice")
		}
		e.remove(key("a"), r2)
		if r1.ent.key != key("a") || r1.ent.one.rec != r1 || r2.ent.key != key("b") {
			t.Fatal("a published entry was written again")
		}
		got := eqLookup(e, []ikey{key("a"), key("b"), key("c")})
		if len(got[0]) != 1 || got[0][0] != r1 || len(got[1]) != 1 || got[1][0] != r2 || len(got[2]) != 1 || got[2][0] != r1 {
			t.Fatalf("lookups found %v", got)
		}
	})
}

// TestHugePagesKeepContents checks that advising huge pages for an array
// changes nothing in it, nor in the heap memory around it that shares
// its 2 MiB regions (an advice that drops pages, such as MADV_DONTNEED,
// would zero them).
func TestHugePagesKeepContents(t *testing.T) {
	const n = 3 << 20 / 8
	val := func(i int) uint64 { return uint64(i)*0x9E3779B97F4A7C15 + 1 }
	a := make([]uint64, n)
	for i := range a {
		a[i] = val(i)
	}
	// the middle 2 MiB: the regions advised also hold both ends of a
	hugePages(unsafe.Pointer(&a[n/6]), 2<<20)
	for i := range a {
		if a[i] != val(i) {
			t.Fatalf("word %d is %x after hugePages, was %x", i, a[i], val(i))
		}
	}
}
