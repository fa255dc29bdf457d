package contenthash

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

func randomPDQ(r *rand.Rand) PDQ {
	var h PDQ
	for i := 0; i < 32; i += 8 {
		x := r.Uint64()
		for j := 0; j < 8; j++ {
			h[i+j] = byte(x >> (8 * j))
		}
	}
	return h
}

// nearPDQ flips exactly d distinct random bits of h.
func nearPDQ(r *rand.Rand, h PDQ, d int) PDQ {
	for _, k := range r.Perm(256)[:d] {
		h[k/8] ^= 1 << (k % 8)
	}
	return h
}

// clustered returns n hashes in clusters: centres with members at every
// distance from 0 to 48, so thresholds cut through clusters.
func clustered(r *rand.Rand, n int) []PDQ {
	var hs []PDQ
	for len(hs) < n {
		c := randomPDQ(r)
		hs = append(hs, c)
		for i := 0; i < 20 && len(hs) < n; i++ {
			hs = append(hs, nearPDQ(r, c, r.IntN(49)))
		}
	}
	return hs
}

// bruteForce is the reference answer, independent of the index.
func bruteForce(stored map[uint32]PDQ, q PDQ, threshold int) []Match {
	var out []Match
	for id, h := range stored {
		if d := q.Distance(h); d <= threshold {
			out = append(out, Match{ID: id, Distance: d})
		}
	}
	return finish(out, nil)
}

func TestIndexMatchesLinearScan(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, data := range []struct {
		name   string
		hashes []PDQ
	}{
		{"random", func() []PDQ {
			hs := make([]PDQ, 8000)
			for i := range hs {
				hs[i] = randomPDQ(r)
			}
			return hs
		}()},
		{"clustered", clustered(r, 8000)},
	} {
		t.Run(data.name, func(t *testing.T) {
			x := NewIndex()
			stored := map[uint32]PDQ{}
			for _, h := range data.hashes {
				id, err := x.Add(h)
				if err != nil {
					t.Fatal(err)
				}
				stored[id] = h
			}
			if x.Len() != len(data.hashes) {
				t.Fatalf("Len %d, want %d", x.Len(), len(data.hashes))
			}
			found := 0
			for i := 0; i < 120; i++ {
				// Queries near stored hashes, at distances around the
				// thresholds, and unrelated ones.
				q := randomPDQ(r)
				if i%3 != 0 {
					q = nearPDQ(r, data.hashes[r.IntN(len(data.hashes))], r.IntN(40))
				}
				for _, th := range []int{0, 10, 31, 32, 47, 60} {
					want := bruteForce(stored, q, th)
					if got := x.Query(q, th, nil); !slices.Equal(got, want) {
						t.Fatalf("query %d threshold %d: index %v, brute force %v", i, th, got, want)
					}
					if got := x.Scan(q, th, nil); !slices.Equal(got, want) {
						t.Fatalf("query %d threshold %d: scan %v, brute force %v", i, th, got, want)
					}
					found += len(want)
				}
			}
			if found == 0 {
				t.Fatal("no query found anything: the comparison proved nothing")
			}
		})
	}
}

// TestIndexAddRemove checks that removals and re-additions reach queries
// without any rebuild, and that freed ids are reused.
func TestIndexAddRemove(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	x := NewIndex()
	stored := map[uint32]PDQ{}
	hs := clustered(r, 5000)
	for _, h := range hs {
		id, err := x.Add(h)
		if err != nil {
			t.Fatal(err)
		}
		stored[id] = h
	}
	for id := uint32(0); id < 5000; id += 3 {
		if !x.Remove(id) {
			t.Fatalf("Remove(%d) = false", id)
		}
		delete(stored, id)
	}
	if x.Remove(0) {
		t.Error("second Remove(0) = true")
	}
	if _, ok := x.Get(0); ok {
		t.Error("Get of a removed id succeeded")
	}
	for i := 0; i < 1000; i++ {
		h := nearPDQ(r, hs[r.IntN(len(hs))], r.IntN(20))
		id, err := x.Add(h)
		if err != nil {
			t.Fatal(err)
		}
		if id >= 5000 {
			t.Fatalf("Add returned new id %d while freed ids remain", id)
		}
		stored[id] = h
		if got, ok := x.Get(id); !ok || got != h {
			t.Fatalf("Get(%d) = %v %v, want %v", id, got, ok, h)
		}
	}
	if x.Len() != len(stored) {
		t.Fatalf("Len %d, want %d", x.Len(), len(stored))
	}
	for i := 0; i < 200; i++ {
		q := nearPDQ(r, hs[r.IntN(len(hs))], r.IntN(35))
		want := bruteForce(stored, q, 31)
		if got := x.Query(q, 31, nil); !slices.Equal(got, want) {
			t.Fatalf("after updates: index %v, brute force %v", got, want)
		}
	}
}

// TestIndexFilter checks that the filter hides ids entirely: they are not
// in the result, and the filter sees only ids within the threshold.
func TestIndexFilter(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	x := NewIndex()
	c := randomPDQ(r)
	var ids []uint32
	for i := 0; i < 50; i++ {
		id, _ := x.Add(nearPDQ(r, c, i%30))
		ids = append(ids, id)
	}
	far, _ := x.Add(nearPDQ(r, c, 100))
	visible := func(id uint32) bool { return id%2 == 0 }
	seen := map[uint32]bool{}
	got := x.Query(c, 31, func(id uint32) bool {
		seen[id] = true
		return visible(id)
	})
	if seen[far] {
		t.Error("filter was asked about a hash beyond the threshold")
	}
	for _, id := range ids {
		if !seen[id] {
			t.Errorf("filter never asked about id %d, within the threshold", id)
		}
	}
	if len(got) != 25 {
		t.Errorf("%d results, want the 25 visible ones", len(got))
	}
	for _, m := range got {
		if !visible(m.ID) {
			t.Errorf("hidden id %d returned", m.ID)
		}
	}
	if got := x.Query(c, 31, func(uint32) bool { return false }); got != nil {
		t.Errorf("all hidden: got %v, want nil", got)
	}
}

// TestIndexConcurrent runs queries while hashes are added and removed
// (for the race detector), then checks the final state.
func TestIndexConcurrent(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	x := NewIndex()
	hs := clustered(r, 4000)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for _, h := range hs {
			if _, err := x.Add(h); err != nil {
				t.Error(err)
				return
			}
		}
		for id := uint32(0); id < 1000; id++ {
			x.Remove(id)
		}
	}()
	go func() {
		defer wg.Done()
		qr := rand.New(rand.NewPCG(11, 12))
		for i := 0; i < 500; i++ {
			x.Query(nearPDQ(qr, hs[qr.IntN(len(hs))], 10), 31, nil)
		}
	}()
	wg.Wait()
	if x.Len() != 3000 {
		t.Fatalf("Len %d, want 3000", x.Len())
	}
	for _, m := range x.Query(hs[0], 31, nil) {
		if m.ID < 1000 {
			t.Fatalf("removed id %d returned", m.ID)
		}
	}
}
