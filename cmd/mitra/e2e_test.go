package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
)

// buildMitra compiles the binary once per test run.
var buildMitra = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "mitra-e2e-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "mitra")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

type proc struct {
	cmd   *exec.Cmd
	base  string // http://host:port
	done  chan error
	found chan string // the base URL, once printed
	logs  *logBuffer
}

// logBuffer collects a server's standard error: the goroutine reading
// the pipe writes while the test reads.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var listenRE = regexp.MustCompile(`listening on (https?://[^/\s]+)/taxii2/`)

// startServer runs `mitra serve` on a free loopback port.
func startServer(t *testing.T, bin, data string) *proc {
	t.Helper()
	p := launchServer(t, bin, "--data", data)
	p.waitListening(t)
	return p
}

// launchServer starts `mitra serve` on a free loopback port with the extra
// store arguments; waitListening waits until it listens.
func launchServer(t *testing.T, bin string, storeArgs ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--log-level", "warn"}, storeArgs...)...)
	cmd.Env = append(os.Environ(), "MITRA_ADMIN_PASSWORD=admin-password-1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan error, 1), logs: &logBuffer{}, found: make(chan string, 1)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.logs.WriteString(line + "\n")
			if m := listenRE.FindStringSubmatch(line); m != nil {
				p.found <- m[1]
			}
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	return p
}

func (p *proc) waitListening(t *testing.T) {
	t.Helper()
	select {
	case p.base = <-p.found:
	case err := <-p.done:
		t.Fatalf("server exited before listening: %v\n%s", err, p.logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not print its URL\n%s", p.logs)
	}
}

func runCLI(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("mitra %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.String()
}

type client struct {
	t          *testing.T
	base, user string
	pass       string
}

func (c *client) do(method, path string, body []byte) (int, http.Header, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.SetBasicAuth(c.user, c.pass)
	req.Header.Set("Accept", "application/taxii+json;version=2.1")
	if body != nil {
		req.Header.Set("Content-Type", "application/taxii+json;version=2.1")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// readAll pages through a collection, by next or by added_after.
func (c *client) readAll(col string, byNext bool) []string {
	c.t.Helper()
	var ids []string
	q := url.Values{"limit": {"40"}}
	for {
		code, h, body := c.do("GET", "/api/collections/"+col+"/objects/?"+q.Encode(), nil)
		if code != 200 {
			c.t.Fatalf("GET objects: %d %s", code, body)
		}
		var env struct {
			More    bool              `json:"more"`
			Next    string            `json:"next"`
			Objects []json.RawMessage `json:"objects"`
		}
		if err := json.Unmarshal(body, &env); err != nil {
			c.t.Fatal(err)
		}
		for _, o := range env.Objects {
			var h struct{ ID string }
			json.Unmarshal(o, &h)
			ids = append(ids, h.ID)
		}
		if !env.More {
			return ids
		}
		if byNext {
			q.Set("next", env.Next)
		} else {
			q.Set("added_after", h.Get("X-TAXII-Date-Added-Last"))
		}
	}
}

func envelope(n int) ([]byte, []string) {
	var objs []string
	var ids []string
	for i := 0; i < n; i++ {
		id := "indicator--" + uuid.NewString()
		ids = append(ids, id)
		objs = append(objs, fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":%q,"created":"2025-01-01T00:00:00.000Z","modified":"2025-01-01T00:00:00.000Z","name":"ioc %d","pattern":"[ipv4-addr:value = '198.51.100.%d']","pattern_type":"stix","valid_from":"2025-01-01T00:00:00Z","x_mitra_test":{"n":%d}}`, id, i, i%250, i))
	}
	return []byte(`{"objects":[` + strings.Join(objs, ",") + `]}`), ids
}

// TestEndToEnd runs a real TAXII 2.1 exchange against the mitra binary:
// POST, paginated reads, kill -9, restart, read again: nothing lost.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped in -short")
	}
	bin, err := buildMitra()
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	srv := startServer(t, bin, data)
	if !strings.Contains(srv.logs.String(), "Created user 'admin'") {
		t.Errorf("first start did not report the admin user:\n%s", srv.logs)
	}

	// Administration while the server runs, on the same store.
	runCLI(t, bin, []string{"MITRA_USER_PASSWORD=alice-password-1"}, "user", "create", "--data", data, "alice")
	out := runCLI(t, bin, nil, "collection", "create", "--data", data, "--title", "E2E", "--readers", "alice", "--writers", "alice")
	col := strings.TrimSuffix(out, "\n")
	if _, err := uuid.Parse(col); err != nil || strings.Count(out, "\n") != 1 {
		t.Fatalf("collection create printed %q, want only the id", out)
	}
	alice := &client{t: t, base: srv.base, user: "alice", pass: "alice-password-1"}
	if code, _, body := alice.do("GET", "/api/collections/"+col+"/", nil); code != 200 {
		t.Fatalf("running server does not see the new collection: %d %s", code, body)
	}

	env, ids := envelope(250)
	code, _, body := alice.do("POST", "/api/collections/"+col+"/objects/", env)
	if code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", code, body)
	}
	var st struct {
		ID           string `json:"id"`
		Status       string `json:"status"`
		SuccessCount int    `json:"success_count"`
	}
	json.Unmarshal(body, &st)
	if st.SuccessCount != 250 || st.Status != "complete" {
		t.Fatalf("status = %s", body)
	}
	check := func(got []string, when string) {
		t.Helper()
		if strings.Join(got, ",") != strings.Join(ids, ",") {
			t.Fatalf("%s: read %d objects, want the %d posted, in order", when, len(got), len(ids))
		}
	}
	check(alice.readAll(col, true), "before kill, by next")

	// kill -9 right after the 202: the objects were committed before it.
	env2, ids2 := envelope(50)
	if code, _, body := alice.do("POST", "/api/collections/"+col+"/objects/", env2); code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", code, body)
	}
	ids = append(ids, ids2...)
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-srv.done

	srv2 := startServer(t, bin, data)
	if strings.Contains(srv2.logs.String(), "Created user 'admin'") {
		t.Error("restart created the admin user again")
	}
	alice.base = srv2.base
	check(alice.readAll(col, false), "after kill -9 and restart, by added_after")
	if code, _, body := alice.do("GET", "/api/status/"+st.ID+"/", nil); code != 200 || !bytes.Contains(body, []byte(`"success_count":250`)) {
		t.Errorf("status after restart: %d %s", code, body)
	}

	// Graceful shutdown on SIGTERM exits cleanly.
	if err := srv2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-srv2.done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, srv2.logs)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("server did not stop on SIGTERM")
	}
}
