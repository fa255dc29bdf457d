package search_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/search"
	"github.com/mitra-cert/mitra/internal/store/postgres"
	"github.com/mitra-cert/mitra/internal/store/postgres/pgtest"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
)

// emptyIndexes leaves a PostgreSQL database with its objects but nothing
// in the search indexes: what a database upgraded from an earlier Mitra
// holds when migration 0011 runs. The migration is then run again as
// shipped (it is written to run on a database that has it).
var emptyIndexes = []string{`DELETE FROM search_text`, `DELETE FROM search_refs`}

func migration(t *testing.T, dialect string) string {
	b, err := os.ReadFile(filepath.Join("..", "store", dialect, "migrations", "0011_search.sql"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMigrationIndexesStoredObjects checks that migration 0011 indexes the
// objects stored before it, text and references, on both backends, and
// that it runs again without harm; on SQLite, that a database of that
// layout (the index in the store's file) moves to the search file of
// migration 0016, rebuilt from the objects.
func TestMigrationIndexesStoredObjects(t *testing.T) {
	check := func(t *testing.T, w *world, ind, rep string) {
		p := principal(w.orgID)
		if got := ids(w.search(p, search.Query{Text: "legacy"}).Hits); !slices.Equal(got, []string{ind}) {
			t.Errorf("search after the migration: %v", got)
		}
		g, err := w.svc.Pivot(t.Context(), p, ind, 1)
		if err != nil || !slices.Contains(nodeIDs(g), rep) {
			t.Errorf("pivot after the migration: %+v %v", g, err)
		}
	}
	var ind, rep string
	fill := func(w *world) {
		a := w.org("A", false)
		w.orgID = a
		feed := w.collection("feed", access.TLPGreen, nil, readOrg(a))
		ind = w.add(feed, a, 0, nil, indicator(id("indicator"), "Legacy indicator", "[domain-name:value = 'old.example']"))
		rep = w.add(feed, a, 0, nil, map[string]any{"type": "report", "id": id("report"), "name": "Old", "published": "2026-01-01T00:00:00Z", "object_refs": []string{ind}})
	}
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		st, err := sqlite.Open(t.Context(), dir, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		fill(&world{t: t, st: st})
		st.Close()
		raw, err := sql.Open("sqlite", filepath.Join(dir, sqlite.FileName))
		if err != nil {
			t.Fatal(err)
		}
		// The layout of versions 11 to 15: the index in the store's
		// file (migration 0011 run as shipped indexes the objects), no
		// search file; versions 13 to 16 run again on reopening.
		for _, q := range []string{migration(t, "sqlite"), `DELETE FROM schema_migrations WHERE version >= 13`} {
			if _, err := raw.Exec(q); err != nil {
				t.Fatal(q, err)
			}
		}
		var n int
		if err := raw.QueryRow(`SELECT count(*) FROM search_text`).Scan(&n); err != nil || n != 2 {
			t.Fatalf("rows of the old layout's index: %d, %v", n, err)
		}
		raw.Close()
		files, _ := filepath.Glob(filepath.Join(dir, sqlite.SearchFileName+"*"))
		for _, f := range files {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
		st, err = sqlite.Open(t.Context(), dir, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		w := &world{t: t, st: st, svc: search.New(search.Config{Store: st})}
		w.orgID = orgOf(t, w, "A")
		check(t, w, ind, rep)
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.NewSchema(t)
		st, err := postgres.Open(t.Context(), dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		fill(&world{t: t, st: st})
		st.Close()
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range append(emptyIndexes, migration(t, "postgres")) {
			if _, err := conn.Exec(context.Background(), q); err != nil {
				t.Fatal(q, err)
			}
		}
		conn.Close(context.Background())
		st, err = postgres.Open(t.Context(), dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		w := &world{t: t, st: st, svc: search.New(search.Config{Store: st})}
		w.orgID = orgOf(t, w, "A")
		check(t, w, ind, rep)
	})
}

func orgOf(t *testing.T, w *world, name string) string {
	o, err := w.st.GetOrganisation(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return o.ID
}
