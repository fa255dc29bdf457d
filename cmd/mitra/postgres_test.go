package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/store/postgres/pgtest"
)

// TestTwoServersOnePostgres runs two `mitra serve` processes on one
// PostgreSQL database: they start at the same time on an empty database,
// writers POST through both while a reader pages by added_after through
// one of them, and the reader sees every object exactly once.
func TestTwoServersOnePostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped in -short")
	}
	dsn := pgtest.NewSchema(t)
	bin, err := buildMitra()
	if err != nil {
		t.Fatal(err)
	}
	// Both first starts at once: one migrates and creates the admin user,
	// the other waits for the migration and finds the user.
	a := launchServer(t, bin, "--store", dsn)
	b := launchServer(t, bin, "--store", dsn)
	a.waitListening(t)
	b.waitListening(t)
	created := strings.Count(a.logs.String()+b.logs.String(), "Created user 'admin'")
	if created != 1 {
		t.Errorf("%d servers report creating the admin user, want 1:\n%s\n%s", created, a.logs, b.logs)
	}

	runCLI(t, bin, []string{"MITRA_USER_PASSWORD=alice-password-1"}, "user", "create", "--store", dsn, "alice")
	col := strings.TrimSpace(runCLI(t, bin, nil, "collection", "create", "--store", dsn, "--title", "Shared", "--readers", "alice", "--writers", "alice"))

	const writers, posts, per = 4, 10, 50
	posted := make(chan []string, writers*posts)
	errc := make(chan error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		base := a.base
		if w%2 == 1 {
			base = b.base
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range posts {
				env, ids := envelope(per)
				if err := postEnvelope(base, col, env); err != nil {
					errc <- err
					return
				}
				posted <- ids
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	reader := &client{t: t, base: a.base, user: "alice", pass: "alice-password-1"}
	seen := map[string]int{}
	after := ""
	finished := false
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		q := url.Values{"limit": {"40"}}
		if after != "" {
			q.Set("added_after", after)
		}
		code, h, body := reader.do("GET", "/api/collections/"+col+"/objects/?"+q.Encode(), nil)
		if code != 200 {
			t.Fatalf("GET objects: %d %s", code, body)
		}
		var env struct {
			More    bool `json:"more"`
			Objects []struct {
				ID string `json:"id"`
			} `json:"objects"`
		}
		if err := json.Unmarshal(body, &env); err != nil {
			t.Fatal(err)
		}
		for _, o := range env.Objects {
			seen[o.ID]++
		}
		if last := h.Get("X-TAXII-Date-Added-Last"); last != "" {
			after = last
		}
		if !env.More {
			if finished {
				break
			}
			select {
			case <-done:
				finished = true // one more pass after the last write
			default:
				time.Sleep(2 * time.Millisecond)
			}
		}
	}
	if !finished {
		t.Fatal("writers did not finish in time")
	}
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	close(posted)
	total := 0
	for ids := range posted {
		for _, id := range ids {
			total++
			if seen[id] != 1 {
				t.Errorf("%s seen %d times by the paginating reader", id, seen[id])
			}
		}
	}
	if total != writers*posts*per || len(seen) != total {
		t.Errorf("posted %d objects, reader saw %d distinct, want %d", total, len(seen), writers*posts*per)
	}
}

// postEnvelope POSTs env as alice and checks that every object succeeded.
func postEnvelope(base, col string, env []byte) error {
	req, err := http.NewRequest("POST", base+"/api/collections/"+col+"/objects/", bytes.NewReader(env))
	if err != nil {
		return err
	}
	req.SetBasicAuth("alice", "alice-password-1")
	req.Header.Set("Accept", "application/taxii+json;version=2.1")
	req.Header.Set("Content-Type", "application/taxii+json;version=2.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var st struct {
		Status       string `json:"status"`
		FailureCount int    `json:"failure_count"`
	}
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(body, &st) != nil || st.Status != "complete" || st.FailureCount != 0 {
		return fmt.Errorf("POST to %s: %d %s", base, resp.StatusCode, body)
	}
	return nil
}
