package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mitra-cert/mitra/internal/drill"
	"github.com/mitra-cert/mitra/internal/incident"
	"github.com/mitra-cert/mitra/internal/notify"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxii"
)

// IncidentServeFlags configure incident coordination in the server
// (issue 15).
type IncidentServeFlags struct {
	Regimes string        `name:"regimes" env:"MITRA_INCIDENT_REGIMES" help:"YAML file of extra reporting regimes (besides nis2, gossopka, gossopka-significant); a bad file stops the server with the line and field at fault."`
	Sectors []string      `name:"sectors" sep:"," env:"MITRA_INCIDENT_SECTORS" help:"Critical-infrastructure sectors offered (default energy, water, health, transport, finance, digital-infrastructure, government)."`
	Tick    time.Duration `name:"tick" default:"1m" env:"MITRA_INCIDENT_TICK" help:"How often deadlines are checked for warnings and overdue alerts."`
}

// NotifyServeFlags configure the notification queue of the server.
type NotifyServeFlags struct {
	Webhooks       []string      `name:"webhook" sep:"," env:"MITRA_NOTIFY_WEBHOOKS" help:"Webhook URLs that receive every incident notification (JSON, signed)."`
	WebhookSecret  string        `name:"webhook-secret" env:"MITRA_NOTIFY_WEBHOOK_SECRET" help:"Shared secret of the webhook signatures (HMAC-SHA256); required with --notify-webhook."`
	WebhookTimeout time.Duration `name:"webhook-timeout" default:"30s" env:"MITRA_NOTIFY_WEBHOOK_TIMEOUT" help:"Longest wait for a webhook's answer."`
	Emails         []string      `name:"email" sep:"," env:"MITRA_NOTIFY_EMAILS" help:"E-mail addresses that receive every incident notification."`
	SMTPAddr       string        `name:"smtp-addr" env:"MITRA_NOTIFY_SMTP_ADDR" help:"SMTP server (host:port) that sends the e-mail."`
	SMTPFrom       string        `name:"smtp-from" env:"MITRA_NOTIFY_SMTP_FROM" help:"Sender address of the e-mail."`
	SMTPUser       string        `name:"smtp-user" env:"MITRA_NOTIFY_SMTP_USER" help:"SMTP user (PLAIN authentication, over TLS)."`
	SMTPPassword   string        `name:"smtp-password" env:"MITRA_NOTIFY_SMTP_PASSWORD" help:"SMTP password."`
	SMTPTLS        string        `name:"smtp-tls" default:"starttls" enum:"starttls,required,implicit" env:"MITRA_NOTIFY_SMTP_TLS" help:"starttls (when offered), required (refuse without STARTTLS) or implicit (TLS from the start, port 465)."`
	Poll           time.Duration `name:"poll" default:"5s" env:"MITRA_NOTIFY_POLL" help:"How often the queue looks for due notifications."`
	Lease          time.Duration `name:"lease" default:"2m" env:"MITRA_NOTIFY_LEASE" help:"How long a notification being sent is held: after a crash it is sent again once this passes."`
	BackoffBase    time.Duration `name:"backoff" default:"30s" env:"MITRA_NOTIFY_BACKOFF" help:"Wait after the first failed attempt; doubled after each further one."`
	BackoffMax     time.Duration `name:"backoff-max" default:"1h" env:"MITRA_NOTIFY_BACKOFF_MAX" help:"Longest wait between attempts."`
	MaxAttempts    int           `name:"max-attempts" default:"0" env:"MITRA_NOTIFY_MAX_ATTEMPTS" help:"Attempts before a notification is marked failed (0: retry for ever)."`
}

// incidentRuntime is incident coordination running in a server.
type incidentRuntime struct {
	svc *incident.Service
	// drill is the drills' incident service: exercise incidents only, on
	// the drill clock, with no notification to the real targets.
	drill *incident.Service
	queue *notify.Queue
	stop  context.CancelFunc
	done  chan struct{}
}

