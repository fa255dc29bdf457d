package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/store"
)

func testOrganisations(t *testing.T, s store.Store) {
	ctx := context.Background()
	o := &store.Organisation{Name: "Grid Operator", AnonymiseSightings: true}
	if err := s.CreateOrganisation(ctx, o); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(o.ID, "identity--") {
		t.Errorf("organisation id %q", o.ID)
	}
	if err := s.CreateOrganisation(ctx, &store.Organisation{Name: "Grid Operator"}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate name: %v", err)
	}
	for _, key := range []string{o.ID, "Grid Operator"} {
		got, err := s.GetOrganisation(ctx, key)
		if err != nil || got.ID != o.ID || !got.AnonymiseSightings || got.Default {
			t.Errorf("get %s = %+v, %v", key, got, err)
		}
	}
	list, err := s.ListOrganisations(ctx)
	if err != nil || len(list) != 2 || !list[0].Default {
		t.Fatalf("list = %+v, %v (want the default and one more)", list, err)
	}
	if err := s.CreateUser(ctx, &store.User{Name: "op", Role: "analyst", PasswordHash: "x", Organisation: o.ID}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, &store.User{Name: "ghost", Role: "analyst", PasswordHash: "x", Organisation: "identity--" + uuid.NewString()}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("user in unknown organisation: %v", err)
	}
	if err := s.DeleteOrganisation(ctx, o.ID); !errors.Is(err, store.ErrConflict) {
		t.Errorf("delete organisation with users: %v", err)
	}
	if err := s.DeleteOrganisation(ctx, list[0].ID); !errors.Is(err, store.ErrConflict) {
		t.Errorf("delete default organisation: %v", err)
	}
	if err := s.DeleteUser(ctx, "op"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteOrganisation(ctx, o.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetOrganisation(ctx, o.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted organisation: %v", err)
	}
}

func testGroupsAndGrants(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := &store.Organisation{Name: "A"}
	b := &store.Organisation{Name: "B"}
	for _, o := range []*store.Organisation{a, b} {
		if err := s.CreateOrganisation(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	g := &store.Group{Name: "energy", Orgs: []string{a.ID, b.ID}}
	if err := s.CreateGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateGroup(ctx, &store.Group{Name: "bad", Orgs: []string{"identity--" + uuid.NewString()}}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("group with unknown organisation: %v", err)
	}
	if err := s.CreateGroup(ctx, &store.Group{Name: "energy"}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate group: %v", err)
	}
	got, err := s.GetGroup(ctx, "energy")
	if err != nil || got.ID != g.ID || len(got.Orgs) != 2 {
		t.Fatalf("get group = %+v, %v", got, err)
	}
	ids, err := s.GroupsOf(ctx, a.ID)
	if err != nil || len(ids) != 1 || ids[0] != g.ID {
		t.Errorf("groups of A = %v, %v", ids, err)
	}
	c := &store.Collection{Title: "shared", Grants: []store.Grant{{Kind: store.GrantGroup, Subject: g.ID, Read: true}}, Recipients: []string{b.ID}}
	if err := s.CreateCollection(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPartyGrant(ctx, c.ID, store.GrantOrg, a.ID, true, true); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPartyGrant(ctx, c.ID, store.GrantOrg, "identity--"+uuid.NewString(), true, false); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("grant to unknown organisation: %v", err)
	}
	if err := s.SetPartyGrant(ctx, c.ID, "planet", a.ID, true, false); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("grant of unknown kind: %v", err)
	}
	col, err := s.GetCollection(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if col.DefaultTLP != 3 || len(col.Recipients) != 1 || col.Recipients[0] != b.ID || len(col.Grants) != 2 {
		t.Fatalf("collection = %+v", col)
	}
	if err := s.SetCollectionPolicy(ctx, c.ID, 2, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCollectionPolicy(ctx, c.ID, 9, nil); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("default TLP 9: %v", err)
	}
	if err := s.SetPartyGrant(ctx, c.ID, store.GrantOrg, a.ID, false, false); err != nil {
		t.Fatal(err)
	}
	list, _ := s.ListCollections(ctx)
	if len(list) != 1 || list[0].DefaultTLP != 2 || len(list[0].Recipients) != 0 || len(list[0].Grants) != 1 || list[0].Grants[0].Kind != store.GrantGroup {
		t.Errorf("after policy change and revoke: %+v", list[0])
	}
	if err := s.DeleteGroup(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	col, _ = s.GetCollection(ctx, c.ID)
	if len(col.Grants) != 0 {
		t.Errorf("grants of a deleted group remain: %+v", col.Grants)
	}
}

// testVisibility: Query.Visible hides entries without changing page sizes
// or the More flag, so pagination reveals nothing about hidden entries.
func testVisibility(t *testing.T, s store.Store) {
	ctx := context.Background()
	cid := newCollection(t, s)
	orgA, orgB := "identity--"+uuid.NewString(), "identity--"+uuid.NewString()
	var objs []store.Object
	var visible []string
	for i := 0; i < 40; i++ {
		o := Obj(t, Indicator("indicator--"+uuid.NewString(), base, base))
		o.Submitter, o.TLP = orgA, i%5+1
		if i%3 == 0 {
			o.Submitter = orgB
			o.Recipients = []string{orgA}
		}
		objs = append(objs, o)
		if o.TLP < 4 || o.Submitter == orgA {
			visible = append(visible, o.ID)
		}
	}
	if _, err := s.AddObjects(ctx, cid, objs, nil); err != nil {
		t.Fatal(err)
	}
	all := query(t, s, cid, store.Query{Limit: 100})
	for i, e := range all.Entries {
		if e.Submitter != objs[i].Submitter || e.TLP != objs[i].TLP || strings.Join(e.Recipients, ",") != strings.Join(objs[i].Recipients, ",") {
			t.Fatalf("entry %d metadata = %q %d %v, want %q %d %v", i, e.Submitter, e.TLP, e.Recipients, objs[i].Submitter, objs[i].TLP, objs[i].Recipients)
		}
	}
	vis := func(e *store.Entry) bool { return e.TLP < 4 || e.Submitter == orgA }
	var got []string
	var after time.Time
	for {
		p := query(t, s, cid, store.Query{AddedAfter: after, Limit: 3, Visible: vis})
		if p.More && len(p.Entries) != 3 {
			t.Fatalf("a page with more=true has %d entries, want 3", len(p.Entries))
		}
		for _, e := range p.Entries {
			if !vis(&e) {
				t.Fatalf("hidden entry %s served", e.ID)
			}
			got = append(got, e.ID)
		}
		if !p.More {
			break
		}
		after = p.Entries[len(p.Entries)-1].DateAdded
	}
	eq(t, "visible entries", got, visible)
	// Hidden entries after the last visible one must not make More true.
	p := query(t, s, cid, store.Query{Limit: len(visible), Visible: vis})
	if p.More || len(p.Entries) != len(visible) {
		t.Errorf("exactly all visible: %d entries, more=%v", len(p.Entries), p.More)
	}
	none := query(t, s, cid, store.Query{Limit: 5, Visible: func(*store.Entry) bool { return false }})
	if len(none.Entries) != 0 || none.More {
		t.Errorf("nothing visible: %+v", none)
	}
}

func testAudit(t *testing.T, s store.Store) {
	ctx := context.Background()
	recs := []store.AuditRecord{
		{Principal: "alice", Organisation: "identity--a", Action: "objects.add", Path: "/api/x/", Collection: "c1", Objects: []string{"indicator--1", "indicator--2"}},
		{Principal: "bob", Organisation: "identity--b", Action: "objects.read", Path: "/api/y/", Objects: []string{"indicator--2"}, Detail: "TLP:RED"},
		{Principal: "alice", Organisation: "identity--a", Action: "admin.user.create", Path: "/admin/users", Detail: "carol"},
	}
	if err := s.AppendAudit(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	all, err := s.ListAudit(ctx, store.AuditFilter{})
	// Newest first.
	if err != nil || len(all) != 3 || all[2].Principal != "alice" || all[1].Detail != "TLP:RED" || len(all[2].Objects) != 2 || all[2].At.IsZero() ||
		all[0].Action != "admin.user.create" || all[0].Seq <= all[1].Seq || all[1].Seq <= all[2].Seq {
		t.Fatalf("all = %+v, %v", all, err)
	}
	for _, tc := range []struct {
		f    store.AuditFilter
		want int
	}{
		{store.AuditFilter{Principal: "alice"}, 2},
		{store.AuditFilter{Action: "objects."}, 2},
		{store.AuditFilter{Action: "objects.read"}, 1},
		{store.AuditFilter{Object: "indicator--2"}, 2},
		{store.AuditFilter{Object: "indicator--1", Principal: "bob"}, 0},
		{store.AuditFilter{Since: time.Now().Add(time.Hour)}, 0},
		{store.AuditFilter{Limit: 1}, 1},
		{store.AuditFilter{Before: all[0].Seq}, 2},
		{store.AuditFilter{Before: all[2].Seq}, 0},
		{store.AuditFilter{Before: all[0].Seq, Principal: "alice"}, 1},
	} {
		got, err := s.ListAudit(ctx, tc.f)
		if err != nil || len(got) != tc.want {
			t.Errorf("filter %+v: %d records (%v), want %d", tc.f, len(got), err, tc.want)
		}
	}
}

// testBatches: AddBatches writes several batches in one transaction, with
// duplicates and newer versions across batches, and one status.
func testBatches(t *testing.T, s store.Store) {
	ctx := context.Background()
	cid := newCollection(t, s)
	a := "indicator--" + uuid.NewString()
	b := "indicator--" + uuid.NewString()
	t1, t2 := base, base.Add(time.Minute)
	batches := [][]store.Object{
		{Obj(t, Indicator(a, t1, t1)), Obj(t, Indicator(b, t1, t1))},
		{Obj(t, Indicator(a, t1, t2)), Obj(t, Indicator(b, t1, t1))}, // a: newer version; b: duplicate
		{},
		{Obj(t, Indicator(a, t1, t1))}, // duplicate of the first batch
	}
	st := &store.Status{ID: uuid.NewString(), Owner: "x", CollectionID: cid, RequestTimestamp: base, Complete: true, TotalCount: 5}
	res, err := s.AddBatches(ctx, cid, func(yield func([]store.Object) bool) {
		for _, b := range batches {
			if !yield(b) {
				return
			}
		}
	}, st)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 5 || res[0].Duplicate || res[2].Duplicate || !res[3].Duplicate || !res[4].Duplicate {
		t.Fatalf("results = %+v", res)
	}
	got, err := s.GetStatus(ctx, st.ID)
	if err != nil || len(got.Successes) != 5 {
		t.Fatalf("status = %+v, %v", got, err)
	}
	eq(t, "default read", versions(query(t, s, cid, store.Query{})), []string{b + "@" + t1.Format("2006-01-02T15:04:05.000Z"), a + "@" + t2.Format("2006-01-02T15:04:05.000Z")})
	all := query(t, s, cid, store.Query{Versions: store.VersionFilter{All: true}})
	for i := 1; i < len(all.Entries); i++ {
		if !all.Entries[i].DateAdded.After(all.Entries[i-1].DateAdded) {
			t.Errorf("date_added not increasing across batches")
		}
	}
	if _, err := s.AddBatches(ctx, uuid.NewString(), func(func([]store.Object) bool) {}, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("batches into a missing collection: %v", err)
	}
}
