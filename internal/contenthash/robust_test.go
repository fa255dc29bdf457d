package contenthash

import (
	"bytes"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/draw"
)

// genImage draws a photo-like test image from a seed: a smooth gradient,
// overlapping shaded ellipses and rectangles, and mild noise, so that it
// has structure at many scales, as photographs do.
func genImage(seed uint64, w, h int) *image.RGBA {
	r := rand.New(rand.NewPCG(seed, seed*31+7))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	type shape struct {
		ellipse        bool
		cx, cy, rx, ry float64
		c              [3]float64
	}
	var shapes []shape
	for i := 0; i < 6+r.IntN(6); i++ {
		shapes = append(shapes, shape{
			ellipse: r.IntN(2) == 0,
			cx:      r.Float64(), cy: r.Float64(),
			rx: 0.05 + 0.3*r.Float64(), ry: 0.05 + 0.3*r.Float64(),
			c: [3]float64{255 * r.Float64(), 255 * r.Float64(), 255 * r.Float64()},
		})
	}
	g0 := [3]float64{255 * r.Float64(), 255 * r.Float64(), 255 * r.Float64()}
	g1 := [3]float64{255 * r.Float64(), 255 * r.Float64(), 255 * r.Float64()}
	angle := r.Float64() * 2 * math.Pi
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			t := 0.5 + 0.5*math.Sin(3*(fx*math.Cos(angle)+fy*math.Sin(angle)))
			var c [3]float64
			for k := range c {
				c[k] = g0[k]*(1-t) + g1[k]*t
			}
			for _, s := range shapes {
				dx, dy := (fx-s.cx)/s.rx, (fy-s.cy)/s.ry
				// Soft edges, as photographed objects have.
				dist := math.Max(math.Abs(dx), math.Abs(dy))
				if s.ellipse {
					dist = math.Hypot(dx, dy)
				}
				if a := math.Max(0, math.Min(1, (1.15-dist)/0.3)); a > 0 {
					shade := 0.75 + 0.25*(1-math.Min(1, dist))
					for k := range c {
						c[k] = c[k]*(1-a) + s.c[k]*shade*a
					}
				}
			}
			n := 6 * (r.Float64() - 0.5)
			img.SetRGBA(x, y, color.RGBA{clamp8(c[0] + n), clamp8(c[1] + n), clamp8(c[2] + n), 255})
		}
	}
	return img
}

func clamp8(v float64) uint8 { return uint8(math.Max(0, math.Min(255, math.Round(v)))) }

// rotate turns img by deg degrees about its centre (bilinear sampling,
// edges clamped), keeping its size, as a re-uploader's tilt would.
func rotate(img *image.RGBA, deg float64) *image.RGBA {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := image.NewRGBA(b)
	s, c := math.Sincos(deg * math.Pi / 180)
	cx, cy := float64(w-1)/2, float64(h-1)/2
	at := func(x, y int) color.RGBA {
		x = max(0, min(w-1, x))
		y = max(0, min(h-1, y))
		return img.RGBAAt(x, y)
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			dx, dy := float64(x)-cx, float64(y)-cy
			sx, sy := c*dx+s*dy+cx, -s*dx+c*dy+cy
			x0, y0 := int(math.Floor(sx)), int(math.Floor(sy))
			fx, fy := sx-float64(x0), sy-float64(y0)
			p00, p10, p01, p11 := at(x0, y0), at(x0+1, y0), at(x0, y0+1), at(x0+1, y0+1)
			mix := func(a, b, c, d uint8) uint8 {
				return clamp8((float64(a)*(1-fx)+float64(b)*fx)*(1-fy) + (float64(c)*(1-fx)+float64(d)*fx)*fy)
			}
			out.SetRGBA(x, y, color.RGBA{mix(p00.R, p10.R, p01.R, p11.R), mix(p00.G, p10.G, p01.G, p11.G), mix(p00.B, p10.B, p01.B, p11.B), 255})
		}
	}
	return out
}

func resize(img image.Image, w, h int) *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(out, out.Bounds(), img, img.Bounds(), draw.Src, nil)
	return out
}

