package detect_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/detect"
	"github.com/mitra-cert/mitra/internal/pattern"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func natsURL() string {
	if u := os.Getenv("MITRA_TEST_NATS"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

// natsIndicatorCount indicators d0..d39.example.com.
const natsIndicatorCount = 40

func natsIndicators() []pattern.Indicator {
	out := make([]pattern.Indicator, natsIndicatorCount)
	for i := range out {
		out[i] = pattern.Indicator{ID: natsIndicatorID(i), Pattern: fmt.Sprintf("[domain-name:value = 'd%d.example.com']", i)}
	}
	return out
}

func natsIndicatorID(i int) string {
	return fmt.Sprintf("indicator--%08d-0000-4000-8000-000000000000", i)
}

// natsRecord is record i: indicator i%40, in minute (i/40)%3, out of
// order within the minute.
func natsRecord(i int) (line string, ind string, minute int) {
	minute = (i / natsIndicatorCount) % 3
	sec := (i * 37) % 60
	line = fmt.Sprintf(`{"timestamp":"2024-03-01T10:%02d:%02d.000000+0000","event_type":"dns","src_ip":"10.0.0.1","src_port":5353,"dest_ip":"10.0.0.53","dest_port":53,"proto":"UDP","dns":{"type":"query","rrname":"d%d.example.com","rrtype":"A"}}`,
		minute, sec, i%natsIndicatorCount)
	return line, natsIndicatorID(i % natsIndicatorCount), minute
}

// nenv is a JetStream stream and a SQLite store for detectors.
type nenv struct {
	js     jetstream.JetStream
	nc     *nats.Conn
	stream string
	subj   string
	dir    string
	org    *store.Organisation
	coll   *store.Collection
	want   map[string]int64 // "indicator minute" -> records published
}

func newNEnv(t *testing.T) *nenv {
	t.Helper()
	nc, err := nats.Connect(natsURL(), nats.Timeout(2*time.Second))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("NATS at %s: %v", natsURL(), err)
		}
		t.Skipf("NATS at %s unreachable (%v); set MITRA_TEST_NATS", natsURL(), err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	e := &nenv{js: js, nc: nc, stream: "MITRA_TEST_" + uuid.NewString()[:8], want: map[string]int64{}}
	e.subj = "mitra.test." + e.stream
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: e.stream, Subjects: []string{e.subj + ".>"}, Storage: jetstream.MemoryStorage}); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skipf("JetStream not available: %v", err)
	}
	t.Cleanup(func() { js.DeleteStream(context.Background(), e.stream) })
	e.dir = t.TempDir()
	st, err := sqlite.Open(t.Context(), e.dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e.org = &store.Organisation{Name: "Sensor Org"}
	e.coll = &store.Collection{Title: "Sightings"}
	if err := st.CreateOrganisation(t.Context(), e.org); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateCollection(t.Context(), e.coll); err != nil {
		t.Fatal(err)
	}
	return e
}

// publish publishes records lo..hi-1 on subject suffix "json", every
// seventh message holding three records.
func (e *nenv) publish(t *testing.T, lo, hi int, pause time.Duration) {
	for i := lo; i < hi; {
		n := 1
		if i%7 == 0 {
			n = min(3, hi-i)
		}
		var lines []string
		for j := i; j < i+n; j++ {
			line, ind, minute := natsRecord(j)
			lines = append(lines, line)
			e.want[ind+" "+strconv.Itoa(minute)]++
		}
		if _, err := e.js.Publish(context.Background(), e.subj+".json", []byte(strings.Join(lines, "\n"))); err != nil {
			t.Error(err)
			return
		}
		i += n
		time.Sleep(pause)
	}
}

func runNATSDetector(ctx context.Context, dir, coll, org, stream string, flush, ackWait time.Duration) error {
	// Opening checks the schema under the write lock, which the other
	// detector may hold for a while.
	st, err := sqlite.Open(ctx, dir, sqlite.Options{})
	for try := 0; err != nil && try < 20; try++ {
		time.Sleep(100 * time.Millisecond)
		st, err = sqlite.Open(ctx, dir, sqlite.Options{})
	}
	if err != nil {
		return err
	}
	defer st.Close()
	d, err := detect.New(detect.Config{
		Indicators: &detect.StaticIndicators{List: natsIndicators()},
		Sink:       &detect.StoreSink{Store: st, Collection: coll, Submitter: org},
		Identity:   org, Flush: flush,
	})
	if err != nil {
		return err
	}
	return d.Run(ctx, &detect.NATSSource{URL: natsURL(), Stream: stream, Durable: "detectors", AckWait: ackWait, Fetch: 20})
}

