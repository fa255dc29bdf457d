package notify_test

import (
	"sync"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/notify"
	"github.com/mitra-cert/mitra/internal/store"
)

// TestClaimsAreExclusive: servers sharing one database never hold the same
// notification at once, and every due one is held by someone.
func TestClaimsAreExclusive(t *testing.T) {
	st := current.NewStore(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	var ds []store.Notification
	for range 40 {
		d, err := notify.Webhook("https://hooks.example/x", notify.Message{Event: "e"})
		if err != nil {
			t.Fatal(err)
		}
		notify.Prepare(&d, now)
		ds = append(ds, d)
	}
	if err := st.EnqueueNotifications(t.Context(), ds...); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	held := map[string]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				got, err := st.ClaimNotifications(t.Context(), now, time.Minute, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, d := range got {
					held[d.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(held) != len(ds) {
		t.Fatalf("%d of %d notifications claimed", len(held), len(ds))
	}
	for id, n := range held {
		if n != 1 {
			t.Fatalf("%s claimed %d times", id, n)
		}
	}
	// Not due yet: not claimed.
	d, _ := notify.Webhook("https://hooks.example/x", notify.Message{Event: "later"})
	notify.Prepare(&d, now.Add(time.Hour))
	if err := st.EnqueueNotifications(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if got, err := st.ClaimNotifications(t.Context(), now.Add(2*time.Minute), time.Minute, 100); err != nil || len(got) != 40 {
		t.Fatalf("after the leases: %d claimed, %v; want the 40 whose leases passed, not the later one", len(got), err)
	}
	// Ids are unique.
	if err := st.EnqueueNotifications(t.Context(), d); err == nil {
		t.Fatal("the same notification was queued twice")
	}
}
