package taxii_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/mitra-cert/mitra/internal/store"
)

// Ownership (STIX 2.1 §3.6) and marking resolution over TAXII, on every
// backend of MITRA_TEST_BACKENDS.

// versioned is an indicator of A with a given modified time and extra
// members (with a leading comma).
func versioned(n int, modified string, markings []string, extra string) string {
	m := ""
	if len(markings) > 0 {
		m = `,"object_marking_refs":["` + strings.Join(markings, `","`) + `"]`
	}
	return fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":%q,"created":"2025-01-01T00:00:00.000Z","modified":%q,"name":"owned %d","pattern":"[ipv4-addr:value = '198.51.100.%d']","pattern_type":"stix","valid_from":"2025-01-01T00:00:00Z"%s%s}`,
		indicatorID(n), modified, n, n%250, m, extra)
}

// failureMessages returns the messages of a status resource's failures.
func failureMessages(t *testing.T, st map[string]any) []string {
	t.Helper()
	var out []string
	fs, _ := st["failures"].([]any)
	for _, f := range fs {
		m, _ := f.(map[string]any)
		msg, _ := m["message"].(string)
		out = append(out, msg)
	}
	return out
}

// likeUnknown checks that who's request on the object id answers exactly
// (status and body) as the same request on an id that was never stored.
func likeUnknown(t *testing.T, who *client, method, col, id, suffix string) {
	t.Helper()
	unknown := indicatorID(999_999)
	got := who.do(method, objectPath(col, id)+suffix, nil)
	want := who.do(method, objectPath(col, unknown)+suffix, nil)
	if got.status != http.StatusNotFound || got.status != want.status || string(got.body) != string(want.body) {
		t.Errorf("%s %s %s: %d %s; an unknown id gets %d %s", who.name, method, id+suffix, got.status, got.body, want.status, want.body)
	}
}

func TestOwnerOnlyVersionsAndDeletes(t *testing.T) {
	w := newLeakWorld(t)
	col := w.energy.ID
	// A's GREEN indicator, visible to B.
	if st := w.a.post(col, versioned(60, "2025-01-01T00:00:00.000Z", []string{tlpGreen}, "")); num(t, st, "success_count") != 1 {
		t.Fatalf("A's indicator: %v", st)
	}
	w.b.get(objectPath(col, indicatorID(60))).ok(http.StatusOK)

	// B revokes it: refused, and every reader still gets A's version.
	st := w.b.post(col, versioned(60, "2025-02-01T00:00:00.000Z", []string{tlpGreen}, `,"revoked":true`))
	msgs := failureMessages(t, st)
	if num(t, st, "success_count") != 0 || len(msgs) != 1 || !strings.Contains(msgs[0], "only the organisation that created this object") {
		t.Fatalf("B's revocation of A's indicator: %v", st)
	}
	for _, who := range []*client{w.a, w.b} {
		if body := string(who.get(objectPath(col, indicatorID(60))).ok(http.StatusOK).body); strings.Contains(body, "revoked") {
			t.Errorf("%s reads B's revocation: %s", who.name, body)
		}
	}

	// B deletes it, wholly or one version: 403 with a TAXII error; nothing is removed.
	e := w.b.do(http.MethodDelete, objectPath(col, indicatorID(60)), nil).wantError(http.StatusForbidden)
	if d, _ := e["description"].(string); !strings.Contains(d, "only the organisation that created this object") {
		t.Errorf("403 description: %v", e)
	}
	w.b.do(http.MethodDelete, withQuery(objectPath(col, indicatorID(60)), "match[version]=2025-01-01T00:00:00.000Z"), nil).wantError(http.StatusForbidden)
	w.a.get(objectPath(col, indicatorID(60))).ok(http.StatusOK)

	// A's own new version and delete are accepted.
	if st := w.a.post(col, versioned(60, "2025-03-01T00:00:00.000Z", []string{tlpGreen}, "")); num(t, st, "success_count") != 1 {
		t.Fatalf("A's new version: %v", st)
	}
	w.a.do(http.MethodDelete, withQuery(objectPath(col, indicatorID(60)), "match[version]=2025-01-01T00:00:00.000Z"), nil).ok(http.StatusOK)
	w.a.do(http.MethodDelete, objectPath(col, indicatorID(60)), nil).ok(http.StatusOK)
	w.a.get(objectPath(col, indicatorID(60))).wantError(http.StatusNotFound)

	// A relay speaking for B owns nothing of A's either: the owner is who
	// created_by_ref names.
	w.a.post(col, versioned(61, "2025-01-01T00:00:00.000Z", []string{tlpGreen}, ""))
	st = w.relay.post(col, versioned(61, "2025-02-01T00:00:00.000Z", []string{tlpGreen}, `,"created_by_ref":"`+w.orgB+`"`))
	if num(t, st, "failure_count") != 1 {
		t.Errorf("relay for B versions A's object: %v", st)
	}
}

