package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/mitra-cert/mitra/internal/stix"
)

// chromiumPath finds Debian's chromium: MITRA_CHROMIUM, else
// /usr/bin/chromium, else chromium on PATH. Outside CI a machine without
// it skips the browser tests; under CI=true they fail.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("MITRA_CHROMIUM"), "/usr/bin/chromium"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (./test.sh installs it when run as root: apt-get install -y chromium)")
	}
	t.Skip("chromium is not installed: the browser tests need /usr/bin/chromium (apt-get install -y chromium)")
	return ""
}

// artefacts is the directory of the browser tests' screenshots.
func artefacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("MITRA_TEST_ARTEFACTS")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "mitra-console-artefacts-"); err != nil {
			t.Fatal(err)
		}
	}
	dir = filepath.Join(dir, "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("console screenshots in %s", dir)
	return dir
}

// ui drives one browser tab.
type ui struct {
	t   *testing.T
	ctx context.Context
	w   *world
	dir string
	n   int
}

func (u *ui) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	u.t.Helper()
	if err := chromedp.Do(u.ctx, steps...); err != nil {
		u.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		u.t.Fatalf("%s: %v", what, err)
	}
}

func run[T any](u *ui, what string, a chromedp.Action[T]) T {
	u.t.Helper()
	v, err := chromedp.Run(u.ctx, a)
	if err != nil {
		u.t.Fatalf("%s: %v", what, err)
	}
	return v
}

func (u *ui) open(path string, ready string) {
	u.t.Helper()
	u.do("open "+path, chromedp.Navigate(u.w.ts.URL+path), chromedp.WaitVisible(chromedp.CSS(ready)))
}

