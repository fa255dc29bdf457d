package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/web"
	"github.com/prometheus/client_golang/prometheus"
)

// pages are the console pages every signed-in user may open, with the
// text each must show.
var pages = []string{"/console/", "/console/search?q=scanner", "/console/lookup?v=" + greenIP, "/console/indicator", "/console/sightings"}

// TestCookiesFlagged: the session cookie is HttpOnly and SameSite=Strict,
// and Secure under TLS; the sign-in form's cookie too.
func TestCookiesFlagged(t *testing.T) {
	for _, tls := range []bool{false, true} {
		w := newWorld(t, tls)
		b := w.browser()
		page := b.get("/console/signin")
		pre := setCookie(page.res, "mitra_signin")
		res := b.signIn("alice", password)
		s := setCookie(res.res, "mitra_session")
		if s == nil || pre == nil {
			t.Fatalf("tls=%v: cookies %v %v", tls, s, pre)
		}
		for _, c := range []*http.Cookie{s, pre} {
			must(t, c.HttpOnly, "tls=%v: %s not HttpOnly", tls, c.Name)
			must(t, c.SameSite == http.SameSiteStrictMode, "tls=%v: %s SameSite=%v", tls, c.Name, c.SameSite)
			must(t, c.Secure == tls, "tls=%v: %s Secure=%v", tls, c.Name, c.Secure)
		}
		must(t, s.MaxAge > 0 && s.MaxAge <= int((8*time.Hour).Seconds()), "session cookie max age %d", s.MaxAge)
		if got := b.get("/console/"); got.status != http.StatusOK || !strings.Contains(got.body, "alice") {
			t.Errorf("tls=%v: dashboard after sign-in: %d", tls, got.status)
		}
	}
}

// TestCSRFRequired: every state-changing request without the session's
// CSRF token, or with another session's, is refused and changes nothing;
// the sign-in form needs its own token.
func TestCSRFRequired(t *testing.T) {
	w := newWorld(t, false)
	b := w.browser()
	b.mustSignIn("root")
	other := w.browser()
	other.mustSignIn("alice")
	otherToken := other.csrf("/console/")
	good := b.csrf("/console/")
	posts := []struct {
		path string
		form url.Values
	}{
		{"/console/language", url.Values{"lang": {"ru"}}},
		{"/console/signout", url.Values{}},
		{"/console/indicator", url.Values{"name": {"x"}, "pattern": {"[ipv4-addr:value = '10.1.1.1']"}, "collection": {w.shared}, "tlp": {"TLP:GREEN"}}},
		{"/console/admin?s=users", url.Values{"action": {"user.create"}, "name": {"mallory"}, "password": {"mallory-password"}, "role": {"admin"}}},
		{"/console/lookup", url.Values{"values": {greenIP}}},
	}
	for _, p := range posts {
		for _, token := range []string{"", "forged", otherToken} {
			form := url.Values{}
			for k, v := range p.form {
				form[k] = v
			}
			if token != "" {
				form.Set("csrf", token)
			}
			if r := b.post(p.path, form); r.status != http.StatusForbidden {
				t.Errorf("POST %s with token %q: %d, want 403", p.path, token, r.status)
			}
		}
	}
	for _, token := range []string{"", "forged", otherToken} {
		if r := b.postJSON("/console/api/pattern", token, map[string]string{"pattern": "[x:y = 1]"}); r.status != http.StatusForbidden {
			t.Errorf("pattern check with token %q: %d", token, r.status)
		}
	}
	// Nothing happened: still signed in, in English, no user, no indicator.
	if r := b.get("/console/"); r.status != http.StatusOK || !strings.Contains(r.body, `lang="en"`) {
		t.Errorf("after refused posts: %d", r.status)
	}
	if _, err := w.st.GetUser(t.Context(), "mallory"); err == nil {
		t.Error("user created without a CSRF token")
	}
	// With the token, the same requests work.
	if r := b.post("/console/language", url.Values{"lang": {"ru"}, "csrf": {good}, "next": {"/console/"}}); r.status != http.StatusSeeOther {
		t.Errorf("language with token: %d", r.status)
	}
	if r := b.post("/console/admin?s=users", url.Values{"action": {"user.create"}, "name": {"carol"}, "password": {"carol-password"}, "role": {"analyst"}, "csrf": {good}}); r.status != http.StatusOK || !strings.Contains(r.body, "carol") {
		t.Errorf("create user with token: %d", r.status)
	}
	// Sign-in: without the form's cookie and token, refused before any
	// password is checked.
	c := w.browser()
	if r := c.post("/console/signin", url.Values{"user": {"alice"}, "password": {password}}); r.status != http.StatusForbidden || c.cookie("mitra_session") != nil {
		t.Errorf("sign-in without token: %d", r.status)
	}
	c.get("/console/signin")
	if r := c.post("/console/signin", url.Values{"user": {"alice"}, "password": {password}, "csrf": {"guess"}}); r.status != http.StatusForbidden {
		t.Errorf("sign-in with a wrong token: %d", r.status)
	}
}