func TestNonOwnerRevealsNothingHidden(t *testing.T) {
	w := newLeakWorld(t)
	col := w.energy.ID
	// A's RED indicator is hidden from B; A's GREEN one is not.
	w.a.post(col, versioned(62, "2025-01-01T00:00:00.000Z", []string{tlpRed}, ""), versioned(63, "2025-01-01T00:00:00.000Z", []string{tlpGreen}, ""))
	// A POST of a new version, of the same version with other content, by
	// B: the same refusal for the hidden object as for the visible one,
	// which says nothing about what is stored.
	var got []string
	for _, obj := range []string{
		versioned(62, "2025-02-01T00:00:00.000Z", []string{tlpGreen}, ""),
		versioned(62, "2025-01-01T00:00:00.000Z", []string{tlpGreen}, ""),
		versioned(63, "2025-02-01T00:00:00.000Z", []string{tlpGreen}, ""),
		versioned(63, "2025-01-01T00:00:00.000Z", []string{tlpGreen}, `,"description":"changed"`),
	} {
		st := w.b.post(col, obj)
		m := failureMessages(t, st)
		if len(m) != 1 {
			t.Fatalf("B's version of A's object accepted: %v", st)
		}
		got = append(got, m[0])
	}
	for _, m := range got[1:] {
		if m != got[0] {
			t.Errorf("refusals differ: %q", got)
		}
	}
	for _, m := range got {
		if strings.Contains(m, "already") || strings.Contains(m, "2025-01-01") {
			t.Errorf("refusal reveals a stored version: %q", m)
		}
	}
	// DELETE and GET of the hidden object: exactly an unknown id.
	likeUnknown(t, w.b, http.MethodDelete, col, indicatorID(62), "")
	likeUnknown(t, w.b, http.MethodDelete, col, indicatorID(62), "?match[version]=2025-01-01T00:00:00.000Z")
	likeUnknown(t, w.b, http.MethodGet, col, indicatorID(62), "")
	likeUnknown(t, w.b, http.MethodGet, col, indicatorID(62), "versions/")
	w.a.get(objectPath(col, indicatorID(62))).ok(http.StatusOK)

	// A visible object with a hidden older version: a non-owner's DELETE
	// of that version answers like one of a version that never existed.
	w.a.post(col, versioned(69, "2025-01-01T00:00:00.000Z", []string{tlpRed}, ""), versioned(69, "2025-02-01T00:00:00.000Z", []string{tlpGreen}, ""))
	hidden := w.b.do(http.MethodDelete, withQuery(objectPath(col, indicatorID(69)), "match[version]=2025-01-01T00:00:00.000Z"), nil)
	never := w.b.do(http.MethodDelete, withQuery(objectPath(col, indicatorID(69)), "match[version]=2024-06-01T00:00:00.000Z"), nil)
	if hidden.status != never.status || string(hidden.body) != string(never.body) {
		t.Errorf("DELETE of a hidden version: %d %s; of a version never stored: %d %s", hidden.status, hidden.body, never.status, never.body)
	}
	if n := len(w.a.get(withQuery(objectPath(col, indicatorID(69)), "match[version]=all")).ok(http.StatusOK).envelope().Objects); n != 2 {
		t.Errorf("A has %d versions left, want 2", n)
	}
}

func TestLatestVersionHiddenIsUnknown(t *testing.T) {
	w := newLeakWorld(t)
	col := w.energy.ID
	// A shared a GREEN version, then restricted the object to AMBER+STRICT.
	w.a.post(col, versioned(64, "2025-01-01T00:00:00.000Z", []string{tlpGreen}, ""))
	w.a.post(col, versioned(64, "2025-02-01T00:00:00.000Z", []string{tlpAmberStrict}, ""))
	// The same, with the older version added after the newer one.
	w.a.post(col, versioned(70, "2025-02-01T00:00:00.000Z", []string{tlpAmberStrict}, ""))
	w.a.post(col, versioned(70, "2025-01-01T00:00:00.000Z", []string{tlpGreen}, ""))
	likeUnknown(t, w.b, http.MethodGet, col, indicatorID(70), "?match[version]=all")
	for _, suffix := range []string{"", "versions/", "?match[version]=all", "?match[version]=first", "?match[version]=2025-01-01T00:00:00.000Z"} {
		likeUnknown(t, w.b, http.MethodGet, col, indicatorID(64), suffix)
	}
	likeUnknown(t, w.b, http.MethodDelete, col, indicatorID(64), "?match[version]=2025-01-01T00:00:00.000Z")
	// Nor do the lists show its older version, page by page (pages stay
	// full while more is true).
	for _, filter := range []string{"match[version]=all", "match[version]=first", "match[version]=first,last", "match[spec_version]=2.1"} {
		for _, id := range pageThrough(t, w.b, col, filter) {
			if id == indicatorID(64) || id == indicatorID(70) {
				t.Errorf("B lists %s with %s", id, filter)
			}
		}
		for _, m := range w.b.get(withQuery(manifestPath(col), filter)).ok(http.StatusOK).manifest().Objects {
			if m.ID == indicatorID(64) || m.ID == indicatorID(70) {
				t.Errorf("B's manifest lists the object with %s", filter)
			}
		}
	}
	if got := pageThrough(t, w.a, col, "match[version]=all"); !slices.Contains(got, indicatorID(64)) {
		t.Error("A's list lacks its own object")
	}
	// A still has both versions.
	if n := len(w.a.get(withQuery(objectPath(col, indicatorID(64)), "match[version]=all")).ok(http.StatusOK).envelope().Objects); n != 2 {
		t.Errorf("A reads %d versions, want 2", n)
	}
}

