package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/mitra-cert/mitra/internal/store/storetest"
)

// migrationFixture opens a store in a new directory for migration tests:
// open opens (again) the store, exec runs SQL on the same file outside it,
// to take the schema back to an older version.
func migrationFixture(t *testing.T) (open func(testing.TB) store.Store, exec func(testing.TB, string)) {
	dir := t.TempDir()
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	open = func(t testing.TB) store.Store {
		s, err := sqlite.Open(context.Background(), dir, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	exec = func(t testing.TB, q string) {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return open, exec
}

// A store migrated from version 2 gets the owners of its objects; Ping
// tells a schema newer than the binary.
func TestMigrationBackfillsOwnersAndPing(t *testing.T) {
	open, exec := migrationFixture(t)
	storetest.MigrationBackfillsOwners(t, open, exec)
}

// Provenance recorded before migration 17 reads the same after it.
func TestProvenanceMigration(t *testing.T) {
	open, exec := migrationFixture(t)
	storetest.ProvenanceMigration(t, open, exec, `DROP TRIGGER provenance_keep`)
}
