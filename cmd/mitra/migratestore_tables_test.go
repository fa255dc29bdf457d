package main

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/postgres"
	"github.com/mitra-cert/mitra/internal/store/postgres/pgtest"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/mitra-cert/mitra/internal/store/sqlstore"
	"github.com/mitra-cert/mitra/internal/store/storetest"
)

// knownTables is every table of the schema but the derived ones
// (sqlstore.Derived: the search index, rebuilt by the target, and
// schema_migrations; SQLite lists no virtual tables, and keeps its search
// index in a file of its own, mitra-search.db, whose tables search_text,
// search_refs, search_docs and search_pos are rebuilt from the objects
// and never copied). A
// migration that adds a table makes TestMigrateStoreEveryTable fail until
// the table is named here and filled by fillEveryTable, so that its copy
// is proven, or named in sqlstore.Derived with the reason it needs no
// copy.
var knownTables = []string{
	"assist_deliveries", "audit", "changes", "collections", "console_prefs", "console_sessions", "cursors",
	"grants", "group_members", "groups_", "import_feeds", "inactive_objects", "incident_alerts", "incident_events",
	"incident_stages", "incidents", "notify_deliveries", "objects", "organisations", "owners",
	"party_grants", "peer_leases", "peer_links", "peer_rejections", "peers", "poc_challenges", "provenance_deliveries",
	"provenance_ranges", "provenance_versions", "statuses", "tokens", "users", "warning_lists",
}

