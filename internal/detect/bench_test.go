package detect_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/detect"
	"github.com/mitra-cert/mitra/internal/pattern"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
)

// writeDNSLog writes a Zeek dns.log of n lines (all columns of Zeek's
// default dns log); every 1000th query is one of the indicators' domains.
func writeDNSLog(tb testing.TB, path string, n, indicators int) {
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
	for i := range n {
		b = b[:0]
		// 10,000 queries per second of event time
		b = strconv.AppendInt(b, int64(start+i/10000), 10)
		b = append(b, '.')
		b = fmt.Appendf(b, "%06d", (i%10000)*100)
		b = fmt.Appendf(b, "\tC%016x\t192.168.%d.%d\t%d\t192.168.1.1\t53\tudp\t%d\t0.012345\t", uint64(i)*2654435761, (i>>8)&255, i&255, 1024+i%60000, i&65535)
		if i%1000 == 0 {
			b = fmt.Appendf(b, "ioc%d.example.com", (i/1000)%indicators)
		} else {
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
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkDetectZeekDNS runs a generated Zeek dns log (MITRA_BENCH_LINES,
// 10,000,000 by default) against MITRA_BENCH_INDICATORS (100,000)
// indicators, from the file to sightings stored in SQLite. One iteration
// is the whole file; lines/s is the figure to read.
func BenchmarkDetectZeekDNS(b *testing.B) {
	lines := envInt("MITRA_BENCH_LINES", 10_000_000)
	nind := envInt("MITRA_BENCH_INDICATORS", 100_000)
	dir := b.TempDir()
	path := filepath.Join(dir, "dns.log")
	writeDNSLog(b, path, lines, nind)
	inds := make([]pattern.Indicator, nind)
	for i := range inds {
		inds[i] = pattern.Indicator{ID: fmt.Sprintf("indicator--%08x-0000-4000-8000-%012x", i, i), Pattern: fmt.Sprintf("[domain-name:value = 'ioc%d.example.com']", i)}
	}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		st, err := sqlite.Open(ctx, b.TempDir(), sqlite.Options{})
		if err != nil {
			b.Fatal(err)
		}
		coll := &store.Collection{Title: "Sightings"}
		if err := st.CreateCollection(ctx, coll); err != nil {
			b.Fatal(err)
		}
		d, err := detect.New(detect.Config{
			Indicators: &detect.StaticIndicators{List: inds},
			Sink:       &detect.StoreSink{Store: st, Collection: coll.ID, Submitter: "identity--0b7e5b1c-6d3e-4a8f-9c2d-1e2f3a4b5c6d"},
			Identity:   "identity--0b7e5b1c-6d3e-4a8f-9c2d-1e2f3a4b5c6d",
		})
		if err != nil {
			b.Fatal(err)
		}
		// Loading the indicators is setup; the timed part starts at the file.
		if err := d.Load(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		if err := d.Run(ctx, &detect.FileSource{Path: path}); err != nil {
			b.Fatal(err)
		}
		el := time.Since(t0)
		s := d.Stats()
		if s.Events != int64(lines) || s.Matches != int64((lines+999)/1000) {
			b.Fatalf("events %d matches %d, want %d and %d", s.Events, s.Matches, lines, (lines+999)/1000)
		}
		b.ReportMetric(float64(lines)/el.Seconds(), "lines/s")
		b.ReportMetric(float64(s.Sightings), "sightings")
		b.StopTimer()
		st.Close()
		b.StartTimer()
	}
}
