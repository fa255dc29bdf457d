package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mitra-cert/mitra/internal/federation"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxii"
)

// PeerCmd is 'mitra peer'.
type PeerCmd struct {
	Add    PeerAddCmd    `cmd:"" help:"Add a peer (a remote server mapped to a local organisation) with its links."`
	List   PeerListCmd   `cmd:"" help:"List peers and their links."`
	Show   PeerShowCmd   `cmd:"" help:"Show a peer: its links' last success, lag, last error, and rejected objects with their reasons."`
	Remove PeerRemoveCmd `cmd:"" help:"Remove a peer and its links."`
	Sync   PeerSyncCmd   `cmd:"" help:"Run each link of a peer once."`
}

// PeerKeyFlags say where the peer secrets key is.
type PeerKeyFlags struct {
	PeerKeyFile string `name:"peer-key-file" type:"existingfile" env:"MITRA_PEER_KEY_FILE" help:"File holding the key that seals peer credentials (base64 of 32 random bytes); else the MITRA_PEER_KEY environment variable."`
}

func (f PeerKeyFlags) sealer(e *env) (*federation.Sealer, error) {
	return federation.LoadSealer(f.PeerKeyFile, e.getenv(federation.KeyEnv))
}

// PeerAddCmd is 'mitra peer add'.
type PeerAddCmd struct {
	StoreFlags   `embed:""`
	PeerKeyFlags `embed:""`
	Name         string        `arg:"" help:"Peer name."`
	URL          string        `required:"" help:"The remote API root URL."`
	Org          string        `required:"" help:"Local organisation (name or identity id) the peer acts as."`
	User         string        `help:"HTTP Basic user on the remote."`
	Password     string        `env:"MITRA_PEER_PASSWORD" help:"HTTP Basic password on the remote (sealed in the store)."`
	Token        string        `env:"MITRA_PEER_TOKEN" help:"Bearer token on the remote (sealed in the store)."`
	CA           string        `name:"ca" type:"existingfile" help:"CA bundle (PEM) to verify the remote with."`
	Cert         string        `name:"cert" type:"existingfile" help:"Client certificate (PEM), for mutual TLS."`
	Key          string        `name:"key" type:"existingfile" help:"Client certificate's private key (PEM; sealed in the store)."`
	Pull         []string      `help:"Pull link REMOTE=LOCAL: remote collection id into local collection (id or alias); repeatable."`
	Push         []string      `help:"Push link LOCAL=REMOTE: local collection (id or alias) to remote collection id; repeatable."`
	Interval     time.Duration `default:"5m" help:"Time between runs of the links; 0 runs them continuously."`
}

// Run implements the command.
func (c *PeerAddCmd) Run(ctx context.Context, e *env) error {
	var creds federation.Credentials
	creds.Password, creds.Token = c.Password, c.Token
	var ca, cert []byte
	var err error
	if c.CA != "" {
		if ca, err = os.ReadFile(c.CA); err != nil {
			return err
		}
	}
	if (c.Cert == "") != (c.Key == "") {
		return errors.New("--cert and --key go together")
	}
	if c.Cert != "" {
		if cert, err = os.ReadFile(c.Cert); err != nil {
			return err
		}
		key, err := os.ReadFile(c.Key)
		if err != nil {
			return err
		}
		creds.ClientKey = string(key)
	}
	var secret []byte
	if creds != (federation.Credentials{}) {
		sealer, err := c.sealer(e)
		if err != nil {
			return err
		}
		if secret, err = sealer.Seal(c.Name, creds); err != nil {
			return err
		}
	}
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		org, err := st.GetOrganisation(ctx, c.Org)
		if err != nil {
			return fmt.Errorf("--org %s: %w", c.Org, err)
		}
		p := &store.Peer{Name: c.Name, URL: c.URL, Organisation: org.ID, User: c.User, Secret: secret, CA: string(ca), Cert: string(cert)}
		var links []*store.Link
		for i, spec := range c.Pull {
			remote, local, ok := strings.Cut(spec, "=")
			if !ok {
				return fmt.Errorf("--pull %q: want REMOTE=LOCAL", spec)
			}
			links = append(links, &store.Link{ID: fmt.Sprintf("%s-pull-%d", c.Name, i+1), Direction: store.LinkPull, Remote: remote, Local: local})
		}
		for i, spec := range c.Push {
			local, remote, ok := strings.Cut(spec, "=")
			if !ok {
				return fmt.Errorf("--push %q: want LOCAL=REMOTE", spec)
			}
			links = append(links, &store.Link{ID: fmt.Sprintf("%s-push-%d", c.Name, i+1), Direction: store.LinkPush, Remote: remote, Local: local})
		}
		for _, l := range links {
			col, err := st.GetCollection(ctx, l.Local)
			if err != nil {
				return fmt.Errorf("link %s: local collection %s: %w", l.ID, l.Local, err)
			}
			l.Local, l.Peer, l.Interval = col.ID, c.Name, c.Interval
		}
		if err := st.CreatePeer(ctx, p); err != nil {
			return err
		}
		for _, l := range links {
			if err := st.AddLink(ctx, l); err != nil {
				return err
			}
		}
		fmt.Fprintf(e.stdout, "Peer %s added with %d links.\n", c.Name, len(links))
		return nil
	})
}

