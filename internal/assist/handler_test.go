package assist_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/mitra-cert/mitra/internal/assist"
	"github.com/mitra-cert/mitra/internal/store"
)

// TestAPILeaks: over HTTP, the listings and the request page show each
// organisation only what access.Decide lets it see; a hidden request is
// answered with the same status and body as a missing one; errors are
// TAXII error message resources.
func TestAPILeaks(t *testing.T) {
	eachBackend(t, func(t *testing.T, open backend) {
		ctx := t.Context()
		clk := &clock{t: t0}
		a, b := newNode(t, open, "A", clk), newNode(t, open, "B", clk)
		link(t, a, b)
		duty, _ := contactsOfB(t, a, b)
		other := &store.Organisation{Name: "Other ministry"}
		member := &store.Organisation{Name: "Group member"}
		outsider := &store.Organisation{Name: "Outsider"}
		for _, o := range []*store.Organisation{other, member, outsider} {
			must(t, a.st.CreateOrganisation(ctx, o))
			createUser(t, a.st, strings.ReplaceAll(strings.ToLower(o.Name), " ", "-"), o.ID)
		}
		g := &store.Group{Name: "csirts", Orgs: []string{member.ID}}
		must(t, a.st.CreateGroup(ctx, g))
		for _, c := range []*store.Collection{a.assistCol, a.dirCol} {
			must(t, a.st.SetPartyGrant(ctx, c.ID, store.GrantOrg, other.ID, true, false))
			must(t, a.st.SetPartyGrant(ctx, c.ID, store.GrantGroup, g.ID, true, false))
		}
		h := httptest.NewServer(assist.NewHandler(a.svc, assist.HandlerOptions{Authenticate: a.srv.Authenticate}))
		defer h.Close()
		call := func(user, method, path string, body any) (int, http.Header, []byte) {
			t.Helper()
			var rd io.Reader
			if body != nil {
				b, _ := json.Marshal(body)
				rd = bytes.NewReader(b)
			}
			req, _ := http.NewRequest(method, h.URL+path, rd)
			if body != nil {
				req.Header.Set("Content-Type", "application/json")
			}
			if user != "" {
				req.SetBasicAuth(user, password)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			out, _ := io.ReadAll(res.Body)
			return res.StatusCode, res.Header, out
		}
		var ids []string
		for _, tlp := range []string{"amber", "amber+strict", "red"} {
			code, _, out := call("staff", "POST", assist.Prefix+"requests", assist.RaiseBody{Contact: duty.ID, Kind: "blocking", TLP: tlp, ResponseTime: "2h",
				Concerns: []string{"indicator--4a3a6f5e-0e5c-4f59-9f0e-6f1f3a1b2c3d"}})
			var r assist.Request
			if code != 201 || json.Unmarshal(out, &r) != nil {
				t.Fatalf("raise %s: %d %s", tlp, code, out)
			}
			ids = append(ids, r.ID)
		}
		if _, err := a.svc.AddContact(ctx, a.staff, assist.Contact{Name: "Liaison", Country: "BB", Kind: "diplomatic", TLP: "red"}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			user     string
			requests []string
			contacts int
		}{
			{"staff", ids, 3}, {"other-ministry", ids[:1], 2}, {"group-member", ids[:1], 2}, {"outsider", nil, 0},
		} {
			code, _, out := call(c.user, "GET", assist.Prefix+"requests", nil)
			var l struct{ Requests []assist.Request }
			if code != 200 || json.Unmarshal(out, &l) != nil {
				t.Fatalf("%s list: %d %s", c.user, code, out)
			}
			var got []string
			for _, r := range l.Requests {
				got = append(got, r.ID)
			}
			slices.Sort(got)
			want := slices.Clone(c.requests)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s sees %v, want %v", c.user, got, want)
			}
			code, _, out = call(c.user, "GET", assist.PocPrefix+"contacts", nil)
			var cl struct{ Contacts []assist.Contact }
			if code != 200 || json.Unmarshal(out, &cl) != nil || len(cl.Contacts) != c.contacts {
				t.Errorf("%s contacts: %d %s", c.user, code, out)
			}
			for _, id := range ids {
				if slices.Contains(c.requests, id) {
					continue
				}
				hc, hh, hidden := call(c.user, "GET", assist.Prefix+"requests/"+id, nil)
				mc, _, missing := call(c.user, "GET", assist.Prefix+"requests/note--00000000-0000-4000-8000-000000000000", nil)
				if hc != 404 || mc != 404 || !bytes.Equal(hidden, missing) || !strings.HasPrefix(hh.Get("Content-Type"), "application/taxii+json") {
					t.Errorf("%s: hidden %d %s, missing %d %s", c.user, hc, hidden, mc, missing)
				}
				sc, _, step := call(c.user, "POST", assist.Prefix+"requests/"+id+"/steps", assist.StepBody{Message: "acknowledge"})
				if sc != 404 || !bytes.Equal(step, missing) {
					t.Errorf("%s: step on a hidden request: %d %s", c.user, sc, step)
				}
			}
		}
		var e struct {
			Title      string `json:"title"`
			HTTPStatus string `json:"http_status"`
		}
		if code, _, out := call("", "GET", assist.Prefix+"requests", nil); code != 401 || json.Unmarshal(out, &e) != nil || e.HTTPStatus != "401" {
			t.Errorf("unauthenticated: %d %s", code, out)
		}
		if code, _, out := call("staff", "POST", assist.Prefix+"requests", map[string]string{"contact": duty.ID, "kind": "sabotage", "response_time": "1h"}); code != 400 || !strings.Contains(string(out), "sabotage") {
			t.Errorf("bad kind: %d %s", code, out)
		}
		if code, _, _ := call("staff", "POST", assist.PocPrefix+"ping", nil); code != 403 {
			t.Errorf("ping by a non-administrator: %d", code)
		}
	})
}
