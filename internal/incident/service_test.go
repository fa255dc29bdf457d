package incident_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/incident"
	"github.com/mitra-cert/mitra/internal/notify"
	"github.com/mitra-cert/mitra/internal/store"
)

func TestReportPublishesSTIXIncident(t *testing.T) {
	w := newWorld(t, notify.Targets{})
	inc := w.report("nis2")
	if inc.State != incident.StateReported || inc.Reporter != w.operator || inc.CERT != w.cert {
		t.Fatalf("incident = %+v", inc)
	}
	var obj map[string]any
	if err := json.Unmarshal(inc.Object, &obj); err != nil {
		t.Fatal(err)
	}
	if obj["type"] != "incident" || obj["created_by_ref"] != w.operator {
		t.Fatalf("object = %v", obj)
	}
	ext, _ := obj["extensions"].(map[string]any)[incident.ExtensionID].(map[string]any)
	if ext["extension_type"] != "property-extension" || ext["sector"] != "energy" || ext["severity"] != "high" ||
		ext["cross_border"] != true || ext["regime"] != "nis2" || ext["reporting_organisation"] != w.operator {
		t.Fatalf("extension = %v", ext)
	}
	if m := obj["object_marking_refs"].([]any); m[0] != "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003" {
		t.Fatalf("markings = %v, want TLP:AMBER+STRICT", m)
	}
	// Stored through the ingest: the collection has it, submitted by the operator.
	page, err := w.st.QueryObjects(context.Background(), w.coll, store.Query{IDs: []string{inc.ID}})
	if err != nil || len(page.Entries) != 1 || page.Entries[0].Submitter != w.operator {
		t.Fatalf("stored = %+v, %v", page, err)
	}
	// The report met the early warning.
	if s := stageOf(t, inc, "early-warning"); s.Status != incident.StatusMet || s.Met.Organisation != w.operator || s.Late {
		t.Fatalf("early-warning = %+v", s)
	}
}

