package notify_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/notify"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/postgres"
	"github.com/mitra-cert/mitra/internal/store/postgres/pgtest"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
)

// queueStore is a store the queue runs on.
type queueStore interface {
	notify.Store
	Close() error
}

type backend struct {
	name string
	open func(t testing.TB) queueStore
}

var backends = []backend{
	{"sqlite", func(t testing.TB) queueStore {
		st, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
	{"postgres", func(t testing.TB) queueStore {
		st, err := postgres.Open(context.Background(), pgtest.NewSchema(t), postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
}

var current = backends[0]

// TestMain runs the package's tests once per backend named in
// MITRA_TEST_BACKENDS (default "sqlite,postgres"); PostgreSQL is skipped
// with a message when unreachable, and fails under CI=true.
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
					fmt.Fprintf(os.Stderr, "FAIL: the notify tests on PostgreSQL cannot run and CI=true: %v\n", err)
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

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func list(t *testing.T, st notify.Store) []store.Notification {
	t.Helper()
	ds, err := st.ListNotifications(context.Background(), store.NotificationFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}
