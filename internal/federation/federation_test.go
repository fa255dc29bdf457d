package federation_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/federation"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/mitra-cert/mitra/internal/taxii"
	"github.com/mitra-cert/mitra/internal/taxiiclient"
	"golang.org/x/crypto/bcrypt"
)

const password = "correct horse battery"

// node is a Mitra server on an embedded store.
type node struct {
	st  store.Store
	srv *taxii.Server
	ts  *httptest.Server
}

func newNode(t *testing.T) *node { return newNodeMax(t, 0) }

// newNodeMax is a node whose API root takes bodies of at most maxBytes.
func newNodeMax(t *testing.T, maxBytes int64) *node {
	t.Helper()
	st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := taxii.NewServer(taxii.Config{Store: st, Auth: access.NewAuthenticator(st, nil), Validator: &stix.Validator{}, MaxContentLength: maxBytes})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &node{st: st, srv: srv, ts: ts}
}

func (n *node) org(t *testing.T, name string) string {
	o := &store.Organisation{Name: name}
	if err := n.st.CreateOrganisation(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	return o.ID
}

func (n *node) user(t *testing.T, name, role, org string) {
	h, _ := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err := n.st.CreateUser(t.Context(), &store.User{Name: name, Role: role, Organisation: org, PasswordHash: string(h)}); err != nil {
		t.Fatal(err)
	}
}

func (n *node) collection(t *testing.T, alias string, users ...string) *store.Collection {
	c := &store.Collection{Title: alias, Alias: alias, Readers: users, Writers: users}
	if err := n.st.CreateCollection(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

func (n *node) client(t *testing.T, user, collection string) *taxiiclient.Client {
	cl, err := taxiiclient.NewClient(n.ts.URL+"/api/", collection)
	if err != nil {
		t.Fatal(err)
	}
	cl.User, cl.Password = user, password
	return cl
}

func indicator(i int, extra string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-%012d","created":"2025-01-01T00:00:00.000Z","modified":"2025-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '198.51.100.%d']","pattern_type":"stix","valid_from":"2025-01-01T00:00:00Z"%s}`, i, i%250, extra))
}

// count is how many versions the collection holds.
func count(t *testing.T, st store.Store, col string) map[string]int {
	page, err := st.QueryObjects(t.Context(), col, store.Query{Versions: store.VersionFilter{All: true}, Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, e := range page.Entries {
		m[e.ID]++
	}
	return m
}

// TestPullIntoStore: a pull interrupted after two pages and run again
// stores every remote object exactly once, through the POST path's checks
// (another organisation's created_by_ref kept and audited as a relay);
// its cursor is stored with the objects, so a third run brings only what
// was added since.
func TestPullIntoStore(t *testing.T) {
	remote, local := newNode(t), newNode(t)
	peerOrg := remote.org(t, "Peer CERT")
	remote.user(t, "hub", access.RoleRelay, peerOrg)
	rc := remote.collection(t, "shared", "hub")
	var objs []json.RawMessage
	for i := 1; i <= 23; i++ {
		objs = append(objs, indicator(i, ""))
	}
	// Created by an organisation registered on the local server: the pull
	// relays it for that organisation (an unregistered author would be a
	// third party, kept as provenance without a relay).
	other := local.org(t, "Other CERT")
	objs = append(objs, indicator(24, fmt.Sprintf(`,"created_by_ref":%q`, other)))
	if st, err := remote.client(t, "hub", rc.ID).Push(t.Context(), objs); err != nil || st.SuccessCount != 24 {
		t.Fatalf("seed remote: %+v %v", st, err)
	}

	lc := local.collection(t, "mirror")
	def, err := local.st.DefaultOrganisation(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := local.st.SetPartyGrant(t.Context(), lc.ID, store.GrantOrg, def.ID, true, true); err != nil {
		t.Fatal(err)
	}
	lc, _ = local.st.GetCollection(t.Context(), lc.ID)
	p := &access.Principal{Organisation: def.ID, Role: access.RoleRelay}
	// Indicator 5 is already here, owned by another organisation: the
	// remote's other version of it is refused (STIX 2.1 §3.6), the rest
	// stored.
	owner := local.org(t, "Owner")
	old := json.RawMessage(strings.Replace(string(indicator(5, "")), "2025-01-01T00:00:00.000Z", "2024-01-01T00:00:00.000Z", 2))
	if _, err := local.st.AddObjects(t.Context(), lc.ID, []store.Object{{ID: "indicator--00000000-0000-4000-8000-000000000005", Type: "indicator", SpecVersion: "2.1",
		Version: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), VersionRaw: "2024-01-01T00:00:00.000Z", Raw: old, Submitter: owner}}, nil); err != nil {
		t.Fatal(err)
	}
	cl := remote.client(t, "hub", rc.ID)
	newPuller := func(ctx context.Context, cancel func(), stopAfter int) *federation.Puller {
		pl := &federation.Puller{Client: cl, Store: local.st, Check: local.srv.Check, Principal: p, Collection: lc,
			Key: federation.CursorKey(lc.ID, cl.ObjectsURL, nil), Query: taxiiclient.ObjectsQuery{Limit: 5}, Label: "test"}
		if stopAfter > 0 {
			pl.OnPage = func(s federation.PullStats) {
				if s.Pages == stopAfter {
					cancel()
				}
			}
		}
		return pl
	}
	ctx, cancel := context.WithCancel(t.Context())
	first, err := newPuller(ctx, cancel, 2).Run(ctx)
	if err == nil || first.Received != 10 {
		t.Fatalf("interrupted pull: %+v, %v", first, err)
	}
	second, err := newPuller(t.Context(), nil, 0).Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if second.Received != 14 || second.Duplicates != 0 || first.Duplicates != 0 || first.Refused+second.Refused != 1 {
		t.Errorf("resumed pull: first %+v, second %+v", first, second)
	}
	if fs := append(first.Failures, second.Failures...); len(fs) != 1 || fs[0].ID != "indicator--00000000-0000-4000-8000-000000000005" {
		t.Errorf("refusals: %+v", fs)
	}
	got := count(t, local.st, lc.ID)
	if len(got) != 24 {
		t.Errorf("local collection holds %d objects, want 24", len(got))
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("%s stored %d times", id, n)
		}
	}
	relays, err := local.st.ListAudit(t.Context(), store.AuditFilter{Action: "objects.relay"})
	if err != nil || len(relays) != 1 || len(relays[0].Objects) != 1 || relays[0].Objects[0] != "indicator--00000000-0000-4000-8000-000000000024" {
		t.Errorf("relay audit: %+v, %v", relays, err)
	}

	// Only new objects on the next run.
	if _, err := remote.client(t, "hub", rc.ID).Push(t.Context(), []json.RawMessage{indicator(25, "")}); err != nil {
		t.Fatal(err)
	}
	third, err := newPuller(t.Context(), nil, 0).Run(t.Context())
	if err != nil || third.Received != 1 || third.Added != 1 {
		t.Errorf("third pull: %+v, %v", third, err)
	}

	// Without a write grant on the local collection nothing is pulled.
	stranger := &access.Principal{Organisation: "identity--22222222-2222-4222-8222-222222222222", Role: access.RoleRelay}
	pl := newPuller(t.Context(), nil, 0)
	pl.Principal = stranger
	if _, err := pl.Run(t.Context()); err == nil {
		t.Error("pull into a collection the organisation may not write")
	}
	// An invalid object from the remote is refused, the rest stored.
	if got, err := local.srv.Check(t.Context(), p, []json.RawMessage{json.RawMessage(`{"type":"indicator","id":"x"}`), indicator(26, "")}); err != nil || len(got.Failures) != 1 || len(got.Objects) != 1 {
		t.Errorf("Check: %+v, %v", got, err)
	}
}

// TestPushVisibleOnly: a push hands out only what the pushing organisation
// may see (access.Decide): a RED object of another organisation that does
// not name it stays home, indistinguishable from absent.
func TestPushVisibleOnly(t *testing.T) {
	remote, local := newNode(t), newNode(t)
	remote.user(t, "in", access.RoleAnalyst, "")
	rc := remote.collection(t, "inbox", "in")

	us := local.org(t, "Us")
	them := local.org(t, "Them")
	lc := local.collection(t, "outbox")
	for _, org := range []string{us, them} {
		if err := local.st.SetPartyGrant(t.Context(), lc.ID, store.GrantOrg, org, true, true); err != nil {
			t.Fatal(err)
		}
	}
	lc, _ = local.st.GetCollection(t.Context(), lc.ID)
	red := `,"object_marking_refs":["marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"]`
	clear := `,"object_marking_refs":["marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"]`
	add := func(org string, raws ...json.RawMessage) {
		var objs []store.Object
		for _, raw := range raws {
			h, probs := (&stix.Validator{}).Inspect(raw)
			if len(probs) > 0 {
				t.Fatal(probs)
			}
			o := store.Object{ID: h.ID, Type: h.Type, SpecVersion: h.SpecVersion, Raw: raw, Submitter: org, TLP: int(access.Classify(h.MarkingRefs)), Recipients: h.Recipients}
			o.Version, o.VersionRaw, _ = h.Version()
			objs = append(objs, o)
		}
		if _, err := local.st.AddObjects(t.Context(), lc.ID, objs, nil); err != nil {
			t.Fatal(err)
		}
	}
	add(us, indicator(1, clear), indicator(2, red))
	add(them, indicator(3, clear), indicator(4, red))

	ps := &federation.Pusher{Client: remote.client(t, "in", rc.ID), Store: local.st, Principal: &access.Principal{Organisation: us, Role: access.RoleRelay},
		Collection: lc, Batch: 2, Label: "test"}
	stats, err := ps.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := count(t, remote.st, rc.ID)
	want := []string{"indicator--00000000-0000-4000-8000-000000000001", "indicator--00000000-0000-4000-8000-000000000002", "indicator--00000000-0000-4000-8000-000000000003"}
	if len(got) != len(want) || stats.Sent != 3 || stats.Succeeded != 3 {
		t.Errorf("pushed %v (stats %+v), want %v", got, stats, want)
	}
	for _, id := range want {
		if got[id] != 1 {
			t.Errorf("%s not pushed", id)
		}
	}
	// An organisation without a grant pushes nothing.
	ps.Principal = &access.Principal{Organisation: "identity--22222222-2222-4222-8222-222222222222"}
	if _, err := ps.Run(t.Context()); err == nil {
		t.Error("push from a collection the organisation may not read")
	}
}

// TestPushSplitsEnvelopes: envelopes stay under the remote API root's
// max_content_length.
func TestPushSplitsEnvelopes(t *testing.T) {
	remote, local := newNodeMax(t, 1500), newNode(t)
	remote.user(t, "in", access.RoleAnalyst, "")
	rc := remote.collection(t, "inbox", "in")
	def, _ := local.st.DefaultOrganisation(t.Context())
	lc := local.collection(t, "outbox")
	if err := local.st.SetPartyGrant(t.Context(), lc.ID, store.GrantOrg, def.ID, true, false); err != nil {
		t.Fatal(err)
	}
	lc, _ = local.st.GetCollection(t.Context(), lc.ID)
	p := &access.Principal{Organisation: def.ID, Role: access.RoleRelay}
	var raws []json.RawMessage
	for i := 1; i <= 20; i++ {
		raws = append(raws, indicator(i, ""))
	}
	checked, err := local.srv.Check(t.Context(), p, raws)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := local.st.AddObjects(t.Context(), lc.ID, checked.Objects, nil); err != nil {
		t.Fatal(err)
	}
	ps := &federation.Pusher{Client: remote.client(t, "in", rc.ID), Store: local.st, Principal: p, Collection: lc, Label: "test"}
	stats, err := ps.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if stats.Succeeded != 20 || stats.Envelopes < 4 {
		t.Errorf("stats %+v: want 20 objects in envelopes of about 1500 bytes", stats)
	}
	if got := count(t, remote.st, rc.ID); len(got) != 20 {
		t.Errorf("remote holds %d objects", len(got))
	}
}
