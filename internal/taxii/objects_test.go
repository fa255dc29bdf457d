package taxii_test

import (
	"bytes"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/taxii"
)

const (
	v1 = "2024-01-01T00:00:00.000Z"
	v2 = "2024-02-01T00:00:00.000Z"
	v3 = "2024-03-01T00:00:00.000Z"
)

func TestAddObjectsStatus(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", access.RoleAnalyst)
	bob := e.user("bob", access.RoleAnalyst)
	root := e.user("root", access.RoleAdmin)
	c := e.collection("alpha", []string{"alice", "bob"}, []string{"alice", "bob"})

	badPrefix := strings.Replace(malware(3, v1), `"id":"malware--`, `"id":"indicator--`, 1)
	noID := `{"type":"malware","spec_version":"2.1","created":"` + v1 + `","modified":"` + v2 + `","name":"x","is_family":false}`
	r := alice.do(http.MethodPost, objectsPath(c.ID), envelope(malware(1, v1), badPrefix, indicator(2, v2), noID, `42`))
	r.ok(http.StatusAccepted)
	st := r.object()

	if st["status"] != "complete" {
		t.Errorf("status = %v, want complete", st["status"])
	}
	id, _ := st["id"].(string)
	if id == "" {
		t.Fatalf("status without id: %v", st)
	}
	if ts, _ := st["request_timestamp"].(string); !microRE.MatchString(ts) {
		t.Errorf("request_timestamp = %v", st["request_timestamp"])
	}
	for k, want := range map[string]int{"total_count": 5, "success_count": 2, "failure_count": 3, "pending_count": 0} {
		if got := num(t, st, k); got != want {
			t.Errorf("%s = %d, want %d", k, got, want)
		}
	}
	wantList(t, "successes", details(t, st, "successes"), []string{malwareID(1) + "@" + v1, indicatorID(2) + "@" + v2})
	failures := details(t, st, "failures")
	slices.Sort(failures)
	wantList(t, "failures", failures, []string{"indicator--" + uuidN(3) + "@" + v1, "unknown@" + v2, "unknown@unknown"})
	for _, f := range st["failures"].([]any) {
		if msg, _ := f.(map[string]any)["message"].(string); msg == "" {
			t.Errorf("failure without message: %v", f)
		}
	}
	if _, ok := st["pendings"]; ok {
		t.Errorf("pendings present although nothing is pending: %v", st["pendings"])
	}

	// Only the valid objects were stored.
	got := versionsOf(t, alice.get(withQuery(objectsPath(c.ID), "match[version]=all")).envelope())
	wantList(t, "stored objects", got, []string{malwareID(1) + "@" + v1, indicatorID(2) + "@" + v2})

	// The status can be fetched again by its owner (and an admin), not by
	// anyone else, even someone who may read and write the collection.
	again := alice.get(statusPath(id)).ok(http.StatusOK)
	if !bytes.Equal(bytes.TrimSpace(again.body), bytes.TrimSpace(r.body)) {
		t.Errorf("GET status differs from the POST answer:\n%s\n%s", again.body, r.body)
	}
	root.get(statusPath(id)).ok(http.StatusOK)
	bob.get(statusPath(id)).wantError(http.StatusNotFound)
}

// TestAddManyObjects sends an envelope large enough to be validated in
// parallel and checks that every object's outcome is reported.
func TestAddManyObjects(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", access.RoleAnalyst)
	c := e.collection("alpha", []string{"alice"}, []string{"alice"})
	var objs, wantOK, wantBad []string
	for i := range 300 {
		if i%7 == 3 {
			// Invalid: is_family must be a boolean.
			objs = append(objs, strings.Replace(malware(i, v1), `"is_family":false`, `"is_family":"no"`, 1))
			wantBad = append(wantBad, malwareID(i)+"@"+v1)
			continue
		}
		objs = append(objs, malware(i, v1))
		wantOK = append(wantOK, malwareID(i)+"@"+v1)
	}
	st := alice.post(c.ID, objs...)
	if num(t, st, "total_count") != 300 {
		t.Errorf("total_count = %v", st["total_count"])
	}
	wantList(t, "successes", details(t, st, "successes"), wantOK)
	failures := details(t, st, "failures")
	slices.Sort(failures)
	wantList(t, "failures", failures, wantBad)
	var stored []string
	q := "limit=1000"
	for {
		env := alice.get(withQuery(objectsPath(c.ID), q)).envelope()
		stored = append(stored, versionsOf(t, env)...)
		if !env.More {
			break
		}
		q = "next=" + url.QueryEscape(env.Next)
	}
	wantList(t, "stored", stored, wantOK)
}

