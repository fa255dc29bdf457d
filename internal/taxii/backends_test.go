package taxii_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/postgres"
	"github.com/mitra-cert/mitra/internal/store/postgres/pgtest"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
)

// backend is a store implementation the TAXII tests and benchmarks run on.
type backend struct {
	name string
	// location returns a new empty place for one test's store (a directory,
	// a DSN), removed when the test ends.
	location func(t testing.TB) string
	// open opens (or reopens) the store at location.
	open func(ctx context.Context, location string) (store.Store, error)
}

var backends = []backend{
	{
		name:     "sqlite",
		location: func(t testing.TB) string { return t.TempDir() },
		open: func(ctx context.Context, dir string) (store.Store, error) {
			return sqlite.Open(ctx, dir, sqlite.Options{})
		},
	},
	{
		name:     "postgres",
		location: pgtest.NewSchema,
		open: func(ctx context.Context, dsn string) (store.Store, error) {
			return postgres.Open(ctx, dsn, postgres.Options{})
		},
	},
}

// current is the backend of the run in progress.
var current = backends[0]

// TestMain runs every test and benchmark of the package once per backend
// named in MITRA_TEST_BACKENDS (default "sqlite,postgres"), printing
// "backend: NAME" before each run (benchstat reads it as a configuration
// key). PostgreSQL is MITRA_TEST_POSTGRES (see pgtest); when it is
// unreachable its run is skipped with a message, or fails under CI=true.
func TestMain(m *testing.M) {
	names := os.Getenv("MITRA_TEST_BACKENDS")
	if names == "" {
		names = "sqlite,postgres"
	}
	code := 0
	for _, name := range strings.Split(names, ",") {
		var b *backend
		for i := range backends {
			if backends[i].name == strings.TrimSpace(name) {
				b = &backends[i]
			}
		}
		if b == nil {
			fmt.Fprintf(os.Stderr, "MITRA_TEST_BACKENDS: unknown backend %q\n", name)
			os.Exit(2)
		}
		if b.name == "postgres" {
			if err := pgtest.Available(); err != nil {
				if pgtest.InCI() {
					fmt.Fprintf(os.Stderr, "FAIL: the TAXII tests on PostgreSQL cannot run and CI=true: %s unreachable: %v\n", pgtest.BaseDSN(), err)
					code = 1
				} else {
					fmt.Printf("backend: postgres skipped: %s unreachable (set MITRA_TEST_POSTGRES): %v\n", pgtest.BaseDSN(), err)
				}
				continue
			}
		}
		current = *b
		fmt.Printf("backend: %s\n", b.name)
		if c := m.Run(); c != 0 {
			code = c
		}
	}
	os.Exit(code)
}