// TestSessionFixation: a session id planted in the browser before sign-in
// is not the one signed in; signing in again replaces the session, and
// the old one stops working.
func TestSessionFixation(t *testing.T) {
	w := newWorld(t, false)
	b := w.browser()
	u, _ := url.Parse(w.ts.URL)
	planted := "attacker-chosen-session-id-0123456789"
	b.jar.SetCookies(u, []*http.Cookie{{Name: "mitra_session", Value: planted, Path: "/"}})
	b.mustSignIn("alice")
	first := b.cookie("mitra_session")
	if first == nil || first.Value == planted {
		t.Fatalf("session after sign-in = %v: the planted id was kept", first)
	}
	attacker := w.browser()
	attacker.jar.SetCookies(u, []*http.Cookie{{Name: "mitra_session", Value: planted, Path: "/"}})
	if r := attacker.get("/console/"); r.status != http.StatusSeeOther {
		t.Errorf("planted id after the victim's sign-in: %d", r.status)
	}
	// Signing in again (e.g. as another user) ends the earlier session.
	b.mustSignIn("alice")
	second := b.cookie("mitra_session")
	if second.Value == first.Value {
		t.Fatal("second sign-in kept the session id")
	}
	replay := w.browser()
	replay.jar.SetCookies(u, []*http.Cookie{{Name: "mitra_session", Value: first.Value, Path: "/"}})
	if r := replay.get("/console/"); r.status != http.StatusSeeOther {
		t.Errorf("earlier session after a new sign-in: %d", r.status)
	}
}

