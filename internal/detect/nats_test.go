package detect_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
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

const natsEvents = 1000

func natsURL() string {
	if u := os.Getenv("MITRA_TEST_NATS"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

// natsIndicators: one indicator per event, so that a sighting per
// indicator proves the event was accounted for.
func natsIndicators() []pattern.Indicator {
	out := make([]pattern.Indicator, natsEvents)
	for i := range out {
		out[i] = pattern.Indicator{ID: fmt.Sprintf("indicator--%08d-0000-4000-8000-000000000000", i),
			Pattern: fmt.Sprintf("[domain-name:value = 'd%d.example.com']", i)}
	}
	return out
}

func natsEvent(i int) []byte {
	return fmt.Appendf(nil, `{"timestamp":"2024-03-01T10:00:%02d.000000+0000","event_type":"dns","src_ip":"10.0.0.1","src_port":5353,"dest_ip":"10.0.0.53","dest_port":53,"proto":"UDP","dns":{"type":"query","rrname":"d%d.example.com","rrtype":"A"}}`, i%60, i)
}

func runNATSDetector(ctx context.Context, dir, coll, org, stream string, flush, ackWait time.Duration) error {
	st, err := sqlite.Open(ctx, dir, sqlite.Options{})
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

// TestNATSHelperProcess is the detector the kill test runs as a
// subprocess; it does nothing in a normal test run.
func TestNATSHelperProcess(t *testing.T) {
	if os.Getenv("MITRA_DETECT_HELPER") != "1" {
		t.Skip("helper process for TestNATSKilledDetector")
	}
	err := runNATSDetector(context.Background(), os.Getenv("H_DIR"), os.Getenv("H_COLL"), os.Getenv("H_ORG"), os.Getenv("H_STREAM"), 300*time.Millisecond, 2*time.Second)
	fmt.Fprintln(os.Stderr, "helper ended:", err)
	os.Exit(3)
}

// A detector killed (SIGKILL) in the middle of a stream loses nothing:
// the messages it had not acknowledged are delivered again to the next
// detector of the same durable consumer, and every event ends up in a
// stored sighting.
func TestNATSKilledDetector(t *testing.T) {
	nc, err := nats.Connect(natsURL(), nats.Timeout(2*time.Second))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("NATS at %s: %v", natsURL(), err)
		}
		t.Skipf("NATS at %s unreachable (%v); set MITRA_TEST_NATS", natsURL(), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	name := "MITRA_TEST_" + uuid.NewString()[:8]
	subj := "mitra.test." + name
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subj}, Storage: jetstream.MemoryStorage}); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skipf("JetStream not available: %v", err)
	}
	defer js.DeleteStream(context.Background(), name)

	dir := t.TempDir()
	st, err := sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	org := &store.Organisation{Name: "Sensor Org"}
	coll := &store.Collection{Title: "Sightings"}
	if err := st.CreateOrganisation(ctx, org); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateCollection(ctx, coll); err != nil {
		t.Fatal(err)
	}
	st.Close()

	publish := func(lo, hi int, pause time.Duration) {
		for i := lo; i < hi; i++ {
			if _, err := js.Publish(ctx, subj, natsEvent(i)); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(pause)
		}
	}
	publish(0, natsEvents/4, 0)

	cmd := exec.Command(os.Args[0], "-test.run=^TestNATSHelperProcess$")
	cmd.Env = append(os.Environ(), "MITRA_DETECT_HELPER=1", "H_DIR="+dir, "H_COLL="+coll.ID, "H_ORG="+org.ID, "H_STREAM="+name)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pubDone := make(chan struct{})
	go func() { publish(natsEvents/4, natsEvents, 2*time.Millisecond); close(pubDone) }()

	// Kill it once it has acknowledged some messages and holds others.
	cons, err := js.Consumer(ctx, name, "detectors")
	for deadline := time.Now().Add(20 * time.Second); ; {
		if err == nil {
			if ci, ierr := cons.Info(ctx); ierr == nil && ci.AckFloor.Consumer > 0 && ci.NumAckPending > 0 {
				t.Logf("killing the detector with %d acked, %d delivered but unacked", ci.AckFloor.Consumer, ci.NumAckPending)
				break
			}
		} else {
			cons, err = js.Consumer(ctx, name, "detectors")
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the helper detector never reached the middle of the stream")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	<-pubDone

	// A second detector drains the stream, redeliveries included.
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- runNATSDetector(rctx, dir, coll.ID, org.ID, name, 100*time.Millisecond, 2*time.Second) }()
	for deadline := time.Now().Add(30 * time.Second); ; {
		ci, err := cons.Info(ctx)
		if err == nil && ci.NumPending == 0 && ci.NumAckPending == 0 && ci.AckFloor.Stream >= natsEvents {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream not drained: %+v", ci)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	st, err = sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	seen := map[string]int{}
	q := store.Query{Types: []string{"sighting"}, WithBody: true, Limit: 1000}
	for {
		page, err := st.QueryObjects(ctx, coll.ID, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Entries {
			var m struct {
				Of    string `json:"sighting_of_ref"`
				Count int    `json:"count"`
			}
			if err := jsonUnmarshal(e.Raw, &m); err != nil {
				t.Fatal(err)
			}
			seen[m.Of] += m.Count
		}
		if !page.More {
			break
		}
		q.AddedAfter = page.Entries[len(page.Entries)-1].DateAdded
	}
	missing, dup := 0, 0
	for _, ind := range natsIndicators() {
		switch n := seen[ind.ID]; {
		case n == 0:
			missing++
		case n > 1:
			dup++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d events lost", missing, natsEvents)
	}
	t.Logf("%d events, every one sighted; %d counted twice (redelivered after being stored, at-least-once)", natsEvents, dup)
}
