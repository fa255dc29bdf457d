package contenthash

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/gif"  // GIF decoder, registered with image.Decode
	_ "image/jpeg" // JPEG decoder
	_ "image/png"  // PNG decoder

	_ "golang.org/x/image/bmp"  // BMP decoder
	_ "golang.org/x/image/webp" // WebP decoder
)

// MaxImagePixels bounds the images PDQ will decode: hashing holds two
// float32 copies of the image, so 64 megapixels take 512 MB.
const MaxImagePixels = 64 << 20

// ErrNotImage is returned when data is in no image format this package
// decodes (JPEG, PNG, GIF, WebP, BMP).
var ErrNotImage = errors.New("not a supported image (JPEG, PNG, GIF, WebP, BMP)")

// PDQBytes decodes an image and returns its PDQ hash, its quality and the
// image format name. It returns an error wrapping ErrNotImage when data is
// not an image it knows.
func PDQBytes(data []byte) (PDQ, int, string, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		if errors.Is(err, image.ErrFormat) {
			return PDQ{}, 0, "", ErrNotImage
		}
		return PDQ{}, 0, "", fmt.Errorf("%w: %v", ErrNotImage, err)
	}
	if int64(cfg.Width)*int64(cfg.Height) > MaxImagePixels {
		return PDQ{}, 0, format, fmt.Errorf("%s image of %dx%d pixels exceeds the limit of %d", format, cfg.Width, cfg.Height, MaxImagePixels)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return PDQ{}, 0, format, fmt.Errorf("decode %s image: %w", format, err)
	}
	h, q, err := PDQImage(img)
	if err != nil {
		return PDQ{}, 0, format, err
	}
	return h, q, format, nil
}
