package feeds_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/feeds"
	"github.com/mitra-cert/mitra/internal/store"
)

const day = 24 * time.Hour

// TestScoreDecaysByClass: with the default model an address loses half
// its score in 30 days, a file hash in three years; the same confidence
// 80 leaves the address below the threshold of 20 after 61 days while the
// hash stays.
func TestScoreDecaysByClass(t *testing.T) {
	m := feeds.DefaultModel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ip := m.Score("indicator--a", feeds.ClassIP, 80, t0, feeds.Evidence{}, t0.Add(30*day))
	hash := m.Score("indicator--b", feeds.ClassHash, 80, t0, feeds.Evidence{}, t0.Add(30*day))
	must(t, ip.Value == 40 && ip.Active, "IP after one half-life: %+v", ip)
	must(t, hash.Value > 78 && hash.Active, "hash after 30 days: %+v", hash)
	ip = m.Score("indicator--a", feeds.ClassIP, 80, t0, feeds.Evidence{}, t0.Add(61*day))
	hash = m.Score("indicator--b", feeds.ClassHash, 80, t0, feeds.Evidence{}, t0.Add(61*day))
	must(t, !ip.Active && strings.Contains(ip.Reason, "below threshold") && hash.Active, "after 61 days: ip %+v hash %+v", ip, hash)
	// A sighting on day 60 restarts the clock and adds its boost.
	seen := m.Score("indicator--a", feeds.ClassIP, 80, t0, feeds.Evidence{Sightings: 1, Last: t0.Add(60 * day)}, t0.Add(61*day))
	must(t, seen.Active && seen.Value > 85, "sighted: %+v", seen)
	// Two false-positive verdicts quarter it.
	fp := m.Score("indicator--b", feeds.ClassHash, 80, t0, feeds.Evidence{FalsePositives: 2}, t0)
	must(t, fp.Value == 20, "two false positives: %+v", fp)
	fp = m.Score("indicator--b", feeds.ClassHash, 80, t0, feeds.Evidence{FalsePositives: 3}, t0)
	must(t, !fp.Active, "three false positives: %+v", fp)
}

