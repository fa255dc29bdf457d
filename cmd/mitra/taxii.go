package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/federation"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxii"
	"github.com/mitra-cert/mitra/internal/taxiiclient"
	"github.com/schollz/progressbar/v3"
)

// TAXIICmd moves objects between the local store and remote TAXII servers.
type TAXIICmd struct {
	Pull TAXIIPullCmd `cmd:"" help:"Pull a remote TAXII collection into a local collection (resumable: an interrupted pull continues where it stopped)."`
	Push TAXIIPushCmd `cmd:"" help:"Push what an organisation may see of a local collection to a remote TAXII collection."`
}

// RemoteFlags say how to reach and authenticate to a remote TAXII server.
type RemoteFlags struct {
	Collection string        `required:"" help:"Remote collection id."`
	User       string        `env:"MITRA_TAXII_USER" help:"HTTP Basic user."`
	Password   string        `env:"MITRA_TAXII_PASSWORD" help:"HTTP Basic password."`
	Token      string        `env:"MITRA_TAXII_TOKEN" help:"Bearer token."`
	CA         string        `name:"ca" type:"existingfile" help:"CA bundle (PEM) to verify the server with, instead of the system roots."`
	Cert       string        `name:"cert" type:"existingfile" help:"Client certificate (PEM), for mutual TLS."`
	Key        string        `name:"key" type:"existingfile" help:"Client certificate's private key (PEM)."`
	Timeout    time.Duration `default:"2m" help:"Time allowed for each request; a page that takes longer is asked for again."`
	Org        string        `help:"Local organisation (name or identity id) the command acts as; the default organisation when empty."`
}

func (f *RemoteFlags) dial(ctx context.Context, rawURL string, log *slog.Logger) (*taxiiclient.Client, error) {
	hc, err := taxiiclient.NewHTTPClient(taxiiclient.TLSOptions{CAFile: f.CA, CertFile: f.Cert, KeyFile: f.Key})
	if err != nil {
		return nil, err
	}
	return taxiiclient.Dial(ctx, rawURL, f.Collection, func(c *taxiiclient.Client) {
		c.HTTP, c.User, c.Password, c.Token, c.RequestTimeout = hc, f.User, f.Password, f.Token, f.Timeout
		c.OnRetry = func(err error, attempt int, d time.Duration) {
			log.Warn("TAXII request failed; retrying", "attempt", attempt, "in", d.Round(time.Millisecond), "err", err)
		}
	})
}

// principal is the local organisation the command acts as, with the
// relay role: a pull keeps the created_by_ref of the objects it stores
// (audited as relays).
func (f *RemoteFlags) principal(ctx context.Context, st principalStore) (*access.Principal, error) {
	p, _, err := detectPrincipal(ctx, st, f.Org)
	if err != nil {
		return nil, err
	}
	p.Role = access.RoleRelay
	return p, nil
}

func spinner(e *env, what string) *progressbar.ProgressBar {
	return progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(e.stderr),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("objects"),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(e.stderr) }),
	)
}

// TAXIIPullCmd is 'mitra taxii pull'.
type TAXIIPullCmd struct {
	StoreFlags  `embed:""`
	RemoteFlags `embed:""`
	URL         string    `arg:"" help:"Remote TAXII server: discovery endpoint, API root, or the collection's objects endpoint."`
	Into        string    `required:"" help:"Local collection (id or alias) to store the objects in."`
	Types       []string  `sep:"," help:"Only objects of these STIX types."`
	Limit       int       `default:"1000" help:"Objects asked for per page."`
	AddedAfter  time.Time `name:"added-after" format:"2006-01-02T15:04:05Z07:00" help:"Only objects added to the remote collection after this time (the first pull only; later ones resume from their cursor)."`
}

// Run implements the command.
func (c *TAXIIPullCmd) Run(ctx context.Context, e *env) error {
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		col, err := st.GetCollection(ctx, c.Into)
		if err != nil {
			return fmt.Errorf("--into %s: %w", c.Into, err)
		}
		p, err := c.principal(ctx, st)
		if err != nil {
			return err
		}
		cl, err := c.dial(ctx, c.URL, log)
		if err != nil {
			return err
		}
		srv := taxii.NewServer(taxii.Config{Store: st, Validator: newValidator(), Logger: log})
		bar := spinner(e, "pulling")
		pl := &federation.Puller{
			Client: cl, Store: st, Check: srv.Check, Principal: p, Collection: col,
			Key:   federation.CursorKey(col.ID, cl.ObjectsURL, c.Types),
			Query: taxiiclient.ObjectsQuery{Limit: c.Limit, Types: c.Types, AddedAfter: c.AddedAfter},
			Label: "mitra taxii pull",
		}
		last := 0
		pl.OnPage = func(s federation.PullStats) { bar.Add(s.Received - last); last = s.Received }
		stats, err := pl.Run(ctx)
		bar.Finish()
		fmt.Fprintf(e.stdout, "pulled %d objects in %d pages: %d added, %d already stored, %d refused, %d repeated by the server and dropped\n",
			stats.Received, stats.Pages, stats.Added, stats.Duplicates, stats.Refused, stats.Repeated)
		for _, f := range stats.Failures {
			fmt.Fprintf(e.stdout, "  refused %s (%s): %s\n", f.ID, f.Version, f.Message)
		}
		if err != nil {
			return fmt.Errorf("pull (run the same command again to resume): %w", err)
		}
		return nil
	})
}

// TAXIIPushCmd is 'mitra taxii push'.
type TAXIIPushCmd struct {
	StoreFlags  `embed:""`
	RemoteFlags `embed:""`
	Local       string    `arg:"" help:"Local collection (id or alias) to push."`
	To          string    `required:"" help:"Remote TAXII server: discovery endpoint, API root, or the collection's objects endpoint."`
	Batch       int       `default:"500" help:"Objects per envelope."`
	AddedAfter  time.Time `name:"added-after" format:"2006-01-02T15:04:05Z07:00" help:"Only objects added to the local collection after this time."`
}

// Run implements the command.
func (c *TAXIIPushCmd) Run(ctx context.Context, e *env) error {
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		col, err := st.GetCollection(ctx, c.Local)
		if err != nil {
			return fmt.Errorf("collection %s: %w", c.Local, err)
		}
		p, err := c.principal(ctx, st)
		if err != nil {
			return err
		}
		cl, err := c.dial(ctx, c.To, log)
		if err != nil {
			return err
		}
		bar := spinner(e, "pushing")
		last := 0
		ps := &federation.Pusher{Client: cl, Store: st, Principal: p, Collection: col, Batch: c.Batch, AddedAfter: c.AddedAfter,
			Label: "mitra taxii push", OnEnvelope: func(s federation.PushStats) { bar.Add(s.Sent - last); last = s.Sent }}
		stats, err := ps.Run(ctx)
		bar.Finish()
		fmt.Fprintf(e.stdout, "pushed %d objects in %d envelopes: %d accepted, %d refused\n", stats.Sent, stats.Envelopes, stats.Succeeded, stats.Failed)
		for _, f := range stats.Failures {
			fmt.Fprintf(e.stdout, "  refused %s (%s): %s\n", f.ID, f.Version, f.Message)
		}
		if err != nil {
			return fmt.Errorf("push: %w", err)
		}
		if stats.Failed > 0 {
			return errSilent
		}
		return nil
	})
}
