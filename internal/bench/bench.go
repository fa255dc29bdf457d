package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxii"
)

// Config says what to measure and on which store.
type Config struct {
	// Store is the store measured; the benchmarks add a collection, a user
	// and a token of their own and remove the collection and user at the
	// end.
	Store store.Store
	// Validator is the server's validator (patterns included).
	Validator *stix.Validator
	// Objects is how many indicators ingest POSTs (1,000,000); Step the
	// number of objects per point of the ingest curve (100,000).
	Objects, Step int
	// Envelope is the number of objects per POST (500); Clients the number
	// of concurrent clients (4).
	Envelope, Clients int
	// Indicators is the number of indicators match and detect load
	// (100,000); Observations the observations match runs (1,000,000);
	// Lines the Zeek DNS log lines detect reads (1,000,000).
	Indicators, Observations, Lines int
	// Seed makes the generated data reproducible.
	Seed uint64
	// TempDir holds generated telemetry (detect).
	TempDir string
	// Progress, when set, gets a line per ingest curve point.
	Progress io.Writer
	// Mirror is the store of the receiving server of federation (a second
	// store: the mirror must not share the source's database); FeedPage
	// the change-feed page size its pull link asks for (1000).
	Mirror   store.Store
	FeedPage int
	// CPUProfile, when set, gets a pprof CPU profile of the federation
	// pull (the mirroring alone, not the filling of the source), or of
	// the ingest when federation is not run.
	CPUProfile io.Writer
	// Scratch says that Store is thrown away afterwards: the benchmark
	// then leaves its collections and user in it (removing a million
	// objects takes a while).
	Scratch bool
}

