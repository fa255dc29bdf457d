package web_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/admin"
	"github.com/mitra-cert/mitra/internal/pattern"
	"github.com/mitra-cert/mitra/internal/search"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/mitra-cert/mitra/internal/taxii"
	"github.com/mitra-cert/mitra/internal/web"
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

// clock is the test's clock: it moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// world is a server wired as `mitra serve` wires it: TAXII, the admin API,
// the search service and the console, over a SQLite store, with two
// organisations sharing one collection.
type world struct {
	t      testing.TB
	st     store.Store
	search *search.Service
	ts     *httptest.Server
	clock  *clock

	orgA, orgB string
	shared     string // collection read and written by both organisations
	// Objects of organisation A.
	green, red, redSighting, rel, observed, ipObj string
}

// Distinctive values of the TLP:RED object, looked for in every answer
// to the other organisation.
const (
	redName  = "Nightjar exfiltration relay"
	redValue = "203.0.113.66"
	greenIP  = "198.51.100.7"
)

func newWorld(t testing.TB, tls bool) *world { return newWorldWith(t, tls, nil) }

// newWorldWith is newWorld with the console's configuration changed by
// configure.
func newWorldWith(t testing.TB, tls bool, configure func(*web.Config)) *world {
	t.Helper()
	st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w := &world{t: t, st: st, clock: &clock{t: time.Now().UTC().Truncate(time.Second)}}
	authn := access.NewAuthenticator(st, w.clock.now)
	srv := taxii.NewServer(taxii.Config{Store: st, Auth: authn, Validator: &stix.Validator{CheckPattern: pattern.Check}})
	api := admin.NewWith(st, srv.Authenticate, admin.Options{Auth: authn})
	srv.Mount(admin.Prefix, api)
	w.search = search.New(search.Config{Store: st})
	cfg := web.Config{Store: st, Auth: authn, Search: w.search, Check: srv.Check, ClientAddr: srv.ClientAddr,
		Admin: admin.NewWith(st, web.PrincipalFrom, admin.Options{Auth: authn}), Now: w.clock.now}
	if configure != nil {
		configure(&cfg)
	}
	console, err := web.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.Mount("/{$}", console)
	srv.Mount(web.Prefix, console)
	if tls {
		w.ts = httptest.NewTLSServer(srv)
	} else {
		w.ts = httptest.NewServer(srv)
	}
	t.Cleanup(w.ts.Close)
	w.populate()
	return w
}

