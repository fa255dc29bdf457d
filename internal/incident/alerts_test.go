package incident_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/notify"
	"github.com/mitra-cert/mitra/internal/store"
)

func events(t *testing.T, st store.Store) map[string]int {
	t.Helper()
	ds, err := st.(notify.Store).ListNotifications(context.Background(), store.NotificationFilter{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, d := range ds {
		var doc struct {
			Data struct {
				Stage string `json:"stage"`
			} `json:"data"`
		}
		_ = json.Unmarshal(d.Body, &doc)
		key := d.Event
		if doc.Data.Stage != "" {
			key += " " + doc.Data.Stage
		}
		out[key+" "+d.Channel]++
	}
	return out
}

// TestDeadlineAlertsOnceEach: a stage within its warning time gets one
// "approaching" notification per target, a stage past its deadline one
// "overdue", however often the deadlines are checked.
func TestDeadlineAlertsOnceEach(t *testing.T) {
	w := newWorld(t, notify.Targets{Webhooks: []string{"https://hooks.example/cert"}, Emails: []string{"duty@cert.example"}})
	ctx := context.Background()
	inc := w.report("nis2") // aware 1h ago; early warning met by the report
	want := map[string]int{"incident.reported webhook": 1, "incident.reported email": 1}
	check := func(when string) {
		t.Helper()
		got := events(t, w.st)
		if len(got) != len(want) {
			t.Fatalf("%s: notifications %v, want %v", when, got, want)
		}
		for k, n := range want {
			if got[k] != n {
				t.Fatalf("%s: notifications %v, want %v", when, got, want)
			}
		}
	}
	tick := func(wantAlerts int) {
		t.Helper()
		n, err := w.svc.Tick(ctx)
		if err != nil || n != wantAlerts {
			t.Fatalf("Tick = %d, %v; want %d", n, err, wantAlerts)
		}
	}
	tick(0)
	check("reported")
	// The acknowledgement (24h, warned 6h before) enters its warning time
	// at 18h after the early warning.
	w.clock.Add(18*time.Hour - time.Second)
	tick(0)
	w.clock.Add(time.Second)
	tick(1)
	tick(0)
	want["stage.approaching acknowledgement webhook"] = 1
	want["stage.approaching acknowledgement email"] = 1
	check("18h")
	// 6h later it is overdue.
	w.clock.Add(6*time.Hour + time.Second)
	tick(1)
	tick(0)
	want["stage.overdue acknowledgement webhook"] = 1
	want["stage.overdue acknowledgement email"] = 1
	check("24h")
	// The notification (72h after awareness, warned 18h before: at 54h).
	w.clock.Add(30 * time.Hour)
	tick(1)
	want["stage.approaching notification webhook"] = 1
	want["stage.approaching notification email"] = 1
	check("55h")
	// Met stages and closed incidents alert no more.
	if _, err := w.svc.Acknowledge(ctx, w.certP, inc.ID, ""); err != nil {
		t.Fatal(err)
	}
	want["incident.acknowledged webhook"] = 1
	want["incident.acknowledged email"] = 1
	if _, err := w.svc.Close(ctx, w.certP, inc.ID, ""); err != nil {
		t.Fatal(err)
	}
	want["incident.closed webhook"] = 1
	want["incident.closed email"] = 1
	w.clock.Add(100 * 24 * time.Hour)
	tick(0)
	check("closed")
}

// TestIncidentNotificationsReachASigningReceiver runs the service and the
// queue together against a webhook receiver that verifies signatures.
func TestIncidentNotificationsReachASigningReceiver(t *testing.T) {
	secret := []byte("incident-hook-secret")
	var mu sync.Mutex
	var got []string
	var refused int
	// The receiver checks against real time: signatures carry the time of
	// sending, which the queue takes from its own clock.
	v := &notify.Verifier{Secret: secret}
	ts := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := v.Verify(r.Header, body); err != nil {
			refused++
			http.Error(rw, err.Error(), http.StatusUnauthorized)
			return
		}
		got = append(got, r.Header.Get(notify.HeaderEvent))
	}))
	defer ts.Close()
	w := newWorld(t, notify.Targets{Webhooks: []string{ts.URL}})
	q := notify.New(notify.Config{Store: w.st.(notify.Store), Senders: map[string]notify.Sender{
		notify.ChannelWebhook: &notify.WebhookSender{Secret: secret}}})
	inc := w.report("gossopka")
	if _, err := w.svc.Acknowledge(context.Background(), w.certP, inc.ID, "on it"); err != nil {
		t.Fatal(err)
	}
	if n, err := q.RunOnce(context.Background()); err != nil || n != 2 {
		t.Fatalf("RunOnce = %d, %v", n, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if refused != 0 || len(got) != 2 || got[0] != "incident.reported" || got[1] != "incident.acknowledged" {
		t.Fatalf("received %v, refused %d", got, refused)
	}
}
