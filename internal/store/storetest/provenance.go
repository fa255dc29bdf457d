package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/store"
)

// provLine is a provenance answer in a comparable form.
type provLine struct {
	Version, Link, Peer string
	Received            time.Time
}

func provLines(t *testing.T, s store.Store, id string) []provLine {
	t.Helper()
	ps, err := s.ObjectProvenance(context.Background(), id)
	if err != nil {
		t.Fatalf("provenance of %s: %v", id, err)
	}
	var out []provLine
	for _, p := range ps {
		if p.ObjectID != id {
			t.Errorf("provenance of %s names %s", id, p.ObjectID)
		}
		out = append(out, provLine{p.Version, p.Link, p.Peer, p.Received.UTC()})
	}
	return out
}

// testProvenance: what ObjectProvenance answers after mirrored pages
// (versions added and recorded in one Update), versions delivered again by
// the same link (the first delivery is kept) and by a second link (both
// kept), the same version in two collections, pages recorded in part,
// conflicts (refused, no provenance), deletions (the provenance stays),
// versions added again after a deletion, and rollbacks.
func testProvenance(t *testing.T, s store.Store) {
	ctx := context.Background()
	c1, c2 := newCollection(t, s), newCollection(t, s)
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	ids := map[string]string{}
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		ids[n] = "indicator--" + uuid.NewString()
	}
	ver := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }
	obj := func(n string, m int) store.Object { return Obj(t, Indicator(ids[n], base, ver(m))) }
	raw := func(m int) string { return ver(m).UTC().Format("2006-01-02T15:04:05.000Z") }
	// page adds objs to cid and records the provenance of the versions it
	// added (as a federation pull does) and of extra, through link.
	page := func(cid, link string, h int, objs []store.Object, extra []store.Provenance, fail bool) []store.AddResult {
		t.Helper()
		var res []store.AddResult
		err := s.Update(ctx, cid, func(ctx context.Context, tx store.Tx) error {
			var err error
			if len(objs) > 0 {
				if res, err = tx.Add(ctx, objs); err != nil {
					return err
				}
			}
			var ps []store.Provenance
			for i, r := range res {
				if r.Err == nil && !r.Duplicate {
					ps = append(ps, store.Provenance{ObjectID: objs[i].ID, Version: r.Version, Link: link, Peer: "peer-" + link, Received: at(h)})
				}
			}
			if err := tx.(store.FederationTx).RecordProvenance(ctx, append(ps, extra...)); err != nil {
				return err
			}
			if fail {
				return errors.New("rolled back")
			}
			return nil
		})
		if fail != (err != nil) {
			t.Fatalf("page of %s at %d: %v", link, h, err)
		}
		return res
	}
	line := func(m int, link string, h int) provLine { return provLine{raw(m), link, "peer-" + link, at(h)} }
	want := map[string][]provLine{}
	check := func(step string) {
		t.Helper()
		for n, id := range ids {
			if got := provLines(t, s, id); !reflect.DeepEqual(got, want[n]) {
				t.Errorf("%s: provenance of %s:\n got %+v\nwant %+v", step, n, got, want[n])
			}
		}
	}

	// A page of three new objects through link la.
	page(c1, "la", 1, []store.Object{obj("a", 1), obj("b", 1), obj("c", 1)}, nil, false)
	want["a"] = []provLine{line(1, "la", 1)}
	want["b"] = []provLine{line(1, "la", 1)}
	want["c"] = []provLine{line(1, "la", 1)}
	check("first page")

	// A new version of a and a new object; a's first version delivered
	// again by la (the first delivery is kept) and by lb (kept as well).
	again := []store.Provenance{
		{ObjectID: ids["a"], Version: raw(1), Link: "la", Peer: "peer-la", Received: at(2)},
		{ObjectID: ids["a"], Version: raw(1), Link: "lb", Peer: "peer-lb", Received: at(2)},
	}
	page(c1, "la", 2, []store.Object{obj("a", 2), obj("d", 1)}, again, false)
	want["a"] = []provLine{line(1, "la", 1), line(2, "la", 2), line(1, "lb", 2)} // by time, then link
	want["d"] = []provLine{line(1, "la", 2)}
	check("second page")

	// The same version of a, and a new one of b, mirrored into another
	// collection by lb and then by la: (a, 1, lb) was recorded at 2 and is
	// kept; the others are new.
	page(c2, "lb", 3, []store.Object{obj("a", 1), obj("b", 1)}, nil, false)
	page(c2, "la", 4, []store.Object{obj("b", 2)}, []store.Provenance{
		{ObjectID: ids["a"], Version: raw(1), Link: "la", Peer: "peer-la", Received: at(4)}}, false)
	want["b"] = []provLine{line(1, "la", 1), line(1, "lb", 3), line(2, "la", 4)}
	check("another collection")

	// A page recorded in part: f is added but its provenance is not
	// recorded (e and g are, in two runs around it); a conflict (same
	// version of c, other content) is refused and records nothing.
	conflict := Obj(t, []byte(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":%q,"created":%q,"modified":%q,"pattern":"[ipv4-addr:value = '10.9.9.9']","pattern_type":"stix","valid_from":%q}`,
		ids["c"], base.Format("2006-01-02T15:04:05.000Z"), raw(1), base.Format("2006-01-02T15:04:05Z"))))
	err := s.Update(ctx, c1, func(ctx context.Context, tx store.Tx) error {
		res, err := tx.Add(ctx, []store.Object{obj("e", 1), obj("f", 1), obj("g", 1), conflict})
		if err != nil {
			return err
		}
		if res[3].Err == nil {
			return fmt.Errorf("conflict not refused: %+v", res[3])
		}
		var ps []store.Provenance
		for _, n := range []string{"g", "e"} {
			ps = append(ps, store.Provenance{ObjectID: ids[n], Version: raw(1), Link: "la", Peer: "peer-la", Received: at(5)})
		}
		return tx.(store.FederationTx).RecordProvenance(ctx, ps)
	})
	if err != nil {
		t.Fatal(err)
	}
	want["e"] = []provLine{line(1, "la", 5)}
	want["g"] = []provLine{line(1, "la", 5)}
	check("partial page")

	// A rolled-back page leaves nothing.
	page(c1, "la", 6, []store.Object{obj("h", 1)}, nil, true)
	check("rollback")

	// Deleted versions keep their provenance; b added again to c1 after
	// its deletion: a delivery by la again is not recorded (la's first is
	// kept), one by lb is.
	if _, err := s.DeleteObject(ctx, c1, ids["b"], store.Query{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteObject(ctx, c1, ids["d"], store.Query{}); err != nil {
		t.Fatal(err)
	}
	check("deleted")
	page(c1, "la", 7, []store.Object{obj("b", 1)}, nil, false)
	check("added again by the same link")
	if _, err := s.DeleteObject(ctx, c1, ids["b"], store.Query{}); err != nil {
		t.Fatal(err)
	}
	page(c1, "lc", 8, []store.Object{obj("b", 1)}, nil, false)
	want["b"] = []provLine{line(1, "la", 1), line(1, "lb", 3), line(2, "la", 4), line(1, "lc", 8)}
	check("added again by another link")

	// Added and deleted in one transaction, then recorded: by id.
	err = s.Update(ctx, c2, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.Add(ctx, []store.Object{obj("h", 1)}); err != nil {
			return err
		}
		if _, err := tx.Delete(ctx, ids["h"], store.Query{}); err != nil {
			return err
		}
		return tx.(store.FederationTx).RecordProvenance(ctx, []store.Provenance{{ObjectID: ids["h"], Version: raw(1), Link: "la", Peer: "peer-la", Received: at(9)}})
	})
	if err != nil {
		t.Fatal(err)
	}
	want["h"] = []provLine{line(1, "la", 9)}
	check("added, deleted, recorded")

	// A deleted collection keeps the provenance of its versions.
	if err := s.DeleteCollection(ctx, c2); err != nil {
		t.Fatal(err)
	}
	check("collection deleted")
}

