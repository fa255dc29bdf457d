package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/admin"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/mitra-cert/mitra/internal/taxii"
	"golang.org/x/crypto/bcrypt"
)

const (
	taxiiMT  = "application/taxii+json;version=2.1"
	password = "correct horse battery"
)

// passwordHash is password hashed at bcrypt's lowest cost, for users the
// tests create straight in the store.
var passwordHash = sync.OnceValue(func() string {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
})

// env is the TAXII server with the admin API mounted, as cmd/mitra serves
// them, over a SQLite store in a temporary directory.
type env struct {
	t   *testing.T
	ctx context.Context
	st  store.Store
	ts  *httptest.Server
	// clock is the admin API's clock, in Unix nanoseconds.
	clock atomic.Int64
	srv   *taxii.Server
	api   *admin.Handler
}

func (e *env) now() time.Time     { return time.Unix(0, e.clock.Load()).UTC() }
func (e *env) setNow(t time.Time) { e.clock.Store(t.UnixNano()) }

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, ctx: ctx, st: st}
	e.setNow(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	// The tests below fail sign-ins on purpose; a lenient throttle keeps
	// them from being delayed (throttling has tests of its own).
	auth, err := access.NewAuthenticatorWith(st, access.AuthOptions{Throttle: access.ThrottleConfig{Free: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = taxii.NewServer(taxii.Config{Store: st, Auth: auth})
	e.api = admin.NewWith(st, e.srv.Authenticate, admin.Options{Now: e.now, Auth: auth, TokenExpiry: access.DefaultTokenExpiry})
	e.srv.Mount(admin.Prefix, e.api)
	e.srv.Mount(admin.AccountPrefix, e.api)
	srv := e.srv
	e.ts = httptest.NewServer(srv)
	t.Cleanup(e.ts.Close)
	for name, role := range map[string]string{"root": access.RoleAdmin, "alice": access.RoleAnalyst} {
		if err := st.CreateUser(ctx, &store.User{Name: name, Role: role, PasswordHash: passwordHash()}); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

type client struct {
	t    *testing.T
	base string
	auth func(*http.Request)
}

func (e *env) basic(name, pw string) *client {
	return &client{t: e.t, base: e.ts.URL, auth: func(r *http.Request) { r.SetBasicAuth(name, pw) }}
}

func (e *env) bearer(secret string) *client {
	return &client{t: e.t, base: e.ts.URL, auth: func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+secret) }}
}

func (e *env) root() *client { return e.basic("root", password) }

type resp struct {
	t      *testing.T
	req    string
	status int
	header http.Header
	body   []byte
}

// do sends a request; a string body is sent as is, anything else as JSON.
func (c *client) do(method, path string, body any) *resp {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, "+taxiiMT)
	c.auth(req)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return &resp{t: c.t, req: method + " " + path, status: res.StatusCode, header: res.Header, body: b}
}

func (r *resp) want(status int) *resp {
	r.t.Helper()
	if r.status != status {
		r.t.Fatalf("%s: status %d, want %d; body: %s", r.req, r.status, status, r.body)
	}
	return r
}

// wantJSON checks status and that the body is JSON, and decodes it into v.
func (r *resp) wantJSON(status int, v any) {
	r.t.Helper()
	r.want(status)
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		r.t.Errorf("%s: Content-Type %q, want application/json", r.req, ct)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		r.t.Fatalf("%s: body is not JSON: %v: %s", r.req, err, r.body)
	}
}

// wantError checks an admin API error: status and {"error": "..."}.
func (r *resp) wantError(status int) {
	r.t.Helper()
	var e map[string]any
	r.wantJSON(status, &e)
	if msg, _ := e["error"].(string); msg == "" {
		r.t.Errorf("%s: error body without message: %s", r.req, r.body)
	}
}

type user struct {
	Name         string    `json:"name"`
	Organisation string    `json:"organisation"`
	Role         string    `json:"role"`
	Created      time.Time `json:"created"`
}

type collection struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	Alias       string   `json:"alias"`
	Readers     []string `json:"readers"`
	Writers     []string `json:"writers"`
}

type token struct {
	ID      string     `json:"id"`
	User    string     `json:"user"`
	Role    string     `json:"role"`
	Expires *time.Time `json:"expires"`
	Revoked bool       `json:"revoked"`
	Token   string     `json:"token"`
}

// taxiiGet fetches a TAXII path and returns its status.
func (c *client) taxiiGet(path string) int {
	c.t.Helper()
	return c.do(http.MethodGet, path, nil).status
}

func TestOnlyAdminsMayUseTheAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := uuid.NewString()
	endpoints := []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "/admin/users", nil},
		{http.MethodPost, "/admin/users", map[string]string{"name": "dave", "password": "password-123"}},
		{http.MethodDelete, "/admin/users/alice", nil},
		{http.MethodGet, "/admin/collections", nil},
		{http.MethodPost, "/admin/collections", map[string]string{"title": "x"}},
		{http.MethodDelete, "/admin/collections/" + id, nil},
		{http.MethodPut, "/admin/collections/" + id + "/grants/alice", map[string]bool{"read": true}},
		{http.MethodGet, "/admin/tokens", nil},
		{http.MethodPost, "/admin/tokens", map[string]string{"user": "alice"}},
		{http.MethodDelete, "/admin/tokens/" + id, nil},
	}
	analystToken, _, err := access.CreateToken(e.ctx, e.st, "alice", "", 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// An admin's token restricted to a lower role is not an admin.
	downgraded, _, err := access.CreateToken(e.ctx, e.st, "root", access.RoleAnalyst, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	anonymous := &client{t: t, base: e.ts.URL, auth: func(*http.Request) {}}
	for _, ep := range endpoints {
		r := anonymous.do(ep.method, ep.path, ep.body)
		r.wantError(http.StatusUnauthorized)
		if !strings.Contains(r.header.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("%s %s: WWW-Authenticate = %q", ep.method, ep.path, r.header.Get("WWW-Authenticate"))
		}
		e.basic("root", "wrong password").do(ep.method, ep.path, ep.body).wantError(http.StatusUnauthorized)
		e.bearer("mitra_unknown").do(ep.method, ep.path, ep.body).wantError(http.StatusUnauthorized)
		e.basic("alice", password).do(ep.method, ep.path, ep.body).wantError(http.StatusForbidden)
		e.bearer(analystToken).do(ep.method, ep.path, ep.body).wantError(http.StatusForbidden)
		e.bearer(downgraded).do(ep.method, ep.path, ep.body).wantError(http.StatusForbidden)
	}
	// None of the refused requests changed anything.
	var users []user
	e.root().do(http.MethodGet, "/admin/users", nil).wantJSON(http.StatusOK, &users)
	if len(users) != 2 {
		t.Errorf("users after refused requests: %+v", users)
	}
	var cols []collection
	e.root().do(http.MethodGet, "/admin/collections", nil).wantJSON(http.StatusOK, &cols)
	if len(cols) != 0 {
		t.Errorf("collections after refused requests: %+v", cols)
	}

	// The admin's own token works.
	rootToken, _, err := access.CreateToken(e.ctx, e.st, "root", "", 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	e.bearer(rootToken).do(http.MethodGet, "/admin/users", nil).want(http.StatusOK)
}

func TestUsers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	root := e.root()

	r := root.do(http.MethodPost, "/admin/users", map[string]string{"name": "dave", "password": "dave-password-1", "role": "read-only"})
	var u user
	r.wantJSON(http.StatusCreated, &u)
	if u.Name != "dave" || u.Role != access.RoleReadOnly || u.Created.IsZero() || !strings.HasPrefix(u.Organisation, "identity--") {
		t.Errorf("created user = %+v", u)
	}
	noSecrets(t, r.body, "dave-password-1")

	// The role defaults to analyst.
	root.do(http.MethodPost, "/admin/users", map[string]string{"name": "erin", "password": "erin-password-1"}).wantJSON(http.StatusCreated, &u)
	if u.Role != access.RoleAnalyst {
		t.Errorf("default role = %q, want analyst", u.Role)
	}

	r = root.do(http.MethodGet, "/admin/users", nil)
	var users []user
	r.wantJSON(http.StatusOK, &users)
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"alice", "dave", "erin", "root"}) {
		t.Errorf("users = %v", names)
	}
	noSecrets(t, r.body, "dave-password-1")

	// The new user can use TAXII with its password.
	dave := e.basic("dave", "dave-password-1")
	if s := dave.taxiiGet("/api/collections/"); s != http.StatusOK {
		t.Errorf("new user on TAXII: %d", s)
	}

	for _, tc := range []struct {
		body   any
		status int
	}{
		{map[string]string{"name": "dave", "password": "other-password-1"}, http.StatusConflict},
		{map[string]string{"name": "frank", "password": "short"}, http.StatusBadRequest},
		{map[string]string{"name": "frank", "password": "frank-password-1", "role": "emperor"}, http.StatusBadRequest},
		{map[string]string{"name": "frank", "password": "frank-password-1", "colour": "blue"}, http.StatusBadRequest},
		{`{"name": "frank", "password": `, http.StatusBadRequest},
		{`not json`, http.StatusBadRequest},
		{`["frank"]`, http.StatusBadRequest},
	} {
		root.do(http.MethodPost, "/admin/users", tc.body).wantError(tc.status)
	}
	if s := e.basic("dave", "other-password-1").taxiiGet("/api/"); s != http.StatusUnauthorized {
		t.Errorf("a refused duplicate changed the password: %d", s)
	}
	if s := e.basic("frank", "frank-password-1").taxiiGet("/api/"); s != http.StatusUnauthorized {
		t.Errorf("a refused user exists: %d", s)
	}

	root.do(http.MethodDelete, "/admin/users/dave", nil).want(http.StatusNoContent)
	root.do(http.MethodDelete, "/admin/users/dave", nil).wantError(http.StatusNotFound)
	root.do(http.MethodDelete, "/admin/users/nobody", nil).wantError(http.StatusNotFound)
	if s := dave.taxiiGet("/api/collections/"); s != http.StatusUnauthorized {
		t.Errorf("deleted user on TAXII: %d, want 401", s)
	}
	// An admin cannot delete itself (and so lock everyone out).
	root.do(http.MethodDelete, "/admin/users/root", nil).wantError(http.StatusBadRequest)
	root.do(http.MethodGet, "/admin/users", nil).want(http.StatusOK)
}

