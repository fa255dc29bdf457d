package incident_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

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
