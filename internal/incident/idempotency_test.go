package incident_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/incident"
	"github.com/mitra-cert/mitra/internal/notify"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
)

// failingStore fails the next CreateIncident, as a database failure
// between the publication of the objects and the recording of the state.
type failingStore struct {
	incident.Store
	fail bool
}

var errDown = errors.New("database down")

func (f *failingStore) CreateIncident(ctx context.Context, rec *store.IncidentRecord, ev store.IncidentEvent, met []store.StageMet, ds []store.Notification) error {
	if f.fail {
		f.fail = false
		return errDown
	}
	return f.Store.CreateIncident(ctx, rec, ev, met, ds)
}

// TestRetriedReportIsIdempotent: a report whose objects were published but
// whose state failed to be recorded is retried with the same key: the
// retry completes the same incident (same id, the objects published once,
// clocks from the first attempt); a further retry answers the same
// incident without a new event; another organisation's key gives another
// id, and a report without a key a fresh one each time.
func TestRetriedReportIsIdempotent(t *testing.T) {
	w := newWorld(t, notify.Targets{})
	ctx := context.Background()
	fs := &failingStore{Store: w.st.(incident.Store), fail: true}
	svc, err := incident.New(incident.Config{Store: fs, Objects: w.st, Audit: w.st,
		Publisher: &incident.Ingest{Check: w.srv.Check, Store: w.st, Path: "test"}, Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	rep := incident.Report{Collection: w.coll, Regime: "nis2", CERT: w.cert, Name: "Pumping station down", Sector: "water",
		Severity: "high", AwareAt: w.clock.Now().Add(-time.Hour), Related: []string{"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"},
		IdempotencyKey: "op-report-2026-03-02-001"}
	first := w.clock.Now()
	if _, err := svc.Report(ctx, w.op, rep); !errors.Is(err, errDown) {
		t.Fatalf("first attempt: %v, want the database failure", err)
	}
	all, err := w.st.QueryObjects(ctx, w.coll, store.Query{})
	if err != nil || len(all.Entries) != 2 {
		t.Fatalf("after the failed attempt the collection holds %+v, %v; want the incident and its relationship", all, err)
	}
	w.clock.Add(10 * time.Minute)
	got, err := svc.Report(ctx, w.op, rep)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != all.Entries[0].ID && got.ID != all.Entries[1].ID {
		t.Fatalf("the retry made incident %s, not the one published (%s, %s)", got.ID, all.Entries[0].ID, all.Entries[1].ID)
	}
	if !got.Reported.Equal(first) {
		t.Errorf("reported at %s, want the first attempt's %s", got.Reported, first)
	}
	if s := stageOf(t, got, "early-warning"); s.Status != incident.StatusMet {
		t.Errorf("early-warning: %+v", s)
	}
	vers, err := w.st.QueryObjects(ctx, w.coll, store.Query{Versions: store.VersionFilter{All: true}})
	if err != nil || len(vers.Entries) != 2 {
		t.Fatalf("after the retry: %d object versions, %v; want the 2 of the first attempt", len(vers.Entries), err)
	}
	// The answer was lost: a third attempt answers the same incident.
	w.clock.Add(time.Minute)
	again, err := svc.Report(ctx, w.op, rep)
	if err != nil || again.ID != got.ID || len(again.History) != 1 {
		t.Fatalf("third attempt: %+v, %v", again, err)
	}
	if l, _ := w.svc.List(ctx, w.op, incident.ListFilter{}); len(l) != 1 {
		t.Fatalf("%d incidents listed, want 1", len(l))
	}
	// The key is the organisation's own.
	other := rep
	other.CERT = w.cert
	if inc, err := svc.Report(ctx, w.outsider, other); err != nil || inc.ID == got.ID {
		t.Fatalf("another organisation's report with the same key: %v, %v", inc, err)
	}
	rep.IdempotencyKey = ""
	a, err1 := svc.Report(ctx, w.op, rep)
	b, err2 := svc.Report(ctx, w.op, rep)
	if err1 != nil || err2 != nil || a.ID == b.ID {
		t.Fatalf("reports without a key: %v/%v, %v/%v", a, err1, b, err2)
	}
}

// TestExerciseIncidentsStayInTheDrill: an incident reported to the drill's
// service carries the exercise marking (and its follow-ups too); the real
// service neither lists, shows nor alerts on it, and the drill's service
// sees none of the real incidents.
func TestExerciseIncidentsStayInTheDrill(t *testing.T) {
	w := newWorld(t, notify.Targets{})
	ctx := context.Background()
	drillSvc, err := incident.New(incident.Config{Store: w.st.(incident.Store), Objects: w.st, Audit: w.st, Exercise: true,
		Publisher: &incident.Ingest{Check: w.srv.Check, Store: w.st, Path: "test"}, Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	realInc := w.report("nis2")
	ex, err := drillSvc.Report(ctx, w.op, incident.Report{Collection: w.coll, Regime: "nis2", CERT: w.cert, Name: "[EXERCISE] Grid down",
		Sector: "energy", Severity: "critical", AwareAt: w.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if !stix.IsExercise(ex.Object) {
		t.Fatalf("drill incident not marked: %s", ex.Object)
	}
	if _, err := w.svc.Report(ctx, w.op, incident.Report{Collection: w.coll, Regime: "nis2", CERT: w.cert, Name: "x", Sector: "energy",
		Severity: "low", AwareAt: w.clock.Now(), Exercise: true}); !errors.Is(err, incident.ErrInvalid) {
		t.Errorf("exercise report to the real service: %v", err)
	}
	if _, err := drillSvc.Transition(ctx, w.certP, ex.ID, incident.StateAcknowledged, "exercise"); err != nil {
		t.Fatal(err)
	}
	_, repID, err := drillSvc.FollowUp(ctx, w.certP, ex.ID, incident.FollowUp{Kind: "feedback", Text: "exercise feedback"})
	if err != nil {
		t.Fatal(err)
	}
	page, err := w.st.QueryObjects(ctx, w.coll, store.Query{IDs: []string{repID}, WithBody: true})
	if err != nil || len(page.Entries) != 1 || !stix.IsExercise(page.Entries[0].Raw) {
		t.Fatalf("follow-up of a drill incident: %+v, %v", page, err)
	}
	for _, p := range [...]struct {
		svc  *incident.Service
		want string
		hide string
	}{{w.svc, realInc.ID, ex.ID}, {drillSvc, ex.ID, realInc.ID}} {
		l, err := p.svc.List(ctx, w.certP, incident.ListFilter{})
		if err != nil || len(l) != 1 || l[0].ID != p.want {
			b, _ := json.Marshal(l)
			t.Errorf("listing: %s, %v; want only %s", b, err, p.want)
		}
		if _, err := p.svc.Get(ctx, w.certP, p.hide); !errors.Is(err, incident.ErrNotFound) {
			t.Errorf("get %s: %v, want not found", p.hide, err)
		}
		if _, err := p.svc.Transition(ctx, w.certP, p.hide, incident.StateAcknowledged, ""); !errors.Is(err, incident.ErrNotFound) {
			t.Errorf("transition %s: %v, want not found", p.hide, err)
		}
	}
	// Past every deadline: each service alerts on its own incidents only
	// (an alert is claimed once per incident and stage, so a service
	// alerting on the other's incidents would leave the other fewer).
	w.clock.Add(40 * 24 * time.Hour)
	overdue := func(svc *incident.Service, id string) int {
		inc, err := svc.Get(ctx, w.certP, id)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, s := range inc.Stages {
			if s.Status == incident.StatusOverdue {
				n++
			}
		}
		return n
	}
	wantReal, wantDrill := overdue(w.svc, realInc.ID), overdue(drillSvc, ex.ID)
	if wantReal == 0 || wantDrill == 0 || wantReal == wantDrill {
		t.Fatalf("overdue stages: real %d, drill %d; the test needs distinct non-zero counts", wantReal, wantDrill)
	}
	if n, err := w.svc.Tick(ctx); err != nil || n != wantReal {
		t.Errorf("real tick: %d alerts, %v; want %d", n, err, wantReal)
	}
	if n, err := drillSvc.Tick(ctx); err != nil || n != wantDrill {
		t.Errorf("drill tick: %d alerts, %v; want %d", n, err, wantDrill)
	}
}

// TestDrillAPIUnderItsPrefix: the drill's incident API, mounted under its
// own prefix, reports exercise incidents; over HTTP each API answers 404
// for the other's incidents, exactly as for a missing one, and an
// outsider gets the same 404 for a drill incident it may not read.
func TestDrillAPIUnderItsPrefix(t *testing.T) {
	w := newWorld(t, notify.Targets{})
	ctx := context.Background()
	const drillPrefix = "/x-mitra-drill/incidents/"
	drillSvc, err := incident.New(incident.Config{Store: w.st.(incident.Store), Objects: w.st, Audit: w.st, Exercise: true,
		Publisher: &incident.Ingest{Check: w.srv.Check, Store: w.st, Path: drillPrefix}, Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	w.srv.Mount(drillPrefix, incident.NewHandler(drillSvc, incident.HandlerOptions{Authenticate: w.srv.Authenticate, Prefix: drillPrefix}))
	a := w.api(nil)
	w.user("op", w.operator, access.RoleAnalyst)
	w.user("bob", w.other, access.RoleAnalyst)
	cl := func(user, prefix string) *incident.Client {
		c, err := incident.NewClient(a.ts.URL)
		if err != nil {
			t.Fatal(err)
		}
		c.User, c.Password, c.Prefix = user, password, prefix
		return c
	}
	rep := incident.Report{Collection: w.coll, Regime: "nis2", CERT: w.cert, Name: "Drill outage", Sector: "energy", Severity: "high",
		AwareAt: w.clock.Now(), IdempotencyKey: "drill-1"}
	ex, err := cl("op", drillPrefix).Report(ctx, rep)
	if err != nil || !stix.IsExercise(ex.Object) {
		t.Fatalf("drill report over HTTP: %+v, %v", ex, err)
	}
	again, err := cl("op", drillPrefix).Report(ctx, rep)
	if err != nil || again.ID != ex.ID {
		t.Fatalf("retried drill report: %+v, %v", again, err)
	}
	rep.Name, rep.IdempotencyKey = "Real outage", ""
	real, err := cl("op", "").Report(ctx, rep)
	if err != nil || stix.IsExercise(real.Object) {
		t.Fatalf("real report: %+v, %v", real, err)
	}
	const missing = "incident--00000000-0000-4000-8000-000000000000"
	notFound := func(user, prefix, id string) string {
		_, err := cl(user, prefix).Get(ctx, id)
		var ae *incident.APIError
		if !errors.As(err, &ae) || ae.Status != 404 {
			t.Fatalf("%s GET %s%s: %v, want 404", user, prefix, id, err)
		}
		return ae.Description
	}
	base := notFound("op", drillPrefix, missing)
	_ = notFound("op", "", ex.ID)
	_ = notFound("op", drillPrefix, real.ID)
	if d := notFound("bob", drillPrefix, ex.ID); d != strings.Replace(base, missing, ex.ID, 1) {
		t.Errorf("hidden drill incident answered %q, a missing one %q", d, base)
	}
	if l, err := cl("op", "").List(ctx, "", 0); err != nil || len(l) != 1 || l[0].ID != real.ID {
		t.Errorf("real listing over HTTP: %v, %v", l, err)
	}
	if l, err := cl("op", drillPrefix).List(ctx, "", 0); err != nil || len(l) != 1 || l[0].ID != ex.ID {
		t.Errorf("drill listing over HTTP: %v, %v", l, err)
	}
}
