package notify_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/notify"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/testbackend"
)

// current is the store backend of the run in progress.
var current testbackend.Backend

// TestMain runs the package's tests once per backend named in
// MITRA_TEST_BACKENDS (see testbackend).
func TestMain(m *testing.M) {
	os.Exit(testbackend.Main(m, "the notify tests", func(b testbackend.Backend) { current = b }))
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
