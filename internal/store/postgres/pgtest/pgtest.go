// Package pgtest gives tests a fresh PostgreSQL schema of their own.
//
// The database is named by MITRA_TEST_POSTGRES (default DefaultDSN). When it
// cannot be reached, tests that need it are skipped with the reason, except
// under CI=true, where they fail: CI must not pass without having run them.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultDSN is the database tests use when MITRA_TEST_POSTGRES is unset.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// BaseDSN is the database tests use.
func BaseDSN() string {
	if v := os.Getenv("MITRA_TEST_POSTGRES"); v != "" {
		return v
	}
	return DefaultDSN
}

// admin is one small pool per test process for creating and dropping
// schemas; err says why the database is not usable.
var admin = sync.OnceValues(func() (*pgxpool.Pool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := pgxpool.ParseConfig(BaseDSN())
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
})

// Available returns nil when the test database can be reached, else why not.
func Available() error {
	_, err := admin()
	return err
}

// InCI reports whether CI=true: an unreachable database then fails tests.
func InCI() bool { return os.Getenv("CI") == "true" }

// Require skips t (fails it under CI=true) when the database is unreachable.
func Require(t testing.TB) {
	t.Helper()
	err := Available()
	if err == nil {
		return
	}
	where := redacted(BaseDSN())
	if InCI() {
		t.Fatalf("PostgreSQL test database %s is unreachable and CI=true, so this test fails instead of skipping: %v", where, err)
	}
	t.Skipf("skipped: PostgreSQL test database %s is unreachable (set MITRA_TEST_POSTGRES to a reachable database): %v", where, err)
}

// NewSchema creates an empty schema with a unique name, drops it (with all
// it holds) when t ends, and returns the DSN of the test database with
// search_path set to it, so that every connection made from the DSN works
// in that schema only.
func NewSchema(t testing.TB) string {
	t.Helper()
	Require(t)
	pool, _ := admin()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "mitra_test_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE SCHEMA `+name); err != nil {
		t.Fatalf("create schema %s: %v", name, err)
	}
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), `DROP SCHEMA `+name+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	dsn, err := WithSearchPath(BaseDSN(), name)
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// WithSearchPath returns dsn with the search_path runtime parameter set.
func WithSearchPath(dsn, schema string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("MITRA_TEST_POSTGRES must be a postgres:// URL, got %q", redacted(dsn))
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// redacted is dsn without its password, for messages.
func redacted(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
