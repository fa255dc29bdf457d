package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/admin"
	"github.com/mitra-cert/mitra/internal/assist"
	"github.com/mitra-cert/mitra/internal/detect"
	"github.com/mitra-cert/mitra/internal/drill"
	"github.com/mitra-cert/mitra/internal/federation"
	"github.com/mitra-cert/mitra/internal/feeds"
	"github.com/mitra-cert/mitra/internal/hashmatch"
	"github.com/mitra-cert/mitra/internal/incident"
	"github.com/mitra-cert/mitra/internal/pattern"
	"github.com/mitra-cert/mitra/internal/search"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/postgres"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/mitra-cert/mitra/internal/taxii"
	"github.com/mitra-cert/mitra/internal/web"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// StoreFlags select the store; every command that touches data takes them.
type StoreFlags struct {
	Data  string `default:"./mitra-data" env:"MITRA_DATA" help:"Data directory of the embedded store."`
	Store string `default:"sqlite:" env:"MITRA_STORE" help:"Store DSN: 'sqlite:' (the data directory), 'sqlite:DIR', with '?sync=normal' to trade power-loss durability for ingest speed, or 'postgres://user@host:5432/db' (PostgreSQL, shared by several servers)."`
}

// open opens the store the flags name. It is the one place that picks a
// backend by DSN scheme.
func (f StoreFlags) open(ctx context.Context) (store.Store, error) {
	return openStore(ctx, f.Store, f.Data)
}

// openStore opens the store dsn names; dataDir is the directory of a bare
// "sqlite:".
func openStore(ctx context.Context, dsn, dataDir string) (store.Store, error) {
	if postgres.IsDSN(dsn) {
		return postgres.Open(ctx, dsn, postgres.Options{})
	}
	scheme, rest, _ := strings.Cut(dsn, ":")
	switch scheme {
	case "sqlite":
		// sqlite:[DIR][?sync=full|normal]
		dir, query, _ := strings.Cut(rest, "?")
		if dir == "" {
			dir = dataDir
		}
		params, err := url.ParseQuery(query)
		if err != nil {
			return nil, fmt.Errorf("store %q: %w", dsn, err)
		}
		return sqlite.Open(ctx, dir, sqlite.Options{Sync: params.Get("sync")})
	default:
		return nil, fmt.Errorf("store %q: unsupported backend %q (supported: sqlite:, postgres://)", redactDSN(dsn), scheme)
	}
}

// redactDSN hides a password in dsn, for messages.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// withStore opens the store the flags name, runs fn and closes it.
func withStore(ctx context.Context, f StoreFlags, fn func(store.Store) error) error {
	st, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(st)
}

