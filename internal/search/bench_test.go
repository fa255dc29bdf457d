package search_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/bench"
	"github.com/mitra-cert/mitra/internal/search"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
)

// BenchmarkLookup10kValues looks up 10,000 values (about a third known
// exactly, some inside indicators' CIDR ranges, the rest unknown) in a
// SQLite store of MITRA_SEARCH_BENCH_OBJECTS objects (1,000,000 by
// default): MITRE ATT&CK for ICS (both shared releases, real objects with
// their relationships) and generated indicators (the bench package's
// realistic mix of addresses, ranges, domains, URLs, hashes, e-mail
// addresses and compound patterns), observables, sightings and reports,
// over four collections with CLEAR to RED levels, looked up by an
// organisation that reads three of them. It reports the latency
// percentiles of one 10,000-value lookup. MITRA_SEARCH_BENCH_DIR keeps
// the store between runs (built once, reused).
//
//	MITRA_SEARCH_BENCH_DIR=/tmp/searchbench go test -run '^$' -bench Lookup10k -benchtime 30x ./internal/search/
func BenchmarkLookup10kValues(b *testing.B) {
	total := 1_000_000
	if v := os.Getenv("MITRA_SEARCH_BENCH_OBJECTS"); v != "" {
		var err error
		if total, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	dir := os.Getenv("MITRA_SEARCH_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	reader, known, ranges := benchStore(b, st, total)
	svc := search.New(search.Config{Store: st})
	start := time.Now()
	if err := svc.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("value index: %d records loaded in %s", svc.Values(), time.Since(start).Round(time.Millisecond))

	r := rand.New(rand.NewPCG(7, 7))
	values := make([]string, 0, search.MaxLookupValues)
	for len(values) < search.MaxLookupValues {
		switch k := r.IntN(100); {
		case k < 30:
			values = append(values, known[r.IntN(len(known))])
		case k < 35:
			values = append(values, ranges[r.IntN(len(ranges))])
		case k < 70:
			values = append(values, fmt.Sprintf("%d.%d.%d.%d", 1+r.IntN(223), r.IntN(256), r.IntN(256), r.IntN(256)))
		case k < 85:
			values = append(values, fmt.Sprintf("unknown-%x.example.net", r.Uint32()))
		default:
			values = append(values, fmt.Sprintf("%064x", r.Uint64()))
		}
	}
	var lat []time.Duration
	found := 0
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		res, err := svc.Lookup(ctx, reader, values)
		lat = append(lat, time.Since(t0))
		if err != nil {
			b.Fatal(err)
		}
		found = 0
		for _, x := range res {
			if x.Known {
				found++
			}
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "p90-ms")
	reportLatency(b, lat)
	b.ReportMetric(float64(found), "known-values")
	// One value at a time, as an analyst asks: the first 1,000 values.
	var one []time.Duration
	for _, v := range values[:1000] {
		t0 := time.Now()
		if _, err := svc.Lookup(ctx, reader, []string{v}); err != nil {
			b.Fatal(err)
		}
		one = append(one, time.Since(t0))
	}
	slices.Sort(one)
	b.ReportMetric(float64(one[len(one)/2].Microseconds())/1000, "single-p50-ms")
	b.ReportMetric(float64(one[len(one)*99/100].Microseconds())/1000, "single-p99-ms")
}

var quoted = regexp.MustCompile(`(?:=|ISSUBSET) '([^']+)'`)

// benchStore fills st up to total objects unless it already holds them,
// and returns the reader's principal, values known exactly and addresses
// inside stored ranges.
func benchStore(b *testing.B, st store.Store, total int) (*access.Principal, []string, []string) {
	ctx := context.Background()
	orgs, err := st.ListOrganisations(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var reader string
	for _, o := range orgs {
		if o.Name == "Reader CERT" {
			reader = o.ID
		}
	}
	// The values the generator put in, recomputed from its seed.
	g := rand.New(rand.NewPCG(1, 2))
	pick := func() uint64 { return g.Uint64N(1 << 40) }
	nInd := total * 85 / 100
	var known, ranges []string
	seeds := make([]uint64, nInd)
	for i := range seeds {
		seeds[i] = pick()
		if i%50 == 0 {
			p := bench.Pattern(seeds[i])
			m := quoted.FindStringSubmatch(p)
			if m == nil {
				continue
			}
			if pfx, err := parsePrefix(m[1]); err == nil && pfx != "" {
				ranges = append(ranges, pfx)
			} else {
				known = append(known, m[1])
			}
		}
	}
	if reader != "" {
		return principal(reader), known, ranges
	}
	start := time.Now()
	ro, oo := &store.Organisation{Name: "Reader CERT"}, &store.Organisation{Name: "Other CERT"}
	for _, o := range []*store.Organisation{ro, oo} {
		if err := st.CreateOrganisation(ctx, o); err != nil {
			b.Fatal(err)
		}
	}
	reader, other := ro.ID, oo.ID
	var colls []string
	for i, def := range []access.TLP{access.TLPClear, access.TLPGreen, access.TLPAmber, access.TLPRed} {
		c := &store.Collection{Title: fmt.Sprintf("feed-%d", i), DefaultTLP: int(def)}
		if err := st.CreateCollection(ctx, c); err != nil {
			b.Fatal(err)
		}
		if err := st.SetPartyGrant(ctx, c.ID, store.GrantOrg, other, true, true); err != nil {
			b.Fatal(err)
		}
		if i < 3 {
			if err := st.SetPartyGrant(ctx, c.ID, store.GrantOrg, reader, true, false); err != nil {
				b.Fatal(err)
			}
		}
		colls = append(colls, c.ID)
	}
	n := 0
	put := func(coll string, objs []store.Object) {
		for lo := 0; lo < len(objs); lo += 1000 {
			if _, err := st.AddObjects(ctx, coll, objs[lo:min(lo+1000, len(objs))], nil); err != nil {
				b.Fatal(err)
			}
		}
		n += len(objs)
	}
	// ATT&CK for ICS, both releases (real versions of the same objects).
	for i, f := range []string{"ics-attack-17.1.json.gz", "ics-attack-18.1.json.gz"} {
		put(colls[i], attack(b, filepath.Join("/work/shared/data", f), other))
	}
	r := rand.New(rand.NewPCG(3, 4))
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	tlps := []access.TLP{0, 0, 0, access.TLPGreen, access.TLPAmber, access.TLPAmberStrict, access.TLPRed}
	obj := func(raw string, submitter string) store.Object {
		o := storeObject(b, []byte(raw))
		o.Submitter, o.TLP = submitter, int(tlps[r.IntN(len(tlps))])
		return o
	}
	var indIDs []string
	batch := make([]store.Object, 0, 1000)
	flush := func() {
		put(colls[r.IntN(len(colls))], batch)
		batch = batch[:0]
	}
	for i, s := range seeds {
		if n+len(batch) >= total {
			break
		}
		id := "indicator--" + uuid.NewString()
		indIDs = append(indIDs, id)
		t := base.Add(time.Duration(r.Int64N(int64(700 * 24 * time.Hour)))).Format("2006-01-02T15:04:05.000Z")
		raw := fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":%q,"created":%q,"modified":%q,"name":"Malicious activity %d",`+
			`"description":"Observed in campaign %d by sensor %d; block and hunt for related activity.","indicator_types":["malicious-activity"],`+
			`"pattern":%q,"pattern_type":"stix","valid_from":%q,"labels":["c2","campaign-%d"],"confidence":%d}`,
			id, t, t, s, r.IntN(5000), r.IntN(300), bench.Pattern(s), t, r.IntN(100), 50+r.IntN(50))
		sub := other
		if i%7 == 0 {
			sub = reader
		}
		batch = append(batch, obj(raw, sub))
		if len(batch) == cap(batch) {
			flush()
		}
	}
	// Sightings, observables in observed data, and reports to fill up.
	for n+len(batch) < total {
		t := base.Add(time.Duration(r.Int64N(int64(700 * 24 * time.Hour)))).Format("2006-01-02T15:04:05.000Z")
		var raw string
		switch r.IntN(4) {
		case 0, 1:
			raw = fmt.Sprintf(`{"type":"sighting","spec_version":"2.1","id":"sighting--%s","created":%q,"modified":%q,"sighting_of_ref":%q,"count":%d}`,
				uuid.NewString(), t, t, indIDs[r.IntN(len(indIDs))], 1+r.IntN(20))
		case 2:
			refs := make([]string, 5)
			for k := range refs {
				refs[k] = indIDs[r.IntN(len(indIDs))]
			}
			rj, _ := json.Marshal(refs)
			raw = fmt.Sprintf(`{"type":"report","spec_version":"2.1","id":"report--%s","created":%q,"modified":%q,"name":"Weekly summary %d","published":%q,"object_refs":%s}`,
				uuid.NewString(), t, t, r.IntN(10000), t, rj)
		default:
			raw = fmt.Sprintf(`{"type":"ipv4-addr","spec_version":"2.1","id":"ipv4-addr--%s","value":"%d.%d.%d.%d"}`,
				uuid.NewString(), 10+r.IntN(200), r.IntN(256), r.IntN(256), r.IntN(256))
		}
		batch = append(batch, obj(raw, other))
		if len(batch) == cap(batch) {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
	b.Logf("stored %d objects in %s", n, time.Since(start).Round(time.Second))
	return principal(reader), known, ranges
}

// parsePrefix returns an address inside a CIDR range literal ("" when the
// literal is not a range).
func parsePrefix(s string) (string, error) {
	var a, bb, c, d, bits int
	if _, err := fmt.Sscanf(s, "%d.%d.%d.%d/%d", &a, &bb, &c, &d, &bits); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d.%d.%d.%d", a, bb, c, d|1), nil
}

func storeObject(b *testing.B, raw []byte) store.Object {
	h, err := stix.ParseHeader(raw)
	if err != nil {
		b.Fatal(err)
	}
	o := store.Object{ID: h.ID, Type: h.Type, SpecVersion: h.SpecVersion, Raw: raw}
	o.Version, o.VersionRaw, _ = h.Version()
	return o
}

// attack reads an ATT&CK bundle as objects submitted by org.
func attack(b *testing.B, path, org string) []store.Object {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		b.Fatal(err)
	}
	var bundle struct {
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.NewDecoder(z).Decode(&bundle); err != nil {
		b.Fatal(err)
	}
	out := make([]store.Object, 0, len(bundle.Objects))
	for _, raw := range bundle.Objects {
		o := storeObject(b, raw)
		o.Submitter = org
		out = append(out, o)
	}
	return out
}

// BenchmarkSearchAndPivot measures single searches (a word in most
// objects, a label in about 1%, a rare pattern value, no text with
// filters) and two-hop pivots on the store of BenchmarkLookup10kValues,
// as the organisation that reads three of its four collections.
//
//	MITRA_SEARCH_BENCH_DIR=/tmp/searchbench go test -run '^$' -bench SearchAndPivot -benchtime 20x ./internal/search/
func BenchmarkSearchAndPivot(b *testing.B) {
	total := 1_000_000
	if v := os.Getenv("MITRA_SEARCH_BENCH_OBJECTS"); v != "" {
		var err error
		if total, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	dir := os.Getenv("MITRA_SEARCH_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	reader, known, _ := benchStore(b, st, total)
	svc := search.New(search.Config{Store: st})
	queries := map[string]search.Query{
		"common-word":   {Text: "malicious activity"},
		"label":         {Text: "campaign-42"},
		"rare-value":    {Text: known[len(known)/2]},
		"filters-only":  {Types: []string{"indicator"}, TLPs: []string{"amber"}},
		"word-filtered": {Text: "summary", Types: []string{"report"}, TLPs: []string{"green"}},
	}
	for name, q := range queries {
		b.Run(name, func(b *testing.B) {
			var lat []time.Duration
			hits := 0
			for b.Loop() {
				t0 := time.Now()
				res, err := svc.Search(ctx, reader, q)
				lat = append(lat, time.Since(t0))
				if err != nil {
					b.Fatal(err)
				}
				hits = len(res.Hits)
			}
			reportLatency(b, lat)
			b.ReportMetric(float64(hits), "hits")
		})
	}
	b.Run("pivot-2-hops", func(b *testing.B) {
		res, err := svc.Search(ctx, reader, search.Query{Types: []string{"report"}, Limit: 1})
		if err != nil || len(res.Hits) == 0 {
			b.Fatalf("no report: %v", err)
		}
		var lat []time.Duration
		nodes := 0
		for b.Loop() {
			t0 := time.Now()
			g, err := svc.Pivot(ctx, reader, res.Hits[0].ID, 2)
			lat = append(lat, time.Since(t0))
			if err != nil {
				b.Fatal(err)
			}
			nodes = len(g.Nodes)
		}
		reportLatency(b, lat)
		b.ReportMetric(float64(nodes), "nodes")
	})
}

func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}
