package assist_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/assist"
	"github.com/mitra-cert/mitra/internal/pattern"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/postgres"
	"github.com/mitra-cert/mitra/internal/store/postgres/pgtest"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/mitra-cert/mitra/internal/taxii"
	"github.com/mitra-cert/mitra/internal/taxiiclient"
	"golang.org/x/crypto/bcrypt"
)

const password = "assist-test-password"

// backend opens a fresh store: the embedded one, or PostgreSQL (a schema
// of its own) when pg is set.
type backend func(t *testing.T) store.Store

func sqliteBackend(t *testing.T) store.Store {
	st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func postgresBackend(t *testing.T) store.Store {
	dsn := pgtest.NewSchema(t)
	st, err := postgres.Open(t.Context(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// clock is an injected clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// node is one Mitra server of a national CERT: its store, TAXII server,
// assistance service, own organisation and collections.
type node struct {
	name      string
	st        store.Store
	srv       *taxii.Server
	ts        *httptest.Server
	svc       *assist.Service
	cert      *store.Organisation // the CERT itself
	assistCol *store.Collection
	dirCol    *store.Collection
	staff     *access.Principal
	// creds are the credentials each peer name uses on its server.
	creds map[string][2]string
}

func newNode(t *testing.T, open backend, name string, clk *clock, opts ...func(*assist.Config)) *node {
	st := open(t)
	n := &node{name: name, st: st, creds: map[string][2]string{}}
	ctx := t.Context()
	n.cert = &store.Organisation{Name: "CERT " + name}
	must(t, st.CreateOrganisation(ctx, n.cert))
	n.assistCol = &store.Collection{Title: "Assistance", Alias: "assist"}
	must(t, st.CreateCollection(ctx, n.assistCol))
	n.dirCol = &store.Collection{Title: "Directory", Alias: "directory"}
	must(t, st.CreateCollection(ctx, n.dirCol))
	for _, c := range []*store.Collection{n.assistCol, n.dirCol} {
		must(t, st.SetPartyGrant(ctx, c.ID, store.GrantOrg, n.cert.ID, true, true))
	}
	createUser(t, st, "staff", n.cert.ID)
	n.staff = &access.Principal{User: "staff", Organisation: n.cert.ID, Role: access.RoleAnalyst}
	n.srv = taxii.NewServer(taxii.Config{Store: st, Auth: access.NewAuthenticator(st, nil), Validator: &stix.Validator{CheckPattern: pattern.Check}})
	n.ts = httptest.NewServer(n.srv)
	t.Cleanup(n.ts.Close)
	cfg := assist.Config{Store: st.(assist.Store), Check: n.srv.Check, Collection: "assist", Directory: "directory", Now: clk.Now, Sender: senderOf(n)}
	for _, o := range opts {
		o(&cfg)
	}
	n.svc = assist.New(cfg)
	return n
}

// link makes each of a and b a federation peer of the other: an
// organisation for the other CERT with a user that may write (not read)
// the assistance collection, and a peer with its credentials.
func link(t *testing.T, a, b *node) {
	for _, pair := range [][2]*node{{a, b}, {b, a}} {
		local, remote := pair[0], pair[1]
		ctx := t.Context()
		// On remote: local's account.
		org := &store.Organisation{Name: "Peer CERT " + local.name}
		must(t, remote.st.CreateOrganisation(ctx, org))
		user := "peer-" + local.name
		createUser(t, remote.st, user, org.ID)
		must(t, remote.st.SetPartyGrant(ctx, remote.assistCol.ID, store.GrantOrg, org.ID, false, true))
		// On local: the peer named after remote, mapped to the organisation
		// that stands for remote on local (created on the other pass).
		local.creds[remote.name] = [2]string{user, password}
	}
	for _, pair := range [][2]*node{{a, b}, {b, a}} {
		local, remote := pair[0], pair[1]
		org, err := local.st.GetOrganisation(t.Context(), "Peer CERT "+remote.name)
		if err != nil {
			t.Fatal(err)
		}
		must(t, local.st.CreatePeer(t.Context(), &store.Peer{Name: remote.name, URL: remote.ts.URL + "/api/", Organisation: org.ID}))
	}
}

// passwordHash is password's bcrypt hash at the lowest cost: the default
// cost makes tests under -race take minutes.
var passwordHash = sync.OnceValue(func() string {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
})

// createUser stores a user with password.
func createUser(t *testing.T, st store.Store, name, org string) {
	t.Helper()
	must(t, st.CreateUser(t.Context(), &store.User{Name: name, Role: access.RoleAnalyst, Organisation: org, PasswordHash: passwordHash()}))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// unavailable answers 503 to everything (a server down for maintenance).
type unavailable struct{}

func (unavailable) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "down", http.StatusServiceUnavailable)
}

// senderOf is n's peer sender (the one newNode builds).
func senderOf(n *node) assist.Sender {
	return &assist.PeerSender{Peers: n.st, Client: func(ctx context.Context, p *store.Peer, remote string) (*taxiiclient.Client, error) {
		cl, err := taxiiclient.NewClient(p.URL, remote)
		if err != nil {
			return nil, err
		}
		c := n.creds[p.Name]
		cl.User, cl.Password = c[0], c[1]
		return cl, nil
	}}
}
