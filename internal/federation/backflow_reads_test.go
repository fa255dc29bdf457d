package federation_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/federation"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxii"
	"github.com/mitra-cert/mitra/internal/taxiiclient"
)

// TestPeerReadsShowOnlyPerPeerIDs: a peer reading a local collection that
// holds feedback on its objects meets that feedback only under its
// per-peer id, on every read path (objects, one object, versions,
// manifest, match[id], the change feed and its tombstones); the local id
// answers exactly like a missing object, the per-peer id is readable by
// id, and a local reader, or feedback on local objects, is unaffected.
// Deleting or revoking the feedback reaches the peer under the per-peer id.
func TestPeerReadsShowOnlyPerPeerIDs(t *testing.T) {
	f := newFederated(t)
	ctx := t.Context()
	f.seed(t, 1, 2)
	f.sync(t, f.runner)
	orgA := f.local.org(t, "Energy Operator A")
	def, _ := f.local.st.DefaultOrganisation(ctx)
	localInd := addLocal(t, f.local.st, f.lMirror.ID, 900, def.ID, access.TLPGreen)
	fbID := feedbackObj(t, f.local.st, f.lMirror.ID, "sighting", 1, 0, indicatorID(1), orgA, access.TLPGreen)
	gone := feedbackObj(t, f.local.st, f.lMirror.ID, "opinion", 2, 0, indicatorID(2), orgA, access.TLPGreen)
	plain := feedbackObj(t, f.local.st, f.lMirror.ID, "sighting", 3, 0, localInd, orgA, access.TLPGreen)
	if err := f.local.st.SetPartyGrant(ctx, f.lMirror.ID, store.GrantOrg, f.peerOrg, true, false); err != nil {
		t.Fatal(err)
	}
	if err := f.local.st.SetPartyGrant(ctx, f.lMirror.ID, store.GrantOrg, orgA, true, true); err != nil {
		t.Fatal(err)
	}
	f.local.user(t, "peer-reader", access.RoleReadOnly, f.peerOrg)
	f.local.user(t, "operator", access.RoleAnalyst, orgA)
	pr := &federation.PeerReads{Store: f.local.sq}
	srv := taxii.NewServer(taxii.Config{Store: f.local.st, Auth: access.NewAuthenticator(f.local.st, nil), Validator: &stix.Validator{},
		Outgoing: pr.Rewrite, IncomingIDs: pr.LocalIDs, BeforeDelete: pr.MarkDeleted})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	base := ts.URL + "/api/collections/" + f.lMirror.ID + "/"
	get := func(user, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		req.SetBasicAuth(user, password)
		req.Header.Set("Accept", taxii.MediaType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var hdr strings.Builder
		for k, v := range resp.Header {
			if strings.HasPrefix(k, "X-Taxii") {
				hdr.WriteString(k + ": " + strings.Join(v, ",") + "\n")
			}
		}
		return resp.StatusCode, hdr.String() + string(b)
	}
	feedIDs := func() []string {
		cl, _ := taxiiclient.NewClient(ts.URL+"/api/", f.lMirror.ID)
		cl.User, cl.Password = "peer-reader", password
		feed, err := cl.Changes(ctx, "", 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range feed.Changes {
			ids = append(ids, string(c.Op)+" "+c.ID)
		}
		return ids
	}

	// The per-peer ids, as the peer's objects read gives them.
	code, body := get("peer-reader", "objects/?match[type]=sighting,opinion")
	if code != http.StatusOK {
		t.Fatalf("objects: %d %s", code, body)
	}
	var env struct {
		Objects []struct {
			ID        string `json:"id"`
			SightedOf string `json:"sighting_of_ref"`
		} `json:"objects"`
	}
	_ = json.Unmarshal([]byte(body[strings.Index(body, "{"):]), &env)
	var pid, gonePID string
	for _, o := range env.Objects {
		switch {
		case o.SightedOf == indicatorID(1):
			pid = o.ID
		case strings.HasPrefix(o.ID, "opinion--"):
			gonePID = o.ID
		}
	}
	if pid == "" || gonePID == "" || pid == fbID || gonePID == gone {
		t.Fatalf("per-peer ids not found in %s", body)
	}

	// Every read the peer makes: never the local id; the per-peer one
	// where an id is shown.
	reads := []string{"objects/", "manifest/", "objects/?match[type]=sighting", "manifest/?match[type]=sighting,opinion",
		"objects/?match[version]=all", "manifest/?match[version]=all", "objects/?limit=1", "manifest/?limit=2"}
	for _, r := range reads {
		code, body := get("peer-reader", r)
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", r, code, body)
		}
		// (The sighting of a local object, plain, names orgA as any
		// sighting does.)
		if strings.Contains(body, fbID) || strings.Contains(body, gone) || strings.Count(body, orgA) > 2*strings.Count(body, plain) {
			t.Errorf("the peer's read of %s shows a local id or organisation: %s", r, body)
		}
	}
	for _, r := range []string{"manifest/", "objects/?match[version]=all"} {
		if _, body := get("peer-reader", r); !strings.Contains(body, pid) || !strings.Contains(body, plain) {
			t.Errorf("the peer's read of %s does not list %s (per-peer) and %s (feedback on a local object): %s", r, pid, plain, body)
		}
	}
	// The local id is missing for the peer; the per-peer id is there.
	missing := "sighting--00000000-0000-4000-9000-000000009999"
	_, notFound := get("peer-reader", "objects/"+missing+"/")
	for _, r := range []string{"objects/" + fbID + "/", "objects/" + fbID + "/versions/", "objects/" + gone + "/"} {
		code, body := get("peer-reader", r)
		if code != http.StatusNotFound || body != notFound {
			t.Errorf("%s for the peer: %d %s, want 404 like a missing object (%s)", r, code, body, notFound)
		}
	}
	for _, q := range []string{"objects/?match[id]=" + fbID, "manifest/?match[id]=" + fbID, "objects/?match[id]=" + url.QueryEscape(fbID+","+gone)} {
		if code, body := get("peer-reader", q); code != http.StatusOK || strings.Contains(body, fbID) || strings.Contains(body, `"objects"`) {
			t.Errorf("%s for the peer: %d %s, want an empty envelope", q, code, body)
		}
	}
	if code, body := get("peer-reader", "objects/"+pid+"/"); code != http.StatusOK || !strings.Contains(body, `"id":"`+pid+`"`) || strings.Contains(body, fbID) {
		t.Errorf("the per-peer id by id: %d %s", code, body)
	}
	if code, body := get("peer-reader", "objects/"+pid+"/versions/"); code != http.StatusOK || !strings.Contains(body, "versions") {
		t.Errorf("the per-peer id's versions: %d %s", code, body)
	}
	if code, body := get("peer-reader", "manifest/?match[id]="+url.QueryEscape(pid+","+plain)); code != http.StatusOK || !strings.Contains(body, pid) || !strings.Contains(body, plain) || strings.Contains(body, fbID) {
		t.Errorf("match[id] of the per-peer id and a plain sighting: %d %s", code, body)
	}
	if code, body := get("peer-reader", "objects/"+plain+"/"); code != http.StatusOK || !strings.Contains(body, plain) {
		t.Errorf("a sighting of a local object keeps its id: %d %s", code, body)
	}
	// A local reader sees the local ids, as before.
	if code, body := get("operator", "objects/"+fbID+"/"); code != http.StatusOK || !strings.Contains(body, orgA) {
		t.Errorf("the local reader of %s: %d %s", fbID, code, body)
	}
	if code, body := get("operator", "objects/"+pid+"/"); code != http.StatusNotFound {
		t.Errorf("the per-peer id is no id for a local reader: %d %s", code, body)
	}

	// A revocation (a new version) and a delete travel under the per-peer
	// ids; the tombstone of a feedback object deleted altogether still does.
	revoked := strings.Replace(string(mustRaw(t, f.local.st, f.lMirror.ID, fbID)), `"modified":"2025-02-01T00:00:00.000Z"`, `"modified":"2025-02-01T00:00:09.000Z","revoked":true`, 1)
	res, err := f.local.st.AddObjects(ctx, f.lMirror.ID, []store.Object{{ID: fbID, Type: "sighting", SpecVersion: "2.1", Version: mustTime(t, "2025-02-01T00:00:09.000Z"),
		VersionRaw: "2025-02-01T00:00:09.000Z", Raw: []byte(revoked), Submitter: orgA, Owner: orgA, TLP: int(access.TLPGreen)}}, nil)
	if err != nil || res[0].Err != nil {
		t.Fatalf("revoke: %v %+v", err, res)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, base+"objects/"+gone+"/", nil)
	req.SetBasicAuth("operator", password)
	req.Header.Set("Accept", taxii.MediaType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("delete %s: %d", gone, resp.StatusCode)
	}
	ids := feedIDs()
	joined := strings.Join(ids, "\n")
	if strings.Contains(joined, fbID) || strings.Contains(joined, gone) {
		t.Errorf("the peer's change feed names a local feedback id:\n%s", joined)
	}
	adds := strings.Count(joined, "add "+pid)
	if adds != 2 || !strings.Contains(joined, "delete "+gonePID) {
		t.Errorf("the peer's change feed: %d adds of %s (want 2: the sighting and its revocation), delete of %s: %v:\n%s", adds, pid, gonePID, strings.Contains(joined, "delete "+gonePID), joined)
	}
	// The peer's own reads after the delete: the opinion is gone under
	// both ids.
	if code, _ := get("peer-reader", "objects/"+gonePID+"/"); code != http.StatusNotFound {
		t.Errorf("the deleted opinion's per-peer id: %d", code)
	}
	if bytes.Contains([]byte(joined), []byte(orgA)) {
		t.Errorf("feed names %s", orgA)
	}
}

// mustRaw is the latest body of id in col.
func mustRaw(t *testing.T, st store.Store, col, id string) []byte {
	t.Helper()
	page, err := st.QueryObjects(t.Context(), col, store.Query{IDs: []string{id}, WithBody: true})
	if err != nil || len(page.Entries) != 1 {
		t.Fatalf("%s: %v %+v", id, err, page)
	}
	return page.Entries[0].Raw
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := stix.ParseTimestamp(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
