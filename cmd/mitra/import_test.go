package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mitra import reads each input in its guessed format, prints the report,
// and exits non-zero when something was rejected; a second run adds
// nothing. Feeds and warning lists are managed from the command line.
func TestImportAndFeedCommands(t *testing.T) {
	data := t.TempDir()
	td := filepath.Join("..", "..", "internal", "feeds", "testdata", "import")
	pw := map[string]string{"MITRA_USER_PASSWORD": "a-long-password"}
	if _, _, err := mitra(t, pw, "", "user", "create", "--data", data, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := mitra(t, nil, "", "collection", "create", "--data", data, "--title", "Intel", "--alias", "intel", "--readers", "alice", "--writers", "alice"); err != nil {
		t.Fatal(err)
	}
	out, _, err := mitra(t, nil, "", "import", "--data", data, "--into", "intel", "--as", "alice", "--tlp", "green",
		filepath.Join(td, "misp-event.json"), filepath.Join(td, "stix20-bundle.json"), filepath.Join(td, "misp-feed"))
	if err != nil || !strings.Contains(out, "misp-event.json: 23 received, 23 added") || !strings.Contains(out, "stix20-bundle.json: 8 received, 8 added") ||
		!strings.Contains(out, "misp-feed: 15 received, 15 added") || !strings.Contains(out, `inactive indicator--a1000000-0000-4000-8000-000000000005: 10.20.30.40 is on warning list "special-purpose-addresses"`) {
		t.Fatalf("import: %v\n%s", err, out)
	}
	out, _, err = mitra(t, nil, "", "import", "--data", data, "--into", "intel", "--as", "alice", "--tlp", "green", filepath.Join(td, "misp-event.json"))
	if err != nil || !strings.Contains(out, "23 received, 0 added, 0 updated, 23 unchanged") {
		t.Errorf("second import: %v\n%s", err, out)
	}
	out, _, err = mitra(t, nil, "", "import", "--data", data, "--into", "intel", "--as", "alice", filepath.Join(td, "blocklist.txt"))
	if exitCode(err) == 0 || !strings.Contains(out, `rejected line 9: "localhost"`) {
		t.Errorf("a list with a bad line: %v\n%s", err, out)
	}
	ranges := filepath.Join(t.TempDir(), "ranges.txt")
	if err := os.WriteFile(ranges, []byte("81.2.69.0/24\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, _, err := mitra(t, nil, "", "feed", "warninglist", "add", "--data", data, "own", ranges); err != nil || !strings.Contains(out, "own (cidr): 1 entries") {
		t.Fatalf("warninglist add: %v %s", err, out)
	}
	if _, _, err := mitra(t, nil, "x\n", "import", "--data", data, "--into", "intel", "--as", "alice", "-"); err == nil {
		t.Error("stdin without --format accepted")
	}
	out, _, err = mitra(t, nil, "81.2.69.5\n", "import", "--data", data, "--into", "intel", "--format", "text", "--as", "alice", "-")
	if err != nil || !strings.Contains(out, `on warning list "own"`) {
		t.Errorf("import against a stored list: %v\n%s", err, out)
	}
	if out, _, _ := mitra(t, nil, "", "feed", "inactive", "--data", data, "intel"); !strings.Contains(out, "81.2.69.5") || !strings.Contains(out, "10.20.30.40") {
		t.Errorf("feed inactive:\n%s", out)
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == `"1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"1"`)
		_, _ = w.Write([]byte("evil-feed.com\n"))
	}))
	defer srv.Close()
	if out, _, err := mitra(t, nil, "", "feed", "add", "--data", data, "abuse", srv.URL+"/list.txt", "--into", "intel", "--as", "alice", "--format", "text", "--every", "1h"); err != nil {
		t.Fatalf("feed add: %v %s", err, out)
	}
	if out, _, err := mitra(t, nil, "", "feed", "run", "--data", data, "abuse"); err != nil || !strings.Contains(out, "1 added") {
		t.Errorf("feed run: %v %s", err, out)
	}
	if out, _, err := mitra(t, nil, "", "feed", "run", "--data", data, "abuse"); err != nil || !strings.Contains(out, "not modified") {
		t.Errorf("second feed run: %v %s", err, out)
	}
	if out, _, err := mitra(t, nil, "", "feed", "list", "--data", data); err != nil || !strings.Contains(out, "abuse") || !strings.Contains(out, "not modified") {
		t.Errorf("feed list: %v %s", err, out)
	}
	if _, _, err := mitra(t, nil, "", "feed", "remove", "--data", data, "abuse"); err != nil {
		t.Error(err)
	}
}
