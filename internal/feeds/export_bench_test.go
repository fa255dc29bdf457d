package feeds

import (
	"runtime"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
)

// BenchmarkExport1M renders 1,000,000 active indicators (the mix of
// genPattern) to each format. The selection is built once, outside the
// timer; out-MB is the size of the files written, heap-MB the live heap
// after rendering (selection included).
//
//	go test -run '^$' -bench BenchmarkExport1M -benchmem -benchtime 1x ./internal/feeds/
func BenchmarkExport1M(b *testing.B) {
	sel := genSelection(b, 1_000_000)
	for _, f := range ExportFormats() {
		b.Run(f, func(b *testing.B) {
			var size int
			for b.Loop() {
				ex, err := Render(f, sel, RenderOptions{})
				if err != nil {
					b.Fatal(err)
				}
				size = 0
				for _, file := range ex.Files {
					size += len(file.Data)
				}
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(size)/1e6, "out-MB")
			b.ReportMetric(float64(ms.HeapAlloc)/1e6, "heap-MB")
		})
	}
}

// BenchmarkSelect100k reads 100,000 indicators of a SQLite store through
// access.Decide and the lifecycle (the part of an export before
// rendering).
//
//	go test -run '^$' -bench BenchmarkSelect100k -benchmem -benchtime 1x ./internal/feeds/
func BenchmarkSelect100k(b *testing.B) {
	st, p := benchStore(b, 100_000)
	x := &Exporter{Store: st, Now: func() time.Time { return time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) }}
	var n int
	for b.Loop() {
		got, err := x.Select(b.Context(), Request{Principal: p})
		if err != nil {
			b.Fatal(err)
		}
		n = len(got.Indicators)
	}
	if n == 0 {
		b.Fatal("nothing selected")
	}
	b.ReportMetric(float64(n), "indicators")
}

// benchStore is a SQLite store with n generated indicators in one
// collection, and a principal of the organisation that reads it.
func benchStore(b *testing.B, n int) (*sqlite.Store, *access.Principal) {
	st, err := sqlite.Open(b.Context(), b.TempDir(), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	org, err := st.DefaultOrganisation(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	c := &store.Collection{Title: "bench", Grants: []store.Grant{{Kind: store.GrantOrg, Subject: org.ID, Read: true}}}
	if err := st.CreateCollection(b.Context(), c); err != nil {
		b.Fatal(err)
	}
	sel := genSelection(b, n)
	batch := make([]store.Object, 0, 5000)
	for i, ind := range sel.Indicators {
		batch = append(batch, store.Object{ID: ind.ID, Type: "indicator", SpecVersion: "2.1", Raw: ind.Raw, Submitter: org.ID,
			TLP: int(ind.TLP), Version: ind.Modified, VersionRaw: ind.Modified.Format(time.RFC3339Nano)})
		if len(batch) == cap(batch) || i == len(sel.Indicators)-1 {
			if _, err := st.AddObjects(b.Context(), c.ID, batch, nil); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return st, &access.Principal{Organisation: org.ID, Role: access.RoleAnalyst}
}
