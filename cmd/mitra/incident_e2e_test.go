package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/mitra-cert/mitra/internal/notify"
)

// hookReceiver is the test's webhook endpoint: it verifies every
// signature (and refuses replays), holds the first delivery without
// answering (the server is killed meanwhile), and accepts the later ones.
type hookReceiver struct {
	verifier *notify.Verifier
	arrived  chan string // delivery ids, as they arrive
	mu       sync.Mutex
	held     bool
	got      map[string]string // delivery id -> event, accepted
	refused  []string
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id := r.Header.Get(notify.HeaderDelivery)
	h.mu.Lock()
	if err := h.verifier.Verify(r.Header, body); err != nil {
		h.refused = append(h.refused, err.Error())
		h.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	hold := !h.held
	h.held = true
	if !hold {
		var doc struct {
			Event string `json:"event"`
		}
		_ = json.Unmarshal(body, &doc)
		h.got[id] = doc.Event
	}
	h.mu.Unlock()
	h.arrived <- id
	if hold {
		// No answer: the sender dies before it learns anything.
		<-r.Context().Done()
		return
	}
}

// smtpBox is a real SMTP server (emersion/go-smtp) keeping what it gets.
type smtpBox struct {
	mu    sync.Mutex
	mails []string
}

func (b *smtpBox) NewSession(*smtp.Conn) (smtp.Session, error) { return &smtpSession{b: b}, nil }

type smtpSession struct{ b *smtpBox }

func (s *smtpSession) Reset()                               {}
func (s *smtpSession) Logout() error                        { return nil }
func (s *smtpSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *smtpSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.b.mu.Lock()
	s.b.mails = append(s.b.mails, string(b))
	s.b.mu.Unlock()
	return err
}

// TestIncidentNotificationSurvivesKill9: an operator reports an incident
// through the CLI; the webhook delivery it causes is in flight when the
// server is killed with SIGKILL; after a restart it arrives (same delivery
// id, newly signed), and the e-mail reaches a real SMTP server. The CERT
// acknowledges, the operator follows up and the CERT closes through the
// CLI; an outsider sees nothing.
func TestIncidentNotificationSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped in -short")
	}
	bin, err := buildMitra()
	if err != nil {
		t.Fatal(err)
	}
	secret := "hook-secret-e2e"
	hooks := &hookReceiver{verifier: &notify.Verifier{Secret: []byte(secret)}, arrived: make(chan string, 16), got: map[string]string{}}
	hs := httptest.NewServer(hooks)
	defer hs.Close()
	box := &smtpBox{}
	ms := smtp.NewServer(box)
	ms.Domain = "mail.test"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = ms.Serve(ln) }()
	defer ms.Close()

	data := t.TempDir()
	args := []string{"--data", data, "--notify-webhook", hs.URL + "/mitra", "--notify-webhook-secret", secret,
		"--notify-email", "duty@cert.example", "--notify-smtp-addr", ln.Addr().String(), "--notify-smtp-from", "mitra@cert.example",
		"--notify-poll", "100ms", "--notify-webhook-timeout", "2s", "--notify-lease", "3s"}

	// Organisations, users and the incident collection, before the server.
	runCLI(t, bin, nil, "migrate", "--data", data)
	operator := strings.TrimSpace(runCLI(t, bin, nil, "org", "create", "--data", data, "Grid Operator A"))
	cert := strings.TrimSpace(runCLI(t, bin, nil, "org", "create", "--data", data, "CERT-A"))
	other := strings.TrimSpace(runCLI(t, bin, nil, "org", "create", "--data", data, "Bank B"))
	for _, u := range [][2]string{{"op", operator}, {"cert", cert}, {"bob", other}} {
		runCLI(t, bin, []string{"MITRA_USER_PASSWORD=" + u[0] + "-password-1"}, "user", "create", "--data", data, "--org", u[1], u[0])
	}
	col := strings.TrimSpace(runCLI(t, bin, nil, "collection", "create", "--data", data, "--title", "Incidents",
		"--readers", "op,cert,bob", "--writers", "op,cert,bob"))

	srv := launchServer(t, bin, args...)
	srv.waitListening(t)
	as := func(user string) []string {
		return []string{"MITRA_URL=" + srv.base, "MITRA_USER=" + user, "MITRA_PASSWORD=" + user + "-password-1"}
	}
	out := runCLI(t, bin, as("op"), "incident", "report", "--json", "--collection", col, "--regime", "nis2", "--cert", cert,
		"--name", "Substation SCADA outage", "--sector", "energy", "--severity", "high", "--cross-border",
		"--aware-at", time.Now().Add(-2*time.Hour).UTC().Format(time.RFC3339))
	var inc struct {
		ID     string `json:"id"`
		State  string `json:"state"`
		Stages []struct {
			Name, Status string
		} `json:"stages"`
	}
	if err := json.Unmarshal([]byte(out), &inc); err != nil || inc.State != "reported" {
		t.Fatalf("report printed %s: %v", out, err)
	}

	// The webhook delivery is in flight: kill -9.
	var first string
	select {
	case first = <-hooks.arrived:
	case <-time.After(30 * time.Second):
		t.Fatalf("no webhook delivery arrived\n%s", srv.logs)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-srv.done

	srv2 := launchServer(t, bin, args...)
	srv2.waitListening(t)
	deadline := time.After(60 * time.Second)
	for {
		hooks.mu.Lock()
		ev, ok := hooks.got[first]
		hooks.mu.Unlock()
		if ok {
			if ev != "incident.reported" {
				t.Fatalf("redelivered event %q", ev)
			}
			break
		}
		select {
		case <-hooks.arrived:
		case <-deadline:
			t.Fatalf("the interrupted delivery %s did not arrive after the restart\n%s", first, srv2.logs)
		}
	}
	hooks.mu.Lock()
	if len(hooks.refused) != 0 {
		t.Errorf("receiver refused %v", hooks.refused)
	}
	hooks.mu.Unlock()

	// The CERT acknowledges through the CLI.
	as2 := func(user string) []string {
		return []string{"MITRA_URL=" + srv2.base, "MITRA_USER=" + user, "MITRA_PASSWORD=" + user + "-password-1"}
	}
	out = runCLI(t, bin, as2("cert"), "incident", "update", inc.ID, "--state", "acknowledged", "--note", "received")
	if !strings.Contains(out, "state acknowledged") || !regexp.MustCompile(`acknowledgement\s+cert\s+met`).MatchString(out) {
		t.Errorf("update printed:\n%s", out)
	}
	if out := runCLI(t, bin, as2("op"), "incident", "list"); !strings.Contains(out, inc.ID) || !strings.Contains(out, "notification due") {
		t.Errorf("operator's list lacks the incident or its next deadline:\n%s", out)
	}
	out = runCLI(t, bin, as2("op"), "incident", "update", inc.ID, "--report", "intermediate", "--text", "one substation affected")
	if !strings.Contains(out, "report report--") || !regexp.MustCompile(`notification\s+operator\s+met`).MatchString(out) {
		t.Errorf("follow-up printed:\n%s", out)
	}
	out = runCLI(t, bin, as2("cert"), "incident", "close", inc.ID, "--note", "handled")
	if !strings.Contains(out, "state closed") || !strings.Contains(out, "transition acknowledged -> closed") {
		t.Errorf("close printed:\n%s", out)
	}
	if out := runCLI(t, bin, as2("op"), "incident", "show", inc.ID); !strings.Contains(out, "follow-up intermediate") {
		t.Errorf("show printed:\n%s", out)
	}
	if out := runCLI(t, bin, as2("bob"), "incident", "list"); strings.Contains(out, inc.ID) {
		t.Errorf("an outsider lists the TLP:AMBER+STRICT incident:\n%s", out)
	}

	// Every notification is delivered at last, and listed.
	deadline = time.After(60 * time.Second)
	for {
		out = runCLI(t, bin, nil, "notify", "list", "--data", data, "--json")
		if strings.Count(out, `"state":"delivered"`) == 8 && strings.Count(out, "\n") == 8 {
			break
		}
		select {
		case <-hooks.arrived:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatalf("notifications not all delivered:\n%s\n%s", out, srv2.logs)
		}
	}
	box.mu.Lock()
	defer box.mu.Unlock()
	var reported, acked bool
	for _, m := range box.mails {
		reported = reported || strings.Contains(m, "Subject: Incident reported: Substation SCADA outage")
		acked = acked || strings.Contains(m, "Subject: Incident acknowledged: Substation SCADA outage")
	}
	if !reported || !acked {
		t.Errorf("mailbox (%d messages) lacks the report or the acknowledgement", len(box.mails))
	}
}
