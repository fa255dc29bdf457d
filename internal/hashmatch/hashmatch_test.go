package hashmatch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/contenthash"
	"github.com/mitra-cert/mitra/internal/hashmatch"
	"github.com/mitra-cert/mitra/internal/pattern"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
)

func hashesOf(t *testing.T, data []byte) hashmatch.Hashes {
	t.Helper()
	fh, err := contenthash.HashReader(t.Context(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if fh.Image == nil {
		t.Fatalf("not decoded as an image: %v", fh.ImageErr)
	}
	return hashmatch.FromFile(fh)
}

func TestShareObjectsAreValidSTIX(t *testing.T) {
	h := hashesOf(t, encodePNG(t, picture(1, 200, 150)))
	objs, err := hashmatch.Share{Hashes: h, Labels: []string{"propaganda", "recruitment"}, TLP: "red",
		Recipients: []string{"identity--7b1c9a4e-2f0d-4c38-9e57-3a1d2b4c5e6f"}}.Objects(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	v := &stix.Validator{CheckPattern: pattern.Check}
	for _, o := range objs {
		if _, probs := v.Inspect(o); len(probs) > 0 {
			t.Errorf("invalid %s: %v", o, probs)
		}
	}
	var file struct {
		Hashes map[string]string `json:"hashes"`
	}
	var ind struct {
		Pattern    string   `json:"pattern"`
		Labels     []string `json:"labels"`
		Markings   []string `json:"object_marking_refs"`
		Recipients []string `json:"x_mitra_recipients"`
	}
	if err := json.Unmarshal(objs[0], &file); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(objs[1], &ind); err != nil {
		t.Fatal(err)
	}
	if file.Hashes["PDQ"] != h.PDQ || file.Hashes["TLSH"] != h.TLSH || file.Hashes["SHA-256"] != h.SHA256 || file.Hashes["MD5"] != h.MD5 {
		t.Errorf("file hashes %v, want those of %+v", file.Hashes, h)
	}
	if !strings.Contains(ind.Pattern, "file:hashes.PDQ = '"+h.PDQ+"'") || !strings.Contains(ind.Pattern, "file:hashes.'SHA-256' = '"+h.SHA256+"'") {
		t.Errorf("pattern %s does not compare file:hashes.PDQ and SHA-256", ind.Pattern)
	}
	if lvl, _ := access.TLPOfMarking(ind.Markings[0]); lvl != access.TLPRed || len(ind.Recipients) != 1 {
		t.Errorf("markings %v recipients %v", ind.Markings, ind.Recipients)
	}
	for _, bad := range []hashmatch.Share{
		{Hashes: h, Labels: []string{"cats"}},
		{Hashes: h},
		{Hashes: hashmatch.Hashes{PDQ: "12"}, Labels: []string{"propaganda"}},
		{Hashes: h, Labels: []string{"propaganda"}, TLP: "purple"},
		{Hashes: h, Labels: []string{"propaganda"}, Recipients: []string{"identity--7b1c9a4e-2f0d-4c38-9e57-3a1d2b4c5e6f"}},
	} {
		if _, err := bad.Objects(time.Now()); !errors.Is(err, hashmatch.ErrInvalid) {
			t.Errorf("%+v: got %v, want ErrInvalid", bad, err)
		}
	}
}

// oneOrg is an organisation with a collection it reads and writes.
func oneOrg(t *testing.T, be backend) (*world, *client, string) {
	w := newWorld(t, be)
	a := w.org("National CERT", false)
	anna := w.member("anna", a, access.RoleAnalyst)
	coll := w.collection(&store.Collection{Title: "hashes", Grants: []store.Grant{{Kind: store.GrantOrg, Subject: a, Read: true, Write: true}}})
	return w, anna, coll
}

// TestResizedRecompressedCopyMatches is about hashing images: on SQLite
// only (the store-facing tests run on both backends).
func TestResizedRecompressedCopyMatches(t *testing.T) {
	w, anna, coll := oneOrg(t, openSQLite)
	orig := picture(3, 640, 480)
	png := encodePNG(t, orig)
	id := anna.share(hashmatch.ShareRequest{Collection: coll, Hashes: hashesOf(t, png), Labels: []string{"attack-footage"}})
	w.poll()

	copyJPEG := resizedJPEG(t, orig, 400, 300, 70)
	res := anna.matchFile(copyJPEG)
	if len(res.Matches) != 1 || res.Matches[0].Indicator != id {
		t.Fatalf("resized JPEG copy: matches %+v, want %s", res.Matches, id)
	}
	m := res.Matches[0]
	if m.Algorithm != "pdq" || m.Distance > hashmatch.DefaultPDQThreshold || !slices.Equal(m.Labels, []string{"attack-footage"}) || !slices.Equal(m.Collections, []string{coll}) {
		t.Errorf("match %+v", m)
	}
	if res.Query.SHA256 == "" || res.Query.PDQ == "" {
		t.Errorf("query hashes not reported: %+v", res.Query)
	}
	// The same file matches exactly.
	if res := anna.matchFile(png); len(res.Matches) != 1 || res.Matches[0].Algorithm != "sha256" {
		t.Errorf("original file: %+v", res.Matches)
	}
	// A tighter threshold than the copy's distance leaves it out.
	if m.Distance < 2 {
		t.Fatalf("the copy is at distance %d: too close to test thresholds", m.Distance)
	}
	status, body := anna.do(http.MethodPost, fmt.Sprintf("%smatch?pdq_threshold=%d", hashmatch.Prefix, m.Distance-1), "image/jpeg", copyJPEG)
	if status != http.StatusOK || strings.Contains(string(body), id) {
		t.Errorf("threshold %d: %d %s", m.Distance-1, status, body)
	}
	t.Logf("resized, recompressed copy at PDQ distance %d", m.Distance)
	// Unrelated images do not match.
	for seed := 10; seed < 14; seed++ {
		if res := anna.matchFile(encodePNG(t, picture(seed, 640, 480))); len(res.Matches) != 0 {
			t.Errorf("unrelated image %d matches: %+v", seed, res.Matches)
		}
	}
}

// taxiiPost adds objects through the TAXII API and returns the status.
func (c *client) taxiiPost(coll string, objs ...json.RawMessage) map[string]any {
	c.w.t.Helper()
	body, _ := json.Marshal(map[string]any{"objects": objs})
	status, out := c.do(http.MethodPost, "/api/collections/"+coll+"/objects/", "application/taxii+json;version=2.1", body)
	if status != http.StatusAccepted {
		c.w.t.Fatalf("TAXII POST: %d %s", status, out)
	}
	var st map[string]any
	_ = json.Unmarshal(out, &st)
	return st
}

// eventually waits (up to 20s) until cond holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRevokedDeletedExpiredStopMatchingWithoutRestart(t *testing.T) {
	onBackends(t, testRevokedDeletedExpiredStopMatchingWithoutRestart)
}

func testRevokedDeletedExpiredStopMatchingWithoutRestart(t *testing.T, be backend) {
	w, anna, coll := oneOrg(t, be)
	b := w.org("Other", false)
	bert := w.member("bert", b, access.RoleAnalyst)
	if err := w.st.SetPartyGrant(t.Context(), coll, store.GrantOrg, b, true, true); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.svc.Run(ctx, 50*time.Millisecond) }()
	t.Cleanup(func() { cancel(); <-done })

	h := hashesOf(t, encodePNG(t, picture(5, 320, 240)))
	now := time.Now().UTC()
	objs, err := hashmatch.Share{Hashes: h, Labels: []string{"propaganda"}}.Objects(now)
	if err != nil {
		t.Fatal(err)
	}
	anna.taxiiPost(coll, objs...)
	var ind map[string]any
	_ = json.Unmarshal(objs[1], &ind)
	id := ind["id"].(string)
	matched := func() bool { _, res := anna.match(hashmatch.Hashes{PDQ: h.PDQ}); return slices.Contains(ids(res), id) }
	eventually(t, "a new indicator reaches the index", matched)

	// Only the owner may revoke (ownership); bert's revocation is refused.
	ind["modified"], ind["revoked"] = stix.FormatMicro(now.Add(time.Second)), true
	revoked, _ := json.Marshal(ind)
	if st := bert.taxiiPost(coll, revoked); st["failure_count"] != float64(1) {
		t.Fatalf("another organisation's revocation: %v", st)
	}
	w.poll()
	if !matched() {
		t.Fatal("a refused revocation deactivated the hash")
	}
	anna.taxiiPost(coll, revoked)
	eventually(t, "a revoked indicator leaves the index", func() bool { return !matched() })

	// Deleted and expired indicators leave too.
	h2 := hashesOf(t, encodePNG(t, picture(6, 320, 240)))
	id2 := anna.share(hashmatch.ShareRequest{Collection: coll, Hashes: h2, Labels: []string{"instruction"}})
	has2 := func() bool {
		_, res := anna.match(hashmatch.Hashes{SHA256: h2.SHA256})
		return slices.Contains(ids(res), id2)
	}
	eventually(t, "second indicator", has2)
	if status, body := anna.do(http.MethodDelete, "/api/collections/"+coll+"/objects/"+id2+"/", "", nil); status != http.StatusOK {
		t.Fatalf("delete: %d %s", status, body)
	}
	eventually(t, "a deleted indicator leaves the index", func() bool { return !has2() })

	h3 := hashesOf(t, encodePNG(t, picture(7, 320, 240)))
	objs3, _ := hashmatch.Share{Hashes: h3, Labels: []string{"threat"}}.Objects(now)
	var ind3 map[string]any
	_ = json.Unmarshal(objs3[1], &ind3)
	ind3["valid_until"] = stix.FormatMicro(time.Now().Add(4 * time.Second))
	raw3, _ := json.Marshal(ind3)
	anna.taxiiPost(coll, objs3[0], raw3)
	has3 := func() bool { _, res := anna.match(hashmatch.Hashes{MD5: h3.MD5}); return len(res.Matches) == 1 }
	eventually(t, "third indicator", has3)
	eventually(t, "an expired indicator stops matching", func() bool { return !has3() })
}

func TestVerdicts(t *testing.T) { onBackends(t, testVerdicts) }

func testVerdicts(t *testing.T, be backend) {
	w := newWorld(t, be)
	a, b, c := w.org("A", false), w.org("B", false), w.org("C", false)
	anna, bert, cleo := w.member("anna", a, access.RoleAnalyst), w.member("bert", b, access.RoleAnalyst), w.member("cleo", c, access.RoleAnalyst)
	g := w.group("all", a, b, c)
	coll := w.collection(&store.Collection{Title: "shared", Grants: []store.Grant{{Kind: store.GrantGroup, Subject: g, Read: true, Write: true}}})
	h := hashesOf(t, encodePNG(t, picture(2, 300, 200)))
	id := anna.share(hashmatch.ShareRequest{Collection: coll, Hashes: h, Labels: []string{"propaganda"}, TLP: "green"})
	verdict := func(cl *client, v, tlp string) {
		t.Helper()
		status, body := cl.postJSON(hashmatch.Prefix+"verdict", hashmatch.VerdictRequest{Collection: coll, Indicator: id, Verdict: v, TLP: tlp})
		if status != http.StatusOK {
			t.Fatalf("verdict: %d %s", status, body)
		}
	}
	verdict(bert, "true-positive", "green")
	verdict(cleo, "false-positive", "red") // only C reads it
	if status, _ := cleo.postJSON(hashmatch.Prefix+"verdict", hashmatch.VerdictRequest{Collection: coll, Indicator: id, Verdict: "maybe"}); status != http.StatusBadRequest {
		t.Errorf("bad verdict: %d", status)
	}
	w.poll()
	for _, tc := range []struct {
		cl     *client
		tp, fp int
	}{{anna, 1, 0}, {bert, 1, 0}, {cleo, 1, 1}} {
		_, res := tc.cl.match(hashmatch.Hashes{PDQ: h.PDQ})
		if len(res.Matches) != 1 || res.Matches[0].Verdicts != (hashmatch.Verdicts{TruePositive: tc.tp, FalsePositive: tc.fp}) {
			t.Errorf("%s: %+v, want %d true and %d false positives", tc.cl.name, res.Matches, tc.tp, tc.fp)
		}
	}
}

func TestAPIErrors(t *testing.T) { onBackends(t, testAPIErrors) }

func testAPIErrors(t *testing.T, be backend) {
	w, anna, coll := oneOrg(t, be)
	nobody := &client{w: w}
	if status, _ := nobody.postJSON(hashmatch.Prefix+"match", hashmatch.MatchRequest{Hashes: hashmatch.Hashes{MD5: strings.Repeat("a", 32)}}); status != http.StatusUnauthorized {
		t.Errorf("unauthenticated: %d", status)
	}
	for _, req := range []hashmatch.MatchRequest{
		{},
		{Hashes: hashmatch.Hashes{PDQ: "zz"}},
		{Hashes: hashmatch.Hashes{MD5: "abc"}},
		{Hashes: hashmatch.Hashes{TLSH: "T1"}},
		{Hashes: hashmatch.Hashes{MD5: strings.Repeat("a", 32)}, PDQThreshold: 300},
	} {
		if status, body := anna.postJSON(hashmatch.Prefix+"match", req); status != http.StatusBadRequest {
			t.Errorf("%+v: %d %s", req, status, body)
		}
	}
	if status, _ := anna.do(http.MethodPost, hashmatch.Prefix+"match", "application/json", []byte(`{"hashes":{},"extra":1}`)); status != http.StatusBadRequest {
		t.Errorf("unknown field: %d", status)
	}
	h := hashmatch.Hashes{SHA256: strings.Repeat("b", 64)}
	if status, _ := anna.postJSON(hashmatch.Prefix+"share", hashmatch.ShareRequest{Collection: coll, Hashes: h, Labels: []string{"cats"}}); status != http.StatusBadRequest {
		t.Errorf("unknown label: %d", status)
	}
	// No write grant: the TAXII answer is relayed.
	other := w.collection(&store.Collection{Title: "closed"})
	if status, body := anna.postJSON(hashmatch.Prefix+"share", hashmatch.ShareRequest{Collection: other, Hashes: h, Labels: []string{"propaganda"}}); status/100 != 4 {
		t.Errorf("share to a collection without grant: %d %s", status, body)
	}
	if status, _ := anna.postJSON(hashmatch.Prefix+"share", hashmatch.ShareRequest{Collection: "nope", Hashes: h, Labels: []string{"propaganda"}}); status != http.StatusNotFound {
		t.Errorf("share to a missing collection: %d", status)
	}
	// An empty upload is a file too (no PDQ, no TLSH): it matches nothing.
	if res := anna.matchFile([]byte("not an image, just some bytes")); len(res.Matches) != 0 || res.Query.PDQ != "" {
		t.Errorf("text file: %+v", res)
	}
}
