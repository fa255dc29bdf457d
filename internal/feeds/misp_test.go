package feeds_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mitra-cert/mitra/internal/feeds"
	"github.com/mitra-cert/mitra/internal/store"
)

const (
	amberStrict = "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"
	red         = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"
	green       = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
	clear       = "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"
	amber       = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
)

// A MISP event with attributes, objects, galaxies, tags and a sharing
// group converts as misp-stix maps it, object by object; the sharing
// group becomes AMBER+STRICT for the organisations of the Mitra group of
// the same name; a value on a warning list is kept and flagged inactive;
// importing it again stores nothing.
func TestImportMISPEvent(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a, b, c := w.org("cert-xx"), w.org("cert-yy"), w.org("outsider")
	pa := w.member("alice", a)
	w.member("bob", b)
	w.member("carol", c)
	g := &store.Group{Name: "Gov-CERTs", Orgs: []string{a, b}}
	if err := w.st.CreateGroup(t.Context(), g); err != nil {
		t.Fatal(err)
	}
	w.imp.Groups = w.st
	col := w.collection("misp", a, b, c)
	src, err := w.imp.Open(t.Context(), pa, feeds.Options{Format: "misp"}, open(t, "misp-event.json"), "")
	if err != nil {
		t.Fatal(err)
	}
	rep := w.importSource(pa, col, src, feeds.Options{})
	if rep.Rejected != 0 {
		t.Fatalf("rejections: %+v", rep.Rejections)
	}
	got := w.objects("alice", col)
	recipients := []string{a, b}
	slices.Sort(recipients)
	type want struct {
		marking string
		check   func(m map[string]any) bool
	}
	ind := func(pattern string) func(m map[string]any) bool {
		return func(m map[string]any) bool { return m["pattern"] == pattern && m["pattern_type"] == "stix" }
	}
	cases := map[string]want{
		"identity--0b9a8c7d-6e5f-4d3c-8b2a-1f0e9d8c7b6a": {amberStrict, func(m map[string]any) bool {
			return m["name"] == "CERT-YY" && m["identity_class"] == "organization"
		}},
		"indicator--a1000000-0000-4000-8000-000000000001": {amberStrict, func(m map[string]any) bool {
			return ind("[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = '185.220.101.77']")(m) &&
				m["description"] == "C2 server" && m["created_by_ref"] == "identity--0b9a8c7d-6e5f-4d3c-8b2a-1f0e9d8c7b6a" &&
				m["modified"] == "2026-11-02T11:46:40.000000Z" &&
				slices.Contains(strs(m["labels"]), "kill-chain:Command and Control") && slices.Contains(strs(m["labels"]), `misp:type="ip-dst"`) &&
				m["kill_chain_phases"].([]any)[0].(map[string]any)["phase_name"] == "Network activity"
		}},
		"indicator--a1000000-0000-4000-8000-000000000002": {amberStrict, ind("[domain-name:value = 'login-ministry-portal.com']")},
		"threat-actor--c1000000-0000-4000-8000-000000000300": {amberStrict, func(m map[string]any) bool {
			return m["name"] == "PAPERCUT SPIDER" && m["description"] == "Financially motivated actor targeting governments." && m["x_misp_meta"] != nil
		}},
		"indicator--a1000000-0000-4000-8000-000000000003": {amberStrict, ind("[url:value = 'https://login-ministry-portal.com/owa/auth.php?id=7']")},
		"observed-data--a1000000-0000-4000-8000-000000000004": {amberStrict, func(m map[string]any) bool {
			refs := strs(m["object_refs"])
			return len(refs) == 1 && strings.HasPrefix(refs[0], "email-addr--") && m["number_observed"] == 1.0
		}},
		"indicator--a1000000-0000-4000-8000-000000000005": {amberStrict, ind("[network-traffic:src_ref.type = 'ipv4-addr' AND network-traffic:src_ref.value = '10.20.30.40']")},
		"vulnerability--a1000000-0000-4000-8000-000000000006": {amberStrict, func(m map[string]any) bool {
			return m["name"] == "CVE-2026-21413" && m["external_references"].([]any)[0].(map[string]any)["external_id"] == "CVE-2026-21413"
		}},
		"indicator--a1000000-0000-4000-8000-000000000007": {red, func(m map[string]any) bool {
			return m["pattern_type"] == "yara" && strings.HasPrefix(m["pattern"].(string), "rule papercut")
		}},
		"x-misp-attribute--a1000000-0000-4000-8000-000000000008": {amberStrict, func(m map[string]any) bool {
			return m["x_misp_type"] == "text" && m["x_misp_value"] == "Victims received a fake password-expiry notice."
		}},
		"x-misp-attribute--a1000000-0000-4000-8000-000000000009": {amberStrict, func(m map[string]any) bool {
			return m["x_misp_type"] == "btc" && m["x_misp_to_ids"] == true && m["x_misp_category"] == "Financial fraud"
		}},
		"indicator--b2000000-0000-4000-8000-000000000501": {amberStrict, func(m map[string]any) bool {
			extra, _ := m["x_misp_attributes"].([]any)
			return ind("[file:name = 'Password_Expiry.docm' AND file:hashes.'SHA-256' = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08' AND file:hashes.MD5 = '098f6bcd4621d373cade4e832627b4f6']")(m) &&
				len(extra) == 1 && extra[0].(map[string]any)["type"] == "size-in-bytes" && extra[0].(map[string]any)["value"] == "48213" &&
				slices.Contains(strs(m["labels"]), `misp:name="file"`)
		}},
		"observed-data--b2000000-0000-4000-8000-000000000502": {amberStrict, func(m map[string]any) bool {
			refs := strs(m["object_refs"])
			return len(refs) == 2 && strings.HasPrefix(refs[0], "domain-name--") && strings.HasPrefix(refs[1], "ipv4-addr--")
		}},
		"x-misp-object--b2000000-0000-4000-8000-000000000503": {amberStrict, func(m map[string]any) bool {
			extra, _ := m["x_misp_attributes"].([]any)
			return m["x_misp_name"] == "bank-account" && len(extra) == 1 && extra[0].(map[string]any)["value"] == "XX12 3456 7890 1234 5678"
		}},
		"attack-pattern--2e34237d-8574-43f6-aace-ae2915de8597": {amberStrict, func(m map[string]any) bool {
			return m["name"] == "Spearphishing Attachment - T1566.001"
		}},
		"identity--e6f3a0f2-8df4-4d20-9c9e-47e5c2f8b3c3": {amberStrict, func(m map[string]any) bool {
			return m["identity_class"] == "class" && m["name"] == "Government, Administration"
		}},
		"x-misp-galaxy-cluster--a8b5c2b4-af16-4f42-9eb0-69a7e4badd05": {amberStrict, func(m map[string]any) bool {
			return m["x_misp_galaxy_type"] == "tea-matrix" && m["name"] == "Milk in tea"
		}},
		"relationship--d7000000-0000-4000-8000-000000000077": {amberStrict, func(m map[string]any) bool {
			return m["relationship_type"] == "connected-to" && m["source_ref"] == "indicator--b2000000-0000-4000-8000-000000000501" &&
				m["target_ref"] == "observed-data--b2000000-0000-4000-8000-000000000502" && m["description"] == "Downloads its payload from there"
		}},
		"report--5f0d3a2e-9b1c-4e6d-8f2a-1c3b5d7e9f01": {amberStrict, func(m map[string]any) bool {
			refs := strs(m["object_refs"])
			return m["name"] == "Phishing campaign against ministries (OP PAPERCUT)" && m["published"] == "2026-11-02T13:00:00.000000Z" &&
				len(refs) >= 17 && slices.Contains(refs, "x-misp-object--b2000000-0000-4000-8000-000000000503") &&
				slices.Contains(strs(m["labels"]), "phishing") && !slices.Contains(strs(m["labels"]), "tlp:amber") &&
				m["x_misp_sharing_group"] == "Gov-CERTs"
		}},
	}
	for id, wt := range cases {
		raw, ok := got[id]
		if !ok {
			t.Errorf("%s missing (have %v)", id, keys(got))
			continue
		}
		m := obj(t, raw)
		if wt.marking != "" {
			if !same(m["object_marking_refs"], wt.marking) {
				t.Errorf("%s: marking %v, want %s", id, m["object_marking_refs"], wt.marking)
			}
			rc := strs(m["x_mitra_recipients"])
			slices.Sort(rc)
			if (wt.marking == amberStrict) != slices.Equal(rc, recipients) {
				t.Errorf("%s: recipients %v", id, m["x_mitra_recipients"])
			}
		}
		if !wt.check(m) {
			t.Errorf("%s converted as\n%s", id, raw)
		}
	}
	// The relationship from the attribute's cluster.
	var rel int
	for id, raw := range got {
		if strings.HasPrefix(id, "relationship--") {
			m := obj(t, raw)
			if m["relationship_type"] == "indicates" && m["source_ref"] == "indicator--a1000000-0000-4000-8000-000000000002" &&
				m["target_ref"] == "threat-actor--c1000000-0000-4000-8000-000000000300" {
				rel++
			}
		}
	}
	if rel != 1 {
		t.Errorf("%d indicates relationships from the domain to its threat actor", rel)
	}
	// The internal relay address is kept, flagged inactive, with the reason.
	reason, inactive, err := w.imp.Warnings.Inactive(t.Context(), "indicator--a1000000-0000-4000-8000-000000000005")
	if err != nil || !inactive || !strings.Contains(reason, "10.20.30.40") || !strings.Contains(reason, "special-purpose-addresses") {
		t.Errorf("Inactive = %q, %v, %v", reason, inactive, err)
	}
	if rep.Inactive != 1 || len(rep.Flags) != 1 {
		t.Errorf("report flags %d %+v", rep.Inactive, rep.Flags)
	}
	if _, inactive, _ := w.imp.Warnings.Inactive(t.Context(), "indicator--a1000000-0000-4000-8000-000000000001"); inactive {
		t.Error("an indicator on no list is flagged")
	}
	// Sharing group members read the event; an organisation outside it
	// reads nothing of it, observables included; only the importing organisation reads RED.
	bobs, carols := w.objects("bob", col), w.objects("carol", col)
	if _, ok := bobs["report--5f0d3a2e-9b1c-4e6d-8f2a-1c3b5d7e9f01"]; !ok {
		t.Error("a member of the sharing group cannot read the event")
	}
	if _, ok := bobs["indicator--a1000000-0000-4000-8000-000000000007"]; ok {
		t.Error("distribution 0 (your organisation only) is readable by another organisation")
	}
	if len(carols) != 0 {
		t.Errorf("an organisation outside the sharing group reads %v", keys(carols))
	}
	// Again: nothing new.
	src, _ = w.imp.Open(t.Context(), pa, feeds.Options{Format: "misp"}, open(t, "misp-event.json"), "")
	again := w.importSource(pa, col, src, feeds.Options{})
	if again.Added+again.Updated != 0 || again.Unchanged != rep.Added {
		t.Errorf("re-import: %+v (first %+v)", again, rep)
	}
	// An edited attribute (MISP bumps its timestamp) is a new version of
	// the same indicator.
	data, _ := os.ReadFile(filepath.Join("testdata", "import", "misp-event.json"))
	data = bytes.Replace(data, []byte(`"comment": "C2 server"`), []byte(`"comment": "C2 server, confirmed"`), 1)
	src, _ = w.imp.Open(t.Context(), pa, feeds.Options{Format: "misp"}, bytes.NewReader(data), "")
	edited := w.importSource(pa, col, src, feeds.Options{})
	if edited.Updated != 1 || edited.Added != 0 {
		t.Errorf("edited: %+v", edited)
	}
	m := obj(t, w.objects("alice", col)["indicator--a1000000-0000-4000-8000-000000000001"])
	if m["description"] != "C2 server, confirmed" || m["created"] != "2026-11-02T11:46:40.000000Z" || m["modified"] == m["created"] {
		t.Errorf("edited indicator: %v", m)
	}
}