// TestSessionExpiryAndSignOut: a session ends at its expiry and at sign-out;
// a copy of its cookie then signs nobody in.
func TestSessionExpiryAndSignOut(t *testing.T) {
	w := newWorld(t, false)
	u, _ := url.Parse(w.ts.URL)
	b := w.browser()
	b.mustSignIn("alice")
	copyOf := b.cookie("mitra_session").Value
	w.clock.advance(8*time.Hour - time.Second)
	if r := b.get("/console/"); r.status != http.StatusOK {
		t.Fatalf("just before expiry: %d", r.status)
	}
	w.clock.advance(time.Second)
	if r := b.get("/console/"); r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/console/signin") {
		t.Errorf("after expiry: %d %s", r.status, r.header.Get("Location"))
	}
	if r := b.postJSON("/console/api/pattern", "x", map[string]string{"pattern": "x"}); r.status != http.StatusUnauthorized {
		t.Errorf("API after expiry: %d", r.status)
	}
	b.mustSignIn("alice")
	token := b.csrf("/console/")
	stolen := b.cookie("mitra_session").Value
	if r := b.post("/console/signout", url.Values{"csrf": {token}}); r.status != http.StatusSeeOther {
		t.Fatalf("sign out: %d", r.status)
	}
	for _, v := range []string{copyOf, stolen} {
		c := w.browser()
		c.jar.SetCookies(u, []*http.Cookie{{Name: "mitra_session", Value: v, Path: "/"}})
		if r := c.get("/console/"); r.status != http.StatusSeeOther {
			t.Errorf("ended session still works: %d", r.status)
		}
	}
	// A password change (here by an admin over the API) ends the sessions
	// opened with the old password.
	b.mustSignIn("alice")
	if r := b.get("/console/"); r.status != http.StatusOK {
		t.Fatalf("signed in: %d", r.status)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPatch, w.ts.URL+"/admin/users/alice", strings.NewReader(`{"password":"a-new-password-2"}`))
	req.SetBasicAuth("root", password)
	req.Header.Set("Content-Type", "application/json")
	if r := w.browser().do(req); r.status != http.StatusOK {
		t.Fatalf("change password: %d %s", r.status, r.body)
	}
	if r := b.get("/console/"); r.status != http.StatusSeeOther {
		t.Errorf("session after a password change: %d", r.status)
	}
	if r := b.signIn("alice", "a-new-password-2"); r.status != http.StatusSeeOther {
		t.Errorf("sign in with the new password: %d", r.status)
	}
	// A deleted user's session ends at once, and does not pass to a new
	// user of the same name.
	b.mustSignIn("bob")
	if err := w.st.DeleteUser(t.Context(), "bob"); err != nil {
		t.Fatal(err)
	}
	if r := b.get("/console/"); r.status != http.StatusSeeOther {
		t.Errorf("session of a deleted user: %d", r.status)
	}
	if err := w.st.CreateUser(t.Context(), &store.User{Name: "bob", Role: access.RoleAdmin, Organisation: w.orgA, PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	if r := b.get("/console/"); r.status != http.StatusSeeOther {
		t.Errorf("old session of a name given to a new user: %d", r.status)
	}
}

// TestSignInFailures: a wrong password is refused with the same answer as
// an unknown user, and repeated failures are throttled like the APIs'.
func TestSignInFailures(t *testing.T) {
	w := newWorld(t, false)
	b := w.browser()
	wrong := b.signIn("alice", "not the password")
	unknown := b.signIn("nobody", "not the password")
	if wrong.status != http.StatusUnauthorized || unknown.status != http.StatusUnauthorized || b.cookie("mitra_session") != nil {
		t.Fatalf("failed sign-ins: %d %d", wrong.status, unknown.status)
	}
	if !strings.Contains(wrong.body, "The user name or password is wrong.") {
		t.Error("no message for a failed sign-in")
	}
	var last response
	for range 6 {
		last = b.signIn("alice", "still wrong")
	}
	if last.status != http.StatusTooManyRequests || last.header.Get("Retry-After") == "" {
		t.Errorf("after repeated failures: %d", last.status)
	}
}

// TestAdminRefusedToNonAdmin: every administration section and every
// administration action is refused to an analyst, and changes nothing.
func TestAdminRefusedToNonAdmin(t *testing.T) {
	w := newWorld(t, false)
	b := w.browser()
	b.mustSignIn("alice")
	token := b.csrf("/console/")
	if r := b.get("/console/"); strings.Contains(r.body, `href="/console/admin"`) {
		t.Error("the navigation offers administration to an analyst")
	}
	for _, s := range web.AdminSections() {
		if r := b.get("/console/admin?s=" + s); r.status != http.StatusForbidden {
			t.Errorf("GET admin section %s: %d", s, r.status)
		}
	}
	before, _ := w.st.ListAudit(t.Context(), store.AuditFilter{Action: "admin."})
	for _, a := range web.AdminActions() {
		form := url.Values{"csrf": {token}, "action": {a}, "name": {"alice"}, "id": {w.shared}, "subject": {"alice"},
			"password": {"new-password-1"}, "role": {"admin"}, "read": {"on"}, "write": {"on"}, "title": {"x"}, "user": {"alice"}}
		if r := b.post("/console/admin?s=users", form); r.status != http.StatusForbidden {
			t.Errorf("POST admin action %s: %d", a, r.status)
		}
	}
	after, _ := w.st.ListAudit(t.Context(), store.AuditFilter{Action: "admin."})
	if len(after) != len(before) {
		t.Errorf("admin actions recorded for a non-admin: %d -> %d", len(before), len(after))
	}
	if u, err := w.st.GetUser(t.Context(), "alice"); err != nil || u.Role != access.RoleAnalyst {
		t.Errorf("alice after refused actions: %+v %v", u, err)
	}
	if c, err := w.st.GetCollection(t.Context(), w.shared); err != nil || c == nil {
		t.Errorf("collection after refused actions: %v", err)
	}
	// The admin API the console calls refuses on its own too: the console
	// is not the only gate.
	if len(web.AdminActions()) < 10 {
		t.Errorf("only %d admin actions", len(web.AdminActions()))
	}
}

// TestAdminPages: an admin sees every section and can create and remove.
func TestAdminPages(t *testing.T) {
	w := newWorld(t, false)
	b := w.browser()
	b.mustSignIn("root")
	token := b.csrf("/console/")
	for _, s := range web.AdminSections() {
		r := b.get("/console/admin?s=" + s)
		if r.status != http.StatusOK {
			t.Errorf("admin section %s: %d", s, r.status)
		}
		if s == "users" && !strings.Contains(r.body, "bob") {
			t.Error("users section without bob")
		}
	}
	r := b.post("/console/admin?s=orgs", url.Values{"csrf": {token}, "action": {"org.create"}, "name": {"Water C"}})
	must(t, r.status == http.StatusOK && strings.Contains(r.body, "Water C"), "create org: %d", r.status)
	r = b.post("/console/admin?s=tokens", url.Values{"csrf": {token}, "action": {"token.create"}, "user": {"alice"}, "role": {"read-only"}})
	must(t, r.status == http.StatusOK && strings.Contains(r.body, `id="new-token">mitra_`), "create token: %d", r.status)
	r = b.post("/console/admin?s=users", url.Values{"csrf": {token}, "action": {"user.create"}, "name": {"dave"}, "password": {"short"}, "role": {"analyst"}})
	must(t, r.status == http.StatusOK && strings.Contains(r.body, `id="admin-message"`) && strings.Contains(r.body, "refused"), "refused change not reported: %d", r.status)
	r = b.post("/console/admin?s=users", url.Values{"csrf": {token}, "action": {"user.delete"}, "name": {"bob"}})
	must(t, r.status == http.StatusOK, "delete user: %d", r.status)
	if _, err := w.st.GetUser(t.Context(), "bob"); err == nil {
		t.Error("bob not deleted")
	}
	recs, _ := w.st.ListAudit(t.Context(), store.AuditFilter{Action: "admin.user.delete"})
	must(t, len(recs) == 1 && recs[0].Principal == "root", "audit of the console's change: %+v", recs)
}

// TestRedHiddenFromOtherOrganisation: a TLP:RED object of organisation A
// (with its relationship, sighting and observed data) shows nowhere to a
// user of organisation B: not in search, lookup, counts, graphs, the
// sightings page or its own page; A's user sees it everywhere.
func TestRedHiddenFromOtherOrganisation(t *testing.T) {
	w := newWorld(t, false)
	bob, alice := w.browser(), w.browser()
	bob.mustSignIn("bob")
	alice.mustSignIn("alice")
	secrets := []string{redName, redValue, w.red, w.redSighting, w.rel, w.observed, w.ipObj, "TLP:RED"}
	views := []string{"/console/", "/console/search?q=nightjar", "/console/search?q=", "/console/search?q=&tlp=red",
		"/console/search?q=relay", "/console/lookup?v=" + redValue, "/console/lookup?v=203.0.113.0/24",
		"/console/object?id=" + w.green, "/console/object?id=" + w.green + "&hops=2", "/console/sightings",
		"/console/object?id=" + w.red, "/console/object?id=" + w.redSighting, "/console/object?id=" + w.ipObj}
	for _, v := range views {
		r := bob.get(v)
		for _, s := range secrets {
			// What bob typed himself comes back to him, of course.
			if u, _ := url.QueryUnescape(v); strings.Contains(u, s) {
				continue
			}
			if strings.Contains(r.body, s) {
				t.Errorf("bob sees %q on %s", s, v)
			}
		}
	}
	for _, id := range []string{w.red, w.redSighting, w.ipObj, "indicator--99999999-9999-4999-8999-999999999999"} {
		if r := bob.get("/console/object?id=" + id); r.status != http.StatusNotFound {
			t.Errorf("bob opens %s: %d", id, r.status)
		}
	}
	// Hidden and missing look the same.
	hidden, missing := bob.get("/console/object?id="+w.red), bob.get("/console/object?id=indicator--99999999-9999-4999-8999-999999999999")
	if strings.ReplaceAll(hidden.body, w.red, "ID") != strings.ReplaceAll(missing.body, "indicator--99999999-9999-4999-8999-999999999999", "ID") {
		t.Error("a hidden object's page differs from a missing one's")
	}
	// Counts: bob counts one object (the GREEN indicator), alice six.
	if r := bob.get("/console/"); !strings.Contains(r.body, `<p class="summary" id="total">1 objects`) || !strings.Contains(r.body, "0 sightings") {
		t.Errorf("bob's dashboard counts: %s", between(r.body, `id="total">`, "</p>"))
	}
	r := alice.get("/console/")
	if !strings.Contains(r.body, `id="total">6 objects`) || !strings.Contains(r.body, "TLP:RED") || !strings.Contains(r.body, "1 sightings") {
		t.Errorf("alice's dashboard counts: %s", between(r.body, `id="total">`, "</p>"))
	}
	// The organisation filter: bob's own objects are none of these.
	if r := bob.get("/console/search?q=&org=mine"); !strings.Contains(r.body, `id="no-results"`) {
		t.Error("bob's search of his own organisation's objects finds some")
	}
	if r := alice.get("/console/search?q=scanner&org=mine"); !strings.Contains(r.body, "Shared scanner") {
		t.Error("alice's search of her own organisation's objects misses the GREEN indicator")
	}
	for _, v := range []string{"/console/search?q=nightjar", "/console/lookup?v=" + redValue, "/console/object?id=" + w.green, "/console/sightings"} {
		if r := alice.get(v); !strings.Contains(r.body, w.red) && !strings.Contains(r.body, redName) {
			t.Errorf("alice does not see the RED indicator on %s", v)
		}
	}
	if r := alice.get("/console/sightings"); !strings.Contains(r.body, "ipv4-addr: "+redValue) {
		t.Error("alice's sightings page does not show the observed address")
	}
	// Reads of RED objects in the console are audited as TAXII's are.
	recs, _ := w.st.ListAudit(t.Context(), store.AuditFilter{Action: "objects.read", Principal: "alice"})
	must(t, len(recs) > 0, "no audit of alice's RED reads")
}

func between(s, a, b string) string {
	_, rest, _ := strings.Cut(s, a)
	v, _, _ := strings.Cut(rest, b)
	return v
}

// TestPatternEndpoints: the editor's check answers the error's character
// position, and the test evaluates pasted events.
func TestPatternEndpoints(t *testing.T) {
	w := newWorld(t, false)
	b := w.browser()
	b.mustSignIn("alice")
	token := b.csrf("/console/indicator")
	type answer struct {
		Valid   bool   `json:"valid"`
		Pos     int    `json:"pos"`
		Message string `json:"message"`
		Matched *bool  `json:"matched"`
	}
	decode := func(r response) answer {
		var a answer
		if err := json.Unmarshal([]byte(r.body), &a); err != nil || r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.body)
		}
		return a
	}
	a := decode(b.postJSON("/console/api/pattern", token, map[string]string{"pattern": "[ipv4-addr:value = '1.2.3.4' AND]"}))
	must(t, !a.Valid && a.Pos == 32 && strings.Contains(a.Message, "32"), "invalid pattern: %+v", a)
	a = decode(b.postJSON("/console/api/pattern", token, map[string]string{"pattern": "[ipv4-addr:value = '1.2.3.4']"}))
	must(t, a.Valid && a.Pos == -1, "valid pattern: %+v", a)
	events := json.RawMessage(`{"type":"bundle","id":"bundle--1","objects":[
	{"type":"observed-data","spec_version":"2.1","id":"observed-data--aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa","created":"2026-01-01T00:00:00Z","modified":"2026-01-01T00:00:00Z","first_observed":"2026-01-01T00:00:00Z","last_observed":"2026-01-01T00:00:00Z","number_observed":1,"object_refs":["ipv4-addr--bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"]},
	{"type":"ipv4-addr","id":"ipv4-addr--bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb","value":"1.2.3.4"}]}`)
	a = decode(b.postJSON("/console/api/pattern/test", token, map[string]any{"pattern": "[ipv4-addr:value = '1.2.3.4']", "events": events}))
	must(t, a.Matched != nil && *a.Matched, "matching test: %+v", a)
	a = decode(b.postJSON("/console/api/pattern/test", token, map[string]any{"pattern": "[ipv4-addr:value = '9.9.9.9']", "events": events}))
	must(t, a.Matched != nil && !*a.Matched, "non-matching test: %+v", a)
	a = decode(b.postJSON("/console/api/pattern/test", token, map[string]any{"pattern": "[ipv4-addr:value = '9.9.9.9']", "events": "nonsense"}))
	must(t, !a.Valid && a.Matched == nil, "bad events: %+v", a)
}

