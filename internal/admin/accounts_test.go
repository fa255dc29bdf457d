package admin_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/admin"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxii"
)

func TestPasswordTooLongIs400(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	long := strings.Repeat("p", 73)
	e.root().do(http.MethodPost, "/admin/users", map[string]string{"name": "dave", "password": long}).wantError(http.StatusBadRequest)
	e.root().do(http.MethodPatch, "/admin/users/alice", map[string]string{"password": long}).wantError(http.StatusBadRequest)
	e.basic("alice", password).do(http.MethodPut, "/account/password", map[string]string{"current": password, "new": long}).wantError(http.StatusBadRequest)
}

func TestChangeOwnPassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.basic("alice", password)
	// The current password is required, also with a token.
	alice.do(http.MethodPut, "/account/password", map[string]string{"current": "wrong-password", "new": "a-new-password"}).wantError(http.StatusForbidden)
	tok, _, err := access.CreateToken(e.ctx, e.st, "alice", "", 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	e.bearer(tok).do(http.MethodPut, "/account/password", map[string]string{"current": "", "new": "a-new-password"}).wantError(http.StatusForbidden)
	alice.do(http.MethodPut, "/account/password", map[string]string{"current": password, "new": "short"}).wantError(http.StatusBadRequest)
	alice.do(http.MethodPut, "/account/password", map[string]string{"current": password, "new": "a-new-password"}).want(http.StatusNoContent)
	// The old password no longer works, the new one does (on TAXII too).
	if st := alice.taxiiGet("/taxii2/"); st != http.StatusUnauthorized {
		t.Errorf("old password after the change: %d", st)
	}
	if st := e.basic("alice", "a-new-password").taxiiGet("/taxii2/"); st != http.StatusOK {
		t.Errorf("new password: %d", st)
	}
	// Not an admin endpoint: alice still cannot use the admin API.
	e.basic("alice", "a-new-password").do(http.MethodGet, "/admin/users", nil).wantError(http.StatusForbidden)
	wantAudit(t, e, "user.password", "alice", "alice")
}

func TestUpdateUserRoleAndOrganisation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	root := e.root()
	var org struct{ ID string }
	root.do(http.MethodPost, "/admin/orgs", map[string]any{"name": "Grid Operator"}).wantJSON(http.StatusCreated, &org)
	var c collection
	root.do(http.MethodPost, "/admin/collections", map[string]any{"title": "Alpha", "readers": []string{"alice"}, "writers": []string{"alice"}}).wantJSON(http.StatusCreated, &c)
	tok, _, err := access.CreateToken(e.ctx, e.st, "alice", "", 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var u user
	root.do(http.MethodPatch, "/admin/users/alice", map[string]any{"role": "read-only", "organisation": "Grid Operator"}).wantJSON(http.StatusOK, &u)
	if u.Role != access.RoleReadOnly || u.Organisation != org.ID {
		t.Fatalf("updated user = %+v", u)
	}
	stored, err := e.st.GetUser(e.ctx, "alice")
	if err != nil || stored.Role != access.RoleReadOnly || stored.Organisation != org.ID {
		t.Fatalf("stored user = %+v, %v", stored, err)
	}
	// Her analyst token is now read-only too: POST is refused.
	r := e.bearer(tok).do(http.MethodPost, "/api/collections/"+c.ID+"/objects/", `{"objects":[]}`)
	if r.status != http.StatusForbidden {
		t.Errorf("POST with the token of a demoted user: %d", r.status)
	}
	// The password alone changes too.
	root.do(http.MethodPatch, "/admin/users/alice", map[string]any{"password": "another-password"}).want(http.StatusOK)
	if st := e.basic("alice", "another-password").taxiiGet("/taxii2/"); st != http.StatusOK {
		t.Errorf("reset password: %d", st)
	}
	root.do(http.MethodPatch, "/admin/users/alice", map[string]any{"role": "chief"}).wantError(http.StatusBadRequest)
	root.do(http.MethodPatch, "/admin/users/alice", map[string]any{"organisation": "nobody"}).wantError(http.StatusNotFound)
	root.do(http.MethodPatch, "/admin/users/nobody", map[string]any{"role": "analyst"}).wantError(http.StatusNotFound)
	root.do(http.MethodPatch, "/admin/users/root", map[string]any{"role": "analyst"}).wantError(http.StatusBadRequest)
	wantAudit(t, e, "admin.user.update", "root", "alice")
}

