package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/mitra-cert/mitra/internal/assist"
	"github.com/mitra-cert/mitra/internal/drill"
	"github.com/mitra-cert/mitra/internal/federation"
	"github.com/mitra-cert/mitra/internal/notify"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxii"
)

// AssistServeFlags configure cross-border assistance in the server
// (issue 15).
type AssistServeFlags struct {
	Collection string        `name:"collection" default:"assist" env:"MITRA_ASSIST_COLLECTION" help:"Collection (id or alias) of assistance requests, sent and received; peers deliver into it."`
	Directory  string        `name:"directory" default:"directory" env:"MITRA_ASSIST_DIRECTORY" help:"Collection (id or alias) of the directory of points of contact."`
	Tick       time.Duration `name:"tick" default:"1m" env:"MITRA_ASSIST_TICK" help:"How often overdue requests are escalated and pending deliveries retried; 0: only on POST /x-mitra-assist/tick."`
	PocKey     string        `name:"poc-key" env:"MITRA_POC_KEY" help:"Secret that signs the answer links of reachability challenges (mitra poc ping)."`
	PublicURL  string        `name:"public-url" env:"MITRA_PUBLIC_URL" help:"The server's address as contacts reach it, in answer links (default: http(s)://--addr)."`
	// Drills run the same service over their own collections, marked as
	// exercises, under /x-mitra-drill/.
	DrillCollection string `name:"drill-collection" default:"drill" env:"MITRA_DRILL_COLLECTION" help:"Collection (id or alias) of drill (exercise) requests, incidents and indicators; never federated by real links."`
	DrillDirectory  string `name:"drill-directory" default:"drill-directory" env:"MITRA_DRILL_DIRECTORY" help:"Collection (id or alias) of the drill directory of points of contact."`
	// ClockFile, for tests across processes: the assistance clock reads
	// the time (RFC 3339) from this file instead of the system clock.
	ClockFile string `name:"clock-file" hidden:"" env:"MITRA_ASSIST_CLOCK_FILE"`
}

// AssistServerFlags name the server of the assistance API and the
// credentials.
type AssistServerFlags struct {
	URL      string `name:"url" default:"http://127.0.0.1:8080" env:"MITRA_URL" help:"Address of the Mitra server."`
	User     string `env:"MITRA_USER" help:"HTTP Basic user."`
	Password string `env:"MITRA_PASSWORD" help:"HTTP Basic password."`
	Token    string `env:"MITRA_TOKEN" help:"API token (Bearer)."`
	JSON     bool   `help:"Print JSON."`
	Drill    bool   `help:"Use the server's drill (exercise) service and directory instead of the real ones."`
}

func (f AssistServerFlags) client() (*assist.Client, error) {
	cl, err := assist.NewClient(f.URL)
	if err != nil {
		return nil, err
	}
	cl.User, cl.Password, cl.Token = f.User, f.Password, f.Token
	if f.Drill {
		cl.Prefix, cl.PocPrefix = drill.Prefix, drill.Prefix
	}
	return cl, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// AssistCmd groups the assistance commands.
type AssistCmd struct {
	Raise AssistRaiseCmd `cmd:"" help:"Raise an assistance request to another country's point of contact."`
	List  AssistListCmd  `cmd:"" help:"List the assistance requests you may see, sent and received."`
	Show  AssistShowCmd  `cmd:"" help:"Show a request: its history on both sides, its clock and its deliveries."`
	Step  AssistStepCmd  `cmd:"" help:"Acknowledge, answer, ask for more, accept or decline a request (or, as its requester, give information)."`
	Tick  AssistTickCmd  `cmd:"" help:"Run the server's assistance clock now: escalate overdue requests, retry deliveries."`
}

// AssistRaiseCmd raises a request.
type AssistRaiseCmd struct {
	AssistServerFlags `embed:""`
	Contact           string        `required:"" help:"Point of contact (identity id from mitra poc list)."`
	Kind              string        `required:"" enum:"information,analysis,takedown,blocking,coordination" help:"information, analysis, takedown, blocking or coordination."`
	Concerns          []string      `required:"" sep:"," help:"Ids of the incident and objects the request concerns."`
	TLP               string        `name:"tlp" default:"amber" help:"TLP level of the request."`
	ResponseTime      time.Duration `name:"response-time" required:"" help:"Requested response time (for example 4h); an overdue request escalates to the next contact."`
	Abstract          string        `help:"One-line summary."`
	Content           string        `help:"What is asked."`
}

// Run implements the command.
func (c *AssistRaiseCmd) Run(ctx context.Context, e *env) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	r, err := cl.Raise(ctx, assist.RaiseBody{Contact: c.Contact, Kind: c.Kind, Concerns: c.Concerns, TLP: c.TLP, ResponseTime: c.ResponseTime.String(), Abstract: c.Abstract, Content: c.Content})
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(e.stdout, r)
	}
	fmt.Fprintf(e.stdout, "%s\n", r.ID)
	fmt.Fprintf(e.stderr, "Request raised; due %s.\n", r.Due.Format(time.RFC3339))
	return nil
}

