package pattern

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func sco(typ, value string) *Observation {
	o, err := NewObservation(time.Unix(0, 0), time.Unix(0, 0), 1, &SCO{T: typ, Value: value})
	if err != nil {
		panic(err)
	}
	return o
}

func ids(ms []Match) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	slices.Sort(out)
	return out
}

func TestMatcherIndexes(t *testing.T) {
	m := NewMatcher(MatcherOptions{})
	err := m.AddAll([]Indicator{
		{"eq", `[ipv4-addr:value = '10.0.0.1']`},
		{"eq32", `[ipv4-addr:value = '10.0.0.2/32']`},
		{"in", `[domain-name:value IN ('a.example', 'b.example')]`},
		{"sub", `[ipv4-addr:value ISSUBSET '10.0.0.0/8']`},
		{"sub16", `[ipv4-addr:value ISSUBSET '10.0.0.0/16']`},
		{"sup", `[ipv4-addr:value ISSUPERSET '10.9.9.9']`},
		{"v6", `[ipv6-addr:value ISSUBSET '2001:db8::/32']`},
		{"like", `[url:value LIKE 'http://evil.example/%']`},
		{"like2", `[url:value LIKE '%/payload.exe']`},
		{"likeany", `[url:value LIKE '_%']`},
		{"and", `[domain-name:value = 'a.example' AND domain-name:value LIKE '%.example']`},
		{"scan", `[domain-name:value MATCHES '^b\\.']`},
		{"not", `[domain-name:value NOT = 'a.example']`},
		{"empty-in", `[domain-name:value IN ()]`},
		{"window", `[domain-name:value = 'a.example'] START t'2000-01-01T00:00:00Z' STOP t'2001-01-01T00:00:00Z'`},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		obs  *Observation
		want []string
	}{
		{sco("ipv4-addr", "10.0.0.1"), []string{"eq", "sub", "sub16"}},
		{sco("ipv4-addr", "10.0.0.2"), []string{"eq32", "sub", "sub16"}},
		{sco("ipv4-addr", "10.9.0.0/16"), []string{"sub", "sup"}},
		{sco("ipv4-addr", "11.0.0.1"), nil},
		{sco("ipv6-addr", "2001:db8::5"), []string{"v6"}},
		{sco("ipv6-addr", "10.0.0.1"), nil},
		{sco("domain-name", "a.example"), []string{"and", "in"}},
		{sco("domain-name", "b.example"), []string{"in", "not", "scan"}},
		{sco("url", "http://evil.example/x/payload.exe"), []string{"like", "like2", "likeany"}},
		{sco("url", "http://good.example/"), []string{"likeany"}},
	}
	for _, tt := range tests {
		if got := ids(m.Match(tt.obs)); !slices.Equal(got, tt.want) {
			t.Errorf("%s %s: got %v, want %v", tt.obs.Objects[0].Type(), tt.obs.Objects[0].(*SCO).Value, got, tt.want)
		}
	}
	// remove and replace
	if !m.Remove("sub") || m.Remove("sub") {
		t.Fatal("Remove result")
	}
	if err := m.Add("eq", `[ipv4-addr:value = '10.0.0.3']`); err != nil {
		t.Fatal(err)
	}
	if got := ids(m.Match(sco("ipv4-addr", "10.0.0.1"))); !slices.Equal(got, []string{"sub16"}) {
		t.Errorf("after remove/replace got %v", got)
	}
	if got := ids(m.Match(sco("ipv4-addr", "10.0.0.3"))); !slices.Equal(got, []string{"eq", "sub16"}) {
		t.Errorf("replaced indicator: got %v", got)
	}
	for _, id := range []string{"like", "like2", "likeany", "scan", "and", "in", "not", "eq", "eq32", "sub16", "sup", "v6", "empty-in", "window"} {
		if !m.Remove(id) {
			t.Errorf("Remove(%s) = false", id)
		}
	}
	if m.Len() != 0 {
		t.Errorf("Len = %d after removing all", m.Len())
	}
	for _, tt := range tests {
		if got := m.Match(tt.obs); len(got) != 0 {
			t.Errorf("empty matcher matched %v", ids(got))
		}
	}
	if err := m.Add("bad", `[a:b = `); err == nil {
		t.Error("invalid pattern accepted")
	}
	// the last of duplicate IDs in one batch wins
	if err := m.AddAll([]Indicator{{"d", `[ipv4-addr:value ISSUBSET '10.0.0.0/8']`}, {"d", `[domain-name:value = 'd.example']`}}); err != nil {
		t.Fatal(err)
	}
	if got := ids(m.Match(sco("ipv4-addr", "10.0.0.1"))); len(got) != 0 {
		t.Errorf("replaced duplicate still matches: %v", got)
	}
	if got := ids(m.Match(sco("domain-name", "d.example"))); !slices.Equal(got, []string{"d"}) {
		t.Errorf("duplicate: got %v", got)
	}
}

func TestMatcherTemporalState(t *testing.T) {
	m := NewMatcher(MatcherOptions{MaxEvents: 4})
	if err := m.AddAll([]Indicator{
		{"fb", `([ipv4-addr:value = '10.0.0.1'] FOLLOWEDBY [domain-name:value = 'x.example']) WITHIN 60 SECONDS`},
		{"rep", `[domain-name:value = 'x.example'] REPEATS 3 TIMES`},
	}); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(sec int, typ, v string) *Observation {
		ts := base.Add(time.Duration(sec) * time.Second)
		o, _ := NewObservation(ts, ts, 1, &SCO{T: typ, Value: v})
		return o
	}
	steps := []struct {
		obs  *Observation
		want []string
	}{
		{at(0, "ipv4-addr", "10.0.0.1"), nil},
		{at(61, "domain-name", "x.example"), nil}, // window closed
		{at(62, "ipv4-addr", "10.0.0.1"), nil},
		{at(100, "domain-name", "x.example"), []string{"fb"}},
		{at(101, "domain-name", "x.example"), []string{"rep"}},
		{at(102, "domain-name", "x.example"), nil}, // state was consumed
	}
	for i, s := range steps {
		got := m.Match(s.obs)
		if !slices.Equal(ids(got), s.want) {
			t.Errorf("step %d: got %v, want %v", i, ids(got), s.want)
		}
		for _, mt := range got {
			if len(mt.Observations) < 2 {
				t.Errorf("step %d: %s bound %d observations", i, mt.ID, len(mt.Observations))
			}
		}
	}
	// eviction: the WITHIN window bounds what "fb" keeps
	rec := m.byID["fb"]
	for i := range 100 {
		m.Match(at(1000+i*100, "ipv4-addr", "10.0.0.1"))
	}
	rec.state.mu.Lock()
	n := len(rec.state.events)
	rec.state.mu.Unlock()
	if n != 1 {
		t.Errorf("fb keeps %d events, want 1 (window evicts)", n)
	}
	// Sweep drops state whose window closed without further events
	m.Match(at(100000, "ipv4-addr", "10.0.0.1"))
	if n := m.Sweep(base.Add(200000 * time.Second)); n != 0 {
		t.Errorf("after Sweep %d windowed patterns hold state, want 0", n)
	}
	// MaxEvents bounds patterns without WITHIN
	rep := m.byID["rep"]
	m.Remove("fb")
	for i := range 2 {
		m.Match(at(20000+i, "domain-name", "x.example"))
	}
	rep.state.mu.Lock()
	n = len(rep.state.events)
	rep.state.mu.Unlock()
	if n > 4 {
		t.Errorf("rep keeps %d events, cap is 4", n)
	}
}

// TestMatcherConcurrent adds and removes indicators while other goroutines
// match; run with -race.
func TestMatcherConcurrent(t *testing.T) {
	m := NewMatcher(MatcherOptions{})
	var base []Indicator
	for i := range 200 {
		base = append(base, Indicator{fmt.Sprint("base", i), fmt.Sprintf("[ipv4-addr:value = '10.1.%d.%d']", i/256, i%256)})
	}
	if err := m.AddAll(base); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var matched atomic.Int64
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			obs := []*Observation{sco("ipv4-addr", "10.1.0.5"), sco("ipv4-addr", "10.2.0.1"), sco("domain-name", "c.example"), sco("url", "http://c.example/x")}
			for i := 0; ; i++ {
				if i >= 2000 {
					select {
					case <-stop:
						return
					default:
					}
				}
				got := m.Match(obs[i%len(obs)])
				matched.Add(int64(len(got)))
				if i%len(obs) == 0 && !slices.Contains(ids(got), "base5") {
					t.Error("base5 stopped matching during updates")
					return
				}
			}
		}()
	}
	for i := range 300 {
		id := fmt.Sprint("dyn", i%20)
		var p string
		switch i % 4 {
		case 0:
			p = fmt.Sprintf("[ipv4-addr:value ISSUBSET '10.2.%d.0/24']", i%3)
		case 1:
			p = "[domain-name:value = 'c.example']"
		case 2:
			p = "[url:value LIKE 'http://c.example/%']"
		default:
			p = "[domain-name:value MATCHES 'c'] FOLLOWEDBY [url:value = 'http://c.example/x']"
		}
		if err := m.Add(id, p); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			m.Remove(fmt.Sprint("dyn", (i+7)%20))
		}
	}
	close(stop)
	wg.Wait()
	if matched.Load() == 0 {
		t.Fatal("nothing matched")
	}
}

