package feeds_test

import (
	"strings"
	"testing"

	"github.com/mitra-cert/mitra/internal/feeds"
)

func TestWarningListsMatch(t *testing.T) {
	t.Parallel()
	w := feeds.NewWarningLists(nil)
	own, err := feeds.ParseList("own-assets", "", strings.NewReader("# our ranges\n81.2.69.0/24\n2a02:1234::/32\n"))
	if err != nil || own.Kind != feeds.KindCIDR {
		t.Fatalf("ParseList = %+v, %v", own, err)
	}
	if err := w.Set(own); err != nil {
		t.Fatal(err)
	}
	misp, err := feeds.ParseList("x", "", strings.NewReader(`{"name": "cert-benign", "type": "substring", "description": "d", "list": ["sharepoint.com"]}`))
	if err != nil || misp.Name != "cert-benign" {
		t.Fatalf("MISP warninglist = %+v, %v", misp, err)
	}
	if err := w.Set(misp); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		kind, value, list string
	}{
		{"ip", "10.1.2.3", "special-purpose-addresses"},
		{"ip", "10.1.0.0/16", "special-purpose-addresses"},
		{"ip", "fe80::1", "special-purpose-addresses"},
		{"ip", "81.2.69.160", "own-assets"},
		{"ip", "2a02:1234:5::1", "own-assets"},
		{"ip", "81.2.0.0/16", ""}, // wider than the listed range
		{"ip", "185.220.101.1", ""},
		{"domain", "printer.local", "special-use-domains"},
		{"domain", "www.example.com", "special-use-domains"},
		{"domain", "google.com", "well-known-domains"},
		{"domain", "evil.sites.google.com", ""}, // subdomains of big providers can host abuse
		{"domain", "notexample.com", ""},
		{"url", "https://tenant.sharepoint.com/x", "cert-benign"},
		{"url", "http://10.0.0.5/admin", "special-purpose-addresses"},
		{"", "8.8.8.8", "well-known-domains"},
	} {
		hit, ok := w.Match(c.kind, c.value)
		if ok != (c.list != "") || hit.List != c.list {
			t.Errorf("Match(%s, %s) = %+v, %v; want list %q", c.kind, c.value, hit, ok, c.list)
		}
	}
	hit, ok := w.CheckIndicator([]byte(`{"pattern":"[ipv4-addr:value = '185.220.101.1'] OR [ipv4-addr:value ISSUBSET '192.168.0.0/24']","pattern_type":"stix"}`))
	if !ok || hit.Value != "192.168.0.0/24" || !strings.Contains(hit.Reason(), "special-purpose-addresses") {
		t.Errorf("CheckIndicator = %+v, %v", hit, ok)
	}
	if _, ok := w.CheckIndicator([]byte(`{"pattern":"[ipv4-addr:value != '10.0.0.1']","pattern_type":"stix"}`)); ok {
		t.Error("a negated comparison flagged")
	}
	if !w.Remove("own-assets") {
		t.Error("Remove")
	}
	if _, ok := w.Match("ip", "81.2.69.160"); ok {
		t.Error("a removed list still matches")
	}
	if _, err := feeds.ParseList("bad", "cidr", strings.NewReader("not-an-address\n")); err == nil {
		t.Error("a CIDR list with a name accepted")
	}
}

// A list added after an import flags the stored indicators on a rescan;
// removed again, a rescan clears them.
func TestWarningListRescan(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	org := w.org("cert")
	p := w.member("alice", org)
	col := w.collection("c", org)
	opt := feeds.Options{Format: "text"}
	src, err := w.imp.Open(t.Context(), p, opt, strings.NewReader("81.2.69.7\nevil-one.com\n"), "l")
	if err != nil {
		t.Fatal(err)
	}
	if rep := w.importSource(p, col, src, opt); rep.Added != 2 || rep.Inactive != 0 {
		t.Fatalf("import: %+v", rep)
	}
	if err := w.imp.Warnings.Set(feeds.List{Name: "own-assets", Kind: feeds.KindCIDR, Entries: []string{"81.2.69.0/24"}}); err != nil {
		t.Fatal(err)
	}
	checked, flagged, err := w.imp.Rescan(t.Context(), col)
	if err != nil || checked != 2 || flagged != 1 {
		t.Fatalf("Rescan = %d, %d, %v", checked, flagged, err)
	}
	flags, _ := w.st.ListInactive(t.Context(), col)
	if len(flags) != 1 || flags[0].Value != "81.2.69.7" || flags[0].List != "own-assets" {
		t.Errorf("flags %+v", flags)
	}
	w.imp.Warnings.Remove("own-assets")
	if _, flagged, err := w.imp.Rescan(t.Context(), col); err != nil || flagged != 0 {
		t.Fatalf("second Rescan: %d, %v", flagged, err)
	}
	if flags, _ := w.st.ListInactive(t.Context(), col); len(flags) != 0 {
		t.Errorf("flags after the list was removed: %+v", flags)
	}
}
