package assist_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/assist"
	"github.com/mitra-cert/mitra/internal/store/postgres/pgtest"
)

var t0 = time.Date(2030, 3, 4, 9, 0, 0, 0, time.UTC)

func eachBackend(t *testing.T, fn func(t *testing.T, open backend)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, sqliteBackend) })
	t.Run("postgres", func(t *testing.T) {
		if err := pgtest.Available(); err != nil && !pgtest.InCI() {
			t.Skipf("PostgreSQL not reachable: %v", err)
		}
		fn(t, postgresBackend)
	})
}

// contactsOfB adds B's two technical contacts to A's directory: the duty
// desk (asked first) and the head of CERT (escalation).
func contactsOfB(t *testing.T, a, b *node) (duty, head *assist.Contact) {
	add := func(name string, order int) *assist.Contact {
		c, err := a.svc.AddContact(t.Context(), a.staff, assist.Contact{Name: name, Country: "bb", Organisation: b.cert.ID, OrganisationName: b.cert.Name,
			Kind: "technical", Roles: []string{"incident-response"}, EscalationOrder: order,
			Channels: []assist.Channel{{Type: "taxii", Peer: b.name, Collection: b.assistCol.ID}, {Type: "email", Address: "duty@cert.bb"}},
			Hours:    assist.WorkingHours{TimeZone: "Europe/Paris", Days: []string{"mon", "tue", "wed", "thu", "fri"}, From: "08:00", To: "18:00"}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	return add("CERT B duty desk", 0), add("CERT B head", 1)
}

func tick(t *testing.T, n *node) assist.TickResult {
	t.Helper()
	res, err := n.svc.Tick(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func ids(r *assist.Request) []string {
	var out []string
	for _, s := range r.Steps {
		out = append(out, s.ID+"/"+s.Message+"@"+s.Created.Format(time.RFC3339))
	}
	return out
}

// TestRequestAcrossBorder: CERT A raises a request to B's duty desk; it
// reaches B; B acknowledges; the request is overdue at 4 hours and
// escalates to B's head; with no contact left it is reported overdue; B
// answers and the clock stops. Both servers show the same history, each
// step with the author's time; every clock is the injected one.
func TestRequestAcrossBorder(t *testing.T) {
	eachBackend(t, func(t *testing.T, open backend) {
		clk := &clock{t: t0}
		a, b := newNode(t, open, "A", clk), newNode(t, open, "B", clk)
		link(t, a, b)
		duty, head := contactsOfB(t, a, b)
		if !duty.Staffed(t0) || duty.Staffed(time.Date(2030, 3, 3, 12, 0, 0, 0, time.UTC)) { // a Monday 10:00 Paris; a Sunday
			t.Errorf("working hours: staffed %v/%v", duty.Staffed(t0), duty.Staffed(time.Date(2030, 3, 3, 12, 0, 0, 0, time.UTC)))
		}
		req, err := a.svc.Raise(t.Context(), a.staff, assist.RaiseInput{Contact: duty.ID, Kind: "takedown", Concerns: []string{"incident--4a3a6f5e-0e5c-4f59-9f0e-6f1f3a1b2c3d"},
			TLP: "amber", ResponseTime: 4 * time.Hour, Content: "Please take down the C2 at 203.0.113.7"})
		if err != nil {
			t.Fatal(err)
		}
		if req.State != "sent" || !req.Due.Equal(t0.Add(4*time.Hour)) || req.Incoming || len(req.Deliveries) != 1 || !req.Deliveries[0].Delivered.IsZero() {
			t.Fatalf("raised: %+v", req)
		}
		if l, _ := b.svc.List(t.Context(), b.staff); len(l) != 0 {
			t.Fatalf("B sees %d requests before delivery", len(l))
		}
		if res := tick(t, a); res.Delivered != 1 || res.Failed != 0 {
			t.Fatalf("A's first tick: %+v", res)
		}
		got, err := b.svc.Get(t.Context(), b.staff, req.ID)
		if err != nil || !got.Incoming || got.Kind != "takedown" || got.RequesterName != "CERT A" || got.Contact != duty.ID || got.TLP != "TLP:AMBER" {
			t.Fatalf("B's copy: %+v, %v", got, err)
		}
		// B acknowledges an hour later; the step travels back.
		clk.Set(t0.Add(time.Hour))
		if _, err := b.svc.AddStep(t.Context(), b.staff, req.ID, assist.MsgAcknowledge, "Received, looking into it"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.svc.AddStep(t.Context(), b.staff, req.ID, assist.MsgInformation, ""); !errors.Is(err, assist.ErrInvalid) {
			t.Errorf("B giving information: %v", err)
		}
		if res := tick(t, b); res.Delivered != 1 {
			t.Fatalf("B's tick: %+v", res)
		}
		onA, _ := a.svc.Get(t.Context(), a.staff, req.ID)
		if onA.State != "acknowledged" || !onA.Acknowledged.Equal(t0.Add(time.Hour)) || onA.Overdue {
			t.Fatalf("A after the acknowledgement: %+v", onA)
		}
		if _, err := a.svc.AddStep(t.Context(), a.staff, req.ID, assist.MsgAnswer, "x"); !errors.Is(err, assist.ErrForbidden) {
			t.Errorf("the requester answering its own request: %v", err)
		}
		// 3h59: not yet due. 4h: overdue, escalated to B's head.
		clk.Set(t0.Add(4*time.Hour - time.Minute))
		if res := tick(t, a); len(res.Escalated) != 0 {
			t.Fatalf("escalated before due: %+v", res)
		}
		clk.Set(t0.Add(4 * time.Hour))
		if res := tick(t, a); len(res.Escalated) != 1 || res.Delivered != 1 {
			t.Fatalf("escalation tick: %+v", res)
		}
		onA, _ = a.svc.Get(t.Context(), a.staff, req.ID)
		if onA.State != "escalated" || onA.Contact != head.ID || onA.Escalations != 1 || !onA.Due.Equal(t0.Add(8*time.Hour)) || onA.Overdue {
			t.Fatalf("A after the escalation: %+v", onA)
		}
		onB, _ := b.svc.Get(t.Context(), b.staff, req.ID)
		if onB.Contact != head.ID || onB.Escalations != 1 {
			t.Fatalf("B after the escalation: %+v", onB)
		}
		// 8h: overdue again, nobody left to escalate to.
		clk.Set(t0.Add(8 * time.Hour))
		if res := tick(t, a); len(res.Escalated) != 0 || !slices.Contains(res.Overdue, req.ID) {
			t.Fatalf("second overdue tick: %+v", res)
		}
		// B answers at 9h; the clock stops on both sides.
		clk.Set(t0.Add(9 * time.Hour))
		if _, err := b.svc.AddStep(t.Context(), b.staff, req.ID, assist.MsgAnswer, "Taken down at 17:55 UTC"); err != nil {
			t.Fatal(err)
		}
		tick(t, b)
		onA, _ = a.svc.Get(t.Context(), a.staff, req.ID)
		onB, _ = b.svc.Get(t.Context(), b.staff, req.ID)
		if onA.State != "answered" || !onA.Responded.Equal(t0.Add(9*time.Hour)) || onA.Overdue {
			t.Fatalf("A after the answer: %+v", onA)
		}
		if !slices.Equal(ids(onA), ids(onB)) || len(onA.Steps) != 3 {
			t.Fatalf("histories differ:\nA %v\nB %v", ids(onA), ids(onB))
		}
		for _, s := range onA.Steps {
			if s.Received.IsZero() {
				t.Errorf("step %s has no local time", s.ID)
			}
		}
		if clk.Set(t0.Add(30 * time.Hour)); tick(t, a).Overdue != nil {
			t.Error("an answered request is still overdue")
		}
	})
}

// TestUndeliverableKept: a request to a contact not (yet) in the
// directory, and one to a contact whose server is down, are kept and
// retried with backoff until they go through.
func TestUndeliverableKept(t *testing.T) {
	eachBackend(t, func(t *testing.T, open backend) {
		clk := &clock{t: t0}
		a, b := newNode(t, open, "A", clk), newNode(t, open, "B", clk)
		link(t, a, b)
		const later = "identity--5b0a3e0c-8d5a-4a8e-9b43-0c1d2e3f4a5b"
		req, err := a.svc.Raise(t.Context(), a.staff, assist.RaiseInput{Contact: later, Kind: "information", Concerns: []string{"indicator--4a3a6f5e-0e5c-4f59-9f0e-6f1f3a1b2c3d"}, ResponseTime: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		res := tick(t, a)
		if res.Failed != 1 || !strings.Contains(strings.Join(res.Errors, " "), "unknown contact") {
			t.Fatalf("tick to an unknown contact: %+v", res)
		}
		// Not due again before the backoff.
		clk.Set(t0.Add(30 * time.Second))
		if res := tick(t, a); res.Failed+res.Delivered != 0 {
			t.Fatalf("retried before the backoff: %+v", res)
		}
		// The contact appears, its server is down: still kept.
		if _, err := a.svc.AddContact(t.Context(), a.staff, assist.Contact{ID: later, Name: "CERT B desk", Country: "BB", Kind: "technical", Organisation: b.cert.ID,
			Channels: []assist.Channel{{Type: "taxii", Peer: b.name, Collection: b.assistCol.ID}}}); err != nil {
			t.Fatal(err)
		}
		b.ts.Config.Handler = unavailable{}
		clk.Set(t0.Add(time.Minute))
		if res := tick(t, a); res.Failed != 1 || res.Delivered != 0 {
			t.Fatalf("tick with B down: %+v", res)
		}
		d, _ := a.svc.Get(t.Context(), a.staff, req.ID)
		if len(d.Deliveries) != 1 || d.Deliveries[0].Attempts != 2 || d.Deliveries[0].LastError == "" || !d.Deliveries[0].NextAttempt.Equal(t0.Add(3*time.Minute)) {
			t.Fatalf("delivery after two failures: %+v", d.Deliveries)
		}
		b.ts.Config.Handler = b.srv
		clk.Set(t0.Add(3 * time.Minute))
		if res := tick(t, a); res.Delivered != 1 {
			t.Fatalf("tick with B back: %+v", res)
		}
		if _, err := b.svc.Get(t.Context(), b.staff, req.ID); err != nil {
			t.Fatalf("B after the retry: %v", err)
		}
	})
}

// TestTickTakesTurns: two servers on one database (two services over one
// store) never run the clock at once, so an overdue request escalates
// once.
func TestTickTakesTurns(t *testing.T) {
	eachBackend(t, func(t *testing.T, open backend) {
		clk := &clock{t: t0}
		a, b := newNode(t, open, "A", clk), newNode(t, open, "B", clk)
		link(t, a, b)
		duty, _ := contactsOfB(t, a, b)
		req, err := a.svc.Raise(t.Context(), a.staff, assist.RaiseInput{Contact: duty.ID, Kind: "analysis", Concerns: []string{"malware--4a3a6f5e-0e5c-4f59-9f0e-6f1f3a1b2c3d"}, ResponseTime: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		second := assist.New(assist.Config{Store: a.st.(assist.Store), Check: a.srv.Check, Collection: "assist", Directory: "directory", Now: clk.Now, Sender: senderOf(a)})
		// The second server holds the clock: the first one does nothing.
		if ok, err := a.st.TakeLease(t.Context(), "assist/assist", "other-process", time.Minute); !ok || err != nil {
			t.Fatalf("lease: %v %v", ok, err)
		}
		clk.Set(t0.Add(time.Hour))
		if res := tick(t, a); !res.Busy || res.Delivered+len(res.Escalated) != 0 {
			t.Fatalf("tick while another process holds the clock: %+v", res)
		}
		must(t, a.st.ReleaseLease(t.Context(), "assist/assist", "other-process"))
		done := make(chan assist.TickResult, 2)
		for _, s := range []*assist.Service{a.svc, second} {
			go func() {
				res, err := s.Tick(t.Context())
				if err != nil {
					t.Error(err)
				}
				done <- res
			}()
		}
		r1, r2 := <-done, <-done
		if len(r1.Escalated)+len(r2.Escalated) > 1 {
			t.Errorf("escalated twice: %+v %+v", r1, r2)
		}
		tick(t, a)
		got, _ := a.svc.Get(t.Context(), a.staff, req.ID)
		if got.Escalations != 1 {
			t.Errorf("escalations = %d, want 1", got.Escalations)
		}
	})
}
