package detect

import (
	"cmp"
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
// and the runs of Ranges above it ([first, last] pairs, sorted, disjoint
// and not adjacent). The positions a detector applies come in runs, so
// even a stuck acknowledgement floor keeps the cursor small.
type cursor struct {
	Low    uint64      `json:"low"`
	Ranges [][2]uint64 `json:"ranges,omitempty"`
}

func parseCursor(raw []byte) (*cursor, error) {
	c := &cursor{}
	if len(raw) == 0 {
		return c, nil
	}
	if err := json.Unmarshal(raw, c); err != nil {
		return nil, err
	}
	prev := c.Low
	for _, r := range c.Ranges {
		if r[1] < r[0] || r[0] <= prev+1 {
			return nil, fmt.Errorf("bad range %v", r)
		}
		prev = r[1]
	}
	return c, nil
}

// find is the index of the first range whose last position is >= seq.
func (c *cursor) find(seq uint64) int {
	i, _ := slices.BinarySearchFunc(c.Ranges, seq, func(r [2]uint64, s uint64) int { return cmp.Compare(r[1], s) })
	return i
}

func (c *cursor) has(seq uint64) bool {
	if seq <= c.Low {
		return true
	}
	i := c.find(seq)
	return i < len(c.Ranges) && c.Ranges[i][0] <= seq
}

func (c *cursor) add(seq uint64) {
	if c.has(seq) {
		return
	}
	i := c.find(seq)
	joinPrev := i > 0 && c.Ranges[i-1][1]+1 == seq
	joinNext := i < len(c.Ranges) && c.Ranges[i][0] == seq+1
	switch {
	case joinPrev && joinNext:
		c.Ranges[i-1][1] = c.Ranges[i][1]
		c.Ranges = slices.Delete(c.Ranges, i, i+1)
	case joinPrev:
		c.Ranges[i-1][1] = seq
	case joinNext:
		c.Ranges[i][0] = seq
	default:
		c.Ranges = slices.Insert(c.Ranges, i, [2]uint64{seq, seq})
	}
}

// compact raises Low over the positions applied without a gap, and to
// floor (below which nothing is delivered again).
func (c *cursor) compact(floor uint64) {
	c.Low = max(c.Low, floor)
	i := 0
	for i < len(c.Ranges) && c.Ranges[i][1] <= c.Low {
		i++
	}
	c.Ranges = c.Ranges[i:]
	if len(c.Ranges) > 0 && c.Ranges[0][0] <= c.Low+1 {
		c.Low = c.Ranges[0][1]
		c.Ranges = c.Ranges[1:]
	}
	c.Ranges = slices.Clone(c.Ranges)
}

func (c *cursor) encode() []byte {
	b, _ := json.Marshal(c)
	return b
}

func (c *cursor) clone() *cursor {
	return &cursor{Low: c.Low, Ranges: slices.Clone(c.Ranges)}
}