// TestIndicatorCreate: the editor refuses an invalid pattern with its
// position, creates a valid indicator through the TAXII ingest rules and
// shows its page; a collection the user cannot write is refused.
func TestIndicatorCreate(t *testing.T) {
	w := newWorld(t, false)
	b := w.browser()
	b.mustSignIn("bob")
	token := b.csrf("/console/indicator")
	form := url.Values{"csrf": {token}, "name": {"Bad"}, "pattern": {"[ipv4-addr:value = ]"}, "collection": {w.shared}, "tlp": {"TLP:GREEN"}}
	r := b.post("/console/indicator", form)
	must(t, r.status == http.StatusOK && strings.Contains(r.body, "error at character 19"), "invalid pattern: %d %s", r.status, between(r.body, `id="form-error">`, "<"))
	form.Set("pattern", "[domain-name:value = 'evil.example']")
	form.Set("name", "Evil domain")
	r = b.post("/console/indicator", form)
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/console/object?id=indicator--") {
		t.Fatalf("create: %d %s", r.status, r.header.Get("Location"))
	}
	page := b.get(r.header.Get("Location"))
	must(t, page.status == http.StatusOK && strings.Contains(page.body, "Evil domain") && strings.Contains(page.body, "TLP:GREEN"), "new indicator's page: %d", page.status)
	// Stored with bob's organisation as submitter, so alice reads it too (GREEN).
	id := strings.TrimPrefix(strings.Split(r.header.Get("Location"), "&")[0], "/console/object?id=")
	p, err := w.st.QueryObjects(t.Context(), w.shared, store.Query{IDs: []string{id}})
	if err != nil || len(p.Entries) != 1 || p.Entries[0].Submitter != w.orgB {
		t.Fatalf("stored: %+v %v", p, err)
	}
	// A collection bob cannot write.
	c := &store.Collection{Title: "A only", Grants: []store.Grant{{Kind: store.GrantOrg, Subject: w.orgA, Read: true, Write: true}}}
	if err := w.st.CreateCollection(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	form.Set("collection", c.ID)
	if r := b.post("/console/indicator", form); r.status != http.StatusForbidden {
		t.Errorf("write to a collection without grant: %d", r.status)
	}
}

