package detect

import (
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