// fillEveryTable writes at least one row into every table of s through the
// store's own methods, and returns the collection's id.
func fillEveryTable(t *testing.T, s *sqlite.Store) string {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	org := &store.Organisation{Name: "CERT-X"}
	must(s.CreateOrganisation(ctx, org))
	must(s.CreateUser(ctx, &store.User{Name: "alice", Organisation: org.ID, Role: "analyst", PasswordHash: "h"}))
	must(s.CreateToken(ctx, &store.Token{User: "alice", Hash: "th", Role: "analyst"}))
	g := &store.Group{Name: "region", Orgs: []string{org.ID}}
	must(s.CreateGroup(ctx, g))
	c := &store.Collection{Title: "Shared", Alias: "shared", Readers: []string{"alice"}, Writers: []string{"alice"},
		Grants: []store.Grant{{Kind: store.GrantGroup, Subject: g.ID, Read: true}}}
	must(s.CreateCollection(ctx, c))

	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var objs []store.Object
	for i := range 30 {
		o := storetest.Obj(t, storetest.Indicator("indicator--"+uuid.NewString(), base, base.Add(time.Duration(i)*time.Minute)))
		o.Submitter = org.ID
		objs = append(objs, o)
	}
	st := &store.Status{ID: uuid.NewString(), Owner: "alice", CollectionID: c.ID, RequestTimestamp: base, Complete: true, TotalCount: len(objs)}
	_, err := s.AddObjects(ctx, c.ID, objs, st)
	must(err)
	_, err = s.DeleteObject(ctx, c.ID, objs[3].ID, store.Query{})
	must(err)
	must(s.AppendAudit(ctx, store.AuditRecord{Principal: "alice", Action: "objects.add", Path: "/api/", Objects: []string{objs[0].ID}}))

	// Federation: a peer, its link with a status, a lease, and what a pull
	// commits with its objects (provenance, rejections, the link's cursor).
	must(s.CreatePeer(ctx, &store.Peer{Name: "cert-y", URL: "https://y.example/taxii2/", Organisation: org.ID, User: "mirror", Secret: []byte{0, 1, 2, 255}}))
	link := &store.Link{ID: "cert-y-pull", Peer: "cert-y", Direction: store.LinkPull, Local: c.ID, Remote: uuid.NewString(), Interval: time.Minute}
	must(s.AddLink(ctx, link))
	must(s.SetLinkStatus(ctx, link.ID, store.LinkStatus{At: base, Err: "timeout", LagObjects: 4, Lag: time.Second, Synced: 9}))
	ok, err := s.TakeLease(ctx, link.ID, "node-1", time.Hour)
	if err != nil || !ok {
		t.Fatalf("lease: %v %v", ok, err)
	}
	pulled := storetest.Obj(t, storetest.Indicator("indicator--"+uuid.NewString(), base, base))
	must(s.Update(ctx, c.ID, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.Add(ctx, []store.Object{pulled}); err != nil {
			return err
		}
		ftx := tx.(store.FederationTx)
		// The pulled version is named by its date_added
		// (provenance_ranges), one the transaction did not add by id
		// (provenance_versions).
		if err := ftx.RecordProvenance(ctx, []store.Provenance{{ObjectID: pulled.ID, Version: pulled.VersionRaw, Link: link.ID, Peer: "cert-y", Received: base},
			{ObjectID: objs[0].ID, Version: objs[0].VersionRaw, Link: link.ID, Peer: "cert-y", Received: base}}); err != nil {
			return err
		}
		if err := ftx.RecordRejections(ctx, []store.Rejection{{Link: link.ID, Peer: "cert-y", Kind: "invalid", ObjectID: "malware--x", Version: "v", Reason: "bad", At: base}}); err != nil {
			return err
		}
		if err := tx.(store.ImportTx).FlagInactive(ctx, []store.InactiveFlag{{ObjectID: objs[0].ID, Collection: c.ID, List: "rfc1918", Value: "10.0.0.1", Reason: "private address", At: base}}); err != nil {
			return err
		}
		return tx.SetCursor(ctx, "federation/"+link.ID, []byte(`{"added_after":"2025-01-01T00:00:00Z"}`))
	}))

	// Incidents with their stages, events, an alert and queued
	// notifications.
	inc := &store.IncidentRecord{ID: "incident--" + uuid.NewString(), Collection: c.ID, Regime: "nis2", RegimeDef: []byte(`{"stages":[]}`),
		Reporter: org.ID, CERT: org.ID, Name: "outage", State: "reported", AwareAt: base, Reported: base, Updated: base}
	note := func(ev string) store.Notification {
		return store.Notification{ID: uuid.NewString(), Channel: "webhook", Target: "https://hooks.example/", Event: ev,
			Body: []byte(`{"e":"` + ev + `"}`), Organisation: org.ID, State: store.NotificationPending, NextAttempt: base, Created: base}
	}
	must(s.CreateIncident(ctx, inc, store.IncidentEvent{Incident: inc.ID, At: base, User: "alice", Organisation: org.ID, Kind: "reported"},
		[]store.StageMet{{Incident: inc.ID, Stage: "early-warning", At: base, User: "alice", Organisation: org.ID}},
		[]store.Notification{note("incident.reported")}))
	if ok, err := s.ClaimAlert(ctx, store.Alert{Incident: inc.ID, Stage: "notification", Kind: "overdue", At: base}, []store.Notification{note("stage.overdue")}); err != nil || !ok {
		t.Fatalf("alert: %v %v", ok, err)
	}

	// Assistance: a queued delivery and a point-of-contact challenge.
	must(s.EnqueueDelivery(ctx, &store.Delivery{Label: "req-1", Collection: c.ID, Objects: []string{objs[1].ID}, Route: "peer:cert-y", RemoteCollection: "rc"}))
	must(s.CreateChallenge(ctx, &store.Challenge{ID: uuid.NewString(), Contact: "poc@y.example", Channel: "email", Sent: base}))

	// Imports: a feed and a warning list (the inactive flag is above).
	must(s.CreateImportFeed(ctx, &store.ImportFeed{Name: "abuse", URL: "https://feeds.example/list.csv", Format: "csv", Collection: c.ID,
		User: "alice", Organisation: org.ID, Options: []byte(`{"column":1}`), Interval: time.Hour}))
	must(s.PutWarningList(ctx, &store.WarningList{Name: "rfc1918", Kind: "cidr", Description: "private", Entries: []string{"10.0.0.0/8"}, Updated: base}))

	// Console: a session and a language preference.
	must(s.CreateSession(ctx, &store.Session{Hash: "sess-hash", User: "alice", CSRF: "csrf", Credential: "cred", Expires: base.Add(24 * time.Hour)}))
	must(s.SetUserLanguage(ctx, "alice", "fr"))
	return c.ID
}

