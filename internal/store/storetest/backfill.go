package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/store"
)

// MigrationBackfillsOwners checks that a store migrated from version 2
// gets the owners of its objects from their earliest version that names a
// submitter, and that Ping tells a schema newer than the binary. reopen
// opens the same database again each time it is called; exec runs SQL on
// that database directly, behind the store's back.
func MigrationBackfillsOwners(t *testing.T, reopen Open, exec func(t testing.TB, query string)) {
	ctx := context.Background()
	s := reopen(t)
	c1, c2 := &store.Collection{Title: "one"}, &store.Collection{Title: "two"}
	for _, c := range []*store.Collection{c1, c2} {
		if err := s.CreateCollection(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	x, y, z := "indicator--"+uuid.NewString(), "indicator--"+uuid.NewString(), "indicator--"+uuid.NewString()
	t1, t2 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)
	add := func(cid, submitter string, raw []byte) {
		o := Obj(t, raw)
		o.Submitter = submitter
		res, err := s.AddObjects(ctx, cid, []store.Object{o}, nil)
		if err != nil || res[0].Err != nil {
			t.Fatalf("add: %v %+v", err, res)
		}
	}
	add(c2.ID, "org-first", Indicator(x, t1, t1)) // earliest version of x, in the second collection
	add(c1.ID, "org-first", Indicator(x, t1, t2))
	add(c1.ID, "org-y", Indicator(y, t1, t1))
	add(c1.ID, "org-y", Indicator(y, t1, t2))
	add(c1.ID, "", Indicator(z, t1, t1))
	s.Close()

	// Back to version 2, with the history of a store that had no owners:
	// x's later version by another organisation, y's first without a
	// submitter.
	for _, q := range []string{
		// Versions after 5 are written to run again on a database that
		// has them: only their records go, except those that create
		// tables without IF NOT EXISTS, whose tables go first.
		`DROP TABLE assist_deliveries`, `DROP TABLE poc_challenges`,
		`DROP TABLE notify_deliveries`, `DROP TABLE incident_alerts`, `DROP TABLE incident_events`, `DROP TABLE incident_stages`, `DROP TABLE incidents`,
		`DROP TABLE import_feeds`, `DROP TABLE warning_lists`, `DROP TABLE inactive_objects`,
		`DELETE FROM schema_migrations WHERE version > 5`,
		// Version 5 (peers), then 4 (the change feed).
		`DROP TABLE peer_links`, `DROP TABLE peers`, `DROP TABLE peer_rejections`, `DROP TABLE peer_leases`, // object_provenance: dropped by version 17
		`DELETE FROM schema_migrations WHERE version = 5`,
		`DROP INDEX changes_at`, `ALTER TABLE changes DROP COLUMN type`, `ALTER TABLE changes DROP COLUMN submitter`,
		`ALTER TABLE changes DROP COLUMN tlp`, `ALTER TABLE changes DROP COLUMN recipients`,
		`DELETE FROM schema_migrations WHERE version = 4`,
		`DROP TABLE owners`, `DROP TABLE cursors`, `DROP INDEX objects_markings`, `DROP INDEX statuses_request_ts`,
		`DELETE FROM schema_migrations WHERE version = 3`,
		`UPDATE objects SET submitter = 'org-later' WHERE id = '` + x + `' AND version = (SELECT MAX(version) FROM objects WHERE id = '` + x + `')`,
		`UPDATE objects SET submitter = '' WHERE id = '` + y + `' AND version = (SELECT MIN(version) FROM objects WHERE id = '` + y + `')`,
	} {
		exec(t, q)
	}
	s = reopen(t)
	owners, err := s.ObjectOwners(ctx, []string{x, y, z})
	if err != nil || len(owners) != 2 || owners[x] != "org-first" || owners[y] != "org-y" {
		t.Errorf("backfilled owners = %v, %v", owners, err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping after migration: %v", err)
	}
	exec(t, `INSERT INTO schema_migrations (version, name, applied) VALUES (99, 'future.sql', 0)`)
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping accepted a schema newer than the binary")
	}
}
