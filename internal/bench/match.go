package bench

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/mitra-cert/mitra/internal/detect"
	"github.com/mitra-cert/mitra/internal/pattern"
	"github.com/mitra-cert/mitra/internal/store"
)

// indicatorID is the id of the i-th indicator of the match and detect
// benchmarks.
func indicatorID(i int) string {
	return fmt.Sprintf("indicator--%08x-0000-4000-8000-%012x", i, i)
}

// observed returns an observation that matches Pattern(i), for the kinds
// of the mix whose match is certain from a single SCO, and false for the
// others.
func observed(i uint64, t time.Time) (*pattern.Observation, bool) {
	var o pattern.Object
	switch i % 20 {
	case 0, 1, 2, 3, 4, 5:
		o = &pattern.SCO{T: "ipv4-addr", Value: ipv4(i)}
	case 8, 9, 10:
		o = &pattern.SCO{T: "domain-name", Value: domain(i)}
	case 11, 12:
		o = &pattern.SCO{T: "url", Value: fmt.Sprintf("http://%s/%x/index.php", domain(i), i)}
	case 13, 14:
		o = &pattern.SCO{T: "file", Hashes: map[string]string{"MD5": fmt.Sprintf("%032x", hash(i, 16))}}
	case 15, 16:
		o = &pattern.SCO{T: "file", Hashes: map[string]string{"SHA-256": fmt.Sprintf("%064x", hash(i, 32))}}
	case 17:
		o = &pattern.SCO{T: "email-addr", Value: fmt.Sprintf("user%d@%s", i, domain(i))}
	default:
		return nil, false
	}
	obs, err := pattern.NewObservation(t, t, 1, o)
	if err != nil {
		panic(err) // a single SCO with a time: always valid
	}
	return obs, true
}