// startIncidents builds the incident service and the notification queue
// over st, publishing through srv's ingest, and runs the deadline checks
// and the queue until Stop.
//
// drillNow is the drill clock (the assistance clock file in tests; nil:
// the system clock).
func startIncidents(ctx context.Context, st store.Store, srv *taxii.Server, log *slog.Logger, f IncidentServeFlags, n NotifyServeFlags, drillNow func() time.Time) (*incidentRuntime, error) {
	ist, ok1 := st.(incident.Store)
	nst, ok2 := st.(notify.Store)
	if !ok1 || !ok2 {
		return nil, errors.New("incidents: the store cannot keep incidents")
	}
	var extra []incident.Regime
	if f.Regimes != "" {
		data, err := os.ReadFile(f.Regimes)
		if err != nil {
			return nil, fmt.Errorf("--incident-regimes: %w", err)
		}
		if extra, err = incident.ParseRegimes(f.Regimes, data); err != nil {
			return nil, fmt.Errorf("--incident-regimes: %w", err)
		}
	}
	regimes, err := incident.NewRegimes(extra...)
	if err != nil {
		return nil, err
	}
	if len(n.Webhooks) > 0 && n.WebhookSecret == "" {
		return nil, errors.New("--notify-webhook needs --notify-webhook-secret")
	}
	if len(n.Emails) > 0 && (n.SMTPAddr == "" || n.SMTPFrom == "") {
		return nil, errors.New("--notify-email needs --notify-smtp-addr and --notify-smtp-from")
	}
	senders := map[string]notify.Sender{
		notify.ChannelWebhook: &notify.WebhookSender{Secret: []byte(n.WebhookSecret), Client: &http.Client{Timeout: n.WebhookTimeout}},
	}
	if n.SMTPAddr != "" {
		senders[notify.ChannelEmail] = &notify.Mailer{Addr: n.SMTPAddr, From: n.SMTPFrom, User: n.SMTPUser, Password: n.SMTPPassword, TLS: n.SMTPTLS}
	}
	queue := notify.New(notify.Config{Store: nst, Senders: senders, Logger: log, BackoffBase: n.BackoffBase, BackoffMax: n.BackoffMax,
		MaxAttempts: n.MaxAttempts, Lease: n.Lease})
	svc, err := incident.New(incident.Config{Store: ist, Objects: st, Audit: st, Regimes: regimes, Sectors: f.Sectors, Logger: log,
		Publisher: &incident.Ingest{Check: srv.Check, Store: st, Path: incident.Prefix},
		Targets:   notify.Targets{Webhooks: n.Webhooks, Emails: n.Emails}})
	if err != nil {
		return nil, err
	}
	drillSvc, err := incident.New(incident.Config{Store: ist, Objects: st, Audit: st, Regimes: regimes, Sectors: f.Sectors,
		Logger: log.With("drill", true), Exercise: true, Now: drillNow,
		Publisher: &incident.Ingest{Check: srv.Check, Store: st, Path: drill.IncidentPrefix}})
	if err != nil {
		return nil, err
	}
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	rt := &incidentRuntime{svc: svc, drill: drillSvc, queue: queue, stop: stop, done: make(chan struct{})}
	go func() {
		defer close(rt.done)
		qdone := make(chan struct{})
		go func() {
			defer close(qdone)
			if err := queue.Run(rctx, n.Poll); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("notification queue stopped", "err", err)
			}
		}()
		if err := svc.Run(rctx, f.Tick); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("incident deadlines stopped", "err", err)
		}
		<-qdone
	}()
	return rt, nil
}

// Stop ends the background work and waits for it (before the store closes).
func (rt *incidentRuntime) Stop() {
	rt.stop()
	<-rt.done
}

// IncidentServerFlags name the server of the incident API and the
// credentials.
type IncidentServerFlags struct {
	URL      string `name:"url" default:"http://127.0.0.1:8080" env:"MITRA_URL" help:"Address of the Mitra server."`
	User     string `env:"MITRA_USER" help:"HTTP Basic user."`
	Password string `env:"MITRA_PASSWORD" help:"HTTP Basic password."`
	Token    string `env:"MITRA_TOKEN" help:"API token (Bearer)."`
	JSON     bool   `help:"Print JSON."`
}

func (f IncidentServerFlags) client() (*incident.Client, error) {
	cl, err := incident.NewClient(f.URL)
	if err != nil {
		return nil, err
	}
	cl.User, cl.Password, cl.Token = f.User, f.Password, f.Token
	return cl, nil
}

// IncidentCmd groups the incident commands.
type IncidentCmd struct {
	Report IncidentReportCmd `cmd:"" help:"Report an incident (as your organisation) to its CERT under a reporting regime."`
	List   IncidentListCmd   `cmd:"" help:"List the incidents you may see, with the next deadline of each."`
	Show   IncidentShowCmd   `cmd:"" help:"Show an incident: every stage as met, due (time left) or overdue, and its history."`
	Update IncidentUpdateCmd `cmd:"" help:"Move an incident on (acknowledge, investigate, mitigate), meet a stage, or add a follow-up report."`
	Close  IncidentCloseCmd  `cmd:"" help:"Close an incident (its clocks stop)."`
}

