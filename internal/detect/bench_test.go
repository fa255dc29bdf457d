package detect_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/detect"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
)

// benchLog describes a generated Zeek dns.log.
type benchLog struct {
	lines      int
	indicators int
	noisy      bool // 25 % of lines match (a public resolver, ten busy domains)
}

// Indicators of the benchmark: ioc<i>.example.com for i < indicators,
// plus the noisy ones: the resolver 9.9.9.9 and noisy<0..9>.example.com.
const benchResolver = "9.9.9.9"

// writeDNSLog writes a Zeek dns.log of l.lines lines (all columns of
// Zeek's default dns log) and returns how many matches it holds. Every
// 1000th query is one of the indicators' domains. Timestamps are out of
// order as Zeek writes them (a record is logged when its request ends):
// one line in ten is up to 30 seconds late. With l.noisy, a fifth of the
// queries go to the resolver indicator and one in twenty is a noisy
// domain: 25 % of lines match.
func writeDNSLog(tb testing.TB, path string, l benchLog) (matches int64) {
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString("#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tdns\n#open\t2024-03-01-10-00-00\n")
	w.WriteString("#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\ttrans_id\trtt\tquery\tqclass\tqclass_name\tqtype\tqtype_name\trcode\trcode_name\tAA\tTC\tRD\tRA\tZ\tanswers\tTTLs\trejected\n")
	w.WriteString("#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tcount\tinterval\tstring\tcount\tstring\tcount\tstring\tcount\tstring\tbool\tbool\tbool\tbool\tcount\tvector[string]\tvector[interval]\tbool\n")
	const start = 1709287200
	var b []byte
	for i := range l.lines {
		b = b[:0]
		// 10,000 queries per second of event time, one in ten late.
		us := 30_000_000 + int64(i)*100
		if h := uint32(i) * 2654435761; h%10 == 0 {
			us -= int64(h>>8) % 30_000_000
		}
		b = strconv.AppendInt(b, start+us/1_000_000, 10)
		b = fmt.Appendf(b, ".%06d", us%1_000_000)
		resolver := "192.168.1.1"
		if l.noisy && i%5 == 1 {
			resolver = benchResolver
			matches++
		}
		b = fmt.Appendf(b, "\tC%016x\t192.168.%d.%d\t%d\t%s\t53\tudp\t%d\t0.012345\t", uint64(i)*2654435761, (i>>8)&255, i&255, 1024+i%60000, resolver, i&65535)
		switch {
		case i%1000 == 0:
			b = fmt.Appendf(b, "ioc%d.example.com", (i/1000*7919)%l.indicators)
			matches++
		case l.noisy && i%20 == 3:
			b = fmt.Appendf(b, "noisy%d.example.com", i%10)
			matches++
		default:
			b = fmt.Appendf(b, "host%d.benign-%d.example.net", i, i%977)
		}
		b = fmt.Appendf(b, "\t1\tC_INTERNET\t1\tA\t0\tNOERROR\tF\tF\tT\tT\t0\t198.51.%d.%d\t300.000000\tF\n", (i>>8)&255, i&255)
		w.Write(b)
	}
	w.WriteString("#close\t2024-03-01-11-00-00\n")
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	f.Close()
	return matches
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// benchStore is a SQLite store holding the indicators in a collection the
// detector's organisation reads (through access.Decide, as `mitra detect`
// does): n ioc indicators plus the eleven noisy ones, TLP:GREEN.
func benchStore(b *testing.B, n int) (store.Store, *store.Organisation) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, b.TempDir(), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	org := &store.Organisation{Name: "Sensor Org"}
	if err := st.CreateOrganisation(ctx, org); err != nil {
		b.Fatal(err)
	}
	intel := &store.Collection{Title: "Indicators"}
	if err := st.CreateCollection(ctx, intel); err != nil {
		b.Fatal(err)
	}
	if err := st.SetPartyGrant(ctx, intel.ID, store.GrantOrg, org.ID, true, false); err != nil {
		b.Fatal(err)
	}
	ver := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(id, pat string) store.Object {
		raw := fmt.Appendf(nil, `{"type":"indicator","spec_version":"2.1","id":%q,"created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","pattern":%q,"pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z","object_marking_refs":["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]}`, id, pat)
		return store.Object{ID: id, Type: "indicator", SpecVersion: "2.1", Raw: raw, Submitter: org.ID,
			Version: ver, VersionRaw: "2024-01-01T00:00:00.000Z", TLP: int(access.TLPGreen)}
	}
	var objs []store.Object
	for i := range n {
		objs = append(objs, mk(fmt.Sprintf("indicator--%08x-0000-4000-8000-%012x", i, i), fmt.Sprintf("[domain-name:value = 'ioc%d.example.com']", i)))
	}
	objs = append(objs, mk("indicator--ffffffff-0000-4000-8000-000000000000", "[ipv4-addr:value = '"+benchResolver+"']"))
	for i := range 10 {
		objs = append(objs, mk(fmt.Sprintf("indicator--fffffffe-0000-4000-8000-%012x", i), fmt.Sprintf("[domain-name:value = 'noisy%d.example.com']", i)))
	}
	for lo := 0; lo < len(objs); lo += 5000 {
		if _, err := st.AddObjects(ctx, intel.ID, objs[lo:min(lo+5000, len(objs))], nil); err != nil {
			b.Fatal(err)
		}
	}
	return st, org
}

