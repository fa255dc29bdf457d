package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/mitra-cert/mitra/internal/store/storetest"
)

// TestBackgroundCheckpoint checks that committed objects reach the
// database file without a writer checkpointing (the writer's autocheckpoint
// is off), and are all there after a reopen.
func TestBackgroundCheckpoint(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := &store.Collection{Title: "c"}
	if err := s.CreateCollection(ctx, c); err != nil {
		t.Fatal(err)
	}
	size := func(name string) int64 {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	before := size(sqlite.FileName)
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	const total = 3000
	for range total / 500 {
		objs := make([]store.Object, 500)
		for i := range objs {
			objs[i] = storetest.Obj(t, storetest.Indicator("indicator--"+uuid.NewString(), base, base))
		}
		if _, err := s.AddObjects(ctx, c.ID, objs, nil); err != nil {
			t.Fatal(err)
		}
	}
	// About 1 MiB of objects: the database file grows once the WAL is
	// copied into it.
	deadline := time.Now().Add(20 * time.Second)
	for size(sqlite.FileName) < before+1<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("database file %d bytes (WAL %d) 20 s after the commits: no checkpoint", size(sqlite.FileName), size(sqlite.FileName+"-wal"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	var after time.Time
	for {
		p, err := s.QueryObjects(ctx, c.ID, store.Query{AddedAfter: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		n += len(p.Entries)
		if !p.More {
			break
		}
		after = p.Entries[len(p.Entries)-1].DateAdded
	}
	if n != total {
		t.Errorf("%d objects after reopening, want %d", n, total)
	}
}

// TestConnectionPragmas checks the settings each connection ends with:
// the writer must not checkpoint inside its commits (that is the
// checkpointer's work) and keeps the larger page cache, whatever order the
// driver applies a DSN's pragmas in.
func TestConnectionPragmas(t *testing.T) {
	s, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{Sync: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, c := range []struct {
		name   string
		reader bool
		want   string
	}{
		{"wal_autocheckpoint", false, "0"},
		{"cache_size", false, "-262144"},
		{"synchronous", false, "1"},
		{"foreign_keys", false, "1"},
		{"journal_mode", false, "wal"},
		{"busy_timeout", false, "20000"},
		{"cache_size", true, "-65536"},
		{"query_only", true, "1"},
		{"mmap_size", true, "2147418112"},
	} {
		got, err := sqlite.Pragma(s, c.name, c.reader)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got != c.want {
			t.Errorf("PRAGMA %s on the %s: %s, want %s", c.name, map[bool]string{false: "writer", true: "readers"}[c.reader], got, c.want)
		}
	}
}