func (u *ui) text(sel string) string {
	u.t.Helper()
	return run(u, "text of "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// shot saves a screenshot of the whole page.
func (u *ui) shot(name string) {
	u.t.Helper()
	b, err := chromedp.Run(u.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		u.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	u.n++
	if err := os.WriteFile(filepath.Join(u.dir, fmt.Sprintf("%02d-%s.png", u.n, name)), b, 0o644); err != nil {
		u.t.Error(err)
	}
}

func (u *ui) signIn(user string) {
	u.t.Helper()
	u.open("/console/signin", "#user")
	u.do("sign in as "+user, chromedp.SendKeys(chromedp.CSS("#user"), user), chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#signin")), chromedp.WaitVisible(chromedp.CSS("#total")))
}

func (u *ui) signOut() {
	u.t.Helper()
	u.do("sign out", chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#user")))
}

// noUntranslated fails when the page shows a message id.
func (u *ui) noUntranslated(where string) {
	u.t.Helper()
	if body := u.text("body"); strings.Contains(body, "⟦") {
		u.t.Errorf("%s: untranslated message on the page: %s", where, between(body, "⟦", "⟧"))
	}
}

// TestBrowser drives the console in Debian's chromium (one browser for
// the whole test): sign-in, search, lookup, an object and its graph, the
// indicator editor with an invalid then a valid pattern, a sighting
// appearing on the dashboard, Indonesian and Russian, administration,
// and a user of another organisation who sees the TLP:RED object nowhere.
func TestBrowser(t *testing.T) {
	exe := chromiumPath(t)
	w := newWorld(t, false)
	profile := t.TempDir()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1366, 768), // a laptop screen
	}
	actx, cancel := chromedp.NewExecAllocator(t.Context(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	u := &ui{t: t, ctx: ctx, w: w, dir: artefacts(t)}

	// Sign in: / leads to the console, which asks for the password.
	u.open("/", "#user")
	u.shot("signin")
	u.signIn("alice")
	// Keyboard: the first Tab reaches the skip link, the next ones the
	// navigation.
	u.do("tab", chromedp.KeyEvent(kb.Tab))
	if cls := run(u, "focus", chromedp.Evaluate[string]("document.activeElement.className")); cls != "skip" {
		t.Errorf("first Tab focuses %q, want the skip link", cls)
	}
	u.shot("dashboard")
	if got := u.text("#total"); !strings.HasPrefix(got, "6 ") {
		t.Errorf("alice's total: %q", got)
	}

	// Search.
	u.open("/console/search", "#q")
	u.do("search", chromedp.SendKeys(chromedp.CSS("#q"), "scanner"), chromedp.Click(chromedp.CSS("#search-go")), chromedp.WaitVisible(chromedp.CSS("#results")))
	if got := u.text("#results"); !strings.Contains(got, "Shared scanner") {
		t.Errorf("search results: %q", got)
	}
	u.shot("search")

	// Lookup: the GREEN indicator's address is known.
	u.open("/console/lookup", "#values")
	u.do("lookup", chromedp.SendKeys(chromedp.CSS("#values"), greenIP+"\n192.0.2.200"), chromedp.Click(chromedp.CSS("#lookup-go")),
		chromedp.WaitVisible(chromedp.CSS("#lookup-results")))
	got := u.text("#lookup-results")
	if !strings.Contains(got, "Shared scanner") || !strings.Contains(got, "192.0.2.200 — not known") {
		t.Errorf("lookup: %q", got)
	}
	u.shot("lookup")

	// An object, its graph, and a click through the graph.
	u.do("open result", chromedp.Click(chromedp.CSS("#lookup-results a")), chromedp.WaitVisible(chromedp.CSS("#graph")))
	if n := run(u, "nodes", chromedp.Evaluate[int]("document.querySelectorAll('#graph a.node').length")); n != 2 {
		t.Errorf("alice's graph of the GREEN indicator has %d nodes, want 2", n)
	}
	u.shot("object-graph")
	u.do("click graph node", chromedp.Click(chromedp.CSS("#graph a.node:not(.center)")), chromedp.WaitVisible(chromedp.CSS("#stix-json")))
	if loc := run(u, "location", chromedp.Location()); !strings.Contains(loc, w.red) {
		t.Errorf("graph click went to %s", loc)
	}
	if got := u.text("#object-tlp"); got != "TLP:RED" {
		t.Errorf("RED object's TLP shown as %q", got)
	}
	u.shot("object-red")

	// The indicator editor: an invalid pattern shows its error position as
	// one types; a valid one is tested against sample events, then created.
	u.open("/console/indicator", "#pattern")
	u.do("type invalid pattern", chromedp.SendKeys(chromedp.CSS("#name"), "Beacon domain"),
		chromedp.SendKeys(chromedp.CSS("#pattern"), "[domain-name:value = 'beacon.example' AND]"),
		chromedp.WaitVisible(chromedp.CSS(`#pattern-status[data-valid="false"]`)))
	if got := u.text("#pattern-status"); !strings.Contains(got, "character 41") {
		t.Errorf("pattern error: %q", got)
	}
	if caret := run(u, "caret", chromedp.TextContent(chromedp.CSS("#pattern-caret"))); !strings.HasSuffix(caret, strings.Repeat(" ", 41)+"^") {
		t.Errorf("caret: %q", caret)
	}
	u.shot("indicator-invalid")
	u.do("type valid pattern", setValue("#pattern", ""), chromedp.SendKeys(chromedp.CSS("#pattern"), "[domain-name:value = 'beacon.example']"),
		chromedp.WaitVisible(chromedp.CSS(`#pattern-status[data-valid="true"]`)))
	now := stix.FormatMicro(time.Now())
	events := `[{"type":"observed-data","spec_version":"2.1","id":"observed-data--aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa","created":"` + now + `","modified":"` + now +
		`","first_observed":"` + now + `","last_observed":"` + now + `","number_observed":1,"object_refs":["domain-name--bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"]},` +
		`{"type":"domain-name","id":"domain-name--bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb","value":"beacon.example"}]`
	u.do("test pattern", setValue("#events", events), chromedp.Click(chromedp.CSS("#test")),
		chromedp.WaitVisible(chromedp.CSS(`#test-result[data-matched="true"]`)))
	u.shot("indicator-test")
	u.do("create indicator", chromedp.Click(chromedp.CSS("#create")), chromedp.WaitVisible(chromedp.CSS("#stix-json")))
	if got := u.text("#fields"); !strings.Contains(got, "Beacon domain") || !strings.Contains(got, "beacon.example") {
		t.Errorf("created indicator's page: %q", got)
	}
	u.shot("indicator-created")

	// A sighting arrives (a sensor reports over TAXII) and appears on the
	// dashboard.
	u.open("/console/", "#sightings-total")
	before := u.text("#sightings-total")
	if status, out := w.taxiiPost("alice", []map[string]any{{"type": "sighting", "spec_version": "2.1", "id": "sighting--77777777-7777-4777-8777-777777777777",
		"created": now, "modified": now, "sighting_of_ref": w.green, "count": 2}}); status != http.StatusAccepted {
		t.Fatalf("post sighting: %d %s", status, out)
	}
	u.do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#sightings-total")))
	if after := u.text("#sightings-total"); !strings.HasPrefix(before, "1 ") || !strings.HasPrefix(after, "2 ") {
		t.Errorf("sightings before and after: %q, %q", before, after)
	}
	u.shot("dashboard-sighting")
	u.open("/console/sightings", "#sightings")
	if got := u.text("#sightings"); !strings.Contains(got, "ipv4-addr: "+redValue) || !strings.Contains(got, "Shared scanner") {
		t.Errorf("sightings page: %q", got)
	}
	u.shot("sightings")

	// Languages: Indonesian, then Russian, on every page, then back.
	for _, l := range []struct{ code, dashboard, search string }{{"id", "Dasbor", "Pencarian"}, {"ru", "Обзор", "Поиск"}} {
		u.do("switch to "+l.code, chromedp.Click(chromedp.CSS(`button[data-lang="`+l.code+`"]`)), chromedp.WaitVisible(chromedp.CSS(`html[lang="`+l.code+`"] main`)))
		for _, p := range []struct{ path, ready string }{{"/console/", "#total"}, {"/console/search?q=scanner", "#results"}, {"/console/lookup", "#values"},
			{"/console/object?id=" + w.green, "#graph"}, {"/console/indicator", "#pattern"}, {"/console/sightings", "#sightings"}} {
			u.open(p.path, p.ready)
			u.noUntranslated(l.code + " " + p.path)
			u.shot(l.code + "-" + strings.Trim(strings.NewReplacer("/console/", "", "?", "-", "=", "-").Replace(p.path), "-"))
		}
		if nav := u.text("header nav"); !strings.Contains(nav, l.dashboard) || !strings.Contains(nav, l.search) {
			t.Errorf("%s navigation: %q", l.code, nav)
		}
	}
	u.do("back to English", chromedp.Click(chromedp.CSS(`button[data-lang="en"]`)), chromedp.WaitVisible(chromedp.CSS(`html[lang="en"] main`)))
	u.signOut()

	// Administration, as an admin.
	u.signIn("root")
	for _, s := range []string{"orgs", "users", "tokens", "groups", "collections", "audit"} {
		u.open("/console/admin?s="+s, "#admin-table")
		u.shot("admin-" + s)
	}
	u.signOut()

	// Organisation B sees the TLP:RED object nowhere.
	u.signIn("bob")
	secrets := []string{redName, redValue, w.red, w.redSighting, "TLP:RED"}
	check := func(where string) {
		t.Helper()
		body := run(u, "html", chromedp.OuterHTML(chromedp.CSS("html")))
		for _, s := range secrets {
			if strings.Contains(body, s) {
				t.Errorf("bob sees %q on %s", s, where)
			}
		}
	}
	// Bob counts the GREEN indicator and, from the browser steps above,
	// alice's new AMBER indicator and her sighting (unmarked: the
	// collection's AMBER): three, not alice's eight.
	if got := u.text("#total"); !strings.HasPrefix(got, "3 ") {
		t.Errorf("bob's total: %q", got)
	}
	check("dashboard")
	u.shot("other-org-dashboard")
	u.open("/console/search?q=nightjar", "#no-results")
	check("search for the RED name")
	u.open("/console/search?q=&tlp=red", "#no-results")
	check("search for TLP:RED")
	u.open("/console/search?q=", "#results")
	check("search for everything")
	u.shot("other-org-search")
	u.open("/console/lookup", "#values")
	u.do("bob looks up", chromedp.SendKeys(chromedp.CSS("#values"), redValue), chromedp.Click(chromedp.CSS("#lookup-go")),
		chromedp.WaitVisible(chromedp.CSS("#lookup-results")))
	if got := u.text("#lookup-results"); !strings.Contains(got, "not known") {
		t.Errorf("bob's lookup of the RED address: %q", got)
	}
	u.shot("other-org-lookup")
	u.open("/console/object?id="+w.green+"&hops=2", "#graph")
	if n := run(u, "nodes", chromedp.Evaluate[int]("document.querySelectorAll('#graph a.node').length")); n != 2 {
		// The GREEN indicator and alice's new sighting of it; never the RED one.
		t.Errorf("bob's graph has %d nodes, want 2", n)
	}
	check("graph")
	u.shot("other-org-graph")
	u.open("/console/sightings", "main")
	check("sightings")
	u.open("/console/object?id="+w.red, "main")
	if got := u.text("main"); !strings.Contains(got, "There is nothing here.") {
		t.Errorf("bob opens the RED object: %q", got)
	}
	u.shot("other-org-red-object")
	if err := ctx.Err(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

// setValue sets a form field's value as a paste would.
func setValue(sel, v string) chromedp.Action[chromedp.Void] {
	b, _ := json.Marshal(v)
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf("(document.querySelector(%q).value = %s, true)", sel, b)))
		return err
	})
}
