package federation_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/federation"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/mitra-cert/mitra/internal/taxii"
	"github.com/mitra-cert/mitra/internal/taxiiclient"
)

// tlsNode is a Mitra server over HTTPS on an embedded store, its data
// directory kept for reopening.
type tlsNode struct {
	node
	sq  *sqlite.Store
	dir string
	ca  string // PEM of the server certificate
}

func newTLSNode(t *testing.T) *tlsNode {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(t.Context(), dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := taxii.NewServer(taxii.Config{Store: st, Auth: access.NewAuthenticator(st, nil), Validator: &stix.Validator{}})
	ts := httptest.NewTLSServer(srv)
	t.Cleanup(ts.Close)
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}))
	return &tlsNode{node: node{st: st, srv: srv, ts: ts}, sq: st, dir: dir, ca: ca}
}

// client is a TAXII client of the node over HTTPS.
func (n *tlsNode) client(t *testing.T, user, collection string) *taxiiclient.Client {
	cl := n.node.client(t, user, collection)
	cl.HTTP = n.ts.Client()
	return cl
}

func testSealer(t *testing.T) *federation.Sealer {
	s, err := federation.NewSealer(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// federated is a remote server and a local one with a peer between them:
// the local server knows the remote as organisation peerOrg; the remote
// knows the local server as user "mirror" of its organisation localOnRemote.
type federated struct {
	remote, local *tlsNode
	peerOrg       string // the remote's organisation on the local server
	localOnRemote string
	rShared       *store.Collection // remote collection pulled
	rInbox        *store.Collection // remote collection pushed to
	lMirror       *store.Collection // local collection pulled into
	lOut          *store.Collection // local collection pushed from
	peer          *store.Peer
	runner        *federation.Runner
}

func newFederated(t *testing.T) *federated {
	f := &federated{remote: newTLSNode(t), local: newTLSNode(t)}
	ctx := t.Context()
	f.localOnRemote = f.remote.org(t, "Local CERT")
	f.remote.user(t, "mirror", access.RoleRelay, f.localOnRemote)
	f.remote.user(t, "author", access.RoleAnalyst, f.localOnRemote)
	f.rShared = f.remote.collection(t, "shared", "mirror", "author")
	f.rInbox = f.remote.collection(t, "inbox", "mirror", "author")

	f.peerOrg = f.local.org(t, "Remote CERT")
	f.lMirror = f.local.collection(t, "mirror")
	f.lOut = f.local.collection(t, "out")
	for _, c := range []*store.Collection{f.lMirror, f.lOut} {
		if err := f.local.st.SetPartyGrant(ctx, c.ID, store.GrantOrg, f.peerOrg, true, true); err != nil {
			t.Fatal(err)
		}
	}
	f.lOut, _ = f.local.st.GetCollection(ctx, f.lOut.ID)
	sealer := testSealer(t)
	secret, err := sealer.Seal("remote", federation.Credentials{Password: password})
	if err != nil {
		t.Fatal(err)
	}
	f.peer = &store.Peer{Name: "remote", URL: f.remote.ts.URL + "/api/", Organisation: f.peerOrg, User: "mirror", Secret: secret, CA: f.remote.ca}
	if err := f.local.sq.CreatePeer(ctx, f.peer); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*store.Link{
		{ID: "remote-in", Peer: "remote", Direction: store.LinkPull, Local: f.lMirror.ID, Remote: f.rShared.ID, Interval: time.Minute},
		{ID: "remote-out", Peer: "remote", Direction: store.LinkPush, Local: f.lOut.ID, Remote: f.rInbox.ID, Interval: time.Minute},
	} {
		if err := f.local.sq.AddLink(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	f.runner = f.newRunner(f.local.sq, sealer)
	return f
}

func (f *federated) newRunner(st *sqlite.Store, s *federation.Sealer) *federation.Runner {
	srv := taxii.NewServer(taxii.Config{Store: st, Auth: access.NewAuthenticator(st, nil), Validator: &stix.Validator{}})
	return &federation.Runner{Store: st, Sealer: s, Check: srv.Check, Holder: "test"}
}

func (f *federated) sync(t *testing.T, r *federation.Runner) []federation.LinkResult {
	t.Helper()
	res, err := r.SyncPeer(t.Context(), "remote")
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range res {
		if x.Err != nil {
			t.Fatalf("link %s: %v", x.Link.ID, x.Err)
		}
	}
	return res
}

// addLocal stores an object in a local collection as submitter, with a
// TLP level and recipients.
func addLocal(t *testing.T, st store.Store, col string, i int, submitter string, tlp access.TLP, recipients ...string) string {
	t.Helper()
	raw := indicator(i, "")
	id := fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i)
	v := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	res, err := st.AddObjects(t.Context(), col, []store.Object{{ID: id, Type: "indicator", SpecVersion: "2.1", Version: v, VersionRaw: "2025-01-01T00:00:00.000Z",
		Raw: raw, Submitter: submitter, TLP: int(tlp), Recipients: recipients}}, nil)
	if err != nil || res[0].Err != nil {
		t.Fatalf("add %d: %v %+v", i, err, res)
	}
	return id
}

// metric is the value of a counter with the labels peer, link and the third.
func metric(t *testing.T, reg *prometheus.Registry, name, peer, link, third string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["peer"] == peer && l["link"] == link && (l["result"] == third || l["outcome"] == third) {
				if g := m.GetGauge(); g != nil {
					return g.GetValue()
				}
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

// TestPeerLinksConverge: a pull link and a push link between two HTTPS
// servers bring each side's objects to the other exactly once; running
// again (a new runner on a reopened store: a restart) resumes from the
// stored positions and adds only what is new; provenance records the link.
func TestPeerLinksConverge(t *testing.T) {
	f := newFederated(t)
	var objs []json.RawMessage
	for i := 1; i <= 30; i++ {
		objs = append(objs, indicator(i, ""))
	}
	if st, err := f.remote.client(t, "author", f.rShared.ID).Push(t.Context(), objs); err != nil || st.SuccessCount != 30 {
		t.Fatalf("seed remote: %+v %v", st, err)
	}
	def, _ := f.local.st.DefaultOrganisation(t.Context())
	for i := 101; i <= 110; i++ {
		addLocal(t, f.local.st, f.lOut.ID, i, def.ID, access.TLPGreen)
	}
	reg := prometheus.NewRegistry()
	f.runner.Metrics = federation.NewMetrics(reg)
	res := f.sync(t, f.runner)
	if got := metric(t, reg, "mitra_federation_link_objects_total", "remote", "remote-in", "added"); got != 30 {
		t.Errorf("added metric of the pull link = %v, want 30", got)
	}
	if got := metric(t, reg, "mitra_federation_link_runs_total", "remote", "remote-out", "ok"); got != 1 {
		t.Errorf("runs metric of the push link = %v, want 1", got)
	}
	if got := metric(t, reg, "mitra_federation_link_lag_seconds", "remote", "remote-in", ""); got != 0 {
		t.Errorf("lag of the pull link after a success = %v, want 0", got)
	}
	if res[0].Pull.Added != 30 || res[1].Push.Succeeded != 10 {
		t.Fatalf("first sync: pull %+v push %+v", res[0].Pull, res[1].Push)
	}
	if n := len(count(t, f.local.st, f.lMirror.ID)); n != 30 {
		t.Errorf("local mirror has %d objects, want 30", n)
	}
	if n := len(count(t, f.remote.st, f.rInbox.ID)); n != 10 {
		t.Errorf("remote inbox has %d objects, want 10", n)
	}
	prov, err := f.local.sq.ObjectProvenance(t.Context(), "indicator--00000000-0000-4000-8000-000000000001")
	if err != nil || len(prov) != 1 || prov[0].Link != "remote-in" || prov[0].Peer != "remote" || prov[0].Received.IsZero() {
		t.Errorf("provenance = %+v, %v", prov, err)
	}
	// Pulled objects are stored under the peer's organisation.
	page, _ := f.local.st.QueryObjects(t.Context(), f.lMirror.ID, store.Query{Limit: 1})
	if page.Entries[0].Submitter != f.peerOrg {
		t.Errorf("pulled object submitted by %s, want the peer's organisation %s", page.Entries[0].Submitter, f.peerOrg)
	}

	// Restart: close and reopen the store, a new runner; more objects on
	// both sides.
	f.local.st.Close()
	st, err := sqlite.Open(t.Context(), f.local.dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if st, err := f.remote.client(t, "author", f.rShared.ID).Push(t.Context(), []json.RawMessage{indicator(31, ""), indicator(32, "")}); err != nil || st.SuccessCount != 2 {
		t.Fatalf("more remote: %+v %v", st, err)
	}
	addLocal(t, st, f.lOut.ID, 111, def.ID, access.TLPClear)
	r2 := f.newRunner(st, testSealer(t))
	res = f.sync(t, r2)
	if res[0].Pull.Received != 2 || res[0].Pull.Added != 2 || res[1].Push.Sent != 1 {
		t.Fatalf("after restart: pull %+v push %+v (want only the new objects)", res[0].Pull, res[1].Push)
	}
	for id, n := range count(t, st, f.lMirror.ID) {
		if n != 1 {
			t.Errorf("%s stored %d times", id, n)
		}
	}
	if n := len(count(t, f.remote.st, f.rInbox.ID)); n != 11 {
		t.Errorf("remote inbox has %d objects, want 11", n)
	}
	links, err := st.Links(t.Context(), "remote")
	if err != nil || len(links) != 2 || links[0].LastSuccess.IsZero() || links[0].Synced != 32 || links[1].Synced != 11 {
		t.Errorf("link status = %+v %+v, %v", links[0], links[1], err)
	}
}

// TestPeerPushLeaks: a push link sends exactly what the peer's
// organisation could read over TAXII: TLP CLEAR to AMBER, RED and
// AMBER+STRICT only when it is named as a recipient, nothing the peer
// itself sent (no ping-pong), across several organisations.
func TestPeerPushLeaks(t *testing.T) {
	f := newFederated(t)
	st := f.local.sq
	a, b := f.local.org(t, "Org A"), f.local.org(t, "Org B")
	want := map[string]bool{}
	put := func(i int, sub string, tlp access.TLP, visible bool, rcpt ...string) {
		id := addLocal(t, st, f.lOut.ID, i, sub, tlp, rcpt...)
		want[id] = visible
	}
	put(1, a, access.TLPClear, true)
	put(2, a, access.TLPGreen, true)
	put(3, b, access.TLPAmber, true)
	put(4, a, access.TLPAmberStrict, false)
	put(5, a, access.TLPRed, false)
	put(6, a, access.TLPRed, false, b)        // RED for another organisation
	put(7, b, access.TLPRed, true, f.peerOrg) // RED naming the peer
	put(8, a, access.TLPAmberStrict, true, f.peerOrg, b)
	put(9, f.peerOrg, access.TLPClear, false) // came from the peer: not echoed
	put(10, b, access.TLPUnresolved, false)   // unknown marking: its author only
	f.sync(t, f.runner)
	got := count(t, f.remote.st, f.rInbox.ID)
	for id, vis := range want {
		if (got[id] > 0) != vis {
			t.Errorf("%s on the remote: %v, want %v (Decide: %v)", id, got[id] > 0, vis, vis)
		}
	}
	// What the remote received is what TAXII shows the peer's organisation.
	p := &access.Principal{Organisation: f.peerOrg, Role: access.RoleReadOnly}
	page, _ := st.QueryObjects(t.Context(), f.lOut.ID, store.Query{Limit: 100})
	for _, e := range page.Entries {
		if access.Decide(p, f.lOut, &e).Allowed && e.Submitter != f.peerOrg && got[e.ID] == 0 {
			t.Errorf("%s readable by the peer over TAXII but not pushed", e.ID)
		}
	}
	// A collection the peer's organisation may not read is not pushed at all.
	hidden := f.local.collection(t, "hidden")
	addLocal(t, st, hidden.ID, 50, a, access.TLPClear)
	if err := st.AddLink(t.Context(), &store.Link{ID: "hidden-out", Peer: "remote", Direction: store.LinkPush, Local: hidden.ID, Remote: f.rInbox.ID}); err != nil {
		t.Fatal(err)
	}
	res, _ := f.runner.SyncPeer(t.Context(), "remote")
	for _, x := range res {
		if x.Link.ID == "hidden-out" && (x.Err == nil || x.Push.Sent != 0) {
			t.Errorf("push of an unreadable collection: %+v %v", x.Push, x.Err)
		}
	}
	if got := count(t, f.remote.st, f.rInbox.ID); got["indicator--00000000-0000-4000-8000-000000000050"] != 0 {
		t.Error("object of an unreadable collection reached the peer")
	}
	// Sharing groups: a collection granted to a group the peer's
	// organisation is in is pushed; one granted to a group it is not in
	// is not.
	in := &store.Group{Name: "in", Orgs: []string{f.peerOrg, a}}
	out := &store.Group{Name: "out", Orgs: []string{a, b}}
	for _, g := range []*store.Group{in, out} {
		if err := st.CreateGroup(t.Context(), g); err != nil {
			t.Fatal(err)
		}
	}
	for i, g := range []*store.Group{in, out} {
		c := f.local.collection(t, g.Name+"-col")
		if err := st.SetPartyGrant(t.Context(), c.ID, store.GrantGroup, g.ID, true, false); err != nil {
			t.Fatal(err)
		}
		addLocal(t, st, c.ID, 60+i, a, access.TLPGreen)
		if err := st.AddLink(t.Context(), &store.Link{ID: g.Name + "-out", Peer: "remote", Direction: store.LinkPush, Local: c.ID, Remote: f.rInbox.ID}); err != nil {
			t.Fatal(err)
		}
	}
	f.runner.SyncPeer(t.Context(), "remote")
	got = count(t, f.remote.st, f.rInbox.ID)
	if got["indicator--00000000-0000-4000-8000-000000000060"] != 1 {
		t.Error("object of a collection shared with the peer's group was not pushed")
	}
	if got["indicator--00000000-0000-4000-8000-000000000061"] != 0 {
		t.Error("object of a collection shared with another group reached the peer")
	}
}

// TestMirroredOwnership: a mirrored object's new version is refused from a
// local writer (even of the peer's organisation) and from another peer;
// its peer's link brings the new version; a conflicting copy (same id and
// modified, other content) keeps the first and is shown as a rejection.
func TestMirroredOwnership(t *testing.T) {
	f := newFederated(t)
	ctx := t.Context()
	rc := f.remote.client(t, "author", f.rShared.ID)
	if _, err := rc.Push(ctx, []json.RawMessage{indicator(1, "")}); err != nil {
		t.Fatal(err)
	}
	f.sync(t, f.runner)
	id := "indicator--00000000-0000-4000-8000-000000000001"
	v2 := json.RawMessage(strings.Replace(string(indicator(1, "")), `"modified":"2025-01-01T00:00:00.000Z"`, `"modified":"2025-02-01T00:00:00.000Z"`, 1))
	checkLocal := func(who string) error {
		p := &access.Principal{Organisation: who, Role: access.RoleRelay}
		ch, err := f.local.srv.Check(ctx, p, []json.RawMessage{v2})
		if err != nil || len(ch.Objects) != 1 {
			t.Fatalf("check: %v %+v", err, ch)
		}
		res, err := f.local.st.AddObjects(ctx, f.lMirror.ID, ch.Objects, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res[0].Err
	}
	def, _ := f.local.st.DefaultOrganisation(ctx)
	for _, who := range []string{def.ID, f.peerOrg} {
		if err := checkLocal(who); !errors.Is(err, store.ErrForbidden) {
			t.Errorf("local writer of %s versioned a mirrored object: %v", who, err)
		}
	}
	if _, err := f.local.st.DeleteObject(ctx, f.lMirror.ID, id, store.Query{Owner: f.peerOrg}); !errors.Is(err, store.ErrForbidden) {
		t.Errorf("local delete of a mirrored object: %v", err)
	}
	// Through its link the new version arrives.
	if _, err := rc.Push(ctx, []json.RawMessage{v2}); err != nil {
		t.Fatal(err)
	}
	f.sync(t, f.runner)
	if n := count(t, f.local.st, f.lMirror.ID)[id]; n != 2 {
		t.Errorf("%d versions after the link brought v2, want 2", n)
	}
	// A second peer sending a new version of it, and a conflicting copy of
	// the first version, is refused and recorded.
	secret, _ := testSealer(t).Seal("other", federation.Credentials{Password: password})
	other := &store.Peer{Name: "other", URL: f.remote.ts.URL + "/api/", Organisation: f.peerOrg, User: "mirror", Secret: secret, CA: f.remote.ca}
	if err := f.local.sq.CreatePeer(ctx, other); err != nil {
		t.Fatal(err)
	}
	rOther := f.remote.collection(t, "other", "mirror", "author")
	v3 := json.RawMessage(strings.Replace(string(indicator(1, "")), `"modified":"2025-01-01T00:00:00.000Z"`, `"modified":"2025-03-01T00:00:00.000Z"`, 1))
	conflict := json.RawMessage(strings.Replace(string(v2), `"valid_from":"2025-01-01T00:00:00Z"`, `"valid_from":"2025-01-02T00:00:00Z"`, 1))
	if err := f.local.sq.AddLink(ctx, &store.Link{ID: "other-in", Peer: "other", Direction: store.LinkPull, Local: f.lMirror.ID, Remote: rOther.ID}); err != nil {
		t.Fatal(err)
	}
	// The remote serves the latest version only: one version per sync.
	for _, raw := range []json.RawMessage{conflict, v3} {
		if st, err := f.remote.client(t, "author", rOther.ID).Push(ctx, []json.RawMessage{raw}); err != nil || st.SuccessCount != 1 {
			t.Fatalf("seed other: %+v %v", st, err)
		}
		if res, err := f.runner.SyncPeer(ctx, "other"); err != nil || len(res) != 1 || res[0].Pull.Received != 1 || res[0].Pull.Refused != 1 {
			t.Fatalf("sync other: %+v %v", res, err)
		}
	}
	if n := count(t, f.local.st, f.lMirror.ID)[id]; n != 2 {
		t.Errorf("%d versions after another peer's version, want 2", n)
	}
	rej, err := f.local.sq.Rejections(ctx, "other", 10)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, r := range rej {
		if r.ObjectID == id {
			kinds[r.Kind] = true
		}
	}
	if !kinds["ownership"] || !kinds["conflict"] {
		t.Errorf("rejections = %+v, want an ownership and a conflict", rej)
	}
}

// TestPeerSecrets: credentials are sealed in the database (the password
// appears nowhere in its files); without the key, the runner says so and
// leaves the peer out; a wrong key does not open them.
func TestPeerSecrets(t *testing.T) {
	f := newFederated(t)
	f.local.st.Close()
	files, _ := filepath.Glob(filepath.Join(f.local.dir, "*"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(password)) {
			t.Errorf("%s holds the peer password in plaintext", name)
		}
	}
	st, err := sqlite.Open(t.Context(), f.local.dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var logs bytes.Buffer
	r := f.newRunner(st, nil)
	r.Log = slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	r.Rescan = 100 * time.Millisecond
	if err := r.Serve(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Count(logs.String(), "peer left out") != 1 || !strings.Contains(logs.String(), federation.KeyEnv) {
		t.Errorf("log without the key: %s", logs.String())
	}
	res, _ := r.SyncPeer(t.Context(), "remote")
	if len(res) == 0 || !errors.Is(res[0].Err, federation.ErrNoKey) {
		t.Errorf("sync without the key: %+v", res)
	}
	wrong, _ := federation.NewSealer(bytes.Repeat([]byte{8}, 32))
	p, _ := st.GetPeer(t.Context(), "remote")
	if _, err := wrong.Open("remote", p.Secret); err == nil {
		t.Error("a wrong key opened the credentials")
	}
	if _, err := testSealer(t).Open("other", p.Secret); err == nil {
		t.Error("credentials opened under another peer's name")
	}
	if c, err := testSealer(t).Open("remote", p.Secret); err != nil || c.Password != password {
		t.Errorf("right key: %+v %v", c, err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "key"), []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))+"\n"), 0o600)
	if s, err := federation.LoadSealer(filepath.Join(dir, "key"), ""); err != nil {
		t.Error(err)
	} else if _, err := s.Open("remote", p.Secret); err != nil {
		t.Errorf("key file: %v", err)
	}
	if _, err := federation.LoadSealer("", ""); !errors.Is(err, federation.ErrNoKey) {
		t.Errorf("no key: %v", err)
	}
}

// TestPeerLoop: links both ways on the same collections (A to B to A)
// neither duplicate objects nor ping-pong: what came from the peer is not
// pushed back, what returns from it is a duplicate, and a second round
// moves nothing.
func TestPeerLoop(t *testing.T) {
	f := newFederated(t)
	ctx := t.Context()
	for _, l := range []*store.Link{
		{ID: "echo-out", Peer: "remote", Direction: store.LinkPush, Local: f.lMirror.ID, Remote: f.rShared.ID},
		{ID: "echo-in", Peer: "remote", Direction: store.LinkPull, Local: f.lOut.ID, Remote: f.rInbox.ID},
	} {
		if err := f.local.sq.AddLink(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.remote.client(t, "author", f.rShared.ID).Push(ctx, []json.RawMessage{indicator(1, ""), indicator(2, "")}); err != nil {
		t.Fatal(err)
	}
	def, _ := f.local.st.DefaultOrganisation(ctx)
	addLocal(t, f.local.st, f.lOut.ID, 3, def.ID, access.TLPGreen)
	for round := 1; round <= 3; round++ {
		res := f.sync(t, f.runner)
		moved := 0
		for _, x := range res {
			moved += x.Pull.Added + x.Push.Sent
			if x.Link.ID == "echo-out" && x.Push.Sent != 0 {
				t.Errorf("round %d: objects from the peer pushed back to it: %+v", round, x.Push)
			}
		}
		if round > 1 && moved != 0 {
			t.Errorf("round %d moved %d objects: ping-pong", round, moved)
		}
	}
	for _, c := range []struct {
		st  store.Store
		col string
	}{{f.local.st, f.lMirror.ID}, {f.local.st, f.lOut.ID}, {f.remote.st, f.rShared.ID}, {f.remote.st, f.rInbox.ID}} {
		for id, n := range count(t, c.st, c.col) {
			if n != 1 {
				t.Errorf("%s in %s: %d versions", id, c.col, n)
			}
		}
	}
	if got := count(t, f.local.st, f.lOut.ID); len(got) != 1 {
		t.Errorf("local out holds %v, want only its own object", got)
	}
}

// TestPeerServe: the runner inside serve runs the links on their
// intervals and stops when its context ends; while one process holds a
// link's lease, another's run of it is refused (ErrLeaseHeld).
func TestPeerServe(t *testing.T) {
	f := newFederated(t)
	if _, err := f.remote.client(t, "author", f.rShared.ID).Push(t.Context(), []json.RawMessage{indicator(1, ""), indicator(2, "")}); err != nil {
		t.Fatal(err)
	}
	ok, err := f.local.sq.TakeLease(t.Context(), "remote-in", "other process", time.Hour)
	if err != nil || !ok {
		t.Fatalf("lease: %v %v", ok, err)
	}
	res, _ := f.runner.SyncPeer(t.Context(), "remote")
	if !errors.Is(res[0].Err, federation.ErrLeaseHeld) || res[0].Pull.Received != 0 {
		t.Errorf("run under another process's lease: %+v", res[0])
	}
	if err := f.local.sq.ReleaseLease(t.Context(), "remote-in", "other process"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	f.runner.Rescan = 100 * time.Millisecond
	go func() { done <- f.runner.Serve(ctx) }()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatal(what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("the served link did not pull", func() bool { return len(count(t, f.local.st, f.lMirror.ID)) == 2 })
	// A link added while serving is picked up without a restart.
	late := f.local.collection(t, "late")
	if err := f.local.sq.SetPartyGrant(t.Context(), late.ID, store.GrantOrg, f.peerOrg, true, true); err != nil {
		t.Fatal(err)
	}
	if err := f.local.sq.AddLink(t.Context(), &store.Link{ID: "late-in", Peer: "remote", Direction: store.LinkPull, Local: late.ID, Remote: f.rShared.ID, Interval: time.Minute}); err != nil {
		t.Fatal(err)
	}
	waitFor("a link added while serving did not run", func() bool { return len(count(t, f.local.st, late.ID)) == 2 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not stop")
	}
}

// failingPosts fails every POST after the first n.
type failingPosts struct {
	rt    http.RoundTripper
	n     int
	posts atomic.Int32
}

func (f *failingPosts) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && int(f.posts.Add(1)) > f.n {
		return nil, errors.New("connection cut")
	}
	return f.rt.RoundTrip(r)
}

// TestPeerPushResumes: a push cut after its first envelope resumes, in a
// new runner, from the position stored after that envelope's status
// completed: every object reaches the remote once, none is sent twice.
func TestPeerPushResumes(t *testing.T) {
	f := newFederated(t)
	def, _ := f.local.st.DefaultOrganisation(t.Context())
	var objs []store.Object
	for i := 1; i <= 1200; i++ {
		objs = append(objs, store.Object{ID: fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i), Type: "indicator", SpecVersion: "2.1",
			Version: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), VersionRaw: "2025-01-01T00:00:00.000Z", Raw: indicator(i, ""), Submitter: def.ID, TLP: int(access.TLPGreen)})
	}
	if _, err := f.local.st.AddObjects(t.Context(), f.lOut.ID, objs, nil); err != nil {
		t.Fatal(err)
	}
	cut := &failingPosts{n: 1}
	f.runner.Configure = func(c *taxiiclient.Client) {
		cut.rt = c.HTTP.Transport
		c.HTTP.Transport = cut
		c.Retry.Attempts = -1
	}
	p, _ := f.local.sq.GetPeer(t.Context(), "remote")
	links, _ := f.local.sq.Links(t.Context(), "remote")
	out := links[1]
	if res := f.runner.RunLink(t.Context(), p, out); res.Err == nil || res.Push.Sent != 500 {
		t.Fatalf("cut push: sent %d, %v", res.Push.Sent, res.Err)
	}
	if n := len(count(t, f.remote.st, f.rInbox.ID)); n != 500 {
		t.Fatalf("remote holds %d after the cut, want 500", n)
	}
	links, _ = f.local.sq.Links(t.Context(), "remote")
	if links[1].LastError == "" {
		t.Error("the cut push left no last error")
	}
	r2 := f.newRunner(f.local.sq, testSealer(t))
	res := r2.RunLink(t.Context(), p, out)
	if res.Err != nil || res.Push.Sent != 700 {
		t.Fatalf("resumed push: sent %d, %v (want the 700 left)", res.Push.Sent, res.Err)
	}
	if n := len(count(t, f.remote.st, f.rInbox.ID)); n != 1200 {
		t.Errorf("remote holds %d, want 1200", n)
	}
}

// TestPeerIdentityOwnership: a local organisation's identity object
// arriving from a peer stays owned by that organisation, not the peer.
func TestPeerIdentityOwnership(t *testing.T) {
	f := newFederated(t)
	local := f.local.org(t, "Local Org")
	raw := json.RawMessage(fmt.Sprintf(`{"type":"identity","spec_version":"2.1","id":%q,"created":"2025-01-01T00:00:00.000Z","modified":"2025-01-01T00:00:00.000Z","name":"Local Org","identity_class":"organization"}`, local))
	if st, err := f.remote.client(t, "author", f.rShared.ID).Push(t.Context(), []json.RawMessage{raw, indicator(1, "")}); err != nil || st.SuccessCount != 2 {
		t.Fatalf("seed: %+v %v", st, err)
	}
	f.sync(t, f.runner)
	owners, err := f.local.st.ObjectOwners(t.Context(), []string{local, "indicator--00000000-0000-4000-8000-000000000001"})
	if err != nil || owners[local] != local || owners["indicator--00000000-0000-4000-8000-000000000001"] != federation.PeerOwner("remote") {
		t.Errorf("owners = %v, %v", owners, err)
	}
}
