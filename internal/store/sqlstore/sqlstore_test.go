package sqlstore

import (
	"testing"
	"testing/fstest"
)

func TestRebind(t *testing.T) {
	for in, want := range map[string]string{
		"SELECT 1":                              "SELECT 1",
		"SELECT a FROM t WHERE b = ? AND c = ?": "SELECT a FROM t WHERE b = $1 AND c = $2",
		"x = ANY(?::text[]) LIMIT ?":            "x = ANY($1::text[]) LIMIT $2",
	} {
		if got := Rebind(in); got != want {
			t.Errorf("Rebind(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMigrations(t *testing.T) {
	ms, err := Migrations(fstest.MapFS{
		"m/0002_b.sql": {Data: []byte("B")},
		"m/0001_a.sql": {Data: []byte("A")},
		"m/notes.txt":  {Data: []byte("not a migration")},
	}, "m")
	if err != nil || len(ms) != 2 || ms[0].Name != "0001_a.sql" || ms[1].Version != 2 || ms[1].SQL != "B" {
		t.Fatalf("Migrations = %+v, %v", ms, err)
	}
	if ms[0].Checksum == ms[1].Checksum || len(ms[0].Checksum) != 64 {
		t.Errorf("checksums %q and %q", ms[0].Checksum, ms[1].Checksum)
	}
	// A gap in the versions is a packaging mistake, not a schema.
	if _, err := Migrations(fstest.MapFS{"m/0001_a.sql": {}, "m/0003_c.sql": {}}, "m"); err == nil {
		t.Error("a gap in the versions accepted")
	}
}
