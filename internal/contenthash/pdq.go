// Package contenthash computes the content hashes Mitra shares: Meta's PDQ
// perceptual hash for images, TLSH (Trend Micro locality-sensitive hash),
// MD5 and SHA-256 for every file, and keeps PDQ hashes in a multi-index
// hashing near-neighbour index.
//
// Only hashes leave this package: it never stores or sends content.
package contenthash

import (
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"math/bits"
	"slices"
)

// PDQ is a 256-bit PDQ hash. Byte 0 holds the most significant bits, so
// hex.EncodeToString gives the 64-digit form Meta's implementations print
// (bit k of the hash, k = 16*row + column of the 16x16 DCT, is bit k of the
// 256-bit big-endian number).
type PDQ [32]byte

// String returns the 64 hex digits, most significant first.
func (h PDQ) String() string { return hex.EncodeToString(h[:]) }

// Distance returns the Hamming distance between two PDQ hashes (0..256).
func (h PDQ) Distance(o PDQ) int {
	d := 0
	for i := 0; i < 32; i += 8 {
		d += bits.OnesCount64(be64(h[i:]) ^ be64(o[i:]))
	}
	return d
}

func be64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

// words returns the hash as four 64-bit words, most significant first.
func (h PDQ) words() [4]uint64 {
	return [4]uint64{be64(h[0:]), be64(h[8:]), be64(h[16:]), be64(h[24:])}
}

func pdqFromWords(w [4]uint64) PDQ {
	var h PDQ
	for i, x := range w {
		for j := 0; j < 8; j++ {
			h[i*8+j] = byte(x >> (56 - 8*j))
		}
	}
	return h
}

// ParsePDQ parses 64 hex digits.
func ParsePDQ(s string) (PDQ, error) {
	var h PDQ
	if len(s) != 64 {
		return h, fmt.Errorf("pdq hash %q: want 64 hex digits, got %d characters", s, len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("pdq hash %q: %w", s, err)
	}
	return h, nil
}

// setBit sets bit k (0 = least significant of the 256-bit number).
func (h *PDQ) setBit(k int) { h[31-k/8] |= 1 << (k % 8) }

// ErrImageTooSmall is returned for images under 5 pixels in either
// dimension, which the reference implementation does not hash.
var ErrImageTooSmall = errors.New("image too small for PDQ (under 5 pixels)")

// PDQ algorithm constants, from Meta's description (hashing.pdf) and its
// reference implementations.
const (
	pdqMinDim        = 5
	pdqJaroszPasses  = 2 // two X,Y box-filter passes give a tent filter
	pdqDownsampleDim = 64
	pdqDCTDim        = 16
)

// dctMatrix is the 16x64 DCT-II basis for frequencies 1..16 (frequency 0,
// the mean, carries no perceptual information and is skipped).
var dctMatrix = func() [pdqDCTDim * pdqDownsampleDim]float32 {
	var d [pdqDCTDim * pdqDownsampleDim]float32
	scale := math.Sqrt(2.0 / pdqDownsampleDim)
	for i := 0; i < pdqDCTDim; i++ {
		for j := 0; j < pdqDownsampleDim; j++ {
			d[i*pdqDownsampleDim+j] = float32(scale * math.Cos(math.Pi/2/pdqDownsampleDim*float64(i+1)*float64(2*j+1)))
		}
	}
	return d
}()

// PDQImage computes the PDQ hash of an image and its quality (0..100; Meta
// advises discarding hashes of quality under 50 as too featureless to match
// reliably).
func PDQImage(img image.Image) (PDQ, int, error) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w < pdqMinDim || h < pdqMinDim {
		return PDQ{}, 0, ErrImageTooSmall
	}
	luma := make([]float32, w*h)
	fillLuma(img, luma)
	return pdqFromLuma(luma, make([]float32, w*h), h, w)
}

// Rec. 601 luma weights, as the reference uses.
const (
	lumaR = 0.299
	lumaG = 0.587
	lumaB = 0.114
)

