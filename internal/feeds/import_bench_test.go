package feeds_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/mitra-cert/mitra/internal/feeds"
)

// bundleReader streams a STIX 2.1 bundle of about size bytes of distinct
// indicators, generated as it is read (never held whole in memory).
func bundleReader(size int64) (io.Reader, *int) {
	pr, pw := io.Pipe()
	n := new(int)
	go func() {
		bw := bufio.NewWriterSize(pw, 1<<16)
		var written int64
		w := func(s string) {
			k, _ := bw.WriteString(s)
			written += int64(k)
		}
		w(`{"type":"bundle","id":"bundle--00000000-0000-4000-8000-000000000000","objects":[`)
		for i := 0; written < size; i++ {
			if i > 0 {
				w(",")
			}
			w(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--%08x-0000-4000-8000-%012x","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"Benchmark indicator %d","description":"A generated indicator for the import benchmark: the text pads each object to a realistic size of a few hundred bytes, as feeds carry descriptions.","indicator_types":["malicious-activity"],"pattern":"[ipv4-addr:value = '%d.%d.%d.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z","labels":["benchmark","generated"]}`,
				i, i, i, 11+i>>16&0x3f, i>>8&0xff, i&0xff, 7))
			*n = i + 1
		}
		w("]}")
		pw.CloseWithError(bw.Flush())
	}()
	return pr, n
}

type peak struct{ heap uint64 }

func (p *peak) sample() {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	p.heap = max(p.heap, m.HeapInuse)
}

// BenchmarkImportSTIXBundle100MB imports a 100 MB bundle, streamed: the
// heap stays bounded by a batch, not by the bundle (MITRA_BENCH_IMPORT_MB
// sets another size, to compare).
//
//	go test -run '^$' -bench ImportSTIXBundle100MB -benchtime 1x ./internal/feeds/
func BenchmarkImportSTIXBundle100MB(b *testing.B) {
	size := int64(100)
	if v, err := strconv.ParseInt(os.Getenv("MITRA_BENCH_IMPORT_MB"), 10, 64); err == nil && v > 0 {
		size = v
	}
	for b.Loop() {
		b.StopTimer()
		w := newWorld(b)
		org := w.org("cert")
		p := w.member("alice", org)
		col := w.collection("bench", org)
		r, n := bundleReader(size << 20)
		cr := &countingReader{r: r}
		var pk peak
		runtime.GC()
		b.StartTimer()
		rep, err := w.imp.Import(b.Context(), p, col, feeds.STIXSource(cr), feeds.Options{}, func(feeds.Report) { pk.sample() })
		if err != nil || rep.Added != *n {
			b.Fatalf("import: %+v, %v (want %d added)", rep, err, *n)
		}
		b.ReportMetric(float64(cr.n)/(1<<20), "MB")
		b.ReportMetric(float64(rep.Added), "objects")
		b.ReportMetric(float64(pk.heap)/(1<<20), "peak-heap-MB")
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n += int64(k)
	return k, err
}

// writeFeed writes a MISP feed of events, each with 8 attributes and a
// file object.
func writeFeed(b *testing.B, dir string, events int) {
	manifest := map[string]any{}
	for e := range events {
		id := fmt.Sprintf("%08x-1111-4111-8111-111111111111", e)
		var attrs []map[string]any
		for a := range 8 {
			typ, val := "ip-dst", fmt.Sprintf("45.%d.%d.%d", e>>8&0xff, e&0xff, a+1)
			switch a % 4 {
			case 1:
				typ, val = "domain", fmt.Sprintf("bad-%d-%d.example-bench.org", e, a)
			case 2:
				typ, val = "url", fmt.Sprintf("https://bad-%d-%d.example-bench.org/x", e, a)
			case 3:
				typ, val = "sha256", fmt.Sprintf("%064x", e*8+a)
			}
			attrs = append(attrs, map[string]any{"uuid": fmt.Sprintf("%08x-2222-4222-8222-%012x", e, a), "type": typ, "category": "Network activity",
				"to_ids": a%2 == 0, "value": val, "timestamp": "1790000000", "distribution": "5"})
		}
		ev := map[string]any{"uuid": id, "info": fmt.Sprintf("Benchmark event %d", e), "date": "2026-09-21", "timestamp": "1790000000",
			"distribution": "3", "Orgc": map[string]any{"uuid": "55f6ea5e-2c60-40e5-964f-47a8950d210f", "name": "Bench"},
			"Tag":       []map[string]any{{"name": "tlp:green"}},
			"Attribute": attrs,
			"Object": []map[string]any{{"uuid": fmt.Sprintf("%08x-3333-4333-8333-333333333333", e), "name": "file", "meta-category": "file", "timestamp": "1790000000", "distribution": "5",
				"Attribute": []map[string]any{{"uuid": fmt.Sprintf("%08x-4444-4444-8444-444444444444", e), "type": "md5", "object_relation": "md5", "value": fmt.Sprintf("%032x", e), "to_ids": true}}}},
		}
		data, _ := json.Marshal(map[string]any{"Event": ev})
		if err := os.WriteFile(filepath.Join(dir, id+".json"), data, 0o644); err != nil {
			b.Fatal(err)
		}
		manifest[id] = map[string]any{"info": ev["info"], "timestamp": "1790000000"}
	}
	data, _ := json.Marshal(manifest)
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), data, 0o644); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkImportMISPFeed1000Events imports a MISP feed directory of
// 1,000 events (8 attributes and a file object each; 14 STIX objects per
// event), then imports it again (everything unchanged).
//
//	go test -run '^$' -bench ImportMISPFeed1000Events -benchtime 1x ./internal/feeds/
func BenchmarkImportMISPFeed1000Events(b *testing.B) {
	dir := b.TempDir()
	writeFeed(b, dir, 1000)
	for b.Loop() {
		b.StopTimer()
		w := newWorld(b)
		org := w.org("cert")
		p := w.member("alice", org)
		col := w.collection("bench", org)
		var pk peak
		runtime.GC()
		b.StartTimer()
		src, err := w.imp.Open(b.Context(), p, feeds.Options{Format: "misp-feed"}, nil, dir)
		if err != nil {
			b.Fatal(err)
		}
		rep, err := w.imp.Import(b.Context(), p, col, src, feeds.Options{}, func(feeds.Report) { pk.sample() })
		if err != nil || rep.Rejected != 0 || rep.Added == 0 {
			b.Fatalf("import: %+v, %v", rep, err)
		}
		b.ReportMetric(float64(rep.Added), "objects")
		b.ReportMetric(float64(pk.heap)/(1<<20), "peak-heap-MB")
	}
}