// TestLanguages: the language is switchable on every page, kept per user
// across sign-ins, and pages in Indonesian and Russian show no English
// message of the catalogue and no untranslated id.
func TestLanguages(t *testing.T) {
	w := newWorld(t, false)
	b := w.browser()
	b.mustSignIn("root")
	all := append([]string{"/console/object?id=" + w.red}, pages...)
	for _, s := range web.AdminSections() {
		all = append(all, "/console/admin?s="+s)
	}
	for _, lang := range web.Languages {
		token := b.csrf("/console/")
		if r := b.post("/console/language", url.Values{"csrf": {token}, "lang": {lang}, "next": {"/console/sightings"}}); r.status != http.StatusSeeOther || r.header.Get("Location") != "/console/sightings" {
			t.Fatalf("switch to %s: %d %s", lang, r.status, r.header.Get("Location"))
		}
		for _, p := range all {
			r := b.get(p)
			if r.status != http.StatusOK {
				t.Errorf("%s %s: %d", lang, p, r.status)
				continue
			}
			must(t, strings.Contains(r.body, `<html lang="`+lang+`">`), "%s %s: wrong lang attribute", lang, p)
			must(t, !strings.Contains(r.body, "⟦"), "%s %s: untranslated message %s", lang, p, between(r.body, "⟦", "⟧"))
			must(t, strings.Count(r.body, `name="lang" value="`) == len(web.Languages), "%s %s: no language switch", lang, p)
			if lang != "en" {
				for _, english := range []string{">Dashboard<", ">Search<", ">Sign out<", "Skip to content", ">Sightings<"} {
					must(t, !strings.Contains(r.body, english), "%s %s: English %q", lang, p, english)
				}
			}
		}
	}
	// Kept per user: a new sign-in is in the last language chosen.
	c := w.browser()
	c.mustSignIn("root")
	if r := c.get("/console/"); !strings.Contains(r.body, `<html lang="ru">`) || !strings.Contains(r.body, "Обзор") {
		t.Error("the language did not follow the user to a new session")
	}
	// The sign-in page follows the browser's language, or the choice.
	d := w.browser()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, w.ts.URL+"/console/signin", nil)
	req.Header.Set("Accept-Language", "id-ID,id;q=0.9,en;q=0.5")
	if r := d.do(req); !strings.Contains(r.body, "Masuk ke Mitra") {
		t.Error("sign-in page ignores Accept-Language")
	}
	r := d.get("/console/signin?lang=ru&next=%2Fconsole%2Fsightings")
	if !strings.Contains(r.body, "Вход в Mitra") {
		t.Error("sign-in page ignores ?lang=ru")
	}
	if !strings.Contains(r.body, `href="/console/signin?lang=id&amp;next=%2Fconsole%2Fsightings"`) {
		t.Error("the sign-in page's language links lose the page to return to")
	}
}

