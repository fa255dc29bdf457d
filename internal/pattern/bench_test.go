package pattern

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

// indicatorMix generates n simple indicators deterministically: IPv4 and
// IPv6 addresses and CIDR blocks, domains, URLs, MD5 and SHA-256 file
// hashes and e-mail addresses, in proportions typical of threat feeds.
func indicatorMix(n int) []Indicator {
	r := rand.New(rand.NewPCG(42, uint64(n)))
	out := make([]Indicator, n)
	for i := range out {
		var p string
		switch k := i % 20; {
		case k < 6:
			p = fmt.Sprintf("[ipv4-addr:value = '%s']", ipv4(i))
		case k < 8:
			p = fmt.Sprintf("[ipv4-addr:value ISSUBSET '%s/%d']", ipv4(i), 20+r.IntN(11))
		case k < 10:
			p = fmt.Sprintf("[ipv6-addr:value = '%s']", ipv6(i))
		case k < 11:
			p = fmt.Sprintf("[ipv6-addr:value ISSUBSET '%s/%d']", ipv6(i), 48+r.IntN(17))
		case k < 14:
			p = fmt.Sprintf("[domain-name:value = '%s']", domain(i))
		case k < 16:
			p = fmt.Sprintf("[url:value = 'http://%s/%x/index.php']", domain(i), i)
		case k < 18:
			p = fmt.Sprintf("[file:hashes.MD5 = '%032x']", hash(i, 16))
		case k < 19:
			p = fmt.Sprintf("[file:hashes.'SHA-256' = '%064x']", hash(i, 32))
		default:
			p = fmt.Sprintf("[email-addr:value = 'user%d@%s']", i, domain(i))
		}
		out[i] = Indicator{ID: fmt.Sprintf("indicator--%08d", i), Pattern: p}
	}
	return out
}

func ipv4(i int) string {
	x := uint32(i)*2654435761 + 0x0a000000
	return fmt.Sprintf("%d.%d.%d.%d", byte(x>>24), byte(x>>16), byte(x>>8), byte(x))
}

func ipv6(i int) string {
	x := uint64(i) * 0x9E3779B97F4A7C15
	return fmt.Sprintf("2001:db8:%x:%x:%x::%x", uint16(x>>48), uint16(x>>32), uint16(x>>16), uint16(x))
}

func domain(i int) string { return fmt.Sprintf("h%x.example%d.com", uint32(i)*2246822519, i%97) }

func hash(i, n int) []byte {
	b := make([]byte, n)
	x := uint64(i)*0x9E3779B97F4A7C15 + 1
	for j := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[j] = byte(x)
	}
	return b
}

// observationStream builds detector-style observations: single SCOs
// (addresses, domains, URLs, files with hashes) and network-traffic with
// its two addresses; about one in eight hits an indicator among the first
// n.
func observationStream(n, count int) []*Observation {
	r := rand.New(rand.NewPCG(7, 7))
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]*Observation, count)
	for i := range out {
		ts := base.Add(time.Duration(i) * time.Millisecond)
		j := r.IntN(n)
		if r.IntN(8) != 0 {
			j = n + r.IntN(1<<30) // a value no indicator names
		}
		var objs []Object
		switch i % 6 {
		case 0, 1:
			objs = []Object{&SCO{T: "ipv4-addr", Value: ipv4(j)}}
		case 2:
			objs = []Object{
				&SCO{Key: "0", T: "network-traffic", Props: map[string]any{"src_ref": "1", "dst_ref": "2"}},
				&SCO{Key: "1", T: "ipv4-addr", Value: ipv4(j + 1)},
				&SCO{Key: "2", T: "ipv4-addr", Value: ipv4(j)},
			}
		case 3:
			objs = []Object{&SCO{T: "domain-name", Value: domain(j)}}
		case 4:
			objs = []Object{&SCO{T: "url", Value: fmt.Sprintf("http://%s/%x/index.php", domain(j), j)}}
		default:
			objs = []Object{&SCO{T: "file", Hashes: map[string]string{"MD5": fmt.Sprintf("%032x", hash(j, 16)), "SHA-256": fmt.Sprintf("%064x", hash(j, 32))}}}
		}
		o, err := NewObservation(ts, ts, 1, objs...)
		if err != nil {
			panic(err)
		}
		out[i] = o
	}
	return out
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkCompile loads n indicators into a fresh Matcher per iteration
// and reports the heap the loaded Matcher holds.
func BenchmarkCompile(b *testing.B) {
	for _, n := range []int{10_000, 1_000_000} {
		b.Run(fmt.Sprintf("indicators=%d", n), func(b *testing.B) {
			inds := indicatorMix(n)
			var m *Matcher
			var heap uint64
			for b.Loop() {
				b.StopTimer()
				m = nil
				before := heapInUse()
				b.StartTimer()
				m = NewMatcher(MatcherOptions{})
				if err := m.AddAll(inds); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				heap = heapInUse() - before
				b.StartTimer()
			}
			b.ReportMetric(float64(heap)/(1<<20), "MiB")
			b.ReportMetric(float64(heap)/float64(n), "B/indicator")
			runtime.KeepAlive(m)
		})
	}
}

