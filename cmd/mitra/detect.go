package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/detect"
	"github.com/mitra-cert/mitra/internal/feeds"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxiiclient"
	"github.com/prometheus/client_golang/prometheus"
)

// DetectCmd matches telemetry against the store's indicators and records
// sightings.
type DetectCmd struct {
	StoreFlags     `embed:""`
	DetectFlags    `embed:""`
	LifecycleFlags `embed:""`
	Inputs         []string `arg:"" optional:"" help:"Files or directories to read ('-' for standard input; standard input when none and no --nats-stream)."`
	LogLevel       string   `default:"info" enum:"debug,info,warn,error" env:"MITRA_LOG_LEVEL" help:"Log level."`
}

// DetectFlags configure a detector; 'mitra detect' takes them as they are
// and 'mitra serve' with a detect- prefix, to run one inside the server.
type DetectFlags struct {
	Org        string   `env:"MITRA_DETECT_ORG" help:"Organisation the detector runs for (name or identity id): it sees the indicators this organisation may read and reports sightings as it. The default organisation when empty."`
	Indicators []string `name:"indicators" sep:"," help:"Collections (ids or aliases) to take indicators from; every collection the organisation may read when empty."`

	Collection      string `help:"Collection (id or alias) of the local store to write sightings to."`
	TAXIIURL        string `name:"taxii-url" env:"MITRA_DETECT_TAXII_URL" help:"Write sightings to a TAXII 2.1 server instead: the collection's objects endpoint, or the API root with --taxii-collection."`
	TAXIICollection string `name:"taxii-collection" help:"Collection id under --taxii-url (an API root)."`
	TAXIIUser       string `name:"taxii-user" env:"MITRA_DETECT_TAXII_USER" help:"HTTP Basic user for --taxii-url."`
	TAXIIPassword   string `name:"taxii-password" env:"MITRA_DETECT_TAXII_PASSWORD" help:"HTTP Basic password for --taxii-url."`
	TAXIIToken      string `name:"taxii-token" env:"MITRA_DETECT_TAXII_TOKEN" help:"Bearer token for --taxii-url."`

	Format  string `default:"auto" enum:"auto,stix,zeek,suricata,json" help:"Input format: auto, stix (STIX 2.1 JSON lines), zeek (TSV or JSON), suricata (EVE JSON), json (with --mapping)."`
	Mapping string `type:"existingfile" help:"JSON file mapping the fields of generic JSON lines to STIX object paths."`
	Follow  bool   `help:"Keep reading files and directories as they grow (and new files in directories)."`

	NATSURL        string        `name:"nats-url" env:"MITRA_NATS_URL" default:"nats://127.0.0.1:4222" help:"NATS server."`
	NATSStream     string        `name:"nats-stream" help:"Read events from this JetStream stream (through a durable consumer shared by all detectors)."`
	NATSSubject    string        `name:"nats-subject" help:"Only this subject of the stream."`
	NATSDurable    string        `name:"nats-durable" default:"mitra-detect" help:"Durable consumer name; detectors with the same name share the load."`
	NATSAckWait    time.Duration `name:"nats-ack-wait" default:"1m" help:"Redelivery delay of unacknowledged messages (extended while a write is slow)."`
	NATSDeadLetter string        `name:"nats-dead-letter" help:"Subject records that cannot be decoded are published to, with their reason (default mitra.detect.deadletter.<stream>)."`
	NATSHeaders    string        `name:"nats-headers" default:"mitra_detect_headers" help:"JetStream key-value bucket keeping the Zeek TSV headers of each subject for every detector."`
	TLP            string        `name:"tlp" default:"amber" help:"TLP of the telemetry (clear, green, amber, amber+strict, red): sightings are marked with the strictest of it and the matched indicator's."`

	Bucket   time.Duration `default:"1m" help:"Sighting aggregation period (per indicator)."`
	Flush    time.Duration `default:"5s" help:"How often changed sightings are written."`
	Poll     time.Duration `default:"1s" help:"How often indicator changes are polled."`
	Progress time.Duration `default:"10s" help:"Progress line on standard error every so often (0: none)."`

	Lifecycle      bool          `default:"true" negatable:"" help:"Leave out the indicators the lifecycle retires (decayed, false positives, warning-listed: as exports do), followed incrementally. On by default: --no-lifecycle (in serve --no-detect-lifecycle) matches every valid indicator."`
	LifecycleEvery time.Duration `name:"lifecycle-every" default:"10s" help:"How often the lifecycle follows the store's changes and the clock."`
}

// Run implements the command.
func (c *DetectCmd) Run(ctx context.Context, e *env) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	st, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	m, err := c.LifecycleFlags.model()
	if err != nil {
		return err
	}
	d, sources, stop, err := c.DetectFlags.build(ctx, st, c.Inputs, log, e, nil, m)
	if err != nil {
		return err
	}
	defer stop() // before the store closes
	return d.Run(ctx, sources...)
}