// TestLargePatterns runs big but valid patterns through every stage; it
// guards against quadratic behaviour (which would make it crawl), without
// timing anything.
func TestLargePatterns(t *testing.T) {
	var parts []string
	for i := range 10000 {
		parts = append(parts, fmt.Sprintf("t%d:b = 'é'", i))
	}
	obs, _ := NewObservation(time.Unix(0, 0), time.Unix(0, 0), 1, &SCO{T: "t5", Props: map[string]any{"b": "é"}})
	for _, src := range []string{
		"[" + strings.Join(parts, " OR ") + "]",
		"[(" + strings.Join(parts[:5000], " OR ") + ") AND (" + strings.Join(parts[:5000], " OR ") + ")]",
		"[" + strings.Repeat("t5:b = 'é' AND ", 10000) + "t5:b = 'é']",
		strings.Repeat("[t5:b = 'é'] FOLLOWEDBY ", 5000) + "[t5:b = 'é']",
		strings.Repeat("[t5:b = 'é'] OR ", 5000) + "[t5:b = 'é']",
		"[t5:b IN (" + strings.Repeat("'x', ", 20000) + "'é')]",
	} {
		p, err := Parse(src)
		if err != nil {
			t.Fatalf("%.60s…: %v", src, err)
		}
		want, err := p.Evaluate([]*Observation{obs})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(p.Root.String()); err != nil {
			t.Fatalf("canonical form: %v", err)
		}
		m := NewMatcher(MatcherOptions{})
		if err := m.Add("x", src); err != nil {
			t.Fatal(err)
		}
		if got := len(m.Match(obs)) == 1; got != want.Matched {
			t.Errorf("%.60s…: Matcher %v, Evaluate %v", src, got, want.Matched)
		}
		if !m.Remove("x") {
			t.Fatal("Remove")
		}
	}
}

