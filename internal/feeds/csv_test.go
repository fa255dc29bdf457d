package feeds_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/feeds"
)

// csvIndicators imports a list and returns the stored indicators by
// pattern.
func csvIndicators(t *testing.T, w *world, user, col string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, raw := range w.objects(user, col) {
		m := obj(t, raw)
		out[m["pattern"].(string)] = m
	}
	return out
}

// A semicolon CSV with a byte order mark, a header, quoted fields with
// doubled quotes, a delimiter and a newline inside quotes, a defanged URL
// and a bad row: each good row is an indicator, the bad row is rejected
// with its line, unmapped columns are kept, and a listed resolver is
// flagged.
func TestImportCSVSemicolonBOM(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	org := w.org("cert")
	p := w.member("alice", org)
	col := w.collection("csv", org)
	opt := feeds.Options{Format: "csv", TLP: "green", CSV: feeds.CSVOptions{Columns: map[string]string{
		"value": "indicator", "type": "type", "description": "description", "first_seen": "first_seen", "labels": "tags"}}}
	src, err := w.imp.Open(t.Context(), p, opt, open(t, "semicolon-bom.csv"), "semicolon-bom.csv")
	if err != nil {
		t.Fatal(err)
	}
	rep := w.importSource(p, col, src, opt)
	if rep.Added != 3 || rep.Rejected != 1 || !strings.HasPrefix(rep.Rejections[0].ID, "line 6") || !strings.Contains(rep.Rejections[0].Reason, `"not a value"`) {
		t.Fatalf("report %+v", rep)
	}
	got := csvIndicators(t, w, "alice", col)
	ip := got["[ipv4-addr:value = '185.220.101.7']"]
	if ip == nil || ip["description"] != `C2; seen in "PAPERCUT" campaign` || ip["valid_from"] != "2026-11-01T00:00:00.000000Z" ||
		!same(ip["labels"], "c2", "papercut") || ip["x_mitra_csv"].(map[string]any)["source_ref"] != "ticket-17" ||
		!same(ip["object_marking_refs"], green) {
		t.Errorf("first row: %v", ip)
	}
	u := got["[url:value = 'https://evil-login.com/a?b=1']"]
	if u == nil || u["description"] != "Phishing page, multi-line\ncomment" {
		t.Errorf("refanged URL row: %v (have %v)", u, keys(got))
	}
	if g := got["[ipv4-addr:value = '8.8.8.8']"]; g == nil {
		t.Error("the listed resolver was dropped instead of kept")
	} else if reason, in, _ := w.imp.Warnings.Inactive(t.Context(), g["id"].(string)); !in || !strings.Contains(reason, "well-known-domains") {
		t.Errorf("8.8.8.8: inactive %v (%q)", in, reason)
	}
	// The same list tomorrow: the same indicators, no new versions.
	w.now = w.now.Add(24 * time.Hour)
	src, _ = w.imp.Open(t.Context(), p, opt, open(t, "semicolon-bom.csv"), "semicolon-bom.csv")
	again := w.importSource(p, col, src, opt)
	if again.Unchanged != 3 || again.Added+again.Updated != 0 {
		t.Errorf("re-import: %+v", again)
	}
}

// A Latin-1 file is detected (not UTF-8) and read as such; a list
// without a type column has its types inferred.
func TestImportCSVLatin1(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	org := w.org("cert")
	p := w.member("alice", org)
	col := w.collection("csv", org)
	opt := feeds.Options{Format: "csv"}
	src, err := w.imp.Open(t.Context(), p, opt, open(t, "latin1.csv"), "latin1.csv")
	if err != nil {
		t.Fatal(err)
	}
	rep := w.importSource(p, col, src, opt)
	if rep.Added != 2 || rep.Rejected != 0 {
		t.Fatalf("report %+v", rep)
	}
	got := csvIndicators(t, w, "alice", col)
	if m := got["[ipv4-addr:value = '45.76.1.9']"]; m == nil || m["x_mitra_csv"].(map[string]any)["note"] != "Café réseau « tunnel »" {
		t.Errorf("latin-1 row: %v", m)
	}
	if m := got["[ipv4-addr:value = '45.76.1.99']"]; m == nil || m["x_mitra_csv"].(map[string]any)["note"] != "Straße" {
		t.Errorf("latin-1 row: %v", m)
	}
}

