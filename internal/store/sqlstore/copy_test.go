package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/postgres"
	"github.com/mitra-cert/mitra/internal/store/postgres/pgtest"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/mitra-cert/mitra/internal/store/sqlstore"
)

// readAll reads a table of s in key order.
func readAll(t *testing.T, s *sqlstore.Store, table string) [][]any {
	t.Helper()
	var rows [][]any
	if _, err := s.ReadTable(context.Background(), table, func(p [][]any) error { rows = append(rows, p...); return nil }); err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestCopyPages copies tables of more than one page, with composite text
// keys (mixed case, '-' and '_': ordered differently by bytes and by a
// locale's collation, when the test database has one), from SQLite to
// PostgreSQL and back, and finds the same rows and checksums.
func TestCopyPages(t *testing.T) {
	ctx := context.Background()
	src, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	c := &store.Collection{Title: "c"}
	if err := src.CreateCollection(ctx, c); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	n := 2*sqlstore.CopyPage + 17
	var ps []store.Provenance
	var rs []store.Rejection
	for i := range n {
		// Upper and lower case, '-' and '_': ordered differently by bytes
		// and by en_US.
		id := fmt.Sprintf("%s--%05d", []string{"Indicator", "indicator", "x_y", "x-y"}[i%4], i/4)
		ps = append(ps, store.Provenance{ObjectID: id, Version: fmt.Sprint(i % 3), Link: []string{"L", "l", "_l"}[i%3], Peer: "p", Received: at.Add(time.Duration(i))})
		rs = append(rs, store.Rejection{Link: "l", Peer: "p", Kind: "invalid", ObjectID: id, Version: "v", Reason: "r", At: at})
	}
	err = src.Update(ctx, c.ID, func(ctx context.Context, tx store.Tx) error {
		ftx := tx.(store.FederationTx)
		if err := ftx.RecordProvenance(ctx, ps); err != nil {
			return err
		}
		return ftx.RecordRejections(ctx, rs)
	})
	if err != nil {
		t.Fatal(err)
	}

	pg, err := postgres.Open(ctx, pgtest.NewSchema(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	back, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	var stats [][]sqlstore.TableStat
	for _, hop := range []struct{ dst, src *sqlstore.Store }{{pg.SQLStore(), src.SQLStore()}, {back.SQLStore(), pg.SQLStore()}} {
		plan, err := sqlstore.PlanCopy(ctx, hop.dst, hop.src)
		if err != nil {
			t.Fatal(err)
		}
		var copied int64
		if err := plan.Copy(ctx, hop.dst, hop.src, func(n int64) { copied += n }); err != nil {
			t.Fatal(err)
		}
		want, err := plan.Stats(ctx, hop.src)
		if err != nil {
			t.Fatal(err)
		}
		var rows int64
		for _, st := range want {
			rows += st.Rows
		}
		// n rejections, n provenance rows by id, and their deliveries.
		if copied != rows || rows <= 2*int64(n) {
			t.Errorf("copied %d rows, want %d (more than %d)", copied, rows, 2*n)
		}
		got, err := plan.Stats(ctx, hop.dst)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("stats after the copy:\n got %+v\nwant %+v", got, want)
		}
		stats = append(stats, got)
		// A second copy finds the target's tables not empty.
		if _, err := sqlstore.PlanCopy(ctx, hop.dst, hop.src); err == nil {
			t.Error("PlanCopy into a filled target succeeded")
		}
	}
	if !reflect.DeepEqual(stats[0], stats[1]) {
		t.Errorf("checksums on PostgreSQL %+v, back on SQLite %+v", stats[0], stats[1])
	}
	for _, table := range []string{"provenance_versions", "peer_rejections"} {
		want, got := readAll(t, src.SQLStore(), table), readAll(t, back.SQLStore(), table)
		if len(want) != n || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %d rows back, want the %d rows of the source", table, len(got), len(want))
		}
	}
	for _, p := range []store.Provenance{ps[0], ps[n/2], ps[n-1]} {
		want, err := src.ObjectProvenance(ctx, p.ObjectID)
		if err != nil || len(want) != 1 {
			t.Fatalf("provenance of %s in the source: %+v, %v", p.ObjectID, want, err)
		}
		if got, err := back.ObjectProvenance(ctx, p.ObjectID); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("provenance of %s back: %+v, %v; want %+v", p.ObjectID, got, err, want)
		}
	}
}

// TestPlanCopyRefusesOtherSchemaVersion: stores at different schema
// versions are refused before anything is copied.
func TestPlanCopyRefusesOtherSchemaVersion(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src, err := sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if _, err := sqlstore.PlanCopy(ctx, dst.SQLStore(), src.SQLStore()); err != nil {
		t.Fatalf("same versions: %v", err)
	}
	// The source as an older mitra left it: its last migration not
	// recorded.
	raw, err := sql.Open("sqlite", filepath.Join(dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)`); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlstore.PlanCopy(ctx, dst.SQLStore(), src.SQLStore()); !errors.Is(err, sqlstore.ErrSchemaDiffers) {
		t.Errorf("PlanCopy across schema versions: %v", err)
	}
}
