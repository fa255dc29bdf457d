package feeds_test

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/feeds"
	"github.com/mitra-cert/mitra/internal/store"
)

// TestSearchExportLeak: organisations A, B, C; A and B in a sharing group
// with read and write on "shared", C with read on it by an organisation
// grant; "private" is A's alone. Every indicator is named "beacon". C's
// exports from searches (text only, with a TLP, type, organisation and
// time filter, and within "shared") in every format are byte for byte,
// ETag for ETag and X-Mitra-Skipped for X-Mitra-Skipped what they were
// before A added a RED indicator for B, an AMBER+STRICT one in the group's
// collection, a revoked RED one (which would be counted as skipped), a
// CLEAR one in "private" and hidden evidence. A search matching only
// hidden indicators answers as a search matching nothing.
func TestSearchExportLeak(t *testing.T) {
	w := newExportWorld(t)
	a, b, c := w.org("A"), w.org("B"), w.org("C")
	anna := w.member("anna", a, access.RoleAnalyst)
	bert := w.member("bert", b, access.RoleAnalyst)
	cleo := w.member("cleo", c, access.RoleAnalyst)
	g := w.group("ab", a, b)
	shared := w.collection(&store.Collection{Title: "shared", Alias: "shared", Grants: []store.Grant{
		{Kind: store.GrantGroup, Subject: g, Read: true, Write: true}, {Kind: store.GrantOrg, Subject: c, Read: true}}})
	private := w.collection(&store.Collection{Title: "private", Alias: "private", Grants: []store.Grant{{Kind: store.GrantOrg, Subject: a, Read: true, Write: true}}})

	green := w.indicator("[ipv4-addr:value = '198.51.100.1'] OR [domain-name:value = 'green.example']", "green", "name", "beacon green")
	gone := w.indicator("[domain-name:value = 'gone.example']", "green", "name", "beacon gone", "revoked", true)
	other := w.indicator("[domain-name:value = 'other.example']", "green", "name", "unrelated")
	anna.post(shared, green, gone, other)

	queries := []string{
		"?q=beacon",
		"?q=beacon&collection=shared",
		"?q=beacon&tlp=green,red&type=indicator",
		"?q=beac*&organisation=" + url.QueryEscape(a) + "&modified_from=2026-01-01&modified_to=2027-01-01",
		"?type=indicator&tlp=green",
	}
	before := map[string]map[string][]byte{}
	for _, q := range queries {
		before[q] = allFiles(t, cleo, q)
	}
	// The search's filter applies: the unrelated indicator is in the
	// collection's export and not in the search's; the revoked one is
	// counted.
	_, coll := cleo.get(feeds.ExportPrefix + "stix?collection=shared")
	must(t, bytes.Contains(coll, []byte(id(other))), "collection export lacks %s: %s", id(other), coll)
	st := before["?q=beacon"]["stix"]
	must(t, bytes.Contains(st, []byte(id(green))) && !bytes.Contains(st, []byte(id(other))) && !bytes.Contains(st, []byte(id(gone))),
		"C's search export: %s", st)
	must(t, string(before["?q=beacon"]["stix skipped"]) == "revoked: 1", "skipped: %q", before["?q=beacon"]["stix skipped"])

	red := w.indicator("[domain-name:value = 'red.example'] OR [file:hashes.'SHA-256' = '"+strings.Repeat("ab", 32)+"']", "red",
		"name", "beacon red", "x_mitra_recipients", []string{b})
	strict := w.indicator("[ipv4-addr:value = '203.0.113.9'] OR [url:value = 'http://strict.example/x?y=1']", "amber+strict", "name", "beacon strictonly")
	revoked := w.indicator("[domain-name:value = 'revoked.example']", "red", "name", "beacon revoked", "revoked", true)
	anna.post(shared, red, strict, revoked)
	anna.post(shared, w.opinion(id(green), "disagree", "red"), w.sighting(id(green), "amber+strict"))
	anna.post(private, w.indicator("[domain-name:value = 'private.example']", "clear", "name", "beacon private"))

	for _, q := range queries {
		after := allFiles(t, cleo, q)
		for k, v := range before[q] {
			if !bytes.Equal(v, after[k]) {
				t.Errorf("C's %s%s changed when hidden objects were added:\nbefore %s\nafter  %s", k, q, v, after[k])
			}
		}
		for _, f := range feeds.ExportFormats() {
			for _, hidden := range []string{"red.example", "203.0.113.9", "revoked.example", id(red), id(strict), id(revoked), "private.example", strings.Repeat("ab", 32)} {
				if bytes.Contains(after[f], []byte(hidden)) {
					t.Errorf("C's %s%s export holds %s", f, q, hidden)
				}
			}
		}
	}

	// A search matching only what C may not read answers as one matching
	// nothing, body, ETag and headers alike.
	for _, f := range []string{"stix", "csv", "suricata", "misp"} {
		r1, b1 := cleo.get(feeds.ExportPrefix + f + "?q=strictonly")
		r2, b2 := cleo.get(feeds.ExportPrefix + f + "?q=nosuchwordanywhere")
		must(t, r1.StatusCode == http.StatusOK && r2.StatusCode == http.StatusOK && bytes.Equal(b1, b2) &&
			r1.Header.Get("ETag") == r2.Header.Get("ETag") && r1.Header.Get("X-Mitra-Skipped") == r2.Header.Get("X-Mitra-Skipped"),
			"%s: hidden match %d %q %s, no match %d %q %s", f, r1.StatusCode, r1.Header.Get("ETag"), b1, r2.StatusCode, r2.Header.Get("ETag"), b2)
	}
	// A search in a hidden collection is a search in a missing one.
	r1, b1 := cleo.get(feeds.ExportPrefix + "csv?q=beacon&collection=private")
	r2, b2 := cleo.get(feeds.ExportPrefix + "csv?q=beacon&collection=no-such-collection")
	must(t, r1.StatusCode == http.StatusNotFound && r2.StatusCode == r1.StatusCode && bytes.Equal(b1, b2), "hidden %d %s, missing %d %s", r1.StatusCode, b1, r2.StatusCode, b2)

	// B: the RED one (a named recipient), not the AMBER+STRICT one; A:
	// everything active, the private one included.
	_, bs := bert.get(feeds.ExportPrefix + "stix?q=beacon")
	must(t, bytes.Contains(bs, []byte(id(red))) && bytes.Contains(bs, []byte(id(green))) && !bytes.Contains(bs, []byte(id(strict))), "B's export: %s", bs)
	_, as := anna.get(feeds.ExportPrefix + "stix?q=beacon")
	for _, o := range []map[string]any{green, red, strict} {
		must(t, bytes.Contains(as, []byte(id(o))), "A's export lacks %s", id(o))
	}
	must(t, bytes.Contains(as, []byte("private.example")) && !bytes.Contains(as, []byte(id(other))), "A's export: %s", as)
	res, _ := anna.get(feeds.ExportPrefix + "csv?q=beacon")
	must(t, res.Header.Get("X-Mitra-Skipped") == "revoked: 2", "A's skipped: %q", res.Header.Get("X-Mitra-Skipped"))
}

