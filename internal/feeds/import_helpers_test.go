package feeds_test

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/feeds"
	"github.com/mitra-cert/mitra/internal/pattern"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/mitra-cert/mitra/internal/taxii"
	"golang.org/x/crypto/bcrypt"
)

const password = "correct horse battery"

var passwordHash = sync.OnceValue(func() string {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
})

// world is a TAXII server over a SQLite store with an importer that goes
// through its checks.
type world struct {
	t   testing.TB
	st  *sqlite.Store
	srv *taxii.Server
	ts  *httptest.Server
	imp *feeds.Importer
	now time.Time
}

func newWorld(t testing.TB) *world {
	t.Helper()
	st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := taxii.NewServer(taxii.Config{Store: st, Auth: access.NewAuthenticator(st, nil),
		Validator: &stix.Validator{CheckPattern: pattern.Check}})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	w := &world{t: t, st: st, srv: srv, ts: ts, now: time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)}
	w.imp = &feeds.Importer{Store: st, Check: srv.Check, Warnings: feeds.NewWarningLists(st), Now: func() time.Time { return w.now }}
	return w
}

func (w *world) org(name string) string {
	w.t.Helper()
	o := &store.Organisation{Name: name}
	if err := w.st.CreateOrganisation(w.t.Context(), o); err != nil {
		w.t.Fatal(err)
	}
	return o.ID
}

// member creates an analyst of org and returns its principal.
func (w *world) member(name, org string) *access.Principal {
	w.t.Helper()
	if err := w.st.CreateUser(w.t.Context(), &store.User{Name: name, Organisation: org, Role: access.RoleAnalyst, PasswordHash: passwordHash()}); err != nil {
		w.t.Fatal(err)
	}
	groups, err := w.st.GroupsOf(w.t.Context(), org)
	if err != nil {
		w.t.Fatal(err)
	}
	return &access.Principal{User: name, Organisation: org, Groups: groups, Role: access.RoleAnalyst}
}

// collection creates a collection that orgs may read and write.
func (w *world) collection(title string, orgs ...string) string {
	w.t.Helper()
	c := &store.Collection{Title: title}
	for _, o := range orgs {
		c.Grants = append(c.Grants, store.Grant{Kind: store.GrantOrg, Subject: o, Read: true, Write: true})
	}
	if err := w.st.CreateCollection(w.t.Context(), c); err != nil {
		w.t.Fatal(err)
	}
	for _, o := range orgs {
		if err := w.st.SetPartyGrant(w.t.Context(), c.ID, store.GrantOrg, o, true, true); err != nil {
			w.t.Fatal(err)
		}
	}
	return c.ID
}

func (w *world) importSource(p *access.Principal, col string, src feeds.Source, opt feeds.Options) feeds.Report {
	w.t.Helper()
	rep, err := w.imp.Import(w.t.Context(), p, col, src, opt, nil)
	if err != nil {
		w.t.Fatalf("import: %v (report %+v)", err, rep)
	}
	return rep
}

// objects GETs every object of a collection as user (TAXII 2.1 §5.4),
// page by page, by id.
func (w *world) objects(user, col string) map[string]json.RawMessage {
	w.t.Helper()
	out := map[string]json.RawMessage{}
	next := ""
	for {
		q := url.Values{"limit": {"1000"}}
		if next != "" {
			q.Set("next", next)
		}
		req, _ := http.NewRequestWithContext(w.t.Context(), http.MethodGet, w.ts.URL+"/api/collections/"+col+"/objects/?"+q.Encode(), nil)
		req.SetBasicAuth(user, password)
		req.Header.Set("Accept", "application/taxii+json;version=2.1")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			w.t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusNotFound {
			return out
		}
		if res.StatusCode != http.StatusOK {
			w.t.Fatalf("GET objects: %d %s", res.StatusCode, body)
		}
		var env struct {
			More    bool              `json:"more"`
			Next    string            `json:"next"`
			Objects []json.RawMessage `json:"objects"`
		}
		if err := json.Unmarshal(body, &env); err != nil {
			w.t.Fatal(err)
		}
		for _, o := range env.Objects {
			var h struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal(o, &h)
			out[h.ID] = o
		}
		if !env.More {
			return out
		}
		next = env.Next
	}
}

func obj(t testing.TB, raw json.RawMessage) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func open(t testing.TB, name string) *os.File {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "import", name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func gunzip(t testing.TB, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
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
	return data
}
