package postgres_test

import (
	"context"
	"testing"

	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/postgres/pgtest"
	"github.com/mitra-cert/mitra/internal/store/storetest"
)

// A store migrated from version 2 gets the owners of its objects; Ping
// tells a schema newer than the binary.
func TestMigrationBackfillsOwnersAndPing(t *testing.T) {
	dsn := pgtest.NewSchema(t)
	conn := rawConn(t, dsn)
	storetest.MigrationBackfillsOwners(t, func(t testing.TB) store.Store { return openDSN(t, dsn) }, func(t testing.TB, q string) {
		if _, err := conn.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	})
}

// Provenance recorded before migration 17 reads the same after it.
func TestProvenanceMigration(t *testing.T) {
	dsn := pgtest.NewSchema(t)
	conn := rawConn(t, dsn)
	storetest.ProvenanceMigration(t, func(t testing.TB) store.Store { return openDSN(t, dsn) }, func(t testing.TB, q string) {
		if _, err := conn.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}, `DROP TRIGGER provenance_keep ON objects`)
}
