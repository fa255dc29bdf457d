package taxii_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxii"
	"golang.org/x/crypto/bcrypt"
)

// taxiiMT is the TAXII 2.1 media type, spelled out rather than taken from
// the package so that a change to taxii.MediaType cannot go unnoticed.
const taxiiMT = "application/taxii+json;version=2.1"

const stixMT = "application/stix+json;version=2.1"

const password = "correct horse battery"

// passwordHash is the bcrypt hash of password at the lowest cost: users are
// created straight in the store with it, so that tests do not spend their
// time in bcrypt. Authentication still goes through access.Authenticator.
var passwordHash = sync.OnceValue(func() string {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
})

// microRE is a TAXII timestamp with exactly microsecond precision.
var microRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$`)

// env is one server over one store of the current backend, in a location
// (directory, database schema) of its own.
type env struct {
	t   *testing.T
	ctx context.Context
	loc string
	st  store.Store
	srv *taxii.Server
	ts  *httptest.Server
	mod []func(*taxii.Config)
}

func newEnv(t *testing.T, mod ...func(*taxii.Config)) *env {
	t.Helper()
	e := &env{t: t, ctx: t.Context(), loc: current.Location(t), mod: mod}
	e.open()
	return e
}

// open opens the store at e.loc and starts a server on it.
func (e *env) open() {
	e.t.Helper()
	st, err := current.Open(e.ctx, e.loc)
	if err != nil {
		e.t.Fatalf("open store: %v", err)
	}
	e.st = st
	e.t.Cleanup(func() { st.Close() })
	cfg := taxii.Config{Store: st, Auth: access.NewAuthenticator(st, nil), Validator: &stix.Validator{}}
	for _, m := range e.mod {
		m(&cfg)
	}
	e.srv = taxii.NewServer(cfg)
	e.ts = httptest.NewServer(e.srv)
	e.t.Cleanup(e.ts.Close)
}

// restart stops the server, closes the store and opens both again on the
// same location.
func (e *env) restart() {
	e.t.Helper()
	e.ts.Close()
	if err := e.st.Close(); err != nil {
		e.t.Fatalf("close store: %v", err)
	}
	e.open()
}

// user creates a user with role and returns a client that authenticates as
// it with HTTP Basic.
func (e *env) user(name, role string) *client {
	e.t.Helper()
	if err := e.st.CreateUser(e.ctx, &store.User{Name: name, Role: role, PasswordHash: passwordHash()}); err != nil {
		e.t.Fatalf("create user %s: %v", name, err)
	}
	return e.basic(name, password)
}

// basic returns a client sending these Basic credentials.
func (e *env) basic(name, pw string) *client {
	return &client{t: e.t, base: e.ts.URL, name: name, auth: func(r *http.Request) { r.SetBasicAuth(name, pw) }}
}

// bearer returns a client sending this token.
func (e *env) bearer(secret string) *client {
	return &client{t: e.t, base: e.ts.URL, auth: func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+secret) }}
}

// anonymous returns a client sending no credentials.
func (e *env) anonymous() *client {
	return &client{t: e.t, base: e.ts.URL, auth: func(*http.Request) {}}
}

// collection creates a collection with the given alias (may be empty) and
// grants: readers may read, writers may write.
func (e *env) collection(alias string, readers, writers []string) *store.Collection {
	e.t.Helper()
	c := &store.Collection{Title: "Collection " + alias, Description: "about " + alias, Alias: alias, Readers: readers, Writers: writers}
	if err := e.st.CreateCollection(e.ctx, c); err != nil {
		e.t.Fatalf("create collection: %v", err)
	}
	return c
}

// client makes HTTP requests to the server.
type client struct {
	t    *testing.T
	base string
	name string
	auth func(*http.Request)
}

// resp is a response, read in full.
type resp struct {
	t      *testing.T
	req    string
	status int
	header http.Header
	body   []byte
}

// do sends a request. headers are name, value pairs; they replace the
// defaults (Accept: the TAXII media type; Content-Type as well when there is
// a body), and an empty value removes the header.
func (c *client) do(method, path string, body []byte, headers ...string) *resp {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.base+path, rd)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	req.Header.Set("Accept", taxiiMT)
	if body != nil {
		req.Header.Set("Content-Type", taxiiMT)
	}
	c.auth(req)
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	return c.send(req)
}

func (c *client) send(req *http.Request) *resp {
	c.t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return &resp{t: c.t, req: req.Method + " " + req.URL.RequestURI(), status: res.StatusCode, header: res.Header, body: b}
}

func (c *client) get(path string) *resp {
	c.t.Helper()
	return c.do(http.MethodGet, path, nil)
}

// post adds objects to collection coll and returns the status resource,
// failing the test unless the answer is 202.
func (c *client) post(coll string, objs ...string) map[string]any {
	c.t.Helper()
	r := c.do(http.MethodPost, objectsPath(coll), envelope(objs...))
	r.want(http.StatusAccepted)
	return r.object()
}

// want fails the test unless the status is status.
func (r *resp) want(status int) *resp {
	r.t.Helper()
	if r.status != status {
		r.t.Fatalf("%s: status %d, want %d; body: %s", r.req, r.status, status, r.body)
	}
	return r
}

// ok checks a successful TAXII answer: status and Content-Type.
func (r *resp) ok(status int) *resp {
	r.t.Helper()
	r.want(status)
	if ct := r.header.Get("Content-Type"); ct != taxiiMT {
		r.t.Fatalf("%s: Content-Type %q, want %q", r.req, ct, taxiiMT)
	}
	return r
}

// wantError checks that r is a TAXII error message resource (TAXII 2.1
// §3.6.1) for status, sent as the TAXII media type.
func (r *resp) wantError(status int) map[string]any {
	r.t.Helper()
	r.ok(status)
	var e map[string]any
	if err := json.Unmarshal(r.body, &e); err != nil {
		r.t.Fatalf("%s: error body is not JSON: %v: %s", r.req, err, r.body)
	}
	if title, _ := e["title"].(string); title == "" {
		r.t.Errorf("%s: error resource without title: %s", r.req, r.body)
	}
	if hs, ok := e["http_status"].(string); !ok || hs != strconv.Itoa(status) {
		r.t.Errorf("%s: http_status %v, want the string %q", r.req, e["http_status"], strconv.Itoa(status))
	}
	return e
}

// object decodes the body as a JSON object.
func (r *resp) object() map[string]any {
	r.t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		r.t.Fatalf("%s: body is not a JSON object: %v: %s", r.req, err, r.body)
	}
	return m
}

// envelopeOut is an envelope as the server sends it.
type envelopeOut struct {
	More    bool              `json:"more"`
	Next    string            `json:"next"`
	Objects []json.RawMessage `json:"objects"`
}

func (r *resp) envelope() envelopeOut {
	r.t.Helper()
	r.ok(http.StatusOK)
	var env envelopeOut
	if err := json.Unmarshal(r.body, &env); err != nil {
		r.t.Fatalf("%s: body is not an envelope: %v: %s", r.req, err, r.body)
	}
	if env.More != (env.Next != "") {
		r.t.Errorf("%s: more=%v but next=%q", r.req, env.More, env.Next)
	}
	return env
}

type manifestRecord struct {
	ID        string `json:"id"`
	DateAdded string `json:"date_added"`
	Version   string `json:"version"`
	MediaType string `json:"media_type"`
}

type manifestOut struct {
	More    bool             `json:"more"`
	Next    string           `json:"next"`
	Objects []manifestRecord `json:"objects"`
}

func (r *resp) manifest() manifestOut {
	r.t.Helper()
	r.ok(http.StatusOK)
	var m manifestOut
	if err := json.Unmarshal(r.body, &m); err != nil {
		r.t.Fatalf("%s: body is not a manifest: %v: %s", r.req, err, r.body)
	}
	return m
}

// idVersion is an object version as "id@version".
type idVersion = string

// versionsOf lists the objects of an envelope as "id@modified" (or just id
// when the object has no modified), in order.
func versionsOf(t *testing.T, env envelopeOut) []idVersion {
	t.Helper()
	var out []idVersion
	for _, raw := range env.Objects {
		var h struct {
			ID       string `json:"id"`
			Modified string `json:"modified"`
		}
		if err := json.Unmarshal(raw, &h); err != nil {
			t.Fatalf("object is not JSON: %v: %s", err, raw)
		}
		if h.Modified == "" {
			out = append(out, h.ID)
		} else {
			out = append(out, h.ID+"@"+h.Modified)
		}
	}
	return out
}

func wantList[T comparable](t *testing.T, what string, got, want []T) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got  %v\n want %v", what, got, want)
	}
}

// --- paths -------------------------------------------------------------------

func collectionPath(c string) string      { return "/api/collections/" + c + "/" }
func objectsPath(c string) string         { return collectionPath(c) + "objects/" }
func manifestPath(c string) string        { return collectionPath(c) + "manifest/" }
func objectPath(c, id string) string      { return objectsPath(c) + id + "/" }
func versionsPath(c, id string) string    { return objectPath(c, id) + "versions/" }
func statusPath(id string) string         { return "/api/status/" + id + "/" }
func withQuery(path, query string) string { return path + "?" + query }

// --- STIX objects ------------------------------------------------------------

// uuidN is a valid RFC 4122 UUID made from n, so that tests name objects
// deterministically.
func uuidN(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

func malwareID(n int) string   { return "malware--" + uuidN(n) }
func indicatorID(n int) string { return "indicator--" + uuidN(n) }
func ipv4ID(n int) string      { return "ipv4-addr--" + uuidN(n) }

const created = "2024-01-01T00:00:00.000Z"

// malware is a valid malware SDO, version modified.
func malware(n int, modified string) string {
	return fmt.Sprintf(`{"type":"malware","spec_version":"2.1","id":%q,"created":%q,"modified":%q,"name":"malware %d","is_family":false}`,
		malwareID(n), created, modified, n)
}

// indicator is a valid indicator SDO, version modified.
func indicator(n int, modified string) string {
	return fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":%q,"created":%q,"modified":%q,"pattern":"[ipv4-addr:value = '10.0.0.%d']","pattern_type":"stix","valid_from":%q}`,
		indicatorID(n), created, modified, n%250, created)
}

