package assist_test

import (
	"slices"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/assist"
)

// TestEscalationFollowsWorkingHours: B's contacts are a Paris duty desk
// (weekdays 08-18 Paris), a Tokyo desk (weekdays 09-18 Tokyo) and a New
// York head (weekdays 09-17 New York), asked in that order. A request
// raised on Friday afternoon in Paris is overdue at 19:00 UTC: Paris has
// gone home and it is Saturday morning in Tokyo, so it escalates to New
// York, passing over Tokyo. Overdue again at 23:00 UTC, after New York's
// day, nobody is left: overdue for good. A second request overdue at
// 22:00 UTC on Sunday, when Paris is closed and Tokyo's Monday has not
// begun (00:00 Tokyo is 15:00 UTC), waits out of hours and escalates to
// Tokyo at the first tick of Tokyo's Monday morning (Sunday 24:00 UTC).
func TestEscalationFollowsWorkingHours(t *testing.T) {
	eachBackend(t, func(t *testing.T, open backend) {
		fri := time.Date(2030, 3, 8, 15, 0, 0, 0, time.UTC) // 16:00 Paris, 00:00 Sat Tokyo, 10:00 New York (EST)
		clk := &clock{t: fri}
		a, b := newNode(t, open, "A", clk), newNode(t, open, "B", clk)
		link(t, a, b)
		add := func(name, tz, from, to string, order int) *assist.Contact {
			c, err := a.svc.AddContact(t.Context(), a.staff, assist.Contact{Name: name, Country: "bb", Organisation: b.cert.ID, OrganisationName: b.cert.Name,
				Kind: "technical", EscalationOrder: order, Channels: []assist.Channel{{Type: "taxii", Peer: b.name, Collection: b.assistCol.ID}},
				Hours: assist.WorkingHours{TimeZone: tz, Days: []string{"mon", "tue", "wed", "thu", "fri"}, From: from, To: to}})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		paris := add("B Paris duty desk", "Europe/Paris", "08:00", "18:00", 0)
		tokyo := add("B Tokyo desk", "Asia/Tokyo", "09:00", "18:00", 1)
		ny := add("B New York head", "America/New_York", "09:00", "17:00", 2)
		req, err := a.svc.Raise(t.Context(), a.staff, assist.RaiseInput{Contact: paris.ID, Kind: "blocking",
			Concerns: []string{"indicator--4a3a6f5e-0e5c-4f59-9f0e-6f1f3a1b2c3d"}, ResponseTime: 4 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		tick(t, a)
		clk.Set(fri.Add(4 * time.Hour)) // 19:00 UTC Fri: 20:00 Paris, 04:00 Sat Tokyo, 14:00 New York
		if res := tick(t, a); !slices.Equal(res.Escalated, []string{req.ID}) {
			t.Fatalf("escalation at 19:00 UTC: %+v", res)
		}
		if got, _ := a.svc.Get(t.Context(), a.staff, req.ID); got.Contact != ny.ID || got.Escalations != 1 {
			t.Fatalf("escalated to %s, want New York (%s), passing over Tokyo off duty", got.Contact, ny.ID)
		}
		clk.Set(fri.Add(8 * time.Hour)) // 23:00 UTC: 18:00 New York, nobody after it
		if res := tick(t, a); !slices.Contains(res.Overdue, req.ID) || len(res.Escalated) != 0 {
			t.Fatalf("after New York: %+v", res)
		}

		sun := time.Date(2030, 3, 10, 18, 0, 0, 0, time.UTC) // Sunday
		clk.Set(sun)
		req2, err := a.svc.Raise(t.Context(), a.staff, assist.RaiseInput{Contact: paris.ID, Kind: "information",
			Concerns: []string{"indicator--4a3a6f5e-0e5c-4f59-9f0e-6f1f3a1b2c3d"}, ResponseTime: 4 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		tick(t, a)
		clk.Set(sun.Add(4 * time.Hour)) // 22:00 UTC Sun: 07:00 Mon Tokyo, before 09:00
		if res := tick(t, a); !slices.Equal(res.OutOfHours, []string{req2.ID}) || len(res.Escalated) != 0 || slices.Contains(res.Overdue, req2.ID) {
			t.Fatalf("Sunday 22:00 UTC: %+v, want the request waiting out of hours", res)
		}
		clk.Set(sun.Add(6*time.Hour - time.Minute)) // 08:59 Tokyo
		if res := tick(t, a); len(res.Escalated) != 0 {
			t.Fatalf("escalated before Tokyo opens: %+v", res)
		}
		clk.Set(sun.Add(6 * time.Hour)) // Monday 00:00 UTC = 09:00 Tokyo
		if res := tick(t, a); !slices.Equal(res.Escalated, []string{req2.ID}) {
			t.Fatalf("at Tokyo's opening: %+v", res)
		}
		if got, _ := a.svc.Get(t.Context(), a.staff, req2.ID); got.Contact != tokyo.ID {
			t.Fatalf("escalated to %s, want Tokyo (%s)", got.Contact, tokyo.ID)
		}
	})
}
