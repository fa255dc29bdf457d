package search_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/search"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxii"
	"golang.org/x/crypto/bcrypt"
)

const password = "correct horse battery"

// serve mounts the search API on a TAXII server over w's store, as serve
// does, with users alice (org A) and bob (org B).
func serve(t *testing.T, w *world, orgA, orgB string) *httptest.Server {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for name, org := range map[string]string{"alice": orgA, "bob": orgB} {
		if err := w.st.CreateUser(t.Context(), &store.User{Name: name, Organisation: org, Role: access.RoleAnalyst, PasswordHash: string(h)}); err != nil {
			t.Fatal(err)
		}
	}
	srv := taxii.NewServer(taxii.Config{Store: w.st, Auth: access.NewAuthenticator(w.st, nil)})
	srv.Mount(search.Prefix, search.NewHandler(w.svc, search.HandlerOptions{Authenticate: srv.Authenticate}))
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts
}

func call(t *testing.T, ts *httptest.Server, user, method, path, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestHTTPAPI(t *testing.T) {
	eachBackend(t, func(t *testing.T, w *world) {
		a, b := w.org("A", false), w.org("B", false)
		g := w.group("G", a, b)
		feed := w.collection("feed", access.TLPGreen, nil, readGroup(g))
		green := w.add(feed, a, 0, nil, indicator(id("indicator"), "Phishing kit host", "[domain-name:value = 'kit.example']",
			"description", "Serves the phishing kit to victims."))
		red := w.add(feed, a, access.TLPRed, nil, indicator(id("indicator"), "Phishing red", "[ipv4-addr:value = '203.0.113.66']"))
		ts := serve(t, w, a, b)

		// Authentication first, before anything else is said.
		if code, body := call(t, ts, "", "GET", search.Prefix+"?q=phishing", "", ""); code != 401 || !strings.Contains(body, `"http_status":"401"`) {
			t.Errorf("anonymous search: %d %s", code, body)
		}
		// The value index is loading: 503, not an empty answer.
		if code, _ := call(t, ts, "bob", "GET", search.Prefix+"lookup?value=kit.example", "", ""); code != 503 {
			t.Errorf("lookup before the index is loaded: %d, want 503", code)
		}
		w.sync()

		code, body := call(t, ts, "bob", "GET", search.Prefix+"?q=phishing&type=indicator&limit=10", "", "")
		if code != 200 || !strings.Contains(body, green) || strings.Contains(body, red) {
			t.Errorf("bob's search: %d %s", code, body)
		}
		if code, body := call(t, ts, "alice", "GET", search.Prefix+"?q=phishing", "", ""); code != 200 || !strings.Contains(body, red) {
			t.Errorf("alice's search: %d %s", code, body)
		}
		for _, bad := range []string{"?limit=0", "?limit=x", "?tlp=purple", "?cursor=zz", "?modified_from=yesterday"} {
			if code, body := call(t, ts, "bob", "GET", search.Prefix+bad, "", ""); code != 400 || !strings.Contains(body, `"title":"Bad Request"`) {
				t.Errorf("%s: %d %s", bad, code, body)
			}
		}

		// Lookups: GET, POST JSON, POST text; bob does not learn of the
		// RED indicator.
		if code, body := call(t, ts, "bob", "GET", search.Prefix+"lookup?value=kit.example,203.0.113.66", "", ""); code != 200 ||
			!strings.Contains(body, green) || strings.Contains(body, red) {
			t.Errorf("GET lookup: %d %s", code, body)
		}
		if code, body := call(t, ts, "bob", "POST", search.Prefix+"lookup", "application/json", `{"values":["203.0.113.66","kit.example"]}`); code != 200 ||
			!strings.Contains(body, `"value":"203.0.113.66","known":false`) || !strings.Contains(body, green) {
			t.Errorf("POST JSON lookup: %d %s", code, body)
		}
		if code, body := call(t, ts, "alice", "POST", search.Prefix+"lookup", "text/plain", "# list\n203.0.113.66\n\nkit.example\n"); code != 200 ||
			!strings.Contains(body, red) || !strings.Contains(body, green) {
			t.Errorf("POST text lookup: %d %s", code, body)
		}
		if code, _ := call(t, ts, "bob", "POST", search.Prefix+"lookup", "application/xml", "<x/>"); code != 415 {
			t.Errorf("XML lookup: %d, want 415", code)
		}
		if code, _ := call(t, ts, "bob", "POST", search.Prefix+"lookup", "application/json", `{"values":[]}`); code != 400 {
			t.Errorf("empty lookup: %d, want 400", code)
		}
		if code, _ := call(t, ts, "bob", "POST", search.Prefix+"lookup", "application/json", `{"values":["x"`+strings.Repeat(`,"x"`, search.MaxLookupValues)+`]}`); code != 400 {
			t.Errorf("10,001 values: %d, want 400", code)
		}
		if code, _ := call(t, ts, "bob", "POST", search.Prefix+"lookup", "text/plain", strings.Repeat(strings.Repeat("x", 60000)+"\n", 360)); code != 413 {
			t.Errorf("huge body: %d, want 413", code)
		}

		// Pivots: a hidden object is answered as a missing one.
		if code, body := call(t, ts, "bob", "GET", search.Prefix+"pivot/"+green+"?hops=2", "", ""); code != 200 || !strings.Contains(body, `"nodes"`) {
			t.Errorf("pivot: %d %s", code, body)
		}
		codeHidden, bodyHidden := call(t, ts, "bob", "GET", search.Prefix+"pivot/"+red, "", "")
		codeMissing, bodyMissing := call(t, ts, "bob", "GET", search.Prefix+"pivot/indicator--99999999-0000-4000-8000-000000000000", "", "")
		if codeHidden != 404 || codeHidden != codeMissing || bodyHidden != bodyMissing {
			t.Errorf("hidden pivot %d %s, missing %d %s", codeHidden, bodyHidden, codeMissing, bodyMissing)
		}
		if code, _ := call(t, ts, "bob", "GET", search.Prefix+"pivot/"+green+"?hops=3", "", ""); code != 400 {
			t.Errorf("3 hops: %d", code)
		}
		if code, body := call(t, ts, "bob", "GET", search.Prefix+"nothing", "", ""); code != 404 || !strings.Contains(body, `"http_status":"404"`) {
			t.Errorf("unknown path: %d %s", code, body)
		}

		// The Go client speaks the same API.
		cl, err := search.NewClient(ts.URL)
		if err != nil {
			t.Fatal(err)
		}
		cl.User, cl.Password = "bob", password
		res, err := cl.Search(context.Background(), search.Query{Text: "kit", Types: []string{"indicator"}})
		if err != nil || len(res.Hits) != 1 || res.Hits[0].ID != green || res.Hits[0].Snippet == "" {
			t.Errorf("client search: %+v %v", res, err)
		}
		lr, err := cl.Lookup(context.Background(), []string{"kit.example"})
		if err != nil || len(lr) != 1 || !lr[0].Known {
			t.Errorf("client lookup: %+v %v", lr, err)
		}
		if _, err := cl.Pivot(context.Background(), red, 1); err == nil {
			t.Errorf("client pivot of a hidden object: no error")
		} else if ae := (*search.APIError)(nil); !errors.As(err, &ae) || ae.Status != 404 {
			t.Errorf("client pivot of a hidden object: %v", err)
		}
	})
}