func (c *Config) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Objects, 1_000_000)
	def(&c.Step, 100_000)
	def(&c.Envelope, 500)
	def(&c.Clients, 4)
	def(&c.Indicators, 100_000)
	def(&c.Observations, 1_000_000)
	def(&c.Lines, 1_000_000)
	def(&c.FeedPage, 1000)
	if c.Validator == nil {
		c.Validator = &stix.Validator{}
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// Row is one line of the result table.
type Row struct {
	Name  string
	Count int // units processed
	Unit  string
	Time  time.Duration
	// P50 and P99 are per-request (or per-page) latencies, zero when not
	// meaningful.
	P50, P99 time.Duration
	// CPU is the CPU time the whole process used meanwhile (0 when not
	// measured): it includes the benchmark's own clients.
	CPU  time.Duration
	Note string
}

// Rate is Count per second.
func (r Row) Rate() float64 {
	if r.Time <= 0 {
		return 0
	}
	return float64(r.Count) / r.Time.Seconds()
}

// Point is one point of the ingest curve: the rate while the store grew
// from Stored-Step to Stored objects.
type Point struct {
	Stored int
	Rate   float64 // objects/s
}

// Result is what Run measured.
type Result struct {
	Rows  []Row
	Curve []Point
}

// Run runs the named benchmarks ("ingest", "read", "match", "detect",
// "federation"; "all" for every one) in that order. read reads what ingest stored, so it
// ingests first when ingest was not asked for.
func Run(ctx context.Context, cfg Config, names ...string) (*Result, error) {
	cfg.defaults()
	want := map[string]bool{}
	for _, n := range names {
		switch n {
		case "all":
			for _, k := range []string{"ingest", "read", "match", "detect", "federation"} {
				want[k] = true
			}
		case "ingest", "read", "match", "detect", "federation":
			want[n] = true
		default:
			return nil, fmt.Errorf("unknown benchmark %q (ingest, read, match, detect, federation, all)", n)
		}
	}
	res := &Result{}
	if want["ingest"] || want["read"] {
		if cfg.Store == nil {
			return nil, errors.New("ingest and read need a store")
		}
		srv, err := startServer(ctx, cfg)
		if err != nil {
			return nil, err
		}
		defer srv.close(context.WithoutCancel(ctx))
		profile := cfg.CPUProfile != nil && !want["federation"]
		// The clients' envelopes are generated before the clock and the
		// profile start: what is measured is the server.
		sources := envelopeSources(cfg)
		if profile {
			if err := pprof.StartCPUProfile(cfg.CPUProfile); err != nil {
				return nil, fmt.Errorf("ingest: CPU profile: %w", err)
			}
		}
		c0 := CPUTime()
		row, curve, err := srv.ingest(ctx, cfg, sources)
		row.CPU = CPUTime() - c0
		if profile {
			pprof.StopCPUProfile()
		}
		if err != nil {
			return nil, fmt.Errorf("ingest: %w", err)
		}
		if want["ingest"] {
			res.Rows = append(res.Rows, row)
			res.Curve = curve
		}
		if want["read"] {
			c0 := CPUTime()
			row, err := srv.read(ctx, row.Count)
			if err != nil {
				return nil, fmt.Errorf("read: %w", err)
			}
			row.CPU = CPUTime() - c0
			res.Rows = append(res.Rows, row)
		}
	}
	if want["match"] {
		row, err := Match(cfg.Indicators, cfg.Observations)
		if err != nil {
			return nil, fmt.Errorf("match: %w", err)
		}
		res.Rows = append(res.Rows, row)
	}
	if want["detect"] {
		row, err := Detect(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("detect: %w", err)
		}
		res.Rows = append(res.Rows, row)
	}
	if want["federation"] {
		row, err := Federation(ctx, cfg)
		if err != nil {
			return nil, err
		}
		res.Rows = append(res.Rows, row)
	}
	return res, nil
}

// server is a TAXII server on the configured store, listening on a loopback
// port, with a user allowed to read and write one collection.
type server struct {
	st     store.Store
	hs     *http.Server
	base   string // http://host:port
	url    string
	col    string
	user   string
	token  string
	client *http.Client
	// scratch: leave the collection and user behind (Config.Scratch).
	scratch bool
}

func startServer(ctx context.Context, cfg Config) (*server, error) {
	st := cfg.Store
	s := &server{st: st, user: "bench-" + uuid.NewString()[:8], scratch: cfg.Scratch}
	// A random password: the benchmark authenticates with a token.
	pw, err := access.RandomSecret(18)
	if err != nil {
		return nil, err
	}
	if _, err := access.CreateUser(ctx, st, s.user, pw, access.RoleAnalyst, ""); err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	c := &store.Collection{Title: "mitra bench " + time.Now().UTC().Format(time.RFC3339), Readers: []string{s.user}, Writers: []string{s.user}}
	if err := st.CreateCollection(ctx, c); err != nil {
		st.DeleteUser(ctx, s.user)
		return nil, fmt.Errorf("create collection: %w", err)
	}
	s.col = c.ID
	if s.token, _, err = access.CreateToken(ctx, st, s.user, "", 0, time.Now()); err != nil {
		s.cleanup(ctx)
		return nil, fmt.Errorf("create token: %w", err)
	}
	srv := taxii.NewServer(taxii.Config{
		Store:     st,
		Auth:      access.NewAuthenticator(st, nil),
		Validator: cfg.Validator,
		Logger:    slog.New(slog.DiscardHandler),
		PageSize:  1000,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.cleanup(ctx)
		return nil, fmt.Errorf("listen: %w", err)
	}
	s.hs = &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go s.hs.Serve(ln)
	s.base = "http://" + ln.Addr().String()
	s.url = s.base + "/api/collections/" + c.ID + "/objects/"
	s.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
	return s, nil
}

func (s *server) cleanup(ctx context.Context) {
	if s.scratch {
		return
	}
	if s.col != "" {
		s.st.DeleteCollection(ctx, s.col)
	}
	s.st.DeleteUser(ctx, s.user)
}

func (s *server) close(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s.hs.Shutdown(sctx)
	s.cleanup(ctx)
}

func (s *server) do(ctx context.Context, method, url string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Accept", taxii.MediaType)
	if body != nil {
		req.Header.Set("Content-Type", taxii.MediaType)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s: %d %s", method, resp.StatusCode, out[:min(len(out), 300)])
	}
	return out, nil
}

// envelopeSources returns one envelope source per client of cfg, built
// on every core.
func envelopeSources(cfg Config) []*EnvelopeSource {
	sources := make([]*EnvelopeSource, cfg.Clients)
	var wg sync.WaitGroup
	for k := range sources {
		wg.Go(func() {
			sources[k] = NewEnvelopeSource(NewGenerator(cfg.Seed*1000+uint64(k)+1), cfg.Envelope)
		})
	}
	wg.Wait()
	return sources
}

// ingest POSTs cfg.Objects new indicators with one client per source and
// checks that every one was accepted.
func (s *server) ingest(ctx context.Context, cfg Config, sources []*EnvelopeSource) (Row, []Point, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	envelopes := (cfg.Objects + cfg.Envelope - 1) / cfg.Envelope
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var curve []Point
	stored, lastStored := 0, 0
	start := time.Now()
	last := start
	var wg sync.WaitGroup
	for _, src := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(envelopes) || ctx.Err() != nil {
					return
				}
				n := min(cfg.Envelope, cfg.Objects-int(i)*cfg.Envelope)
				body := src.Next()
				if n < cfg.Envelope {
					body = src.g.Envelope(n)
				}
				t0 := time.Now()
				out, err := s.do(ctx, "POST", s.url, body)
				if err != nil {
					cancel(err)
					return
				}
				d := time.Since(t0)
				var st struct {
					SuccessCount int `json:"success_count"`
					FailureCount int `json:"failure_count"`
				}
				if err := json.Unmarshal(out, &st); err != nil || st.SuccessCount != n {
					cancel(fmt.Errorf("%d of %d objects accepted: %s", st.SuccessCount, n, out[:min(len(out), 500)]))
					return
				}
				mu.Lock()
				lat = append(lat, d)
				before := stored
				stored += n
				if stored/cfg.Step > before/cfg.Step || stored == cfg.Objects {
					now := time.Now()
					p := Point{Stored: stored, Rate: float64(stored-lastStored) / now.Sub(last).Seconds()}
					curve = append(curve, p)
					last, lastStored = now, stored
					fmt.Fprintf(cfg.Progress, "ingest: %d objects stored, %.0f objects/s\n", p.Stored, p.Rate)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return Row{}, nil, err
	}
	// The objects count once they can be searched too: the SQLite search
	// index follows the commits (migration 0016) and its catch-up is part
	// of what ingest costs.
	if err := searchable(ctx, s.st, s.col); err != nil {
		return Row{}, nil, err
	}
	el := time.Since(start)
	p50, p99 := percentiles(lat)
	return Row{Name: "ingest", Count: stored, Unit: "objects", Time: el, P50: p50, P99: p99,
		Note: fmt.Sprintf("POST, %d clients, envelopes of %d", cfg.Clients, cfg.Envelope)}, curve, nil
}

// searchable returns once the store's search index holds every object
// of collection col committed so far: a search catches it up (SQLite,
// whose index follows the commits in its own file) or finds it so
// (PostgreSQL, whose triggers keep it in the writing transaction).
func searchable(ctx context.Context, st store.Store, col string) error {
	se, ok := st.(store.Searcher)
	if !ok {
		return nil
	}
	r := &store.Reader{Collections: []store.ReadableCollection{{ID: col, DefaultTLP: 1}}}
	if _, err := se.SearchText(ctx, r, store.TextQuery{Text: "indicator", Limit: 1}); err != nil {
		return fmt.Errorf("search index: %w", err)
	}
	return nil
}

// read reads the collection page by page (1,000 objects, by next) and
// checks that it gets want objects.
func (s *server) read(ctx context.Context, want int) (Row, error) {
	var lat []time.Duration
	n := 0
	next := ""
	start := time.Now()
	for {
		u := s.url + "?limit=1000"
		if next != "" {
			u += "&next=" + next
		}
		t0 := time.Now()
		out, err := s.do(ctx, "GET", u, nil)
		if err != nil {
			return Row{}, err
		}
		lat = append(lat, time.Since(t0))
		more, nxt, count, err := ScanEnvelope(out)
		if err != nil {
			return Row{}, err
		}
		n += count
		if !more {
			break
		}
		next = nxt
	}
	el := time.Since(start)
	if n != want {
		return Row{}, fmt.Errorf("read %d objects, want %d", n, want)
	}
	p50, p99 := percentiles(lat)
	return Row{Name: "read", Count: n, Unit: "objects", Time: el, P50: p50, P99: p99, Note: "GET pages of 1000, by next"}, nil
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	if len(d) == 0 {
		return 0, 0
	}
	d = slices.Clone(d)
	slices.Sort(d)
	return d[len(d)*50/100], d[min(len(d)-1, len(d)*99/100)]
}

// Print writes res as a table, then the ingest curve.
func Print(w io.Writer, res *Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "benchmark\tcount\tseconds\tper second\tp50\tp99\tCPU µs each\t\t")
	for _, r := range res.Rows {
		p50, p99 := "-", "-"
		if r.P50 > 0 {
			p50, p99 = ms(r.P50), ms(r.P99)
		}
		cpu := "-"
		if r.CPU > 0 && r.Count > 0 {
			cpu = fmt.Sprintf("%.1f", float64(r.CPU)/float64(time.Microsecond)/float64(r.Count))
		}
		fmt.Fprintf(tw, "%s\t%d %s\t%.1f\t%.0f %s/s\t%s\t%s\t%s\t\t%s\n", r.Name, r.Count, r.Unit, r.Time.Seconds(), r.Rate(), r.Unit, p50, p99, cpu, r.Note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(res.Curve) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\ningest curve (objects/s while the store grew to):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "objects stored\tobjects/s\t")
	for _, p := range res.Curve {
		fmt.Fprintf(tw, "%d\t%.0f\t\n", p.Stored, p.Rate)
	}
	return tw.Flush()
}

func ms(d time.Duration) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)), "0"), ".") + " ms"
}