// AssistListCmd lists requests.
type AssistListCmd struct {
	AssistServerFlags `embed:""`
}

// Run implements the command.
func (c *AssistListCmd) Run(ctx context.Context, e *env) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	l, err := cl.List(ctx)
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(e.stdout, l)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tDIRECTION\tKIND\tFROM\tSTATE\tDUE\tESCALATIONS")
	for _, r := range l {
		dir, due := "sent", r.Due.Format(time.RFC3339)
		if r.Incoming {
			dir = "received"
		}
		if r.Overdue {
			due += " (overdue)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", r.ID, dir, r.Kind, r.RequesterName, r.State, due, r.Escalations)
	}
	return tw.Flush()
}

// AssistShowCmd shows a request.
type AssistShowCmd struct {
	AssistServerFlags `embed:""`
	ID                string `arg:"" help:"Request id."`
}

// Run implements the command.
func (c *AssistShowCmd) Run(ctx context.Context, e *env) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	r, err := cl.Get(ctx, c.ID)
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(e.stdout, r)
	}
	printRequest(e.stdout, r)
	return nil
}

func printRequest(w io.Writer, r *assist.Request) {
	fmt.Fprintf(w, "Request: %s\nKind: %s\nFrom: %s (%s)\nTLP: %s\nConcerns: %s\nContact: %s\nState: %s\n", r.ID, r.Kind, r.RequesterName, r.Requester,
		r.TLP, strings.Join(r.Concerns, ", "), r.Contact, r.State)
	fmt.Fprintf(w, "Raised: %s (received here %s)\nResponse time: %s, due %s", r.Created.Format(time.RFC3339), r.Received.Format(time.RFC3339), r.ResponseTime, r.Due.Format(time.RFC3339))
	if r.Overdue {
		fmt.Fprint(w, " (overdue)")
	}
	fmt.Fprintf(w, "\nEscalations: %d\n", r.Escalations)
	if r.Content != "" {
		fmt.Fprintf(w, "Content: %s\n", r.Content)
	}
	fmt.Fprintln(w, "History:")
	for _, s := range r.Steps {
		line := fmt.Sprintf("  %s  %s by %s", s.Created.Format(time.RFC3339), s.Message, s.AuthorName)
		if s.Contact != "" {
			line += " to " + s.Contact
		}
		if s.Content != "" {
			line += ": " + s.Content
		}
		fmt.Fprintf(w, "%s (received here %s)\n", line, s.Received.Format(time.RFC3339))
	}
	for _, d := range r.Deliveries {
		state := "delivered " + d.Delivered.Format(time.RFC3339)
		if d.Delivered.IsZero() {
			state = fmt.Sprintf("pending after %d attempts (next %s): %s", d.Attempts, d.NextAttempt.Format(time.RFC3339), d.LastError)
		}
		fmt.Fprintf(w, "Delivery to %s: %s\n", d.Route, state)
	}
}

// AssistStepCmd adds a step.
type AssistStepCmd struct {
	AssistServerFlags `embed:""`
	ID                string `arg:"" help:"Request id."`
	Message           string `arg:"" enum:"acknowledge,answer,more-information,accept,decline,information" help:"acknowledge, answer, more-information, accept, decline (the receiver) or information (the requester)."`
	Content           string `help:"Text of the step."`
}