func encode(t *testing.T, img image.Image, format string, quality int) []byte {
	t.Helper()
	var buf bytes.Buffer
	var err error
	switch format {
	case "jpeg":
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality})
	case "png":
		err = png.Encode(&buf, img)
	case "gif":
		err = gif.Encode(&buf, img, &gif.Options{NumColors: 256})
	case "bmp":
		err = bmp.Encode(&buf, img)
	default:
		t.Fatalf("no encoder for %s", format)
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func pdqOf(t *testing.T, data []byte, wantFormat string) (PDQ, int) {
	t.Helper()
	h, q, format, err := PDQBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	if format != wantFormat {
		t.Fatalf("decoded as %q, want %q", format, wantFormat)
	}
	return h, q
}

// matchThreshold is the PDQ distance issue 18 and Meta treat as a match.
const matchThreshold = 31

// TestPDQRobustToEdits checks that rotated, resized and re-compressed
// copies of generated images match their originals within the threshold,
// through every decoder, while unrelated images do not.
func TestPDQRobustToEdits(t *testing.T) {
	const n = 4
	origs := make([]PDQ, n)
	for i := 0; i < n; i++ {
		img := genImage(uint64(i+1), 400, 300)
		orig, q := pdqOf(t, encode(t, img, "png", 0), "png")
		if q < 50 {
			t.Fatalf("image %d: quality %d, too featureless to test with", i, q)
		}
		origs[i] = orig
		edits := []struct {
			name   string
			data   []byte
			format string
		}{
			// PDQ's high-frequency bits make it sensitive to rotation: on
			// these images 2° already moves 22-42 bits, so "small angle"
			// means about one degree.
			{"rotate 1°", encode(t, rotate(img, 1), "png", 0), "png"},
			{"rotate -1°", encode(t, rotate(img, -1), "png", 0), "png"},
			{"half size", encode(t, resize(img, 200, 150), "png", 0), "png"},
			{"enlarged and squeezed", encode(t, resize(img, 640, 400), "png", 0), "png"},
			{"JPEG q90", encode(t, img, "jpeg", 90), "jpeg"},
			{"JPEG q30", encode(t, img, "jpeg", 30), "jpeg"},
			{"GIF palette", encode(t, img, "gif", 0), "gif"},
			{"BMP", encode(t, img, "bmp", 0), "bmp"},
			{"rotated 1°, shrunk, JPEG q50", encode(t, resize(rotate(img, 1), 280, 210), "jpeg", 50), "jpeg"},
		}
		for _, e := range edits {
			h, _ := pdqOf(t, e.data, e.format)
			d := orig.Distance(h)
			t.Logf("image %d, %s: distance %d", i, e.name, d)
			if d > matchThreshold {
				t.Errorf("image %d, %s: distance %d from original exceeds %d", i, e.name, d, matchThreshold)
			}
		}
	}
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			if d := origs[i].Distance(origs[j]); d <= matchThreshold {
				t.Errorf("unrelated images %d and %d at distance %d", i, j, d)
			}
		}
	}
}

func TestPDQBadInput(t *testing.T) {
	if _, _, _, err := PDQBytes([]byte("plain text, not an image")); err == nil {
		t.Error("text accepted as an image")
	}
	tiny := encode(t, image.NewGray(image.Rect(0, 0, 4, 40)), "png", 0)
	if _, _, _, err := PDQBytes(tiny); err == nil {
		t.Error("4-pixel-wide image hashed")
	}
	// A flat image has no gradients: quality 0, as the reference reports.
	flat := image.NewGray(image.Rect(0, 0, 100, 100))
	for i := range flat.Pix {
		flat.Pix[i] = 128
	}
	if _, q := pdqOf(t, encode(t, flat, "png", 0), "png"); q != 0 {
		t.Errorf("flat image quality %d, want 0", q)
	}
}

// TestPDQWebP decodes a lossy WebP made from a generated image (see
// testdata/README.md) and matches it against the image drawn here.
func TestPDQWebP(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "gen101.webp"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := pdqOf(t, data, "webp")
	want, _ := pdqOf(t, encode(t, genImage(101, 320, 240), "png", 0), "png")
	if d := got.Distance(want); d > matchThreshold {
		t.Errorf("WebP copy at distance %d from the drawn image, want <= %d", d, matchThreshold)
	} else {
		t.Logf("WebP copy at distance %d", d)
	}
}
