package taxii_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
)

// attackBundle reads a MITRE ATT&CK for ICS bundle from shared/data (beside
// the repository) and returns its objects as received.
func attackBundle(t *testing.T, name string) []json.RawMessage {
	t.Helper()
	path := filepath.Join("..", "..", "..", "shared", "data", name)
	f, err := os.Open(path)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("real data missing in CI: %v", err)
		}
		t.Skipf("real data not available: %v", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := stix.SplitInput(data)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// TestAttackICSRoundTrip loads two real releases of ATT&CK for ICS through
// TAXII (as a relay: the objects are MITRE's) and reads them back: every
// object byte for byte, the latest version by default, both versions of
// what changed between releases.
func TestAttackICSRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 3,500 real objects")
	}
	v17 := attackBundle(t, "ics-attack-17.1.json.gz")
	v18 := attackBundle(t, "ics-attack-18.1.json.gz")
	e := newEnv(t)
	if err := e.st.CreateUser(e.ctx, &store.User{Name: "feed", Role: "relay", PasswordHash: passwordHash()}); err != nil {
		t.Fatal(err)
	}
	feed := e.basic("feed", password)
	col := e.collection("attack-ics", []string{"feed"}, []string{"feed"})
	// What the server must hold: the first copy of every (id, version),
	// the later release's objects that re-use an (id, modified) with other
	// content being refused as conflicts (a version is identified by id and
	// modified, STIX 2.1 §3.6; ATT&CK 18.1 does re-use some).
	latest := map[string]json.RawMessage{}
	latestVersion := map[string]string{}
	versions := map[string]map[string]json.RawMessage{}
	for _, release := range [][]json.RawMessage{v17, v18} {
		wantConflicts := map[string]bool{}
		for _, raw := range release {
			h, err := stix.ParseHeader(raw)
			if err != nil {
				t.Fatal(err)
			}
			_, v, _ := h.Version()
			if versions[h.ID] == nil {
				versions[h.ID] = map[string]json.RawMessage{}
			}
			if old, ok := versions[h.ID][v]; ok {
				if !store.SameJSON(old, raw) {
					wantConflicts[h.ID] = true
				}
				continue
			}
			versions[h.ID][v] = raw
			if v >= latestVersion[h.ID] {
				latest[h.ID], latestVersion[h.ID] = raw, v
			}
		}
		gotConflicts := map[string]bool{}
		for start := 0; start < len(release); start += 500 {
			part := release[start:min(start+500, len(release))]
			body := append([]byte(`{"objects":[`), bytes.Join(toBytes(part), []byte(","))...)
			body = append(body, "]}"...)
			st := feed.do(http.MethodPost, objectsPath(col.ID), body).ok(http.StatusAccepted).object()
			failures, _ := st["failures"].([]any)
			for _, f := range failures {
				d := f.(map[string]any)
				if msg, _ := d["message"].(string); !strings.Contains(msg, "conflict") {
					t.Fatalf("ATT&CK object refused: %v", d)
				}
				gotConflicts[d["id"].(string)] = true
			}
		}
		if len(gotConflicts) != len(wantConflicts) {
			t.Fatalf("%d conflicts reported, want %d", len(gotConflicts), len(wantConflicts))
		}
		for id := range wantConflicts {
			if !gotConflicts[id] {
				t.Errorf("conflict of %s not reported", id)
			}
		}
	}
	// The default read: one latest version per object, as sent.
	got := map[string]json.RawMessage{}
	next := ""
	for {
		q := "limit=1000"
		if next != "" {
			q += "&next=" + next
		}
		env := feed.get(withQuery(objectsPath(col.ID), q)).ok(http.StatusOK).envelope()
		for _, o := range env.Objects {
			h, err := stix.ParseHeader(o)
			if err != nil {
				t.Fatal(err)
			}
			if _, dup := got[h.ID]; dup {
				t.Fatalf("%s served twice", h.ID)
			}
			got[h.ID] = o
		}
		if !env.More {
			break
		}
		next = env.Next
	}
	if len(got) != len(latest) {
		t.Fatalf("read %d objects, want %d distinct ids", len(got), len(latest))
	}
	for id, raw := range latest {
		if !bytes.Equal(got[id], raw) {
			t.Fatalf("%s not returned byte for byte:\n got %s\nwant %s", id, got[id], raw)
		}
	}
	// An object changed between the releases has both versions.
	changed := 0
	for id, vs := range versions {
		if len(vs) < 2 {
			continue
		}
		changed++
		if changed > 5 {
			break
		}
		var res struct {
			Versions []string `json:"versions"`
		}
		r := feed.get(versionsPath(col.ID, id)).ok(http.StatusOK)
		if err := json.Unmarshal(r.body, &res); err != nil || len(res.Versions) != len(vs) {
			t.Errorf("%s: versions %s, want %d", id, r.body, len(vs))
		}
	}
	if changed == 0 {
		t.Error("no object changed between ATT&CK 17.1 and 18.1: the data is not what this test expects")
	}
}

func toBytes(l []json.RawMessage) [][]byte {
	out := make([][]byte, len(l))
	for i, r := range l {
		out[i] = r
	}
	return out
}
