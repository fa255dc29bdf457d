package incident_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/incident"
	"github.com/mitra-cert/mitra/internal/notify"
	"github.com/mitra-cert/mitra/internal/store"
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

// api is the incident API of a world over HTTP, as the TAXII server
// mounts it.
type api struct {
	w  *world
	ts *httptest.Server
}

func (w *world) api(q incident.Notifications) *api {
	w.t.Helper()
	w.srv.Mount(incident.Prefix, incident.NewHandler(w.svc, incident.HandlerOptions{Authenticate: w.srv.Authenticate, Notifications: q}))
	ts := httptest.NewServer(w.srv)
	w.t.Cleanup(ts.Close)
	return &api{w: w, ts: ts}
}

func (w *world) user(name, org, role string) {
	w.t.Helper()
	if err := w.st.CreateUser(context.Background(), &store.User{Name: name, Organisation: org, Role: role, PasswordHash: passwordHash()}); err != nil {
		w.t.Fatal(err)
	}
}

// do sends a request as user and returns the status and body.
func (a *api) do(user, method, path string, body any) (int, []byte) {
	a.w.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.ts.URL+incident.Prefix+path, r)
	if err != nil {
		a.w.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.w.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func listed(t *testing.T, a *api, user string) []string {
	t.Helper()
	status, body := a.do(user, http.MethodGet, "", nil)
	if status != http.StatusOK {
		t.Fatalf("%s lists: %d %s", user, status, body)
	}
	var out struct {
		Incidents []incident.Incident `json:"incidents"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, i := range out.Incidents {
		ids = append(ids, i.ID)
	}
	slices.Sort(ids)
	return ids
}

// TestLeakIncidentsOfOtherOrganisations: an incident is seen by exactly
// those access.Decide lets read its object, in every listing and every
// path of the API; to everyone else a hidden incident answers exactly as a
// missing one.
func TestLeakIncidentsOfOtherOrganisations(t *testing.T) {
	w := newWorld(t, notify.Targets{Webhooks: []string{"https://hooks.example/x"}})
	ctx := context.Background()
	// A fourth organisation reads the collection through a sharing group
	// (with the outsider's), a fifth has no grant at all.
	grouped := w.org("Water Utility C")
	outside := w.org("Telecom D")
	g := &store.Group{Name: "sector-isac", Orgs: []string{w.other, grouped}}
	if err := w.st.CreateGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	c := &store.Collection{Title: "Shared incidents", Grants: []store.Grant{
		{Kind: store.GrantOrg, Subject: w.operator, Read: true, Write: true},
		{Kind: store.GrantOrg, Subject: w.cert, Read: true, Write: true},
		{Kind: store.GrantGroup, Subject: g.ID, Read: true},
	}}
	if err := w.st.CreateCollection(ctx, c); err != nil {
		t.Fatal(err)
	}
	w.coll = c.ID
	w.user("op", w.operator, access.RoleAnalyst)
	w.user("op2", w.operator, access.RoleAnalyst)
	w.user("cert", w.cert, access.RoleAnalyst)
	w.user("bob", w.other, access.RoleAnalyst)
	w.user("carol", grouped, access.RoleAnalyst)
	w.user("dave", outside, access.RoleAnalyst)
	w.user("root", w.cert, access.RoleAdmin)
	a := w.api(notify.New(notify.Config{Store: w.st.(notify.Store)}))

	report := func(name, tlp string, recipients ...string) string {
		t.Helper()
		status, body := a.do("op", http.MethodPost, "", incident.Report{Collection: w.coll, Regime: "nis2", CERT: w.cert, Name: name,
			Sector: "energy", Severity: "high", AwareAt: w.clock.Now().Add(-time.Hour), TLP: tlp, Recipients: recipients})
		if status != http.StatusCreated {
			t.Fatalf("report %s: %d %s", name, status, body)
		}
		var inc incident.Incident
		if err := json.Unmarshal(body, &inc); err != nil {
			t.Fatal(err)
		}
		return inc.ID
	}
	strict := report("strict", "amber+strict")
	red := report("red to bob", "red", w.other)
	green := report("green", "green")
	sorted := func(ids ...string) []string { slices.Sort(ids); return ids }

	want := map[string][]string{
		"op":    sorted(strict, red, green),
		"op2":   sorted(strict, red, green),
		"cert":  sorted(strict, red, green),
		"bob":   sorted(red, green),
		"carol": sorted(green),
		"dave":  nil,
	}
	for user, ids := range want {
		if got := listed(t, a, user); !slices.Equal(got, ids) {
			t.Errorf("%s lists %v, want %v", user, got, ids)
		}
		for _, id := range []string{strict, red, green} {
			status, _ := a.do(user, http.MethodGet, id, nil)
			if visible := slices.Contains(ids, id); visible != (status == http.StatusOK) {
				t.Errorf("%s GET %s: %d (visible %v)", user, id, status, visible)
			}
		}
		// By state too.
		status, body := a.do(user, http.MethodGet, "?state=reported", nil)
		var out struct {
			Incidents []incident.Incident `json:"incidents"`
		}
		_ = json.Unmarshal(body, &out)
		if status != http.StatusOK || len(out.Incidents) != len(ids) {
			t.Errorf("%s lists reported: %d, %d incidents, want %d", user, status, len(out.Incidents), len(ids))
		}
	}

	// Every path answers a hidden incident exactly as a missing one.
	missing := "incident--00000000-0000-4000-8000-000000000001"
	paths := []struct {
		method, suffix string
		body           any
	}{
		{http.MethodGet, "", nil},
		{http.MethodPost, "/transition", incident.TransitionRequest{State: "acknowledged"}},
		{http.MethodPost, "/stages/notification", incident.StageRequest{}},
		{http.MethodPost, "/reports", incident.FollowUp{Kind: "intermediate", Text: "x"}},
	}
	for _, user := range []string{"bob", "carol", "dave"} {
		for _, p := range paths {
			hs, hb := a.do(user, p.method, strict+p.suffix, p.body)
			ms, mb := a.do(user, p.method, missing+p.suffix, p.body)
			if hs != http.StatusNotFound || hs != ms || !bytes.Equal(hb, mb) {
				t.Errorf("%s %s hidden%s: %d %s; missing: %d %s", user, p.method, p.suffix, hs, hb, ms, mb)
			}
		}
	}
	// Nothing the outsiders tried changed the incident.
	inc, err := w.svc.Get(ctx, w.op, strict)
	if err != nil || inc.State != incident.StateReported || len(inc.History) != 1 {
		t.Fatalf("after the outsiders: %+v, %v", inc, err)
	}
	// A visible incident is not theirs to change.
	if status, _ := a.do("bob", http.MethodPost, green+"/transition", incident.TransitionRequest{State: "closed"}); status != http.StatusForbidden {
		t.Errorf("bob closes a green incident: %d, want 403", status)
	}
	// The notification queue names every incident: administrators only,
	// and to others it does not exist.
	if status, body := a.do("root", http.MethodGet, "notifications", nil); status != http.StatusOK || !bytes.Contains(body, []byte(strict)) {
		t.Errorf("admin lists notifications: %d %s", status, body)
	}
	for _, user := range []string{"op", "bob", "dave"} {
		if status, body := a.do(user, http.MethodGet, "notifications", nil); status != http.StatusNotFound || bytes.Contains(body, []byte("incident--")) {
			t.Errorf("%s lists notifications: %d %s", user, status, body)
		}
	}
	// Errors are TAXII error messages.
	status, body := a.do("dave", http.MethodGet, strict, nil)
	var te struct {
		Title      string `json:"title"`
		HTTPStatus string `json:"http_status"`
	}
	if err := json.Unmarshal(body, &te); err != nil || status != 404 || te.HTTPStatus != "404" || te.Title == "" {
		t.Errorf("error message %d %s", status, body)
	}
}