// dumpTables reads every table of s but the derived ones: rows in key
// order, objects without their rid (the target numbers its rows itself).
func dumpTables(t *testing.T, s *sqlstore.Store) map[string][][]any {
	t.Helper()
	ctx := context.Background()
	ts, err := s.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][][]any{}
	for _, tb := range ts {
		if sqlstore.Derived[tb.Name] {
			continue
		}
		var rows [][]any
		cols, err := s.ReadTable(ctx, tb.Name, func(page [][]any) error {
			rows = append(rows, page...)
			return nil
		})
		if err != nil {
			t.Fatalf("read %s: %v", tb.Name, err)
		}
		if tb.Name == "objects" {
			rid := slices.Index(cols, "rid")
			for i, r := range rows {
				rows[i] = slices.Delete(slices.Clone(r), rid, rid+1)
			}
			// Without rid, objects come in (cid, date_added) order.
			sort.Slice(rows, func(i, j int) bool { return rowLess(rows[i], rows[j]) })
		}
		out[tb.Name] = rows
	}
	return out
}

func rowLess(a, b []any) bool {
	for i := range a {
		x, y := a[i], b[i]
		switch xv := x.(type) {
		case int64:
			if yv := y.(int64); xv != yv {
				return xv < yv
			}
		case string:
			if yv := y.(string); xv != yv {
				return xv < yv
			}
		}
	}
	return false
}