// TestCatalogueComplete: the three languages have exactly the same
// messages, none empty, with the same template fields; every message a
// template names exists.
func TestCatalogueComplete(t *testing.T) {
	ref, err := web.Messages("en")
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range web.Languages {
		m, err := web.Messages(lang)
		if err != nil {
			t.Fatal(err)
		}
		for id, en := range ref {
			v, ok := m[id]
			if !ok || strings.TrimSpace(v) == "" {
				t.Errorf("%s: message %q missing", lang, id)
				continue
			}
			if fieldsOf(v) != fieldsOf(en) {
				t.Errorf("%s: message %q has fields %s, English %s", lang, id, fieldsOf(v), fieldsOf(en))
			}
		}
		for id := range m {
			if _, ok := ref[id]; !ok {
				t.Errorf("%s: message %q is not in the English catalogue", lang, id)
			}
		}
	}
	ids, err := web.TemplateMessageIDs()
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) < 50 {
		t.Errorf("only %d message ids found in the templates", len(ids))
	}
	for _, id := range ids {
		if _, ok := ref[id]; !ok {
			t.Errorf("templates name message %q, which the catalogue lacks", id)
		}
	}
}

func fieldsOf(s string) string {
	var out []string
	for _, part := range strings.Split(s, "{{")[1:] {
		f, _, _ := strings.Cut(part, "}}")
		out = append(out, strings.TrimSpace(f))
	}
	return strings.Join(out, ",")
}

