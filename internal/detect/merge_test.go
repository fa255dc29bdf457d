package detect_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/detect"
	"github.com/mitra-cert/mitra/internal/pattern"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/postgres"
	"github.com/mitra-cert/mitra/internal/store/postgres/pgtest"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
)

const (
	mInd   = "indicator--c0000000-0000-4000-8000-000000000001"
	mOther = "indicator--c0000000-0000-4000-8000-000000000002"
)

var mIndicators = []pattern.Indicator{
	{ID: mInd, Pattern: "[domain-name:value = 'late.example.com']"},
	{ID: mOther, Pattern: "[domain-name:value = 'other.example.com']"},
}

// senv is a store with an organisation and a sightings collection; open
// opens another handle on it (another process's).
type senv struct {
	open func() (store.Store, error)
	st   store.Store
	org  *store.Organisation
	out  *store.Collection
}

// newSEnv is a SQLite store.
func newSEnv(t *testing.T) *senv {
	dir := t.TempDir()
	return newSEnvOn(t, func() (store.Store, error) { return sqlite.Open(context.Background(), dir, sqlite.Options{}) })
}

// newPGEnv is a PostgreSQL schema of the test's own.
func newPGEnv(t *testing.T) *senv {
	pgtest.Require(t)
	dsn := pgtest.NewSchema(t)
	return newSEnvOn(t, func() (store.Store, error) { return postgres.Open(context.Background(), dsn, postgres.Options{}) })
}

func newSEnvOn(t *testing.T, open func() (store.Store, error)) *senv {
	t.Helper()
	ctx := t.Context()
	e := &senv{open: open, org: &store.Organisation{Name: "Sensor Org"}, out: &store.Collection{Title: "Sightings"}}
	var err error
	if e.st, err = open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.st.Close() })
	if err := e.st.CreateOrganisation(ctx, e.org); err != nil {
		t.Fatal(err)
	}
	if err := e.st.CreateCollection(ctx, e.out); err != nil {
		t.Fatal(err)
	}
	return e
}