func tableNames(t *testing.T, s *sqlstore.Store) []string {
	t.Helper()
	ts, err := s.Tables(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tb := range ts {
		if !sqlstore.Derived[tb.Name] {
			names = append(names, tb.Name)
		}
	}
	return names
}

// TestMigrateStoreEveryTable fills a SQLite store in every table, copies
// it to PostgreSQL and from there to a fresh SQLite store, and finds every
// row again.
func TestMigrateStoreEveryTable(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewSchema(t)
	a, b := t.TempDir(), t.TempDir()
	src, err := sqlite.Open(ctx, a, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	col := fillEveryTable(t, src)
	if got := tableNames(t, src.SQLStore()); !slices.Equal(got, knownTables) {
		t.Fatalf("SQLite tables %v\nwant %v: name a new table in knownTables and fill it in fillEveryTable (or mark it derived)", got, knownTables)
	}
	want := dumpTables(t, src.SQLStore())
	for name, rows := range want {
		if len(rows) == 0 {
			t.Errorf("table %s is empty in the source: fillEveryTable must write to it", name)
		}
	}
	wantPeers, _ := src.ListPeers(ctx)
	src.Close()

	out, errOut, err := mitra(t, nil, "", "migrate-store", "--from", "sqlite:"+a, "--to", dsn)
	if err != nil {
		t.Fatalf("migrate-store to PostgreSQL: %v\n%s", err, errOut)
	}
	t.Logf("to PostgreSQL: %s", out)
	if !strings.Contains(out, "verified their counts and checksums") || !strings.Contains(out, "peer_links 1") || !strings.Contains(out, "notify_deliveries 2") {
		t.Errorf("summary: %q", out)
	}
	pg, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := tableNames(t, pg.SQLStore()); !slices.Equal(got, knownTables) {
		t.Errorf("PostgreSQL tables %v\nwant %v", got, knownTables)
	}
	if ps, _ := pg.ListPeers(ctx); !reflect.DeepEqual(ps, wantPeers) {
		t.Errorf("peers on PostgreSQL: %+v, want %+v", ps, wantPeers)
	}
	// Identity counters go on after the copied rows.
	if err := pg.EnqueueDelivery(ctx, &store.Delivery{Label: "req-2", Collection: "c", Objects: []string{"x--1"}, Route: "r"}); err != nil {
		t.Errorf("a new delivery after the copy: %v", err)
	}
	pg.Close()

	if out, errOut, err = mitra(t, nil, "", "migrate-store", "--from", dsn, "--to", "sqlite:"+b); err != nil {
		t.Fatalf("migrate-store back to SQLite: %v\n%s", err, errOut)
	}
	t.Logf("back to SQLite: %s", out)
	back, err := sqlite.Open(ctx, b, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := dumpTables(t, back.SQLStore())
	for name, rows := range want {
		g := got[name]
		if name == "assist_deliveries" && len(g) == len(rows)+1 {
			g = g[:len(rows)] // the delivery added on PostgreSQL
		}
		if !reflect.DeepEqual(g, rows) {
			t.Errorf("table %s after SQLite → PostgreSQL → SQLite:\n got %v\nwant %v", name, g, rows)
		}
	}
	if ps, _ := back.ListPeers(ctx); !reflect.DeepEqual(ps, wantPeers) {
		t.Errorf("peers after the round trip: %+v, want %+v", ps, wantPeers)
	}
	// The search index was rebuilt by the target (SQLite's indexer).
	r := &store.Reader{Collections: []store.ReadableCollection{{ID: col, DefaultTLP: 1}}}
	if hits, err := back.SearchText(ctx, r, store.TextQuery{Text: "addr", Limit: 100}); err != nil || len(hits) != 30 {
		t.Errorf("search after the round trip: %d hits, %v", len(hits), err)
	}
	back.Close()

	// A server on the copy serves the objects and peers a server on the
	// original serves.
	bin, err := buildMitra()
	if err != nil {
		t.Fatal(err)
	}
	var views [2]struct {
		objects []string
		peers   []byte
	}
	for i, dir := range []string{a, b} {
		if _, errOut, err := mitra(t, map[string]string{"MITRA_USER_PASSWORD": "alice-password-1"}, "", "user", "passwd", "--data", dir, "alice"); err != nil {
			t.Fatalf("user passwd: %v\n%s", err, errOut)
		}
		p := startServer(t, bin, dir)
		views[i].objects = (&client{t: t, base: p.base, user: "alice", pass: "alice-password-1"}).readAll(col, true)
		c := &client{t: t, base: p.base, user: "admin", pass: "admin-password-1"}
		code, _, body := c.do("GET", "/admin/peers", nil)
		if code != 200 {
			t.Fatalf("GET /admin/peers: %d %s", code, body)
		}
		var ps []struct {
			Name, URL, Organisation string
			Created                 time.Time
			Links                   []struct{ ID, Direction, Local, Remote, Interval string }
		}
		if err := json.Unmarshal(body, &ps); err != nil {
			t.Fatal(err)
		}
		views[i].peers, _ = json.Marshal(ps)
		p.cmd.Process.Kill()
		<-p.done
	}
	if len(views[0].objects) < 30 || !slices.Equal(views[0].objects, views[1].objects) {
		t.Errorf("objects served: original %v, copy %v", views[0].objects, views[1].objects)
	}
	if !strings.Contains(string(views[0].peers), "cert-y-pull") || string(views[0].peers) != string(views[1].peers) {
		t.Errorf("peers served: original %s, copy %s", views[0].peers, views[1].peers)
	}
}

// TestMigrateStoreRefusesNonEmptyTables: a target that holds rows in a
// table only the generic copier knows is refused before anything is
// written.
func TestMigrateStoreRefusesNonEmptyTables(t *testing.T) {
	ctx := context.Background()
	a, b := t.TempDir(), t.TempDir()
	src, err := sqlite.Open(ctx, a, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fillEveryTable(t, src)
	src.Close()
	dst, err := sqlite.Open(ctx, b, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.PutWarningList(ctx, &store.WarningList{Name: "l", Kind: "cidr", Entries: []string{"10.0.0.0/8"}, Updated: time.Now()}); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	_, errOut, err := mitra(t, nil, "", "migrate-store", "--from", "sqlite:"+a, "--to", "sqlite:"+b)
	if err == nil || !strings.Contains(err.Error(), "warning_lists holds 1 rows") {
		t.Fatalf("migrate-store into a target with a warning list: %v\n%s", err, errOut)
	}
	dst, err = sqlite.Open(ctx, b, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if us, _ := dst.ListUsers(ctx); len(us) != 0 {
		t.Errorf("the refused copy wrote users: %+v", us)
	}
}
