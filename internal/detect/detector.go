package detect

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/access"
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
	// sightings' where_sighted_refs and created_by_ref, and the name space
	// of their ids (every detector of an organisation names a bucket's
	// sighting alike).
	Identity string
	// Anonymous hides Identity from everything written: the objects name
	// access.AnonymousIdentity instead (store.Organisation.AnonymiseSightings),
	// and the ids are derived from a key only the organisation's detectors
	// hold (IDKey).
	Anonymous bool
	// IDKey, with Anonymous, is the secret the sighting ids are derived
	// from; when empty it is read from (or created in) the sink's cursor
	// "detect/<Identity>/id-key".
	IDKey []byte
	// TLP is the level of the telemetry (TLP:AMBER when unmarked): what is
	// written is marked with the strictest of it and the matched
	// indicator's level.
	TLP access.TLP
	// MaxPending bounds the aggregated matches (distinct indicator and
	// bucket pairs of the batches waiting) held between writes (100,000);
	// workers wait for a write beyond it.
	MaxPending int

	// Bucket is the aggregation period of sightings (1 minute).
	Bucket time.Duration
	// Flush is how often the matches gathered are written (5 seconds).
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
	// Redelivered counts stream messages delivered again (after a crash,
	// or an ack deadline that passed); Duplicates those of them that were
	// already counted and were only acknowledged.
	Redelivered, Duplicates int64
	Indicators              int // indicators loaded
	// Lag is how far the newest event time is behind the clock.
	Lag time.Duration
}

// Detector matches events against indicators and writes sightings.
type Detector struct {
	cfg      Config
	log      *slog.Logger
	matcher  *pattern.Matcher
	agg      *aggregator
	rend     *renderer
	bad      *rateLog
	loaded   bool
	flushNow chan struct{}

	events, matches, sightings, malformed, sinkErrors atomic.Int64
	newest                                            atomic.Int64 // newest event time, Unix ns
	pending                                           atomic.Int64 // messages waiting in the stream, from NATS metadata
	flushing                                          atomic.Bool
	redelivered, duplicates                           atomic.Int64

	lanesMu sync.Mutex
	lanes   []*lane
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
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 100_000
	}
	if cfg.TLP == access.TLPUnmarked {
		cfg.TLP = access.TLPAmber
	}
	d := &Detector{cfg: cfg, log: cfg.Logger, matcher: pattern.NewMatcher(cfg.Matcher), flushNow: make(chan struct{}, 1)}
	d.agg = newAggregator(cfg.MaxPending)
	d.rend = &renderer{org: cfg.Identity, identity: cfg.Identity, tlp: cfg.TLP, maxObjects: cfg.MaxObjects,
		marking: cfg.Indicators.Marking, now: cfg.Now, idSpace: uuid.NewSHA1(idNamespace, []byte(cfg.Identity))}
	if cfg.Anonymous {
		d.rend.identity = access.AnonymousIdentity
	}
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
		Redelivered: d.redelivered.Load(), Duplicates: d.duplicates.Load(),
	}
	if n := d.newest.Load(); n != 0 {
		s.Lag = max(d.cfg.Now().Sub(time.Unix(0, n)), 0)
	}
	return s
}

// Load loads the indicators (and, for an anonymous organisation, its id
// key); Run does it when it has not been done.
func (d *Detector) Load(ctx context.Context) error {
	if d.cfg.Anonymous {
		key, err := d.idKey(ctx)
		if err != nil {
			return fmt.Errorf("sighting id key: %w", err)
		}
		d.rend.idSpace = uuid.NewSHA1(idNamespace, append([]byte("anonymous|"+d.cfg.Identity+"|"), key...))
	}
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
		workers.Go(func() { d.worker(ctx, p.work) })
	}

	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var bgDone sync.WaitGroup
	bgDone.Go(func() { d.keepIndicators(bg) })
	bgDone.Go(func() { d.flushLoop(bg) })
	bgDone.Go(func() { d.keepInProgress(bg) })
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

