package main

import (
	"strings"
	"testing"

	"github.com/mitra-cert/mitra/internal/store/postgres/pgtest"
)

// small are sizes that run every benchmark in about a second.
var small = []string{"--objects", "1500", "--step", "500", "--envelope", "250", "--clients", "2",
	"--indicators", "1000", "--observations", "5000", "--lines", "5000"}

func TestBenchCommand(t *testing.T) {
	out, errOut, err := mitra(t, nil, "", append([]string{"bench"}, small...)...)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	for _, want := range []string{"ingest", "1500 objects", "read", "match", "5000 observations", "detect", "5000 lines", "ingest curve", "p99"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(errOut, "objects stored"); n != 3 {
		t.Errorf("%d progress lines, want 3:\n%s", n, errOut)
	}
	// One benchmark only.
	out, _, err = mitra(t, nil, "", append([]string{"bench", "match"}, small...)...)
	if err != nil || !strings.Contains(out, "match") || strings.Contains(out, "ingest") {
		t.Errorf("bench match: %v\n%s", err, out)
	}
	if _, _, err := mitra(t, nil, "", "bench", "ingset"); exitCode(err) != 2 {
		t.Errorf("unknown benchmark: exit %d (%v), want 2", exitCode(err), err)
	}
}

// TestBenchCommandSQLiteDirAndPostgres runs ingest and read on an explicit
// store of each backend, which the benchmark leaves as it found it.
func TestBenchCommandSQLiteDirAndPostgres(t *testing.T) {
	for _, dsn := range []string{"sqlite:" + t.TempDir() + "?sync=normal", pgtest.NewSchema(t)} {
		out, errOut, err := mitra(t, nil, "", append([]string{"bench", "ingest", "read", "--store", dsn}, small...)...)
		if err != nil {
			t.Fatalf("%s: %v\n%s", dsn, err, errOut)
		}
		if !strings.Contains(out, "1500 objects") || strings.Contains(out, "detect") {
			t.Errorf("%s:\n%s", dsn, out)
		}
		list, _, err := mitra(t, nil, "", "collection", "list", "--store", dsn)
		if err != nil || strings.Contains(list, "bench") {
			t.Errorf("%s: collections left: %v\n%s", dsn, err, list)
		}
	}
}
