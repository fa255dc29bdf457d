package web_test

import (
	"errors"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/admin"
	"github.com/mitra-cert/mitra/internal/pattern"
	"github.com/mitra-cert/mitra/internal/search"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/mitra-cert/mitra/internal/taxii"
	"github.com/mitra-cert/mitra/internal/web"
)

// BenchmarkConsolePages measures every console page, served by the real
// handlers to a signed-in user, against the store in
// MITRA_CONSOLE_BENCH_DIR: the 1,000,000-object store that
// internal/search's BenchmarkLookup10kValues builds (ATT&CK, indicators,
// sightings, reports and observables over four collections CLEAR..RED;
// the reader's organisation reads three of them). It adds a reader and an
// administrator to that store when they are missing, so point it at a
// copy. Each page reports its latency percentiles; the target is
// under a second each (issue 17).
//
//	cp /tmp/searchbench-1m/mitra*.db /tmp/dashperf-1m/   # mitra-search.db too, or it is rebuilt
//	MITRA_CONSOLE_BENCH_DIR=/tmp/dashperf-1m go test -run '^$' -bench ConsolePages -benchtime 10x ./internal/web/
func BenchmarkConsolePages(b *testing.B) {
	dir := os.Getenv("MITRA_CONSOLE_BENCH_DIR")
	if dir == "" {
		b.Skip("MITRA_CONSOLE_BENCH_DIR names no store (build one with internal/search's BenchmarkLookup10kValues and copy it)")
	}
	ctx := b.Context()
	start := time.Now()
	st, err := sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	b.Logf("store opened (and migrated) in %s", time.Since(start).Round(time.Millisecond))
	reader := ""
	orgs, err := st.ListOrganisations(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, o := range orgs {
		if o.Name == "Reader CERT" {
			reader = o.ID
		}
	}
	if reader == "" {
		b.Fatal("no Reader CERT organisation: not a store built by BenchmarkLookup10kValues")
	}
	for _, u := range []*store.User{
		{Name: "bench-reader", Role: access.RoleAnalyst, Organisation: reader},
		{Name: "bench-admin", Role: access.RoleAdmin, Organisation: reader},
	} {
		if _, err := st.GetUser(ctx, u.Name); err == nil {
			continue
		} else if !errors.Is(err, store.ErrNotFound) {
			b.Fatal(err)
		}
		u.PasswordHash = passwordHash()
		if err := st.CreateUser(ctx, u); err != nil {
			b.Fatal(err)
		}
	}
	svc := search.New(search.Config{Store: st})
	start = time.Now()
	if err := svc.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("search service synced in %s", time.Since(start).Round(time.Millisecond))
	authn := access.NewAuthenticator(st, time.Now)
	srv := taxii.NewServer(taxii.Config{Store: st, Auth: authn, Validator: &stix.Validator{CheckPattern: pattern.Check}})
	console, err := web.New(web.Config{Store: st, Auth: authn, Search: svc, Check: srv.Check, ClientAddr: srv.ClientAddr,
		Admin: admin.NewWith(st, web.PrincipalFrom, admin.Options{Auth: authn})})
	if err != nil {
		b.Fatal(err)
	}
	srv.Mount(web.Prefix, console)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	w := &world{t: b, st: st, ts: ts}
	analyst, root := w.browser(), w.browser()
	analyst.mustSignIn("bench-reader")
	root.mustSignIn("bench-admin")

	// Pages that depend on the store's content: the first results of a
	// search give an indicator, an ATT&CK technique (with relationships
	// for the graph) and a second page of results.
	link := regexp.MustCompile(`href="/console/object\?id=([^"&]+)`)
	firstObject := func(query string) string {
		r := analyst.get("/console/search?" + query)
		m := link.FindStringSubmatch(r.body)
		if r.status != http.StatusOK || m == nil {
			b.Fatalf("search %s: %d, no object link", query, r.status)
		}
		id, _ := url.QueryUnescape(html.UnescapeString(m[1]))
		return id
	}
	indicator := firstObject("q=campaign&type=indicator")
	technique := firstObject("q=valid+accounts&type=attack-pattern")
	next := regexp.MustCompile(`href="(/console/search\?[^"]*cursor=[^"]*)"`).FindStringSubmatch(analyst.get("/console/search?q=campaign").body)
	if next == nil {
		b.Fatal("search for campaign has no second page")
	}
	pages := []struct {
		name, path string
		as         *browser
	}{
		{"dashboard", "/console/", analyst},
		{"search-text", "/console/search?q=campaign", analyst},
		{"search-filters", "/console/search?q=malicious&type=indicator&tlp=green&from=2024-03-01&to=2025-06-30", analyst},
		{"search-mine", "/console/search?q=activity&org=mine&type=indicator", analyst},
		{"search-type-only", "/console/search?q=&type=sighting", analyst},
		{"search-page-2", html.UnescapeString(next[1]), analyst},
		{"lookup", "/console/lookup?v=" + url.QueryEscape("8.8.8.8 evil.example.com 10.1.2.3 "+strings.Repeat("a", 64)), analyst},
		{"object-indicator", "/console/object?id=" + url.QueryEscape(indicator), analyst},
		{"object-technique-graph", "/console/object?id=" + url.QueryEscape(technique), analyst},
		{"sightings", "/console/sightings", analyst},
		{"indicator-editor", "/console/indicator", analyst},
		{"admin-audit", "/console/admin?s=audit", root},
		{"admin-collections", "/console/admin?s=collections", root},
	}
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			var lat []time.Duration
			for b.Loop() {
				t0 := time.Now()
				r := p.as.get(p.path)
				lat = append(lat, time.Since(t0))
				if r.status != http.StatusOK {
					b.Fatalf("%s: %d %s", p.path, r.status, r.body)
				}
			}
			slices.Sort(lat)
			pct := func(q float64) float64 {
				return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))].Microseconds()) / 1000
			}
			b.ReportMetric(pct(0.5), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
