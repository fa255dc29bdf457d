package detect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mitra-cert/mitra/internal/pattern"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Detector.
type Config struct {
	// Indicators keeps the matcher loaded (required).
	Indicators Indicators
	// Sink receives sightings, observed-data and SCOs (required).
	Sink Sink
	// Identity is the reporting organisation's identity id: the
	// sightings' where_sighted_refs and created_by_ref.
	Identity string
	// Bucket is the aggregation period of sightings (1 minute).
	Bucket time.Duration
	// Flush is how often changed sightings are written (5 seconds).
	Flush time.Duration
	// Poll is how often indicator changes are polled (1 second).
	Poll time.Duration
	// Resync is how often the indicator set is rebuilt in full, to follow
	// grant and policy changes (5 minutes).
	Resync time.Duration
	// Workers decoding and matching (GOMAXPROCS).
	Workers int
	// MaxObjects caps the SCOs of one observed-data summary (32).
	MaxObjects int
	// Logger gets malformed lines (rate-limited) and errors.
	Logger *slog.Logger
	// Progress, when set, gets a line of counters every ProgressEvery
	// (10 seconds) and at the end.
	Progress      io.Writer
	ProgressEvery time.Duration
	// Registerer, when set, gets the detector's Prometheus metrics.
	Registerer prometheus.Registerer
	// Now is the clock (time.Now).
	Now func() time.Time
	// Matcher options.
	Matcher pattern.MatcherOptions
}

// Stats are the detector's counters.
type Stats struct {
	Events     int64 // records decoded
	Matches    int64 // indicator matches
	Sightings  int64 // sighting versions written
	Malformed  int64 // lines skipped as malformed
	SinkErrors int64 // failed writes (retried)
	Indicators int   // indicators loaded
	// Lag is how far the newest event time is behind the clock.
	Lag time.Duration
}

// Detector matches events against indicators and writes sightings.
type Detector struct {
	cfg     Config
	log     *slog.Logger
	matcher *pattern.Matcher
	agg     *aggregator
	bad     *rateLog
	loaded  bool

	events, matches, sightings, malformed, sinkErrors atomic.Int64
	newest                                            atomic.Int64 // newest event time, Unix ns
	pending                                           atomic.Int64 // messages waiting in the stream, from NATS metadata
}