func TestAddEmptyEnvelope(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", access.RoleAnalyst)
	c := e.collection("alpha", []string{"alice"}, []string{"alice"})
	for _, body := range []string{`{}`, `{"objects":[]}`} {
		st := alice.do(http.MethodPost, objectsPath(c.ID), []byte(body)).ok(http.StatusAccepted).object()
		if num(t, st, "total_count") != 0 || num(t, st, "success_count") != 0 || st["status"] != "complete" {
			t.Errorf("status for %s = %v", body, st)
		}
	}
}

func TestAddDuplicateIsSuccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", access.RoleAnalyst)
	c := e.collection("alpha", []string{"alice"}, []string{"alice"})
	obj := malware(1, v1)
	alice.post(c.ID, obj, ipv4(7))

	// The same objects again, and re-serialised with other key order and
	// whitespace: successes, not failures (TAXII 2.1 §5.5).
	reordered := `{ "name": "malware 1", "is_family": false, "modified": "` + v1 + `", "created": "` + created + `",
		"id": "` + malwareID(1) + `", "spec_version": "2.1", "type": "malware" }`
	for _, objs := range [][]string{{obj, ipv4(7)}, {reordered}} {
		st := alice.post(c.ID, objs...)
		if num(t, st, "success_count") != len(objs) || num(t, st, "failure_count") != 0 {
			t.Errorf("re-POST of identical objects: %v", st)
		}
	}
	// The same object twice in one envelope.
	st := alice.post(c.ID, malware(2, v1), malware(2, v1))
	if num(t, st, "success_count") != 2 || num(t, st, "failure_count") != 0 {
		t.Errorf("an object twice in one envelope: %v", st)
	}
	got := versionsOf(t, alice.get(withQuery(objectsPath(c.ID), "match[version]=all")).envelope())
	wantList(t, "objects after re-POSTs", got, []string{malwareID(1) + "@" + v1, ipv4ID(7), malwareID(2) + "@" + v1})

	// A different object under the same id and version is refused.
	changed := strings.Replace(obj, `"malware 1"`, `"another name"`, 1)
	st = alice.post(c.ID, changed)
	if num(t, st, "success_count") != 0 || num(t, st, "failure_count") != 1 {
		t.Errorf("conflicting object: %v", st)
	}
	wantList(t, "failures", details(t, st, "failures"), []string{malwareID(1) + "@" + v1})
	body := alice.get(objectPath(c.ID, malwareID(1))).body
	if !bytes.Contains(body, []byte(`"malware 1"`)) || bytes.Contains(body, []byte("another name")) {
		t.Errorf("the conflicting object replaced the stored one: %s", body)
	}
}

func TestStatusSurvivesRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", access.RoleAnalyst)
	c := e.collection("alpha", []string{"alice"}, []string{"alice"})
	st := alice.post(c.ID, malware(1, v1), `{"type":"malware"}`)
	id := st["id"].(string)
	before := alice.get(statusPath(id)).ok(http.StatusOK).body

	e.restart()
	alice = e.basic("alice", password)
	after := alice.get(statusPath(id)).ok(http.StatusOK).body
	if !bytes.Equal(before, after) {
		t.Errorf("status changed across a restart:\n%s\n%s", before, after)
	}
	wantList(t, "objects after restart", versionsOf(t, alice.get(objectsPath(c.ID)).envelope()), []string{malwareID(1) + "@" + v1})
}

func TestRoundTripIsByteFaithful(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", access.RoleAnalyst)
	c := e.collection("alpha", []string{"alice"}, []string{"alice"})
	// Key order, spacing, escapes, number spelling, unicode, custom
	// properties and nested extensions must all come back as sent.
	odd := `{"name":"Ünïcødé – 名前 🚀 \u00e9\/\"q\"",  "x_acme_score" : 1.50e2,` +
		`"id":"` + malwareID(1) + `","modified":"2024-05-06T07:08:09.123456Z","is_family":false,` +
		`"extensions":{"extension-definition--` + uuidN(99) + `":{"extension_type":"property-extension",` +
		`"x_deep":{"list":[1,-0.0,{"k":null,"z":"<&>"}],"empty_string":""}}},` +
		"\n\t\"x_acme_tags\":[\"a\",\"b\"],\"type\":\"malware\",\"created\":\"2024-05-06T07:08:09.123456Z\",\"spec_version\":\"2.1\"}"
	if p := (&stix.Validator{}).Validate([]byte(odd)); len(p) > 0 {
		t.Fatalf("test object is invalid: %v", p)
	}
	plain := ipv4(1)
	st := alice.post(c.ID, odd, plain)
	if num(t, st, "success_count") != 2 {
		t.Fatalf("status = %v", st)
	}

	want := `{"objects":[` + odd + `,` + plain + `]}`
	if got := string(alice.get(objectsPath(c.ID)).ok(http.StatusOK).body); got != want {
		t.Errorf("GET objects:\n got  %s\n want %s", got, want)
	}
	want = `{"objects":[` + odd + `]}`
	if got := string(alice.get(objectPath(c.ID, malwareID(1))).ok(http.StatusOK).body); got != want {
		t.Errorf("GET object:\n got  %s\n want %s", got, want)
	}
}