// drained waits until the durable consumer has nothing pending nor
// unacknowledged.
func (e *nenv) drained(t *testing.T, within time.Duration) {
	t.Helper()
	waitFor(t, within, func() bool {
		cons, err := e.js.Consumer(t.Context(), e.stream, "detectors")
		if err != nil {
			return false
		}
		ci, err := cons.Info(t.Context())
		return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0 && ci.NumRedelivered == 0
	})
}

// check compares the stored sightings with the records published: one
// sighting per indicator and minute, whose count is the number of records.
func (e *nenv) check(t *testing.T) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), e.dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got := map[string]int64{}
	ids := map[string][]string{}
	for id, vs := range allVersions(t, st, e.coll.ID) {
		l := vs[len(vs)-1]
		if l.Type != "sighting" {
			continue
		}
		var s sightingVersion
		json.Unmarshal(l.Raw, &s)
		k := s.Of + " " + s.First[15:16] // the minute digit of 2024-03-01T10:0M
		got[k] += s.Count
		ids[k] = append(ids[k], id)
	}
	split, wrong := 0, 0
	for k, n := range e.want {
		if len(ids[k]) != 1 {
			split++
		}
		if got[k] != n {
			wrong++
			if wrong <= 5 {
				t.Errorf("%s: counted %d, published %d", k, got[k], n)
			}
		}
	}
	if split > 0 || wrong > 0 || len(got) != len(e.want) {
		t.Errorf("%d of %d (indicator, minute) pairs split, %d miscounted, %d pairs stored", split, len(e.want), wrong, len(got))
	}
	checkSummaries(t, st, e.coll.ID)
}

// TestNATSHelperProcess is the detector the kill test runs as a
// subprocess; it does nothing in a normal test run.
func TestNATSHelperProcess(t *testing.T) {
	if os.Getenv("MITRA_DETECT_HELPER") != "1" {
		t.Skip("helper process for TestNATSKilledDetectors")
	}
	err := runNATSDetector(context.Background(), os.Getenv("H_DIR"), os.Getenv("H_COLL"), os.Getenv("H_ORG"), os.Getenv("H_STREAM"), 50*time.Millisecond, 2*time.Second)
	fmt.Fprintln(os.Stderr, "helper ended:", err)
	os.Exit(3)
}

// Two detector processes share the durable consumer of a backlog; they are
// killed (SIGKILL) several times at random moments, in the middle of
// matching and of writes, and restarted. Every record is counted exactly
// once: per indicator and minute, one sighting whose count is the number
// of records published.
func TestNATSKilledDetectors(t *testing.T) {
	e := newNEnv(t)
	e.publish(t, 0, 8000, 0)
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestNATSHelperProcess$")
		cmd.Env = append(os.Environ(), "MITRA_DETECT_HELPER=1", "H_DIR="+e.dir, "H_COLL="+e.coll.ID, "H_ORG="+e.org.ID, "H_STREAM="+e.stream)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	procs := []*exec.Cmd{start(), start()}
	defer func() {
		for _, p := range procs {
			p.Process.Kill()
			p.Wait()
		}
	}()
	cons, err := e.js.Consumer(t.Context(), e.stream, "detectors")
	for cons == nil || err != nil {
		time.Sleep(20 * time.Millisecond)
		cons, err = e.js.Consumer(t.Context(), e.stream, "detectors")
	}
	kills := 0
	for round := range 4 {
		var ci *jetstream.ConsumerInfo
		waitFor(t, 20*time.Second, func() bool {
			ci, err = cons.Info(t.Context())
			return err == nil && (ci.NumAckPending > 0 || ci.NumPending == 0)
		})
		time.Sleep(time.Duration(rand.IntN(150)) * time.Millisecond)
		if ci, err = cons.Info(t.Context()); err != nil {
			t.Fatal(err)
		}
		if ci.NumPending == 0 && ci.NumAckPending == 0 {
			break
		}
		victim := round % 2
		t.Logf("kill -9 detector %d: %d acked, %d unacked, %d pending", victim, ci.AckFloor.Stream, ci.NumAckPending, ci.NumPending)
		procs[victim].Process.Kill()
		procs[victim].Wait()
		kills++
		if round == 1 {
			e.publish(t, 8000, 9000, 0) // more while they run
		}
		procs[victim] = start()
	}
	if kills < 2 {
		t.Logf("only %d kills: the backlog was drained early", kills)
	}
	e.drained(t, 120*time.Second)
	e.check(t)
}