func TestGroupMembersAndCollectionPolicy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	root := e.root()
	var a, b struct{ ID string }
	root.do(http.MethodPost, "/admin/orgs", map[string]any{"name": "A"}).wantJSON(http.StatusCreated, &a)
	root.do(http.MethodPost, "/admin/orgs", map[string]any{"name": "B"}).wantJSON(http.StatusCreated, &b)
	var g struct {
		ID   string
		Orgs []string
	}
	root.do(http.MethodPost, "/admin/groups", map[string]any{"name": "energy", "orgs": []string{"A"}}).wantJSON(http.StatusCreated, &g)
	root.do(http.MethodPut, "/admin/groups/energy/orgs", map[string]any{"orgs": []string{"B", a.ID}}).wantJSON(http.StatusOK, &g)
	slices.Sort(g.Orgs)
	want := []string{a.ID, b.ID}
	slices.Sort(want)
	if !slices.Equal(g.Orgs, want) {
		t.Errorf("group orgs = %v, want %v", g.Orgs, want)
	}
	if sg, err := e.st.GetGroup(e.ctx, g.ID); err != nil || len(sg.Orgs) != 2 {
		t.Errorf("stored group = %+v, %v", sg, err)
	}
	root.do(http.MethodPut, "/admin/groups/energy/orgs", map[string]any{"orgs": []string{"nobody"}}).wantError(http.StatusNotFound)
	root.do(http.MethodPut, "/admin/groups/nogroup/orgs", map[string]any{"orgs": []string{"A"}}).wantError(http.StatusNotFound)
	wantAudit(t, e, "admin.group.members", "root", g.ID)

	// Collection policy at creation and afterwards.
	var c struct {
		ID         string   `json:"id"`
		DefaultTLP string   `json:"default_tlp"`
		Recipients []string `json:"recipients"`
	}
	root.do(http.MethodPost, "/admin/collections", map[string]any{"title": "X", "default_tlp": "green"}).wantJSON(http.StatusCreated, &c)
	if c.DefaultTLP != "TLP:GREEN" {
		t.Errorf("created with default TLP %q", c.DefaultTLP)
	}
	root.do(http.MethodPut, "/admin/collections/"+c.ID+"/policy", map[string]any{"default_tlp": "amber+strict", "recipients": []string{"B"}}).wantJSON(http.StatusOK, &c)
	if c.DefaultTLP != "TLP:AMBER+STRICT" || len(c.Recipients) != 1 || c.Recipients[0] != b.ID {
		t.Errorf("policy = %+v", c)
	}
	sc, err := e.st.GetCollection(e.ctx, c.ID)
	if err != nil || sc.DefaultTLP != int(access.TLPAmberStrict) || len(sc.Recipients) != 1 {
		t.Errorf("stored collection = %+v, %v", sc, err)
	}
	root.do(http.MethodPut, "/admin/collections/"+c.ID+"/policy", map[string]any{"default_tlp": "purple"}).wantError(http.StatusBadRequest)
	root.do(http.MethodPut, "/admin/collections/"+c.ID+"/policy", map[string]any{"recipients": []string{"nobody"}}).wantError(http.StatusNotFound)
	wantAudit(t, e, "admin.collection.policy", "root", c.ID)
}

