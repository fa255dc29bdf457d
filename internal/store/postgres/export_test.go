package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/postgres/pgtest"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/mitra-cert/mitra/internal/store/storetest"
)

type copyable interface {
	store.Store
	store.Exporter
	store.Importer
}

// dump is everything a store holds, as its Exporter and list methods give it.
type dump struct {
	Counts        store.Counts
	Default       string
	Organisations []*store.Organisation
	Users         []*store.User
	Tokens        []*store.Token
	Groups        []*store.Group
	Collections   []store.CollectionRecord
	Objects       map[string][]store.ObjectRecord
	Changes       map[string][]store.Change
	Statuses      []*store.Status
	Audit         []store.AuditRecord
	Owners        []store.OwnerRecord
	Cursors       []store.CursorRecord
}

func dumpStore(t *testing.T, s copyable) dump {
	t.Helper()
	ctx := context.Background()
	d := dump{Objects: map[string][]store.ObjectRecord{}, Changes: map[string][]store.Change{}}
	var err error
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	d.Counts, err = s.Counts(ctx)
	must(err)
	org, err := s.DefaultOrganisation(ctx)
	must(err)
	d.Default = org.ID
	d.Organisations, err = s.ListOrganisations(ctx)
	must(err)
	d.Users, err = s.ListUsers(ctx)
	must(err)
	d.Tokens, err = s.ListTokens(ctx, "")
	must(err)
	d.Groups, err = s.ListGroups(ctx)
	must(err)
	d.Collections, err = s.ExportCollections(ctx)
	must(err)
	for _, c := range d.Collections {
		must(s.ExportObjects(ctx, c.ID, func(objs []store.ObjectRecord) error {
			d.Objects[c.ID] = append(d.Objects[c.ID], objs...)
			return nil
		}))
		must(store.ExportChanges(ctx, s, c.ID, func(chs []store.Change) error {
			d.Changes[c.ID] = append(d.Changes[c.ID], chs...)
			return nil
		}))
	}
	must(s.ExportStatuses(ctx, func(sts []*store.Status) error {
		d.Statuses = append(d.Statuses, sts...)
		return nil
	}))
	must(s.ExportAudit(ctx, func(recs []store.AuditRecord) error {
		d.Audit = append(d.Audit, recs...)
		return nil
	}))
	must(s.ExportOwners(ctx, func(owners []store.OwnerRecord) error {
		d.Owners = append(d.Owners, owners...)
		return nil
	}))
	must(s.ExportCursors(ctx, func(cursors []store.CursorRecord) error {
		d.Cursors = append(d.Cursors, cursors...)
		return nil
	}))
	return d
}

// populate fills s with some of everything, including what only a copy
// row for row keeps: deleted versions (the change log's tombstones and a
// high-water mark above the remaining rows), several versions per object,
// unversioned objects, revoked tokens.
func populate(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	org := &store.Organisation{Name: "Grid Operator", AnonymiseSightings: true}
	must(s.CreateOrganisation(ctx, org))
	must(s.CreateUser(ctx, &store.User{Name: "alice", Role: "analyst", PasswordHash: "$2a$h1"}))
	must(s.CreateUser(ctx, &store.User{Name: "bob", Role: "admin", PasswordHash: "$2a$h2", Organisation: org.ID}))
	must(s.CreateToken(ctx, &store.Token{User: "alice", Hash: "hash-1", Role: "analyst", Expires: time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)}))
	tok := &store.Token{User: "bob", Hash: "hash-2", Role: "admin"}
	must(s.CreateToken(ctx, tok))
	must(s.RevokeToken(ctx, tok.ID))
	g := &store.Group{Name: "energy", Orgs: []string{org.ID}}
	must(s.CreateGroup(ctx, g))
	must(s.CreateGroup(ctx, &store.Group{Name: "empty"}))
	c1 := &store.Collection{Title: "One", Description: "d", Alias: "one", Readers: []string{"alice", "bob"}, Writers: []string{"alice"},
		Grants:     []store.Grant{{Kind: store.GrantGroup, Subject: g.ID, Read: true}, {Kind: store.GrantOrg, Subject: org.ID, Read: true, Write: true}},
		Recipients: []string{org.ID}, DefaultTLP: 2}
	must(s.CreateCollection(ctx, c1))
	c2 := &store.Collection{Title: "Two"}
	must(s.CreateCollection(ctx, c2))
	base := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	a := "indicator--" + uuid.NewString()
	var objs []store.Object
	for i := 0; i < 2500; i++ {
		o := storetest.Obj(t, storetest.Indicator("indicator--"+uuid.NewString(), base, base))
		o.Submitter, o.TLP = org.ID, i%5
		if i%7 == 0 {
			o.Recipients = []string{org.ID, "identity--" + uuid.NewString()}
		}
		objs = append(objs, o)
	}
	objs = append(objs, storetest.Obj(t, storetest.Indicator(a, base, base)), storetest.Obj(t, storetest.Indicator(a, base, base.Add(time.Hour))))
	objs = append(objs, storetest.Obj(t, []byte(`{"type":"ipv4-addr","id":"ipv4-addr--`+uuid.NewString()+`","value":"10.0.0.1"}`)))
	st := &store.Status{ID: uuid.NewString(), Owner: "alice", CollectionID: c1.ID, RequestTimestamp: base, Complete: true, TotalCount: len(objs)}
	_, err := s.AddObjects(ctx, c1.ID, objs, st)
	must(err)
	last := "indicator--" + uuid.NewString()
	_, err = s.AddObjects(ctx, c1.ID, []store.Object{storetest.Obj(t, storetest.Indicator(last, base, base))}, nil)
	must(err)
	_, err = s.DeleteObject(ctx, c1.ID, last, store.Query{})
	must(err)
	_, err = s.DeleteObject(ctx, c1.ID, a, store.Query{Versions: store.VersionFilter{Exact: []time.Time{base.Add(time.Hour)}}})
	must(err)
	_, err = s.AddObjects(ctx, c2.ID, []store.Object{storetest.Obj(t, storetest.Indicator(a, base, base))}, nil)
	must(err)
	must(s.SaveStatus(ctx, &store.Status{ID: uuid.NewString(), Owner: "bob", CollectionID: c2.ID, RequestTimestamp: base,
		Pendings: []store.StatusDetail{{ID: a, Version: "v"}}}))
	must(s.AppendAudit(ctx,
		store.AuditRecord{Principal: "alice", Organisation: org.ID, Action: "objects.add", Path: "/api/x/", Collection: c1.ID, Objects: []string{a}},
		store.AuditRecord{Principal: "bob", Action: "admin.user.create", Path: "/admin/users", Detail: "carol"}))
	must(s.Update(ctx, c2.ID, func(ctx context.Context, tx store.Tx) error {
		if err := tx.SetCursor(ctx, "detect/x/stream", []byte(`{"pos":7}`)); err != nil {
			return err
		}
		return tx.SetCursor(ctx, "federation/peer", []byte{})
	}))
}

