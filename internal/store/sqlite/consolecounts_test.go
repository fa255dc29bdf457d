package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/mitra-cert/mitra/internal/store/storetest"
)

// Migration 14 computes the console's counts of the objects stored before
// it, and can run again.
func TestMigrationBackfillsConsoleCounts(t *testing.T) {
	dir := t.TempDir()
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.MigrationBackfillsConsoleCounts(t, func(t testing.TB) store.Store {
		s, err := sqlite.Open(context.Background(), dir, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}, func(t testing.TB, q string) {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if strings.HasPrefix(q, "DELETE FROM schema_migrations") {
			// The version the test goes back to had the search index in
			// this file (versions 11 to 15: migration 15 tunes it,
			// migration 16 moves it to the search file).
			const fts = `CREATE VIRTUAL TABLE IF NOT EXISTS search_text USING fts5(name, description, labels, pattern, tokenize = 'unicode61 remove_diacritics 2')`
			if _, err := db.Exec(fts); err != nil {
				t.Fatal(err)
			}
		}
	})
}
