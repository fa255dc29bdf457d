package detect

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// lane is a stream read through a durable consumer: the positions of the
// messages it counted are stored with the counts, under key, so that a
// message delivered again is recognised.
type lane struct {
	key     string // "detect/<org>/<stream>/<consumer>"
	ackWait time.Duration
	// floor is the consumer's acknowledgement floor (stream sequence):
	// messages at or below it are never delivered again, so the cursor
	// need not remember them.
	floor atomic.Uint64

	mu   sync.Mutex
	last *cursor // as of the last write or read
}

// remember keeps c as the lane's known cursor.
func (l *lane) remember(c *cursor) {
	l.mu.Lock()
	l.last = c.clone()
	l.mu.Unlock()
}

// applied reports whether the last known cursor holds seq.
func (l *lane) applied(seq uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last != nil && l.last.has(seq)
}

// cursor is the set of stream positions applied: every one up to Low,
// and the runs of Ranges above it (stored as [first, last] pairs: the
// positions a detector applies come in runs, so a stuck acknowledgement
// floor does not make the cursor grow by one number per message).
type cursor struct {
	Low    uint64      `json:"low"`
	Ranges [][2]uint64 `json:"ranges,omitempty"`
	set    map[uint64]bool
}

func parseCursor(raw []byte) (*cursor, error) {
	c := &cursor{set: map[uint64]bool{}}
	if len(raw) == 0 {
		return c, nil
	}
	if err := json.Unmarshal(raw, c); err != nil {
		return nil, err
	}
	for _, r := range c.Ranges {
		if r[1] < r[0] || r[1]-r[0] > 1<<24 {
			return nil, fmt.Errorf("bad range %v", r)
		}
		for s := r[0]; s <= r[1]; s++ {
			c.set[s] = true
		}
	}
	c.Ranges = nil
	return c, nil
}

func (c *cursor) has(seq uint64) bool { return seq <= c.Low || c.set[seq] }

func (c *cursor) add(seq uint64) {
	if seq > c.Low {
		c.set[seq] = true
	}
}

// compact raises Low over the positions applied without a gap, and to
// floor (below which nothing is delivered again).
func (c *cursor) compact(floor uint64) {
	c.Low = max(c.Low, floor)
	for s := range c.set {
		if s <= c.Low {
			delete(c.set, s)
		}
	}
	for c.set[c.Low+1] {
		c.Low++
		delete(c.set, c.Low)
	}
}

func (c *cursor) encode() []byte {
	seqs := make([]uint64, 0, len(c.set))
	for s := range c.set {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	out := cursor{Low: c.Low}
	for _, s := range seqs {
		if n := len(out.Ranges); n > 0 && out.Ranges[n-1][1]+1 == s {
			out.Ranges[n-1][1] = s
		} else {
			out.Ranges = append(out.Ranges, [2]uint64{s, s})
		}
	}
	b, _ := json.Marshal(out)
	return b
}

func (c *cursor) clone() *cursor {
	n := &cursor{Low: c.Low, set: make(map[uint64]bool, len(c.set))}
	for s := range c.set {
		n.set[s] = true
	}
	return n
}
