package taxii_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/taxii"
)

func TestMediaType(t *testing.T) {
	if taxii.MediaType != taxiiMT {
		t.Errorf("taxii.MediaType = %q, want %q (TAXII 2.1 §1.6.8)", taxii.MediaType, taxiiMT)
	}
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *taxii.Config) {
		c.Title = "Test CERT"
		c.Description = "a test server"
		c.Contact = "cert@example.org"
	})
	alice := e.user("alice", access.RoleAnalyst)
	d := alice.get("/taxii2/").ok(http.StatusOK).object()
	if d["title"] != "Test CERT" || d["description"] != "a test server" || d["contact"] != "cert@example.org" {
		t.Errorf("discovery = %v", d)
	}
	if d["default"] != "/api/" {
		t.Errorf("default = %v, want /api/", d["default"])
	}
	roots, _ := d["api_roots"].([]any)
	if len(roots) != 1 || roots[0] != "/api/" {
		t.Errorf("api_roots = %v, want [/api/]", d["api_roots"])
	}
	// The API root the discovery names answers.
	alice.get(roots[0].(string)).ok(http.StatusOK)
}

func TestDiscoveryOmitsUnsetProperties(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.user("alice", access.RoleAnalyst).get("/taxii2/").ok(http.StatusOK).object()
	if d["title"] != "Mitra" {
		t.Errorf("default title = %v, want Mitra", d["title"])
	}
	for _, k := range []string{"description", "contact"} {
		if _, ok := d[k]; ok {
			t.Errorf("discovery has %s although none is configured: %v", k, d)
		}
	}
}

func TestAPIRoot(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *taxii.Config) { c.MaxContentLength = 12345; c.Description = "the root" })
	r := e.user("alice", access.RoleReadOnly).get("/api/").ok(http.StatusOK).object()
	if r["title"] != "Mitra" || r["description"] != "the root" {
		t.Errorf("api root = %v", r)
	}
	versions, _ := r["versions"].([]any)
	if len(versions) != 1 || versions[0] != taxiiMT {
		t.Errorf("versions = %v, want [%s]", r["versions"], taxiiMT)
	}
	if num(t, r, "max_content_length") != 12345 {
		t.Errorf("max_content_length = %v, want 12345", r["max_content_length"])
	}
}

func TestAPIRootDefaultMaxContentLength(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.user("alice", access.RoleAnalyst).get("/api/").ok(http.StatusOK).object()
	if num(t, r, "max_content_length") != 64<<20 {
		t.Errorf("max_content_length = %v, want %d", r["max_content_length"], 64<<20)
	}
}

func TestCustomAPIRoot(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *taxii.Config) { c.APIRoot = "/trustgroup1/" })
	alice := e.user("alice", access.RoleAnalyst)
	d := alice.get("/taxii2/").ok(http.StatusOK).object()
	if d["default"] != "/trustgroup1/" {
		t.Errorf("default = %v", d["default"])
	}
	alice.get("/trustgroup1/").ok(http.StatusOK)
	alice.get("/trustgroup1/collections/").ok(http.StatusOK)
	alice.get("/api/").wantError(http.StatusNotFound)
}

// collectionsOf decodes a collections resource.
func collectionsOf(t *testing.T, r *resp) []map[string]any {
	t.Helper()
	m := r.ok(http.StatusOK).object()
	list, _ := m["collections"].([]any)
	var out []map[string]any
	for _, c := range list {
		out = append(out, c.(map[string]any))
	}
	return out
}

