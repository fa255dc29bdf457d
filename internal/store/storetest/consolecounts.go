package storetest

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/store"
)

// countsOf renders a collection's object counts as "type/tlp/submitter/
// recipients" → n, failing on a group listed twice.
func countsOf(t *testing.T, s store.Store, cid string) map[string]int {
	t.Helper()
	got, err := s.CountObjects(context.Background(), cid)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, c := range got {
		k := fmt.Sprintf("%s/%d/%s/%v", c.Type, c.TLP, c.Submitter, c.Recipients)
		if _, dup := out[k]; dup || c.N <= 0 {
			t.Errorf("count %s listed twice or empty: %+v", k, got)
		}
		out[k] = c.N
	}
	return out
}

// latestCounts counts the latest versions of a collection's objects the
// long way, from the objects themselves: what the kept counts must equal.
func latestCounts(t *testing.T, s store.Store, cid string) map[string]int {
	t.Helper()
	out := map[string]int{}
	page, err := s.QueryObjects(context.Background(), cid, store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if page.More {
		t.Fatal("more objects than one page: count them in pages")
	}
	for _, e := range page.Entries {
		rcpt := e.Recipients
		if len(rcpt) == 0 {
			rcpt = nil
		}
		out[fmt.Sprintf("%s/%d/%s/%v", e.Type, e.TLP, e.Submitter, rcpt)]++
	}
	return out
}

// testConsoleCountsKept: the dashboard's counts follow every change to a
// collection's latest versions (a new version supersedes, deleting the
// newest version brings the previous one back, deleting an object or a
// collection removes them, several versions of one object in one batch
// count once), per group and per day, and always equal a count of the
// objects themselves.
func testConsoleCountsKept(t *testing.T, s store.Store) {
	ctx := context.Background()
	cid, other := newCollection(t, s), newCollection(t, s)
	// Versions are stored to the millisecond.
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	obj := func(raw []byte, tlp int, sub string, rcpt ...string) store.Object {
		o := Obj(t, raw)
		o.TLP, o.Submitter, o.Recipients = tlp, sub, rcpt
		return o
	}
	add := func(c string, objs ...store.Object) {
		t.Helper()
		res, err := s.AddObjects(ctx, c, objs, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	check := func(step string, want map[string]int) {
		t.Helper()
		got := countsOf(t, s, cid)
		if !maps.Equal(got, want) {
			t.Errorf("%s: counts = %v, want %v", step, got, want)
		}
		if long := latestCounts(t, s, cid); !maps.Equal(got, long) {
			t.Errorf("%s: counts = %v, but the objects count %v", step, got, long)
		}
	}
	x, y, z := "indicator--"+uuid.NewString(), "indicator--"+uuid.NewString(), "indicator--"+uuid.NewString()
	v1, v2, v3 := t0, t0.Add(time.Minute), t0.Add(2*time.Minute)
	add(cid, obj(Indicator(x, t0, v1), 2, "a"))
	add(cid, obj(Indicator(x, t0, v2), 3, "a"))
	add(other, obj(Indicator(y, t0, v1), 2, "a"))
	check("new version", map[string]int{"indicator/3/a/[]": 1})

	// Three versions of z in one batch: the newest counts, once.
	add(cid, obj(Indicator(z, t0, v2), 2, "b"), obj(Indicator(z, t0, v3), 5, "b", "c", "d"), obj(Indicator(z, t0, v1), 2, "b"))
	add(cid, obj(Indicator(y, t0, v1), 2, "a"))
	check("batch", map[string]int{"indicator/3/a/[]": 1, "indicator/5/b/[c d]": 1, "indicator/2/a/[]": 1})

	// An older version arriving later changes nothing.
	add(cid, obj(Indicator(x, t0, v1.Add(-time.Minute)), 4, "a"))
	check("older version", map[string]int{"indicator/3/a/[]": 1, "indicator/5/b/[c d]": 1, "indicator/2/a/[]": 1})

	// Deleting x's newest version brings back the one before it.
	if _, err := s.DeleteObject(ctx, cid, x, store.Query{Versions: store.VersionFilter{Exact: []time.Time{v2}}}); err != nil {
		t.Fatal(err)
	}
	check("newest version deleted", map[string]int{"indicator/2/a/[]": 2, "indicator/5/b/[c d]": 1})
	if _, err := s.DeleteObject(ctx, cid, z, store.Query{Versions: store.VersionFilter{All: true}}); err != nil {
		t.Fatal(err)
	}
	check("object deleted", map[string]int{"indicator/2/a/[]": 2})

	// Sightings per day: a new version of a sighting moves it to the day
	// of its addition; it is still one sighting.
	sid := "sighting--" + uuid.NewString()
	sighting := func(mod time.Time) []byte {
		return fmt.Appendf(nil, `{"type":"sighting","spec_version":"2.1","id":%q,"created":%q,"modified":%q,"sighting_of_ref":%q}`,
			sid, t0.Format(time.RFC3339Nano), mod.Format(time.RFC3339Nano), x)
	}
	add(cid, obj(sighting(v1), 0, "b"))
	add(cid, obj(sighting(v2), 0, "b"))
	check("sighting", map[string]int{"indicator/2/a/[]": 2, "sighting/0/b/[]": 1})
	days, err := s.CountSightingsPerDay(ctx, cid, time.Now().Add(-48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, d := range days {
		total += d.N
		if d.Submitter != "b" || d.Day.Hour() != 0 || d.Day.Location() != time.UTC {
			t.Errorf("sightings per day = %+v", days)
		}
	}
	if total != 1 {
		t.Errorf("sightings per day = %+v, want one sighting", days)
	}
	if _, err := s.DeleteObject(ctx, cid, sid, store.Query{Versions: store.VersionFilter{All: true}}); err != nil {
		t.Fatal(err)
	}
	if days, err := s.CountSightingsPerDay(ctx, cid, time.Now().Add(-48*time.Hour)); err != nil || len(days) != 0 {
		t.Errorf("sightings per day after delete = %+v, %v", days, err)
	}

	// Deleting a collection takes its counts; the other's stay.
	if got := countsOf(t, s, other); !maps.Equal(got, map[string]int{"indicator/2/a/[]": 1}) {
		t.Errorf("other collection = %v", got)
	}
	if err := s.DeleteCollection(ctx, other); err != nil {
		t.Fatal(err)
	}
	if got, err := s.CountObjects(ctx, other); err != nil || len(got) != 0 {
		t.Errorf("deleted collection = %+v, %v", got, err)
	}
	check("other collection deleted", map[string]int{"indicator/2/a/[]": 2})
}

// MigrationBackfillsConsoleCounts checks that migration 14 computes the
// console's counts of a store that had none from its objects, and that it
// can run again. reopen opens the same database again each time it is
// called; exec runs SQL on that database directly, behind the store's back.
func MigrationBackfillsConsoleCounts(t *testing.T, reopen Open, exec func(t testing.TB, query string)) {
	ctx := context.Background()
	s := reopen(t)
	cid := newCollection(t, s)
	t0 := time.Now().UTC().Add(-time.Hour)
	var objs []store.Object
	for i := range 30 {
		raw := Indicator("indicator--"+uuid.NewString(), t0, t0)
		if i%3 == 0 {
			raw = fmt.Appendf(nil, `{"type":"sighting","spec_version":"2.1","id":"sighting--%s","created":%q,"modified":%q,"sighting_of_ref":"indicator--%s"}`,
				uuid.NewString(), t0.Format(time.RFC3339Nano), t0.Format(time.RFC3339Nano), uuid.NewString())
		}
		o := Obj(t, raw)
		o.TLP, o.Submitter = i%3, fmt.Sprintf("org-%d", i%2)
		objs = append(objs, o)
	}
	if _, err := s.AddObjects(ctx, cid, objs, nil); err != nil {
		t.Fatal(err)
	}
	want := latestCounts(t, s, cid)
	s.Close()
	for _, q := range []string{
		`DELETE FROM console_counts`, `DELETE FROM console_sighting_days`,
		// Counts that the backfill must replace, not add to.
		`INSERT INTO console_counts (cid, type, tlp, submitter, recipients, n) SELECT cid, 'indicator', 0, 'org-0', '[]', 1000 FROM collections`,
		`DELETE FROM schema_migrations WHERE version >= 14`,
	} {
		exec(t, q)
	}
	s = reopen(t)
	if got := countsOf(t, s, cid); !maps.Equal(got, want) || len(got) != 6 {
		t.Errorf("backfilled counts = %v, want %v", got, want)
	}
	days, err := s.CountSightingsPerDay(ctx, cid, t0.Add(-48*time.Hour))
	n := 0
	for _, d := range days {
		n += d.N
	}
	if err != nil || n != 10 {
		t.Errorf("backfilled days = %+v, %v", days, err)
	}
}
