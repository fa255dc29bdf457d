package detect

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mitra-cert/mitra/internal/pattern"
)

// maxCount is the largest count and number_observed STIX allows (§5.2.1,
// §4.14.1).
const maxCount = 999_999_999

// aggKey names a sighting: one indicator in one time bucket.
type aggKey struct {
	indicator string
	bucket    int64 // bucket start, Unix ns
}

// delta is what matches add to the sighting of one key: a count, the
// event time range and a few sample observations for the observed-data
// summary. STIX objects are only built from it when it is written.
type delta struct {
	count       int64
	first, last int64 // Unix ns
	samples     [][]pattern.Object
}

// maxSamples is how many observations per delta are kept for the
// observed-data summary (their distinct objects, up to MaxObjects, are
// referenced by it).
const maxSamples = 2

func (d *delta) merge(o *delta) {
	if d.count == 0 {
		d.first, d.last = o.first, o.last
	} else {
		d.first, d.last = min(d.first, o.first), max(d.last, o.last)
	}
	d.count += o.count
	for _, s := range o.samples {
		if len(d.samples) >= maxSamples {
			break
		}
		d.samples = append(d.samples, s)
	}
}

// unit is the contribution of one batch, whole: a write includes all of a
// batch's matches or none of them, so a stream position committed with a
// write stands for every record of its message.
type unit struct {
	deltas map[aggKey]*delta
	lane   *lane    // nil for inputs without stream positions
	msgs   []msgRef // the batch's messages, for lanes
}

// msgRef is one message of a stream lane.
type msgRef struct {
	seq                uint64
	lane               *lane
	ack, nak, progress func()
}

// aggregator gathers the contributions of matched batches until they are
// written. It holds nothing once they are: the stored sightings are the
// state, and a write merges its deltas into them.
type aggregator struct {
	mu      sync.Mutex
	loose   map[aggKey]*delta // contributions of inputs without positions
	units   []*unit           // contributions with stream positions
	writing []*unit           // units taken by the running write
	entries int               // deltas held, for backpressure
	limit   int
}

func newAggregator(limit int) *aggregator {
	return &aggregator{loose: map[aggKey]*delta{}, limit: limit}
}

// add takes a batch's contribution.
func (g *aggregator) add(u *unit) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if u.lane == nil {
		for k, d := range u.deltas {
			if have := g.loose[k]; have != nil {
				have.merge(d)
			} else {
				g.loose[k] = d
				g.entries++
			}
		}
		return
	}
	g.units = append(g.units, u)
	g.entries += len(u.deltas)
}

// full reports whether the held contributions reached the limit: the
// workers then wait for a write, which bounds memory whatever the match
// rate and however long the sink is down.
func (g *aggregator) full() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.entries >= g.limit
}

// take hands over everything held, for a write.
func (g *aggregator) take() (map[aggKey]*delta, []*unit) {
	g.mu.Lock()
	defer g.mu.Unlock()
	loose, units := g.loose, g.units
	g.loose, g.units, g.entries, g.writing = map[aggKey]*delta{}, nil, 0, units
	return loose, units
}

// written ends a successful write.
func (g *aggregator) written() {
	g.mu.Lock()
	g.writing = nil
	g.mu.Unlock()
}

// held calls f for every message held, waiting for a write or in one.
func (g *aggregator) held(f func(m msgRef)) {
	g.mu.Lock()
	units := append(slices.Clip(g.units), g.writing...)
	g.mu.Unlock()
	for _, u := range units {
		for _, m := range u.msgs {
			f(m)
		}
	}
}

// giveBack returns what a failed write took, to be written next time.
func (g *aggregator) giveBack(loose map[aggKey]*delta, units []*unit) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, d := range loose {
		if have := g.loose[k]; have != nil {
			d.merge(have)
		} else {
			g.entries++
		}
		g.loose[k] = d
	}
	g.units = append(units, g.units...)
	g.writing = nil
	for _, u := range units {
		g.entries += len(u.deltas)
	}
}

// copyObjects copies the objects of an observation so that a sample keeps
// neither the batch's text nor the worker's slabs alive.
func copyObjects(objs []pattern.Object) []pattern.Object {
	out := make([]pattern.Object, 0, len(objs))
	scos := map[*pattern.SCO]*pattern.SCO{}
	cp := func(s *pattern.SCO) *pattern.SCO {
		if s == nil {
			return nil
		}
		if c := scos[s]; c != nil {
			return c
		}
		c := &pattern.SCO{Key: s.Key, T: s.T, Value: strings.Clone(s.Value)}
		if s.Hashes != nil {
			c.Hashes = make(map[string]string, len(s.Hashes))
			for k, v := range s.Hashes {
				c.Hashes[k] = strings.Clone(v)
			}
		}
		if s.Props != nil {
			c.Props = make(map[string]any, len(s.Props))
			for k, v := range s.Props {
				if str, ok := v.(string); ok {
					v = strings.Clone(str)
				}
				c.Props[k] = v
			}
		}
		scos[s] = c
		return c
	}
	for _, o := range objs {
		switch x := o.(type) {
		case *pattern.SCO:
			out = append(out, cp(x))
		case *netTraffic:
			n := *x
			n.src, n.dst = cp(x.src), cp(x.dst)
			n.protocols = cloneAny(x.protocols).([]string)
			if x.ext != nil {
				n.ext = cloneAny(x.ext).(map[string]any)
			}
			out = append(out, &n)
		case *pattern.MapObject:
			out = append(out, &pattern.MapObject{Key: x.Key, M: cloneAny(x.M).(map[string]any)})
		default:
			out = append(out, o)
		}
	}
	return out
}

// cloneAny deep-copies decoded JSON values, strings included.
func cloneAny(v any) any {
	switch x := v.(type) {
	case string:
		return strings.Clone(x)
	case map[string]any:
		m := maps.Clone(x)
		for k, e := range m {
			m[k] = cloneAny(e)
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = cloneAny(e)
		}
		return out
	case []string:
		out := make([]string, len(x))
		for i, e := range x {
			out[i] = strings.Clone(e)
		}
		return out
	}
	return v
}

// bucketOf is the bucket start of an event time.
func bucketOf(t time.Time, bucket time.Duration) int64 {
	return t.Truncate(bucket).UnixNano()
}
