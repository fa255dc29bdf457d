package detect

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/pattern"
	"github.com/mitra-cert/mitra/internal/stix"
)

// maxCount is the largest count and number_observed STIX allows (§5.2.1,
// §4.14.1).
const maxCount = 999_999_999

type aggKey struct {
	indicator string
	bucket    int64 // bucket start, Unix ns
}

// agg is the sighting of one indicator in one bucket.
type agg struct {
	key                aggKey
	sightingID, dataID string
	created, modified  time.Time // of the last version written
	first, last        time.Time
	count              int64
	written            int64 // count in the last version written
	summarised         int   // events summarised into objs
	objs               []summaryObject
	seen               map[string]bool // ids in objs
	sent               map[string]bool // SCOs already written
	holds              []*batch        // batches waiting for the next write
	dirty              bool
	touched            time.Time // wall clock of the last match
}

// aggregator gathers matches into sightings.
type aggregator struct {
	bucket     time.Duration
	identity   string
	maxObjects int
	now        func() time.Time

	mu        sync.Mutex
	aggs      map[aggKey]*agg
	watermark time.Time // newest event time matched
}

func newAggregator(bucket time.Duration, identity string, maxObjects int, now func() time.Time) *aggregator {
	return &aggregator{bucket: bucket, identity: identity, maxObjects: maxObjects, now: now, aggs: map[aggKey]*agg{}}
}

// summaryEvents is how many events per aggregate have their objects
// summarised; later events only count.
const summaryEvents = 8

// add records one match; b is held until the sighting is written.
func (g *aggregator) add(id string, obs []*pattern.Observation, b *batch) {
	first, last := obs[0].FirstObserved, obs[0].LastObserved
	for _, o := range obs[1:] {
		if o.FirstObserved.Before(first) {
			first = o.FirstObserved
		}
		if o.LastObserved.After(last) {
			last = o.LastObserved
		}
	}
	var n int64 = 1
	if len(obs) == 1 {
		n = max(obs[0].NumberObserved, 1)
	}
	key := aggKey{indicator: id, bucket: first.Truncate(g.bucket).UnixNano()}
	g.mu.Lock()
	a := g.aggs[key]
	if a == nil {
		a = &agg{key: key, first: first, last: last, seen: map[string]bool{}, sent: map[string]bool{}}
		g.aggs[key] = a
	}
	if first.Before(a.first) {
		a.first = first
	}
	if last.After(a.last) {
		a.last = last
	}
	a.count += n
	a.dirty = true
	a.touched = g.now()
	if last.After(g.watermark) {
		g.watermark = last
	}
	if b != nil && (len(a.holds) == 0 || a.holds[len(a.holds)-1] != b) {
		b.hold()
		a.holds = append(a.holds, b)
	}
	want := a.summarised < summaryEvents && len(a.objs) < g.maxObjects
	if want {
		a.summarised++
	}
	g.mu.Unlock()
	if !want {
		return
	}
	var objs []pattern.Object
	for _, o := range obs {
		objs = append(objs, o.Objects...)
	}
	sum := summarise(objs)
	g.mu.Lock()
	for _, s := range sum {
		if len(a.objs) >= g.maxObjects {
			break
		}
		if !a.seen[s.id] {
			a.seen[s.id] = true
			a.objs = append(a.objs, s)
		}
	}
	g.mu.Unlock()
}

// write is one aggregate's version being written.
type write struct {
	a       *agg
	holds   []*batch
	newSCOs []string
	count   int64
	mod     time.Time
	created time.Time
}

// collect takes the dirty aggregates and renders their next versions.
func (g *aggregator) collect(all bool) ([]write, []json.RawMessage) {
	now := g.now().UTC().Truncate(time.Microsecond)
	g.mu.Lock()
	defer g.mu.Unlock()
	var ws []write
	var out []json.RawMessage
	for _, a := range g.aggs {
		if !a.dirty {
			continue
		}
		w := write{a: a, holds: a.holds, count: a.count}
		a.holds, a.dirty = nil, false
		if a.sightingID == "" {
			a.sightingID = "sighting--" + uuid.NewString()
			w.created = now
		} else {
			w.created = a.created
		}
		w.mod = now
		if !w.mod.After(a.modified) {
			w.mod = a.modified.Add(time.Microsecond)
		}
		var refs []any
		for _, s := range a.objs {
			refs = append(refs, s.id)
			if !a.sent[s.id] {
				b, err := json.Marshal(s.m)
				if err != nil {
					continue
				}
				out = append(out, b)
				w.newSCOs = append(w.newSCOs, s.id)
			}
		}
		count := min(a.count, maxCount)
		sighting := map[string]any{
			"type": "sighting", "spec_version": "2.1", "id": a.sightingID,
			"created": stix.FormatMicro(w.created), "modified": stix.FormatMicro(w.mod),
			"first_seen": stix.FormatMicro(a.first), "last_seen": stix.FormatMicro(a.last),
			"count": count, "sighting_of_ref": a.key.indicator,
		}
		if g.identity != "" {
			sighting["created_by_ref"] = g.identity
			sighting["where_sighted_refs"] = []string{g.identity}
		}
		if len(refs) > 0 {
			if a.dataID == "" {
				a.dataID = "observed-data--" + uuid.NewString()
			}
			od := map[string]any{
				"type": "observed-data", "spec_version": "2.1", "id": a.dataID,
				"created": stix.FormatMicro(w.created), "modified": stix.FormatMicro(w.mod),
				"first_observed": stix.FormatMicro(a.first), "last_observed": stix.FormatMicro(a.last),
				"number_observed": max(count, 1), "object_refs": refs,
			}
			if g.identity != "" {
				od["created_by_ref"] = g.identity
			}
			b, _ := json.Marshal(od)
			out = append(out, b)
			sighting["observed_data_refs"] = []string{a.dataID}
		}
		b, _ := json.Marshal(sighting)
		out = append(out, b)
		a.created, a.modified = w.created, w.mod
		ws = append(ws, w)
	}
	// Objects of one aggregate go together, SCOs before what refers to them.
	return ws, out
}

// done settles a write: on success the batches are released; on failure
// the aggregates are dirty again and keep their holds.
func (g *aggregator) done(ws []write, err error) {
	g.mu.Lock()
	for _, w := range ws {
		a := w.a
		if err != nil {
			a.dirty = true
			a.holds = append(w.holds, a.holds...)
			continue
		}
		a.written = w.count
		for _, id := range w.newSCOs {
			a.sent[id] = true
		}
	}
	g.mu.Unlock()
	if err != nil {
		return
	}
	for _, w := range ws {
		for _, b := range w.holds {
			b.release()
		}
	}
}

// evict forgets written aggregates that will see no more events: idle for
// idle (wall clock), or with a bucket closed for a whole bucket before the
// newest event time.
func (g *aggregator) evict(idle time.Duration) {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, a := range g.aggs {
		if a.dirty || len(a.holds) > 0 {
			continue
		}
		end := time.Unix(0, k.bucket).Add(g.bucket)
		if now.Sub(a.touched) >= idle || g.watermark.Sub(end) >= g.bucket {
			delete(g.aggs, k)
		}
	}
}

// flushTo writes the dirty aggregates to sink.
func (g *aggregator) flushTo(ctx context.Context, sink Sink) (int, error) {
	ws, objs := g.collect(false)
	if len(ws) == 0 {
		return 0, nil
	}
	err := sink.Put(ctx, objs)
	g.done(ws, err)
	if err != nil {
		return 0, err
	}
	return len(ws), nil
}
