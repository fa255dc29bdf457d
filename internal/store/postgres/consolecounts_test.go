package postgres_test

import (
	"context"
	"testing"

	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/postgres/pgtest"
	"github.com/mitra-cert/mitra/internal/store/storetest"
)

// Migration 14 computes the console's counts of the objects stored before
// it, and can run again.
func TestMigrationBackfillsConsoleCounts(t *testing.T) {
	dsn := pgtest.NewSchema(t)
	conn := rawConn(t, dsn)
	storetest.MigrationBackfillsConsoleCounts(t, func(t testing.TB) store.Store { return openDSN(t, dsn) }, func(t testing.TB, q string) {
		if _, err := conn.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	})
}
