package hashmatch_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/hashmatch"
	"github.com/mitra-cert/mitra/internal/store"
)

// family returns n PDQ hashes within a few bits of a random base (all
// within the default threshold of the base), and n random SHA-256 hashes.
func family(seed uint64, n int) (base string, pdqs, shas []string) {
	r := rand.New(rand.NewPCG(seed, 1))
	var b [32]byte
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	for i := range n {
		v := b
		v[i%32] ^= 1 << (i % 8)
		v[(i*7+3)%32] ^= 1 << ((i + 3) % 8)
		pdqs = append(pdqs, hex.EncodeToString(v[:]))
		var s [32]byte
		for j := range s {
			s[j] = byte(r.UintN(256))
		}
		shas = append(shas, hex.EncodeToString(s[:]))
	}
	return hex.EncodeToString(b[:]), pdqs, shas
}

// TestRedToOneOrganisationNeverReachesAnother: a hash shared TLP:RED with
// B as its one recipient is returned to A (its owner) and B, and to C, a
// reader of the same collection, in no form: C's answer is byte for byte
// the answer it got before the hash was shared, by PDQ, by SHA-256 and by
// uploading the file itself.
func TestRedToOneOrganisationNeverReachesAnother(t *testing.T) {
	onBackends(t, testRedToOneOrganisationNeverReachesAnother)
}

func testRedToOneOrganisationNeverReachesAnother(t *testing.T, be backend) {
	w := newWorld(t, be)
	a, b, c := w.org("A", false), w.org("B", false), w.org("C", false)
	anna, bert, cleo := w.member("anna", a, access.RoleAnalyst), w.member("bert", b, access.RoleAnalyst), w.member("cleo", c, access.RoleAnalyst)
	g := w.group("all", a, b, c)
	coll := w.collection(&store.Collection{Title: "shared", Grants: []store.Grant{{Kind: store.GrantGroup, Subject: g, Read: true, Write: true}}})
	img := encodePNG(t, picture(4, 320, 240))
	h := hashesOf(t, img)
	queries := []hashmatch.Hashes{{PDQ: h.PDQ}, {SHA256: h.SHA256}, {MD5: h.MD5}, {TLSH: h.TLSH}, h}
	upload := func(cl *client) []byte {
		status, body := cl.do(http.MethodPost, hashmatch.Prefix+"match", "image/png", img)
		if status != http.StatusOK {
			t.Fatalf("upload: %d %s", status, body)
		}
		return body
	}
	var before [][]byte
	for _, q := range queries {
		body, _ := cleo.match(q)
		before = append(before, body)
	}
	before = append(before, upload(cleo))

	id := anna.share(hashmatch.ShareRequest{Collection: coll, Hashes: h, Labels: []string{"recruitment"}, TLP: "red", Recipients: []string{b}})
	// C's verdict on it (C guessed the id) is stored but must not show either.
	if status, body := cleo.postJSON(hashmatch.Prefix+"verdict", hashmatch.VerdictRequest{Collection: coll, Indicator: id, Verdict: "false-positive", TLP: "green"}); status != http.StatusOK {
		t.Fatalf("verdict: %d %s", status, body)
	}
	w.poll()
	for _, cl := range []*client{anna, bert} {
		for _, q := range queries {
			if _, res := cl.match(q); !slices.Equal(ids(res), []string{id}) {
				t.Errorf("%s, query %+v: %v, want %s", cl.name, q, ids(res), id)
			}
		}
	}
	for i, q := range queries {
		after, _ := cleo.match(q)
		if !bytes.Equal(after, before[i]) {
			t.Errorf("C's answer to %+v changed when A shared a RED hash with B:\nbefore %s\nafter  %s", q, before[i], after)
		}
	}
	if after := upload(cleo); !bytes.Equal(after, before[len(before)-1]) {
		t.Errorf("C's answer to the upload changed:\nbefore %s\nafter  %s", before[len(before)-1], after)
	}
}

// taxiiVisible lists the ids of objects of type typ that cl reads over
// TAXII in the collections.
func (c *client) taxiiVisible(typ string, colls ...string) map[string]bool {
	c.w.t.Helper()
	out := map[string]bool{}
	for _, coll := range colls {
		status, body := c.do(http.MethodGet, "/api/collections/"+coll+"/objects/?match[type]="+typ, "", nil)
		if status != http.StatusOK {
			continue // no read access
		}
		var env struct {
			Objects []struct {
				ID         string   `json:"id"`
				ObjectRefs []string `json:"object_refs"`
			} `json:"objects"`
		}
		if err := json.Unmarshal(body, &env); err != nil {
			c.w.t.Fatal(err)
		}
		for _, o := range env.Objects {
			out[o.ID] = true
		}
	}
	return out
}

