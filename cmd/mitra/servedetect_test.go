package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestServeWithDetector runs a detector inside 'mitra serve': an indicator
// POSTed over TAXII reaches it while it runs, a Zeek log dropped into the
// watched directory produces a sighting readable over TAXII, and the
// detector's counters show at /metrics.
func TestServeWithDetector(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped in -short")
	}
	bin, err := buildMitra()
	if err != nil {
		t.Fatal(err)
	}
	data, logs := t.TempDir(), t.TempDir()
	runCLI(t, bin, []string{"MITRA_USER_PASSWORD=alice-password-1"}, "user", "create", "--data", data, "alice")
	col := strings.TrimSpace(runCLI(t, bin, nil, "collection", "create", "--data", data, "--title", "Detections", "--readers", "alice", "--writers", "alice"))
	runCLI(t, bin, nil, "collection", "grant", "--data", data, col, "--read", "--write", "--org", "Default organisation")
	srv := launchServer(t, bin, "--data", data, "--detect-input", logs, "--detect-follow", "--detect-collection", col,
		"--detect-flush", "200ms", "--detect-poll", "200ms", "--detect-progress", "0")
	srv.waitListening(t)
	alice := &client{t: t, base: srv.base, user: "alice", pass: "alice-password-1"}
	// Modified now: the detector's lifecycle (on by default) keeps it.
	mod := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	ind := `{"type":"indicator","spec_version":"2.1","id":"indicator--5b1f0b0d-2a4e-4c59-9d6e-0f7d8c1e2a10","created":"` + mod + `","modified":"` + mod + `","name":"evil domain","pattern":"[domain-name:value = 'evil.example.com']","pattern_type":"stix","valid_from":"2020-01-01T00:00:00Z"}`
	if code, _, body := alice.do("POST", "/api/collections/"+col+"/objects/", []byte(`{"objects":[`+ind+`]}`)); code != http.StatusAccepted {
		t.Fatalf("POST indicator: %d %s", code, body)
	}
	time.Sleep(time.Second) // the detector polls the change log every 200 ms
	zeek, err := os.ReadFile(filepath.Join("..", "..", "internal", "detect", "testdata", "zeek", "dns.log"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(logs, "dns.log"), zeek, 0o600); err != nil {
		t.Fatal(err)
	}
	// Every well-formed query of evil.example.com is counted, in one
	// sighting per minute bucket (latest versions, as served by default);
	// the sample also has a line with a broken timestamp, which is skipped.
	want := 0
	for _, line := range strings.Split(string(zeek), "\n") {
		f := strings.Split(line, "\t")
		if strings.HasPrefix(line, "#") || len(f) <= 9 || f[9] != "evil.example.com" {
			continue
		}
		if _, err := strconv.ParseFloat(f[0], 64); err == nil {
			want++
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	got := 0
	for time.Now().Before(deadline) {
		_, _, body := alice.do("GET", "/api/collections/"+col+"/objects/?match[type]=sighting", nil)
		var env struct{ Objects []map[string]any }
		json.Unmarshal(body, &env)
		got = 0
		for _, o := range env.Objects {
			if o["sighting_of_ref"] != "indicator--5b1f0b0d-2a4e-4c59-9d6e-0f7d8c1e2a10" || len(o["observed_data_refs"].([]any)) == 0 {
				t.Fatalf("sighting = %v", o)
			}
			n, _ := o["count"].(float64)
			got += int(n)
		}
		if got == want {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if want == 0 || got != want {
		t.Fatalf("sightings count %d queries of evil.example.com, want %d\n%s", got, want, srv.logs)
	}
	req, _ := http.NewRequest("GET", srv.base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/metrics without credentials: %d, want 401", resp.StatusCode)
	}
	req.SetBasicAuth("alice", "alice-password-1")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "mitra_detect_") || !strings.Contains(string(body), "go_goroutines") {
		t.Errorf("/metrics: %d\n%.500s", resp.StatusCode, body)
	}
	// The server's own HTTP and ingest metrics are there too.
	for _, want := range []string{
		`mitra_http_requests_total{code="202",endpoint="/api/collections/{collection}/objects/",method="POST"} 1`,
		`mitra_http_request_duration_seconds_count{endpoint="/api/collections/{collection}/objects/",method="GET"}`,
		`mitra_ingest_objects_total{collection="` + col + `",outcome="accepted"} 1`,
		`mitra_auth_throttle_entries`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Liveness and readiness answer without credentials.
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(srv.base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
}
