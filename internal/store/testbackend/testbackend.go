// Package testbackend runs a package's tests once per store backend
// (SQLite, PostgreSQL) and opens each test a fresh store on the backend of
// the run.
//
// The backends are named by MITRA_TEST_BACKENDS (default
// "sqlite,postgres"). PostgreSQL is MITRA_TEST_POSTGRES (see pgtest): when
// it is unreachable its run is skipped with a message, or fails under
// CI=true.
package testbackend

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/mitra-cert/mitra/internal/store/postgres"
	"github.com/mitra-cert/mitra/internal/store/postgres/pgtest"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/mitra-cert/mitra/internal/store/sqlstore"
)

// Backend is a store implementation tests run on.
type Backend struct {
	Name string
	// Location returns a new empty place for one test's store (a
	// directory, a DSN), removed when the test ends.
	Location func(t testing.TB) string
	// Open opens (or reopens) the store at a location.
	Open func(ctx context.Context, location string) (*sqlstore.Store, error)
}

// Backends returns every backend.
func Backends() []Backend {
	return []Backend{
		{
			Name:     "sqlite",
			Location: func(t testing.TB) string { return t.TempDir() },
			Open: func(ctx context.Context, dir string) (*sqlstore.Store, error) {
				st, err := sqlite.Open(ctx, dir, sqlite.Options{})
				if err != nil {
					return nil, err
				}
				return st.Store, nil
			},
		},
		{
			Name:     "postgres",
			Location: pgtest.NewSchema,
			Open: func(ctx context.Context, dsn string) (*sqlstore.Store, error) {
				st, err := postgres.Open(ctx, dsn, postgres.Options{})
				if err != nil {
					return nil, err
				}
				return st.Store, nil
			},
		},
	}
}

// NewStore opens a fresh store on b for t, closed when t ends.
func (b Backend) NewStore(t testing.TB) *sqlstore.Store {
	t.Helper()
	st, err := b.Open(context.Background(), b.Location(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// Main runs m once per backend named in MITRA_TEST_BACKENDS, printing
// "backend: NAME" before each run (benchstat reads it as a configuration
// key) and calling use with the backend first; it returns the exit code
// for os.Exit. what names the tests in messages ("the TAXII tests").
func Main(m *testing.M, what string, use func(Backend)) int {
	names := os.Getenv("MITRA_TEST_BACKENDS")
	if names == "" {
		names = "sqlite,postgres"
	}
	all := Backends()
	code := 0
	for _, name := range strings.Split(names, ",") {
		var b *Backend
		for i := range all {
			if all[i].Name == strings.TrimSpace(name) {
				b = &all[i]
			}
		}
		if b == nil {
			fmt.Fprintf(os.Stderr, "MITRA_TEST_BACKENDS: unknown backend %q\n", name)
			return 2
		}
		if b.Name == "postgres" {
			if err := pgtest.Available(); err != nil {
				if pgtest.InCI() {
					fmt.Fprintf(os.Stderr, "FAIL: %s on PostgreSQL cannot run and CI=true: %s unreachable: %v\n", what, pgtest.BaseDSN(), err)
					code = 1
				} else {
					fmt.Printf("backend: postgres skipped: %s unreachable (set MITRA_TEST_POSTGRES): %v\n", pgtest.BaseDSN(), err)
				}
				continue
			}
		}
		use(*b)
		fmt.Printf("backend: %s\n", b.Name)
		if c := m.Run(); c != 0 {
			code = c
		}
	}
	return code
}