func fillLuma(img image.Image, luma []float32) {
	b := img.Bounds()
	w := b.Dx()
	switch m := img.(type) {
	case *image.YCbCr:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := luma[(y-b.Min.Y)*w:]
			for x := b.Min.X; x < b.Max.X; x++ {
				yi, ci := m.YOffset(x, y), m.COffset(x, y)
				r, g, bb := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				row[x-b.Min.X] = lumaR*float32(r) + lumaG*float32(g) + lumaB*float32(bb)
			}
		}
	case *image.Gray:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := luma[(y-b.Min.Y)*w:]
			off := m.PixOffset(b.Min.X, y)
			for x := 0; x < w; x++ {
				row[x] = float32(m.Pix[off+x])
			}
		}
	case *image.NRGBA:
		// Transparent pixels keep their colour, as decoders that drop the
		// alpha channel (the reference's) see them.
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := luma[(y-b.Min.Y)*w:]
			p := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := 0; x < w; x++ {
				row[x] = lumaR*float32(p[4*x]) + lumaG*float32(p[4*x+1]) + lumaB*float32(p[4*x+2])
			}
		}
	default:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := luma[(y-b.Min.Y)*w:]
			for x := b.Min.X; x < b.Max.X; x++ {
				c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
				row[x-b.Min.X] = lumaR*float32(c.R) + lumaG*float32(c.G) + lumaB*float32(c.B)
			}
		}
	}
}

// pdqFromLuma hashes a rows x cols luma matrix (row-major); buf is scratch
// of the same size. Both are overwritten.
func pdqFromLuma(luma, buf []float32, rows, cols int) (PDQ, int, error) {
	var small [pdqDownsampleDim * pdqDownsampleDim]float32
	if rows == pdqDownsampleDim && cols == pdqDownsampleDim {
		copy(small[:], luma)
	} else {
		jaroszFilter(luma, buf, rows, cols, jaroszWindow(cols, pdqDownsampleDim), jaroszWindow(rows, pdqDownsampleDim), pdqJaroszPasses)
		decimate(luma, rows, cols, small[:], pdqDownsampleDim, pdqDownsampleDim)
	}
	quality := pdqQuality(&small)
	var dct [pdqDCTDim * pdqDCTDim]float32
	dct64To16(&small, &dct)
	return dctToBits(&dct), quality, nil
}

// jaroszWindow is the box-filter window along a dimension: half of one
// output pixel's span, rounded up, since two passes are made.
func jaroszWindow(oldDim, newDim int) int {
	return (oldDim + 2*newDim - 1) / (2 * newDim)
}

// jaroszFilter blurs buf1 in place by repeated 1-D box filters along rows
// then columns (Jarosz, "Fast image convolutions", 2001), approximating a
// tent filter that avoids aliasing when decimating.
func jaroszFilter(buf1, buf2 []float32, rows, cols, windowAlongRows, windowAlongCols, reps int) {
	for i := 0; i < reps; i++ {
		for r := 0; r < rows; r++ {
			box1D(buf1[r*cols:], buf2[r*cols:], cols, 1, windowAlongRows)
		}
		boxAlongCols(buf2, buf1, rows, cols, windowAlongCols)
	}
}

// boxAlongCols is box1D down every column at once, row by row, so memory
// is read in order; each column's sums are formed in the same order as
// box1D's, so the results are the same.
func boxAlongCols(in, out []float32, rows, cols, window int) {
	half := (window + 2) / 2
	phase1 := half - 1
	phase2 := window - half + 1
	phase3 := rows - window
	phase4 := half - 1
	sums := make([]float32, cols)
	li, ri, oi := 0, 0, 0
	count := 0
	add := func(r int) {
		row := in[r*cols : (r+1)*cols]
		for c, v := range row {
			sums[c] += v
		}
	}
	sub := func(r int) {
		row := in[r*cols : (r+1)*cols]
		for c, v := range row {
			sums[c] -= v
		}
	}
	write := func(r int) {
		row := out[r*cols : (r+1)*cols]
		n := float32(count)
		for c := range row {
			row[c] = sums[c] / n
		}
	}
	for i := 0; i < phase1; i++ {
		add(ri)
		count++
		ri++
	}
	for i := 0; i < phase2; i++ {
		add(ri)
		count++
		write(oi)
		ri++
		oi++
	}
	for i := 0; i < phase3; i++ {
		add(ri)
		sub(li)
		write(oi)
		li++
		ri++
		oi++
	}
	for i := 0; i < phase4; i++ {
		sub(li)
		count--
		write(oi)
		li++
		oi++
	}
}