// peakMemory samples the Go runtime's memory until stop is called and
// returns the peak of heap in use and of memory held from the OS.
func peakMemory() (stop func() (heapMB, sysMB float64)) {
	var heap, sys atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	sample := func() {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		if m.HeapInuse > heap.Load() {
			heap.Store(m.HeapInuse)
		}
		if s := m.Sys - m.HeapReleased; s > sys.Load() {
			sys.Store(s)
		}
	}
	wg.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sample()
			}
		}
	})
	return func() (float64, float64) {
		close(done)
		wg.Wait()
		sample()
		return float64(heap.Load()) / (1 << 20), float64(sys.Load()) / (1 << 20)
	}
}

// cpuTime is the CPU time the process used so far (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDetectZeekDNS runs a generated Zeek dns log (MITRA_BENCH_LINES,
// 2,000,000 by default, timestamps out of order) against
// MITRA_BENCH_INDICATORS (100,000) indicators loaded from a SQLite store
// through the access decision, from the file to sightings stored in the
// store, as `mitra detect --collection` runs: with a low match rate
// (0.1 %) and with 25 % of lines matching noisy indicators. One iteration
// is the whole file; lines/s and the peak memory are the figures to read.
func BenchmarkDetectZeekDNS(b *testing.B) {
	lines := envInt("MITRA_BENCH_LINES", 2_000_000)
	nind := envInt("MITRA_BENCH_INDICATORS", 100_000)
	st, org := benchStore(b, nind)
	p := &access.Principal{Organisation: org.ID, Role: access.RoleAnalyst}
	for _, rate := range []struct {
		name  string
		noisy bool
	}{{"low", false}, {"25pct", true}} {
		b.Run("match="+rate.name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "dns.log")
			want := writeDNSLog(b, path, benchLog{lines: lines, indicators: nind, noisy: rate.noisy})
			ctx := context.Background()
			for b.Loop() {
				b.StopTimer()
				coll := &store.Collection{Title: "Sightings"}
				if err := st.CreateCollection(ctx, coll); err != nil {
					b.Fatal(err)
				}
				d, err := detect.New(detect.Config{
					Indicators: &detect.StoreIndicators{Store: st, Principal: p},
					Sink:       &detect.StoreSink{Store: st, Collection: coll.ID, Submitter: org.ID},
					Identity:   org.ID,
				})
				if err != nil {
					b.Fatal(err)
				}
				// Loading the indicators is setup; the timed part starts at the file.
				if err := d.Load(ctx); err != nil {
					b.Fatal(err)
				}
				if n := d.Stats().Indicators; n != nind+11 {
					b.Fatalf("%d indicators loaded, want %d", n, nind+11)
				}
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				loaded := float64(ms.HeapInuse) / (1 << 20)
				stop := peakMemory()
				b.StartTimer()
				t0, cpu0 := time.Now(), cpuTime()
				if err := d.Run(ctx, &detect.FileSource{Path: path}); err != nil {
					b.Fatal(err)
				}
				el, cpu := time.Since(t0), cpuTime()-cpu0
				heap, sys := stop()
				s := d.Stats()
				if s.Events != int64(lines) || s.Matches != want {
					b.Fatalf("events %d matches %d, want %d and %d", s.Events, s.Matches, lines, want)
				}
				b.ReportMetric(float64(lines)/el.Seconds(), "lines/s")
				// On a shared machine the wall clock says little; CPU time
				// used by the process (all threads) says what it costs.
				b.ReportMetric(float64(lines)/cpu.Seconds(), "lines/cpu-s")
				b.ReportMetric(float64(s.Matches)/float64(lines)*100, "match%")
				b.ReportMetric(float64(s.Sightings), "sightings")
				b.ReportMetric(loaded, "loaded-heap-MB") // the indicators, before the file
				b.ReportMetric(heap, "peak-heap-MB")
				b.ReportMetric(sys, "peak-sys-MB")
			}
		})
	}
}
