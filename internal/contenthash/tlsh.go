package contenthash

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// TLSH follows Trend Micro's published description (Oliver, Cheng, Chen,
// "TLSH - A Locality Sensitive Hash", 2013) and its reference
// implementation's defaults: 128 buckets, a 1-byte checksum, a 5-byte
// sliding window, digests in the "T1" format of version 4.

const (
	tlshWindow      = 5
	tlshBuckets     = 128 // effective buckets (of 256 the Pearson hash addresses)
	tlshCodeSize    = tlshBuckets / 4
	tlshMinLength   = 50
	tlshDigestBytes = 3 + tlshCodeSize // checksum, length, quartile ratios, body
)

// ErrTLSHUndefined is returned when TLSH is not defined for the data: under
// 50 bytes, or too little variety (half the buckets or more empty).
var ErrTLSHUndefined = errors.New("TLSH undefined: data shorter than 50 bytes or too uniform")

// pearson is Pearson's sample permutation table (CACM 33(6), 1990), which
// TLSH uses to map byte triplets to buckets.
var pearson = [256]byte{
	1, 87, 49, 12, 176, 178, 102, 166, 121, 193, 6, 84, 249, 230, 44, 163,
	14, 197, 213, 181, 161, 85, 218, 80, 64, 239, 24, 226, 236, 142, 38, 200,
	110, 177, 104, 103, 141, 253, 255, 50, 77, 101, 81, 18, 45, 96, 31, 222,
	25, 107, 190, 70, 86, 237, 240, 34, 72, 242, 20, 214, 244, 227, 149, 235,
	97, 234, 57, 22, 60, 250, 82, 175, 208, 5, 127, 199, 111, 62, 135, 248,
	174, 169, 211, 58, 66, 154, 106, 195, 245, 171, 17, 187, 182, 179, 0, 243,
	132, 56, 148, 75, 128, 133, 158, 100, 130, 126, 91, 13, 153, 246, 216, 219,
	119, 68, 223, 78, 83, 88, 201, 99, 122, 11, 92, 32, 136, 114, 52, 10,
	138, 30, 48, 183, 156, 35, 61, 26, 143, 74, 251, 94, 129, 162, 63, 152,
	170, 7, 115, 167, 241, 206, 3, 150, 55, 59, 151, 220, 90, 53, 23, 131,
	125, 173, 15, 238, 79, 95, 89, 16, 105, 137, 225, 224, 217, 160, 37, 123,
	118, 73, 2, 157, 46, 116, 9, 145, 134, 228, 207, 212, 202, 215, 69, 229,
	27, 188, 67, 124, 168, 252, 42, 4, 29, 108, 21, 247, 19, 205, 39, 203,
	233, 40, 186, 147, 198, 192, 155, 33, 164, 191, 98, 204, 165, 180, 117, 76,
	140, 36, 210, 172, 41, 54, 159, 8, 185, 232, 113, 196, 231, 47, 146, 120,
	51, 65, 28, 144, 254, 221, 93, 189, 194, 139, 112, 43, 71, 109, 184, 209,
}

// pearson4 hashes a salt and three bytes.
func pearson4(salt, a, b, c byte) byte {
	return pearson[pearson[pearson[pearson[salt]^a]^b]^c]
}

// TLSH is a TLSH digest: checksum, length class, quartile ratios and the
// 32-byte body of 2-bit bucket codes, held in digest order.
type TLSH struct {
	Checksum byte
	LValue   byte
	Q1Ratio  byte               // 0..15
	Q2Ratio  byte               // 0..15
	Body     [tlshCodeSize]byte // Body[i] holds buckets 4i..4i+3
}

// TLSHer computes a TLSH incrementally (it is an io.Writer).
type TLSHer struct {
	buckets  [256]uint32
	window   [tlshWindow]byte
	n        uint64
	checksum byte
}

// Write adds data; it never fails.
func (t *TLSHer) Write(p []byte) (int, error) {
	w := &t.window
	for _, c := range p {
		j := int(t.n % tlshWindow)
		w[j] = c
		t.n++
		if t.n < tlshWindow {
			continue
		}
		// The window holds the last five bytes: a0 the newest.
		a0 := c
		a1 := w[(j+4)%tlshWindow]
		a2 := w[(j+3)%tlshWindow]
		a3 := w[(j+2)%tlshWindow]
		a4 := w[(j+1)%tlshWindow]
		t.checksum = pearson4(0, a0, a1, t.checksum)
		// Six triplets of the window, each with its own salt, as the
		// reference chooses them.
		t.buckets[pearson4(2, a0, a1, a2)]++
		t.buckets[pearson4(3, a0, a1, a3)]++
		t.buckets[pearson4(5, a0, a2, a3)]++
		t.buckets[pearson4(7, a0, a2, a4)]++
		t.buckets[pearson4(11, a0, a1, a4)]++
		t.buckets[pearson4(13, a0, a3, a4)]++
	}
	return len(p), nil
}