// box1D writes to out the mean of in over a window centred on each element,
// the window shrinking at both ends (only existing elements are averaged).
func box1D(in, out []float32, n, stride, window int) {
	half := (window + 2) / 2
	phase1 := half - 1
	phase2 := window - half + 1
	phase3 := n - window
	phase4 := half - 1
	li, ri, oi := 0, 0, 0
	var sum float32
	count := 0
	for i := 0; i < phase1; i++ {
		sum += in[ri]
		count++
		ri += stride
	}
	for i := 0; i < phase2; i++ {
		sum += in[ri]
		count++
		out[oi] = sum / float32(count)
		ri += stride
		oi += stride
	}
	for i := 0; i < phase3; i++ {
		sum += in[ri]
		sum -= in[li]
		out[oi] = sum / float32(count)
		li += stride
		ri += stride
		oi += stride
	}
	for i := 0; i < phase4; i++ {
		sum -= in[li]
		count--
		out[oi] = sum / float32(count)
		li += stride
		oi += stride
	}
}

// decimate samples the blurred image at the centres of the output cells.
func decimate(in []float32, inRows, inCols int, out []float32, outRows, outCols int) {
	for oi := 0; oi < outRows; oi++ {
		ii := int((float64(oi) + 0.5) * float64(inRows) / float64(outRows))
		for oj := 0; oj < outCols; oj++ {
			ij := int((float64(oj) + 0.5) * float64(inCols) / float64(outCols))
			out[oi*outCols+oj] = in[ii*inCols+ij]
		}
	}
}

// pdqQuality counts significant gradients in the 64x64 downsample; the
// scale factors are Meta's heuristics.
func pdqQuality(a *[pdqDownsampleDim * pdqDownsampleDim]float32) int {
	const n = pdqDownsampleDim
	sum := 0
	for i := 0; i < n-1; i++ {
		for j := 0; j < n; j++ {
			sum += absInt(int((a[i*n+j] - a[(i+1)*n+j]) * 100 / 255))
		}
	}
	for i := 0; i < n; i++ {
		for j := 0; j < n-1; j++ {
			sum += absInt(int((a[i*n+j] - a[i*n+j+1]) * 100 / 255))
		}
	}
	return min(sum/90, 100)
}

func absInt(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// dct64To16 computes B = D A Dᵀ, only the 16x16 low frequencies needed.
func dct64To16(a *[pdqDownsampleDim * pdqDownsampleDim]float32, b *[pdqDCTDim * pdqDCTDim]float32) {
	const n, m = pdqDownsampleDim, pdqDCTDim
	var t [m * n]float32
	for i := 0; i < m; i++ {
		d := dctMatrix[i*n : (i+1)*n]
		for j := 0; j < n; j++ {
			var s float32
			for k := 0; k < n; k++ {
				s += d[k] * a[k*n+j]
			}
			t[i*n+j] = s
		}
	}
	for i := 0; i < m; i++ {
		tr := t[i*n : (i+1)*n]
		for j := 0; j < m; j++ {
			d := dctMatrix[j*n : (j+1)*n]
			var s float32
			for k := 0; k < n; k++ {
				s += tr[k] * d[k]
			}
			b[i*m+j] = s
		}
	}
}

// dctToBits sets each bit whose coefficient exceeds the median. The median
// is the lower middle value (the 128th smallest of 256), as Torben's
// algorithm in the reference returns, so about half the bits are set.
func dctToBits(dct *[pdqDCTDim * pdqDCTDim]float32) PDQ {
	sorted := slices.Clone(dct[:])
	slices.Sort(sorted)
	median := sorted[(len(sorted)+1)/2-1]
	var h PDQ
	for k, v := range dct {
		if v > median {
			h.setBit(k)
		}
	}
	return h
}
