package detect

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/pattern"
	"github.com/mitra-cert/mitra/internal/stix"
)

const (
	testOrg = "identity--0b7e5b1c-6d3e-4a8f-9c2d-1e2f3a4b5c6d"
	indDNS  = "indicator--11111111-1111-4111-8111-111111111111"
	indIP   = "indicator--22222222-2222-4222-8222-222222222222"
	indURL  = "indicator--33333333-3333-4333-8333-333333333333"
	indHash = "indicator--44444444-4444-4444-8444-444444444444"
	indSNI  = "indicator--55555555-5555-4555-8555-555555555555"
	indC2   = "indicator--66666666-6666-4666-8666-666666666666"
	indCert = "indicator--77777777-7777-4777-8777-777777777777"
	indV6   = "indicator--88888888-8888-4888-8888-888888888888"
	indUA   = "indicator--99999999-9999-4999-8999-999999999999"
)

var testIndicators = []pattern.Indicator{
	{ID: indDNS, Pattern: "[domain-name:value = 'evil.example.com']"},
	{ID: indIP, Pattern: "[ipv4-addr:value = '203.0.113.66']"},
	{ID: indURL, Pattern: "[url:value = 'http://bad.example.net/payload.exe']"},
	{ID: indHash, Pattern: "[file:hashes.'SHA-256' = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855']"},
	{ID: indSNI, Pattern: "[domain-name:value = 'c2.example.org']"},
	{ID: indC2, Pattern: "[network-traffic:dst_port = 4444 AND network-traffic:dst_ref.value = '198.51.100.7']"},
	{ID: indCert, Pattern: "[x509-certificate:hashes.'SHA-256' = '3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f'] OR [x509-certificate:hashes.'SHA-1' = '6f7da12b3c4d5e6f708192a3b4c5d6e7f8091a2b']"},
	{ID: indV6, Pattern: "[ipv6-addr:value = '2001:db8::66']"},
	{ID: indUA, Pattern: "[network-traffic:extensions.'http-request-ext'.request_header.'User-Agent'[*] = 'curl/8.5.0']"},
}

// memSink keeps what the detector writes, after checking every object
// with the STIX validator.
type memSink struct {
	t    testing.TB
	mu   sync.Mutex
	objs map[string][]map[string]any // id -> versions in order written
	raw  map[string][]json.RawMessage
	fail int // fail the next n Puts
	// cursors committed
	cursors map[string][]byte
	// gate, when set, holds every Update until it is closed.
	gate chan struct{}
}

func newMemSink(t testing.TB) *memSink {
	return &memSink{t: t, objs: map[string][]map[string]any{}, raw: map[string][]json.RawMessage{}}
}

// Update implements Sink; a failed Put rolls back nothing it needs to
// (Put fails before writing), and cursors are set at the end.
func (s *memSink) Update(ctx context.Context, fn func(ctx context.Context, tx SinkTx) error) error {
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tx := &memTx{s: s, cursors: map[string][]byte{}}
	if err := fn(ctx, tx); err != nil {
		return err
	}
	for _, p := range tx.puts {
		s.put(p)
	}
	if s.cursors == nil {
		s.cursors = map[string][]byte{}
	}
	for k, v := range tx.cursors {
		s.cursors[k] = v
	}
	return nil
}

type memTx struct {
	s       *memSink
	puts    [][]json.RawMessage
	cursors map[string][]byte
}

func (t *memTx) Latest(_ context.Context, ids []string) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	for _, id := range ids {
		if vs := t.s.raw[id]; len(vs) > 0 {
			out[id] = vs[len(vs)-1]
		}
	}
	return out, nil
}

func (t *memTx) Put(_ context.Context, raws []json.RawMessage) error {
	if t.s.fail > 0 {
		t.s.fail--
		return fmt.Errorf("sink unavailable")
	}
	t.puts = append(t.puts, raws)
	return nil
}

func (t *memTx) Cursor(_ context.Context, key string) ([]byte, error) {
	if v, ok := t.cursors[key]; ok {
		return v, nil
	}
	return t.s.cursors[key], nil
}

func (t *memTx) SetCursor(_ context.Context, key string, v []byte) error {
	t.cursors[key] = v
	return nil
}

func (s *memSink) put(raws []json.RawMessage) {
	for _, raw := range raws {
		if probs := (&stix.Validator{}).Validate(raw); len(probs) > 0 {
			s.t.Errorf("invalid object written: %s\n%s", probs[0], raw)
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			s.t.Fatal(err)
		}
		id := m["id"].(string)
		s.objs[id] = append(s.objs[id], m)
		s.raw[id] = append(s.raw[id], raw)
	}
}

// latest returns the newest version of every object of type typ.
func (s *memSink) latest(typ string) map[string]map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]map[string]any{}
	for id, vs := range s.objs {
		if vs[0]["type"] == typ {
			out[id] = vs[len(vs)-1]
		}
	}
	return out
}

// counts sums the count of the latest sighting versions per indicator.
func (s *memSink) counts() map[string]int64 {
	out := map[string]int64{}
	for _, sg := range s.latest("sighting") {
		out[sg["sighting_of_ref"].(string)] += int64(sg["count"].(float64))
	}
	return out
}

func (s *memSink) get(id string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.objs[id]
	if len(vs) == 0 {
		return nil
	}
	return vs[len(vs)-1]
}

// checkRefs verifies that sightings refer to stored observed-data whose
// object_refs are all stored.
func (s *memSink) checkRefs(t *testing.T) {
	t.Helper()
	for id, sg := range s.latest("sighting") {
		if w, _ := sg["where_sighted_refs"].([]any); len(w) != 1 || w[0] != testOrg {
			t.Errorf("%s: where_sighted_refs = %v", id, sg["where_sighted_refs"])
		}
		refs, _ := sg["observed_data_refs"].([]any)
		if len(refs) != 1 {
			t.Errorf("%s: observed_data_refs = %v", id, sg["observed_data_refs"])
			continue
		}
		od := s.get(refs[0].(string))
		if od == nil {
			t.Errorf("%s: observed-data %s not written", id, refs[0])
			continue
		}
		if od["number_observed"] != sg["count"] || od["first_observed"] != sg["first_seen"] || od["last_observed"] != sg["last_seen"] {
			t.Errorf("observed-data %v does not agree with sighting %v", od, sg)
		}
		for _, r := range od["object_refs"].([]any) {
			if s.get(r.(string)) == nil {
				t.Errorf("observed-data %s: object %s not written", od["id"], r)
			}
		}
	}
}

// runDetector runs sources through a detector with the test indicators.
func runDetector(t *testing.T, sink Sink, sources ...Source) *Detector {
	t.Helper()
	d, err := New(Config{Indicators: &StaticIndicators{List: testIndicators}, Sink: sink, Identity: testOrg, Flush: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := d.Run(ctx, sources...); err != nil {
		t.Fatal(err)
	}
	return d
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