// PeerListCmd is 'mitra peer list'.
type PeerListCmd struct {
	StoreFlags `embed:""`
}

// Run implements the command.
func (c *PeerListCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		peers, err := st.ListPeers(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tURL\tORGANISATION\tLINKS")
		for _, p := range peers {
			links, err := st.Links(ctx, p.Name)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\n", p.Name, p.URL, p.Organisation, len(links))
		}
		return w.Flush()
	})
}

// PeerShowCmd is 'mitra peer show'.
type PeerShowCmd struct {
	StoreFlags `embed:""`
	Name       string `arg:"" help:"Peer name."`
	Rejections int    `default:"50" help:"How many of the latest rejected objects to show."`
}

// Run implements the command.
func (c *PeerShowCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		p, err := st.GetPeer(ctx, c.Name)
		if err != nil {
			return err
		}
		links, err := st.Links(ctx, p.Name)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "Peer %s\n  URL: %s\n  Organisation: %s\n  User: %s\n  Credentials: %s\n  Client certificate: %v\n",
			p.Name, p.URL, p.Organisation, p.User, map[bool]string{true: "sealed", false: "none"}[len(p.Secret) > 0], p.Cert != "")
		now := time.Now()
		for _, l := range links {
			fmt.Fprintf(e.stdout, "Link %s: %s, local %s, remote %s, every %s\n", l.ID, l.Direction, l.Local, l.Remote, l.Interval)
			if l.Direction == store.LinkPull {
				pos, err := federation.LinkMode(ctx, st, l.Local, l.ID)
				switch {
				case err != nil:
					fmt.Fprintf(e.stdout, "  Method: unknown (%v)\n", err)
				case pos.Mode == federation.ModeFeed:
					fmt.Fprintf(e.stdout, "  Method: Mitra change feed at position %d (deletes and revocations propagate)\n", pos.Seq)
					if pos.Resyncs > 0 {
						fmt.Fprintf(e.stdout, "  Full resynchronisations: %d, last %s\n", pos.Resyncs, pos.LastResync.Format(time.RFC3339))
					}
				case pos.Mode == federation.ModePoll:
					fmt.Fprintln(e.stdout, "  Method: added_after polling (the peer offers no change feed: deletes do not propagate)")
				default:
					fmt.Fprintln(e.stdout, "  Method: decided at the first run (the change feed when the peer offers it)")
				}
			}
			if l.Direction == store.LinkPush {
				if seq, sent, err := federation.PushDeletions(ctx, st, l.Local, l.ID); err != nil {
					fmt.Fprintf(e.stdout, "  Deletions: unknown (%v)\n", err)
				} else {
					fmt.Fprintf(e.stdout, "  Deletions sent: %d (change log position %d)\n", sent, seq)
				}
			}
			if l.LastSuccess.IsZero() {
				fmt.Fprintln(e.stdout, "  Last success: never")
			} else {
				fmt.Fprintf(e.stdout, "  Last success: %s (lag %s)\n", l.LastSuccess.Format(time.RFC3339), now.Sub(l.LastSuccess).Round(time.Second))
			}
			fmt.Fprintf(e.stdout, "  Lag in objects: %s\n", objectLag(ctx, st, p, l))
			if l.LastError != "" && l.LastErrorAt.After(l.LastSuccess) {
				fmt.Fprintf(e.stdout, "  Last error: %s at %s\n", l.LastError, l.LastErrorAt.Format(time.RFC3339))
			}
			fmt.Fprintf(e.stdout, "  Objects synchronised: %d\n", l.Synced)
		}
		rej, err := st.Rejections(ctx, p.Name, c.Rejections)
		if err != nil {
			return err
		}
		if len(rej) > 0 {
			fmt.Fprintf(e.stdout, "Rejections (latest %d):\n", len(rej))
			for _, r := range rej {
				fmt.Fprintf(e.stdout, "  %s %s %s (%s) via %s: %s\n", r.At.Format(time.RFC3339), r.Kind, r.ObjectID, r.Version, r.Link, r.Reason)
			}
		}
		return nil
	})
}

