package contenthash

import (
	"errors"
	"math/rand/v2"
	"testing"
)

// TestTLSHReferenceDigest checks a digest published with Meta's
// ThreatExchange tests, computed by the reference TLSH library.
func TestTLSHReferenceDigest(t *testing.T) {
	in := "A minimum string length must be 256 bytes! That's so much text this means it's not super useful for finding short text!"
	const want = "T1DFB092A1724AC2C0D3CA48452291EA04A5B75EB903A6E7577A54118FFA8148E98F9426"
	d, err := TLSHBytes([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := d.String(); got != want {
		t.Fatalf("TLSH = %s, want %s", got, want)
	}
	p, err := ParseTLSH(want)
	if err != nil {
		t.Fatal(err)
	}
	if p != d || p.Distance(d) != 0 {
		t.Fatalf("parsed %+v, want %+v", p, d)
	}
}

func TestTLSHUndefined(t *testing.T) {
	if _, err := TLSHBytes([]byte("too short")); !errors.Is(err, ErrTLSHUndefined) {
		t.Errorf("short input: err %v, want ErrTLSHUndefined", err)
	}
	same := make([]byte, 4096)
	if _, err := TLSHBytes(same); !errors.Is(err, ErrTLSHUndefined) {
		t.Errorf("uniform input: err %v, want ErrTLSHUndefined", err)
	}
	if _, err := ParseTLSH("T1XYZ"); err == nil {
		t.Error("ParseTLSH accepted a bad digest")
	}
}

// TestTLSHDistance checks that an edited copy is near its original and
// unrelated data is far, and that incremental writes equal one write.
func TestTLSHDistance(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	words := []string{"alpha ", "beacon ", "c2 ", "dropper ", "exfil ", "payload ", "stage ", "loader "}
	gen := func(n int) []byte {
		var b []byte
		for len(b) < n {
			b = append(b, words[r.IntN(len(words))]...)
		}
		return b[:n]
	}
	a := gen(8192)
	edited := append([]byte(nil), a...)
	for i := 0; i < 40; i++ {
		edited[r.IntN(len(edited))] = byte('A' + r.IntN(26))
	}
	other := make([]byte, 8192)
	for i := range other {
		other[i] = byte(r.IntN(256))
	}
	da, err := TLSHBytes(a)
	if err != nil {
		t.Fatal(err)
	}
	de, _ := TLSHBytes(edited)
	do, _ := TLSHBytes(other)
	if d := da.Distance(de); d > 50 {
		t.Errorf("edited copy at distance %d, want <= 50", d)
	}
	if d := da.Distance(do); d < 150 {
		t.Errorf("unrelated data at distance %d, want >= 150", d)
	}
	var inc TLSHer
	for i := 0; i < len(a); i += 7 {
		_, _ = inc.Write(a[i:min(i+7, len(a))])
	}
	di, err := inc.Sum()
	if err != nil || di != da {
		t.Errorf("incremental %v (%v), want %v", di, err, da)
	}
}