func (d *Detector) worker(ctx context.Context, work <-chan *batch) {
	a := &arena{}
	var ms []pattern.BatchMatch
	one := make([]*pattern.Observation, 1)
	var decoded []*pattern.Observation
	bucket := d.cfg.Bucket
	for b := range work {
		var events, matches int64
		var newest time.Time
		u := &unit{lane: b.lane, msgs: b.msgs}
		now := d.cfg.Now()
		// Matches are only counted here, per key, in a map of the batch:
		// STIX objects are built when a sighting is written.
		record := func(obs *pattern.Observation, m pattern.Match) {
			os := m.Observations
			if os == nil {
				one[0] = obs
				os = one
			}
			first, last := os[0].FirstObserved, os[0].LastObserved
			var n int64 = 1
			if len(os) == 1 {
				n = max(os[0].NumberObserved, 1)
			} else {
				for _, o := range os[1:] {
					if o.FirstObserved.Before(first) {
						first = o.FirstObserved
					}
					if o.LastObserved.After(last) {
						last = o.LastObserved
					}
				}
			}
			key := aggKey{indicator: m.ID, bucket: bucketOf(first, bucket)}
			dl := u.deltas[key]
			if dl == nil {
				// Validity is checked once per key and batch.
				if !d.cfg.Indicators.Active(m.ID, now) {
					return
				}
				if u.deltas == nil {
					u.deltas = map[aggKey]*delta{}
				}
				dl = &delta{first: first.UnixNano(), last: last.UnixNano(), samples: [][]pattern.Object{sampleOf(os)}}
				u.deltas[key] = dl
			} else {
				dl.first, dl.last = min(dl.first, first.UnixNano()), max(dl.last, last.UnixNano())
			}
			dl.count += n
			matches++
		}
		// Decode the whole batch, then match it in one call, so that the
		// Matcher overlaps the cache misses of its index lookups.
		decoded = decoded[:0]
		dec, seg := b.dec, 0
		for i, line := range b.lines {
			for seg < len(b.segs) && b.segs[seg].at <= i {
				dec = b.segs[seg].dec
				seg++
			}
			if line == "" {
				continue
			}
			obs, err := dec.decode(line, a)
			if err != nil {
				d.malformed.Add(1)
				d.bad.log(b.src, b.first+int64(i), err)
				if b.dead != nil {
					b.dead(b.seqOf(i), line, err)
				}
				continue
			}
			events++
			if obs != nil {
				decoded = append(decoded, obs)
			}
		}
		decoded = append(decoded, b.pre...)
		for _, obs := range decoded {
			if obs.LastObserved.After(newest) {
				newest = obs.LastObserved
			}
		}
		ms = d.matcher.MatchBatch(ms[:0], decoded)
		for _, m := range ms {
			record(decoded[m.Obs], m.Match)
		}
		clear(decoded) // keep no slab alive through the buffer
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
		b.lines, b.pre = nil, nil
		if u.lane != nil || len(u.deltas) > 0 {
			d.agg.add(u)
		}
		// Bounded memory: wait for a write when too much is held.
		for d.agg.full() && ctx.Err() == nil {
			d.requestFlush()
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func (d *Detector) requestFlush() {
	select {
	case d.flushNow <- struct{}{}:
	default:
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
		case <-d.flushNow:
		}
		if err := d.flush(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("writing sightings failed; retrying", "err", err)
		}
	}
}

// flush writes what the workers gathered: in one sink transaction it
// reads the stored sightings of the keys, writes their next versions with
// the counts added, and records the stream positions written, so that a
// message is counted once whatever crashes and redeliveries happen. Then
// the messages are acknowledged.
func (d *Detector) flush(ctx context.Context) error {
	if d.flushing.Swap(true) {
		return nil // a write is running; it or the next takes the rest
	}
	defer d.flushing.Store(false)
	loose, units := d.agg.take()
	if len(loose) == 0 && len(units) == 0 {
		return nil
	}
	var (
		accepted []*unit
		rejected []*unit
		cursors  map[*lane]*cursor
		written  int
	)
	err := d.cfg.Sink.Update(ctx, func(ctx context.Context, tx SinkTx) error {
		accepted, rejected, written = nil, nil, 0
		cursors = map[*lane]*cursor{}
		merged := make(map[aggKey]*delta, len(loose))
		for k, dl := range loose {
			c := *dl
			c.samples = slices.Clip(c.samples)
			merged[k] = &c
		}
		for _, u := range units {
			c := cursors[u.lane]
			if c == nil {
				raw, err := tx.Cursor(ctx, u.lane.key)
				if err != nil {
					return fmt.Errorf("read cursor %s: %w", u.lane.key, err)
				}
				if c, err = parseCursor(raw); err != nil {
					return fmt.Errorf("cursor %s: %w", u.lane.key, err)
				}
				cursors[u.lane] = c
			}
			if slices.ContainsFunc(u.msgs, func(m msgRef) bool { return c.has(m.seq) }) {
				// Already counted (a redelivery of a message another write
				// committed): nothing of this batch counts again.
				rejected = append(rejected, u)
				continue
			}
			accepted = append(accepted, u)
			for _, m := range u.msgs {
				c.add(m.seq)
			}
			for k, dl := range u.deltas {
				if have := merged[k]; have != nil {
					have.merge(dl)
				} else {
					c := *dl
					c.samples = slices.Clip(c.samples)
					merged[k] = &c
				}
			}
		}
		if len(merged) > 0 {
			ids := make([]string, 0, 2*len(merged))
			for k := range merged {
				ids = append(ids, d.rend.sightingID(k), d.rend.dataID(k))
			}
			prev, err := tx.Latest(ctx, ids)
			if err != nil {
				return fmt.Errorf("read stored sightings: %w", err)
			}
			if err := tx.Put(ctx, d.rend.render(merged, prev)); err != nil {
				return err
			}
		}
		for l, c := range cursors {
			c.compact(l.floor.Load())
			if err := tx.SetCursor(ctx, l.key, c.encode()); err != nil {
				return fmt.Errorf("write cursor %s: %w", l.key, err)
			}
		}
		written = len(merged)
		return nil
	})
	if err != nil {
		d.agg.giveBack(loose, units)
		d.sinkErrors.Add(1)
		return err
	}
	d.agg.written()
	d.sightings.Add(int64(written))
	for l, c := range cursors {
		l.remember(c)
	}
	for _, u := range accepted {
		for _, m := range u.msgs {
			m.ack()
		}
	}
	for _, u := range rejected {
		c := cursors[u.lane]
		for _, m := range u.msgs {
			if c.has(m.seq) {
				d.duplicates.Add(1)
				m.ack()
			} else {
				m.nak() // counted with none of its batch: deliver it again
			}
		}
	}
	return nil
}

// keepInProgress tells the streams, every third of their ack wait, that
// the messages waiting for a write (or in one) are still being worked on,
// so that a slow or unavailable sink does not get them delivered again
// elsewhere and counted twice.
func (d *Detector) keepInProgress(ctx context.Context) {
	const tick = 100 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	last := map[*lane]time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		due := map[*lane]bool{}
		d.lanesMu.Lock()
		for _, l := range d.lanes {
			if now.Sub(last[l]) >= max(l.ackWait/3, tick) {
				due[l] = true
				last[l] = now
			}
		}
		d.lanesMu.Unlock()
		if len(due) == 0 {
			continue
		}
		d.agg.held(func(m msgRef) {
			if due[m.lane] && m.progress != nil {
				m.progress()
			}
		})
	}
}

// addLane registers a stream lane, for keepInProgress.
func (d *Detector) addLane(l *lane) {
	d.lanesMu.Lock()
	d.lanes = append(d.lanes, l)
	d.lanesMu.Unlock()
}

// idKey reads the secret the ids of an anonymous organisation's
// sightings derive from, creating it on first use.
func (d *Detector) idKey(ctx context.Context) ([]byte, error) {
	if len(d.cfg.IDKey) > 0 {
		return d.cfg.IDKey, nil
	}
	name := "detect/" + d.cfg.Identity + "/id-key"
	var key []byte
	err := d.cfg.Sink.Update(ctx, func(ctx context.Context, tx SinkTx) error {
		k, err := tx.Cursor(ctx, name)
		if err != nil {
			return err
		}
		if len(k) == 0 {
			k = make([]byte, 32)
			if _, err := rand.Read(k); err != nil {
				return err
			}
			if err := tx.SetCursor(ctx, name, k); err != nil {
				return err
			}
		}
		key = k
		return nil
	})
	return key, err
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