// TestServedPaths: the console answers at / and /console/, and TAXII's
// JSON errors still answer every other unknown path.
func TestServedPaths(t *testing.T) {
	w := newWorld(t, false)
	b := w.browser()
	if r := b.get("/"); r.status != http.StatusSeeOther || r.header.Get("Location") != "/console/" {
		t.Errorf("/: %d %s", r.status, r.header.Get("Location"))
	}
	if r := b.get("/console/"); r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/console/signin") {
		t.Errorf("/console/ without session: %d", r.status)
	}
	for _, p := range []string{"/nothing", "/api/nothing/", "/taxii2"} {
		r := b.get(p)
		if r.status != http.StatusNotFound || !strings.Contains(r.header.Get("Content-Type"), "json") {
			t.Errorf("%s: %d %s", p, r.status, r.header.Get("Content-Type"))
		}
	}
	if r := b.get("/console/static/console.css"); r.status != http.StatusOK || !strings.Contains(r.header.Get("Content-Type"), "text/css") {
		t.Errorf("stylesheet: %d", r.status)
	}
	if r := b.get("/console/static/console.js"); r.status != http.StatusOK {
		t.Errorf("script: %d", r.status)
	}
	b.mustSignIn("alice")
	if r := b.get("/console/nothing"); r.status != http.StatusNotFound {
		t.Errorf("unknown console page: %d", r.status)
	}
	r := b.get("/console/")
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options"} {
		must(t, r.header.Get(h) != "", "no %s header", h)
	}
	// No page refers to anything outside the server.
	for _, p := range pages {
		body := b.get(p).body
		must(t, !strings.Contains(body, "http://") && !strings.Contains(body, "https://"), "%s refers to another site", p)
	}
}

