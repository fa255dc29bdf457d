package sqlite_test

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/bench"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/mitra-cert/mitra/internal/store/storetest"
)

// BenchmarkAddGrowing is the store's share of TAXII ingest as the store
// grows: groups of four requests of 500 generated indicators (what the
// server's committer writes under four clients) until MITRA_GROW_OBJECTS
// objects (default 200,000) are stored. It reports the process's CPU time
// per object for each step of 100,000 objects, checkpoints included, and
// ignores b.N (run it with -benchtime 1x).
func BenchmarkAddGrowing(b *testing.B) {
	total := 200000
	if v, err := strconv.Atoi(os.Getenv("MITRA_GROW_OBJECTS")); err == nil && v > 0 {
		total = v
	}
	const step, reqSize, group = 100000, 500, 4
	ctx := context.Background()
	s, err := sqlite.Open(ctx, b.TempDir(), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := &store.Collection{Title: "grow"}
	if err := s.CreateCollection(ctx, c); err != nil {
		b.Fatal(err)
	}
	g := bench.NewGenerator(1)
	var allCPU time.Duration
	var allWall time.Duration
	for stored := 0; stored < total; stored += step {
		b.StopTimer()
		objs := make([]store.Object, 0, step)
		for len(objs) < step {
			var env struct{ Objects []json.RawMessage }
			if err := json.Unmarshal(g.Envelope(reqSize), &env); err != nil {
				b.Fatal(err)
			}
			for _, raw := range env.Objects {
				o := storetest.Obj(b, raw)
				o.Submitter = "identity--00000000-0000-4000-8000-0000000000b1"
				objs = append(objs, o)
			}
		}
		b.StartTimer()
		cpu0, wall0 := processCPU(b), time.Now()
		for len(objs) > 0 {
			reqs := make([]*store.AddRequest, 0, group)
			for range group {
				if len(objs) == 0 {
					break
				}
				n := min(reqSize, len(objs))
				reqs = append(reqs, &store.AddRequest{Objects: objs[:n]})
				objs = objs[n:]
			}
			if err := s.AddGroup(ctx, c.ID, reqs); err != nil {
				b.Fatal(err)
			}
		}
		cpu, wall := processCPU(b)-cpu0, time.Since(wall0)
		allCPU += cpu
		allWall += wall
		b.Logf("to %d objects: %.1f CPU µs/object, %.0f objects/s", stored+step,
			float64(cpu.Microseconds())/step, step/wall.Seconds())
	}
	// The search index (another file since migration 0016) follows the
	// commits in the background: how far behind it is at the end, and
	// what catching up costs.
	cpu0, wall0 := processCPU(b), time.Now()
	r := &store.Reader{Collections: []store.ReadableCollection{{ID: c.ID, DefaultTLP: 1}}}
	if _, err := s.SearchText(ctx, r, store.TextQuery{Text: "indicator", Limit: 1}); err != nil {
		b.Fatal(err)
	}
	b.Logf("search index caught up %.2f s after the last commit, %.1f CPU µs/object more", time.Since(wall0).Seconds(),
		float64((processCPU(b)-cpu0).Microseconds())/float64(total))
	b.ReportMetric(float64(allCPU.Microseconds())/float64(total), "cpu-µs/object")
	b.ReportMetric(float64(total)/allWall.Seconds(), "objects/s")
}

// processCPU returns the user and system CPU time of the process so far.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