// seed adds, in this order and in separate requests: malware 1 at v2, the
// indicator 2 at v1, malware 1 at v1, the SCO ipv4 3, malware 1 at v3.
// date_added order is therefore not version order.
func seed(t *testing.T, cl *client, coll string) {
	t.Helper()
	for _, o := range []string{malware(1, v2), indicator(2, v1), malware(1, v1), ipv4(3), malware(1, v3)} {
		if st := cl.post(coll, o); num(t, st, "success_count") != 1 {
			t.Fatalf("seed: %v", st)
		}
	}
}

func TestObjectFilters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", access.RoleAnalyst)
	c := e.collection("alpha", []string{"alice"}, []string{"alice"})
	seed(t, alice, c.ID)
	m1 := func(v string) string { return malwareID(1) + "@" + v }
	ind, ip := indicatorID(2)+"@"+v1, ipv4ID(3)

	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{ind, ip, m1(v3)}},
		{"match[version]=last", []string{ind, ip, m1(v3)}},
		{"match[version]=first", []string{ind, m1(v1), ip}},
		{"match[version]=all", []string{m1(v2), ind, m1(v1), ip, m1(v3)}},
		{"match[version]=first,last", []string{ind, m1(v1), ip, m1(v3)}},
		{"match[version]=last,first", []string{ind, m1(v1), ip, m1(v3)}},
		{"match[version]=" + v2, []string{m1(v2)}},
		{"match[version]=" + v2 + "," + v1, []string{m1(v2), ind, m1(v1)}},
		{"match[version]=first," + v2 + ",last", []string{m1(v2), ind, m1(v1), ip, m1(v3)}},
		// A version is an instant: other spellings of it match.
		{"match[version]=2024-02-01T00:00:00Z", []string{m1(v2)}},
		{"match[version]=2024-02-01T00:00:00.000000Z", []string{m1(v2)}},
		{"match[version]=2023-01-01T00:00:00.000Z", nil},
		{"match[type]=malware", []string{m1(v3)}},
		{"match[type]=malware,indicator", []string{ind, m1(v3)}},
		{"match[type]=campaign", nil},
		{"match[id]=" + indicatorID(2), []string{ind}},
		{"match[id]=" + indicatorID(2) + "," + ipv4ID(3), []string{ind, ip}},
		{"match[id]=" + malwareID(9), nil},
		{"match[type]=malware&match[version]=all", []string{m1(v2), m1(v1), m1(v3)}},
		{"match[type]=malware&match[id]=" + indicatorID(2), nil},
		{"match[id]=" + malwareID(1) + "&match[version]=first," + v3, []string{m1(v1), m1(v3)}},
		{"match[spec_version]=2.1", []string{ind, ip, m1(v3)}},
		{"match[spec_version]=2.0", nil},
		{"match[spec_version]=2.0,2.1", []string{ind, ip, m1(v3)}},
		{"match[spec_version]=2.1&match[version]=all&match[type]=malware", []string{m1(v2), m1(v1), m1(v3)}},
		// Servers MAY ignore match fields they do not know (TAXII 2.1 §3.4).
		{"match[x_unknown]=whatever", []string{ind, ip, m1(v3)}},
	} {
		r := alice.get(withQuery(objectsPath(c.ID), tc.query))
		got := versionsOf(t, r.envelope())
		wantList(t, "objects?"+tc.query, got, tc.want)
		if len(tc.want) == 0 && strings.TrimSpace(string(r.body)) != "{}" {
			t.Errorf("objects?%s: empty result is %s, want {}", tc.query, r.body)
		}

		// The manifest applies the same filters to the same entries.
		mf := alice.get(withQuery(manifestPath(c.ID), tc.query)).manifest()
		var mgot []string
		for _, rec := range mf.Objects {
			if strings.HasPrefix(rec.ID, "ipv4-addr--") {
				mgot = append(mgot, rec.ID)
			} else {
				mgot = append(mgot, rec.ID+"@"+rec.Version)
			}
		}
		wantList(t, "manifest?"+tc.query, mgot, tc.want)
	}
}

