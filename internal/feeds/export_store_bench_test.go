package feeds

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
)

// BenchmarkExportStore exports indicators stored in SQLite through the
// HTTP handler sensors use (authentication aside): the store read with
// access.Decide, the lifecycle, the warning-list flags, the rendering and
// the ETag, once per format. The store (1,000,000 indicators by default,
// MITRA_BENCH_EXPORT_N to change it) is built once per run, in
// MITRA_BENCH_EXPORT_DIR when set (and kept there for the next run), else
// in a temporary directory. s/op is the wall time, cpu-s the process's CPU
// time, peak-heap-MB the most heap in use while the export ran (sampled
// every 2 ms), out-MB the main file's size.
//
//	go test -run '^$' -bench BenchmarkExportStore -benchtime 1x -timeout 2h ./internal/feeds/
func BenchmarkExportStore(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("MITRA_BENCH_EXPORT_N"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			b.Fatalf("MITRA_BENCH_EXPORT_N=%q", s)
		}
		n = v
	}
	st, p := exportBenchStore(b, n)
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	x := &Exporter{Store: st, Flags: st, Now: func() time.Time { return now }}
	h := NewExportHandler(x, ExportHandlerOptions{Authenticate: func(*http.Request) (*access.Principal, error) { return p, nil },
		Now: func() time.Time { return now }})
	for _, f := range ExportFormats() {
		b.Run(f, func(b *testing.B) {
			runtime.GC()
			var size int
			var cpu time.Duration
			var peak uint64
			for b.Loop() {
				stop := sampleHeap(&peak)
				c0 := cpuTime(b)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, ExportPrefix+f, nil))
				cpu += cpuTime(b) - c0
				stop()
				if rec.Code != http.StatusOK || rec.Header().Get("ETag") == "" {
					b.Fatalf("%s: %d %.300s", f, rec.Code, rec.Body.String())
				}
				size = rec.Body.Len()
			}
			b.ReportMetric(float64(cpu)/1e9/float64(b.N), "cpu-s")
			b.ReportMetric(float64(peak)/1e6, "peak-heap-MB")
			b.ReportMetric(float64(size)/1e6, "out-MB")
		})
	}
}

// sampleHeap records in peak the most heap in use until stop is called.
func sampleHeap(peak *uint64) (stop func()) {
	var done atomic.Bool
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		for !done.Load() {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > *peak {
				*peak = v
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return func() { done.Store(true); <-finished }
}

// exportBenchStore is a SQLite store with n generated indicators (the mix
// of genPattern, every TLP level, two collections, confidence 80, modified
// in May 2026) and a principal of the organisation that reads them, kept
// in MITRA_BENCH_EXPORT_DIR when set.
func exportBenchStore(b *testing.B, n int) (*sqlite.Store, *access.Principal) {
	dir := os.Getenv("MITRA_BENCH_EXPORT_DIR")
	if dir == "" {
		dir = b.TempDir()
	} else {
		dir = filepath.Join(dir, fmt.Sprintf("export-%d", n))
	}
	marker := filepath.Join(dir, "complete")
	_, err := os.Stat(marker)
	built := err == nil
	st, err := sqlite.Open(b.Context(), dir, sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	org, err := st.DefaultOrganisation(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	p := &access.Principal{Organisation: org.ID, Role: access.RoleAnalyst}
	if built {
		return st, p
	}
	var colls []string
	for i := range 2 {
		c := &store.Collection{Title: fmt.Sprint("bench ", i), Grants: []store.Grant{{Kind: store.GrantOrg, Subject: org.ID, Read: true}}}
		if err := st.CreateCollection(b.Context(), c); err != nil {
			b.Fatal(err)
		}
		colls = append(colls, c.ID)
	}
	start := time.Now()
	r := rand.New(rand.NewPCG(uint64(n), 7))
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	levels := []access.TLP{access.TLPClear, access.TLPGreen, access.TLPAmber, access.TLPAmberStrict, access.TLPRed}
	batch := [2][]store.Object{}
	for i := range n {
		pat := genPattern(r, i)
		id := fmt.Sprintf("indicator--%08x-0000-4000-8000-%012x", i, i)
		mod := t0.Add(time.Duration(i) * time.Second)
		ts := mod.Format(time.RFC3339Nano)
		raw, _ := json.Marshal(map[string]any{"type": "indicator", "spec_version": "2.1", "id": id,
			"created": ts, "modified": ts, "valid_from": ts, "pattern": pat, "pattern_type": "stix",
			"name": fmt.Sprintf("indicator %d; \"quoted\"\tname", i), "confidence": 80})
		c := i % 2
		batch[c] = append(batch[c], store.Object{ID: id, Type: "indicator", SpecVersion: "2.1", Raw: raw, Submitter: org.ID,
			TLP: int(levels[i%len(levels)]), Version: mod, VersionRaw: ts})
		if len(batch[c]) == 5000 || i >= n-2 {
			if _, err := st.AddObjects(b.Context(), colls[c], batch[c], nil); err != nil {
				b.Fatal(err)
			}
			batch[c] = batch[c][:0]
		}
	}
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		b.Fatal(err)
	}
	b.Logf("stored %d indicators in %s", n, time.Since(start).Round(time.Second))
	return st, p
}
