package contenthash

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestHashReader(t *testing.T) {
	ctx := context.Background()
	fh, err := HashReader(ctx, strings.NewReader("abc"))
	if err != nil {
		t.Fatal(err)
	}
	if fh.MD5 != "900150983cd24fb0d6963f7d28e17f72" ||
		fh.SHA256 != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("hashes of abc: %+v", fh)
	}
	if fh.TLSH != "" || fh.Image != nil || fh.Size != 3 {
		t.Errorf("3-byte file: %+v", fh)
	}

	text := "A minimum string length must be 256 bytes! That's so much text this means it's not super useful for finding short text!"
	fh, err = HashReader(ctx, strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if fh.TLSH != "T1DFB092A1724AC2C0D3CA48452291EA04A5B75EB903A6E7577A54118FFA8148E98F9426" {
		t.Errorf("TLSH %q", fh.TLSH)
	}

	img := genImage(3, 200, 150)
	png := encode(t, img, "png", 0)
	want, wantQ := pdqOf(t, png, "png")
	fh, err = HashReader(ctx, bytes.NewReader(png))
	if err != nil {
		t.Fatal(err)
	}
	if fh.Image == nil || fh.Image.PDQ != want || fh.Image.Quality != wantQ || fh.Image.Format != "png" {
		t.Errorf("image hashes %+v (err %v), want PDQ %s quality %d", fh.Image, fh.ImageErr, want, wantQ)
	}
	if fh.TLSH == "" || fh.Size != int64(len(png)) {
		t.Errorf("image file: TLSH %q size %d", fh.TLSH, fh.Size)
	}

	// A truncated PNG looks like an image but does not decode: the file
	// hashes are still given, with the reason PDQ is missing.
	fh, err = HashReader(ctx, bytes.NewReader(png[:len(png)/2]))
	if err != nil {
		t.Fatal(err)
	}
	if fh.Image != nil || fh.ImageErr == nil || fh.SHA256 == "" {
		t.Errorf("truncated image: %+v", fh)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := HashReader(cctx, strings.NewReader(text)); err == nil {
		t.Error("cancelled context: no error")
	}
}