// build makes the detector and its sources. inputs are files, directories
// or "-"; reg, when set, gets the detector's metrics; m is the lifecycle
// model. stop ends what build started beside the detector (the lifecycle's
// refreshes) and waits for it: call it once the detector has stopped and
// before the store closes.
func (c *DetectFlags) build(ctx context.Context, st detectStore, inputs []string, log *slog.Logger, e *env, reg prometheus.Registerer, m feeds.Model) (d *detect.Detector, sources []detect.Source, stop func(), err error) {
	stop = func() {}
	defer func() {
		if err != nil {
			stop()
			stop = func() {}
		}
	}()
	if (c.Collection == "") == (c.TAXIIURL == "") {
		return nil, nil, stop, errors.New("give --collection (local store) or --taxii-url (remote TAXII server) for the sightings, one of them")
	}
	var mapping *detect.Mapping
	if c.Mapping != "" {
		m, err := detect.LoadMapping(c.Mapping)
		if err != nil {
			return nil, nil, stop, err
		}
		mapping = m
	} else if c.Format == detect.FormatJSON {
		return nil, nil, stop, errors.New("--format json needs --mapping")
	}
	tlp, err := access.ParseTLP(c.TLP)
	if err != nil {
		return nil, nil, stop, fmt.Errorf("--tlp: %w", err)
	}
	p, org, err := detectPrincipal(ctx, st, c.Org)
	if err != nil {
		return nil, nil, stop, err
	}
	var sink detect.Sink
	if c.Collection != "" {
		col, err := st.GetCollection(ctx, c.Collection)
		if err != nil {
			return nil, nil, stop, fmt.Errorf("--collection %s: %w", c.Collection, err)
		}
		if _, write := access.CollectionAccess(p, col); !write {
			return nil, nil, stop, fmt.Errorf("--collection %s: organisation %s may not write to it (grant it with 'mitra collection grant %s --write --org ...')", c.Collection, p.Organisation, col.ID)
		}
		sink = &detect.StoreSink{Store: st, Collection: col.ID, Submitter: p.Organisation, Audit: st, Log: log}
	} else {
		cl, err := taxiiclient.NewClient(c.TAXIIURL, c.TAXIICollection)
		if err != nil {
			return nil, nil, stop, err
		}
		cl.User, cl.Password, cl.Token = c.TAXIIUser, c.TAXIIPassword, c.TAXIIToken
		sink = &detect.TAXIISink{Client: cl}
	}
	opts := detect.InputOptions{Format: c.Format, Mapping: mapping, Follow: c.Follow}
	for _, in := range inputs {
		if in == "-" {
			sources = append(sources, &detect.ReaderSource{Label: "stdin", R: e.stdin, Opts: opts})
			continue
		}
		fi, err := os.Stat(in)
		if err != nil {
			return nil, nil, stop, err
		}
		if fi.IsDir() {
			sources = append(sources, &detect.DirSource{Dir: in, Opts: opts})
		} else {
			sources = append(sources, &detect.FileSource{Path: in, Opts: opts})
		}
	}
	if c.NATSStream != "" {
		sources = append(sources, &detect.NATSSource{URL: c.NATSURL, Stream: c.NATSStream, Subject: c.NATSSubject,
			Durable: c.NATSDurable, AckWait: c.NATSAckWait, DeadLetter: c.NATSDeadLetter, HeaderBucket: c.NATSHeaders, Opts: opts})
	}
	if len(sources) == 0 {
		sources = append(sources, &detect.ReaderSource{Label: "stdin", R: e.stdin, Opts: opts})
	}
	inds := &detect.StoreIndicators{Store: st, Principal: p, Collections: c.Indicators, Logger: log}
	if c.Lifecycle {
		// Loaded once here (as long as a full export selection), then
		// followed incrementally.
		active := &feeds.ActiveSet{Exporter: &feeds.Exporter{Store: st, Model: m, Flags: warningFlags(st)}, Request: feeds.Request{Principal: p, Collections: c.Indicators}}
		if err := active.Refresh(ctx); err != nil {
			return nil, nil, stop, fmt.Errorf("indicator lifecycle: %w", err)
		}
		every := c.LifecycleEvery
		if every <= 0 {
			every = 10 * time.Second
		}
		lctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			active.Run(lctx, every, func(err error) { log.Warn("indicator lifecycle refresh failed", "err", err) })
		}()
		stop = func() { cancel(); <-done }
		inds.Filter, inds.FilterEvery = active.Allow, every
	}
	cfg := detect.Config{
		Indicators: inds,
		Sink:       sink, Identity: p.Organisation, Anonymous: org.AnonymiseSightings, TLP: tlp,
		Bucket: c.Bucket, Flush: c.Flush, Poll: c.Poll, Logger: log,
	}
	if c.Progress > 0 {
		cfg.Progress, cfg.ProgressEvery = e.stderr, c.Progress
	}
	cfg.Registerer = reg
	if d, err = detect.New(cfg); err != nil {
		return nil, nil, stop, err
	}
	return d, sources, stop, nil
}

// detectPrincipal is the organisation the detector acts for, as a
// principal without a user: it reads through the organisation's and its
// groups' grants, as access.Decide rules.
func detectPrincipal(ctx context.Context, st principalStore, org string) (*access.Principal, *store.Organisation, error) {
	var o *store.Organisation
	var err error
	if org == "" {
		o, err = st.DefaultOrganisation(ctx)
	} else {
		o, err = st.GetOrganisation(ctx, org)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("organisation %q: %w", org, err)
	}
	groups, err := st.GroupsOf(ctx, o.ID)
	if err != nil {
		return nil, nil, err
	}
	return &access.Principal{Organisation: o.ID, Groups: groups, Role: access.RoleAnalyst}, o, nil
}