// ProvenanceMigration checks that provenance recorded in migration 5's
// table (object_provenance) reads the same after migration 17. reopen
// opens the same database again each time it is called; exec runs SQL on
// that database directly, behind the store's back; dropTrigger is the
// dialect's statement that drops the trigger provenance_keep.
func ProvenanceMigration(t *testing.T, reopen Open, exec func(t testing.TB, query string), dropTrigger string) {
	ctx := context.Background()
	s := reopen(t)
	c := &store.Collection{Title: "one"}
	if err := s.CreateCollection(ctx, c); err != nil {
		t.Fatal(err)
	}
	x, y := "indicator--"+uuid.NewString(), "indicator--"+uuid.NewString()
	if _, err := s.AddObjects(ctx, c.ID, []store.Object{Obj(t, Indicator(x, base, base))}, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Back to version 16 with rows of version 5: x's version through two
	// links (equal times, so the order falls to the link), a later one,
	// and y, deleted since.
	const v1, v2 = "2024-03-01T12:00:00.000Z", "2024-03-01T12:01:00.000Z"
	t1, t2 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)
	for _, q := range []string{
		dropTrigger,
		`DROP TABLE provenance_ranges`, `DROP TABLE provenance_versions`, `DROP TABLE provenance_deliveries`,
		`CREATE TABLE object_provenance (id TEXT NOT NULL, version TEXT NOT NULL, link TEXT NOT NULL, peer TEXT NOT NULL, received BIGINT NOT NULL, PRIMARY KEY (id, version, link))`,
		fmt.Sprintf(`INSERT INTO object_provenance (id, version, link, peer, received) VALUES ('%s', '%s', 'lb', 'pb', %d), ('%s', '%s', 'la', 'pa', %d), ('%s', '%s', 'la', 'pa', %d), ('%s', '%s', 'la', 'pa', %d)`,
			x, v1, t1.UnixMicro(), x, v1, t1.UnixMicro(), x, v2, t2.UnixMicro(), y, v1, t1.UnixMicro()),
		`DELETE FROM schema_migrations WHERE version = 17`,
	} {
		exec(t, q)
	}
	s = reopen(t)
	want := map[string][]provLine{
		x: {{v1, "la", "pa", t1}, {v1, "lb", "pb", t1}, {v2, "la", "pa", t2}},
		y: {{v1, "la", "pa", t1}},
	}
	for id, w := range want {
		if got := provLines(t, s, id); !reflect.DeepEqual(got, w) {
			t.Errorf("provenance of %s after migration 17:\n got %+v\nwant %+v", id, got, w)
		}
	}
	// Recorded again after the migration by la: la's first is kept.
	err := s.Update(ctx, c.ID, func(ctx context.Context, tx store.Tx) error {
		return tx.(store.FederationTx).RecordProvenance(ctx, []store.Provenance{{ObjectID: x, Version: v1, Link: "la", Peer: "pa", Received: t2}})
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := provLines(t, s, x); !reflect.DeepEqual(got, want[x]) {
		t.Errorf("provenance of %s recorded again: %+v", x, got)
	}
}
