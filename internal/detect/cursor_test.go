package detect

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// A cursor survives encoding, compacts runs into its low watermark and up
// to the acknowledgement floor, and keeps the rest as ranges.
func TestCursor(t *testing.T) {
	c, err := parseCursor(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []uint64{1, 2, 3, 7, 8, 9, 12, 20} {
		c.add(s)
	}
	c.compact(0)
	if c.Low != 3 {
		t.Errorf("low %d, want 3", c.Low)
	}
	raw := c.encode()
	if string(raw) != `{"low":3,"ranges":[[7,9],[12,12],[20,20]]}` {
		t.Errorf("encoded %s", raw)
	}
	d, err := parseCursor(raw)
	if err != nil {
		t.Fatal(err)
	}
	var has []uint64
	for s := uint64(0); s <= 21; s++ {
		if d.has(s) {
			has = append(has, s)
		}
	}
	if want := []uint64{0, 1, 2, 3, 7, 8, 9, 12, 20}; !slices.Equal(has, want) {
		t.Errorf("has %v, want %v", has, want)
	}
	// Everything up to the floor is acknowledged: never delivered again.
	d.add(13)
	d.compact(10)
	if string(d.encode()) != `{"low":10,"ranges":[[12,13],[20,20]]}` {
		t.Errorf("after floor 10: %s", d.encode())
	}
	if _, err := parseCursor([]byte(`{"low":1,"ranges":[[5,2]]}`)); err == nil {
		t.Error("a reversed range was accepted")
	}
}

// The cursor agrees with a plain set under random additions, floors and
// encodings.
func TestCursorAgainstSet(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	c, _ := parseCursor(nil)
	set := map[uint64]bool{}
	var floor uint64
	for step := range 5000 {
		s := uint64(r.IntN(400))
		c.add(s)
		set[s] = true
		if step%50 == 0 {
			floor = max(floor, uint64(r.IntN(step/20+1)))
			c.compact(floor)
			var err error
			if c, err = parseCursor(c.encode()); err != nil {
				t.Fatal(err)
			}
		}
		for q := uint64(0); q < 410; q++ {
			if want := q <= floor || set[q]; c.has(q) != want {
				t.Fatalf("step %d: has(%d) = %v, want %v (%s)", step, q, c.has(q), want, c.encode())
			}
		}
	}
}