// ServeCmd runs the server.
type ServeCmd struct {
	StoreFlags     `embed:""`
	Addr           string `default:"127.0.0.1:8080" env:"MITRA_ADDR" help:"Address to listen on."`
	TLSCert        string `name:"tls-cert" env:"MITRA_TLS_CERT" help:"TLS certificate file (PEM); with --tls-key, serve HTTPS."`
	TLSKey         string `name:"tls-key" env:"MITRA_TLS_KEY" help:"TLS private key file (PEM)."`
	TLSClientCA    string `name:"tls-client-ca" env:"MITRA_TLS_CLIENT_CA" help:"CA bundle (PEM): request client certificates and verify them against it; a verified certificate authenticates the user named by its subject CN (mutual TLS)."`
	AllowPlainHTTP bool   `name:"allow-plain-http" env:"MITRA_ALLOW_PLAIN_HTTP" help:"Serve plain HTTP on a non-loopback address (only behind a TLS-terminating proxy)."`
	LogLevel       string `default:"info" enum:"debug,info,warn,error" env:"MITRA_LOG_LEVEL" help:"Log level: debug, info, warn, error."`
	MaxContent     int64  `name:"max-content-length" default:"67108864" env:"MITRA_MAX_CONTENT_LENGTH" help:"Largest request body accepted, in bytes."`
	Title          string `default:"Mitra" env:"MITRA_TITLE" help:"Server title shown in TAXII discovery."`

	ReadTimeout  time.Duration  `default:"5m" env:"MITRA_READ_TIMEOUT" help:"Longest time to read a whole request, body included."`
	WriteTimeout time.Duration  `default:"10m" env:"MITRA_WRITE_TIMEOUT" help:"Longest time from the end of the request headers to the end of the response."`
	IdleTimeout  time.Duration  `default:"2m" env:"MITRA_IDLE_TIMEOUT" help:"How long an idle keep-alive connection stays open."`
	UploadMemory int64          `name:"upload-memory" default:"268435456" env:"MITRA_UPLOAD_MEMORY" help:"Cap on the request bytes of POSTs processed at once; a POST that finds no room within --upload-wait gets 503 with Retry-After."`
	UploadWait   time.Duration  `default:"5s" env:"MITRA_UPLOAD_WAIT" help:"How long a POST waits for room under --upload-memory."`
	TokenExpiry  time.Duration  `default:"2160h" env:"MITRA_TOKEN_EXPIRY" help:"Lifetime of API tokens created over the admin API without one; 0 for none."`
	SignInFree   int            `name:"signin-free" default:"5" env:"MITRA_SIGNIN_FREE" help:"Failed password sign-ins per user name and per client address before further ones are delayed."`
	Retention    RetentionFlags `embed:""`
	TrustedProxy []string       `name:"trusted-proxy" sep:"," env:"MITRA_TRUSTED_PROXY" help:"Addresses or CIDR prefixes of reverse proxies whose X-Forwarded-For names the client (for sign-in throttling per client address)."`
	SignInMax    time.Duration  `name:"signin-max-delay" default:"1m" env:"MITRA_SIGNIN_MAX_DELAY" help:"Longest delay after failed sign-ins (the delay doubles from 1s per failure up to this)."`

	// A detector inside the server, when inputs or a NATS stream are given;
	// its metrics join the server's at /metrics.
	DetectInputs []string    `name:"detect-input" sep:"," help:"Run a detector inside the server on these files or directories (see 'mitra detect'; the other detect- flags are its flags)."`
	Detect       DetectFlags `embed:"" prefix:"detect-"`

	// The hash match service (issue 18).
	Hash HashServeFlags `embed:"" prefix:"hash-"`
	// Exports and the indicator lifecycle (issue 16).
	Export ExportServeFlags `embed:"" prefix:"export-"`

	// Incident coordination and its notifications (issue 15).
	Incident IncidentServeFlags `embed:"" prefix:"incident-"`
	Notify   NotifyServeFlags   `embed:"" prefix:"notify-"`
	// Cross-border assistance and the directory of points of contact.
	Assist AssistServeFlags `embed:"" prefix:"assist-"`

	PeerKeyFlags `embed:""`
	NoPeers      bool          `name:"no-peers" env:"MITRA_NO_PEERS" help:"Do not run the links of federation peers in this process."`
	PeerLeaseTTL time.Duration `name:"peer-lease-ttl" default:"1m" env:"MITRA_PEER_LEASE_TTL" help:"How long a link's lease outlives its holder: with several processes on one database, another one takes over the links of a process that died after this long (the holder renews it every third of it)."`
	PeerFeedPage int           `name:"peer-feed-page" default:"10000" env:"MITRA_PEER_FEED_PAGE" help:"Changes a pull link asks of a Mitra peer's change feed at a time (at most 10000), each page written in one transaction (up to eight pages of adds in one when the link is behind): smaller pages hold less in memory, larger ones mirror faster."`
}

