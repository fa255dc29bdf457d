package bench_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/mitra-cert/mitra/internal/bench"
	"github.com/mitra-cert/mitra/internal/pattern"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
)

// TestRunAll runs every benchmark at a small size on a real SQLite store
// through the real server, and checks the table, the curve and that the
// benchmark leaves nothing behind.
func TestRunAll(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mirror, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer mirror.Close()
	var progress bytes.Buffer
	res, err := bench.Run(ctx, bench.Config{
		Store: st, Mirror: mirror, FeedPage: 300, Validator: &stix.Validator{CheckPattern: pattern.Check},
		Objects: 2500, Step: 1000, Envelope: 200, Clients: 3,
		Indicators: 2000, Observations: 20000, Lines: 30000,
		TempDir: t.TempDir(), Progress: &progress,
	}, "all")
	if err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, r := range res.Rows {
		names = append(names, r.Name)
		if r.Count <= 0 || r.Time <= 0 || r.Rate() <= 0 {
			t.Errorf("row %+v", r)
		}
	}
	if strings.Join(names, ",") != "ingest,read,match,detect,federation" {
		t.Errorf("rows %v", names)
	}
	if f := res.Rows[4]; f.Count != 2500 || f.CPU <= 0 || !strings.Contains(f.Note, "pages of 300") {
		t.Errorf("federation row %+v", f)
	}
	if res.Rows[0].Count != 2500 || res.Rows[1].Count != 2500 {
		t.Errorf("ingested %d, read %d; want 2500 each", res.Rows[0].Count, res.Rows[1].Count)
	}
	if res.Rows[0].P50 <= 0 || res.Rows[0].P99 < res.Rows[0].P50 {
		t.Errorf("ingest latencies %v %v", res.Rows[0].P50, res.Rows[0].P99)
	}
	if len(res.Curve) != 3 || res.Curve[0].Stored < 1000 || res.Curve[2].Stored != 2500 {
		t.Errorf("curve %+v", res.Curve)
	}
	var out bytes.Buffer
	if err := bench.Print(&out, res); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	for _, want := range []string{"ingest", "objects/s", "observations/s", "lines/s", "ingest curve", "2500"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(progress.String(), "objects stored") {
		t.Errorf("progress: %q", progress.String())
	}
	// The benchmark's collections and user are gone.
	cols, err := st.ListCollections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cols) != 0 {
		t.Errorf("%d collections left behind", len(cols))
	}
	if cols, err := mirror.ListCollections(ctx); err != nil || len(cols) != 0 {
		t.Errorf("%d collections left behind in the mirror (%v)", len(cols), err)
	}
	if peers, err := mirror.ListPeers(ctx); err != nil || len(peers) != 0 {
		t.Errorf("%d peers left behind in the mirror (%v)", len(peers), err)
	}
	users, err := st.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 0 {
		t.Errorf("%d users left behind", len(users))
	}
}

func TestUnknownBenchmark(t *testing.T) {
	if _, err := bench.Run(context.Background(), bench.Config{}, "ingset"); err == nil || !strings.Contains(err.Error(), "ingset") {
		t.Errorf("err = %v", err)
	}
}
