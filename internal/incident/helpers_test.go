package incident_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/incident"
	"github.com/mitra-cert/mitra/internal/notify"
	"github.com/mitra-cert/mitra/internal/pattern"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlstore"
	"github.com/mitra-cert/mitra/internal/store/testbackend"
	"github.com/mitra-cert/mitra/internal/taxii"
)

// The one store implementation serves both packages' stores.
var (
	_ incident.Store = (*sqlstore.Store)(nil)
	_ notify.Store   = (*sqlstore.Store)(nil)
)

// current is the store backend of the run in progress.
var current testbackend.Backend

// TestMain runs the package's tests once per backend named in
// MITRA_TEST_BACKENDS (see testbackend).
func TestMain(m *testing.M) {
	os.Exit(testbackend.Main(m, "the incident tests", func(b testbackend.Backend) { current = b }))
}

// clock is an injected clock: tests move it, nothing sleeps.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// world is a store with an operator, its CERT, an outsider organisation
// and an incident collection all three may read and write, a TAXII
// server (for its ingest) and the incident service on an injected clock.
type world struct {
	t        testing.TB
	st       store.Store
	clock    *clock
	svc      *incident.Service
	srv      *taxii.Server
	coll     string
	operator string // organisations
	cert     string
	other    string
	// principals
	op, certP, outsider, opColleague *access.Principal
}

func newWorld(t testing.TB, targets notify.Targets) *world {
	t.Helper()
	ctx := context.Background()
	st := current.NewStore(t)
	w := &world{t: t, st: st, clock: newClock()}
	w.operator, w.cert, w.other = w.org("Grid Operator A"), w.org("CERT-A"), w.org("Bank B")
	w.coll = "incidents"
	c := &store.Collection{Alias: "incidents", Title: "Incidents", Grants: []store.Grant{
		{Kind: store.GrantOrg, Subject: w.operator, Read: true, Write: true},
		{Kind: store.GrantOrg, Subject: w.cert, Read: true, Write: true},
		{Kind: store.GrantOrg, Subject: w.other, Read: true, Write: true},
	}}
	if err := st.CreateCollection(ctx, c); err != nil {
		t.Fatal(err)
	}
	w.coll = c.ID
	w.op = &access.Principal{User: "op", Organisation: w.operator, Role: access.RoleAnalyst, UserRole: access.RoleAnalyst}
	w.opColleague = &access.Principal{User: "op2", Organisation: w.operator, Role: access.RoleAnalyst, UserRole: access.RoleAnalyst}
	w.certP = &access.Principal{User: "cert", Organisation: w.cert, Role: access.RoleAnalyst, UserRole: access.RoleAnalyst}
	w.outsider = &access.Principal{User: "bob", Organisation: w.other, Role: access.RoleAnalyst, UserRole: access.RoleAnalyst}
	w.srv = taxii.NewServer(taxii.Config{Store: st, Auth: access.NewAuthenticator(st, nil),
		Validator: &stix.Validator{CheckPattern: pattern.Check}})
	svc, err := incident.New(incident.Config{Store: st, Objects: st, Audit: st,
		Publisher: &incident.Ingest{Check: w.srv.Check, Store: st, Path: "test"},
		Targets:   targets, Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	w.svc = svc
	return w
}

func (w *world) org(name string) string {
	w.t.Helper()
	o := &store.Organisation{Name: name}
	if err := w.st.CreateOrganisation(context.Background(), o); err != nil {
		w.t.Fatal(err)
	}
	return o.ID
}

// report reports a typical incident under regime, aware an hour ago.
func (w *world) report(regime string) *incident.Incident {
	w.t.Helper()
	inc, err := w.svc.Report(context.Background(), w.op, incident.Report{Collection: w.coll, Regime: regime, CERT: w.cert,
		Name: "Substation SCADA outage", Sector: "energy", Service: "electricity distribution", Severity: "high",
		Impact: "40,000 customers without power", SuspectedCause: "ransomware", CrossBorder: true,
		AwareAt: w.clock.Now().Add(-time.Hour)})
	if err != nil {
		w.t.Fatal(err)
	}
	return inc
}

func stageOf(t testing.TB, inc *incident.Incident, name string) incident.StageStatus {
	t.Helper()
	for _, s := range inc.Stages {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("incident %s has no stage %s", inc.ID, name)
	return incident.StageStatus{}
}