// IncidentReportCmd reports an incident.
type IncidentReportCmd struct {
	IncidentServerFlags `embed:""`
	Collection          string   `required:"" help:"Collection (id or alias) the incident is published to."`
	Regime              string   `default:"nis2" help:"Reporting regime: nis2, gossopka, gossopka-significant, or one the server loads."`
	CERT                string   `name:"cert" required:"" help:"The CERT's organisation (identity id) the incident is reported to."`
	Name                string   `required:"" help:"Short title."`
	Description         string   `help:"What happened."`
	Sector              string   `required:"" help:"Affected sector (energy, water, health, transport, finance, digital-infrastructure, government, or the server's list)."`
	Service             string   `help:"Affected service."`
	Severity            string   `required:"" enum:"low,medium,high,critical" help:"low, medium, high or critical."`
	Impact              string   `help:"Impact."`
	Cause               string   `help:"Suspected cause."`
	CrossBorder         bool     `name:"cross-border" help:"The incident affects other countries."`
	AwareAt             string   `name:"aware-at" help:"When your organisation became aware (RFC 3339; default now): the clocks start here."`
	TLP                 string   `name:"tlp" default:"amber+strict" help:"TLP level of the incident objects."`
	Recipients          []string `sep:"," help:"Further organisations (identity ids) the incident is released to, besides the CERT."`
	Related             []string `sep:"," help:"Ids of the indicators, observables, malware and attack patterns involved."`
	IdempotencyKey      string   `name:"idempotency-key" help:"Makes the report safe to retry: run the command again with the same key after a failure and it completes or returns the same incident, never a second one."`
}

// Run implements the command.
func (c *IncidentReportCmd) Run(ctx context.Context, e *env) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	aware := time.Now().UTC()
	if c.AwareAt != "" {
		if aware, err = time.Parse(time.RFC3339, c.AwareAt); err != nil {
			return fmt.Errorf("--aware-at: want RFC 3339 (2026-03-02T09:00:00Z): %w", err)
		}
	}
	inc, err := cl.Report(ctx, incident.Report{Collection: c.Collection, Regime: c.Regime, CERT: c.CERT, Name: c.Name,
		Description: c.Description, Sector: c.Sector, Service: c.Service, Severity: c.Severity, Impact: c.Impact,
		SuspectedCause: c.Cause, CrossBorder: c.CrossBorder, AwareAt: aware, TLP: c.TLP, Recipients: c.Recipients, Related: c.Related,
		IdempotencyKey: c.IdempotencyKey})
	if err != nil {
		return err
	}
	return printIncident(e, inc, c.JSON)
}

// IncidentListCmd lists incidents.
type IncidentListCmd struct {
	IncidentServerFlags `embed:""`
	State               string `help:"Only incidents in this state (reported, acknowledged, under-investigation, mitigated, closed)."`
	Limit               int    `default:"100" help:"At most this many, most recently updated first."`
}

// Run implements the command.
func (c *IncidentListCmd) Run(ctx context.Context, e *env) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	incs, err := cl.List(ctx, c.State, c.Limit)
	if err != nil {
		return err
	}
	if c.JSON {
		return json.NewEncoder(e.stdout).Encode(incs)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tREGIME\tNEXT DEADLINE\tNAME")
	for _, inc := range incs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", inc.ID, inc.State, inc.Regime, nextDeadline(inc), inc.Name)
	}
	return tw.Flush()
}

// nextDeadline is the most urgent unmet stage: the first overdue one, else
// the due one with least time left.
func nextDeadline(inc *incident.Incident) string {
	var best *incident.StageStatus
	for i := range inc.Stages {
		s := &inc.Stages[i]
		if s.Status != incident.StatusDue && s.Status != incident.StatusOverdue {
			continue
		}
		if best == nil || s.Left < best.Left {
			best = s
		}
	}
	if best == nil {
		return "-"
	}
	return fmt.Sprintf("%s %s (%s)", best.Name, best.Status, best.LeftText)
}

// IncidentShowCmd shows an incident.
type IncidentShowCmd struct {
	IncidentServerFlags `embed:""`
	ID                  string `arg:"" help:"Incident id."`
}