func (w *world) populate() {
	t, ctx := w.t, w.t.Context()
	for _, o := range []*store.Organisation{{Name: "CERT A"}, {Name: "Grid B"}} {
		if err := w.st.CreateOrganisation(ctx, o); err != nil {
			t.Fatal(err)
		}
		if o.Name == "CERT A" {
			w.orgA = o.ID
		} else {
			w.orgB = o.ID
		}
	}
	for _, u := range []*store.User{
		{Name: "root", Role: access.RoleAdmin, Organisation: w.orgA},
		{Name: "alice", Role: access.RoleAnalyst, Organisation: w.orgA},
		{Name: "bob", Role: access.RoleAnalyst, Organisation: w.orgB},
	} {
		u.PasswordHash = passwordHash()
		if err := w.st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	c := &store.Collection{Title: "Shared indicators", Alias: "shared", DefaultTLP: int(access.TLPAmber),
		Grants: []store.Grant{{Kind: store.GrantOrg, Subject: w.orgA, Read: true, Write: true}, {Kind: store.GrantOrg, Subject: w.orgB, Read: true, Write: true}}}
	if err := w.st.CreateCollection(ctx, c); err != nil {
		t.Fatal(err)
	}
	w.shared = c.ID
	now := stix.FormatMicro(w.clock.now())
	w.green, w.red = "indicator--11111111-1111-4111-8111-111111111111", "indicator--22222222-2222-4222-8222-222222222222"
	w.rel, w.redSighting = "relationship--33333333-3333-4333-8333-333333333333", "sighting--44444444-4444-4444-8444-444444444444"
	w.observed, w.ipObj = "observed-data--55555555-5555-4555-8555-555555555555", "ipv4-addr--66666666-6666-4666-8666-666666666666"
	green := "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
	red := "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"
	objs := []map[string]any{
		{"type": "indicator", "spec_version": "2.1", "id": w.green, "created": now, "modified": now, "valid_from": now,
			"name": "Shared scanner", "pattern": "[ipv4-addr:value = '" + greenIP + "']", "pattern_type": "stix", "object_marking_refs": []string{green}},
		{"type": "indicator", "spec_version": "2.1", "id": w.red, "created": now, "modified": now, "valid_from": now,
			"name": redName, "pattern": "[ipv4-addr:value = '" + redValue + "']", "pattern_type": "stix", "object_marking_refs": []string{red}},
		{"type": "relationship", "spec_version": "2.1", "id": w.rel, "created": now, "modified": now, "relationship_type": "related-to",
			"source_ref": w.green, "target_ref": w.red, "object_marking_refs": []string{red}},
		{"type": "ipv4-addr", "spec_version": "2.1", "id": w.ipObj, "value": redValue, "object_marking_refs": []string{red}},
		{"type": "observed-data", "spec_version": "2.1", "id": w.observed, "created": now, "modified": now, "first_observed": now, "last_observed": now,
			"number_observed": 1, "object_refs": []string{w.ipObj}, "object_marking_refs": []string{red}},
		{"type": "sighting", "spec_version": "2.1", "id": w.redSighting, "created": now, "modified": now, "sighting_of_ref": w.red,
			"observed_data_refs": []string{w.observed}, "count": 3, "object_marking_refs": []string{red}},
	}
	if status, out := w.taxiiPost("alice", objs); status != http.StatusAccepted || !bytes.Contains(out, []byte(`"success_count":6`)) {
		t.Fatalf("populate: %d %s", status, out)
	}
	w.poll()
}

func (w *world) poll() {
	w.t.Helper()
	if err := w.search.Poll(w.t.Context()); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) taxiiPost(user string, objs []map[string]any) (int, []byte) {
	w.t.Helper()
	body, _ := json.Marshal(map[string]any{"objects": objs})
	req, _ := http.NewRequestWithContext(w.t.Context(), http.MethodPost, w.ts.URL+"/api/collections/"+w.shared+"/objects/", bytes.NewReader(body))
	req.SetBasicAuth(user, password)
	req.Header.Set("Content-Type", "application/taxii+json;version=2.1")
	req.Header.Set("Accept", "application/taxii+json;version=2.1")
	res, err := w.ts.Client().Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, out
}

// browser is an HTTP client with a cookie jar: a console user.
type browser struct {
	w   *world
	c   *http.Client
	jar *cookiejar.Jar
}

func (w *world) browser() *browser {
	jar, _ := cookiejar.New(nil)
	c := w.ts.Client()
	cc := *c
	cc.Jar = jar
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{w: w, c: &cc, jar: jar}
}

type response struct {
	status int
	body   string
	header http.Header
	res    *http.Response
}

func (b *browser) do(req *http.Request) response {
	b.w.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.w.t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, body: string(out), header: res.Header, res: res}
}

func (b *browser) get(path string) response {
	b.w.t.Helper()
	req, _ := http.NewRequestWithContext(b.w.t.Context(), http.MethodGet, b.w.ts.URL+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) response {
	b.w.t.Helper()
	req, _ := http.NewRequestWithContext(b.w.t.Context(), http.MethodPost, b.w.ts.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func (b *browser) postJSON(path, csrf string, v any) response {
	b.w.t.Helper()
	body, _ := json.Marshal(v)
	req, _ := http.NewRequestWithContext(b.w.t.Context(), http.MethodPost, b.w.ts.URL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	return b.do(req)
}

var (
	csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	csrfMeta  = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)
)

// csrf returns the CSRF token of a page.
func (b *browser) csrf(page string) string {
	b.w.t.Helper()
	m := csrfMeta.FindStringSubmatch(b.get(page).body)
	if m == nil {
		b.w.t.Fatalf("no CSRF token on %s", page)
	}
	return m[1]
}

// signIn signs in as user and returns the response to the sign-in POST.
func (b *browser) signIn(user, pw string) response {
	b.w.t.Helper()
	page := b.get("/console/signin")
	m := csrfField.FindStringSubmatch(page.body)
	if m == nil {
		b.w.t.Fatalf("sign-in page without CSRF token: %s", page.body)
	}
	return b.post("/console/signin", url.Values{"user": {user}, "password": {pw}, "csrf": {m[1]}, "next": {"/console/"}})
}

func (b *browser) mustSignIn(user string) {
	b.w.t.Helper()
	if r := b.signIn(user, password); r.status != http.StatusSeeOther {
		b.w.t.Fatalf("sign in as %s: %d %s", user, r.status, r.body)
	}
}

func (b *browser) cookie(name string) *http.Cookie {
	u, _ := url.Parse(b.w.ts.URL)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func setCookie(res *http.Response, name string) *http.Cookie {
	for _, c := range res.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func must(t testing.TB, cond bool, format string, args ...any) {
	t.Helper()
	if !cond {
		t.Errorf(format, args...)
	}
}

var _ = fmt.Sprint