// Run implements the command.
func (c *AssistStepCmd) Run(ctx context.Context, e *env) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	r, err := cl.Step(ctx, c.ID, c.Message, c.Content)
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(e.stdout, r)
	}
	printRequest(e.stdout, r)
	return nil
}

// AssistTickCmd runs the clock now.
type AssistTickCmd struct {
	AssistServerFlags `embed:""`
}

// Run implements the command.
func (c *AssistTickCmd) Run(ctx context.Context, e *env) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	r, err := cl.Tick(ctx)
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(e.stdout, r)
	}
	if r.Busy {
		fmt.Fprintln(e.stdout, "another process is running the assistance clock: nothing done")
		return nil
	}
	fmt.Fprintf(e.stdout, "escalated %d, overdue without a further contact %d, delivered %d, failed %d\n", len(r.Escalated), len(r.Overdue), r.Delivered, r.Failed)
	for _, m := range r.Errors {
		fmt.Fprintf(e.stdout, "  %s\n", m)
	}
	return nil
}

// assistRuntime is cross-border assistance running in a server.
type assistRuntime struct {
	svc   *assist.Service
	drill *assist.Service
	stop  context.CancelFunc
	done  chan struct{}
}

// Stop ends the clock and waits for it (before the store closes).
func (rt *assistRuntime) Stop() {
	rt.stop()
	<-rt.done
}

// startAssist builds the assistance service over st: notes stored through
// srv's ingest, delivered to peers with their credentials (sealer),
// challenges by e-mail and webhook through the notification queue.
func startAssist(ctx context.Context, st store.Store, srv *taxii.Server, sealer *federation.Sealer, queue *notify.Queue, log *slog.Logger, f AssistServeFlags, publicURL string) (*assistRuntime, error) {
	ast, ok := st.(assist.Store)
	if !ok {
		return nil, errors.New("assistance: the store cannot keep deliveries")
	}
	now := time.Now
	if f.ClockFile != "" {
		now = fileClock(f.ClockFile, log)
	}
	if f.PublicURL != "" {
		publicURL = strings.TrimRight(f.PublicURL, "/")
	}
	runner := &federation.Runner{Store: st, Sealer: sealer, Log: log}
	svc := assist.New(assist.Config{Store: ast, Check: srv.Check, Collection: f.Collection, Directory: f.Directory, Now: now, Log: log,
		Sender: &assist.PeerSender{Peers: st, Client: runner.Client}, Notifier: assist.NotifyQueue{Queue: queue}, PingKey: []byte(f.PocKey), PublicURL: publicURL})
	drillSvc := assist.New(assist.Config{Store: ast, Check: srv.Check, Collection: f.DrillCollection, Directory: f.DrillDirectory, Exercise: true,
		Now: now, Log: log.With("drill", true), Sender: &assist.PeerSender{Peers: st, Client: runner.Client}, Notifier: assist.NotifyQueue{Queue: queue},
		PingKey: []byte(f.PocKey), PublicURL: publicURL, PocPrefix: drill.Prefix})
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	rt := &assistRuntime{svc: svc, drill: drillSvc, stop: stop, done: make(chan struct{})}
	go func() {
		defer close(rt.done)
		if f.Tick <= 0 {
			return
		}
		var wg sync.WaitGroup
		for _, s := range []*assist.Service{svc, drillSvc} {
			wg.Go(func() {
				if err := s.Run(rctx, f.Tick); err != nil && !errors.Is(err, context.Canceled) {
					log.Error("assistance clock stopped", "err", err)
				}
			})
		}
		wg.Wait()
	}()
	return rt, nil
}

// fileClock reads the time from a file at each call (tests across
// processes inject their clock so); an unreadable file falls back to the
// system clock, with an error logged.
func fileClock(name string, log *slog.Logger) func() time.Time {
	return func() time.Time {
		b, err := os.ReadFile(name)
		if err == nil {
			var t time.Time
			if t, err = time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b))); err == nil {
				return t
			}
		}
		log.Error("assistance clock file unreadable: using the system clock", "file", name, "err", err)
		return time.Now()
	}
}

// publicURL is the server's own address for links, from its listen
// address.
func publicURL(addr string, useTLS bool) string {
	if useTLS {
		return "https://" + addr
	}
	return "http://" + addr
}
