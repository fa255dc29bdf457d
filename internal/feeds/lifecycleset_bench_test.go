package feeds

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
)

// cpuTime is the process's user and system CPU time so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkActiveSet100k keeps the detector's lifecycle set over 100,000
// indicators in SQLite: load is the first Refresh (every indicator,
// sighting and opinion read once); change is a Refresh after one new
// sighting (the store write outside the timer), the clock a second on;
// idle a Refresh with nothing new, the clock a minute on. cpu-ms/op is
// the process's CPU time per operation.
//
//	go test -run '^$' -bench BenchmarkActiveSet100k -benchtime 200x ./internal/feeds/
func BenchmarkActiveSet100k(b *testing.B) {
	st, p := benchStore(b, 100_000)
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	x := &Exporter{Store: st, Flags: st, Now: func() time.Time { return now }}
	cols, err := st.ListCollections(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	coll := cols[len(cols)-1].ID
	b.Run("load", func(b *testing.B) {
		b.ReportAllocs()
		cpu := cpuTime(b)
		n := 0
		for b.Loop() {
			set := &ActiveSet{Exporter: x, Request: Request{Principal: p}}
			if err := set.Refresh(b.Context()); err != nil {
				b.Fatal(err)
			}
			n++
		}
		b.ReportMetric(float64(cpuTime(b)-cpu)/1e6/float64(n), "cpu-ms/op")
	})
	set := &ActiveSet{Exporter: x, Request: Request{Principal: p}}
	if err := set.Refresh(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Run("change", func(b *testing.B) {
		b.ReportAllocs()
		var cpu time.Duration
		i := 0
		for b.Loop() {
			b.StopTimer()
			i++
			ts := stix.FormatMicro(now)
			id := fmt.Sprintf("sighting--%08x-0000-4000-8000-%012x", i, i)
			raw := fmt.Sprintf(`{"type":"sighting","spec_version":"2.1","id":%q,"created":%q,"modified":%q,"sighting_of_ref":"indicator--%08x-0000-4000-8000-%012x","count":1}`,
				id, ts, ts, i*7%100_000, i*7%100_000)
			if _, err := st.AddObjects(b.Context(), coll, []store.Object{{ID: id, Type: "sighting", SpecVersion: "2.1", Raw: []byte(raw),
				Submitter: p.Organisation, Version: now, VersionRaw: ts}}, nil); err != nil {
				b.Fatal(err)
			}
			now = now.Add(time.Second)
			c0 := cpuTime(b)
			b.StartTimer()
			if err := set.Refresh(b.Context()); err != nil {
				b.Fatal(err)
			}
			cpu += cpuTime(b) - c0
		}
		b.ReportMetric(float64(cpu)/1e6/float64(i), "cpu-ms/op")
	})
	b.Run("idle", func(b *testing.B) {
		b.ReportAllocs()
		cpu := cpuTime(b)
		n := 0
		for b.Loop() {
			now = now.Add(time.Minute)
			if err := set.Refresh(b.Context()); err != nil {
				b.Fatal(err)
			}
			n++
		}
		b.ReportMetric(float64(cpuTime(b)-cpu)/1e6/float64(n), "cpu-ms/op")
	})
}
