package sqlite_test

import (
	"strings"
	"testing"

	"github.com/mitra-cert/mitra/internal/store/storetest"
)

// Migration 14 computes the console's counts of the objects stored before
// it, and can run again.
func TestMigrationBackfillsConsoleCounts(t *testing.T) {
	open, exec := migrationFixture(t)
	storetest.MigrationBackfillsConsoleCounts(t, open, func(t testing.TB, q string) {
		exec(t, q)
		if strings.HasPrefix(q, "DELETE FROM schema_migrations") {
			// The version the test goes back to had the search index in
			// this file (versions 11 to 15: migration 15 tunes it,
			// migration 16 moves it to the search file).
			exec(t, `CREATE VIRTUAL TABLE IF NOT EXISTS search_text USING fts5(name, description, labels, pattern, tokenize = 'unicode61 remove_diacritics 2')`)
		}
	})
}
