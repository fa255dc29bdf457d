package contenthash

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// sharedDir finds shared/data/pdq: beside the repository root (../shared,
// where CI lays it), or beside a directory above it (a git worktree).
func sharedDir() string {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	dir := filepath.Join(root, "..")
	for range 3 {
		p := filepath.Join(dir, "shared", "data", "pdq")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		dir = filepath.Join(dir, "..")
	}
	return filepath.Join(root, "..", "shared", "data", "pdq")
}

func readShared(t testing.TB, name string) []byte {
	t.Helper()
	p := filepath.Join(sharedDir(), name)
	b, err := os.ReadFile(p)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PDQ sample images missing: %v", err)
		}
		t.Skipf("PDQ sample images not found (%v); they live in shared/data/pdq beside the repository", err)
	}
	return b
}

// TestPDQAgreesWithMeta checks the hashes against those Meta publishes for
// its sample images, within the 16 bits its Python reference test allows
// (decoders differ slightly).
func TestPDQAgreesWithMeta(t *testing.T) {
	cases := []struct {
		file    string
		quality int
		hashes  []string
	}{
		{"wee.jpg", 100, []string{
			"6227401f601ff4ccafcc9fad4b0d95d371a2eb7265a3285234d228ca94deeb2d",
			"6227401f601ff4ccafccdfad4b0d95d371a2cb7265a3285234d228ca94deeb2d",
		}},
		{"q0122.jpg", 100, []string{
			"cfb2009ddd21c6dab0046a7745b5984757a8a4535b3377aea2591d32b33ff940",
			"cfb2009ddd21c6dab0846a7745b5984757a8a4535b3377aea2591d32b33ff840",
		}},
		{"q1050.jpg", 100, []string{
			"489db672e9190276d452aeab41eba20f02375fe4092d88defdf491a5c55c5f70",
		}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			h, q, format, err := PDQBytes(readShared(t, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if format != "jpeg" {
				t.Errorf("format %q, want jpeg", format)
			}
			if q != c.quality {
				t.Errorf("quality %d, want %d", q, c.quality)
			}
			for _, s := range c.hashes {
				want, err := ParsePDQ(s)
				if err != nil {
					t.Fatal(err)
				}
				d := h.Distance(want)
				t.Logf("%s: got %s, distance %d from %s", c.file, h, d, s)
				if d > 16 {
					t.Errorf("distance %d from published %s exceeds 16", d, s)
				}
			}
		})
	}
}