// TestPrefixFilterNoFalseNegatives checks the filter in front of the
// ISSUBSET tries against a brute-force containment test: every address
// some block contains must pass, and the lengths the filter gives for it
// must include every such block's, at every length from /0 to /128,
// IPv4-mapped IPv6 included, across rebuilds.
// TestIPv4FastPaths holds the IPv4 forms that the prefix filter and the
// block index use for single addresses (hash4, blockKey4) to the general
// ones they stand for, at every length.
func TestIPv4FastPaths(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 2000 {
		v := r.Uint32()
		a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		for bits := 0; bits <= 32; bits++ {
			if got, want := hash4(v, bits), prefixHash(a, bits); got != want {
				t.Fatalf("hash4(%v, %d) = %x, prefixHash gives %x", a, bits, got, want)
			}
			path := r.Uint32()
			if got, want := blockKey4(path, v, bits), blockKey(path, netip.PrefixFrom(a, bits)); got != want {
				t.Fatalf("blockKey4(%v/%d) = %+v, blockKey gives %+v", a, bits, got, want)
			}
		}
	}
}

// TestPrefixFilterShortBlocksStayShort checks that broad IPv4 blocks (up
// to /16) do not fill the bitmap of the longer ones: an address inside a
// /10 whose cell holds no longer block is tested at the short lengths
// only, and one outside every block at none.
func TestPrefixFilterShortBlocksStayShort(t *testing.T) {
	f := newPrefixFilter(0)
	for _, p := range []string{"100.64.0.0/10", "100.64.0.0/16", "8.8.0.0/16", "100.96.1.0/24", "9.9.9.0/28"} {
		f.add(netip.MustParsePrefix(p))
	}
	v4 := func(s string) uint32 { return ipv4Bits(netip.MustParseAddr(s)) }
	short := uint64(1<<10 | 1<<16)
	for _, c := range []struct {
		addr string
		want uint64 // the lengths lens4Of leaves
	}{
		{"100.70.3.4", short},                 // in the /10 only
		{"100.64.200.1", short},               // in the /10 and a /16
		{"100.96.1.7", short | 1<<24 | 1<<28}, // in the /10 and the /24's cell
		{"8.8.4.4", short},                    // a /16 of its own
		{"9.9.9.1", 1<<24 | 1<<28},            // the /28's cell only
		{"203.0.113.9", 0},                    // outside every block
	} {
		if got := f.lens4Of(v4(c.addr)); got != c.want {
			t.Errorf("%s: lengths left %b, want %b", c.addr, got, c.want)
		}
		if got := f.mayHave4(v4(c.addr)); got != (c.want != 0) {
			t.Errorf("%s: mayHave4 = %v", c.addr, got)
		}
	}
}