func TestCollectionsListsOnlyGrantedCollections(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", access.RoleAnalyst)
	bob := e.user("bob", access.RoleAnalyst)
	carol := e.user("carol", access.RoleAnalyst)
	ro := e.user("reo", access.RoleReadOnly)
	sensor := e.user("sensor", access.RoleSensor)
	a := e.collection("alpha", []string{"alice", "reo"}, []string{"alice", "reo", "sensor"})
	b := e.collection("", []string{"alice", "sensor"}, []string{"bob"})
	e.collection("hidden", nil, nil)

	type access struct {
		id          string
		read, write bool
	}
	check := func(c *client, want []access) {
		t.Helper()
		got := collectionsOf(t, c.get("/api/collections/"))
		if len(got) != len(want) {
			t.Fatalf("%s sees %d collections, want %d: %v", c.name, len(got), len(want), got)
		}
		for i, w := range want {
			g := got[i]
			if g["id"] != w.id || g["can_read"] != w.read || g["can_write"] != w.write {
				t.Errorf("%s: collection %d = %v, want id %s can_read %v can_write %v", c.name, i, g, w.id, w.read, w.write)
			}
			mts, _ := g["media_types"].([]any)
			if len(mts) != 1 || mts[0] != stixMT {
				t.Errorf("%s: media_types = %v", c.name, g["media_types"])
			}
		}
	}
	check(alice, []access{{a.ID, true, true}, {b.ID, true, false}})
	check(bob, []access{{b.ID, false, true}})
	// The read-only role never writes, whatever the grant says; a sensor
	// never reads.
	check(ro, []access{{a.ID, true, false}})
	check(sensor, []access{{a.ID, false, true}})

	// The order is stable across requests (TAXII 2.1 §3.3).
	first := alice.get("/api/collections/").body
	for range 3 {
		if again := alice.get("/api/collections/").body; !bytes.Equal(first, again) {
			t.Fatalf("collections changed between requests:\n%s\n%s", first, again)
		}
	}

	// No collection: an empty object, without the collections key (§5.1.1).
	r := carol.get("/api/collections/").ok(http.StatusOK)
	if got := strings.TrimSpace(string(r.body)); got != "{}" {
		t.Errorf("collections for a user without grants = %s, want {}", got)
	}
}