// Run implements the command.
func (c *IncidentShowCmd) Run(ctx context.Context, e *env) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	inc, err := cl.Get(ctx, c.ID)
	if err != nil {
		return err
	}
	return printIncident(e, inc, c.JSON)
}

func printIncident(e *env, inc *incident.Incident, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(e.stdout).Encode(inc)
	}
	fmt.Fprintf(e.stdout, "%s  %s\nstate %s  regime %s  reporter %s  cert %s\naware %s  reported %s  updated %s\n\n",
		inc.ID, inc.Name, inc.State, inc.Regime, inc.Reporter, inc.CERT,
		inc.AwareAt.Format(time.RFC3339), inc.Reported.Format(time.RFC3339), inc.Updated.Format(time.RFC3339))
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STAGE\tPARTY\tSTATUS\tDUE\tLEFT\tMET")
	for _, s := range inc.Stages {
		due, met := "-", "-"
		if !s.Due.IsZero() {
			due = s.Due.Format(time.RFC3339)
		}
		if s.Met != nil {
			met = s.Met.At.Format(time.RFC3339) + " by " + s.Met.User + " (" + s.Met.Organisation + ")"
			if s.Late {
				met += " late"
			}
		}
		left := s.LeftText
		if left == "" {
			left = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Party, s.Status, due, left, met)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(inc.History) > 0 {
		fmt.Fprintln(e.stdout)
		tw = tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tWHO\tEVENT\tDETAIL")
		for _, h := range inc.History {
			what := h.Kind
			switch {
			case h.To != "" && h.From != "":
				what += " " + h.From + " -> " + h.To
			case h.Stage != "":
				what += " " + h.Stage
			}
			detail := strings.TrimSpace(h.Note + " " + h.Ref)
			fmt.Fprintf(tw, "%s\t%s (%s)\t%s\t%s\n", h.At.Format(time.RFC3339), h.User, h.Organisation, what, detail)
		}
		return tw.Flush()
	}
	return nil
}

// IncidentUpdateCmd moves an incident on, meets a stage or adds a
// follow-up report.
type IncidentUpdateCmd struct {
	IncidentServerFlags `embed:""`
	ID                  string   `arg:"" help:"Incident id."`
	State               string   `help:"New state: acknowledged (the CERT), under-investigation, mitigated, closed."`
	Stage               string   `help:"Record this stage of the regime as met by other means."`
	Report              string   `help:"Add a follow-up report: intermediate, final (the operator) or feedback (the CERT)." enum:",intermediate,final,feedback" default:""`
	Text                string   `help:"Text of the follow-up report."`
	Refs                []string `sep:"," help:"Further objects the follow-up report refers to."`
	Note                string   `help:"Note recorded with the step."`
}

// Run implements the command.
func (c *IncidentUpdateCmd) Run(ctx context.Context, e *env) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	steps := 0
	for _, s := range []string{c.State, c.Stage, c.Report} {
		if s != "" {
			steps++
		}
	}
	if steps != 1 {
		return errors.New("give exactly one of --state, --stage, --report")
	}
	var inc *incident.Incident
	switch {
	case c.State != "":
		inc, err = cl.Transition(ctx, c.ID, c.State, c.Note)
	case c.Stage != "":
		inc, err = cl.MeetStage(ctx, c.ID, c.Stage, c.Note)
	default:
		var res *incident.FollowUpResponse
		res, err = cl.FollowUp(ctx, c.ID, incident.FollowUp{Kind: c.Report, Text: c.Text, Name: c.Note, Refs: c.Refs})
		if err == nil {
			inc = res.Incident
			if !c.JSON {
				fmt.Fprintf(e.stdout, "report %s\n", res.Report)
			}
		}
	}
	if err != nil {
		return err
	}
	return printIncident(e, inc, c.JSON)
}

// IncidentCloseCmd closes an incident.
type IncidentCloseCmd struct {
	IncidentServerFlags `embed:""`
	ID                  string `arg:"" help:"Incident id."`
	Note                string `help:"Note recorded with the step."`
}

// Run implements the command.
func (c *IncidentCloseCmd) Run(ctx context.Context, e *env) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	inc, err := cl.Transition(ctx, c.ID, string(incident.StateClosed), c.Note)
	if err != nil {
		return err
	}
	return printIncident(e, inc, c.JSON)
}
