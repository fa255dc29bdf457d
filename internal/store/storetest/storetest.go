// Package storetest is the behaviour suite every store.Store backend must
// pass unchanged. A backend's test calls Run with a constructor that returns
// a fresh, empty store for each subtest.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
)

// Open returns a new empty store; it registers its own cleanup.
type Open func(t testing.TB) store.Store

// Run runs the whole suite against the backend open builds.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"Collections", testCollections},
		{"Users", testUsers},
		{"Tokens", testTokens},
		{"AddAndGet", testAddAndGet},
		{"Duplicates", testDuplicates},
		{"Unversioned", testUnversioned},
		{"VersionFilters", testVersionFilters},
		{"Filters", testFilters},
		{"Pagination", testPagination},
		{"ConcurrentWritersPaginatingReader", testConcurrent},
		{"Delete", testDelete},
		{"ChangeLog", testChangeLog},
		{"Status", testStatus},
		{"NotFound", testNotFound},
		{"Organisations", testOrganisations},
		{"GroupsAndGrants", testGroupsAndGrants},
		{"Visibility", testVisibility},
		{"Audit", testAudit},
		{"Batches", testBatches},
		{"Group", testGroup},
		{"Committer", testCommitter},
		{"GroupOwnership", testGroupOwnership},
		{"Ownership", testOwnership},
		{"OwnershipRace", testOwnershipRace},
		{"OwnershipManyClaims", testOwnershipManyClaims},
		{"Update", testUpdate},
		{"UpdateConcurrent", testUpdateConcurrent},
		{"UpdateLatestThenAdd", testUpdateLatestThenAdd},
		{"UpdateDelete", testUpdateDelete},
		{"Markings", testMarkings},
		{"AccountChanges", testAccountChanges},
		{"AuditPages", testAuditPages},
		{"Retention", testRetention},
		{"ChangeFeedConcurrent", testChangeFeedConcurrent},
		{"ChangeRetention", testChangeRetention},
		{"TombstoneInputs", testTombstoneInputs},
		{"DeletionFeed", testDeletionFeed},
		{"Ping", testPing},
		{"Peers", testPeers},
		{"Provenance", testProvenance},
		{"Sessions", testSessions},
		{"ObjectCounts", testObjectCounts},
		{"ConsoleCountsKept", testConsoleCountsKept},
		{"Assistance", testAssistance},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

// Indicator builds a small valid indicator with the given id and modified time.
func Indicator(id string, created, modified time.Time) []byte {
	return fmt.Appendf(nil, `{"type":"indicator","spec_version":"2.1","id":%q,"created":%q,"modified":%q,"pattern":"[ipv4-addr:value = '10.0.0.1']","pattern_type":"stix","valid_from":%q,"x_custom":{"z":1,"a":[true,null]}}`,
		id, created.UTC().Format("2006-01-02T15:04:05.000Z"), modified.UTC().Format("2006-01-02T15:04:05.000Z"), created.UTC().Format("2006-01-02T15:04:05Z"))
}

// Obj turns raw JSON into a store.Object, reading its header.
func Obj(t testing.TB, raw []byte) store.Object {
	t.Helper()
	h, err := stix.ParseHeader(raw)
	if err != nil {
		t.Fatalf("header: %v", err)
	}
	o := store.Object{ID: h.ID, Type: h.Type, SpecVersion: h.SpecVersion, Raw: raw}
	o.Version, o.VersionRaw, _ = h.Version()
	return o
}

var base = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

func newCollection(t *testing.T, s store.Store) string {
	t.Helper()
	c := &store.Collection{Title: "test"}
	if err := s.CreateCollection(context.Background(), c); err != nil {
		t.Fatalf("create collection: %v", err)
	}
	return c.ID
}

func mustAdd(t *testing.T, s store.Store, cid string, raws ...[]byte) []store.AddResult {
	t.Helper()
	objs := make([]store.Object, len(raws))
	for i, r := range raws {
		objs[i] = Obj(t, r)
	}
	res, err := s.AddObjects(context.Background(), cid, objs, nil)
	if err != nil {
		t.Fatalf("add: %v", err)
	}
	return res
}

func query(t *testing.T, s store.Store, cid string, q store.Query) *store.Page {
	t.Helper()
	p, err := s.QueryObjects(context.Background(), cid, q)
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	return p
}

