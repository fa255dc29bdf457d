package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/mitra-cert/mitra/internal/store/storetest"
)

func open(t testing.TB) store.Store {
	s, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, open)
}

func TestReopenKeepsData(t *testing.T) {
	dir := t.TempDir()
	storetest.ReopenKeepsData(t, func(t testing.TB) store.Store {
		s, err := sqlite.Open(context.Background(), dir, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// Two handles on one file, as a running server and a CLI command have: a
// change made through one is visible through the other at once.
func TestTwoHandlesOneFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, err := sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.CreateUser(ctx, &store.User{Name: "late", Role: "analyst", PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetUser(ctx, "late"); err != nil {
		t.Errorf("user created by the other handle not visible: %v", err)
	}
}

func TestSyncOption(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{Sync: "normal"})
	if err != nil {
		t.Fatalf("sync=normal: %v", err)
	}
	s.Close()
	if _, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{Sync: "sometimes"}); err == nil {
		t.Error("sync=sometimes accepted")
	}
}

// A database made by the first migration runner (schema_migrations with
// version and applied only) upgrades in place: data kept, records get
// names and checksums. Afterwards a changed or unknown migration record
// makes Open refuse the database.
func TestUpgradeFirstRunnerDatabase(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	raw, err := sql.Open("sqlite", filepath.Join(dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	files, err := filepath.Glob("migrations/000[12]_*.sql")
	if err != nil || len(files) != 2 {
		t.Fatalf("migrations: %v %v", files, err)
	}
	// What the first runner did: run 0001 and 0002, record version and time.
	if _, err := raw.Exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec(string(body)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if _, err := raw.Exec(`INSERT INTO schema_migrations (version, applied) VALUES (?, 1)`, i+1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := raw.Exec(`INSERT INTO collections (id, title, created) VALUES ('00000000-0000-4000-8000-000000000001', 'old', 1)`); err != nil {
		t.Fatal(err)
	}
	s, err := sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		t.Fatalf("open a first-runner database: %v", err)
	}
	if c, err := s.GetCollection(ctx, "00000000-0000-4000-8000-000000000001"); err != nil || c.Title != "old" {
		t.Errorf("collection after upgrade: %+v, %v", c, err)
	}
	s.Close()
	var unsummed int
	if err := raw.QueryRow(`SELECT count(*) FROM schema_migrations WHERE checksum = '' OR name = ''`).Scan(&unsummed); err != nil {
		t.Fatal(err)
	}
	if unsummed != 0 {
		t.Errorf("%d migration records without name or checksum after the upgrade", unsummed)
	}

	if _, err := raw.Exec(`UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.Open(ctx, dir, sqlite.Options{}); err == nil || !strings.Contains(err.Error(), "differs") {
		t.Errorf("open with a changed migration: %v, want a refusal", err)
	}
	if _, err := raw.Exec(`UPDATE schema_migrations SET checksum = '' WHERE version = 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`INSERT INTO schema_migrations (version, applied) VALUES (999, 0)`); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.Open(ctx, dir, sqlite.Options{}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("open of a newer schema: %v, want a refusal", err)
	}
}