// Sum returns the digest of the data written so far.
func (t *TLSHer) Sum() (TLSH, error) {
	var d TLSH
	if t.n < tlshMinLength {
		return d, ErrTLSHUndefined
	}
	sorted := slices.Clone(t.buckets[:tlshBuckets])
	slices.Sort(sorted)
	q1, q2, q3 := sorted[tlshBuckets/4-1], sorted[tlshBuckets/2-1], sorted[tlshBuckets-tlshBuckets/4-1]
	nonzero := 0
	for _, b := range t.buckets[:tlshBuckets] {
		if b > 0 {
			nonzero++
		}
	}
	if nonzero <= tlshBuckets/2 || q3 == 0 {
		return d, ErrTLSHUndefined
	}
	for i := range d.Body {
		var h byte
		for j := 0; j < 4; j++ {
			k := t.buckets[4*i+j]
			switch {
			case k > q3:
				h |= 3 << (2 * j)
			case k > q2:
				h |= 2 << (2 * j)
			case k > q1:
				h |= 1 << (2 * j)
			}
		}
		d.Body[i] = h
	}
	d.Checksum = t.checksum
	d.LValue = tlshLength(t.n)
	// The reference computes the ratios in single precision.
	d.Q1Ratio = byte(uint32(float32(q1*100)/float32(q3)) % 16)
	d.Q2Ratio = byte(uint32(float32(q2*100)/float32(q3)) % 16)
	return d, nil
}

// tlshLength maps the data length to one byte on a log scale whose step
// widens with size, as the reference's l_capturing does (logarithm in
// single precision, like the reference).
func tlshLength(n uint64) byte {
	l := float64(float32(math.Log(float64(float32(n)))))
	var i int
	switch {
	case n <= 656:
		i = int(math.Floor(l / 0.4054651))
	case n <= 3199:
		i = int(math.Floor(l/0.26236426 - 8.72777))
	default:
		i = int(math.Floor(l/0.095310180 - 62.5472))
	}
	return byte(i & 0xff)
}

// TLSHBytes returns the TLSH of data.
func TLSHBytes(data []byte) (TLSH, error) {
	var t TLSHer
	_, _ = t.Write(data)
	return t.Sum()
}

func swapNibbles(b byte) byte { return b<<4 | b>>4 }

// String returns the digest as the reference prints it: "T1" and 70
// upper-case hex digits (header bytes with their nibbles swapped, body
// buckets from the last to the first).
func (d TLSH) String() string {
	var raw [tlshDigestBytes]byte
	raw[0] = swapNibbles(d.Checksum)
	raw[1] = swapNibbles(d.LValue)
	raw[2] = d.Q1Ratio<<4 | d.Q2Ratio
	for i := range d.Body {
		raw[3+i] = d.Body[tlshCodeSize-1-i]
	}
	return "T1" + strings.ToUpper(hex.EncodeToString(raw[:]))
}

// ParseTLSH parses a digest with or without the "T1" prefix.
func ParseTLSH(s string) (TLSH, error) {
	var d TLSH
	h := strings.TrimPrefix(strings.TrimPrefix(s, "T1"), "t1")
	if len(h) != 2*tlshDigestBytes {
		return d, fmt.Errorf("tlsh %q: want T1 and %d hex digits", s, 2*tlshDigestBytes)
	}
	var raw [tlshDigestBytes]byte
	if _, err := hex.Decode(raw[:], []byte(h)); err != nil {
		return d, fmt.Errorf("tlsh %q: %w", s, err)
	}
	d.Checksum = swapNibbles(raw[0])
	d.LValue = swapNibbles(raw[1])
	d.Q1Ratio, d.Q2Ratio = raw[2]>>4, raw[2]&0x0f
	for i := range d.Body {
		d.Body[tlshCodeSize-1-i] = raw[3+i]
	}
	return d, nil
}

// modDiff is the distance between x and y on a circle of r values.
func modDiff(x, y, r int) int {
	d := x - y
	if d < 0 {
		d = -d
	}
	return min(d, r-d)
}

// Distance returns the TLSH distance, the reference's "diff" including the
// length component: 0 for identical data, growing with dissimilarity
// (the reference suggests values under about 30-70 mean similar files).
func (d TLSH) Distance(o TLSH) int {
	diff := 0
	switch ld := modDiff(int(d.LValue), int(o.LValue), 256); {
	case ld <= 1:
		diff += ld
	default:
		diff += ld * 12
	}
	for _, q := range [2][2]byte{{d.Q1Ratio, o.Q1Ratio}, {d.Q2Ratio, o.Q2Ratio}} {
		qd := modDiff(int(q[0]), int(q[1]), 16)
		if qd <= 1 {
			diff += qd
		} else {
			diff += (qd - 1) * 12
		}
	}
	if d.Checksum != o.Checksum {
		diff++
	}
	for i := range d.Body {
		x, y := d.Body[i], o.Body[i]
		for j := 0; j < 4; j++ {
			a, b := int(x>>(2*j)&3), int(y>>(2*j)&3)
			pd := a - b
			if pd < 0 {
				pd = -pd
			}
			if pd == 3 {
				pd = 6 // opposite extremes weigh more, as in the reference
			}
			diff += pd
		}
	}
	return diff
}
