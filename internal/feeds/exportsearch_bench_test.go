package feeds

import (
	"net/url"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/search"
)

// BenchmarkSelectSearch100k selects the active indicators among the
// results of searches over 100,000 indicators in SQLite: every
// indicator (the search's every page, then the whole collection read and
// filtered) and a prefix search ("indicator 7*") matching about a fifth.
//
//	go test -run '^$' -bench BenchmarkSelectSearch100k -benchmem -benchtime 1x ./internal/feeds/
func BenchmarkSelectSearch100k(b *testing.B) {
	st, p := benchStore(b, 100_000)
	x := &Exporter{Store: st, Now: func() time.Time { return time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) },
		Matcher: search.New(search.Config{Store: st})}
	for _, s := range []struct {
		name string
		q    url.Values
	}{{"all", url.Values{"q": {""}}}, {"prefix", url.Values{"q": {"indicator 7*"}}}} {
		b.Run(s.name, func(b *testing.B) {
			var n int
			for b.Loop() {
				got, err := x.Select(b.Context(), Request{Principal: p, Search: s.q})
				if err != nil {
					b.Fatal(err)
				}
				n = len(got.Indicators)
			}
			if n == 0 {
				b.Fatal("nothing selected")
			}
			b.ReportMetric(float64(n), "indicators")
		})
	}
}