func TestBadQueries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", access.RoleAnalyst)
	c := e.collection("alpha", []string{"alice"}, []string{"alice"})
	seed(t, alice, c.ID)
	bad := []string{
		"match[version]=first,first",
		"match[version]=last,last",
		"match[version]=all,all",
		"match[version]=" + v1 + "," + v1,
		"match[version]=all,first",
		"match[version]=last,all",
		"match[version]=all," + v1,
		"match[version]=2024-01-01",
		"match[version]=2024-01-01T00:00:00+01:00",
		"match[version]=latest",
		"match[version]=",
		"match[version]=first,",
		"match[type]=malware&match[type]=indicator",
		"match[id]=" + malwareID(1) + "&match[id]=" + malwareID(1),
		"match[version]=first&match[version]=last",
		"match[spec_version]=2.1&match[spec_version]=2.1",
		"match[type]=",
		"added_after=yesterday",
		"added_after=2024-01-01",
		"added_after=2024-01-01T00:00:00.000Z&added_after=2024-01-02T00:00:00.000Z",
		"limit=0",
		"limit=-1",
		"limit=abc",
		"limit=1.5",
		"limit=",
		"limit=1&limit=2",
		"next=not-a-token!",
		"next=",
		"next=a&next=b",
		"match[type]=%zz",
	}
	for _, q := range bad {
		alice.get(withQuery(objectsPath(c.ID), q)).wantError(http.StatusBadRequest)
		alice.get(withQuery(manifestPath(c.ID), q)).wantError(http.StatusBadRequest)
	}
	// The object endpoint checks the filters it takes.
	for _, q := range []string{"match[version]=all,first", "match[version]=bad", "limit=0", "added_after=x", "match[spec_version]=2.1&match[spec_version]=2.0"} {
		alice.get(withQuery(objectPath(c.ID, malwareID(1)), q)).wantError(http.StatusBadRequest)
	}
	for _, q := range []string{"limit=0", "added_after=x", "next=!", "match[spec_version]="} {
		alice.get(withQuery(versionsPath(c.ID, malwareID(1)), q)).wantError(http.StatusBadRequest)
	}
	for _, q := range []string{"match[version]=all,last", "match[version]=" + v1 + "," + v1, "match[version]=nope"} {
		alice.do(http.MethodDelete, withQuery(objectPath(c.ID, malwareID(1)), q), nil).wantError(http.StatusBadRequest)
	}
	// Nothing was deleted by the refused DELETEs.
	if got := versionsOf(t, alice.get(withQuery(objectPath(c.ID, malwareID(1)), "match[version]=all")).envelope()); len(got) != 3 {
		t.Errorf("versions after refused deletes: %v", got)
	}
}

// dateHeaders returns X-TAXII-Date-Added-First and -Last, checking their form.
func dateHeaders(t *testing.T, r *resp) (first, last string) {
	t.Helper()
	first, last = r.header.Get("X-TAXII-Date-Added-First"), r.header.Get("X-TAXII-Date-Added-Last")
	f, l := parseMicro(t, first), parseMicro(t, last)
	if l.Before(f) {
		t.Errorf("%s: X-TAXII-Date-Added-Last %s before -First %s", r.req, last, first)
	}
	return first, last
}

func TestDateAddedHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", access.RoleAnalyst)
	c := e.collection("alpha", []string{"alice"}, []string{"alice"})
	seed(t, alice, c.ID)

	mf := alice.get(withQuery(manifestPath(c.ID), "match[version]=all")).manifest()
	if len(mf.Objects) != 5 {
		t.Fatalf("manifest has %d records, want 5", len(mf.Objects))
	}
	var added []string
	for i, rec := range mf.Objects {
		parseMicro(t, rec.DateAdded)
		if i > 0 && rec.DateAdded <= mf.Objects[i-1].DateAdded {
			t.Errorf("manifest not in date_added order: %s after %s", rec.DateAdded, mf.Objects[i-1].DateAdded)
		}
		if rec.MediaType != stixMT {
			t.Errorf("media_type = %q", rec.MediaType)
		}
		added = append(added, rec.DateAdded)
	}
	firstAdded, lastAdded := added[0], added[len(added)-1]

	for _, tc := range []struct{ path, first, last string }{
		{withQuery(objectsPath(c.ID), "match[version]=all"), firstAdded, lastAdded},
		{withQuery(manifestPath(c.ID), "match[version]=all"), firstAdded, lastAdded},
		{withQuery(objectsPath(c.ID), "match[version]=all&limit=2"), added[0], added[1]},
		{withQuery(objectsPath(c.ID), "match[type]=indicator"), added[1], added[1]},
		{withQuery(objectPath(c.ID, malwareID(1)), "match[version]=all"), added[0], added[4]},
		{objectPath(c.ID, malwareID(1)), added[4], added[4]},
		{versionsPath(c.ID, malwareID(1)), added[0], added[4]},
	} {
		r := alice.get(tc.path).ok(http.StatusOK)
		first, last := dateHeaders(t, r)
		if first != tc.first || last != tc.last {
			t.Errorf("%s: headers %s..%s, want %s..%s", tc.path, first, last, tc.first, tc.last)
		}
	}

	// added_after is exclusive.
	for i, a := range added {
		r := alice.get(withQuery(manifestPath(c.ID), "match[version]=all&added_after="+url.QueryEscape(a)))
		if got := len(r.manifest().Objects); got != len(added)-i-1 {
			t.Errorf("added_after=%s: %d records, want %d", a, got, len(added)-i-1)
		}
	}
	if env := alice.get(withQuery(objectsPath(c.ID), "added_after="+lastAdded)).envelope(); len(env.Objects) != 0 || env.More {
		t.Errorf("added_after the last object: %v", env)
	}
	// Any timestamp spelling works, here one without fractional seconds.
	if env := alice.get(withQuery(objectsPath(c.ID), "added_after=2000-01-01T00:00:00Z&match[version]=all")).envelope(); len(env.Objects) != 5 {
		t.Errorf("added_after=2000: %d objects", len(env.Objects))
	}
}

func TestPagination(t *testing.T) {
	t.Parallel()
	const pageSize = 5
	e := newEnv(t, func(c *taxii.Config) { c.PageSize = pageSize })
	alice := e.user("alice", access.RoleAnalyst)
	c := e.collection("alpha", []string{"alice"}, []string{"alice"})
	var objs, want []string
	for i := range 12 {
		objs = append(objs, malware(i, v1))
		want = append(want, malwareID(i)+"@"+v1)
	}
	// Half in one request (same request, distinct date_added), half one by one.
	alice.post(c.ID, objs[:6]...)
	for _, o := range objs[6:] {
		alice.post(c.ID, o)
	}
	alice.post(c.ID, indicator(50, v1))

	for _, limit := range []int{1, 3, 4, 5, 11, 12, 100} {
		for _, byNext := range []bool{true, false} {
			query := "match[type]=malware&limit=" + strconv.Itoa(limit)
			var got []string
			var cursor string
			for page := 0; ; page++ {
				if page > 20 {
					t.Fatalf("limit %d: pagination does not end", limit)
				}
				q := query
				if cursor != "" {
					if byNext {
						q += "&next=" + url.QueryEscape(cursor)
					} else {
						q += "&added_after=" + url.QueryEscape(cursor)
					}
				}
				r := alice.get(withQuery(objectsPath(c.ID), q))
				env := r.envelope()
				n := len(env.Objects)
				if n > min(limit, pageSize) {
					t.Fatalf("limit %d: page of %d objects", limit, n)
				}
				got = append(got, versionsOf(t, env)...)
				if !env.More {
					break
				}
				if n == 0 {
					t.Fatalf("limit %d: empty page with more=true", limit)
				}
				// A page is short only at the end.
				if n != min(limit, pageSize) {
					t.Errorf("limit %d: short page of %d with more=true", limit, n)
				}
				if byNext {
					cursor = env.Next
				} else {
					_, cursor = dateHeaders(t, r)
				}
			}
			wantList(t, "paged objects (limit "+strconv.Itoa(limit)+")", got, want)
		}
	}

	// A limit above the server's gives the server's page and more=true.
	env := alice.get(withQuery(objectsPath(c.ID), "limit=100")).envelope()
	if len(env.Objects) != pageSize || !env.More {
		t.Errorf("limit=100: %d objects, more=%v; want %d, true", len(env.Objects), env.More, pageSize)
	}
	env = alice.get(objectsPath(c.ID)).envelope()
	if len(env.Objects) != pageSize || !env.More {
		t.Errorf("no limit: %d objects, more=%v; want %d, true", len(env.Objects), env.More, pageSize)
	}
	// The last page does not claim more.
	env = alice.get(withQuery(objectsPath(c.ID), "match[type]=malware&limit=4&added_after=2000-01-01T00:00:00Z&next="+url.QueryEscape(nextAfter(t, alice, c.ID, 8)))).envelope()
	if len(env.Objects) != 4 || env.More {
		t.Errorf("last page: %d objects, more=%v; want 4, false", len(env.Objects), env.More)
	}

	// The manifest pages the same way.
	var got []string
	q := "match[type]=malware&limit=5"
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatal("manifest pagination does not end")
		}
		mf := alice.get(withQuery(manifestPath(c.ID), q)).manifest()
		for _, rec := range mf.Objects {
			got = append(got, rec.ID+"@"+rec.Version)
		}
		if !mf.More {
			if mf.Next != "" {
				t.Errorf("manifest: next %q without more", mf.Next)
			}
			break
		}
		q = "match[type]=malware&limit=5&next=" + url.QueryEscape(mf.Next)
	}
	wantList(t, "paged manifest", got, want)
}