func TestCollectionByIDAndAlias(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", access.RoleAnalyst)
	bob := e.user("bob", access.RoleAnalyst)
	carol := e.user("carol", access.RoleAnalyst)
	c := e.collection("alpha", []string{"alice"}, []string{"alice", "bob"})

	byID := alice.get(collectionPath(c.ID)).ok(http.StatusOK)
	byAlias := alice.get(collectionPath("alpha")).ok(http.StatusOK)
	if !bytes.Equal(byID.body, byAlias.body) {
		t.Errorf("by id and by alias differ:\n%s\n%s", byID.body, byAlias.body)
	}
	m := byID.object()
	want := map[string]any{"id": c.ID, "title": "Collection alpha", "description": "about alpha", "alias": "alpha", "can_read": true, "can_write": true}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if mts, _ := m["media_types"].([]any); len(mts) != 1 || mts[0] != stixMT {
		t.Errorf("media_types = %v", m["media_types"])
	}

	w := bob.get(collectionPath(c.ID)).ok(http.StatusOK).object()
	if w["can_read"] != false || w["can_write"] != true {
		t.Errorf("writer-only: can_read %v can_write %v, want false true", w["can_read"], w["can_write"])
	}

	// A collection without a grant looks exactly like one that does not exist.
	hidden := carol.get(collectionPath(c.ID))
	hidden.wantError(http.StatusNotFound)
	missing := carol.get(collectionPath("6f1c3a52-5d7e-4c1b-9a7e-3f1e2d4c5b6a"))
	missing.wantError(http.StatusNotFound)
	if !bytes.Equal(hidden.body, missing.body) {
		t.Errorf("a hidden collection is distinguishable from a missing one:\n%s\n%s", hidden.body, missing.body)
	}
	hiddenByAlias := carol.get(collectionPath("alpha"))
	hiddenByAlias.wantError(http.StatusNotFound)
	// The same holds on every endpoint under the collection.
	for _, p := range []string{objectsPath(c.ID), manifestPath(c.ID), objectPath(c.ID, malwareID(1)), versionsPath(c.ID, malwareID(1))} {
		carol.get(p).wantError(http.StatusNotFound)
	}
	carol.do(http.MethodPost, objectsPath(c.ID), envelope(malware(1, created))).wantError(http.StatusNotFound)
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	// Sign-ins fail here on purpose, more often than the default throttle
	// allows (TestSignInThrottle tests it).
	e := newEnv(t, lenientThrottle)
	e.user("alice", access.RoleAnalyst)
	c := e.collection("alpha", []string{"alice"}, []string{"alice"})
	good, _, err := access.CreateToken(e.ctx, e.st, "alice", "", 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	expired, _, err := access.CreateToken(e.ctx, e.st, "alice", "", time.Hour, time.Now().Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	revoked, rt, err := access.CreateToken(e.ctx, e.st, "alice", "", 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.RevokeToken(e.ctx, rt.ID); err != nil {
		t.Fatal(err)
	}
	unknown, _, err := access.NewToken()
	if err != nil {
		t.Fatal(err)
	}

	paths := []string{"/taxii2/", "/api/", "/api/collections/", collectionPath(c.ID), objectsPath(c.ID), manifestPath(c.ID),
		objectPath(c.ID, malwareID(1)), versionsPath(c.ID, malwareID(1)), statusPath("2d086da7-4bdc-4f91-900e-d77486753710")}

	refused := map[string]*client{
		"no credentials":    e.anonymous(),
		"wrong password":    e.basic("alice", "not the password"),
		"unknown user":      e.basic("mallory", password),
		"empty password":    e.basic("alice", ""),
		"expired token":     e.bearer(expired),
		"revoked token":     e.bearer(revoked),
		"unknown token":     e.bearer(unknown),
		"not a Mitra token": e.bearer("abc123"),
		"empty token":       e.bearer(""),
		"bad Basic":         {t: t, base: e.ts.URL, auth: func(r *http.Request) { r.Header.Set("Authorization", "Basic !!!") }},
		"unknown scheme":    {t: t, base: e.ts.URL, auth: func(r *http.Request) { r.Header.Set("Authorization", "Digest "+good) }},
	}
	for name, cl := range refused {
		for _, p := range paths {
			r := cl.get(p)
			r.wantError(http.StatusUnauthorized)
			if wa := r.header.Get("WWW-Authenticate"); !strings.Contains(wa, "Basic") {
				t.Errorf("%s: GET %s: WWW-Authenticate = %q, want a Basic challenge", name, p, wa)
			}
		}
		// Writes and deletes too, regardless of the method (TAXII 2.1 §1.6.9).
		cl.do(http.MethodPost, objectsPath(c.ID), envelope(malware(1, created))).wantError(http.StatusUnauthorized)
		cl.do(http.MethodDelete, objectPath(c.ID, malwareID(1)), nil).wantError(http.StatusUnauthorized)
	}
	// Nothing was written by the refused requests.
	alice := e.basic("alice", password)
	if env := alice.get(objectsPath(c.ID)).envelope(); len(env.Objects) != 0 {
		t.Errorf("refused requests stored objects: %s", alice.get(objectsPath(c.ID)).body)
	}

	for _, cl := range []*client{alice, e.bearer(good), {t: t, base: e.ts.URL, auth: func(r *http.Request) { r.Header.Set("Authorization", "bearer "+good) }}} {
		for _, p := range paths[:6] {
			cl.get(p).ok(http.StatusOK)
		}
	}
	e.bearer(good).post(c.ID, malware(1, created))
}

func TestDeletedUserIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", access.RoleAnalyst)
	tok, _, err := access.CreateToken(e.ctx, e.st, "alice", "", 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	alice.get("/api/collections/").ok(http.StatusOK)
	e.bearer(tok).get("/api/collections/").ok(http.StatusOK)
	if err := e.st.DeleteUser(e.ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	alice.get("/api/collections/").wantError(http.StatusUnauthorized)
	e.bearer(tok).get("/api/collections/").wantError(http.StatusUnauthorized)
}

func TestForbidden(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	writer := e.user("writer", access.RoleAnalyst)
	reader := e.user("reader", access.RoleAnalyst)
	ro := e.user("ro", access.RoleReadOnly)
	sensor := e.user("sensor", access.RoleSensor)
	c := e.collection("alpha", []string{"reader", "ro", "sensor"}, []string{"writer", "ro", "sensor"})

	// A writer without can_read may add but not read.
	st := writer.post(c.ID, malware(1, created))
	if num(t, st, "success_count") != 1 {
		t.Fatalf("writer could not add: %v", st)
	}
	for _, cl := range []*client{writer, sensor} {
		for _, p := range []string{objectsPath(c.ID), manifestPath(c.ID), objectPath(c.ID, malwareID(1)), versionsPath(c.ID, malwareID(1))} {
			cl.get(p).wantError(http.StatusForbidden)
		}
	}
	sensor.post(c.ID, malware(2, created))

	// A reader without can_write may read but not add.
	for _, cl := range []*client{reader, ro} {
		if env := cl.get(objectsPath(c.ID)).envelope(); len(env.Objects) != 2 {
			t.Errorf("%s reads %d objects, want 2", cl.name, len(env.Objects))
		}
		cl.do(http.MethodPost, objectsPath(c.ID), envelope(malware(3, created))).wantError(http.StatusForbidden)
	}
	// 403 takes precedence over checking the body.
	reader.do(http.MethodPost, objectsPath(c.ID), []byte("not json"), "Content-Type", "application/json").wantError(http.StatusForbidden)
	if env := reader.get(withQuery(objectsPath(c.ID), "match[id]="+malwareID(3))).envelope(); len(env.Objects) != 0 {
		t.Errorf("a refused POST stored its object")
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", access.RoleAnalyst)
	c := e.collection("alpha", []string{"alice"}, []string{"alice"})
	alice.post(c.ID, malware(1, created))

	for _, p := range []string{
		objectPath(c.ID, malwareID(2)),
		versionsPath(c.ID, malwareID(2)),
		statusPath("2d086da7-4bdc-4f91-900e-d77486753710"),
		statusPath("not-a-uuid"),
		collectionPath("6f1c3a52-5d7e-4c1b-9a7e-3f1e2d4c5b6a"),
		objectsPath("no-such-alias"),
		"/",
		"/nothing/here/",
		"/api/collections/" + c.ID + "/objects/" + malwareID(1) + "/versions/extra/",
		// TAXII paths end with '/' (TAXII 2.1 §3.1).
		"/taxii2",
		"/api",
		"/api/collections",
		"/api/collections/" + c.ID,
		"/api/collections/" + c.ID + "/objects",
		"/api/collections/" + c.ID + "/manifest",
		"/api/collections/" + c.ID + "/objects/" + malwareID(1),
		"/api/collections/" + c.ID + "/objects/" + malwareID(1) + "/versions",
	} {
		alice.get(p).wantError(http.StatusNotFound)
	}
	alice.do(http.MethodPost, "/api/collections/"+c.ID+"/objects", envelope(malware(2, created))).wantError(http.StatusNotFound)
	alice.do(http.MethodDelete, objectPath(c.ID, malwareID(2)), nil).wantError(http.StatusNotFound)
	// The object that exists is still there.
	alice.get(objectPath(c.ID, malwareID(1))).ok(http.StatusOK)
}

func TestMethodNotAllowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", access.RoleAnalyst)
	c := e.collection("alpha", []string{"alice"}, []string{"alice"})
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodPost, "/taxii2/", "GET"},
		{http.MethodDelete, "/api/", "GET"},
		{http.MethodPut, "/api/collections/", "GET"},
		{http.MethodPost, collectionPath(c.ID), "GET"},
		{http.MethodPost, manifestPath(c.ID), "GET"},
		{http.MethodDelete, objectsPath(c.ID), "GET, POST"},
		{http.MethodPut, objectsPath(c.ID), "GET, POST"},
		{http.MethodPost, objectPath(c.ID, malwareID(1)), "DELETE, GET"},
		{http.MethodPatch, objectPath(c.ID, malwareID(1)), "DELETE, GET"},
		{http.MethodDelete, versionsPath(c.ID, malwareID(1)), "GET"},
		{http.MethodPost, statusPath("2d086da7-4bdc-4f91-900e-d77486753710"), "GET"},
	} {
		r := alice.do(tc.method, tc.path, nil)
		r.wantError(http.StatusMethodNotAllowed)
		got := strings.Split(r.header.Get("Allow"), ", ")
		want := strings.Split(tc.allow, ", ")
		if !sameSet(got, want) {
			t.Errorf("%s %s: Allow = %q, want %q", tc.method, tc.path, r.header.Get("Allow"), tc.allow)
		}
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestHead(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", access.RoleAnalyst)
	c := e.collection("alpha", []string{"alice"}, []string{"alice"})
	r := alice.do(http.MethodHead, collectionPath(c.ID), nil).ok(http.StatusOK)
	if len(r.body) != 0 {
		t.Errorf("HEAD answered with a body: %s", r.body)
	}
	alice.do(http.MethodHead, collectionPath("6f1c3a52-5d7e-4c1b-9a7e-3f1e2d4c5b6a"), nil).ok(http.StatusNotFound)
}

func TestAcceptHeader(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", access.RoleAnalyst)
	c := e.collection("alpha", []string{"alice"}, []string{"alice"})
	alice.post(c.ID, malware(1, created))

	paths := []string{"/taxii2/", "/api/", "/api/collections/", collectionPath(c.ID), objectsPath(c.ID), manifestPath(c.ID),
		objectPath(c.ID, malwareID(1)), versionsPath(c.ID, malwareID(1))}
	for _, accept := range []string{
		taxiiMT,
		"application/taxii+json",
		"application/taxii+json; version=2.1",
		"application/taxii+json;version=2.1,application/stix+json;version=2.1",
		"application/json;q=0.9, application/taxii+json;version=2.1",
	} {
		for _, p := range paths {
			alice.do(http.MethodGet, p, nil, "Accept", accept).ok(http.StatusOK)
		}
	}
	for _, accept := range []string{
		"application/json",
		"application/taxii+json;version=2.0",
		"application/stix+json;version=2.1",
		"text/html",
		"application/taxii+json;version=2.1;q=0",
	} {
		for _, p := range paths {
			alice.do(http.MethodGet, p, nil, "Accept", accept).wantError(http.StatusNotAcceptable)
		}
		alice.do(http.MethodPost, objectsPath(c.ID), envelope(malware(2, created)), "Accept", accept).wantError(http.StatusNotAcceptable)
		alice.do(http.MethodDelete, objectPath(c.ID, malwareID(1)), nil, "Accept", accept).wantError(http.StatusNotAcceptable)
	}
	// The refused POST and DELETE changed nothing.
	if got := versionsOf(t, alice.get(objectsPath(c.ID)).envelope()); len(got) != 1 || got[0] != malwareID(1)+"@"+created {
		t.Errorf("objects after refused requests: %v", got)
	}
}

func TestPostContentType(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", access.RoleAnalyst)
	c := e.collection("alpha", []string{"alice"}, []string{"alice"})
	body := envelope(malware(1, created))
	for _, ct := range []string{"application/json", "application/stix+json;version=2.1", "application/taxii+json;version=2.0", "text/plain", ""} {
		alice.do(http.MethodPost, objectsPath(c.ID), body, "Content-Type", ct).wantError(http.StatusUnsupportedMediaType)
	}
	if env := alice.get(objectsPath(c.ID)).envelope(); len(env.Objects) != 0 {
		t.Fatalf("a refused POST stored objects")
	}
	alice.do(http.MethodPost, objectsPath(c.ID), body, "Content-Type", "application/taxii+json").ok(http.StatusAccepted)
	alice.do(http.MethodPost, objectsPath(c.ID), envelope(malware(2, created)), "Content-Type", "application/taxii+json; version=2.1").ok(http.StatusAccepted)
}

func TestPostTooLarge(t *testing.T) {
	t.Parallel()
	const limit = 2048
	e := newEnv(t, func(c *taxii.Config) { c.MaxContentLength = limit })
	alice := e.user("alice", access.RoleAnalyst)
	c := e.collection("alpha", []string{"alice"}, []string{"alice"})
	if got := num(t, alice.get("/api/").object(), "max_content_length"); got != limit {
		t.Fatalf("max_content_length = %d, want %d", got, limit)
	}

	// An envelope of exactly max_content_length bytes is taken.
	fit := padEnvelope(t, malware(1, created), limit)
	st := alice.do(http.MethodPost, objectsPath(c.ID), fit).ok(http.StatusAccepted).object()
	if num(t, st, "success_count") != 1 {
		t.Fatalf("status = %v", st)
	}

	// One byte more is refused, with a declared length…
	big := padEnvelope(t, malware(2, created), limit+1)
	alice.do(http.MethodPost, objectsPath(c.ID), big).wantError(http.StatusRequestEntityTooLarge)
	// …and when the length is not declared (chunked).
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.ts.URL+objectsPath(c.ID), io.MultiReader(bytes.NewReader(big)))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1
	req.Header.Set("Accept", taxiiMT)
	req.Header.Set("Content-Type", taxiiMT)
	req.SetBasicAuth("alice", password)
	alice.send(req).wantError(http.StatusRequestEntityTooLarge)

	got := versionsOf(t, alice.get(objectsPath(c.ID)).envelope())
	wantList(t, "objects after the refused POSTs", got, []string{malwareID(1) + "@" + created})
}

// padEnvelope returns an envelope holding obj that is exactly size bytes.
func padEnvelope(t *testing.T, obj string, size int) []byte {
	t.Helper()
	b := envelope(obj)
	if len(b) > size {
		t.Fatalf("envelope already has %d bytes", len(b))
	}
	// Whitespace between tokens is insignificant.
	return append(b[:len(b)-1:len(b)-1], append(bytes.Repeat([]byte(" "), size-len(b)), '}')...)
}

func TestPostMalformed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", access.RoleAnalyst)
	c := e.collection("alpha", []string{"alice"}, []string{"alice"})
	for _, body := range []string{
		"",
		"not json",
		`{"objects":[`,
		`{"objects":[` + malware(1, created) + `]`,
		`[` + malware(1, created) + `]`,
		`{"objects":{}}`,
		`{"objects":"x"}`,
		`"objects"`,
	} {
		alice.do(http.MethodPost, objectsPath(c.ID), []byte(body)).wantError(http.StatusUnprocessableEntity)
	}
	if env := alice.get(objectsPath(c.ID)).envelope(); len(env.Objects) != 0 {
		t.Errorf("a malformed POST stored objects")
	}
}

// TestErrorsAreTAXII checks the shape of an error the handlers do not
// produce themselves (an unknown path) as well as a handler's.
func TestErrorsAreTAXII(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", access.RoleAnalyst)
	r := alice.get("/no/such/path/")
	m := r.wantError(http.StatusNotFound)
	if _, ok := m["description"].(string); !ok {
		t.Errorf("error without description: %v", m)
	}
	if r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q", r.header.Get("X-Content-Type-Options"))
	}
}

// lenientThrottle gives the server an authenticator that delays sign-ins
// only after many failures.
func lenientThrottle(c *taxii.Config) {
	a, err := access.NewAuthenticatorWith(c.Store.(access.UserStore), access.AuthOptions{Throttle: access.ThrottleConfig{Free: 100000}})
	if err != nil {
		panic(err)
	}
	c.Auth = a
}