// PeerRemoveCmd is 'mitra peer remove'.
type PeerRemoveCmd struct {
	StoreFlags `embed:""`
	Name       string `arg:"" help:"Peer name."`
}

// Run implements the command.
func (c *PeerRemoveCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		if err := st.DeletePeer(ctx, c.Name); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "Peer %s removed.\n", c.Name)
		return nil
	})
}

// PeerSyncCmd is 'mitra peer sync'.
type PeerSyncCmd struct {
	StoreFlags   `embed:""`
	PeerKeyFlags `embed:""`
	Name         string `arg:"" help:"Peer name."`
}

// Run implements the command.
func (c *PeerSyncCmd) Run(ctx context.Context, e *env) error {
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sealer, err := c.sealer(e)
	if err != nil && !errors.Is(err, federation.ErrNoKey) {
		return err
	}
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		srv := taxii.NewServer(taxii.Config{Store: st, Validator: newValidator(), Logger: log})
		r := &federation.Runner{Store: st, Sealer: sealer, Check: srv.Check, Log: log, Holder: holderName("peer sync")}
		res, err := r.SyncPeer(ctx, c.Name)
		if err != nil {
			return err
		}
		failed := 0
		for _, x := range res {
			switch {
			case x.Err != nil:
				failed++
				fmt.Fprintf(e.stdout, "%s: failed: %v\n", x.Link.ID, x.Err)
			case x.Link.Direction == store.LinkPull:
				fmt.Fprintf(e.stdout, "%s: pulled %d objects: %d added, %d already stored, %d refused\n", x.Link.ID, x.Pull.Received, x.Pull.Added, x.Pull.Duplicates, x.Pull.Refused)
			default:
				fmt.Fprintf(e.stdout, "%s: pushed %d objects in %d envelopes: %d succeeded, %d failed\n", x.Link.ID, x.Push.Sent, x.Push.Envelopes, x.Push.Succeeded, x.Push.Failed)
			}
		}
		if failed > 0 {
			return fmt.Errorf("%d of %d links failed (run again to resume)", failed, len(res))
		}
		return nil
	})
}

// holderName names this process in link leases.
func holderName(what string) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s %s pid %d", host, what, os.Getpid())
}

// objectLag says how many objects behind a link is: for a push link the
// local objects not yet sent, counted now; for a pull link the peer's
// changes not yet applied at its last run (unknown when it polls).
func objectLag(ctx context.Context, st store.Store, p *store.Peer, l *store.Link) string {
	if l.Direction == store.LinkPush {
		n, err := federation.PushLag(ctx, st, p, l)
		if err != nil {
			return fmt.Sprintf("unknown (%v)", err)
		}
		return fmt.Sprintf("%d not yet pushed", n)
	}
	if l.LastSuccess.IsZero() && l.LastErrorAt.IsZero() || l.LagObjects < 0 {
		return "unknown (a polling link, or no run yet)"
	}
	return fmt.Sprintf("%d changes of the peer's feed not yet applied (at the last run)", l.LagObjects)
}