func TestEveryAdminChangeIsAudited(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	root := e.root()
	var u user
	root.do(http.MethodPost, "/admin/users", map[string]string{"name": "dave", "password": "password-123"}).wantJSON(http.StatusCreated, &u)
	var c collection
	root.do(http.MethodPost, "/admin/collections", map[string]any{"title": "X"}).wantJSON(http.StatusCreated, &c)
	root.do(http.MethodPut, "/admin/collections/"+c.ID+"/grants/dave", map[string]bool{"read": true}).want(http.StatusOK)
	var tok token
	root.do(http.MethodPost, "/admin/tokens", map[string]string{"user": "dave"}).wantJSON(http.StatusCreated, &tok)
	root.do(http.MethodDelete, "/admin/tokens/"+tok.ID, nil).want(http.StatusNoContent)
	var org struct{ ID string }
	root.do(http.MethodPost, "/admin/orgs", map[string]any{"name": "O"}).wantJSON(http.StatusCreated, &org)
	var g struct{ ID string }
	root.do(http.MethodPost, "/admin/groups", map[string]any{"name": "G", "orgs": []string{"O"}}).wantJSON(http.StatusCreated, &g)
	root.do(http.MethodDelete, "/admin/groups/"+g.ID, nil).want(http.StatusNoContent)
	root.do(http.MethodDelete, "/admin/orgs/"+org.ID, nil).want(http.StatusNoContent)
	root.do(http.MethodDelete, "/admin/users/dave", nil).want(http.StatusNoContent)
	root.do(http.MethodDelete, "/admin/collections/"+c.ID, nil).want(http.StatusNoContent)
	// A refused change is not a change.
	root.do(http.MethodDelete, "/admin/users/nobody", nil).wantError(http.StatusNotFound)

	for action, object := range map[string]string{
		"admin.user.create": "dave", "admin.collection.create": c.ID, "admin.collection.grant": c.ID + "/dave",
		"admin.token.create": tok.ID, "admin.token.revoke": tok.ID, "admin.org.create": org.ID, "admin.group.create": g.ID,
		"admin.group.delete": g.ID, "admin.org.delete": org.ID, "admin.user.delete": "dave", "admin.collection.delete": c.ID,
	} {
		wantAudit(t, e, action, "root", object)
	}
	recs, err := e.st.ListAudit(e.ctx, store.AuditFilter{Action: "admin."})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 11 {
		t.Errorf("%d admin audit records, want 11", len(recs))
	}
}

func TestAuditNewestFirstWithCursor(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var recs []store.AuditRecord
	for i := range 5 {
		recs = append(recs, store.AuditRecord{Principal: "p", Action: "objects.add", Detail: string(rune('a' + i))})
	}
	if err := e.st.AppendAudit(e.ctx, recs...); err != nil {
		t.Fatal(err)
	}
	var got []string
	path := "/admin/audit?action=objects.&limit=2"
	for pages := 0; path != ""; pages++ {
		if pages > 5 {
			t.Fatal("the cursor does not end")
		}
		var page []store.AuditRecord
		r := e.root().do(http.MethodGet, path, nil)
		r.wantJSON(http.StatusOK, &page)
		for _, rec := range page {
			got = append(got, rec.Detail)
		}
		path = ""
		if link := r.header.Get("Link"); link != "" {
			target, rel, _ := strings.Cut(link, ">; ")
			if rel != `rel="next"` {
				t.Fatalf("Link %q", link)
			}
			u, err := url.Parse(strings.TrimPrefix(target, "<"))
			if err != nil || u.Query().Get("action") != "objects." {
				t.Fatalf("next link %q loses the filter", link)
			}
			path = u.RequestURI()
		}
	}
	if strings.Join(got, "") != "edcba" {
		t.Errorf("audit pages gave %q, want newest first edcba", got)
	}
}

func TestDefaultTokenExpiryIsConfigurable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := taxii.NewServer(taxii.Config{Store: e.st, Auth: access.NewAuthenticator(e.st, nil)})
	srv.Mount(admin.Prefix, admin.NewWith(e.st, srv.Authenticate, admin.Options{Now: e.now, TokenExpiry: time.Hour}))
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	e2 := &env{t: t, ctx: e.ctx, st: e.st, ts: ts}
	var tok token
	e2.root().do(http.MethodPost, "/admin/tokens", map[string]string{"user": "alice"}).wantJSON(http.StatusCreated, &tok)
	if tok.Expires == nil || !tok.Expires.Equal(e.now().Add(time.Hour)) {
		t.Errorf("expires %v, want in an hour", tok.Expires)
	}
	tok = token{}
	e2.root().do(http.MethodPost, "/admin/tokens", map[string]string{"user": "alice", "expires": "never"}).wantJSON(http.StatusCreated, &tok)
	if tok.Expires != nil {
		t.Errorf("never expires: %v", tok.Expires)
	}
	e2.root().do(http.MethodPost, "/admin/tokens", map[string]string{"user": "alice", "expires": "24h"}).wantJSON(http.StatusCreated, &tok)
	if tok.Expires == nil || !tok.Expires.Equal(e.now().Add(24*time.Hour)) {
		t.Errorf("expires %v, want in a day", tok.Expires)
	}
}

// wantAudit checks that the audit log has a record of action by who on
// object.
func wantAudit(t *testing.T, e *env, action, who, object string) {
	t.Helper()
	recs, err := e.st.ListAudit(e.ctx, store.AuditFilter{Action: action})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Principal == who && slices.Contains(r.Objects, object) {
			return
		}
	}
	t.Errorf("no audit record of %s by %s on %s: %+v", action, who, object, recs)
}