func versions(p *store.Page) []string {
	var out []string
	for _, e := range p.Entries {
		out = append(out, e.ID+"@"+e.VersionRaw)
	}
	return out
}

func eq(t *testing.T, what string, got, want []string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s:\n got %v\nwant %v", what, got, want)
	}
}

func testCollections(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.CreateUser(ctx, &store.User{Name: "alice", Role: "analyst", PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, &store.User{Name: "bob", Role: "analyst", PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	c := &store.Collection{Title: "Indicators", Description: "d", Alias: "high-value", Readers: []string{"alice", "bob"}, Writers: []string{"alice"}}
	if err := s.CreateCollection(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := uuid.Parse(c.ID); err != nil {
		t.Fatalf("generated id %q is not a UUID", c.ID)
	}
	for _, key := range []string{c.ID, "high-value"} {
		got, err := s.GetCollection(ctx, key)
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		if got.ID != c.ID || got.Title != "Indicators" || got.Description != "d" || got.Alias != "high-value" {
			t.Errorf("get %s = %+v", key, got)
		}
		eq(t, "readers", got.Readers, []string{"alice", "bob"})
		eq(t, "writers", got.Writers, []string{"alice"})
	}
	if err := s.CreateCollection(ctx, &store.Collection{Title: "x", Alias: "high-value"}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate alias: got %v, want ErrConflict", err)
	}
	if err := s.CreateCollection(ctx, &store.Collection{Title: ""}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("empty title: got %v, want ErrInvalid", err)
	}
	if err := s.CreateCollection(ctx, &store.Collection{Title: "y", Readers: []string{"nobody"}}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown reader: got %v, want ErrNotFound", err)
	}
	c2 := &store.Collection{Title: "Second"}
	if err := s.CreateCollection(ctx, c2); err != nil {
		t.Fatal(err)
	}
	if err := s.SetGrant(ctx, c2.ID, "bob", true, true); err != nil {
		t.Fatal(err)
	}
	if err := s.SetGrant(ctx, c.ID, "bob", false, false); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListCollections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != c.ID || list[1].ID != c2.ID {
		t.Fatalf("list order: %+v", list)
	}
	eq(t, "readers after revoke", list[0].Readers, []string{"alice"})
	eq(t, "readers of second", list[1].Writers, []string{"bob"})
	if err := s.DeleteCollection(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetCollection(ctx, c.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted collection: got %v", err)
	}
	if err := s.DeleteCollection(ctx, c.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete twice: got %v", err)
	}
}

func testUsers(t *testing.T, s store.Store) {
	ctx := context.Background()
	org, err := s.DefaultOrganisation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(org.ID) != len("identity--")+36 || org.ID[:10] != "identity--" {
		t.Errorf("organisation id %q is not an identity id", org.ID)
	}
	u := &store.User{Name: "carol", Role: "admin", PasswordHash: "h1"}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if u.Organisation != org.ID {
		t.Errorf("user organisation %q, want default %q", u.Organisation, org.ID)
	}
	if err := s.CreateUser(ctx, &store.User{Name: "carol", Role: "analyst", PasswordHash: "h2"}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate user: %v", err)
	}
	if err := s.CreateUser(ctx, &store.User{Name: "with space", PasswordHash: "h"}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("bad name: %v", err)
	}
	got, err := s.GetUser(ctx, "carol")
	if err != nil || got.Role != "admin" || got.PasswordHash != "h1" {
		t.Fatalf("get user = %+v, %v", got, err)
	}
	if err := s.CreateUser(ctx, &store.User{Name: "dave", Role: "analyst", PasswordHash: "h"}); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListUsers(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "carol" || list[1].Name != "dave" {
		t.Fatalf("list users = %v, %v", list, err)
	}
	c := &store.Collection{Title: "c", Readers: []string{"dave"}}
	if err := s.CreateCollection(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, "dave"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUser(ctx, "dave"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted user: %v", err)
	}
	c2, err := s.GetCollection(ctx, c.ID)
	if err != nil || len(c2.Readers) != 0 {
		t.Errorf("grants of deleted user remain: %+v %v", c2, err)
	}
	if err := s.DeleteUser(ctx, "dave"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete twice: %v", err)
	}
}

func testTokens(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.CreateUser(ctx, &store.User{Name: "erin", Role: "analyst", PasswordHash: "h"}); err != nil {
		t.Fatal(err)
	}
	exp := base.Add(time.Hour)
	tok := &store.Token{User: "erin", Hash: "abc", Role: "analyst", Expires: exp}
	if err := s.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(ctx, &store.Token{User: "nobody", Hash: "def"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("token for unknown user: %v", err)
	}
	got, err := s.TokenByHash(ctx, "abc")
	if err != nil || got.User != "erin" || !got.Expires.Equal(exp) || got.Revoked {
		t.Fatalf("token = %+v, %v", got, err)
	}
	if err := s.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	got, _ = s.TokenByHash(ctx, "abc")
	if !got.Revoked {
		t.Error("token not revoked")
	}
	if _, err := s.TokenByHash(ctx, "zzz"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown token: %v", err)
	}
	list, err := s.ListTokens(ctx, "erin")
	if err != nil || len(list) != 1 {
		t.Errorf("list tokens = %v, %v", list, err)
	}
	if err := s.DeleteUser(ctx, "erin"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TokenByHash(ctx, "abc"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("token of deleted user still found: %v", err)
	}
}

func testAddAndGet(t *testing.T, s store.Store) {
	cid := newCollection(t, s)
	id := "indicator--" + uuid.NewString()
	// Odd spacing and key order must survive: objects are kept byte for byte.
	raw := []byte(`{"type":"indicator",  "id":"` + id + `","spec_version":"2.1","modified":"2024-01-02T00:00:00.000Z","created":"2024-01-01T00:00:00Z","x_z":{"b":1,"a":2},"pattern":"[x:y = 'z']","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z"}`)
	res := mustAdd(t, s, cid, raw)
	if res[0].Err != nil || res[0].Duplicate || res[0].Version != "2024-01-02T00:00:00.000Z" {
		t.Fatalf("result = %+v", res[0])
	}
	p := query(t, s, cid, store.Query{WithBody: true})
	if len(p.Entries) != 1 || p.More {
		t.Fatalf("page = %+v", p)
	}
	e := p.Entries[0]
	if string(e.Raw) != string(raw) {
		t.Errorf("body changed:\n got %s\nwant %s", e.Raw, raw)
	}
	if e.ID != id || e.Type != "indicator" || e.SpecVersion != "2.1" || e.VersionRaw != "2024-01-02T00:00:00.000Z" || e.DateAdded.IsZero() {
		t.Errorf("entry = %+v", e)
	}
	if e.DateAdded.Nanosecond()%1000 != 0 {
		t.Errorf("date_added %v has sub-microsecond digits; TAXII timestamps are microseconds", e.DateAdded)
	}
	p = query(t, s, cid, store.Query{})
	if p.Entries[0].Raw != nil {
		t.Error("body loaded without WithBody")
	}
}

func testDuplicates(t *testing.T, s store.Store) {
	cid := newCollection(t, s)
	id := "indicator--" + uuid.NewString()
	raw := Indicator(id, base, base)
	mustAdd(t, s, cid, raw)
	// The same object again, also re-serialised with other spacing.
	res := mustAdd(t, s, cid, raw, append([]byte(" "), raw...))
	for i, r := range res {
		if !r.Duplicate || r.Err != nil {
			t.Errorf("re-add %d: %+v, want duplicate", i, r)
		}
	}
	other := []byte(string(Indicator(id, base, base)[:len(raw)-1]) + `,"name":"different"}`)
	res = mustAdd(t, s, cid, other)
	if !errors.Is(res[0].Err, store.ErrConflict) {
		t.Errorf("same version, other content: %+v, want ErrConflict", res[0])
	}
	if n := len(query(t, s, cid, store.Query{Versions: store.VersionFilter{All: true}}).Entries); n != 1 {
		t.Errorf("%d versions stored, want 1", n)
	}
	// The same object in another collection is its own entry.
	cid2 := newCollection(t, s)
	if res := mustAdd(t, s, cid2, raw); res[0].Duplicate {
		t.Error("object in another collection counted as duplicate")
	}
}

func testUnversioned(t *testing.T, s store.Store) {
	cid := newCollection(t, s)
	id := "ipv4-addr--" + uuid.NewString()
	a := []byte(`{"type":"ipv4-addr","id":"` + id + `","value":"10.0.0.1"}`)
	b := []byte(`{"type":"ipv4-addr","id":"` + id + `","value":"10.0.0.1","x_note":"seen"}`)
	r1 := mustAdd(t, s, cid, a)
	r2 := mustAdd(t, s, cid, a)
	if !r2[0].Duplicate || r2[0].Version != r1[0].Version || r1[0].Version == "" {
		t.Errorf("identical unversioned object: first %+v then %+v", r1[0], r2[0])
	}
	r3 := mustAdd(t, s, cid, b)
	if r3[0].Duplicate || r3[0].Err != nil {
		t.Errorf("changed unversioned object: %+v", r3[0])
	}
	p := query(t, s, cid, store.Query{Versions: store.VersionFilter{All: true}})
	if len(p.Entries) != 2 || p.Entries[0].SpecVersion != "2.1" {
		t.Fatalf("versions = %+v", p.Entries)
	}
	last := query(t, s, cid, store.Query{WithBody: true})
	if len(last.Entries) != 1 || string(last.Entries[0].Raw) != string(b) {
		t.Errorf("latest unversioned = %+v", last.Entries)
	}
}

func testVersionFilters(t *testing.T, s store.Store) {
	cid := newCollection(t, s)
	a := "indicator--" + uuid.NewString()
	b := "malware--" + uuid.NewString()
	t1, t2, t3 := base, base.Add(time.Hour), base.Add(2*time.Hour)
	// Added out of version order: version filters follow modified, not date_added.
	mustAdd(t, s, cid, Indicator(a, t1, t2))
	mustAdd(t, s, cid, Indicator(a, t1, t1), Indicator(a, t1, t3))
	mustAdd(t, s, cid, []byte(`{"type":"malware","spec_version":"2.1","id":"`+b+`","created":"2024-03-01T12:00:00.000Z","modified":"2024-03-01T12:00:00.000Z","name":"m","is_family":false}`))
	f := func(ts time.Time) string { return ts.Format("2006-01-02T15:04:05.000Z") }
	cases := []struct {
		name string
		vf   store.VersionFilter
		want []string
	}{
		{"default is last", store.VersionFilter{}, []string{a + "@" + f(t3), b + "@" + f(t1)}},
		{"last", store.VersionFilter{Last: true}, []string{a + "@" + f(t3), b + "@" + f(t1)}},
		{"first", store.VersionFilter{First: true}, []string{a + "@" + f(t1), b + "@" + f(t1)}},
		{"all in date_added order", store.VersionFilter{All: true}, []string{a + "@" + f(t2), a + "@" + f(t1), a + "@" + f(t3), b + "@" + f(t1)}},
		{"first,last", store.VersionFilter{First: true, Last: true}, []string{a + "@" + f(t1), a + "@" + f(t3), b + "@" + f(t1)}},
		{"exact", store.VersionFilter{Exact: []time.Time{t2}}, []string{a + "@" + f(t2)}},
		{"exact two", store.VersionFilter{Exact: []time.Time{t2, t1}}, []string{a + "@" + f(t2), a + "@" + f(t1), b + "@" + f(t1)}},
		{"exact matches instants not strings", store.VersionFilter{Exact: []time.Time{t2.Add(0)}}, []string{a + "@" + f(t2)}},
		{"exact none", store.VersionFilter{Exact: []time.Time{t3.Add(time.Millisecond)}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			eq(t, "versions", versions(query(t, s, cid, store.Query{Versions: tc.vf})), tc.want)
		})
	}
}

func testFilters(t *testing.T, s store.Store) {
	cid := newCollection(t, s)
	ind := "indicator--" + uuid.NewString()
	ind2 := "indicator--" + uuid.NewString()
	mal := "malware--" + uuid.NewString()
	mustAdd(t, s, cid, Indicator(ind, base, base), Indicator(ind2, base, base),
		[]byte(`{"type":"malware","spec_version":"2.1","id":"`+mal+`","created":"2024-03-01T12:00:00.000Z","modified":"2024-03-01T12:00:00.000Z","name":"m","is_family":true}`))
	ids := func(q store.Query) []string {
		var out []string
		for _, e := range query(t, s, cid, q).Entries {
			out = append(out, e.ID)
		}
		return out
	}
	eq(t, "type", ids(store.Query{Types: []string{"malware"}}), []string{mal})
	eq(t, "types ORed", ids(store.Query{Types: []string{"malware", "indicator"}}), []string{ind, ind2, mal})
	eq(t, "id", ids(store.Query{IDs: []string{ind2}}), []string{ind2})
	eq(t, "ids ORed", ids(store.Query{IDs: []string{mal, ind}}), []string{ind, mal})
	eq(t, "id AND type", ids(store.Query{IDs: []string{ind, mal}, Types: []string{"indicator"}}), []string{ind})
	eq(t, "spec_version 2.1", ids(store.Query{SpecVersions: []string{"2.1"}}), []string{ind, ind2, mal})
	eq(t, "spec_version 2.0", ids(store.Query{SpecVersions: []string{"2.0"}}), nil)
	eq(t, "unknown type", ids(store.Query{Types: []string{"x-unknown"}}), nil)
}

func testPagination(t *testing.T, s store.Store) {
	cid := newCollection(t, s)
	var want []string
	for batch := 0; batch < 5; batch++ {
		var raws [][]byte
		for i := 0; i < 7; i++ {
			id := "indicator--" + uuid.NewString()
			want = append(want, id)
			raws = append(raws, Indicator(id, base, base))
		}
		mustAdd(t, s, cid, raws...)
	}
	var got []string
	var after time.Time
	var last time.Time
	pages := 0
	for {
		p := query(t, s, cid, store.Query{AddedAfter: after, Limit: 4})
		pages++
		for _, e := range p.Entries {
			if !e.DateAdded.After(last) {
				t.Fatalf("date_added not strictly increasing: %v after %v", e.DateAdded, last)
			}
			last = e.DateAdded
			got = append(got, e.ID)
		}
		if len(p.Entries) > 4 {
			t.Fatalf("page of %d entries exceeds limit 4", len(p.Entries))
		}
		if !p.More {
			break
		}
		after = p.Entries[len(p.Entries)-1].DateAdded
	}
	eq(t, "all pages", got, want)
	if pages != 9 {
		t.Errorf("%d pages for 35 objects by 4, want 9", pages)
	}
	p := query(t, s, cid, store.Query{Limit: 35})
	if p.More || len(p.Entries) != 35 {
		t.Errorf("exact limit: %d entries, more=%v", len(p.Entries), p.More)
	}
}

// testConcurrent: several writers add objects while a reader pages through
// by added_after; the reader must see every object exactly once.
func testConcurrent(t *testing.T, s store.Store) {
	cid := newCollection(t, s)
	const writers, batches, per = 4, 15, 10
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; b < batches; b++ {
				objs := make([]store.Object, per)
				for i := range objs {
					objs[i] = Obj(t, Indicator("indicator--"+uuid.NewString(), base, base))
				}
				if _, err := s.AddObjects(ctx, cid, objs, nil); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	seen := map[string]int{}
	var after time.Time
	finished := false
	for {
		p, err := s.QueryObjects(ctx, cid, store.Query{AddedAfter: after, Limit: 7})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Entries {
			seen[e.ID]++
			after = e.DateAdded
		}
		if !p.More {
			if finished {
				break
			}
			select {
			case <-done:
				finished = true // one more pass after the last write
			default:
				time.Sleep(time.Millisecond)
			}
		}
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != writers*batches*per {
		t.Errorf("reader saw %d distinct objects, want %d", len(seen), writers*batches*per)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s seen %d times", id, n)
		}
	}
}

func testDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	cid := newCollection(t, s)
	a := "indicator--" + uuid.NewString()
	b := "indicator--" + uuid.NewString()
	t1, t2 := base, base.Add(time.Minute)
	mustAdd(t, s, cid, Indicator(a, t1, t1), Indicator(a, t1, t2), Indicator(b, t1, t1), Indicator(b, t1, t2))
	n, err := s.DeleteObject(ctx, cid, a, store.Query{})
	if err != nil || n != 2 {
		t.Fatalf("delete all versions: n=%d err=%v", n, err)
	}
	if got := query(t, s, cid, store.Query{IDs: []string{a}, Versions: store.VersionFilter{All: true}}); len(got.Entries) != 0 {
		t.Errorf("deleted object still there: %v", versions(got))
	}
	n, err = s.DeleteObject(ctx, cid, b, store.Query{Versions: store.VersionFilter{Exact: []time.Time{t2}}})
	if err != nil || n != 1 {
		t.Fatalf("delete one version: n=%d err=%v", n, err)
	}
	eq(t, "remaining", versions(query(t, s, cid, store.Query{Versions: store.VersionFilter{All: true}})), []string{b + "@" + t1.Format("2006-01-02T15:04:05.000Z")})
	// With its last version gone, the earlier one is what a default read serves.
	eq(t, "default after deleting the last version", versions(query(t, s, cid, store.Query{})), []string{b + "@" + t1.Format("2006-01-02T15:04:05.000Z")})
	if _, err := s.DeleteObject(ctx, cid, a, store.Query{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete again: %v", err)
	}
	// Re-adding a deleted object works and is not a duplicate.
	if r := mustAdd(t, s, cid, Indicator(a, t1, t1)); r[0].Duplicate || r[0].Err != nil {
		t.Errorf("re-add after delete: %+v", r[0])
	}
}

func testChangeLog(t *testing.T, s store.Store) {
	ctx := context.Background()
	cid := newCollection(t, s)
	a := "indicator--" + uuid.NewString()
	mustAdd(t, s, cid, Indicator(a, base, base))
	mustAdd(t, s, cid, Indicator(a, base, base)) // duplicate: no change
	mustAdd(t, s, cid, Indicator(a, base, base.Add(time.Second)))
	if _, err := s.DeleteObject(ctx, cid, a, store.Query{}); err != nil {
		t.Fatal(err)
	}
	ch, err := s.Changes(ctx, cid, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for i, c := range ch {
		if i > 0 && c.Seq <= ch[i-1].Seq {
			t.Errorf("seq not strictly increasing: %d after %d", c.Seq, ch[i-1].Seq)
		}
		if c.ObjectID != a || c.At.IsZero() {
			t.Errorf("change %+v", c)
		}
		ops = append(ops, string(c.Op)+" "+c.VersionRaw)
	}
	sort.Strings(ops[2:]) // the two tombstones come in one transaction
	eq(t, "ops", ops, []string{"add 2024-03-01T12:00:00.000Z", "add 2024-03-01T12:00:01.000Z", "delete 2024-03-01T12:00:00.000Z", "delete 2024-03-01T12:00:01.000Z"})
	rest, err := s.Changes(ctx, cid, ch[1].Seq, 1)
	if err != nil || len(rest) != 1 || rest[0].Seq != ch[2].Seq {
		t.Errorf("changes after %d limit 1 = %+v, %v", ch[1].Seq, rest, err)
	}
}

func testStatus(t *testing.T, s store.Store) {
	ctx := context.Background()
	cid := newCollection(t, s)
	id := "indicator--" + uuid.NewString()
	st := &store.Status{ID: uuid.NewString(), Owner: "alice", CollectionID: cid, RequestTimestamp: base, Complete: true, TotalCount: 2,
		Failures: []store.StatusDetail{{ID: "x--1", Version: "", Message: "bad"}}}
	if _, err := s.AddObjects(ctx, cid, []store.Object{Obj(t, Indicator(id, base, base))}, st); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetStatus(ctx, st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Owner != "alice" || !got.Complete || got.TotalCount != 2 || len(got.Successes) != 1 || got.Successes[0] != (store.StatusDetail{ID: id, Version: "2024-03-01T12:00:00.000Z"}) ||
		len(got.Failures) != 1 || got.Failures[0].Message != "bad" || len(got.Pendings) != 0 || !got.RequestTimestamp.Equal(base) {
		t.Errorf("status = %+v", got)
	}
	st2 := &store.Status{ID: uuid.NewString(), Owner: "bob", CollectionID: cid, RequestTimestamp: base}
	if err := s.SaveStatus(ctx, st2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetStatus(ctx, uuid.NewString()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown status: %v", err)
	}
}

func testNotFound(t *testing.T, s store.Store) {
	ctx := context.Background()
	missing := uuid.NewString()
	if _, err := s.AddObjects(ctx, missing, nil, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("add to missing collection: %v", err)
	}
	if _, err := s.QueryObjects(ctx, missing, store.Query{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("query missing collection: %v", err)
	}
	if _, err := s.DeleteObject(ctx, missing, "indicator--"+uuid.NewString(), store.Query{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete in missing collection: %v", err)
	}
	if _, err := s.Changes(ctx, missing, 0, 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("changes of missing collection: %v", err)
	}
	if _, err := s.GetCollection(ctx, "no-such-alias"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("get missing collection: %v", err)
	}
}