// detector returns a detector writing to the collection through st (a
// store handle of its own stands for another process).
func (e *senv) detector(t *testing.T, st store.Store, flush time.Duration) *detect.Detector {
	t.Helper()
	d, err := detect.New(detect.Config{
		Indicators: &detect.StaticIndicators{List: mIndicators},
		Sink:       &detect.StoreSink{Store: st, Collection: e.out.ID, Submitter: e.org.ID},
		Identity:   e.org.ID, Flush: flush,
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// dnsAt is a Zeek dns.log JSON record at 2024-03-01 10:MM:SS for query.
func dnsAt(min, sec int, query string) string {
	ts := time.Date(2024, 3, 1, 10, min, sec, 0, time.UTC).Unix()
	return fmt.Sprintf(`{"_path":"dns","ts":%d.250000,"uid":"C1","id.orig_h":"10.0.0.%d","id.orig_p":5353,"id.resp_h":"10.0.0.53","id.resp_p":53,"proto":"udp","query":%q}`+"\n", ts, sec+1, query)
}

type sightingVersion struct {
	ID       string   `json:"id"`
	Of       string   `json:"sighting_of_ref"`
	Count    int64    `json:"count"`
	First    string   `json:"first_seen"`
	Last     string   `json:"last_seen"`
	Modified string   `json:"modified"`
	ODRefs   []string `json:"observed_data_refs"`
}

// allVersions returns every stored version of every object of the
// collection, by id, in the order added.
func allVersions(t *testing.T, st store.Store, coll string) map[string][]store.Entry {
	t.Helper()
	out := map[string][]store.Entry{}
	q := store.Query{Versions: store.VersionFilter{All: true}, WithBody: true, Limit: 1000}
	for {
		page, err := st.QueryObjects(t.Context(), coll, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Entries {
			out[e.ID] = append(out[e.ID], e)
		}
		if !page.More || len(page.Entries) == 0 {
			return out
		}
		q.AddedAfter = page.Entries[len(page.Entries)-1].DateAdded
	}
}

// sightingsOf returns the versions of the sightings of ind, by id.
func sightingsOf(t *testing.T, st store.Store, coll, ind string) map[string][]sightingVersion {
	t.Helper()
	out := map[string][]sightingVersion{}
	for id, vs := range allVersions(t, st, coll) {
		for _, e := range vs {
			if e.Type != "sighting" {
				continue
			}
			var s sightingVersion
			if err := json.Unmarshal(e.Raw, &s); err != nil {
				t.Fatal(err)
			}
			if s.Of == ind {
				out[id] = append(out[id], s)
			}
		}
	}
	return out
}

// checkSummaries: every sighting version refers to an observed-data that
// is stored, whose objects are all stored.
func checkSummaries(t *testing.T, st store.Store, coll string) {
	t.Helper()
	all := allVersions(t, st, coll)
	n := 0
	for id, vs := range all {
		for _, e := range vs {
			if e.Type != "sighting" {
				continue
			}
			n++
			var s sightingVersion
			json.Unmarshal(e.Raw, &s)
			if len(s.ODRefs) != 1 || len(all[s.ODRefs[0]]) == 0 {
				t.Errorf("sighting %s version %s: observed_data_refs %v not stored", id, s.Modified, s.ODRefs)
				continue
			}
			for _, od := range all[s.ODRefs[0]] {
				var m struct {
					Refs []string `json:"object_refs"`
				}
				json.Unmarshal(od.Raw, &m)
				for _, r := range m.Refs {
					if len(all[r]) == 0 {
						t.Errorf("observed-data %s: object %s not stored", od.ID, r)
					}
				}
			}
		}
	}
	if n == 0 {
		t.Error("no sighting stored")
	}
}

// oneSighting checks that ind has one sighting (one id) whose latest
// version has count, first and last, after at least minVersions versions
// with strictly increasing modified.
func oneSighting(t *testing.T, st store.Store, coll string, count int64, first, last string, minVersions int) {
	t.Helper()
	ss := sightingsOf(t, st, coll, mInd)
	if len(ss) != 1 {
		t.Fatalf("%d sightings of the indicator for one bucket, want one: %v", len(ss), ss)
	}
	for id, vs := range ss {
		if len(vs) < minVersions {
			t.Errorf("%s: %d versions, want at least %d", id, len(vs), minVersions)
		}
		for i := 1; i < len(vs); i++ {
			if vs[i].Modified <= vs[i-1].Modified {
				t.Errorf("%s: version %d modified %s not after %s", id, i, vs[i].Modified, vs[i-1].Modified)
			}
		}
		l := vs[len(vs)-1]
		if l.Count != count || l.First != first || l.Last != last {
			t.Errorf("latest version: count %d first %s last %s, want %d %s %s", l.Count, l.First, l.Last, count, first, last)
		}
	}
	checkSummaries(t, st, coll)
}

// waitCount waits until the latest sightings of ind add up to n.
func waitCount(t *testing.T, st store.Store, coll, ind string, n int64) {
	t.Helper()
	waitFor(t, 20*time.Second, func() bool {
		var sum int64
		for _, vs := range sightingsOf(t, st, coll, ind) {
			sum += vs[len(vs)-1].Count
		}
		return sum == n
	})
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A late event on standard input after a pause (its bucket's sighting
// already written, and event time moved on by minutes) updates that
// sighting: same id, a new version, the counts added, first_seen moved
// back.
func TestLateEventAfterPauseOnStdin(t *testing.T) {
	e := newSEnv(t)
	d := e.detector(t, e.st, 50*time.Millisecond)
	r, w := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- d.Run(t.Context(), &detect.ReaderSource{Label: "stdin", R: r}) }()
	io.WriteString(w, dnsAt(0, 30, "late.example.com"))
	waitCount(t, e.st, e.out.ID, mInd, 1)
	io.WriteString(w, dnsAt(3, 0, "other.example.com"))
	waitCount(t, e.st, e.out.ID, mOther, 1)
	io.WriteString(w, dnsAt(0, 5, "late.example.com"))
	waitCount(t, e.st, e.out.ID, mInd, 2)
	w.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	oneSighting(t, e.st, e.out.ID, 2, "2024-03-01T10:00:05.250000Z", "2024-03-01T10:00:30.250000Z", 2)
}

// Two inputs read together: the late one's event lands in the sighting
// the other one's already wrote.
func TestLateEventFromAnotherInput(t *testing.T) {
	e := newSEnv(t)
	d := e.detector(t, e.st, 50*time.Millisecond)
	r1, w1 := io.Pipe()
	r2, w2 := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- d.Run(t.Context(), &detect.ReaderSource{Label: "a", R: r1}, &detect.ReaderSource{Label: "b", R: r2})
	}()
	io.WriteString(w1, dnsAt(0, 40, "late.example.com")+dnsAt(0, 50, "late.example.com")+dnsAt(5, 0, "other.example.com"))
	waitCount(t, e.st, e.out.ID, mInd, 2)
	waitCount(t, e.st, e.out.ID, mOther, 1)
	io.WriteString(w2, dnsAt(0, 1, "late.example.com"))
	waitCount(t, e.st, e.out.ID, mInd, 3)
	w1.Close()
	w2.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	oneSighting(t, e.st, e.out.ID, 3, "2024-03-01T10:00:01.250000Z", "2024-03-01T10:00:50.250000Z", 2)
}

// A detector restarted, and two detectors of the organisation running at
// once on other store connections, all add to the one sighting of the
// bucket.
func TestLateEventAfterRestartAndSeveralDetectors(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testRestartAndSeveralDetectors(t, newSEnv(t)) })
	t.Run("postgres", func(t *testing.T) { testRestartAndSeveralDetectors(t, newPGEnv(t)) })
}

func testRestartAndSeveralDetectors(t *testing.T, e *senv) {
	dir := t.TempDir()
	write := func(name string, lines ...string) string {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			f.WriteString(l)
		}
		f.Close()
		return p
	}
	a := write("a.log", dnsAt(0, 20, "late.example.com"), dnsAt(0, 21, "late.example.com"), dnsAt(0, 22, "late.example.com"))
	if err := e.detector(t, e.st, time.Hour).Run(t.Context(), &detect.FileSource{Path: a}); err != nil {
		t.Fatal(err)
	}
	oneSighting(t, e.st, e.out.ID, 3, "2024-03-01T10:00:20.250000Z", "2024-03-01T10:00:22.250000Z", 1)

	// Restarted, as two processes at once.
	var wg sync.WaitGroup
	for i, lines := range [][]string{
		{dnsAt(0, 40, "late.example.com"), dnsAt(0, 41, "late.example.com")},
		{dnsAt(0, 1, "late.example.com"), dnsAt(0, 2, "late.example.com"), dnsAt(0, 3, "late.example.com"), dnsAt(0, 4, "late.example.com")},
	} {
		p := write(fmt.Sprintf("b%d.log", i), lines...)
		st, err := e.open()
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		d := e.detector(t, st, time.Hour)
		wg.Go(func() {
			if err := d.Run(context.Background(), &detect.FileSource{Path: p}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	oneSighting(t, e.st, e.out.ID, 9, "2024-03-01T10:00:01.250000Z", "2024-03-01T10:00:41.250000Z", 3)
}

// Writes racing with matching (a write every few milliseconds, events of
// many buckets on every worker) never store a sighting version without
// its observed-data summary.
func TestEverySightingHasItsSummary(t *testing.T) {
	e := newSEnv(t)
	p := filepath.Join(t.TempDir(), "dns.log")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
	for i := range n {
		// Buckets in a scrambled order, a few events each.
		m := (i * 7919) % (n / 3)
		ts := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(m) * time.Minute).Unix()
		fmt.Fprintf(f, `{"_path":"dns","ts":%d.5,"id.orig_h":"10.0.%d.%d","id.resp_h":"10.0.0.53","query":"late.example.com"}`+"\n", ts, i/250%250, i%250)
	}
	f.Close()
	d := e.detector(t, e.st, 2*time.Millisecond)
	if err := d.Run(t.Context(), &detect.FileSource{Path: p}); err != nil {
		t.Fatal(err)
	}
	checkSummaries(t, e.st, e.out.ID)
	var total int64
	ss := sightingsOf(t, e.st, e.out.ID, mInd)
	for _, vs := range ss {
		total += vs[len(vs)-1].Count
	}
	if total != n || len(ss) != n/3 {
		t.Errorf("%d events in %d sightings, want %d in %d", total, len(ss), n, n/3)
	}
}

// Every detector write is in the audit log: who (the detector of its
// organisation), what, and the objects written.
func TestDetectorWritesAreAudited(t *testing.T) {
	e := newSEnv(t)
	d, err := detect.New(detect.Config{
		Indicators: &detect.StaticIndicators{List: mIndicators},
		Sink:       &detect.StoreSink{Store: e.st, Collection: e.out.ID, Submitter: e.org.ID, Audit: e.st},
		Identity:   e.org.ID, Flush: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	in := dnsAt(0, 30, "late.example.com") + dnsAt(1, 0, "nothing.example.com")
	if err := d.Run(t.Context(), &detect.ReaderSource{Label: "in", R: strings.NewReader(in)}); err != nil {
		t.Fatal(err)
	}
	recs, err := e.st.ListAudit(t.Context(), store.AuditFilter{Action: "detect.write"})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 {
		t.Fatal("no audit record for the detector's write")
	}
	logged := map[string]bool{}
	for _, r := range recs {
		if r.Principal != "detector" || r.Organisation != e.org.ID || r.Collection != e.out.ID {
			t.Errorf("audit record %+v: want the detector of %s writing to %s", r, e.org.ID, e.out.ID)
		}
		for _, id := range r.Objects {
			logged[id] = true
		}
	}
	for id := range allVersions(t, e.st, e.out.ID) {
		if !logged[id] {
			t.Errorf("stored %s is in no audit record", id)
		}
	}
}