// TestDashboardDetector: the dashboard shows the detector's counters from
// the server's metrics when a detector runs, and says so when none does.
func TestDashboardDetector(t *testing.T) {
	reg := prometheus.NewRegistry()
	events := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "mitra", Subsystem: "detect", Name: "events_total"})
	loaded := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "mitra", Subsystem: "detect", Name: "indicators"})
	reg.MustRegister(events, loaded)
	events.Add(1234567)
	loaded.Set(42)
	w := newWorldWith(t, false, func(c *web.Config) { c.Metrics = reg })
	b := w.browser()
	b.mustSignIn("alice")
	r := b.get("/console/")
	must(t, strings.Contains(r.body, `<th scope="row">Events read</th><td class="num">1,234,567</td>`), "detector events not shown: %s", between(r.body, `id="detector"`, "</table>"))
	must(t, strings.Contains(r.body, `<th scope="row">Indicators loaded</th><td class="num">42</td>`), "detector indicators not shown")
	token := b.csrf("/console/")
	b.post("/console/language", url.Values{"csrf": {token}, "lang": {"ru"}})
	r = b.get("/console/")
	must(t, strings.Contains(r.body, "1\u00a0234\u00a0567"), "Russian digit grouping not used: %s", between(r.body, `id="detector"`, "</table>"))

	none := newWorld(t, false).browser()
	none.mustSignIn("alice")
	must(t, strings.Contains(none.get("/console/").body, "No detector runs in this server."), "no detector not said")
}
