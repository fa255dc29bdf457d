package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestServeConsole: `mitra serve` serves the console at / and /console/
// beside the TAXII, admin and hash APIs, whose unknown paths still answer
// TAXII's JSON 404; the first start's admin signs in and sees every page.
func TestServeConsole(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped in -short")
	}
	bin, err := buildMitra()
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, bin, t.TempDir())
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (int, http.Header, string) {
		t.Helper()
		res, err := c.Get(srv.base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, string(b)
	}
	if status, h, _ := get("/"); status != http.StatusSeeOther || h.Get("Location") != "/console/" {
		t.Errorf("/: %d %s", status, h.Get("Location"))
	}
	if status, h, _ := get("/console"); status/100 != 3 || h.Get("Location") != "/console/" {
		t.Errorf("/console: %d %s", status, h.Get("Location"))
	}
	for _, p := range []string{"/nothing", "/api/nothing/", "/admin/nothing", "/consolex"} {
		if status, h, _ := get(p); status != http.StatusNotFound || !strings.Contains(h.Get("Content-Type"), "json") {
			t.Errorf("%s: %d %s, want TAXII's JSON 404", p, status, h.Get("Content-Type"))
		}
	}
	if status, _, _ := get("/taxii2/"); status != http.StatusUnauthorized {
		t.Errorf("/taxii2/ without credentials: %d", status)
	}
	_, _, page := get("/console/signin")
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("sign-in page: %s", page)
	}
	res, err := c.PostForm(srv.base+"/console/signin", url.Values{"user": {"admin"}, "password": {"admin-password-1"}, "csrf": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %d", res.StatusCode)
	}
	for _, p := range []string{"/console/", "/console/search?q=x", "/console/lookup?v=10.0.0.1", "/console/indicator", "/console/sightings", "/console/admin?s=users"} {
		status, _, body := get(p)
		if status != http.StatusOK || strings.Contains(body, "⟦") {
			t.Errorf("%s: %d", p, status)
		}
		if p == "/console/admin?s=users" && !strings.Contains(body, "<td>admin</td>") {
			t.Error("the users page does not list admin")
		}
	}
}