// ipv4 is a valid IPv4 address SCO: it has no version of its own.
func ipv4(n int) string {
	return fmt.Sprintf(`{"type":"ipv4-addr","spec_version":"2.1","id":%q,"value":"192.0.2.%d"}`, ipv4ID(n), n%250)
}

func envelope(objs ...string) []byte {
	return []byte(`{"objects":[` + strings.Join(objs, ",") + `]}`)
}

// details reads a status-details list as "id@version" strings.
func details(t *testing.T, st map[string]any, key string) []string {
	t.Helper()
	list, _ := st[key].([]any)
	var out []string
	for _, d := range list {
		m, ok := d.(map[string]any)
		if !ok {
			t.Fatalf("%s entry is not an object: %v", key, d)
		}
		out = append(out, fmt.Sprint(m["id"], "@", m["version"]))
	}
	return out
}

func num(t *testing.T, m map[string]any, key string) int {
	t.Helper()
	f, ok := m[key].(float64)
	if !ok {
		t.Fatalf("%s is %v (%T), want a number", key, m[key], m[key])
	}
	return int(f)
}

// parseMicro parses a TAXII date_added header or property.
func parseMicro(t *testing.T, s string) time.Time {
	t.Helper()
	if !microRE.MatchString(s) {
		t.Fatalf("timestamp %q is not YYYY-MM-DDTHH:MM:SS.ssssssZ", s)
	}
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("timestamp %q: %v", s, err)
	}
	return ts
}
