package assist_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/assist"
	"github.com/mitra-cert/mitra/internal/notify"
	"github.com/mitra-cert/mitra/internal/store"
)

// TestPing: mitra poc ping sends a challenge over each contact's channel
// (TAXII through the delivery queue, e-mail through the notification
// queue; a phone is recorded as not automated); answers come through the
// signed link (a bad signature answers nothing, opening the link only
// shows a button) or the API; the report classes each contact as answered
// within 2 hours, within 24 hours, or not at all, on the injected clock.
func TestPing(t *testing.T) {
	eachBackend(t, func(t *testing.T, open backend) {
		ctx := t.Context()
		clk := &clock{t: t0}
		var queue *notify.Queue
		a := newNode(t, open, "A", clk, func(c *assist.Config) {
			// The e-mail goes through the real notification queue.
			queue = notify.New(notify.Config{Store: c.Store.(notify.Store), Now: clk.Now})
			c.Notifier = assist.NotifyQueue{Queue: queue}
			c.PingKey, c.PublicURL = []byte("poc-key-for-tests"), "https://cert-a.test"
		})
		a2 := newNode(t, open, "B", clk)
		link(t, a, a2)
		duty, _ := a.svc.AddContact(ctx, a.staff, assist.Contact{Name: "Duty desk", Country: "BB", Kind: "technical", Organisation: a2.cert.ID,
			Channels: []assist.Channel{{Type: "taxii", Peer: "B", Collection: a2.assistCol.ID}}})
		mail, _ := a.svc.AddContact(ctx, a.staff, assist.Contact{Name: "Embassy attaché", Country: "BB", Kind: "diplomatic", Organisation: a2.cert.ID,
			Channels: []assist.Channel{{Type: "email", Address: "attache@embassy-b.test"}}})
		phone, _ := a.svc.AddContact(ctx, a.staff, assist.Contact{Name: "Minister's office", Country: "CC", Kind: "diplomatic",
			Channels: []assist.Channel{{Type: "phone", Address: "+99 555 0100"}}})
		if _, err := a.svc.Ping(ctx, a.staff, nil); err != nil {
			t.Fatal(err)
		}
		chs, err := a.st.(store.Assistance).Challenges(ctx, "", time.Time{})
		if err != nil || len(chs) != 3 {
			t.Fatalf("challenges: %+v, %v", chs, err)
		}
		byContact := map[string]store.Challenge{}
		for _, c := range chs {
			byContact[c.Contact] = c
		}
		if c := byContact[duty.ID]; c.Channel != "taxii" || c.SendError != "" {
			t.Errorf("duty desk challenge: %+v", c)
		}
		if c := byContact[mail.ID]; c.Channel != "email" || c.SendError != "" {
			t.Errorf("e-mail challenge: %+v", c)
		}
		if c := byContact[phone.ID]; c.Channel != "phone" || !strings.Contains(c.SendError, "not automated") {
			t.Errorf("phone challenge: %+v", c)
		}
		queued, _ := queue.List(ctx, store.NotificationFilter{})
		if len(queued) != 1 || queued[0].Target != "attache@embassy-b.test" || !strings.Contains(string(queued[0].Body), "https://cert-a.test/x-mitra-poc/answer/"+byContact[mail.ID].ID+"?sig=") {
			t.Errorf("queued e-mail: %+v", queued)
		}
		// The TAXII challenge reaches B's collection as a plain note.
		if res := tick(t, a); res.Delivered != 1 {
			t.Fatalf("tick: %+v", res)
		}
		page, _ := a2.st.QueryObjects(ctx, a2.assistCol.ID, store.Query{Types: []string{"note"}, WithBody: true})
		if len(page.Entries) != 1 || !strings.Contains(string(page.Entries[0].Raw), byContact[duty.ID].ID) {
			t.Errorf("B's collection: %+v", page.Entries)
		}

		h := httptest.NewServer(assist.NewHandler(a.svc, assist.HandlerOptions{Authenticate: a.srv.Authenticate}))
		defer h.Close()
		answer := func(method, id, sig string) int {
			req, _ := http.NewRequest(method, h.URL+assist.PocPrefix+"answer/"+id+"?sig="+url.QueryEscape(sig), nil)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			return res.StatusCode
		}
		dutyCh := byContact[duty.ID]
		clk.Set(t0.Add(90 * time.Minute))
		if code := answer("GET", dutyCh.ID, a.svc.Sign(dutyCh.ID)); code != 200 {
			t.Errorf("GET link: %d", code)
		}
		if code := answer("POST", dutyCh.ID, a.svc.Sign(byContact[mail.ID].ID)); code != 404 {
			t.Errorf("another challenge's signature: %d", code)
		}
		rep, _ := a.svc.Report(ctx, a.staff, time.Time{})
		for _, r := range rep {
			if r.Contact == duty.ID && r.Last != "pending" {
				t.Errorf("opening the link answered: %+v", r)
			}
		}
		if code := answer("POST", dutyCh.ID, a.svc.Sign(dutyCh.ID)); code != 200 {
			t.Errorf("signed answer: %d", code)
		}
		// The e-mail contact answers through the API after 5 hours, as a
		// user of its organisation on this server; another organisation's
		// user cannot.
		clk.Set(t0.Add(5 * time.Hour))
		stranger := &access.Principal{User: "x", Organisation: a.cert.ID, Role: access.RoleAnalyst}
		if _, err := a.svc.Answer(ctx, stranger, byContact[mail.ID].ID); err == nil {
			t.Error("a user of another organisation answered the challenge")
		}
		if _, err := a.svc.Answer(ctx, &access.Principal{User: "admin", Role: access.RoleAdmin}, byContact[mail.ID].ID); err != nil {
			t.Fatal(err)
		}
		clk.Set(t0.Add(25 * time.Hour))
		rep, err = a.svc.Report(ctx, a.staff, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{duty.ID: "within 2 hours", mail.ID: "within 24 hours", phone.ID: "not answered"}
		for _, r := range rep {
			if r.Last != want[r.Contact] || r.Challenges != 1 || r.Within2h+r.Within24h+r.Unanswered != 1 {
				t.Errorf("report of %s: %+v, want %s", r.Name, r, want[r.Contact])
			}
		}
	})
}