func compareDumps(t *testing.T, what string, got, want dump) {
	t.Helper()
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := 0; i < g.NumField(); i++ {
		if !reflect.DeepEqual(g.Field(i).Interface(), w.Field(i).Interface()) {
			t.Errorf("%s: %s differ:\n got %s\nwant %s", what, g.Type().Field(i).Name, short(g.Field(i).Interface()), short(w.Field(i).Interface()))
		}
	}
}

func short(v any) string {
	s := fmt.Sprintf("%+v", v)
	if len(s) > 2000 {
		s = s[:2000] + "..."
	}
	return s
}

// TestCopyBothWays copies a populated SQLite store to PostgreSQL and that
// copy to a new SQLite store: all three hold the same rows, and new objects
// in a copy come after every date_added the original handed out.
func TestCopyBothWays(t *testing.T) {
	ctx := context.Background()
	src, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	populate(t, src)
	want := dumpStore(t, src)
	if want.Counts.Objects < 2500 || want.Counts.Changes <= want.Counts.Objects || want.Counts.Audit != 2 || want.Counts.Owners < 2500 || want.Counts.Cursors != 2 {
		t.Fatalf("populate made %+v", want.Counts)
	}

	pg := openDSN(t, pgtest.NewSchema(t))
	var copied int64
	if err := store.Copy(ctx, pg, src, func(n int64) { copied += n }); err != nil {
		t.Fatal(err)
	}
	if copied != want.Counts.Total() {
		t.Errorf("progress reported %d rows, want %d", copied, want.Counts.Total())
	}
	compareDumps(t, "sqlite to postgres", dumpStore(t, pg), want)

	back, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if err := store.Copy(ctx, back, pg, nil); err != nil {
		t.Fatal(err)
	}
	compareDumps(t, "postgres to sqlite", dumpStore(t, back), want)

	if err := store.Copy(ctx, pg, src, nil); !errors.Is(err, store.ErrNotEmpty) {
		t.Errorf("copy into a non-empty store: %v, want ErrNotEmpty", err)
	}

	// The copy goes on where the original stopped.
	c1 := want.Collections[0]
	for _, s := range []copyable{pg, back} {
		res, err := s.AddObjects(ctx, c1.ID, []store.Object{storetest.Obj(t, storetest.Indicator("indicator--"+uuid.NewString(), c1.Created, c1.Created))}, nil)
		if err != nil || res[0].Err != nil {
			t.Fatal(err, res)
		}
		p, err := s.QueryObjects(ctx, c1.ID, store.Query{AddedAfter: c1.LastAdded})
		if err != nil || len(p.Entries) != 1 {
			t.Fatalf("objects after the original's last date_added: %+v, %v", p, err)
		}
		ch, err := s.Changes(ctx, c1.ID, c1.LastSeq, 0)
		if err != nil || len(ch) != 1 || ch[0].Seq != c1.LastSeq+1 {
			t.Errorf("change log after the copy: %+v, %v", ch, err)
		}
		if err := s.AppendAudit(ctx, store.AuditRecord{Principal: "alice", Action: "objects.read", Path: "/"}); err != nil {
			t.Fatal(err)
		}
		recs, err := s.ListAudit(ctx, store.AuditFilter{})
		if err != nil || len(recs) != 3 || recs[0].Seq <= recs[1].Seq || recs[0].Principal != "alice" {
			t.Errorf("audit after the copy: %+v, %v", recs, err)
		}
		if _, err := s.GetStatus(ctx, want.Statuses[0].ID); err != nil {
			t.Error(err)
		}
	}
}
