package notify_test

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/mitra-cert/mitra/internal/notify"
	"github.com/mitra-cert/mitra/internal/store"
)

// receiver is a webhook endpoint that verifies every request as a real
// receiver would, and answers with the statuses it is told to.
type receiver struct {
	t        *testing.T
	verifier *notify.Verifier
	mu       sync.Mutex
	statuses []int // answers, in order; then 200
	got      []received
	refused  []error
}

type received struct {
	id, event string
	body      []byte
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err := rc.verifier.Verify(r.Header, body); err != nil {
		rc.refused = append(rc.refused, err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	status := http.StatusOK
	if len(rc.statuses) > 0 {
		status, rc.statuses = rc.statuses[0], rc.statuses[1:]
	}
	if status == http.StatusOK {
		rc.got = append(rc.got, received{r.Header.Get(notify.HeaderDelivery), r.Header.Get(notify.HeaderEvent), body})
	}
	w.WriteHeader(status)
}

var secret = []byte("s3cret-shared-with-the-receiver")

func TestWebhookSignedDeliveredOnce(t *testing.T) {
	st := current.NewStore(t)
	clk := newClock()
	rc := &receiver{t: t, verifier: &notify.Verifier{Secret: secret, Now: clk.Now}}
	ts := httptest.NewServer(rc)
	defer ts.Close()
	q := notify.New(notify.Config{Store: st, Now: clk.Now, Senders: map[string]notify.Sender{
		notify.ChannelWebhook: &notify.WebhookSender{Secret: secret}}})
	d, err := notify.Webhook(ts.URL+"/hook", notify.Message{Event: "incident.reported", Subject: "Incident reported", Payload: map[string]any{"incident": "incident--1"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if n, err := q.RunOnce(t.Context()); err != nil || n != 1 {
		t.Fatalf("RunOnce = %d, %v", n, err)
	}
	if n, err := q.RunOnce(t.Context()); err != nil || n != 0 {
		t.Fatalf("second RunOnce = %d, %v (a delivered notification is not sent again)", n, err)
	}
	if len(rc.got) != 1 || rc.got[0].id != d.ID || rc.got[0].event != "incident.reported" {
		t.Fatalf("received %+v", rc.got)
	}
	var doc struct {
		Event string         `json:"event"`
		Data  map[string]any `json:"data"`
	}
	if err := json.Unmarshal(rc.got[0].body, &doc); err != nil || doc.Event != "incident.reported" || doc.Data["incident"] != "incident--1" {
		t.Fatalf("body %s: %v", rc.got[0].body, err)
	}
	ds := list(t, st)
	if len(ds) != 1 || ds[0].State != store.NotificationDelivered || ds[0].Attempts != 1 || !ds[0].Delivered.Equal(clk.Now()) {
		t.Fatalf("listed %+v", ds)
	}
}

func TestVerifierRefusesTamperedStaleAndReplayed(t *testing.T) {
	clk := newClock()
	v := &notify.Verifier{Secret: secret, Now: clk.Now, Tolerance: 5 * time.Minute}
	body := []byte(`{"event":"x"}`)
	h := http.Header{}
	h.Set(notify.HeaderSignature, notify.Sign(secret, body, clk.Now()))
	if err := v.Verify(h, body); err != nil {
		t.Fatalf("fresh signature: %v", err)
	}
	if err := v.Verify(h, body); !errors.Is(err, notify.ErrReplay) {
		t.Fatalf("same request again: %v, want ErrReplay", err)
	}
	if err := v.Verify(h, []byte(`{"event":"y"}`)); !errors.Is(err, notify.ErrBadSignature) {
		t.Fatalf("tampered body: %v, want ErrBadSignature", err)
	}
	other := http.Header{}
	other.Set(notify.HeaderSignature, notify.Sign([]byte("another secret"), body, clk.Now()))
	if err := v.Verify(other, body); !errors.Is(err, notify.ErrBadSignature) {
		t.Fatalf("wrong secret: %v, want ErrBadSignature", err)
	}
	old := http.Header{}
	old.Set(notify.HeaderSignature, notify.Sign(secret, body, clk.Now().Add(-6*time.Minute)))
	if err := v.Verify(old, body); !errors.Is(err, notify.ErrStale) {
		t.Fatalf("6 minutes old: %v, want ErrStale", err)
	}
	// A timestamp changed by hand breaks the signature.
	forged := http.Header{}
	forged.Set(notify.HeaderSignature, strings.Replace(old.Get(notify.HeaderSignature), "t=", "t=1", 1))
	if err := v.Verify(forged, body); !errors.Is(err, notify.ErrBadSignature) {
		t.Fatalf("forged timestamp: %v, want ErrBadSignature", err)
	}
	if err := v.Verify(http.Header{}, body); !errors.Is(err, notify.ErrBadSignature) {
		t.Fatalf("unsigned: %v, want ErrBadSignature", err)
	}
}

func TestRetryWithBackoffThenPermanentFailure(t *testing.T) {
	st := current.NewStore(t)
	clk := newClock()
	rc := &receiver{t: t, verifier: &notify.Verifier{Secret: secret, Now: clk.Now},
		statuses: []int{http.StatusInternalServerError, http.StatusServiceUnavailable}}
	ts := httptest.NewServer(rc)
	defer ts.Close()
	q := notify.New(notify.Config{Store: st, Now: clk.Now, BackoffBase: time.Minute, BackoffMax: 10 * time.Minute,
		Senders: map[string]notify.Sender{notify.ChannelWebhook: &notify.WebhookSender{Secret: secret}}})
	d, _ := notify.Webhook(ts.URL, notify.Message{Event: "stage.overdue"})
	if err := q.Enqueue(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	run := func(want int) {
		t.Helper()
		if n, err := q.RunOnce(t.Context()); err != nil || n != want {
			t.Fatalf("RunOnce = %d, %v; want %d", n, err, want)
		}
	}
	run(1) // 500
	if ds := list(t, st); ds[0].State != store.NotificationPending || ds[0].Attempts != 1 || !ds[0].NextAttempt.Equal(clk.Now().Add(time.Minute)) || ds[0].LastError == "" {
		t.Fatalf("after a 500: %+v", ds[0])
	}
	clk.Add(59 * time.Second)
	run(0) // not yet due
	clk.Add(time.Second)
	run(1) // 503; next in 2 minutes
	clk.Add(119 * time.Second)
	run(0)
	clk.Add(time.Second)
	run(1) // 200
	ds := list(t, st)
	if ds[0].State != store.NotificationDelivered || ds[0].Attempts != 3 || len(rc.got) != 1 {
		t.Fatalf("after retries: %+v, received %d", ds[0], len(rc.got))
	}
	if got := []time.Duration{q.Backoff(1), q.Backoff(2), q.Backoff(4), q.Backoff(5), q.Backoff(50)}; got[0] != time.Minute || got[1] != 2*time.Minute || got[2] != 8*time.Minute || got[3] != 10*time.Minute || got[4] != 10*time.Minute {
		t.Fatalf("backoffs = %v", got)
	}

	// A 404 will not get better: failed for good, kept and listed.
	rc.statuses = []int{http.StatusNotFound}
	d2, _ := notify.Webhook(ts.URL+"/gone", notify.Message{Event: "incident.closed"})
	if err := q.Enqueue(t.Context(), d2); err != nil {
		t.Fatal(err)
	}
	run(1)
	for _, d := range list(t, st) {
		if d.ID == d2.ID && (d.State != store.NotificationFailed || !strings.Contains(d.LastError, "404")) {
			t.Fatalf("after a 404: %+v", d)
		}
	}
}

func TestLeaseOfACrashedSenderExpires(t *testing.T) {
	st := current.NewStore(t)
	clk := newClock()
	rc := &receiver{t: t, verifier: &notify.Verifier{Secret: secret, Now: clk.Now}}
	ts := httptest.NewServer(rc)
	defer ts.Close()
	q := notify.New(notify.Config{Store: st, Now: clk.Now, Lease: time.Minute,
		Senders: map[string]notify.Sender{notify.ChannelWebhook: &notify.WebhookSender{Secret: secret}}})
	d, _ := notify.Webhook(ts.URL, notify.Message{Event: "incident.reported"})
	if err := q.Enqueue(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	// Another process claims it and dies before it records anything.
	claimed, err := st.ClaimNotifications(t.Context(), clk.Now(), time.Minute, 10)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim = %v, %v", claimed, err)
	}
	if n, _ := q.RunOnce(t.Context()); n != 0 {
		t.Fatalf("a leased notification was sent again within its lease")
	}
	clk.Add(time.Minute)
	if n, err := q.RunOnce(t.Context()); err != nil || n != 1 || len(rc.got) != 1 {
		t.Fatalf("after the lease: %d, %v, received %d", n, err, len(rc.got))
	}
}

func TestNoSenderWaitsAndKeeps(t *testing.T) {
	st := current.NewStore(t)
	clk := newClock()
	q := notify.New(notify.Config{Store: st, Now: clk.Now, MaxAttempts: 0})
	d, _ := notify.Email("cert@example.org", notify.Message{Event: "incident.reported"})
	if err := q.Enqueue(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := q.RunOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
		clk.Add(2 * time.Hour)
	}
	ds := list(t, st)
	if ds[0].State != store.NotificationPending || ds[0].Attempts != 5 || !strings.Contains(ds[0].LastError, "no email sender") {
		t.Fatalf("without SMTP: %+v", ds[0])
	}
}

func TestTargetsRefuseBadAddresses(t *testing.T) {
	for _, tg := range []notify.Targets{{Webhooks: []string{"ftp://x"}}, {Webhooks: []string{"not a url"}}, {Emails: []string{"nobody"}}} {
		if err := tg.Validate(); !errors.Is(err, notify.ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", tg, err)
		}
	}
}

// mailbox is a real SMTP server (github.com/emersion/go-smtp) that keeps
// what it receives.
type mailbox struct {
	mu    sync.Mutex
	mails []mail
	// reject makes RCPT fail with this code.
	reject int
}

type mail struct {
	from string
	to   []string
	data string
}

func (m *mailbox) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{box: m}, nil }

type session struct {
	box *mailbox
	cur mail
}

func (s *session) Reset()        { s.cur = mail{} }
func (s *session) Logout() error { return nil }
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.cur.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.box.mu.Lock()
	reject := s.box.reject
	s.box.mu.Unlock()
	if reject != 0 {
		return &smtp.SMTPError{Code: reject, Message: "no such mailbox"}
	}
	s.cur.to = append(s.cur.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = string(b)
	s.box.mu.Lock()
	s.box.mails = append(s.box.mails, s.cur)
	s.box.mu.Unlock()
	return nil
}

func startSMTP(t *testing.T, box *mailbox) string {
	t.Helper()
	srv := smtp.NewServer(box)
	srv.Domain = "mail.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestEmailReceivedByRealSMTPServer(t *testing.T) {
	st := current.NewStore(t)
	clk := newClock()
	box := &mailbox{}
	addr := startSMTP(t, box)
	q := notify.New(notify.Config{Store: st, Now: clk.Now, Senders: map[string]notify.Sender{
		notify.ChannelEmail: &notify.Mailer{Addr: addr, From: "mitra@cert.example"}}})
	d, err := notify.Email("duty@cert.example", notify.Message{Event: "stage.overdue", Subject: "Deadline overdue (notification): Substation outage",
		Payload: map[string]any{"incident": "incident--42", "stage": "notification"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if n, err := q.RunOnce(t.Context()); err != nil || n != 1 {
		t.Fatalf("RunOnce = %d, %v", n, err)
	}
	box.mu.Lock()
	mails := box.mails
	box.mu.Unlock()
	if len(mails) != 1 {
		t.Fatalf("mailbox has %d messages", len(box.mails))
	}
	m := mails[0]
	if m.from != "mitra@cert.example" || len(m.to) != 1 || m.to[0] != "duty@cert.example" {
		t.Fatalf("envelope %+v", m)
	}
	for _, want := range []string{"Subject: Deadline overdue (notification): Substation outage", "X-Mitra-Delivery: " + d.ID,
		`"incident": "incident--42"`, "X-Mitra-Event: stage.overdue"} {
		if !strings.Contains(m.data, want) {
			t.Errorf("message lacks %q:\n%s", want, m.data)
		}
	}
	if ds := list(t, st); ds[0].State != store.NotificationDelivered {
		t.Fatalf("listed %+v", ds[0])
	}

	// A 550 for the recipient fails for good.
	box.mu.Lock()
	box.reject = 550
	box.mu.Unlock()
	d2, _ := notify.Email("gone@cert.example", notify.Message{Event: "incident.closed"})
	if err := q.Enqueue(t.Context(), d2); err != nil {
		t.Fatal(err)
	}
	if _, err := q.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, d := range list(t, st) {
		if d.ID == d2.ID && (d.State != store.NotificationFailed || !strings.Contains(d.LastError, "550")) {
			t.Fatalf("after a 550: %+v", d)
		}
	}
}
