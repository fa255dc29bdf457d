package detect_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/detect"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
)

func addLocal(t *testing.T, st store.Store, coll, org string, raw json.RawMessage) {
	t.Helper()
	h, probs := (&stix.Validator{}).Inspect(raw)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	o := store.Object{ID: h.ID, Type: h.Type, SpecVersion: "2.1", Raw: raw, Submitter: org}
	o.Version, o.VersionRaw, _ = h.Version()
	if _, err := st.AddObjects(t.Context(), coll, []store.Object{o}, nil); err != nil {
		t.Fatal(err)
	}
}

// sightingCount sums the counts of the latest sighting versions of ind.
func sightingCount(t *testing.T, st store.Store, coll, ind string) int {
	t.Helper()
	page, err := st.QueryObjects(t.Context(), coll, store.Query{Types: []string{"sighting"}, WithBody: true})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range page.Entries {
		var m struct {
			Of    string `json:"sighting_of_ref"`
			Count int    `json:"count"`
		}
		json.Unmarshal(e.Raw, &m)
		if m.Of == ind {
			n += m.Count
		}
	}
	return n
}

// Indicators added and revoked in the store reach a running detector
// within seconds, while it follows a directory.
func TestLiveIndicatorUpdates(t *testing.T) {
	e := newTEnv(t)
	dir := t.TempDir()
	p := &access.Principal{Organisation: e.orgA.ID, Role: access.RoleAnalyst}
	d, err := detect.New(detect.Config{
		Indicators: &detect.StoreIndicators{Store: e.st, Principal: p},
		Sink:       &detect.StoreSink{Store: e.st, Collection: e.out.ID, Submitter: e.orgA.ID},
		Identity:   e.orgA.ID, Poll: 200 * time.Millisecond, Flush: 200 * time.Millisecond, Bucket: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- d.Run(ctx, &detect.DirSource{Dir: dir, Opts: detect.InputOptions{Follow: true, PollInterval: 50 * time.Millisecond}})
	}()
	f, err := os.Create(filepath.Join(dir, "eve.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	event := func() {
		ts := time.Now().UTC().Format("2006-01-02T15:04:05.000000-0700")
		f.WriteString(`{"timestamp":"` + ts + `","event_type":"dns","src_ip":"10.0.0.1","src_port":5353,"dest_ip":"10.0.0.53","dest_port":53,"proto":"UDP","dns":{"type":"query","rrname":"late.example.com","rrtype":"A"}}` + "\n")
	}
	const id = "indicator--b1111111-1111-4111-8111-111111111111"
	event() // no indicator yet: no sighting
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	addLocal(t, e.st, e.intel.ID, e.orgA.ID, indicator(id, "[domain-name:value = 'late.example.com']", "2024-01-01T00:00:00.000Z", nil))
	// Events keep arriving; the first after the indicator is loaded counts.
	for sightingCount(t, e.st, e.out.ID, id) == 0 {
		if time.Since(start) > 5*time.Second {
			t.Fatal("new indicator not matched within 5 seconds")
		}
		event()
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("new indicator matched after %v", time.Since(start).Round(time.Millisecond))
	addLocal(t, e.st, e.intel.ID, e.orgA.ID, indicator(id, "[domain-name:value = 'late.example.com']", "2024-01-02T00:00:00.000Z", map[string]any{"revoked": true}))
	waitUntil(t, 5*time.Second, func() bool { return d.Stats().Indicators == 0 })
	time.Sleep(300 * time.Millisecond) // let pending sightings be written
	before := sightingCount(t, e.st, e.out.ID, id)
	for range 5 {
		event()
	}
	time.Sleep(time.Second)
	if after := sightingCount(t, e.st, e.out.ID, id); after != before {
		t.Errorf("revoked indicator still matched: count %d -> %d", before, after)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func waitUntil(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