// BenchmarkMatch streams observations through a Matcher holding n simple
// indicators; the obs/s metric is the throughput on one goroutine.
func BenchmarkMatch(b *testing.B) {
	for _, n := range []int{10_000, 1_000_000} {
		b.Run(fmt.Sprintf("indicators=%d", n), func(b *testing.B) {
			m := NewMatcher(MatcherOptions{})
			if err := m.AddAll(indicatorMix(n)); err != nil {
				b.Fatal(err)
			}
			stream := observationStream(n, 1<<14)
			var dst []Match
			hits := 0
			runtime.GC() // settle the collector after loading
			b.ReportAllocs()
			i := 0
			cpu0 := cpuTime()
			for b.Loop() {
				dst = m.MatchAppend(dst[:0], stream[i&(len(stream)-1)])
				hits += len(dst)
				i++
			}
			cpu := cpuTime() - cpu0
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "obs/s")
			if cpu > 0 {
				b.ReportMetric(float64(b.N)/cpu.Seconds(), "obs/cpu-s")
			}
			b.ReportMetric(float64(hits)/float64(b.N), "matches/obs")
		})
	}
}

// complexPatterns mixes multi-observation and multi-comparison patterns.
func complexPatterns(n int) []Indicator {
	out := make([]Indicator, n)
	for i := range out {
		var p string
		switch i % 5 {
		case 0:
			p = fmt.Sprintf("([ipv4-addr:value = '%s'] FOLLOWEDBY [domain-name:value = '%s']) WITHIN 300 SECONDS", ipv4(i), domain(i))
		case 1:
			p = fmt.Sprintf("[domain-name:value = '%s'] REPEATS 5 TIMES WITHIN 60 SECONDS", domain(i))
		case 2:
			p = fmt.Sprintf("[ipv4-addr:value ISSUBSET '%s/24' AND ipv4-addr:value != '%s'] AND [url:value LIKE 'http://%s/%%']", ipv4(i), ipv4(i+1), domain(i))
		case 3:
			p = fmt.Sprintf("[file:hashes.MD5 = '%032x' OR file:hashes.'SHA-256' = '%064x'] OR ([network-traffic:dst_ref.value = '%s'] FOLLOWEDBY [url:value = 'http://%s/%x/index.php']) WITHIN 120 SECONDS", hash(i, 16), hash(i, 32), ipv4(i), domain(i), i)
		default:
			p = fmt.Sprintf("[domain-name:value IN ('%s', '%s') AND domain-name:value MATCHES '^h[0-9a-f]+\\\\.example'] REPEATS 2 TIMES", domain(i), domain(i+1))
		}
		out[i] = Indicator{ID: fmt.Sprintf("complex--%d", i), Pattern: p}
	}
	return out
}

// BenchmarkMatchComplex streams observations through 10,000 complex
// patterns (AND/OR, FOLLOWEDBY WITHIN, REPEATS) with state kept per
// pattern.
func BenchmarkMatchComplex(b *testing.B) {
	const n = 10_000
	m := NewMatcher(MatcherOptions{})
	if err := m.AddAll(complexPatterns(n)); err != nil {
		b.Fatal(err)
	}
	stream := observationStream(n, 1<<14)
	var dst []Match
	hits := 0
	runtime.GC()
	b.ReportAllocs()
	i := 0
	cpu0 := cpuTime()
	base := stream[0].FirstObserved
	for b.Loop() {
		// Stateful patterns keep observations, so each one is a fresh
		// copy whose time keeps moving forward as a live stream's would
		// (this copy is the one allocation per observation).
		o := *stream[i&(len(stream)-1)]
		o.FirstObserved = base.Add(time.Duration(i) * time.Millisecond)
		o.LastObserved = o.FirstObserved
		dst = m.MatchAppend(dst[:0], &o)
		hits += len(dst)
		i++
	}
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "obs/s")
	if cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "obs/cpu-s")
	}
	b.ReportMetric(float64(hits)/float64(b.N), "matches/obs")
	b.ReportMetric(float64(m.Sweep(base.Add(time.Duration(i)*time.Millisecond))), "windowed-states")
}

// BenchmarkParse measures parsing of typical indicator patterns.
func BenchmarkParse(b *testing.B) {
	inds := complexPatterns(100)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := Parse(inds[i%len(inds)].Pattern); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