func TestPrefixFilterNoFalseNegatives(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	randAddr := func() netip.Addr {
		switch r.IntN(3) {
		case 0:
			return netip.AddrFrom4([4]byte{byte(r.IntN(4)), byte(r.IntN(8)), byte(r.IntN(256)), byte(r.IntN(256))})
		case 1:
			return netip.AddrFrom16(netip.AddrFrom4([4]byte{byte(r.IntN(4)), byte(r.IntN(256)), 1, 2}).As16()) // 4-in-6
		}
		var b [16]byte
		b[0], b[1], b[5] = 0x20, 0x01, byte(r.IntN(4))
		b[15] = byte(r.IntN(256))
		return netip.AddrFrom16(b)
	}
	var blocks []netip.Prefix
	f := newPrefixFilter(0)
	for len(blocks) < 1500 { // past newPrefixFilter's minimum, so it rebuilds
		a := randAddr()
		// long enough that some addresses fall outside every block
		bits := a.BitLen()/2 + r.IntN(a.BitLen()/2+1)
		if r.IntN(100) == 0 {
			bits = 6 + r.IntN(a.BitLen()/2-6) // a few short ones, below the filter's block length
		}
		p := netip.PrefixFrom(a, bits)
		blocks = append(blocks, p)
		if f.n+1 > f.cap { // rebuild, as updateFilter does
			nf := newPrefixFilter(2 * len(blocks))
			for _, b := range blocks {
				nf.add(b)
			}
			f = nf
		} else {
			f.add(p)
		}
	}
	misses, passed := 0, 0
	for range 20000 {
		a := randAddr()
		contained := false
		lens := f.lengths(a, true)
		for _, b := range blocks {
			if b.Addr().Is4() == a.Is4() && b.Contains(a) {
				contained = true
				if lens[b.Bits()/64]&(1<<(b.Bits()%64)) == 0 {
					t.Fatalf("%v is in %v but the filter's lengths leave out /%d", a, b, b.Bits())
				}
			}
		}
		got := f.mayContain(a)
		if got != (lens != [3]uint64{}) {
			t.Fatalf("%v: mayContain says %v, lengths %v", a, got, lens)
		}
		if contained && !got {
			t.Fatalf("%v is in a block but the filter says no", a)
		}
		if !contained {
			misses++
			if got {
				passed++
			}
		}
	}
	if misses == 0 {
		t.Fatal("no address outside every block: the test checks nothing")
	}
	t.Logf("%d of %d addresses outside every block passed the filter", passed, misses)
}