// TestLeakMatrix: four organisations (one anonymous, one outsider), two
// sharing groups, two collections, every TLP level, recipients named in
// objects and by a collection. Whatever the query (one PDQ query near all
// the hashes, or each SHA-256), each caller gets exactly the indicators and
// verdicts it reads over TAXII, and contributors are anonymised as policy
// says.
func TestLeakMatrix(t *testing.T) { onBackends(t, testLeakMatrix) }

func testLeakMatrix(t *testing.T, be backend) {
	w := newWorld(t, be)
	orgA, orgB, orgC, orgD := w.org("National CERT", false), w.org("Grid Operator", true), w.org("Water Utility", false), w.org("Outsider", false)
	users := map[string]*client{
		orgA: w.member("anna", orgA, access.RoleAnalyst), orgB: w.member("bert", orgB, access.RoleAnalyst),
		orgC: w.member("cleo", orgC, access.RoleAnalyst), orgD: w.member("dora", orgD, access.RoleAnalyst),
	}
	readOnlyA := w.member("rhea", orgA, access.RoleReadOnly)
	energyG, waterG := w.group("energy", orgA, orgB), w.group("water", orgB, orgC)
	energy := w.collection(&store.Collection{Title: "Energy", Grants: []store.Grant{
		{Kind: store.GrantGroup, Subject: energyG, Read: true},
		{Kind: store.GrantOrg, Subject: orgA, Read: true, Write: true},
		{Kind: store.GrantOrg, Subject: orgB, Read: true, Write: true}}})
	water := w.collection(&store.Collection{Title: "Water", Grants: []store.Grant{{Kind: store.GrantGroup, Subject: waterG, Read: true, Write: true}},
		Recipients: []string{orgA}, DefaultTLP: int(access.TLPGreen)})
	type share struct {
		by         string
		coll       string
		tlp        string
		recipients []string
	}
	shares := []share{
		{orgA, energy, "clear", nil}, {orgA, energy, "green", nil}, {orgA, energy, "amber", nil}, {orgA, energy, "", nil},
		{orgA, energy, "amber+strict", nil}, {orgA, energy, "red", nil},
		{orgA, energy, "red", []string{orgB}}, {orgA, energy, "amber+strict", []string{orgB}},
		{orgA, energy, "red", []string{orgC}}, // C is no reader of energy
		{orgB, energy, "amber+strict", nil}, {orgB, energy, "red", nil}, {orgB, energy, "green", nil},
		{orgC, water, "red", nil}, {orgC, water, "", nil}, {orgC, water, "amber+strict", nil},
		{orgC, water, "red", []string{orgB}}, {orgB, water, "green", nil}, {orgB, water, "red", []string{orgC}},
	}
	base, pdqs, shas := family(7, len(shares))
	owner := map[string]string{}
	var all []string
	for i, s := range shares {
		id := users[s.by].share(hashmatch.ShareRequest{Collection: s.coll, Hashes: hashmatch.Hashes{PDQ: pdqs[i], SHA256: shas[i]},
			Labels: []string{"propaganda"}, TLP: s.tlp, Recipients: s.recipients})
		owner[id] = s.by
		all = append(all, id)
	}
	// Verdicts at several levels on several indicators.
	for _, v := range []struct {
		by, coll, tlp string
		on            int
		tp            bool
	}{
		{orgB, energy, "red", 1, true}, {orgA, energy, "amber", 1, false}, {orgB, energy, "green", 6, true},
		{orgC, water, "red", 13, false}, {orgB, water, "amber", 13, true}, {orgB, water, "amber+strict", 12, true},
	} {
		verdict := "false-positive"
		if v.tp {
			verdict = "true-positive"
		}
		if status, body := users[v.by].postJSON(hashmatch.Prefix+"verdict", hashmatch.VerdictRequest{Collection: v.coll, Indicator: all[v.on], Verdict: verdict, TLP: v.tlp}); status != http.StatusOK {
			t.Fatalf("verdict: %d %s", status, body)
		}
	}
	w.poll()
	callers := map[string]*client{"A": users[orgA], "B": users[orgB], "C": users[orgC], "D": users[orgD], "A read-only": readOnlyA}
	orgOf := map[string]string{"A": orgA, "B": orgB, "C": orgC, "D": orgD, "A read-only": orgA}
	for name, cl := range callers {
		want := cl.taxiiVisible("indicator", energy, water)
		opinions := cl.taxiiVisible("opinion", energy, water)
		_, res := cl.match(hashmatch.Hashes{PDQ: base})
		got := map[string]bool{}
		for _, m := range res.Matches {
			got[m.Indicator] = true
			if !want[m.Indicator] {
				t.Errorf("%s: match returns %s, which it may not read", name, m.Indicator)
			}
			wantContributor := owner[m.Indicator]
			if wantContributor == orgB && orgOf[name] != orgB {
				wantContributor = access.AnonymousIdentity
			}
			if m.Contributor != wantContributor {
				t.Errorf("%s: %s contributor %s, want %s", name, m.Indicator, m.Contributor, wantContributor)
			}
		}
		for id := range want {
			if owner[id] != "" && !got[id] {
				t.Errorf("%s: match misses %s, which it reads", name, id)
			}
		}
		// Each SHA-256 on its own: found exactly when readable.
		for i, id := range all {
			_, res := cl.match(hashmatch.Hashes{SHA256: shas[i]})
			if (len(res.Matches) == 1) != want[id] || len(res.Matches) > 1 {
				t.Errorf("%s: SHA-256 of %s (share %d): %v, readable %v", name, id, i, ids(res), want[id])
			}
		}
		// Verdict counts: the opinions the caller reads, no more.
		visibleOps := 0
		for _, m := range res.Matches {
			visibleOps += m.Verdicts.TruePositive + m.Verdicts.FalsePositive
		}
		if visibleOps > len(opinions) {
			t.Errorf("%s: %d verdicts counted, but it reads %d opinions", name, visibleOps, len(opinions))
		}
		t.Logf("%s reads %d of %d hashes and %d opinions", name, len(got), len(all), len(opinions))
	}
	// Exact verdict expectations for the indicator with two opinions.
	for name, want := range map[string]hashmatch.Verdicts{"A": {FalsePositive: 1}, "B": {TruePositive: 1, FalsePositive: 1}} {
		_, res := callers[name].match(hashmatch.Hashes{SHA256: shas[1]})
		if len(res.Matches) != 1 || res.Matches[0].Verdicts != want {
			t.Errorf("%s: verdicts on share 1: %+v, want %+v", name, res.Matches, want)
		}
	}
	// The outsider and C (which reads none of energy) see no energy hash.
	_, res := users[orgD].match(hashmatch.Hashes{PDQ: base})
	if len(res.Matches) != 0 {
		t.Errorf("outsider: %v", ids(res))
	}
}

