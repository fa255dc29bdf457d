package postgres_test

import (
	"context"
	"testing"

	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/postgres/pgtest"
	"github.com/mitra-cert/mitra/internal/store/storetest"
)

// migrationFixture gives migration tests a new schema: open opens (again)
// the store on it, exec runs SQL on it outside the store, to take the
// schema back to an older version.
func migrationFixture(t *testing.T) (open func(testing.TB) store.Store, exec func(testing.TB, string)) {
	dsn := pgtest.NewSchema(t)
	conn := rawConn(t, dsn)
	open = func(t testing.TB) store.Store { return openDSN(t, dsn) }
	exec = func(t testing.TB, q string) {
		if _, err := conn.Exec(context.Background(), q); err != nil {
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
	storetest.ProvenanceMigration(t, open, exec, `DROP TRIGGER provenance_keep ON objects`)
}