// TestMatchBatchAgreesWithMatch streams random observations through two
// Matchers holding the same random patterns (stateful ones included), one
// observation at a time and in batches of random sizes: the matches, and
// the observation each belongs to, must be the same.
func TestMatchBatchAgreesWithMatch(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	g := gen{r}
	total := 0
	for round := range 6 {
		var inds []Indicator
		for i := range 150 {
			src := g.obsExpr(2)
			if Check(src) == nil {
				inds = append(inds, Indicator{ID: fmt.Sprint(i), Pattern: src})
			}
		}
		one, batch := NewMatcher(MatcherOptions{}), NewMatcher(MatcherOptions{})
		if err := one.AddAll(inds); err != nil {
			t.Fatal(err)
		}
		if err := batch.AddAll(inds); err != nil {
			t.Fatal(err)
		}
		var sdos []string
		for sec := range 60 {
			sdos = append(sdos, g.observation(sec))
		}
		obs := mustObs(t, sdos...)
		var want, got []string
		for i, o := range obs {
			for _, mt := range one.Match(o) {
				want = append(want, fmt.Sprintf("%d:%s:%d", i, mt.ID, len(mt.Observations)))
			}
		}
		var dst []BatchMatch
		for lo := 0; lo < len(obs); {
			hi := min(len(obs), lo+1+r.IntN(100))
			dst = batch.MatchBatch(dst[:0], obs[lo:hi])
			for _, bm := range dst {
				got = append(got, fmt.Sprintf("%d:%s:%d", lo+bm.Obs, bm.ID, len(bm.Observations)))
			}
			lo = hi
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: MatchBatch found %d matches, Match %d\nbatch: %v\none: %v", round, len(got), len(want), got, want)
		}
		total += len(want)
	}
	if total == 0 {
		t.Fatal("nothing matched: the test checks nothing")
	}
	t.Logf("%d matches agree", total)
}

// TestMatchBatchAllocs checks the hot path allocates nothing per
// observation once the scratch space has grown.
func TestMatchBatchAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items, so allocations are not counted")
	}
	m := NewMatcher(MatcherOptions{})
	if err := m.AddAll(feedMix(2000, nil)); err != nil {
		t.Fatal(err)
	}
	stream := observationStream(2000, 512)
	var dst []BatchMatch
	dst = m.MatchBatch(dst, stream) // grow the scratch space and dst
	if len(dst) == 0 {
		t.Fatal("nothing matched: the test checks nothing")
	}
	allocs := testing.AllocsPerRun(20, func() { dst = m.MatchBatch(dst[:0], stream) })
	if allocs > 0 {
		t.Errorf("MatchBatch of %d observations: %v allocations", len(stream), allocs)
	}
	var one []Match
	allocs = testing.AllocsPerRun(200, func() { one = m.MatchAppend(one[:0], stream[7]) })
	if allocs > 0 {
		t.Errorf("MatchAppend: %v allocations", allocs)
	}
}

