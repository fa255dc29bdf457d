package main

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
)

// TestTAXIIPullPush: 'mitra taxii pull' stores a remote collection in a
// local one (a second run finds nothing new: the cursor was stored), and
// 'mitra taxii push' sends it to another remote collection.
func TestTAXIIPullPush(t *testing.T) {
	const pw = "peer-password-1"
	remote := newRemoteTAXII(t, pw, "Source", "Inbox")
	rst, src, dst := remote.st, remote.colls[0], remote.colls[1]
	ts := httptest.NewServer(remote.srv)
	defer ts.Close()
	remote.push(t, ts.URL, src, pw, 12)

	data := t.TempDir()
	must := mustMitra(t, map[string]string{"MITRA_TAXII_PASSWORD": pw})
	must("org", "create", "--data", data, "Local CERT")
	must("collection", "create", "--data", data, "--title", "Mirror", "--alias", "mirror")
	must("collection", "grant", "--data", data, "mirror", "--read", "--write", "--org", "Local CERT")
	pull := []string{"taxii", "pull", "--data", data, ts.URL + "/taxii2/", "--collection", src.ID, "--into", "mirror", "--user", "peer", "--org", "Local CERT", "--limit", "5"}
	if out := must(pull...); !strings.Contains(out, "pulled 12 objects in 3 pages: 12 added, 0 already stored") {
		t.Errorf("first pull: %s", out)
	}
	if out := must(pull...); !strings.Contains(out, "pulled 0 objects") {
		t.Errorf("second pull: %s", out)
	}
	out := must("taxii", "push", "--data", data, "mirror", "--to", ts.URL+"/api/", "--collection", dst.ID, "--user", "peer", "--org", "Local CERT", "--batch", "5")
	if !strings.Contains(out, "pushed 12 objects in 3 envelopes: 12 accepted, 0 refused") {
		t.Errorf("push: %s", out)
	}
	page, err := rst.QueryObjects(t.Context(), dst.ID, store.Query{Limit: 100})
	if err != nil || len(page.Entries) != 12 {
		t.Errorf("remote inbox holds %d objects, %v", len(page.Entries), err)
	}
	// Wrong password: a clear error, no retry storm.
	if _, _, err := mitra(t, map[string]string{"MITRA_TAXII_PASSWORD": "wrong-password"}, "", pull...); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong password: %v", err)
	}
	if _, _, err := mitra(t, nil, "", "serve", "--data", data, "--tls-client-ca", "ca.pem"); err == nil || !strings.Contains(err.Error(), "--tls-cert") {
		t.Errorf("--tls-client-ca without --tls-cert: %v", err)
	}
}

// TestClientCAConfig: --tls-client-ca asks for client certificates and
// verifies those given against the bundle; a file without a certificate
// is refused.
func TestClientCAConfig(t *testing.T) {
	certFile, _, _ := writeSelfSigned(t, t.TempDir())
	cfg, err := clientCAConfig(certFile)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClientAuth != tls.VerifyClientCertIfGiven || cfg.ClientCAs == nil {
		t.Errorf("client auth %v, CAs %v", cfg.ClientAuth, cfg.ClientCAs)
	}
	bad := filepath.Join(t.TempDir(), "bad.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	if _, err := clientCAConfig(bad); err == nil {
		t.Error("a bundle without certificates accepted")
	}
}

// TestTAXIIPullKill9: a 'mitra taxii pull' killed with SIGKILL while it
// waits for a page is resumed by running it again: every remote object is
// stored exactly once.
func TestTAXIIPullKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped in -short")
	}
	bin, err := buildMitra()
	if err != nil {
		t.Fatal(err)
	}
	const pw = "peer-password-1"
	remote := newRemoteTAXII(t, pw, "Source")
	src, srv := remote.colls[0], remote.srv
	// The third page request waits until the test has killed the client:
	// the first two pages are committed by then.
	var mu sync.Mutex
	pages := 0
	third := make(chan struct{})
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/objects/") {
			mu.Lock()
			pages++
			n := pages
			mu.Unlock()
			if n == 3 {
				close(third)
				select {
				case <-release:
				case <-r.Context().Done():
				}
				return
			}
		}
		srv.ServeHTTP(w, r)
	}))
	defer ts.Close()
	defer close(release)
	remote.push(t, ts.URL, src, pw, 23)
	data := t.TempDir()
	if _, _, err := mitra(t, nil, "", "collection", "create", "--data", data, "--title", "Mirror", "--alias", "mirror"); err != nil {
		t.Fatal(err)
	}
	// The default organisation may write the local collection.
	st, err := sqlite.Open(t.Context(), data, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o, err := st.DefaultOrganisation(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	mirror, err := st.GetCollection(t.Context(), "mirror")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetPartyGrant(t.Context(), mirror.ID, store.GrantOrg, o.ID, true, true); err != nil {
		t.Fatal(err)
	}
	st.Close()
	def := o.ID
	args := []string{"taxii", "pull", "--data", data, ts.URL + "/api/", "--collection", src.ID, "--into", "mirror", "--user", "peer", "--org", def, "--limit", "5"}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "MITRA_TAXII_PASSWORD="+pw)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-third:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the pull never asked for its third page")
	}
	cmd.Process.Kill()
	cmd.Wait()

	out, errOut, err := mitra(t, map[string]string{"MITRA_TAXII_PASSWORD": pw}, "", args...)
	if err != nil {
		t.Fatalf("resumed pull: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "pulled 13 objects") {
		t.Errorf("resumed pull: %s", out)
	}
	st, err = sqlite.Open(t.Context(), data, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	col, err := st.GetCollection(t.Context(), "mirror")
	if err != nil {
		t.Fatal(err)
	}
	page, err := st.QueryObjects(t.Context(), col.ID, store.Query{Versions: store.VersionFilter{All: true}, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range page.Entries {
		seen[e.ID]++
	}
	if len(page.Entries) != 23 || len(seen) != 23 {
		t.Errorf("%d versions of %d objects stored, want 23 of 23", len(page.Entries), len(seen))
	}
}