// HashServeFlags configure the hash match service of the server.
type HashServeFlags struct {
	PDQThreshold int           `name:"pdq-threshold" default:"31" env:"MITRA_HASH_PDQ_THRESHOLD" help:"Default largest PDQ Hamming distance of a match."`
	MinQuality   int           `name:"min-quality" default:"50" env:"MITRA_HASH_MIN_QUALITY" help:"Default smallest PDQ quality matched."`
	TLSHDistance int           `name:"tlsh-distance" default:"40" env:"MITRA_HASH_TLSH_DISTANCE" help:"Default largest TLSH distance of a match."`
	Poll         time.Duration `name:"poll" default:"2s" env:"MITRA_HASH_POLL" help:"How often the hash index follows the collections' change logs."`
}

// Run implements the command.
func (c *ServeCmd) Run(ctx context.Context, e *env) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	useTLS := c.TLSCert != "" || c.TLSKey != ""
	if useTLS && (c.TLSCert == "" || c.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if c.TLSClientCA != "" && !useTLS {
		return errors.New("--tls-client-ca needs --tls-cert and --tls-key")
	}
	if !useTLS && !c.AllowPlainHTTP && !loopback(c.Addr) {
		return fmt.Errorf("refusing plain HTTP on %s: give --tls-cert and --tls-key (plain HTTP is allowed on loopback addresses only, or with --allow-plain-http behind a TLS proxy)", c.Addr)
	}
	st, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	// The services started beside the server stop (their contexts are
	// cancelled by the defers below, which run first) before the store
	// closes.
	var bg sync.WaitGroup
	defer bg.Wait()
	if err := bootstrapAdmin(ctx, st, e); err != nil {
		return err
	}
	// Prometheus metrics, for authenticated scrapers (any role; a sensor
	// token is enough).
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	authn, err := access.NewAuthenticatorWith(st, access.AuthOptions{Logger: log, Metrics: reg,
		Throttle: access.ThrottleConfig{Free: c.SignInFree, Max: c.SignInMax}})
	if err != nil {
		return err
	}
	proxies, err := parsePrefixes(c.TrustedProxy)
	if err != nil {
		return fmt.Errorf("--trusted-proxy: %w", err)
	}
	peerReads := &federation.PeerReads{Store: st}
	srv := taxii.NewServer(taxii.Config{
		Store:            st,
		Auth:             authn,
		Validator:        newValidator(),
		Logger:           log,
		Title:            c.Title,
		MaxContentLength: c.MaxContent,
		Metrics:          reg,
		UploadMemory:     c.UploadMemory,
		UploadWait:       c.UploadWait,
		TrustedProxies:   proxies,
		// Peers read feedback on their own objects as the links send it,
		// under the per-peer ids only (also in manifests, versions,
		// tombstones and ids they ask for).
		Outgoing:     peerReads.Rewrite,
		IncomingIDs:  peerReads.LocalIDs,
		BeforeDelete: peerReads.MarkDeleted,
	})
	// Without the peer secrets key the server says so and runs without the
	// peers whose credentials are sealed.
	sealer, err := c.sealer(e)
	if err != nil {
		if !errors.Is(err, federation.ErrNoKey) {
			return err
		}
		log.Warn("peer credentials cannot be opened: peers with sealed credentials are not run", "err", err)
	}
	api := admin.NewWith(st, srv.Authenticate, admin.Options{Log: log, Auth: authn, TokenExpiry: c.TokenExpiry, ClientAddr: srv.ClientAddr, PeerSealer: sealer})
	srv.Mount(admin.Prefix, api)
	srv.Mount(admin.AccountPrefix, api)

	// The hash match service: its index is loaded from the store and
	// follows the change logs in the background; shares and verdicts go
	// through the TAXII ingest as the caller.
	hashes := hashmatch.New(hashmatch.Config{Store: st, Logger: log, PDQThreshold: c.Hash.PDQThreshold,
		MinQuality: c.Hash.MinQuality, TLSHDistance: c.Hash.TLSHDistance})
	srv.Mount(hashmatch.Prefix, hashmatch.NewHandler(hashes, hashmatch.HandlerOptions{Authenticate: srv.Authenticate,
		TAXII: srv, MaxUpload: c.MaxContent, Logger: log}))
	hctx, stopHashes := context.WithCancel(ctx)
	defer stopHashes()
	bg.Go(func() {
		if err := hashes.Run(hctx, c.Hash.Poll); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("hash match service stopped", "err", err)
		}
	})

	// Exports of the active indicators (issue 16), for sensors polling with
	// a read-only token and If-None-Match: mounted beside the search below.
	exportModel, err := c.Export.model()
	if err != nil {
		return err
	}

	// Incident coordination (issue 15): incidents and follow-up reports go
	// through the TAXII ingest as the caller; deadline alerts and the
	// notification queue run beside the server and stop before the store
	// closes.
	var drillNow func() time.Time
	if c.Assist.ClockFile != "" {
		drillNow = fileClock(c.Assist.ClockFile, log)
	}
	incidents, err := startIncidents(ctx, st, srv, log, c.Incident, c.Notify, drillNow)
	if err != nil {
		return err
	}
	defer incidents.Stop()
	srv.Mount(incident.Prefix, incident.NewHandler(incidents.svc, incident.HandlerOptions{Authenticate: srv.Authenticate,
		Notifications: incidents.queue, Logger: log}))
	// Drills report their incidents under the drill's prefix, as exercises.
	srv.Mount(drill.IncidentPrefix, incident.NewHandler(incidents.drill, incident.HandlerOptions{Authenticate: srv.Authenticate,
		Logger: log, Prefix: drill.IncidentPrefix}))
	// Search, value lookup and pivots (issue 17): text and references are
	// indexed by the store in the objects' transactions; the value index
	// is loaded from the store and follows the change logs like the hash
	// index.
	searchStore, ok := st.(search.Store)
	if !ok {
		return fmt.Errorf("this store backend cannot search")
	}
	finder := search.New(search.Config{Store: searchStore, Logger: log})
	// Exports from a collection, or from a search through finder.
	srv.Mount(feeds.ExportPrefix, feeds.NewExportHandler(&feeds.Exporter{Store: st, Model: exportModel, Flags: warningFlags(st), Matcher: finder}, feeds.ExportHandlerOptions{
		Authenticate: srv.Authenticate, CacheFor: c.Export.Cache, Render: feeds.RenderOptions{RPZOrigin: c.Export.RPZOrigin}, Logger: log}))
	srv.Mount(search.Prefix, search.NewHandler(finder, search.HandlerOptions{Authenticate: srv.Authenticate, Logger: log}))
	searchCtx, stopSearch := context.WithCancel(ctx)
	defer stopSearch()
	bg.Go(func() {
		if err := finder.Run(searchCtx, search.DefaultPoll); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("search service stopped", "err", err)
		}
	})

	// The web console (issue 17) under /console/, and / leads there. Its
	// administration pages call a second admin API in process that takes
	// the console's signed-in user (web.PrincipalFrom); it is not mounted.
	console, err := web.New(web.Config{Store: st, Auth: authn, Search: finder, Check: srv.Check, Metrics: reg, ClientAddr: srv.ClientAddr, Logger: log,
		SecureCookies: c.AllowPlainHTTP, // plain HTTP off loopback is only allowed behind a TLS proxy
		Admin:         admin.NewWith(st, web.PrincipalFrom, admin.Options{Log: log, Auth: authn, TokenExpiry: c.TokenExpiry, ClientAddr: srv.ClientAddr, PeerSealer: sealer})})
	if err != nil {
		return err
	}
	consoleCtx, stopConsole := context.WithCancel(ctx)
	defer stopConsole()
	bg.Go(func() { console.PruneSessions(consoleCtx, time.Hour) })
	srv.Mount("/{$}", console)
	srv.Mount("/console", console) // redirects to /console/
	srv.Mount(web.Prefix, console)
	// Imports (issue 16): the import API imports as the caller through
	// the TAXII checks; scheduled feeds are looked at every minute.
	if ist, ok := st.(store.ImportFeeds); ok {
		importer, err := newImporter(ctx, st, ist, srv)
		if err != nil {
			return err
		}
		sched := &feeds.Scheduler{Feeds: ist, Users: st, Importer: importer, Lists: ist, Log: log}
		srv.Mount(feeds.Prefix, feeds.NewHandler(feeds.HandlerOptions{Authenticate: srv.Authenticate, Importer: importer,
			Scheduler: sched, Lists: ist, Flags: ist, Logger: log}))
		fctx, stopFeeds := context.WithCancel(ctx)
		defer stopFeeds()
		bg.Go(func() {
			if err := sched.Run(fctx, time.Minute); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("feeds stopped", "err", err)
			}
		})
	}

	// Cross-border assistance (issue 15): requests, steps and directory
	// entries go through the TAXII ingest; the clock escalates overdue
	// requests and retries deliveries to peers until they take them.
	assists, err := startAssist(ctx, st, srv, sealer, incidents.queue, log, c.Assist, publicURL(c.Addr, useTLS))
	if err != nil {
		return err
	}
	defer assists.Stop()
	assistAPI := assist.NewHandler(assists.svc, assist.HandlerOptions{Authenticate: srv.Authenticate, Logger: log})
	srv.Mount(assist.Prefix, assistAPI)
	srv.Mount(assist.PocPrefix, assistAPI)
	srv.Mount(drill.Prefix, assist.NewHandler(assists.drill, assist.HandlerOptions{Authenticate: srv.Authenticate, Logger: log,
		Prefix: drill.Prefix, PocPrefix: drill.Prefix}))

	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	srv.Mount("/metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := srv.Authenticate(r); err != nil {
			w.Header().Set("WWW-Authenticate", `Basic realm="mitra", charset="UTF-8", Bearer realm="mitra"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		metrics.ServeHTTP(w, r)
	}))
	var detector *detect.Detector
	var detectSources []detect.Source
	if len(c.DetectInputs) > 0 || c.Detect.NATSStream != "" {
		var stopLifecycle func()
		if detector, detectSources, stopLifecycle, err = c.Detect.build(ctx, st, c.DetectInputs, log, e, reg, exportModel); err != nil {
			return fmt.Errorf("detector: %w", err)
		}
		// Deferred after the store's Close, so it runs before it.
		defer stopLifecycle()
	}

	// Old statuses and audit records are pruned hourly (also by every
	// server of a shared database; pruning twice removes nothing more).
	rctx, stopRetention := context.WithCancel(ctx)
	defer stopRetention()
	bg.Go(func() { admin.RunRetention(rctx, st, c.Retention.retention(), time.Hour, log) })

	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	hs := c.httpServer(srv, log)
	if c.TLSClientCA != "" {
		if hs.TLSConfig, err = clientCAConfig(c.TLSClientCA); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stderr, "Mitra listening on %s://%s/taxii2/\n", scheme, ln.Addr())
	// Federation links run beside the server and stop before the store
	// closes.
	peersDone := make(chan struct{})
	pctx, stopPeers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPeers()
	if c.NoPeers {
		close(peersDone)
	} else {
		runner := &federation.Runner{Store: st, Sealer: sealer, Check: srv.Check, Log: log, Holder: holderName("serve"), Metrics: federation.NewMetrics(reg),
			LeaseTTL: c.PeerLeaseTTL, FeedPageLimit: c.PeerFeedPage}
		go func() {
			defer close(peersDone)
			if err := runner.Serve(pctx); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("federation runner stopped", "err", err)
			}
		}()
	}
	errc := make(chan error, 2)
	detectDone := make(chan struct{})
	dctx, stopDetector := context.WithCancel(context.WithoutCancel(ctx))
	defer stopDetector()
	if detector != nil {
		go func() {
			defer close(detectDone)
			if err := detector.Run(dctx, detectSources...); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("detector: %w", err)
			}
		}()
	} else {
		close(detectDone)
	}
	go func() {
		if useTLS {
			errc <- hs.ServeTLS(ln, c.TLSCert, c.TLSKey)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		stopDetector()
		stopPeers()
		<-detectDone
		<-peersDone
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// Graceful shutdown: stop accepting, let in-flight requests finish
	// (their writes commit before they answer), then close the store.
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	// The detector flushes its sightings, and links finish their page,
	// before the store closes.
	stopDetector()
	stopPeers()
	<-detectDone
	<-peersDone
	log.Info("stopped")
	return nil
}

// parsePrefixes reads addresses ("10.0.0.1") and prefixes ("10.0.0.0/8").
func parsePrefixes(l []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range l {
		if p, err := netip.ParsePrefix(v); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a CIDR prefix", v)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// RetentionFlags say how long old records are kept.
type RetentionFlags struct {
	StatusRetention time.Duration `name:"status-retention" default:"720h" env:"MITRA_STATUS_RETENTION" help:"Remove TAXII status resources older than this; 0 keeps them."`
	AuditRetention  time.Duration `name:"audit-retention" default:"8760h" env:"MITRA_AUDIT_RETENTION" help:"Remove audit records older than this; 0 keeps them."`
	ChangeRetention time.Duration `name:"change-retention" default:"2160h" env:"MITRA_CHANGE_RETENTION" help:"Remove federation change-log records older than this (peers further behind resynchronise fully); 0 keeps them."`
}

func (f RetentionFlags) retention() admin.Retention {
	return admin.Retention{Statuses: f.StatusRetention, Audit: f.AuditRetention, Changes: f.ChangeRetention}
}

// PruneCmd applies the retention once.
type PruneCmd struct {
	StoreFlags `embed:""`
	Retention  RetentionFlags `embed:""`
}

// Run implements the command.
func (c *PruneCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		statuses, audit, err := admin.Prune(ctx, st, c.Retention.retention(), time.Now(), cliPrincipal(e))
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "Removed %d statuses and %d audit records.\n", statuses, audit)
		return nil
	})
}

// httpServer is the server's HTTP configuration: timeouts bound how long a
// slow or silent client can hold a connection and its memory.
func (c *ServeCmd) httpServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       c.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// clientCAConfig asks clients for a certificate and verifies one given
// against the bundle; clients without one still authenticate with
// passwords or tokens.
func clientCAConfig(file string) (*tls.Config, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--tls-client-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("--tls-client-ca %s: no PEM certificate in it", file)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven}, nil
}

func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// bootstrapAdmin creates the admin user on the first start of a data
// directory (when no admin exists): its password comes from
// MITRA_ADMIN_PASSWORD, else it is generated and printed once.
func bootstrapAdmin(ctx context.Context, st adminBootstrap, e *env) error {
	users, err := st.ListUsers(ctx)
	if err != nil {
		return err
	}
	for _, u := range users {
		if u.Role == access.RoleAdmin {
			return nil
		}
	}
	pw := e.getenv("MITRA_ADMIN_PASSWORD")
	generated := pw == ""
	if generated {
		if pw, err = access.RandomSecret(18); err != nil {
			return err
		}
	}
	if _, err := access.CreateUser(ctx, st, "admin", pw, access.RoleAdmin, ""); errors.Is(err, store.ErrConflict) {
		// Another server on the same database created it first.
		return nil
	} else if err != nil {
		return fmt.Errorf("create admin user: %w", err)
	}
	if generated {
		fmt.Fprintf(e.stderr, "Created user 'admin' with password: %s\n(It is shown only this once. Set MITRA_ADMIN_PASSWORD to choose it.)\n", pw)
	} else {
		fmt.Fprintln(e.stderr, "Created user 'admin' with the password from MITRA_ADMIN_PASSWORD.")
	}
	return nil
}

// newValidator is the one STIX validator of the binary: indicators with
// pattern_type "stix" must carry a pattern the engine can parse (STIX 2.1
// §4.7.1, §9).
func newValidator() *stix.Validator {
	return &stix.Validator{CheckPattern: pattern.Check}
}