// noSecrets fails if body holds a password, a bcrypt hash or a hash field.
func noSecrets(t *testing.T, body []byte, pw string) {
	t.Helper()
	for _, s := range []string{pw, "$2a$", "$2b$", "password", "hash"} {
		if bytes.Contains(bytes.ToLower(body), []byte(strings.ToLower(s))) {
			t.Errorf("response contains %q: %s", s, body)
		}
	}
}

func TestCollections(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	root := e.root()
	alice := e.basic("alice", password)

	var c collection
	root.do(http.MethodPost, "/admin/collections", map[string]any{"title": "Alpha", "description": "first", "alias": "alpha", "readers": []string{"alice"}}).
		wantJSON(http.StatusCreated, &c)
	if _, err := uuid.Parse(c.ID); err != nil {
		t.Errorf("collection id %q is not a UUID", c.ID)
	}
	if c.Title != "Alpha" || c.Description != "first" || c.Alias != "alpha" || !slices.Equal(c.Readers, []string{"alice"}) || len(c.Writers) != 0 {
		t.Errorf("created collection = %+v", c)
	}
	var bare collection
	root.do(http.MethodPost, "/admin/collections", map[string]any{"title": "Beta"}).wantJSON(http.StatusCreated, &bare)
	if bare.ID == "" || bare.ID == c.ID || bare.Readers == nil || bare.Writers == nil {
		t.Errorf("collection without grants = %+v (readers and writers must be lists)", bare)
	}

	var cols []collection
	root.do(http.MethodGet, "/admin/collections", nil).wantJSON(http.StatusOK, &cols)
	if len(cols) != 2 || cols[0].ID != c.ID || cols[1].ID != bare.ID {
		t.Errorf("collections = %+v", cols)
	}

	// The grant shows on TAXII.
	taxiiCollection := func() map[string]any {
		t.Helper()
		r := alice.do(http.MethodGet, "/api/collections/"+c.ID+"/", nil)
		if r.status != http.StatusOK {
			return nil
		}
		var m map[string]any
		if err := json.Unmarshal(r.body, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m := taxiiCollection(); m == nil || m["can_read"] != true || m["can_write"] != false {
		t.Errorf("TAXII view after create = %v", m)
	}

	// PUT grants replaces the user's rights.
	var after collection
	root.do(http.MethodPut, "/admin/collections/"+c.ID+"/grants/alice", map[string]bool{"read": false, "write": true}).wantJSON(http.StatusOK, &after)
	if len(after.Readers) != 0 || !slices.Equal(after.Writers, []string{"alice"}) {
		t.Errorf("after grant: %+v", after)
	}
	if m := taxiiCollection(); m == nil || m["can_read"] != false || m["can_write"] != true {
		t.Errorf("TAXII view after grant = %v", m)
	}
	root.do(http.MethodPut, "/admin/collections/"+c.ID+"/grants/alice", map[string]bool{"read": true, "write": true}).wantJSON(http.StatusOK, &after)
	if !slices.Equal(after.Readers, []string{"alice"}) || !slices.Equal(after.Writers, []string{"alice"}) {
		t.Errorf("after granting both: %+v", after)
	}
	if m := taxiiCollection(); m == nil || m["can_read"] != true || m["can_write"] != true {
		t.Errorf("TAXII view after granting both = %v", m)
	}
	root.do(http.MethodPut, "/admin/collections/"+c.ID+"/grants/alice", map[string]bool{"read": false, "write": false}).wantJSON(http.StatusOK, &after)
	if len(after.Readers)+len(after.Writers) != 0 {
		t.Errorf("after revoking the grant: %+v", after)
	}
	if m := taxiiCollection(); m != nil {
		t.Errorf("TAXII still shows the collection after the grant was removed: %v", m)
	}

	for _, tc := range []struct {
		method, path string
		body         any
		status       int
	}{
		{http.MethodPost, "/admin/collections", map[string]any{"title": "Gamma", "alias": "alpha"}, http.StatusConflict},
		{http.MethodPost, "/admin/collections", map[string]any{"title": ""}, http.StatusBadRequest},
		{http.MethodPost, "/admin/collections", map[string]any{"title": "Gamma", "alias": uuid.NewString()}, http.StatusBadRequest},
		{http.MethodPost, "/admin/collections", map[string]any{"title": "Gamma", "readers": []string{"nobody"}}, http.StatusNotFound},
		{http.MethodPost, "/admin/collections", map[string]any{"title": "Gamma", "owner": "alice"}, http.StatusBadRequest},
		{http.MethodPost, "/admin/collections", `{"title":`, http.StatusBadRequest},
		{http.MethodPost, "/admin/collections", `{"title": 7}`, http.StatusBadRequest},
		{http.MethodPut, "/admin/collections/" + c.ID + "/grants/alice", `{"read": "yes"}`, http.StatusBadRequest},
		{http.MethodPut, "/admin/collections/" + c.ID + "/grants/alice", `nope`, http.StatusBadRequest},
		{http.MethodPut, "/admin/collections/" + c.ID + "/grants/nobody", map[string]bool{"read": true}, http.StatusNotFound},
		{http.MethodPut, "/admin/collections/" + uuid.NewString() + "/grants/alice", map[string]bool{"read": true}, http.StatusNotFound},
		{http.MethodDelete, "/admin/collections/" + uuid.NewString(), nil, http.StatusNotFound},
	} {
		root.do(tc.method, tc.path, tc.body).wantError(tc.status)
	}
	root.do(http.MethodGet, "/admin/collections", nil).wantJSON(http.StatusOK, &cols)
	if len(cols) != 2 {
		t.Errorf("refused requests created collections: %+v", cols)
	}

	root.do(http.MethodPut, "/admin/collections/"+c.ID+"/grants/alice", map[string]bool{"read": true}).want(http.StatusOK)
	root.do(http.MethodDelete, "/admin/collections/"+c.ID, nil).want(http.StatusNoContent)
	root.do(http.MethodDelete, "/admin/collections/"+c.ID, nil).wantError(http.StatusNotFound)
	if s := alice.taxiiGet("/api/collections/" + c.ID + "/"); s != http.StatusNotFound {
		t.Errorf("deleted collection on TAXII: %d, want 404", s)
	}
	root.do(http.MethodGet, "/admin/collections", nil).wantJSON(http.StatusOK, &cols)
	if len(cols) != 1 || cols[0].ID != bare.ID {
		t.Errorf("collections after delete = %+v", cols)
	}
	// The alias is free again.
	root.do(http.MethodPost, "/admin/collections", map[string]any{"title": "Alpha again", "alias": "alpha"}).want(http.StatusCreated)
}

func TestTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	root := e.root()
	var c collection
	root.do(http.MethodPost, "/admin/collections", map[string]any{"title": "Alpha", "readers": []string{"alice"}}).wantJSON(http.StatusCreated, &c)

	var tok token
	r := root.do(http.MethodPost, "/admin/tokens", map[string]string{"user": "alice"})
	r.wantJSON(http.StatusCreated, &tok)
	if !strings.HasPrefix(tok.Token, access.TokenPrefix) || tok.ID == "" || tok.User != "alice" || tok.Role != access.RoleAnalyst || tok.Revoked {
		t.Fatalf("created token = %+v", tok)
	}
	// Tokens expire by default (issue 11).
	if tok.Expires == nil || !tok.Expires.Equal(e.now().Add(access.DefaultTokenExpiry)) {
		t.Errorf("created token expires %v, want the default %v after now", tok.Expires, access.DefaultTokenExpiry)
	}
	secret := tok.Token

	// The secret works as a Bearer token on TAXII.
	bearer := e.bearer(secret)
	if s := bearer.taxiiGet("/api/collections/" + c.ID + "/objects/"); s != http.StatusOK {
		t.Errorf("token on TAXII: %d, want 200", s)
	}

	// It is shown once: listings never hold it.
	var list []token
	r = root.do(http.MethodGet, "/admin/tokens", nil)
	r.wantJSON(http.StatusOK, &list)
	if bytes.Contains(r.body, []byte(secret)) || bytes.Contains(r.body, []byte(access.HashToken(secret))) {
		t.Errorf("token listing reveals the secret or its hash: %s", r.body)
	}
	if len(list) != 1 || list[0].ID != tok.ID || list[0].Token != "" {
		t.Errorf("tokens = %+v", list)
	}

	// A read-only token with an expiry.
	var ro token
	root.do(http.MethodPost, "/admin/tokens", map[string]string{"user": "alice", "role": "read-only", "expires": "1h"}).wantJSON(http.StatusCreated, &ro)
	if ro.Role != access.RoleReadOnly || ro.Expires == nil || !ro.Expires.Equal(e.now().Add(time.Hour)) {
		t.Errorf("token with expiry = %+v, want expires %v", ro, e.now().Add(time.Hour))
	}
	var rootTok token
	root.do(http.MethodPost, "/admin/tokens", map[string]string{"user": "root"}).wantJSON(http.StatusCreated, &rootTok)
	root.do(http.MethodGet, "/admin/tokens?user=alice", nil).wantJSON(http.StatusOK, &list)
	if len(list) != 2 {
		t.Errorf("alice's tokens = %+v", list)
	}
	root.do(http.MethodGet, "/admin/tokens?user=root", nil).wantJSON(http.StatusOK, &list)
	if len(list) != 1 || list[0].ID != rootTok.ID {
		t.Errorf("root's tokens = %+v", list)
	}
	// A new admin token can use the admin API.
	e.bearer(rootTok.Token).do(http.MethodGet, "/admin/users", nil).want(http.StatusOK)

	for _, tc := range []struct {
		body   any
		status int
	}{
		{map[string]string{"user": "nobody"}, http.StatusNotFound},
		{map[string]string{"user": "alice", "role": "admin"}, http.StatusBadRequest},
		{map[string]string{"user": "alice", "role": "emperor"}, http.StatusBadRequest},
		{map[string]string{"user": "alice", "expires": "soon"}, http.StatusBadRequest},
		{map[string]string{"user": "alice", "expires": "-1h"}, http.StatusBadRequest},
		{map[string]string{"user": "alice", "scope": "all"}, http.StatusBadRequest},
		{`{"user":"alice"`, http.StatusBadRequest},
		{`17`, http.StatusBadRequest},
	} {
		root.do(http.MethodPost, "/admin/tokens", tc.body).wantError(tc.status)
	}

	// Revoking stops the token at once.
	root.do(http.MethodDelete, "/admin/tokens/"+tok.ID, nil).want(http.StatusNoContent)
	if s := bearer.taxiiGet("/api/collections/"); s != http.StatusUnauthorized {
		t.Errorf("revoked token on TAXII: %d, want 401", s)
	}
	root.do(http.MethodGet, "/admin/tokens?user=alice", nil).wantJSON(http.StatusOK, &list)
	for _, l := range list {
		if l.ID == tok.ID && !l.Revoked {
			t.Errorf("revoked token listed as not revoked: %+v", l)
		}
	}
	root.do(http.MethodDelete, "/admin/tokens/"+uuid.NewString(), nil).wantError(http.StatusNotFound)
	root.do(http.MethodDelete, "/admin/tokens/"+rootTok.ID, nil).want(http.StatusNoContent)
	e.bearer(rootTok.Token).do(http.MethodGet, "/admin/users", nil).wantError(http.StatusUnauthorized)

	// Deleting a user removes its tokens.
	var other token
	root.do(http.MethodPost, "/admin/tokens", map[string]string{"user": "alice"}).wantJSON(http.StatusCreated, &other)
	if s := e.bearer(other.Token).taxiiGet("/api/"); s != http.StatusOK {
		t.Fatalf("token before deleting its user: %d", s)
	}
	root.do(http.MethodDelete, "/admin/users/alice", nil).want(http.StatusNoContent)
	if s := e.bearer(other.Token).taxiiGet("/api/"); s != http.StatusUnauthorized {
		t.Errorf("token of a deleted user: %d, want 401", s)
	}
}

func TestExpiredToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// The admin API's clock is a fixed instant in the past of the real
	// clock the authenticator uses: a one-hour token made "then" has expired.
	e.setNow(time.Now().Add(-2 * time.Hour))
	var tok token
	e.root().do(http.MethodPost, "/admin/tokens", map[string]string{"user": "root", "expires": "1h"}).wantJSON(http.StatusCreated, &tok)
	e.bearer(tok.Token).do(http.MethodGet, "/admin/users", nil).wantError(http.StatusUnauthorized)
	if s := e.bearer(tok.Token).taxiiGet("/api/"); s != http.StatusUnauthorized {
		t.Errorf("expired token on TAXII: %d", s)
	}
	e.setNow(time.Now())
	e.root().do(http.MethodPost, "/admin/tokens", map[string]string{"user": "root", "expires": "1h"}).wantJSON(http.StatusCreated, &tok)
	e.bearer(tok.Token).do(http.MethodGet, "/admin/users", nil).want(http.StatusOK)
}

func TestUnknownEndpoints(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	root := e.root()
	for _, p := range []string{"/admin/", "/admin/nothing", "/admin/users/root/extra"} {
		root.do(http.MethodGet, p, nil).wantError(http.StatusNotFound)
	}
	// Mounting the admin API leaves TAXII's handling of other paths alone.
	if s := root.taxiiGet("/api/collections"); s != http.StatusNotFound {
		t.Errorf("TAXII path without trailing slash: %d, want 404", s)
	}
	if s := root.taxiiGet("/taxii2/"); s != http.StatusOK {
		t.Errorf("discovery beside the admin API: %d", s)
	}
}
