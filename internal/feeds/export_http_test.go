package feeds_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/feeds"
	"github.com/mitra-cert/mitra/internal/store"
)

// allFiles fetches every format's main file (and the second file, if any:
// a Suricata list or a MISP event) for a client, keyed by path.
func allFiles(t *testing.T, c *client, query string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, f := range feeds.ExportFormats() {
		res, body := c.get(feeds.ExportPrefix + f + query)
		must(t, res.StatusCode == http.StatusOK, "%s %s: %d %s", c.name, f, res.StatusCode, body)
		out[f] = body
		out[f+" etag"] = []byte(res.Header.Get("ETag"))
		out[f+" skipped"] = []byte(res.Header.Get("X-Mitra-Skipped"))
	}
	// The MISP events the manifest names, and every Suricata list name
	// the rules could refer to.
	var manifest map[string]any
	must(t, json.Unmarshal(out["misp"], &manifest) == nil, "manifest %s", out["misp"])
	for u := range manifest {
		res, body := c.get(feeds.ExportPrefix + "misp/" + u + ".json" + query)
		must(t, res.StatusCode == http.StatusOK, "%s misp event: %d", c.name, res.StatusCode)
		out["misp/"+u] = body
	}
	for _, kind := range []string{"ip", "domain", "md5", "sha1", "sha256"} {
		for _, tlp := range []string{"clear", "green", "amber", "amber_strict", "red"} {
			name := "suricata/mitra-" + kind + "-" + tlp + ".lst"
			res, body := c.get(feeds.ExportPrefix + name + query)
			out[name] = append([]byte(res.Status+"\n"), body...)
		}
	}
	return out
}

// TestExportLeak: organisations A, B, C; A and B in a sharing group with
// read on "shared", C read on it by an organisation grant; "private" is
// A's alone. A adds a GREEN indicator (everyone's), a RED one for B, an
// AMBER+STRICT one (A's only), and opinions and sightings on them. C's
// exports in every format are byte for byte (and ETag for ETag) what they
// were before the hidden objects existed; B sees the RED one and not the
// AMBER+STRICT one; C asking for "private" gets the answer a missing
// collection gets, as does C asking for the score of a hidden indicator.
func TestExportLeak(t *testing.T) {
	w := newExportWorld(t)
	a, b, c := w.org("A"), w.org("B"), w.org("C")
	anna := w.member("anna", a, access.RoleAnalyst)
	bert := w.member("bert", b, access.RoleAnalyst)
	cleo := w.member("cleo", c, access.RoleAnalyst)
	g := w.group("ab", a, b)
	shared := w.collection(&store.Collection{Title: "shared", Alias: "shared", Grants: []store.Grant{
		{Kind: store.GrantGroup, Subject: g, Read: true, Write: true}, {Kind: store.GrantOrg, Subject: c, Read: true, Write: true}}})
	private := w.collection(&store.Collection{Title: "private", Grants: []store.Grant{{Kind: store.GrantOrg, Subject: a, Read: true, Write: true}}})

	green := w.indicator("[ipv4-addr:value = '198.51.100.1'] OR [domain-name:value = 'green.example']", "green")
	anna.post(shared, green)
	q := "?collection=shared"
	before := allFiles(t, cleo, q)

	red := w.indicator("[domain-name:value = 'red.example'] OR [file:hashes.'SHA-256' = '"+strings.Repeat("ab", 32)+"']", "red", "x_mitra_recipients", []string{b})
	strict := w.indicator("[ipv4-addr:value = '203.0.113.9'] OR [url:value = 'http://strict.example/x?y=1']", "amber+strict")
	anna.post(shared, red, strict)
	// Evidence C may not read must not move C's scores either.
	anna.post(shared, w.opinion(id(green), "disagree", "red"), w.sighting(id(green), "amber+strict"))
	anna.post(private, w.indicator("[domain-name:value = 'private.example']", "clear"))

	after := allFiles(t, cleo, q)
	for k, v := range before {
		if !bytes.Equal(v, after[k]) {
			t.Errorf("C's %s changed when hidden objects were added:\nbefore %s\nafter  %s", k, v, after[k])
		}
	}
	for _, f := range feeds.ExportFormats() {
		for _, hidden := range []string{"red.example", "203.0.113.9", id(red), id(strict), "private.example", strings.Repeat("ab", 32)} {
			if bytes.Contains(after[f], []byte(hidden)) {
				t.Errorf("C's %s export holds %s", f, hidden)
			}
		}
	}
	// C's full export (no collection named) holds only the GREEN one.
	_, all := cleo.get(feeds.ExportPrefix + "stix")
	must(t, bytes.Contains(all, []byte(id(green))) && !bytes.Contains(all, []byte("private.example")) && !bytes.Contains(all, []byte(id(red))),
		"C's export of all collections: %s", all)

	// B: the RED one (a named recipient), not the AMBER+STRICT one.
	_, bs := bert.get(feeds.ExportPrefix + "stix" + q)
	must(t, bytes.Contains(bs, []byte(id(red))) && bytes.Contains(bs, []byte(id(green))) && !bytes.Contains(bs, []byte(id(strict))), "B's export: %s", bs)
	// A: all three.
	_, as := anna.get(feeds.ExportPrefix + "stix" + q)
	for _, o := range []map[string]any{green, red, strict} {
		must(t, bytes.Contains(as, []byte(id(o))), "A's export lacks %s", id(o))
	}

	// A hidden collection or indicator is a missing one.
	missing := func(path string) {
		t.Helper()
		r1, b1 := cleo.get(path)
		r2, b2 := cleo.get(strings.Replace(path, private, "no-such-collection", 1))
		must(t, r1.StatusCode == http.StatusNotFound && r2.StatusCode == http.StatusNotFound && bytes.Equal(b1, b2),
			"%s: %d %s vs missing %d %s", path, r1.StatusCode, b1, r2.StatusCode, b2)
	}
	missing(feeds.ExportPrefix + "csv?collection=" + private)
	missing(feeds.ExportPrefix + "score/" + id(green) + "?collection=" + private)
	r1, b1 := cleo.get(feeds.ExportPrefix + "score/" + id(strict))
	r2, b2 := cleo.get(feeds.ExportPrefix + "score/indicator--00000000-0000-4000-8000-000000000001")
	must(t, r1.StatusCode == http.StatusNotFound && r2.StatusCode == r1.StatusCode && bytes.Equal(b1, b2), "hidden score %d %s, missing %d %s", r1.StatusCode, b1, r2.StatusCode, b2)

	// C's score of the GREEN one ignores the RED opinion and the
	// AMBER+STRICT sighting; A's counts both.
	var cs, ascore feeds.Score
	_, body := cleo.get(feeds.ExportPrefix + "score/" + id(green))
	must(t, json.Unmarshal(body, &cs) == nil && cs.FalsePositives == 0 && cs.Sightings == 0, "C's score: %s", body)
	_, body = anna.get(feeds.ExportPrefix + "score/" + id(green))
	must(t, json.Unmarshal(body, &ascore) == nil && ascore.FalsePositives == 1 && ascore.Sightings == 1, "A's score: %s", body)
}

