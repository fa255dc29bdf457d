package main

import (
	"encoding/base64"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
)

// TestPeerCommands: 'mitra peer add' stores a peer with sealed credentials
// and its links, 'peer sync' runs them (a second run finds nothing new),
// 'peer show' tells the last success and the rejections, 'peer list' and
// 'peer remove' manage them; without the key, add and sync say so.
func TestPeerCommands(t *testing.T) {
	const pw = "peer-password-2"
	remote := newRemoteTAXII(t, pw, "Source")
	src := remote.colls[0]
	ts := httptest.NewServer(remote.srv)
	defer ts.Close()
	objs := remote.push(t, ts.URL, src, pw, 7)
	data := t.TempDir()
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	envs := map[string]string{"MITRA_PEER_KEY": key, "MITRA_PEER_PASSWORD": pw}
	must := mustMitra(t, envs)
	must("org", "create", "--data", data, "Remote CERT")
	must("collection", "create", "--data", data, "--title", "Mirror", "--alias", "mirror")
	must("collection", "grant", "--data", data, "mirror", "--read", "--write", "--org", "Remote CERT")
	add := []string{"peer", "add", "--data", data, "remote", "--url", ts.URL + "/api/", "--org", "Remote CERT", "--user", "peer", "--pull", src.ID + "=mirror"}
	if _, _, err := mitra(t, map[string]string{"MITRA_PEER_PASSWORD": pw}, "", add...); err == nil || !strings.Contains(err.Error(), "MITRA_PEER_KEY") {
		t.Errorf("peer add without the key: %v", err)
	}
	must(add...)
	// Indicator 1 is already here, owned by a local organisation: the
	// peer's other version of it is refused, and peer show says why.
	lst, err := sqlite.Open(t.Context(), data, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mirror, _ := lst.GetCollection(t.Context(), "mirror")
	def, _ := lst.DefaultOrganisation(t.Context())
	old := strings.ReplaceAll(string(objs[0]), "2025-01-01T00:00:00.000Z", "2024-01-01T00:00:00.000Z")
	if _, err := lst.AddObjects(t.Context(), mirror.ID, []store.Object{{ID: "indicator--00000000-0000-4000-8000-000000000001", Type: "indicator", SpecVersion: "2.1",
		Version: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), VersionRaw: "2024-01-01T00:00:00.000Z", Raw: []byte(old), Submitter: def.ID}}, nil); err != nil {
		t.Fatal(err)
	}
	lst.Close()
	if out := must("peer", "list", "--data", data); !strings.Contains(out, "remote") || !strings.Contains(out, "1\n") {
		t.Errorf("peer list: %s", out)
	}
	if out := must("peer", "sync", "--data", data, "remote"); !strings.Contains(out, "pulled 7 objects: 6 added, 0 already stored, 1 refused") {
		t.Errorf("first sync: %s", out)
	}
	if out := must("peer", "sync", "--data", data, "remote"); !strings.Contains(out, "pulled 0 objects") {
		t.Errorf("second sync: %s", out)
	}
	out := must("peer", "show", "--data", data, "remote")
	if !strings.Contains(out, "Credentials: sealed") || !strings.Contains(out, "Last success: 20") || !strings.Contains(out, "Objects synchronised: 6") ||
		!strings.Contains(out, "Method: Mitra change feed at position") || !strings.Contains(out, "Lag in objects: 0 changes of the peer's feed not yet applied") ||
		!strings.Contains(out, "ownership indicator--00000000-0000-4000-8000-000000000001 (2025-01-01T00:00:00.000Z) via remote-pull-1: refused: only the organisation") || strings.Contains(out, pw) {
		t.Errorf("peer show: %s", out)
	}
	if _, _, err := mitra(t, nil, "", "peer", "sync", "--data", data, "remote"); err == nil || !strings.Contains(err.Error(), "1 of 1 links failed") {
		t.Errorf("sync without the key: %v", err)
	}
	if out := must("peer", "show", "--data", data, "remote"); !strings.Contains(out, "Last error: peer remote: no peer secrets key") {
		t.Errorf("peer show after a failed sync: %s", out)
	}
	must("peer", "remove", "--data", data, "remote")
	if _, _, err := mitra(t, envs, "", "peer", "show", "--data", data, "remote"); err == nil {
		t.Error("removed peer still shown")
	}
}