// New checks cfg and returns a Detector; its metrics are registered with
// cfg.Registerer when set. Run starts it.
func New(cfg Config) (*Detector, error) {
	if cfg.Indicators == nil || cfg.Sink == nil {
		return nil, errors.New("detect: Indicators and Sink are required")
	}
	if cfg.Bucket <= 0 {
		cfg.Bucket = time.Minute
	}
	if cfg.Flush <= 0 {
		cfg.Flush = 5 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 5 * time.Minute
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.MaxObjects <= 0 {
		cfg.MaxObjects = 32
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Detector{cfg: cfg, log: cfg.Logger, matcher: pattern.NewMatcher(cfg.Matcher)}
	d.agg = newAggregator(cfg.Bucket, cfg.Identity, cfg.MaxObjects, cfg.Now)
	d.bad = newRateLog(cfg.Logger, 10, 10*time.Second, cfg.Now)
	if cfg.Registerer != nil {
		if err := d.register(cfg.Registerer); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Stats returns the counters.
func (d *Detector) Stats() Stats {
	s := Stats{
		Events: d.events.Load(), Matches: d.matches.Load(), Sightings: d.sightings.Load(),
		Malformed: d.malformed.Load(), SinkErrors: d.sinkErrors.Load(), Indicators: d.cfg.Indicators.Len(),
	}
	if n := d.newest.Load(); n != 0 {
		s.Lag = max(d.cfg.Now().Sub(time.Unix(0, n)), 0)
	}
	return s
}

// Load loads the indicators; Run does it when it has not been done.
func (d *Detector) Load(ctx context.Context) error {
	if err := d.cfg.Indicators.Sync(ctx, d.matcher); err != nil {
		return fmt.Errorf("load indicators: %w", err)
	}
	d.loaded = true
	d.log.Info("indicators loaded", "count", d.cfg.Indicators.Len())
	return nil
}

// pipeline is what sources feed.
type pipeline struct {
	d    *Detector
	work chan *batch
	log  *slog.Logger

	mu  sync.Mutex
	end []func()
}

// atEnd registers cleanup to run when the detector has written its last
// sightings (NATS connections must outlive the acks).
func (p *pipeline) atEnd(f func()) {
	p.mu.Lock()
	p.end = append(p.end, f)
	p.mu.Unlock()
}

func (p *pipeline) submit(ctx context.Context, b *batch) error {
	b.pending.Store(1)
	select {
	case p.work <- b:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *pipeline) malformed(src string, line int64, err error) {
	p.d.malformed.Add(1)
	p.d.bad.log(src, line, err)
}

func (p *pipeline) countEvents(n int64) { p.d.events.Add(n) }

// Run loads the indicators, then reads the sources until they all end (or
// ctx is cancelled), matching and writing sightings as it goes. Before it
// returns it writes every pending sighting (so a file ends with its
// sightings stored); with a cancelled ctx, it makes a last attempt with a
// short deadline and whatever is not written stays unacknowledged.
func (d *Detector) Run(ctx context.Context, sources ...Source) error {
	if !d.loaded {
		if err := d.Load(ctx); err != nil {
			return err
		}
	}

	p := &pipeline{d: d, work: make(chan *batch, 2*d.cfg.Workers), log: d.log}
	var workers sync.WaitGroup
	for range d.cfg.Workers {
		workers.Go(func() { d.worker(p.work) })
	}

	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var bgDone sync.WaitGroup
	bgDone.Go(func() { d.keepIndicators(bg) })
	bgDone.Go(func() { d.flushLoop(bg) })
	if d.cfg.Progress != nil {
		bgDone.Go(func() { d.progressLoop(bg) })
	}

	srcErr := make(chan error, len(sources))
	var srcs sync.WaitGroup
	for _, s := range sources {
		srcs.Go(func() {
			if err := s.run(ctx, p); err != nil && !errors.Is(err, context.Canceled) {
				srcErr <- fmt.Errorf("%s: %w", s.Name(), err)
			}
		})
	}
	srcs.Wait()
	close(p.work)
	workers.Wait()
	stopBG()
	bgDone.Wait()
	close(srcErr)
	var errs []error
	for err := range srcErr {
		errs = append(errs, err)
	}

	// Final write: retried while ctx lives; after cancellation, one try.
	fctx := ctx
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		fctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
	}
	for attempt := 0; ; attempt++ {
		err := d.flush(fctx)
		if err == nil {
			break
		}
		if fctx.Err() != nil || attempt >= 5 {
			errs = append(errs, fmt.Errorf("write sightings: %w", err))
			break
		}
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
	p.mu.Lock()
	for _, f := range p.end {
		f()
	}
	p.mu.Unlock()
	if d.cfg.Progress != nil {
		d.printProgress(time.Time{}, 0)
	}
	return errors.Join(errs...)
}

func (d *Detector) worker(work <-chan *batch) {
	a := &arena{}
	var ms []pattern.Match
	one := make([]*pattern.Observation, 1)
	for b := range work {
		var events, matches int64
		var newest time.Time
		match := func(obs *pattern.Observation) {
			if obs.LastObserved.After(newest) {
				newest = obs.LastObserved
			}
			ms = d.matcher.MatchAppend(ms[:0], obs)
			if len(ms) == 0 {
				return
			}
			now := d.cfg.Now()
			for _, m := range ms {
				if !d.cfg.Indicators.Active(m.ID, now) {
					continue
				}
				matches++
				if m.Observations != nil {
					d.agg.add(m.ID, m.Observations, b)
				} else {
					one[0] = obs
					d.agg.add(m.ID, one, b)
				}
			}
		}
		for i, line := range b.lines {
			if line == "" {
				continue
			}
			obs, err := b.dec.decode(line, a)
			if err != nil {
				d.malformed.Add(1)
				d.bad.log(b.src, b.first+int64(i), err)
				continue
			}
			events++
			if obs != nil {
				match(obs)
			}
		}
		for _, obs := range b.pre {
			match(obs)
		}
		d.events.Add(events)
		d.matches.Add(matches)
		if !newest.IsZero() {
			n := newest.UnixNano()
			for {
				cur := d.newest.Load()
				if n <= cur || d.newest.CompareAndSwap(cur, n) {
					break
				}
			}
		}
		b.release()
	}
}

// keepIndicators polls for indicator changes, and rebuilds the set now and then.
func (d *Detector) keepIndicators(ctx context.Context) {
	poll := time.NewTicker(d.cfg.Poll)
	defer poll.Stop()
	last := d.cfg.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
		}
		var err error
		if d.cfg.Now().Sub(last) >= d.cfg.Resync {
			err = d.cfg.Indicators.Sync(ctx, d.matcher)
			last = d.cfg.Now()
		} else {
			err = d.cfg.Indicators.Poll(ctx, d.matcher)
		}
		if err != nil && ctx.Err() == nil {
			d.log.Warn("indicator update failed; retrying", "err", err)
		}
	}
}

func (d *Detector) flushLoop(ctx context.Context) {
	t := time.NewTicker(d.cfg.Flush)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := d.flush(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("writing sightings failed; retrying", "err", err)
		}
	}
}

// flush writes changed sightings and forgets finished aggregates.
func (d *Detector) flush(ctx context.Context) error {
	n, err := d.agg.flushTo(ctx, d.cfg.Sink)
	if err != nil {
		d.sinkErrors.Add(1)
		return err
	}
	d.sightings.Add(int64(n))
	d.agg.evict(max(d.cfg.Bucket, 2*d.cfg.Flush))
	return nil
}

func (d *Detector) progressLoop(ctx context.Context) {
	t := time.NewTicker(d.cfg.ProgressEvery)
	defer t.Stop()
	prev, prevAt := d.events.Load(), d.cfg.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		prev, prevAt = d.printProgress(prevAt, prev)
	}
}

// printProgress writes one line of counters; the rate is over the time
// since prevAt (none when zero).
func (d *Detector) printProgress(prevAt time.Time, prev int64) (int64, time.Time) {
	s := d.Stats()
	now := d.cfg.Now()
	rate := ""
	if !prevAt.IsZero() {
		if secs := now.Sub(prevAt).Seconds(); secs > 0 {
			rate = fmt.Sprintf(" (%.0f/s)", float64(s.Events-prev)/secs)
		}
	}
	lag := "-"
	if s.Lag > 0 {
		lag = s.Lag.Round(time.Millisecond).String()
	}
	pending := ""
	if p := d.pending.Load(); p > 0 {
		pending = fmt.Sprintf(", %d pending in stream", p)
	}
	fmt.Fprintf(d.cfg.Progress, "detect: %d events%s, %d matches, %d sightings written, %d malformed, %d indicators, lag %s%s\n",
		s.Events, rate, s.Matches, s.Sightings, s.Malformed, s.Indicators, lag, pending)
	return s.Events, now
}

// rateLog logs malformed lines, at most n per period, then says how many
// it left out.
type rateLog struct {
	out    *slog.Logger
	n      int
	period time.Duration
	now    func() time.Time

	mu         sync.Mutex
	start      time.Time
	shown      int
	suppressed int
}

func newRateLog(log *slog.Logger, n int, period time.Duration, now func() time.Time) *rateLog {
	return &rateLog{out: log, n: n, period: period, now: now}
}

func (r *rateLog) log(src string, line int64, err error) {
	r.mu.Lock()
	now := r.now()
	if now.Sub(r.start) >= r.period {
		if r.suppressed > 0 {
			r.out.Warn("malformed lines not shown", "count", r.suppressed, "period", r.period)
		}
		r.start, r.shown, r.suppressed = now, 0, 0
	}
	show := r.shown < r.n
	if show {
		r.shown++
	} else {
		r.suppressed++
	}
	r.mu.Unlock()
	if show {
		r.out.Warn("malformed line skipped", "pos", fmt.Sprintf("%s:%d", src, line), "err", err)
	}
}
