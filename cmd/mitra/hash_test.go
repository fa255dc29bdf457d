package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mitra-cert/mitra/internal/contenthash"
)

func TestHashCommand(t *testing.T) {
	dir := t.TempDir()
	img := image.NewRGBA(image.Rect(0, 0, 120, 90))
	for y := 0; y < 90; y++ {
		for x := 0; x < 120; x++ {
			v := uint8((x*x + 3*y*y + x*y) % 251)
			img.SetRGBA(x, y, color.RGBA{v, uint8(2 * x), uint8(255 - 2*y), 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	imgPath := filepath.Join(dir, "picture.png")
	txtPath := filepath.Join(dir, "note.txt")
	text := strings.Repeat("Hashes travel, content stays home. ", 10)
	if err := os.WriteFile(imgPath, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(txtPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	wantPDQ, wantQ, _, err := contenthash.PDQBytes(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}

	stdout, stderr, err := mitra(t, nil, text, "hash", "--json", imgPath, filepath.Join(dir, "missing"), txtPath, "-")
	if exitCode(err) != 1 {
		t.Fatalf("exit %d (%v), want 1 for the missing file", exitCode(err), err)
	}
	if !strings.Contains(stderr, "missing") {
		t.Errorf("stderr does not name the missing file: %q", stderr)
	}
	var outs []hashOutput
	dec := json.NewDecoder(strings.NewReader(stdout))
	for dec.More() {
		var o hashOutput
		if err := dec.Decode(&o); err != nil {
			t.Fatal(err)
		}
		outs = append(outs, o)
	}
	if len(outs) != 3 {
		t.Fatalf("%d results, want 3 (image, text, stdin):\n%s", len(outs), stdout)
	}
	if outs[0].PDQ != wantPDQ.String() || outs[0].PDQQuality == nil || *outs[0].PDQQuality != wantQ || outs[0].Format != "png" {
		t.Errorf("image: %+v, want PDQ %s quality %d", outs[0], wantPDQ, wantQ)
	}
	sum := sha256.Sum256([]byte(text))
	for _, o := range outs[1:] {
		if o.SHA256 != hex.EncodeToString(sum[:]) || o.TLSH == "" || o.PDQ != "" {
			t.Errorf("text %s: %+v", o.File, o)
		}
	}
	if outs[1].TLSH != outs[2].TLSH {
		t.Errorf("file and stdin TLSH differ: %s, %s", outs[1].TLSH, outs[2].TLSH)
	}

	stdout, _, err = mitra(t, nil, "", "hash", imgPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "pdq     "+wantPDQ.String()) {
		t.Errorf("text output lacks the PDQ hash:\n%s", stdout)
	}
}