// nextAfter returns the next token after the first n malware objects.
func nextAfter(t *testing.T, cl *client, coll string, n int) string {
	t.Helper()
	env := cl.get(withQuery(objectsPath(coll), "match[type]=malware&limit="+strconv.Itoa(min(n, 5)))).envelope()
	for got := len(env.Objects); got < n; got += len(env.Objects) {
		env = cl.get(withQuery(objectsPath(coll), "match[type]=malware&limit="+strconv.Itoa(min(n-got, 5))+"&next="+url.QueryEscape(env.Next))).envelope()
	}
	if env.Next == "" {
		t.Fatalf("no next after %d objects", n)
	}
	return env.Next
}

func TestManifestRecords(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", access.RoleAnalyst)
	c := e.collection("alpha", []string{"alice"}, []string{"alice"})
	st := alice.post(c.ID, malware(1, v2), ipv4(3))
	mf := alice.get(manifestPath(c.ID)).manifest()
	if len(mf.Objects) != 2 || mf.More || mf.Next != "" {
		t.Fatalf("manifest = %+v", mf)
	}
	// The SCO has no version of its own: the server's version for it is the
	// one the status reported, and it selects it.
	wantList(t, "status successes", details(t, st, "successes"), []string{malwareID(1) + "@" + v2, ipv4ID(3) + "@" + mf.Objects[1].Version})
	for i, want := range []manifestRecord{
		{ID: malwareID(1), Version: v2, MediaType: stixMT},
		{ID: ipv4ID(3), Version: mf.Objects[1].Version, MediaType: stixMT},
	} {
		got := mf.Objects[i]
		parseMicro(t, got.DateAdded)
		want.DateAdded = got.DateAdded
		if got != want {
			t.Errorf("record %d = %+v, want %+v", i, got, want)
		}
	}
	if mf.Objects[1].Version == "" {
		t.Fatal("SCO without version in the manifest")
	}
	env := alice.get(withQuery(objectPath(c.ID, ipv4ID(3)), "match[version]="+url.QueryEscape(mf.Objects[1].Version))).envelope()
	wantList(t, "SCO by its version", versionsOf(t, env), []string{ipv4ID(3)})
	vs := alice.get(versionsPath(c.ID, ipv4ID(3))).ok(http.StatusOK).object()
	if list, _ := vs["versions"].([]any); len(list) != 1 || list[0] != mf.Objects[1].Version {
		t.Errorf("SCO versions = %v, want [%s]", vs["versions"], mf.Objects[1].Version)
	}

	// An empty manifest is an empty object.
	r := alice.get(withQuery(manifestPath(c.ID), "match[type]=campaign")).ok(http.StatusOK)
	if strings.TrimSpace(string(r.body)) != "{}" {
		t.Errorf("empty manifest = %s, want {}", r.body)
	}
}