// TestGrantRemovalHidesHashes: once an organisation loses its read grant
// on a collection, the next poll hides that collection's hashes from it.
func TestGrantRemovalHidesHashes(t *testing.T) { onBackends(t, testGrantRemovalHidesHashes) }

func testGrantRemovalHidesHashes(t *testing.T, be backend) {
	w := newWorld(t, be)
	a, b := w.org("A", false), w.org("B", false)
	anna, bert := w.member("anna", a, access.RoleAnalyst), w.member("bert", b, access.RoleAnalyst)
	coll := w.collection(&store.Collection{Title: "shared", Grants: []store.Grant{
		{Kind: store.GrantOrg, Subject: a, Read: true, Write: true}, {Kind: store.GrantOrg, Subject: b, Read: true}}})
	_, pdqs, shas := family(3, 1)
	id := anna.share(hashmatch.ShareRequest{Collection: coll, Hashes: hashmatch.Hashes{PDQ: pdqs[0], SHA256: shas[0]}, Labels: []string{"manifesto"}, TLP: "green"})
	w.poll()
	if _, res := bert.match(hashmatch.Hashes{PDQ: pdqs[0]}); !slices.Equal(ids(res), []string{id}) {
		t.Fatalf("with a grant: %v", ids(res))
	}
	if err := w.st.SetPartyGrant(t.Context(), coll, store.GrantOrg, b, false, false); err != nil {
		t.Fatal(err)
	}
	w.poll()
	if _, res := bert.match(hashmatch.Hashes{PDQ: pdqs[0]}); len(res.Matches) != 0 {
		t.Errorf("without a grant: %v", ids(res))
	}
	if _, res := anna.match(hashmatch.Hashes{SHA256: shas[0]}); !slices.Equal(ids(res), []string{id}) {
		t.Errorf("owner: %v", ids(res))
	}
}