// TestMatcherLargeSubsetIndex loads enough ISSUBSET blocks for the
// Matcher to put its prefix filter in front of the trie (prefixFilterMin),
// adds more one at a time (filter updated in place and rebuilt), removes
// some, and checks every answer against a brute-force containment test.
func TestMatcherLargeSubsetIndex(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	m := NewMatcher(MatcherOptions{})
	blocks := map[string]netip.Prefix{}
	var inds []Indicator
	addr := func() netip.Addr {
		if r.IntN(8) == 0 {
			var b [16]byte
			b[0], b[1], b[4], b[15] = 0x20, 0x01, byte(r.IntN(64)), byte(r.IntN(256))
			return netip.AddrFrom16(b)
		}
		return netip.AddrFrom4([4]byte{10, byte(r.IntN(64)), byte(r.IntN(256)), byte(r.IntN(256))})
	}
	block := func(i int) Indicator {
		a := addr()
		bits := 20 + r.IntN(13)
		if r.IntN(50) == 0 {
			bits = 8 + r.IntN(8) // below the filter's block length
		}
		if a.Is6() {
			bits = 24 + r.IntN(105)
		}
		p := netip.PrefixFrom(a, bits).Masked()
		id := fmt.Sprint("b", i)
		blocks[id] = p
		return Indicator{ID: id, Pattern: fmt.Sprintf("[%s:value ISSUBSET '%s']", map[bool]string{true: "ipv4-addr", false: "ipv6-addr"}[a.Is4()], p)}
	}
	for i := range prefixFilterMin + 1000 {
		inds = append(inds, block(i))
	}
	if err := m.AddAll(inds); err != nil {
		t.Fatal(err)
	}
	for i := range 3000 { // one at a time: in place, then a rebuild
		ind := block(len(inds) + i)
		if err := m.Add(ind.ID, ind.Pattern); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < len(inds); i += 7 {
		m.Remove(inds[i].ID)
		delete(blocks, inds[i].ID)
	}
	hits := 0
	for range 3000 {
		a := addr()
		typ := "ipv4-addr"
		if a.Is6() {
			typ = "ipv6-addr"
		}
		var want []string
		for id, p := range blocks {
			if p.Addr().Is4() == a.Is4() && p.Contains(a) {
				want = append(want, id)
			}
		}
		slices.Sort(want)
		got := ids(m.Match(sco(typ, a.String())))
		if !slices.Equal(got, want) {
			t.Fatalf("%v: Matcher %v, want %v", a, got, want)
		}
		hits += len(want)
	}
	if hits == 0 {
		t.Fatal("no address in any block: the test checks nothing")
	}
	var filtered bool
	for _, pi := range m.pathByKey {
		filtered = filtered || pi.subFilter.Load() != nil
	}
	if !filtered {
		t.Fatal("no prefix filter was built: the test misses the path it is for")
	}
}

// TestMatcherSweepsOnItsOwn checks that state whose window has closed is
// dropped without a call to Sweep once sweepEvery observations have
// passed through MatchBatch (whose chunks advance the stream clock), and
// that observations too far in time to have Unix nanoseconds count
// without moving the clock.
func TestMatcherSweepsOnItsOwn(t *testing.T) {
	m := NewMatcher(MatcherOptions{})
	if err := m.Add("fb", `([ipv4-addr:value = '10.0.0.1'] FOLLOWEDBY [domain-name:value = 'x.example']) WITHIN 60 SECONDS`); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ts time.Time, typ, v string) *Observation {
		o, err := NewObservation(ts, ts, 1, &SCO{T: typ, Value: v})
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	active := func() int {
		m.amu.Lock()
		defer m.amu.Unlock()
		return len(m.active)
	}
	m.MatchBatch(nil, []*Observation{at(base, "ipv4-addr", "10.0.0.1")})
	if active() != 1 {
		t.Fatalf("%d patterns hold state after the first event, want 1", active())
	}
	far := at(time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), "domain-name", "y.example")
	late := at(base.Add(time.Hour), "domain-name", "y.example")
	batch := make([]*Observation, 1000)
	for i := range batch {
		batch[i] = late
	}
	batch[500] = far
	for n := 1; n+len(batch) < sweepEvery; n += len(batch) {
		m.MatchBatch(nil, batch)
	}
	if active() != 1 {
		t.Fatal("state swept before sweepEvery observations")
	}
	if got := time.Unix(0, m.clock.Load()); !got.Equal(base.Add(time.Hour)) {
		t.Fatalf("stream clock at %v, want %v", got, base.Add(time.Hour))
	}
	m.MatchBatch(nil, batch)
	if active() != 0 {
		t.Fatalf("%d patterns hold state whose window closed an hour ago, want 0", active())
	}
}