func TestGetObject(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", access.RoleAnalyst)
	c := e.collection("alpha", []string{"alice"}, []string{"alice"})
	seed(t, alice, c.ID)
	m1 := func(v string) string { return malwareID(1) + "@" + v }
	path := objectPath(c.ID, malwareID(1))

	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{m1(v3)}},
		{"match[version]=last", []string{m1(v3)}},
		{"match[version]=first", []string{m1(v1)}},
		{"match[version]=all", []string{m1(v2), m1(v1), m1(v3)}},
		{"match[version]=" + v2, []string{m1(v2)}},
		{"match[version]=" + v1 + "," + v3, []string{m1(v1), m1(v3)}},
		{"match[version]=first,last", []string{m1(v1), m1(v3)}},
		{"match[spec_version]=2.1&match[version]=all", []string{m1(v2), m1(v1), m1(v3)}},
		// The path names the object: match[id] and match[type] do not widen it.
		{"match[id]=" + indicatorID(2), []string{m1(v3)}},
		{"match[type]=indicator", []string{m1(v3)}},
		// Existing object, no version matching: an empty envelope (§5.6).
		{"match[version]=2020-01-01T00:00:00.000Z", nil},
		{"match[spec_version]=2.0", nil},
	} {
		r := alice.get(withQuery(path, tc.query))
		wantList(t, "object?"+tc.query, versionsOf(t, r.envelope()), tc.want)
		if len(tc.want) == 0 && strings.TrimSpace(string(r.body)) != "{}" {
			t.Errorf("object?%s: empty envelope is %s, want {}", tc.query, r.body)
		}
	}
	// By alias too.
	wantList(t, "object by collection alias", versionsOf(t, alice.get(objectPath("alpha", malwareID(1))).envelope()), []string{m1(v3)})

	// Paging over the versions of one object.
	env := alice.get(withQuery(path, "match[version]=all&limit=2")).envelope()
	if !env.More || len(env.Objects) != 2 {
		t.Fatalf("limit=2: %d objects, more=%v", len(env.Objects), env.More)
	}
	rest := alice.get(withQuery(path, "match[version]=all&limit=2&next="+url.QueryEscape(env.Next))).envelope()
	wantList(t, "paged versions", append(versionsOf(t, env), versionsOf(t, rest)...), []string{m1(v2), m1(v1), m1(v3)})
	if rest.More {
		t.Error("more=true on the last page")
	}

	alice.get(objectPath(c.ID, malwareID(9))).wantError(http.StatusNotFound)
	alice.get(objectPath(c.ID, "not-an-id")).wantError(http.StatusNotFound)
}

func TestVersions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", access.RoleAnalyst)
	c := e.collection("alpha", []string{"alice"}, []string{"alice"})
	seed(t, alice, c.ID)

	versions := func(query string) (list []string, more bool, next string) {
		t.Helper()
		m := alice.get(withQuery(versionsPath(c.ID, malwareID(1)), query)).ok(http.StatusOK).object()
		for _, v := range m["versions"].([]any) {
			list = append(list, v.(string))
		}
		more, _ = m["more"].(bool)
		next, _ = m["next"].(string)
		return list, more, next
	}
	// date_added order, not version order.
	got, more, _ := versions("")
	wantList(t, "versions", got, []string{v2, v1, v3})
	if more {
		t.Error("more=true without a limit")
	}
	got, _, _ = versions("match[spec_version]=2.1")
	wantList(t, "versions of spec 2.1", got, []string{v2, v1, v3})

	var paged []string
	q := "limit=1"
	for range 5 {
		list, more, next := versions(q)
		paged = append(paged, list...)
		if !more {
			break
		}
		q = "limit=1&next=" + url.QueryEscape(next)
	}
	wantList(t, "versions one by one", paged, []string{v2, v1, v3})

	single := alice.get(versionsPath(c.ID, indicatorID(2))).ok(http.StatusOK).object()
	if list, _ := single["versions"].([]any); len(list) != 1 || list[0] != v1 {
		t.Errorf("indicator versions = %v", single["versions"])
	}
	r := alice.get(withQuery(versionsPath(c.ID, malwareID(1)), "match[spec_version]=2.0")).ok(http.StatusOK)
	if strings.TrimSpace(string(r.body)) != "{}" {
		t.Errorf("no versions = %s, want {}", r.body)
	}
	alice.get(versionsPath(c.ID, malwareID(9))).wantError(http.StatusNotFound)
}

func TestDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", access.RoleAnalyst)
	reader := e.user("reader", access.RoleAnalyst)
	writer := e.user("writer", access.RoleAnalyst)
	ro := e.user("ro", access.RoleReadOnly)
	nobody := e.user("nobody", access.RoleAnalyst)
	c := e.collection("alpha", []string{"alice", "reader", "ro"}, []string{"alice", "writer", "ro"})
	seed(t, alice, c.ID)
	path := objectPath(c.ID, malwareID(1))

	// TAXII 2.1 §5.7: read only or write only → 403; neither → 404.
	reader.do(http.MethodDelete, path, nil).wantError(http.StatusForbidden)
	writer.do(http.MethodDelete, path, nil).wantError(http.StatusForbidden)
	ro.do(http.MethodDelete, path, nil).wantError(http.StatusForbidden)
	nobody.do(http.MethodDelete, path, nil).wantError(http.StatusNotFound)
	if got := versionsOf(t, alice.get(withQuery(path, "match[version]=all")).envelope()); len(got) != 3 {
		t.Fatalf("refused deletes removed versions: %v", got)
	}

	// One version.
	r := alice.do(http.MethodDelete, withQuery(path, "match[version]="+v2), nil).ok(http.StatusOK)
	if len(bytes.TrimSpace(r.body)) != 0 {
		t.Errorf("DELETE answered with a body: %s", r.body)
	}
	wantList(t, "versions after deleting one", versionsOf(t, alice.get(withQuery(path, "match[version]=all")).envelope()),
		[]string{malwareID(1) + "@" + v1, malwareID(1) + "@" + v3})
	if env := alice.get(withQuery(path, "match[version]="+v2)).envelope(); len(env.Objects) != 0 {
		t.Errorf("deleted version still served")
	}
	alice.do(http.MethodDelete, withQuery(path, "match[version]="+v2), nil).wantError(http.StatusNotFound)
	for _, rec := range alice.get(withQuery(manifestPath(c.ID), "match[version]=all")).manifest().Objects {
		if rec.ID == malwareID(1) && rec.Version == v2 {
			t.Error("manifest still lists the deleted version")
		}
	}

	// The latest version, by keyword: the previous one becomes the latest.
	alice.do(http.MethodDelete, withQuery(path, "match[version]=last"), nil).ok(http.StatusOK)
	wantList(t, "latest after deleting the last", versionsOf(t, alice.get(path).envelope()), []string{malwareID(1) + "@" + v1})

	// Without a filter every version goes.
	alice.do(http.MethodDelete, objectPath(c.ID, indicatorID(2)), nil).ok(http.StatusOK)
	alice.do(http.MethodDelete, objectPath("alpha", malwareID(1)), nil).ok(http.StatusOK)
	for _, id := range []string{malwareID(1), indicatorID(2)} {
		alice.get(objectPath(c.ID, id)).wantError(http.StatusNotFound)
		alice.get(withQuery(objectPath(c.ID, id), "match[version]=all")).wantError(http.StatusNotFound)
		alice.get(versionsPath(c.ID, id)).wantError(http.StatusNotFound)
		alice.do(http.MethodDelete, objectPath(c.ID, id), nil).wantError(http.StatusNotFound)
	}
	wantList(t, "objects after deletes", versionsOf(t, alice.get(withQuery(objectsPath(c.ID), "match[version]=all")).envelope()), []string{ipv4ID(3)})
	var ids []string
	for _, rec := range alice.get(withQuery(manifestPath(c.ID), "match[version]=all")).manifest().Objects {
		ids = append(ids, rec.ID)
	}
	wantList(t, "manifest after deletes", ids, []string{ipv4ID(3)})

	// A filter matching no version of an existing object deletes nothing.
	alice.do(http.MethodDelete, withQuery(objectPath(c.ID, ipv4ID(3)), "match[spec_version]=2.0"), nil).wantError(http.StatusNotFound)
	alice.do(http.MethodDelete, withQuery(objectPath(c.ID, ipv4ID(3)), "match[version]=2020-01-01T00:00:00.000Z"), nil).wantError(http.StatusNotFound)
	alice.get(objectPath(c.ID, ipv4ID(3))).ok(http.StatusOK)

	// An object deleted can be added again.
	st := alice.post(c.ID, malware(1, v2))
	if num(t, st, "success_count") != 1 {
		t.Errorf("re-adding a deleted object: %v", st)
	}
	wantList(t, "re-added", versionsOf(t, alice.get(path).envelope()), []string{malwareID(1) + "@" + v2})
}

// TestCollectionsAreSeparate checks that objects stay in their collection.
func TestCollectionsAreSeparate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", access.RoleAnalyst)
	a := e.collection("alpha", []string{"alice"}, []string{"alice"})
	b := e.collection("beta", []string{"alice"}, []string{"alice"})
	alice.post(a.ID, malware(1, v1))
	alice.post("beta", malware(2, v1))
	wantList(t, "alpha", versionsOf(t, alice.get(objectsPath(a.ID)).envelope()), []string{malwareID(1) + "@" + v1})
	wantList(t, "beta", versionsOf(t, alice.get(objectsPath("beta")).envelope()), []string{malwareID(2) + "@" + v1})
	alice.get(objectPath(a.ID, malwareID(2))).wantError(http.StatusNotFound)
	alice.do(http.MethodDelete, objectPath(b.ID, malwareID(1)), nil).wantError(http.StatusNotFound)
	alice.get(objectPath(a.ID, malwareID(1))).ok(http.StatusOK)
}
