package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/mitra-cert/mitra/internal/contenthash"
)

// HashCmd prints the content hashes of files.
type HashCmd struct {
	Files []string `arg:"" help:"Files to hash; - for standard input."`
	JSON  bool     `help:"Print one JSON object per file instead of text."`
}

// hashOutput is one file's line in --json output.
type hashOutput struct {
	File       string `json:"file"`
	Size       int64  `json:"size"`
	MD5        string `json:"md5"`
	SHA256     string `json:"sha256"`
	TLSH       string `json:"tlsh,omitempty"`
	PDQ        string `json:"pdq,omitempty"`
	PDQQuality *int   `json:"pdq_quality,omitempty"`
	Format     string `json:"image_format,omitempty"`
	PDQError   string `json:"pdq_error,omitempty"`
}

// Run implements the command: MD5, SHA-256 and TLSH of every file, and the
// PDQ hash with its quality for images. Only hashes are printed; a file
// that cannot be read is reported on standard error and the exit status
// is 1 once the others are done.
func (c *HashCmd) Run(ctx context.Context, e *env) error {
	failed := 0
	enc := json.NewEncoder(e.stdout)
	for _, name := range c.Files {
		fh, err := hashFile(ctx, e, name)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fmt.Fprintf(e.stderr, "mitra: hash %s: %v\n", name, err)
			failed++
			continue
		}
		out := hashOutput{File: name, Size: fh.Size, MD5: fh.MD5, SHA256: fh.SHA256, TLSH: fh.TLSH}
		if fh.Image != nil {
			q := fh.Image.Quality
			out.PDQ, out.PDQQuality, out.Format = fh.Image.PDQ.String(), &q, fh.Image.Format
		}
		if fh.ImageErr != nil {
			out.PDQError = fh.ImageErr.Error()
		}
		if c.JSON {
			if err := enc.Encode(out); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			continue
		}
		printHashes(e.stdout, out)
	}
	if failed > 0 {
		return errSilent
	}
	return nil
}

func hashFile(ctx context.Context, e *env, name string) (contenthash.FileHashes, error) {
	if name == "-" {
		return contenthash.HashReader(ctx, e.stdin)
	}
	f, err := os.Open(name)
	if err != nil {
		return contenthash.FileHashes{}, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return contenthash.FileHashes{}, fmt.Errorf("is a directory")
	}
	return contenthash.HashReader(ctx, f)
}

func printHashes(w io.Writer, o hashOutput) {
	fmt.Fprintf(w, "%s\n  size    %d\n  md5     %s\n  sha256  %s\n", o.File, o.Size, o.MD5, o.SHA256)
	if o.TLSH != "" {
		fmt.Fprintf(w, "  tlsh    %s\n", o.TLSH)
	} else {
		fmt.Fprintf(w, "  tlsh    - (under 50 bytes or too uniform)\n")
	}
	switch {
	case o.PDQ != "":
		fmt.Fprintf(w, "  pdq     %s quality %d (%s)\n", o.PDQ, *o.PDQQuality, o.Format)
	case o.PDQError != "":
		fmt.Fprintf(w, "  pdq     - (%s)\n", o.PDQError)
	}
}