// Match loads indicators patterns of the feed mix into a pattern.Matcher
// and matches observations against them on every core: one observation in
// eight names an indicator's value, the others values no indicator names.
// It fails unless every observation built to match its indicator did.
func Match(indicators, observations int) (Row, error) {
	inds := make([]pattern.Indicator, indicators)
	for i := range inds {
		inds[i] = pattern.Indicator{ID: indicatorID(i), Pattern: Pattern(uint64(i))}
	}
	m := pattern.NewMatcher(pattern.MatcherOptions{})
	t0 := time.Now()
	if err := m.AddAll(inds); err != nil {
		return Row{}, err
	}
	load := time.Since(t0)
	// Observations are built before the clock starts.
	type probe struct {
		obs  *pattern.Observation
		want string // the indicator it must match, "" for none expected
	}
	r := rand.New(rand.NewPCG(7, 7))
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	probes := make([]probe, 0, observations)
	for len(probes) < observations {
		t := base.Add(time.Duration(len(probes)) * time.Millisecond)
		if r.IntN(8) == 0 {
			j := r.Uint64N(uint64(indicators))
			if obs, ok := observed(j, t); ok {
				probes = append(probes, probe{obs, indicatorID(int(j))})
			}
			continue
		}
		// A value outside the indicator set.
		obs, _ := observed(uint64(indicators)+r.Uint64N(1<<30)*20, t)
		probes = append(probes, probe{obs, ""})
	}
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var matches, hits, want int
	var missed string
	c0 := CPUTime()
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []pattern.Match
			nm, nh, nw := 0, 0, 0
			miss := ""
			for k := w; k < len(probes); k += workers {
				buf = m.MatchAppend(buf[:0], probes[k].obs)
				nm += len(buf)
				if id := probes[k].want; id != "" {
					nw++
					if slices.ContainsFunc(buf, func(x pattern.Match) bool { return x.ID == id }) {
						nh++
					} else if miss == "" {
						miss = id
					}
				}
			}
			mu.Lock()
			matches, hits, want = matches+nm, hits+nh, want+nw
			if missed == "" {
				missed = miss
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	el, cpu := time.Since(start), CPUTime()-c0
	if hits != want {
		return Row{}, fmt.Errorf("%d of %d observations built to match did not match (first: %s)", want-hits, want, missed)
	}
	return Row{Name: "match", Count: len(probes), Unit: "observations", Time: el, CPU: cpu,
		Note: fmt.Sprintf("%d indicators (loaded in %.1f s), %d matches, %d workers", indicators, load.Seconds(), matches, workers)}, nil
}

// Detect runs the detector on a generated Zeek DNS log of cfg.Lines lines
// (one in 1,000 queries an indicator's domain) with cfg.Indicators domain
// indicators, writing its sightings to cfg.Store, and checks the count of
// matches. It only calls the detector's public API, as 'mitra detect' does.
func Detect(ctx context.Context, cfg Config) (Row, error) {
	dir, err := os.MkdirTemp(cfg.TempDir, "mitra-bench-")
	if err != nil {
		return Row{}, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "dns.log")
	if err := writeDNSLog(path, cfg.Lines, cfg.Indicators); err != nil {
		return Row{}, err
	}
	inds := make([]pattern.Indicator, cfg.Indicators)
	for i := range inds {
		inds[i] = pattern.Indicator{ID: indicatorID(i), Pattern: fmt.Sprintf("[domain-name:value = 'ioc%d.example.com']", i)}
	}
	sink, cleanup, err := sightingSink(ctx, cfg)
	if err != nil {
		return Row{}, err
	}
	defer cleanup()
	// The sightings come from the store's default organisation, as with
	// 'mitra detect' without --org.
	d, err := detect.New(detect.Config{Indicators: &detect.StaticIndicators{List: inds}, Sink: sink, Identity: sink.Submitter})
	if err != nil {
		return Row{}, err
	}
	if err := d.Load(ctx); err != nil {
		return Row{}, err
	}
	c0 := CPUTime()
	start := time.Now()
	if err := d.Run(ctx, &detect.FileSource{Path: path}); err != nil {
		return Row{}, err
	}
	el, cpu := time.Since(start), CPUTime()-c0
	s := d.Stats()
	if want := int64((cfg.Lines + 999) / 1000); s.Events != int64(cfg.Lines) || s.Matches != want {
		return Row{}, fmt.Errorf("%d events and %d matches, want %d and %d", s.Events, s.Matches, cfg.Lines, want)
	}
	return Row{Name: "detect", Count: cfg.Lines, Unit: "lines", Time: el, CPU: cpu,
		Note: fmt.Sprintf("Zeek dns.log, %d indicators, %d matches, %d sightings", cfg.Indicators, s.Matches, s.Sightings)}, nil
}

// writeDNSLog writes a Zeek DNS log of n queries, one in 1,000 for
// ioc<k>.example.com with k below indicators.
func writeDNSLog(path string, n, indicators int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString("#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tdns\n#open\t2024-03-01-10-00-00\n")
	w.WriteString("#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\ttrans_id\trtt\tquery\tqclass\tqclass_name\tqtype\tqtype_name\trcode\trcode_name\tAA\tTC\tRD\tRA\tZ\tanswers\tTTLs\trejected\n")
	w.WriteString("#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tcount\tinterval\tstring\tcount\tstring\tcount\tstring\tcount\tstring\tbool\tbool\tbool\tbool\tcount\tvector[string]\tvector[interval]\tbool\n")
	const start = 1709287200
	var b []byte
	for i := range n {
		b = b[:0]
		// 10,000 queries per second of event time.
		b = strconv.AppendInt(b, int64(start+i/10000), 10)
		b = fmt.Appendf(b, ".%06d", (i%10000)*100)
		b = fmt.Appendf(b, "\tC%016x\t192.168.%d.%d\t%d\t192.168.1.1\t53\tudp\t%d\t0.012345\t", uint64(i)*2654435761, (i>>8)&255, i&255, 1024+i%60000, i&65535)
		if i%1000 == 0 {
			b = fmt.Appendf(b, "ioc%d.example.com", (i/1000)%indicators)
		} else {
			b = fmt.Appendf(b, "host%d.benign-%d.example.net", i, i%977)
		}
		b = fmt.Appendf(b, "\t1\tC_INTERNET\t1\tA\t0\tNOERROR\tF\tF\tT\tT\t0\t198.51.%d.%d\t300.000000\tF\n", (i>>8)&255, i&255)
		w.Write(b)
	}
	w.WriteString("#close\t2024-03-01-11-00-00\n")
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// sightingSink returns a sink into a new collection of cfg.Store, and a
// function that removes the collection.
func sightingSink(ctx context.Context, cfg Config) (*detect.StoreSink, func(), error) {
	if cfg.Store == nil {
		return nil, nil, fmt.Errorf("detect needs a store for its sightings")
	}
	c := &store.Collection{Title: "mitra bench sightings " + time.Now().UTC().Format(time.RFC3339)}
	if err := cfg.Store.CreateCollection(ctx, c); err != nil {
		return nil, nil, fmt.Errorf("create collection: %w", err)
	}
	org, err := cfg.Store.DefaultOrganisation(ctx)
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() {
		if !cfg.Scratch {
			cfg.Store.DeleteCollection(context.WithoutCancel(ctx), c.ID)
		}
	}
	return &detect.StoreSink{Store: cfg.Store, Collection: c.ID, Submitter: org.ID}, cleanup, nil
}