// A sink outage longer than the ack wait (the store's write lock held by
// another transaction for four ack waits) neither loses nor double-counts
// anything: the detector keeps extending the deadlines of the messages it
// holds.
func TestNATSSinkOutageLongerThanAckWait(t *testing.T) {
	e := newNEnv(t)
	e.publish(t, 0, 500, 0)
	ctx, cancel := context.WithCancel(t.Context())
	st, err := sqlite.Open(ctx, e.dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d, err := detect.New(detect.Config{
		Indicators: &detect.StaticIndicators{List: natsIndicators()},
		Sink:       &detect.StoreSink{Store: st, Collection: e.coll.ID, Submitter: e.org.ID},
		Identity:   e.org.ID, Flush: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- d.Run(ctx, &detect.NATSSource{URL: natsURL(), Stream: e.stream, Durable: "detectors", AckWait: time.Second, Fetch: 20})
	}()
	e.drained(t, 30*time.Second)

	other, err := sqlite.Open(t.Context(), e.dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	locked := make(chan struct{})
	released := make(chan error, 1)
	go func() {
		released <- other.Update(context.Background(), e.coll.ID, func(context.Context, store.Tx) error {
			close(locked)
			time.Sleep(4 * time.Second)
			return nil
		})
	}()
	<-locked
	e.publish(t, 500, 1500, time.Millisecond)
	if err := <-released; err != nil {
		t.Fatal(err)
	}
	e.drained(t, 30*time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The deadlines were extended: nothing was delivered twice.
	if s := d.Stats(); s.Redelivered != 0 || s.SinkErrors != 0 {
		t.Errorf("%d messages delivered again, %d failed writes", s.Redelivered, s.SinkErrors)
	}
	e.check(t)
}

// A Zeek TSV stream whose header was published once, at its start: a
// detector started after another one consumed the header still decodes
// every line; a line that cannot be decoded goes to the dead-letter
// subject with its reason, and so do lines of a subject whose header is
// never published.
func TestNATSZeekHeaderOnceAndDeadLetters(t *testing.T) {
	e := newNEnv(t)
	dlq := "mitra.test.dlq." + e.stream
	if _, err := e.js.CreateStream(t.Context(), jetstream.StreamConfig{Name: e.stream + "_DLQ", Subjects: []string{dlq}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	defer e.js.DeleteStream(context.Background(), e.stream+"_DLQ")
	header := "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tdns\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tquery\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring"
	line := func(i int) string {
		ts := time.Date(2024, 3, 1, 10, 0, (i*13)%60, 0, time.UTC).Unix()
		return fmt.Sprintf("%d.5\tC%d\t10.1.0.%d\t4000\t10.0.0.53\t53\tudp\td%d.example.com", ts, i, i%250, i%natsIndicatorCount)
	}
	pub := func(subj, data string) {
		if _, err := e.js.Publish(t.Context(), subj, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]int64{}
	pub(e.subj+".zeek", header)
	for i := range 10 {
		pub(e.subj+".zeek", line(i))
		want[natsIndicatorID(i%natsIndicatorCount)]++
	}
	run := func(within time.Duration) {
		st, err := sqlite.Open(t.Context(), e.dir, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		d, err := detect.New(detect.Config{
			Indicators: &detect.StaticIndicators{List: natsIndicators()},
			Sink:       &detect.StoreSink{Store: st, Collection: e.coll.ID, Submitter: e.org.ID},
			Identity:   e.org.ID, Flush: 50 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			done <- d.Run(ctx, &detect.NATSSource{URL: natsURL(), Stream: e.stream, Durable: "detectors", AckWait: 2 * time.Second,
				Fetch: 20, DeadLetter: dlq, HeaderBucket: "mitra_test_headers", HeaderWait: 2})
		}()
		e.drained(t, within)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	run(20 * time.Second)

	// Later: more lines, one of them garbage, and lines on a subject whose
	// header nobody published. A new detector never sees the header.
	for i := 10; i < 60; i++ {
		pub(e.subj+".zeek", line(i))
		want[natsIndicatorID(i%natsIndicatorCount)]++
	}
	pub(e.subj+".zeek", "not-a-time\tC1\t10.1.0.1\t4000\t10.0.0.53\t53\tudp\td1.example.com")
	pub(e.subj+".headless", line(1))
	run(30 * time.Second)

	st, err := sqlite.Open(t.Context(), e.dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := range natsIndicatorCount {
		id := natsIndicatorID(i)
		if got := sightingCount(t, st, e.coll.ID, id); int64(got) != want[id] {
			t.Errorf("%s: counted %d, published %d", id, got, want[id])
		}
	}
	// The dead letters, with their reasons.
	cons, err := e.js.CreateConsumer(t.Context(), e.stream+"_DLQ", jetstream.ConsumerConfig{AckPolicy: jetstream.AckNonePolicy})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(10)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for m := range batch.Messages() {
		reasons = append(reasons, m.Headers().Get("Mitra-Subject")+": "+m.Headers().Get("Mitra-Reason"))
	}
	if len(reasons) != 2 || !strings.Contains(strings.Join(reasons, "\n"), "not seconds since the epoch") || !strings.Contains(strings.Join(reasons, "\n"), "TSV line without a #fields header") {
		t.Errorf("dead letters: %q", reasons)
	}
}