// A plain-text list: comments and blank lines skipped, types inferred,
// documentation ranges kept but flagged, a name that is no indicator
// rejected; a changed description makes a new version that keeps its
// created.
func TestImportTextList(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	org := w.org("cert")
	p := w.member("alice", org)
	col := w.collection("txt", org)
	opt := feeds.Options{Format: "text"}
	src, err := w.imp.Open(t.Context(), p, opt, open(t, "blocklist.txt"), "blocklist.txt")
	if err != nil {
		t.Fatal(err)
	}
	rep := w.importSource(p, col, src, opt)
	if rep.Added != 5 || rep.Rejected != 1 || rep.Rejections[0].ID != "line 9" || rep.Inactive != 2 {
		t.Fatalf("report %+v", rep)
	}
	got := csvIndicators(t, w, "alice", col)
	for _, pat := range []string{"[domain-name:value = 'evil-one.com']", "[domain-name:value = 'evil-two.net']", "[ipv4-addr:value = '192.0.2.15']",
		"[ipv6-addr:value = '2001:db8::bad']", "[file:hashes.MD5 = '44d88612fea8a8f36de82e1278abb02f']"} {
		if got[pat] == nil {
			t.Errorf("%s missing (have %v)", pat, keys(got))
		}
	}
	first := got["[domain-name:value = 'evil-one.com']"]
	w.now = w.now.Add(time.Hour)
	csv := "value,description\nevil-one.com,now with a description\n"
	src, _ = w.imp.Open(t.Context(), p, feeds.Options{Format: "csv", CSV: feeds.CSVOptions{Columns: map[string]string{"value": "1", "description": "2"}}},
		strings.NewReader(csv), "blocklist.txt")
	upd := w.importSource(p, col, src, feeds.Options{})
	if upd.Updated != 1 {
		t.Fatalf("update: %+v", upd)
	}
	now := csvIndicators(t, w, "alice", col)["[domain-name:value = 'evil-one.com']"]
	if now["id"] != first["id"] || now["created"] != first["created"] || now["valid_from"] != first["valid_from"] ||
		now["modified"] != "2026-12-06T05:00:00.000000Z" || now["description"] != "now with a description" {
		t.Errorf("new version %v of %v", now, first)
	}
}

// Two organisations importing the same public list into one collection
// each own their indicators: the second import is not told "unchanged"
// by the first's (hidden, RED) versions, and neither reads the other's.
func TestImportSameListTwoOrganisations(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a, b := w.org("a"), w.org("b")
	pa, pb := w.member("alice", a), w.member("bob", b)
	col := w.collection("shared", a, b)
	opt := feeds.Options{Format: "text", TLP: "red"}
	for _, p := range []*access.Principal{pa, pb} {
		src, err := w.imp.Open(t.Context(), p, opt, strings.NewReader("evil-one.com\nevil-two.com\n"), "public.txt")
		if err != nil {
			t.Fatal(err)
		}
		if rep := w.importSource(p, col, src, opt); rep.Added != 2 || rep.Unchanged != 0 {
			t.Errorf("%s: %+v", p.User, rep)
		}
	}
	ra, rb := w.objects("alice", col), w.objects("bob", col)
	if len(ra) != 2 || len(rb) != 2 {
		t.Fatalf("alice reads %d, bob %d", len(ra), len(rb))
	}
	for id := range ra {
		if _, ok := rb[id]; ok {
			t.Errorf("%s is read by both organisations", id)
		}
	}
}