// TestLoadModel: a model file overrides the defaults it names and
// refuses unknown classes and nonsense.
func TestLoadModel(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "m.json")
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	m, err := feeds.LoadModel(write(`{"half_life":{"ip":"168h"},"threshold":35}`))
	must(t, err == nil && m.HalfLife[feeds.ClassIP] == 7*day && m.Threshold == 35 && m.HalfLife[feeds.ClassHash] == feeds.DefaultModel().HalfLife[feeds.ClassHash], "model %+v %v", m, err)
	for _, bad := range []string{`{"half_life":{"ipx":"1h"}}`, `{"half_life":{"ip":"-1h"}}`, `{"false_positive_factor":2}`, `{`} {
		if _, err := feeds.LoadModel(write(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

type flags map[string]string

func (f flags) Inactive(_ context.Context, id string) (string, bool, error) {
	r, ok := f[id]
	return r, ok, nil
}

// TestOnlyActiveIndicatorsExported: not yet valid, expired, revoked,
// drill, low-confidence, warning-listed and decayed indicators are left
// out of every export with their reason counted; sightings bring a faded
// one back, false-positive verdicts push one out, and the producer's
// score request says why.
func TestOnlyActiveIndicatorsExported(t *testing.T) {
	w := newExportWorld(t)
	org := w.org("CERT")
	anna := w.member("anna", org, access.RoleAnalyst)
	org2, org3 := w.org("Grid operator"), w.org("Water utility")
	bert, cleo := w.member("bert", org2, access.RoleAnalyst), w.member("cleo", org3, access.RoleAnalyst)
	coll := w.collection(&store.Collection{Title: "feed", Alias: "feed", Grants: []store.Grant{
		{Kind: store.GrantOrg, Subject: org, Read: true, Write: true},
		{Kind: store.GrantOrg, Subject: org2, Read: true, Write: true},
		{Kind: store.GrantOrg, Subject: org3, Read: true, Write: true}}})
	now := w.clock()
	ts := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	active := w.indicator("[domain-name:value = 'active.example']", "green")
	future := w.indicator("[domain-name:value = 'future.example']", "green", "valid_from", ts(day))
	expired := w.indicator("[domain-name:value = 'expired.example']", "green", "valid_from", ts(-2*day), "valid_until", ts(-day))
	revoked := w.indicator("[domain-name:value = 'revoked.example']", "green", "revoked", true)
	drill := w.indicator("[domain-name:value = 'drill.example']", "green")
	drill["object_marking_refs"] = []string{"marking-definition--df00337e-2708-4d77-996e-e3f651477b4e"}
	weak := w.indicator("[domain-name:value = 'weak.example']", "green", "confidence", 10)
	listed := w.indicator("[domain-name:value = 'listed.example']", "green")
	addr := w.indicator("[ipv4-addr:value = '192.0.2.77']", "green")
	hash := w.indicator("[file:hashes.MD5 = '0123456789abcdef0123456789abcdef']", "green")
	anna.post(coll, active, future, expired, revoked, drill, weak, listed, addr, hash)
	w.x.Flags = flags{id(listed): "on warning list 'benign domains'"}

	get := func() (string, string) {
		t.Helper()
		res, body := anna.get(feeds.ExportPrefix + "plain?collection=feed&min_confidence=50")
		must(t, res.StatusCode == http.StatusOK, "%d %s", res.StatusCode, body)
		return string(body), res.Header.Get("X-Mitra-Skipped")
	}
	body, skipped := get()
	must(t, body == "0123456789abcdef0123456789abcdef\n192.0.2.77\nactive.example\n", "export:\n%s", body)
	for _, reason := range []string{"not yet valid (valid_from): 1", "expired (valid_until): 1", "revoked: 1",
		"exercise (drill) object: 1", "confidence below 50: 1", "flagged inactive: on warning list 'benign domains': 1"} {
		must(t, strings.Contains(skipped, reason), "X-Mitra-Skipped %q lacks %q", skipped, reason)
	}

	// 61 days on: the address has decayed (half-life 30 days), the domain
	// (90 days) and the hash (3 years) have not.
	w.advance(61 * day)
	body, _ = get()
	must(t, body == "0123456789abcdef0123456789abcdef\nactive.example\nfuture.example\n", "after 61 days:\n%s", body)
	var s feeds.Score
	_, raw := anna.get(feeds.ExportPrefix + "score/" + id(addr))
	must(t, json.Unmarshal(raw, &s) == nil && !s.Active && s.Class == feeds.ClassIP && strings.Contains(s.Reason, "below threshold"), "score %s", raw)

	// A sighting brings it back. One organisation repeating a
	// false-positive verdict counts once; three organisations' verdicts
	// push the hash out.
	seen := w.sighting(id(addr), "green")
	anna.post(coll, seen,
		w.opinion(id(hash), "disagree", "green"), w.opinion(id(hash), "strongly-disagree", "green"), w.opinion(id(hash), "disagree", "green"))
	_, raw = anna.get(feeds.ExportPrefix + "score/" + id(hash))
	must(t, json.Unmarshal(raw, &s) == nil && s.FalsePositives == 1, "hash score after one organisation's verdicts %s", raw)
	bert.post(coll, w.opinion(id(hash), "disagree", "green"))
	cleo.post(coll, w.opinion(id(hash), "disagree", "green"))
	body, _ = get()
	must(t, body == "192.0.2.77\nactive.example\nfuture.example\n", "after evidence:\n%s", body)
	_, raw = anna.get(feeds.ExportPrefix + "score/" + id(hash))
	must(t, json.Unmarshal(raw, &s) == nil && !s.Active && s.FalsePositives == 3, "hash score %s", raw)
	// A verdict on the sighting counts for its indicator, from the
	// sighting organisation only.
	bert.post(coll, w.opinion(id(seen), "agree", "green"))
	_, raw = anna.get(feeds.ExportPrefix + "score/" + id(addr))
	must(t, json.Unmarshal(raw, &s) == nil && s.Sightings == 1 && s.TruePositives == 0, "address score after another organisation's verdict %s", raw)
	anna.post(coll, w.opinion(id(seen), "agree", "green"))
	_, raw = anna.get(feeds.ExportPrefix + "score/" + id(addr))
	must(t, json.Unmarshal(raw, &s) == nil && s.Active && s.Sightings == 1 && s.TruePositives == 1, "address score %s", raw)
	_, raw = anna.get(feeds.ExportPrefix + "score/" + id(listed))
	must(t, json.Unmarshal(raw, &s) == nil && !s.Active && strings.Contains(s.Reason, "benign domains"), "listed score %s", raw)
}

// TestActiveSetRetiresDecayed: the detector's filter rejects what the
// lifecycle retired for its organisation and lets through what it has
// not seen yet.
func TestActiveSetRetiresDecayed(t *testing.T) {
	w := newExportWorld(t)
	org := w.org("CERT")
	anna := w.member("anna", org, access.RoleAnalyst)
	coll := w.collection(&store.Collection{Title: "feed", Grants: []store.Grant{{Kind: store.GrantOrg, Subject: org, Read: true, Write: true}}})
	addr := w.indicator("[ipv4-addr:value = '192.0.2.8']", "green")
	hash := w.indicator("[file:hashes.MD5 = '00112233445566778899aabbccddeeff']", "green")
	anna.post(coll, addr, hash)
	set := &feeds.ActiveSet{Exporter: w.x, Request: feeds.Request{Principal: &access.Principal{Organisation: org, Role: access.RoleAnalyst}}}
	if err := set.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	must(t, set.Allow(id(addr)) && set.Allow(id(hash)), "fresh indicators retired")
	w.advance(90 * day)
	if err := set.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	must(t, !set.Allow(id(addr)) && set.Reason(id(addr)) == "lifecycle score below threshold" && set.Allow(id(hash)), "after 90 days: addr %v hash %v", set.Allow(id(addr)), set.Allow(id(hash)))
	must(t, set.Allow("indicator--00000000-0000-4000-8000-0000000000aa"), "an unseen indicator is retired")
}