func strs(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// A MISP feed directory (manifest.json and one file per event) imports
// every event with the distribution and TLP tags mapped, flags the
// private address, and imports again as unchanged.
func TestImportMISPFeedDirectory(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	org := w.org("cert")
	p := w.member("alice", org)
	col := w.collection("feed", org)
	dir := filepath.Join("testdata", "import", "misp-feed")
	src, err := w.imp.Open(t.Context(), p, feeds.Options{Format: "misp-feed"}, nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	rep := w.importSource(p, col, src, feeds.Options{})
	got := w.objects("alice", col)
	if rep.Rejected != 0 || rep.Added != len(got) {
		t.Fatalf("report %+v, %d objects stored", rep, len(got))
	}
	for id, marking := range map[string]string{
		"report--11111111-1111-4111-8111-111111111111":    clear,
		"indicator--11111111-1111-4111-8111-111111110001": clear,
		"report--22222222-2222-4222-8222-222222222222":    green,
		"indicator--22222222-2222-4222-8222-222222220002": green,
		"report--33333333-3333-4333-8333-333333333333":    amber,
		"indicator--33333333-3333-4333-8333-333333330002": amber,
	} {
		if m := obj(t, got[id]); !same(m["object_marking_refs"], marking) {
			t.Errorf("%s: marking %v, want %s", id, m["object_marking_refs"], marking)
		}
	}
	if m := obj(t, got["indicator--33333333-3333-4333-8333-333333330002"]); m["pattern"] != "[email-addr:value = 'security@paypa1-secure-login.com']" {
		t.Errorf("email-src: %v", m["pattern"])
	}
	if m := obj(t, got["observed-data--22222222-2222-4222-8222-222222220003"]); len(strs(m["object_refs"])) != 1 {
		t.Errorf("filename|sha1 observed data: %v", m)
	}
	if _, in, _ := w.imp.Warnings.Inactive(t.Context(), "indicator--11111111-1111-4111-8111-111111110002"); !in {
		t.Error("192.168.1.1 is not flagged")
	}
	if rep.Inactive != 1 {
		t.Errorf("%d flagged, want 1", rep.Inactive)
	}
	src, _ = w.imp.Open(t.Context(), p, feeds.Options{Format: "misp-feed"}, nil, dir)
	again := w.importSource(p, col, src, feeds.Options{})
	if again.Added+again.Updated != 0 || again.Unchanged != rep.Added {
		t.Errorf("re-import: %+v", again)
	}
}

// An object reference becomes a relationship marked as the stricter of
// its ends; a reference to something outside the event, and sightings,
// are reported, not dropped.
func TestImportMISPObjectReferences(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	org := w.org("cert")
	p := w.member("alice", org)
	col := w.collection("misp", org)
	ev := `{"Event":{"uuid":"6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d","info":"refs","timestamp":"1790000000","distribution":"2","Object":[
	 {"uuid":"6b000000-0000-4000-8000-000000000001","name":"domain-ip","meta-category":"network","distribution":"0","timestamp":"1790000000",
	  "Attribute":[{"uuid":"6b000000-0000-4000-8000-000000000011","type":"domain","to_ids":true,"value":"c2.evil-refs.com","object_relation":"domain"}],
	  "ObjectReference":[
	   {"uuid":"6c000000-0000-4000-8000-000000000001","referenced_uuid":"6b000000-0000-4000-8000-000000000002","relationship_type":"resolves to"},
	   {"uuid":"6c000000-0000-4000-8000-000000000002","referenced_uuid":"6b000000-0000-4000-8000-0000000000ff","relationship_type":"related-to"}]},
	 {"uuid":"6b000000-0000-4000-8000-000000000002","name":"ip-port","meta-category":"network","distribution":"5","timestamp":"1790000000",
	  "Attribute":[{"uuid":"6b000000-0000-4000-8000-000000000012","type":"ip-dst","to_ids":true,"value":"45.76.9.9","object_relation":"ip",
	   "Sighting":[{"type":"0","date_sighting":"1790000100","Organisation":{"name":"CERT-ZZ"}}]}]}]}}`
	src, err := w.imp.Open(t.Context(), p, feeds.Options{Format: "misp"}, strings.NewReader(ev), "")
	if err != nil {
		t.Fatal(err)
	}
	rep := w.importSource(p, col, src, feeds.Options{})
	if rep.Rejected != 2 || !strings.Contains(rep.Rejections[0].Reason, "not in the event") || rep.Rejections[1].Reason != "1 MISP sightings not imported (no mapping)" {
		t.Errorf("report %+v", rep)
	}
	got := w.objects("alice", col)
	m := obj(t, got["relationship--6c000000-0000-4000-8000-000000000001"])
	if m["relationship_type"] != "resolves-to" || !same(m["object_marking_refs"], red) ||
		m["source_ref"] != "indicator--6b000000-0000-4000-8000-000000000001" || m["target_ref"] != "indicator--6b000000-0000-4000-8000-000000000002" {
		t.Errorf("relationship %v", m)
	}
	if m := obj(t, got["indicator--6b000000-0000-4000-8000-000000000002"]); !same(m["object_marking_refs"], green) {
		t.Errorf("the referenced object: %v", m["object_marking_refs"])
	}
}