// TestSensorFetchesTwiceAndGets304: a sensor with a read-only API token
// fetches the Suricata rules and a list, then again with If-None-Match:
// 304 with no body. A new indicator changes the ETag; without credentials
// the answer is 401.
func TestSensorFetchesTwiceAndGets304(t *testing.T) {
	w := newExportWorld(t)
	org := w.org("CERT")
	anna := w.member("anna", org, access.RoleAnalyst)
	w.member("sensor", org, access.RoleReadOnly)
	coll := w.collection(&store.Collection{Title: "feed", Alias: "feed", Grants: []store.Grant{{Kind: store.GrantOrg, Subject: org, Read: true, Write: true}}})
	var objs []map[string]any
	for i := range 30 {
		objs = append(objs, w.indicator("[domain-name:value = 'd"+string(rune('a'+i%26))+strings.Repeat("x", i)+".example']", "green"))
	}
	anna.post(coll, objs...)
	secret, _, err := access.CreateToken(t.Context(), w.st, "sensor", access.RoleReadOnly, 0, w.clock())
	must(t, err == nil, "token: %v", err)
	sensor := &client{w: w, token: secret}

	for _, path := range []string{feeds.ExportPrefix + "suricata?collection=feed", feeds.ExportPrefix + "suricata/mitra-domain-green.lst?collection=feed", feeds.ExportPrefix + "rpz?collection=feed"} {
		res, body := sensor.get(path)
		must(t, res.StatusCode == http.StatusOK && len(body) > 0, "%s: %d %s", path, res.StatusCode, body)
		etag := res.Header.Get("ETag")
		must(t, etag != "", "%s: no ETag", path)
		res2, body2 := sensor.get(path, "If-None-Match", etag)
		must(t, res2.StatusCode == http.StatusNotModified && len(body2) == 0, "%s second fetch: %d %q", path, res2.StatusCode, body2)
	}
	res, _ := sensor.get(feeds.ExportPrefix + "rpz?collection=feed")
	etag := res.Header.Get("ETag")
	w.advance(time.Second)
	anna.post(coll, w.indicator("[domain-name:value = 'new.example']", "green"))
	res, body := sensor.get(feeds.ExportPrefix+"rpz?collection=feed", "If-None-Match", etag)
	must(t, res.StatusCode == http.StatusOK && bytes.Contains(body, []byte("new.example")), "after a change: %d %s", res.StatusCode, body)

	// A MISP instance pulls the feed of one collection by path.
	res, body = sensor.get(feeds.ExportPrefix + "misp/collection/feed/manifest.json")
	var manifest map[string]any
	must(t, res.StatusCode == http.StatusOK && json.Unmarshal(body, &manifest) == nil && len(manifest) == 1, "MISP manifest: %d %s", res.StatusCode, body)
	for u := range manifest {
		res, body = sensor.get(feeds.ExportPrefix + "misp/collection/feed/" + u + ".json")
		must(t, res.StatusCode == http.StatusOK && bytes.Contains(body, []byte("new.example")), "MISP event: %d %s", res.StatusCode, body)
	}
	res, _ = sensor.get(feeds.ExportPrefix + "misp/collection/nope/manifest.json")
	must(t, res.StatusCode == http.StatusNotFound, "MISP feed of a missing collection: %d", res.StatusCode)

	anon := &client{w: w}
	res, _ = anon.get(feeds.ExportPrefix + "rpz")
	must(t, res.StatusCode == http.StatusUnauthorized, "anonymous: %d", res.StatusCode)
	res, _ = sensor.get(feeds.ExportPrefix + "nope")
	must(t, res.StatusCode == http.StatusNotFound, "unknown format: %d", res.StatusCode)
}