// TestSearchExportFilters: a search for other types exports nothing, a
// malformed search is a 400, and a sensor gets 304 for an unchanged
// search export and a new ETag when a new indicator matches.
func TestSearchExportFilters(t *testing.T) {
	w := newExportWorld(t)
	org := w.org("CERT")
	anna := w.member("anna", org, access.RoleAnalyst)
	coll := w.collection(&store.Collection{Title: "feed", Alias: "feed", Grants: []store.Grant{{Kind: store.GrantOrg, Subject: org, Read: true, Write: true}}})
	anna.post(coll, w.indicator("[domain-name:value = 'one.example']", "green", "name", "beacon one"),
		w.indicator("[domain-name:value = 'low.example']", "green", "name", "beacon low", "confidence", 40))

	_, body := anna.get(feeds.ExportPrefix + "plain?q=beacon")
	must(t, string(body) == "one.example\nlow.example\n" || string(body) == "low.example\none.example\n", "plain: %q", body)
	_, body = anna.get(feeds.ExportPrefix + "plain?q=beacon&min_confidence=50")
	must(t, string(body) == "one.example\n", "min_confidence: %q", body)
	_, body = anna.get(feeds.ExportPrefix + "plain?q=beacon&type=malware")
	must(t, len(body) == 0, "type=malware: %q", body)
	_, body = anna.get(feeds.ExportPrefix + "plain?q=beacon&type=malware,indicator&min_confidence=50")
	must(t, string(body) == "one.example\n", "type=malware,indicator: %q", body)
	for _, bad := range []string{"?tlp=purple", "?modified_from=yesterday", "?q=" + strings.Repeat("x", 1001)} {
		res, body := anna.get(feeds.ExportPrefix + "plain" + bad)
		must(t, res.StatusCode == http.StatusBadRequest, "%s: %d %s", bad, res.StatusCode, body)
	}

	path := feeds.ExportPrefix + "rpz?q=beacon&min_confidence=50"
	res, _ := anna.get(path)
	etag := res.Header.Get("ETag")
	res, body = anna.get(path, "If-None-Match", etag)
	must(t, res.StatusCode == http.StatusNotModified && len(body) == 0, "second fetch: %d %q", res.StatusCode, body)
	anna.post(coll, w.indicator("[domain-name:value = 'unrelated.example']", "green", "name", "unrelated"))
	res, _ = anna.get(path, "If-None-Match", etag)
	must(t, res.StatusCode == http.StatusNotModified, "an indicator the search does not match changed the export: %d", res.StatusCode)
	w.advance(1e9)
	anna.post(coll, w.indicator("[domain-name:value = 'two.example']", "green", "name", "beacon two"))
	res, body = anna.get(path, "If-None-Match", etag)
	must(t, res.StatusCode == http.StatusOK && bytes.Contains(body, []byte("two.example")) && !bytes.Contains(body, []byte("unrelated")),
		"after a new match: %d %s", res.StatusCode, body)
}
