package postgres_test

import (
	"testing"

	"github.com/mitra-cert/mitra/internal/store/storetest"
)

// Migration 14 computes the console's counts of the objects stored before
// it, and can run again.
func TestMigrationBackfillsConsoleCounts(t *testing.T) {
	open, exec := migrationFixture(t)
	storetest.MigrationBackfillsConsoleCounts(t, open, exec)
}