func TestAdminDeleteIsModeration(t *testing.T) {
	w := newLeakWorld(t)
	col := w.energy.ID
	admin := w.member("root", w.orgB, "admin")
	w.a.post(col, versioned(65, "2025-01-01T00:00:00.000Z", []string{tlpGreen}, ""))
	admin.do(http.MethodDelete, objectPath(col, indicatorID(65)), nil).ok(http.StatusOK)
	w.a.get(objectPath(col, indicatorID(65))).wantError(http.StatusNotFound)
	recs, err := w.e.st.ListAudit(w.e.ctx, store.AuditFilter{Action: "objects.moderate"})
	if err != nil || len(recs) != 1 || recs[0].Principal != "root" || recs[0].Objects[0] != indicatorID(65) || !strings.Contains(recs[0].Detail, w.orgA) {
		t.Errorf("moderation audit = %+v, %v", recs, err)
	}
	// Moderation does not reach what the admin cannot see.
	likeUnknown(t, admin, http.MethodDelete, col, w.ids["red"], "")
}

func TestThirdPartyReportFromAnalyst(t *testing.T) {
	w := newLeakWorld(t)
	col := w.energy.ID
	// A vendor that is not an organisation of this server.
	const vendor = "identity--11111111-2222-4333-8444-555555555555"
	identity := `{"type":"identity","spec_version":"2.1","id":"` + vendor + `","created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","name":"ACME Threat Research","identity_class":"organization"}`
	report := func(modified string) string {
		return `{"type":"report","spec_version":"2.1","id":"report--00000000-0000-4000-8000-000000000066","created":"2025-01-01T00:00:00.000Z","modified":"` + modified + `","name":"ACME: grid intrusions","published":"2025-01-01T00:00:00Z","report_types":["threat-report"],"created_by_ref":"` + vendor + `","object_refs":["` + indicatorID(67) + `"],"object_marking_refs":["` + tlpGreen + `"]}`
	}
	ind := leakIndicator(67, vendor, []string{tlpGreen}, "")
	st := w.b.post(col, identity, ind, report("2025-01-01T00:00:00.000Z"))
	if num(t, st, "success_count") != 3 {
		t.Fatalf("third-party report from an analyst: %v", st)
	}
	w.a.get(objectPath(col, "report--00000000-0000-4000-8000-000000000066")).ok(http.StatusOK)
	// It is B's (the submitter's): A cannot version it, B can.
	if st := w.a.post(col, report("2025-02-01T00:00:00.000Z")); num(t, st, "failure_count") != 1 {
		t.Errorf("A versions B's import: %v", st)
	}
	if st := w.b.post(col, report("2025-03-01T00:00:00.000Z")); num(t, st, "success_count") != 1 {
		t.Errorf("B versions its import: %v", st)
	}
	// Naming a registered organisation stays refused.
	if st := w.b.post(col, leakIndicator(68, w.orgA, []string{tlpGreen}, "")); num(t, st, "failure_count") != 1 {
		t.Errorf("B speaks for A: %v", st)
	}
}

func TestOrganisationIdentityIsItsOwn(t *testing.T) {
	w := newLeakWorld(t)
	col := w.energy.ID
	identity := func(id, name string) string {
		return `{"type":"identity","spec_version":"2.1","id":"` + id + `","created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","name":"` + name + `","identity_class":"organization"}`
	}
	// B cannot publish (and so own) A's identity.
	st := w.b.post(col, identity(w.orgA, "National CERT (fake)"))
	if num(t, st, "failure_count") != 1 || !strings.Contains(fmt.Sprint(st["failures"]), "identity of another organisation") {
		t.Fatalf("B publishes A's identity: %v", st)
	}
	// A can, and then versions it.
	if st := w.a.post(col, identity(w.orgA, "National CERT")); num(t, st, "success_count") != 1 {
		t.Fatalf("A publishes its identity: %v", st)
	}
	// B's own identity is B's.
	if st := w.b.post(col, identity(w.orgB, "Grid Operator")); num(t, st, "success_count") != 1 {
		t.Fatalf("B publishes its identity: %v", st)
	}
}
