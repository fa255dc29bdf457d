package contenthash

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// MaxImageFileSize bounds the image files kept in memory for PDQ; larger
// files still get MD5, SHA-256 and TLSH.
const MaxImageFileSize = 256 << 20

// FileHashes are the hashes of one file.
type FileHashes struct {
	Size   int64
	MD5    string // hex
	SHA256 string // hex
	TLSH   string // "" when TLSH is undefined for the data (see ErrTLSHUndefined)
	// Image is set when the file is an image PDQ could hash.
	Image *ImageHash
	// ImageErr says why a file that looks like an image has no PDQ hash.
	ImageErr error
}

// ImageHash is the PDQ hash of an image with its quality.
type ImageHash struct {
	Format  string // jpeg, png, gif, webp, bmp
	PDQ     PDQ
	Quality int // 0..100
}

// imageMagic reports whether the first bytes look like a format PDQBytes
// decodes, so that only images are held in memory.
func imageMagic(b []byte) bool {
	switch {
	case bytes.HasPrefix(b, []byte{0xff, 0xd8, 0xff}),
		bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")),
		bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")),
		bytes.HasPrefix(b, []byte("BM")):
		return true
	case len(b) >= 12 && bytes.Equal(b[:4], []byte("RIFF")) && bytes.Equal(b[8:12], []byte("WEBP")):
		return true
	}
	return false
}

// HashReader reads r to its end and returns its hashes; images (by their
// magic bytes) up to MaxImageFileSize also get a PDQ hash. It stops early
// when ctx is done.
func HashReader(ctx context.Context, r io.Reader) (FileHashes, error) {
	var fh FileHashes
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(16)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return fh, fmt.Errorf("read: %w", err)
	}
	isImage := imageMagic(head)
	m, s := md5.New(), sha256.New()
	var t TLSHer
	var img bytes.Buffer
	buf := make([]byte, 64<<10)
	for {
		if err := ctx.Err(); err != nil {
			return fh, err
		}
		n, err := br.Read(buf)
		if n > 0 {
			p := buf[:n]
			m.Write(p)
			s.Write(p)
			_, _ = t.Write(p)
			if isImage {
				if fh.Size+int64(n) > MaxImageFileSize {
					isImage = false
					img = bytes.Buffer{}
					fh.ImageErr = fmt.Errorf("image file larger than %d bytes: not decoded", MaxImageFileSize)
				} else {
					img.Write(p)
				}
			}
			fh.Size += int64(n)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fh, fmt.Errorf("read: %w", err)
		}
	}
	fh.MD5 = hex.EncodeToString(m.Sum(nil))
	fh.SHA256 = hex.EncodeToString(s.Sum(nil))
	if d, err := t.Sum(); err == nil {
		fh.TLSH = d.String()
	}
	if isImage {
		h, q, format, err := PDQBytes(img.Bytes())
		if err != nil {
			fh.ImageErr = err
		} else {
			fh.Image = &ImageHash{Format: format, PDQ: h, Quality: q}
		}
	}
	return fh, nil
}
