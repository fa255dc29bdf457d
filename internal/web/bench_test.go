package web_test

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
)

// BenchmarkDashboard measures the dashboard of a user who reads a
// collection of MITRA_BENCH_OBJECTS objects (default 20,000), half of
// them TLP:RED of another organisation. The dashboard reads the counts the
// store keeps per group of objects (migration 14) and decides access once
// per group, so its time does not grow with the store; BenchmarkConsolePages
// measures every page on a store of a million objects.
//
//	go test -run '^$' -bench Dashboard ./internal/web/
func BenchmarkDashboard(b *testing.B) {
	n := 20000
	if v, err := strconv.Atoi(os.Getenv("MITRA_BENCH_OBJECTS")); err == nil && v > 0 {
		n = v
	}
	w := newWorld(b, false)
	ctx := b.Context()
	t0 := time.Now().UTC()
	var batch []store.Object
	flush := func() {
		if _, err := w.st.AddObjects(ctx, w.shared, batch, nil); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	for i := range n {
		id := fmt.Sprintf("indicator--%08x-0000-4000-8000-%012x", i, i)
		ts := t0.Add(time.Duration(i) * time.Millisecond)
		raw := fmt.Appendf(nil, `{"type":"indicator","spec_version":"2.1","id":%q,"created":%q,"modified":%q,"valid_from":%q,"pattern":"[ipv4-addr:value = '10.%d.%d.%d']","pattern_type":"stix"}`,
			id, stix.FormatMicro(ts), stix.FormatMicro(ts), stix.FormatMicro(ts), i>>16&255, i>>8&255, i&255)
		level, sub := access.TLPGreen, w.orgB
		if i%2 == 0 {
			level, sub = access.TLPRed, w.orgA
		}
		batch = append(batch, store.Object{ID: id, Type: "indicator", SpecVersion: "2.1", Version: ts, VersionRaw: stix.FormatMicro(ts), Raw: raw, Submitter: sub, TLP: int(level)})
		if len(batch) == 1000 {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
	br := w.browser()
	br.mustSignIn("bob")
	b.ResetTimer()
	for b.Loop() {
		if r := br.get("/console/"); r.status != http.StatusOK {
			b.Fatal(r.status)
		}
	}
}
