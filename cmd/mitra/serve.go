package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/admin"
	"github.com/mitra-cert/mitra/internal/detect"
	"github.com/mitra-cert/mitra/internal/pattern"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/postgres"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/mitra-cert/mitra/internal/taxii"
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
	AllowPlainHTTP bool   `name:"allow-plain-http" env:"MITRA_ALLOW_PLAIN_HTTP" help:"Serve plain HTTP on a non-loopback address (only behind a TLS-terminating proxy)."`
	LogLevel       string `default:"info" enum:"debug,info,warn,error" env:"MITRA_LOG_LEVEL" help:"Log level: debug, info, warn, error."`
	MaxContent     int64  `name:"max-content-length" default:"67108864" env:"MITRA_MAX_CONTENT_LENGTH" help:"Largest request body accepted, in bytes."`
	Title          string `default:"Mitra" env:"MITRA_TITLE" help:"Server title shown in TAXII discovery."`

	// A detector inside the server, when inputs or a NATS stream are given;
	// its metrics join the server's at /metrics.
	DetectInputs []string    `name:"detect-input" sep:"," help:"Run a detector inside the server on these files or directories (see 'mitra detect'; the other detect- flags are its flags)."`
	Detect       DetectFlags `embed:"" prefix:"detect-"`
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
	if !useTLS && !c.AllowPlainHTTP && !loopback(c.Addr) {
		return fmt.Errorf("refusing plain HTTP on %s: give --tls-cert and --tls-key (plain HTTP is allowed on loopback addresses only, or with --allow-plain-http behind a TLS proxy)", c.Addr)
	}
	st, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := bootstrapAdmin(ctx, st, e); err != nil {
		return err
	}
	authn := access.NewAuthenticator(st, nil)
	srv := taxii.NewServer(taxii.Config{
		Store:            st,
		Auth:             authn,
		Validator:        newValidator(),
		Logger:           log,
		Title:            c.Title,
		MaxContentLength: c.MaxContent,
	})
	srv.Mount(admin.Prefix, admin.New(st, srv.Authenticate, log, nil))

	// Prometheus metrics, for authenticated scrapers (any role; a sensor
	// token is enough).
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
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
		if detector, detectSources, err = c.Detect.build(ctx, st, c.DetectInputs, log, e, reg); err != nil {
			return fmt.Errorf("detector: %w", err)
		}
	}

	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	fmt.Fprintf(e.stderr, "Mitra listening on %s://%s/taxii2/\n", scheme, ln.Addr())
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
		<-detectDone
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
	// The detector flushes its sightings before the store closes.
	stopDetector()
	<-detectDone
	log.Info("stopped")
	return nil
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