// TestMatchBatchDeepIndexAgreesWithOracle loads enough indicators of the
// feed mix for the equality index's filter to be deep and the ISSUBSET
// trie to have its prefix filter, so that the lookups take the
// prefetching passes a large index takes, and checks the matches of
// every observation of a stream against the oracle's count.
func TestMatchBatchDeepIndexAgreesWithOracle(t *testing.T) {
	const n = 100_000
	o := newOracle()
	m := NewMatcher(MatcherOptions{})
	if err := m.AddAll(feedMix(n, o)); err != nil {
		t.Fatal(err)
	}
	if !m.eq.filter.Load().deep {
		t.Fatal("the equality index's filter is not deep: the test misses the path it is for")
	}
	filtered := false
	for _, pi := range m.pathByKey {
		filtered = filtered || pi.subFilter.Load() != nil
	}
	if !filtered {
		t.Fatal("no prefix filter was built: the test misses the path it is for")
	}
	stream := observationStream(n, 4096)
	var dst []BatchMatch
	total := 0
	for lo := 0; lo < len(stream); lo += 256 {
		dst = m.MatchBatch(dst[:0], stream[lo:lo+256])
		got := make([]int, 256)
		for _, bm := range dst {
			got[bm.Obs]++
		}
		for i, g := range got {
			if want := o.matches(stream[lo+i]); g != want {
				t.Fatalf("observation %d: %d matches, want %d", lo+i, g, want)
			}
			total += g
		}
	}
	if total == 0 {
		t.Fatal("nothing matched: the test checks nothing")
	}
}

// TestMatcherConcurrentBlocks reads addresses through the block index
// (enough ISSUBSET blocks for the prefix filter) while a writer adds and
// removes other blocks one at a time, through filter rebuilds and the
// block index's growth: the stable blocks must match throughout, and an
// address in no block never.
func TestMatcherConcurrentBlocks(t *testing.T) {
	m := NewMatcher(MatcherOptions{})
	var base []Indicator
	for i := range prefixFilterMin + 500 {
		base = append(base, Indicator{fmt.Sprint("base", i), fmt.Sprintf("[ipv4-addr:value ISSUBSET '10.%d.%d.0/24']", i/256, i%256)})
	}
	if err := m.AddAll(base); err != nil {
		t.Fatal(err)
	}
	if m.pathByKey["ipv4-addr:value"].subFilter.Load() == nil {
		t.Fatal("no prefix filter was built: the test misses the path it is for")
	}
	stop := make(chan struct{})
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			batch := []*Observation{sco("ipv4-addr", "10.0.5.9"), sco("ipv4-addr", "192.0.2.1"), sco("ipv4-addr", "10.33.200.1")}
			want := [][]string{{"base5"}, nil, {fmt.Sprint("base", 33*256+200)}}
			var dst []BatchMatch
			for i := 0; ; i++ {
				if i >= 200 {
					select {
					case <-stop:
						errs <- nil
						return
					default:
					}
				}
				dst = m.MatchBatch(dst[:0], batch)
				got := make([][]string, len(batch))
				for _, bm := range dst {
					got[bm.Obs] = append(got[bm.Obs], bm.ID)
				}
				for j := range batch {
					if !slices.Equal(got[j], want[j]) {
						errs <- fmt.Errorf("observation %d matched %v during updates, want %v", j, got[j], want[j])
						return
					}
				}
			}
		}()
	}
	for i := range 3000 {
		id := fmt.Sprint("dyn", i)
		if err := m.Add(id, fmt.Sprintf("[ipv4-addr:value ISSUBSET '172.16.%d.%d/28']", i/16%256, i%16*16)); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			m.Remove(fmt.Sprint("dyn", i/2))
		}
	}
	close(stop)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := ids(m.Match(sco("ipv4-addr", "172.16.187.65"))); !slices.Equal(got, []string{"dyn2996"}) {
		t.Fatalf("a block added last matched as %v", got)
	}
}

// mayContain reports whether some block added to f may contain a: the
// early-stopping form of lengths, which the matcher no longer calls but
// whose answer must agree with the full one.
func (f *prefixFilter) mayContain(a netip.Addr) bool {
	return f.lengths(a, false) != [3]uint64{}
}