func TestClocksDueMetOverdue(t *testing.T) {
	w := newWorld(t, notify.Targets{})
	ctx := context.Background()
	inc := w.report("nis2") // aware an hour ago
	// NIS2: the notification is due 72h after awareness: 71h left.
	if s := stageOf(t, inc, "notification"); s.Status != incident.StatusDue || s.Left != 71*time.Hour {
		t.Fatalf("notification = %+v", s)
	}
	// The CSIRT answers within 24h of the early warning.
	if s := stageOf(t, inc, "acknowledgement"); s.Status != incident.StatusDue || s.Left != 24*time.Hour {
		t.Fatalf("acknowledgement = %+v", s)
	}
	// The final report waits for the notification.
	if s := stageOf(t, inc, "final-report"); s.Status != incident.StatusWaiting || !s.Due.IsZero() {
		t.Fatalf("final-report = %+v", s)
	}
	w.clock.Add(25 * time.Hour)
	got, err := w.svc.Get(ctx, w.op, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if s := stageOf(t, got, "acknowledgement"); s.Status != incident.StatusOverdue || s.Left != -time.Hour {
		t.Fatalf("acknowledgement after 25h = %+v", s)
	}
	// A late acknowledgement is met, and marked late.
	if got, err = w.svc.Acknowledge(ctx, w.certP, inc.ID, "seen"); err != nil {
		t.Fatal(err)
	}
	if s := stageOf(t, got, "acknowledgement"); s.Status != incident.StatusMet || !s.Late || s.Met.Organisation != w.cert {
		t.Fatalf("late acknowledgement = %+v", s)
	}
	// Intermediate report at 30h after awareness meets the notification in time.
	w.clock.Add(4 * time.Hour)
	got, rep, err := w.svc.FollowUp(ctx, w.op, inc.ID, incident.FollowUp{Kind: "intermediate", Text: "contained to one substation"})
	if err != nil {
		t.Fatal(err)
	}
	if s := stageOf(t, got, "notification"); s.Status != incident.StatusMet || s.Late || s.Met.Ref != rep {
		t.Fatalf("notification = %+v (report %s)", s, rep)
	}
	// The final report now counts from the notification: 30 days.
	if s := stageOf(t, got, "final-report"); s.Status != incident.StatusDue || s.Left != 30*24*time.Hour {
		t.Fatalf("final-report = %+v", s)
	}
	w.clock.Add(31 * 24 * time.Hour)
	got, _ = w.svc.Get(ctx, w.op, inc.ID)
	if s := stageOf(t, got, "final-report"); s.Status != incident.StatusOverdue || s.Left != -24*time.Hour {
		t.Fatalf("final-report after 31 days = %+v", s)
	}
	// Closing stops the clocks.
	if _, err := w.svc.Close(ctx, w.certP, inc.ID, "done"); err != nil {
		t.Fatal(err)
	}
	w.clock.Add(24 * time.Hour)
	got, _ = w.svc.Get(ctx, w.op, inc.ID)
	if s := stageOf(t, got, "final-report"); s.Status != incident.StatusOverdue || s.Left != -24*time.Hour {
		t.Fatalf("final-report after closing = %+v (clocks must stop)", s)
	}
}

func TestGosSOPKASignificantThreeHours(t *testing.T) {
	w := newWorld(t, notify.Targets{})
	ctx := context.Background()
	// Aware 4 hours ago: the 3-hour notification is met by the report, late.
	inc, err := w.svc.Report(ctx, w.op, incident.Report{Collection: w.coll, Regime: "gossopka-significant", CERT: w.cert,
		Name: "DDoS on payment gateway", Sector: "finance", Severity: "critical", AwareAt: w.clock.Now().Add(-4 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if s := stageOf(t, inc, "notification"); s.Status != incident.StatusMet || !s.Late || s.Left != -time.Hour {
		t.Fatalf("notification = %+v", s)
	}
	other, err := w.svc.Report(ctx, w.op, incident.Report{Collection: w.coll, Regime: "gossopka", CERT: w.cert,
		Name: "Phishing", Sector: "finance", Severity: "low", AwareAt: w.clock.Now().Add(-4 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if s := stageOf(t, other, "notification"); s.Status != incident.StatusMet || s.Late || s.Left != 20*time.Hour {
		t.Fatalf("gossopka notification = %+v", s)
	}
}

func TestLifecycleTransitions(t *testing.T) {
	w := newWorld(t, notify.Targets{})
	ctx := context.Background()
	inc := w.report("nis2")
	// Only the CERT acknowledges.
	if _, err := w.svc.Acknowledge(ctx, w.op, inc.ID, ""); !errors.Is(err, incident.ErrForbidden) {
		t.Fatalf("operator acknowledges: %v, want ErrForbidden", err)
	}
	steps := []struct {
		who  string
		to   incident.State
		note string
	}{
		{"cert", incident.StateAcknowledged, "received"},
		{"cert", incident.StateUnderInvestigation, "analysing"},
		{"op", incident.StateMitigated, "restored"},
		{"cert", incident.StateClosed, "closed"},
	}
	for _, s := range steps {
		p := w.certP
		if s.who == "op" {
			p = w.op
		}
		w.clock.Add(time.Hour)
		got, err := w.svc.Transition(ctx, p, inc.ID, s.to, s.note)
		if err != nil {
			t.Fatalf("%s -> %s: %v", s.who, s.to, err)
		}
		if got.State != s.to {
			t.Fatalf("state = %s, want %s", got.State, s.to)
		}
	}
	// Never back.
	if _, err := w.svc.Transition(ctx, w.certP, inc.ID, incident.StateMitigated, ""); !errors.Is(err, incident.ErrConflict) {
		t.Fatalf("closed -> mitigated: %v, want ErrConflict", err)
	}
	got, err := w.svc.Get(ctx, w.op, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Every transition is in the history, timestamped and attributed.
	var trans []store.IncidentEvent
	for _, e := range got.History {
		if e.Kind == incident.EventTransition {
			trans = append(trans, e)
		}
	}
	if len(trans) != 4 {
		t.Fatalf("transitions = %+v", got.History)
	}
	start := w.clock.Now().Add(-4 * time.Hour)
	for i, e := range trans {
		if e.To != string(steps[i].to) || e.Note != steps[i].note || !e.At.Equal(start.Add(time.Duration(i+1)*time.Hour)) || e.User == "" || e.Organisation == "" {
			t.Fatalf("transition %d = %+v", i, e)
		}
	}
	// And in the audit log.
	recs, err := w.st.ListAudit(ctx, store.AuditFilter{Action: "incident."})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Action == "incident.transition" && len(r.Objects) == 1 && r.Objects[0] == inc.ID {
			n++
		}
	}
	if n != 4 {
		t.Fatalf("audit has %d transition records, want 4: %+v", n, recs)
	}
}

func TestMeetStageByItsPartyOnce(t *testing.T) {
	w := newWorld(t, notify.Targets{})
	ctx := context.Background()
	inc := w.report("nis2")
	if _, err := w.svc.MeetStage(ctx, w.certP, inc.ID, "notification", ""); !errors.Is(err, incident.ErrForbidden) {
		t.Fatalf("the CERT meets the operator's stage: %v, want ErrForbidden", err)
	}
	if _, err := w.svc.MeetStage(ctx, w.op, inc.ID, "no-such-stage", ""); !errors.Is(err, incident.ErrInvalid) {
		t.Fatalf("unknown stage: %v, want ErrInvalid", err)
	}
	w.clock.Add(2 * time.Hour)
	got, err := w.svc.MeetStage(ctx, w.opColleague, inc.ID, "notification", "by phone")
	if err != nil {
		t.Fatal(err)
	}
	if s := stageOf(t, got, "notification"); s.Status != incident.StatusMet || s.Met.User != "op2" || !s.Met.At.Equal(w.clock.Now()) || s.Left != 69*time.Hour {
		t.Fatalf("notification = %+v", s)
	}
	if _, err := w.svc.MeetStage(ctx, w.op, inc.ID, "notification", "again"); !errors.Is(err, incident.ErrConflict) {
		t.Fatalf("met twice: %v, want ErrConflict", err)
	}
	if _, err := incident.ParseState("Under investigation"); err != nil {
		t.Fatal(err)
	}
	if _, err := incident.ParseState("resolved"); !errors.Is(err, incident.ErrInvalid) {
		t.Fatalf("ParseState(resolved) = %v", err)
	}
}

func TestReportRefusesBadInput(t *testing.T) {
	w := newWorld(t, notify.Targets{})
	ctx := context.Background()
	good := incident.Report{Collection: w.coll, Regime: "nis2", CERT: w.cert, Name: "x", Sector: "energy", Severity: "low", AwareAt: w.clock.Now()}
	cases := map[string]func(r *incident.Report){
		"unknown regime":   func(r *incident.Report) { r.Regime = "dora" },
		"unknown sector":   func(r *incident.Report) { r.Sector = "space" },
		"bad severity":     func(r *incident.Report) { r.Severity = "apocalyptic" },
		"no awareness":     func(r *incident.Report) { r.AwareAt = time.Time{} },
		"future awareness": func(r *incident.Report) { r.AwareAt = w.clock.Now().Add(time.Hour) },
		"unknown cert":     func(r *incident.Report) { r.CERT = "identity--00000000-0000-4000-8000-000000000009" },
		"self as cert":     func(r *incident.Report) { r.CERT = w.operator },
		"bad related":      func(r *incident.Report) { r.Related = []string{"not-an-id"} },
		"bad tlp":          func(r *incident.Report) { r.TLP = "purple" },
		"no name":          func(r *incident.Report) { r.Name = " " },
	}
	for name, edit := range cases {
		r := good
		edit(&r)
		if _, err := w.svc.Report(ctx, w.op, r); !errors.Is(err, incident.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	incs, err := w.svc.List(ctx, w.op, incident.ListFilter{})
	if err != nil || len(incs) != 0 {
		t.Fatalf("after refused reports: %d incidents, %v", len(incs), err)
	}
	// A collection the reporter may not write: nothing is stored.
	ro := &store.Collection{Title: "read only", Grants: []store.Grant{{Kind: store.GrantOrg, Subject: w.operator, Read: true}}}
	if err := w.st.CreateCollection(ctx, ro); err != nil {
		t.Fatal(err)
	}
	r := good
	r.Collection = ro.ID
	if _, err := w.svc.Report(ctx, w.op, r); !errors.Is(err, incident.ErrForbidden) {
		t.Fatalf("read-only collection: %v, want ErrForbidden", err)
	}
}

// TestStepFromAStaleState: of two steps taken from the same state,
// the first is recorded, the second gets ErrConflict and records nothing.
func TestStepFromAStaleState(t *testing.T) {
	w := newWorld(t, notify.Targets{Webhooks: []string{"https://hooks.example/x"}})
	ctx := context.Background()
	inc := w.report("nis2")
	st := w.st.(incident.Store)
	step := func(to string) error {
		return st.RecordIncidentStep(ctx, store.IncidentStep{Incident: inc.ID, From: "reported", To: to, At: w.clock.Now(),
			Event: store.IncidentEvent{Incident: inc.ID, At: w.clock.Now(), Kind: incident.EventTransition, From: "reported", To: to}})
	}
	if err := step("acknowledged"); err != nil {
		t.Fatal(err)
	}
	if err := step("closed"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second step from reported: %v, want ErrConflict", err)
	}
	evs, err := st.IncidentEvents(ctx, inc.ID)
	if err != nil || len(evs) != 2 {
		t.Fatalf("events %+v, %v", evs, err)
	}
	if err := st.RecordIncidentStep(ctx, store.IncidentStep{Incident: "incident--00000000-0000-4000-8000-000000000002", To: "closed", From: "reported"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("step of a missing incident: %v, want ErrNotFound", err)
	}
	// An alert is recorded once with its notifications.
	ok1, err1 := st.ClaimAlert(ctx, store.Alert{Incident: inc.ID, Stage: "notification", Kind: "overdue", At: w.clock.Now()}, nil)
	ok2, err2 := st.ClaimAlert(ctx, store.Alert{Incident: inc.ID, Stage: "notification", Kind: "overdue", At: w.clock.Now()}, nil)
	if !ok1 || ok2 || err1 != nil || err2 != nil {
		t.Fatalf("ClaimAlert twice = %v %v, %v %v", ok1, ok2, err1, err2)
	}
}

// TestReadOnlyMemberOnlyReads: a read-only user of the CERT sees the
// incident but cannot move it on.
func TestReadOnlyMemberOnlyReads(t *testing.T) {
	w := newWorld(t, notify.Targets{})
	ctx := context.Background()
	inc := w.report("nis2")
	ro := &access.Principal{User: "intern", Organisation: w.cert, Role: access.RoleReadOnly, UserRole: access.RoleReadOnly}
	if _, err := w.svc.Get(ctx, ro, inc.ID); err != nil {
		t.Fatalf("read-only member reads: %v", err)
	}
	if _, err := w.svc.Acknowledge(ctx, ro, inc.ID, ""); !errors.Is(err, incident.ErrForbidden) {
		t.Fatalf("read-only member acknowledges: %v, want ErrForbidden", err)
	}
	if _, err := w.svc.MeetStage(ctx, ro, inc.ID, "acknowledgement", ""); !errors.Is(err, incident.ErrForbidden) {
		t.Fatalf("read-only member meets a stage: %v, want ErrForbidden", err)
	}
}
