package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/mitra-cert/mitra/internal/bench"
)

// BenchCmd measures this machine: ingest and reads through the real server
// over loopback HTTP, pattern matching, detection, and federation (one
// Mitra mirroring another over loopback).
type BenchCmd struct {
	Which []string `arg:"" optional:"" enum:"ingest,read,match,detect,federation,all" help:"Benchmarks to run: ingest, read, match, detect, federation or all (the default)."`
	// No environment variable: the benchmark writes to the store it is
	// given, so it never picks up the server's MITRA_STORE by accident.
	Store        string `help:"Store DSN to measure: 'sqlite:DIR' (with '?sync=normal' to compare), 'postgres://...'; a new SQLite store in a temporary directory when empty. The benchmark adds and then removes a collection and a user of its own."`
	Mirror       string `help:"Store DSN of the receiving server of federation (as --store; a new SQLite store in a temporary directory when empty). It must not be the --store database."`
	Objects      int    `default:"1000000" help:"Indicators to ingest (and to mirror, for federation)."`
	FeedPage     int    `default:"10000" help:"Change-feed page size of the federation pull link (10000: what mitra serve asks)."`
	CPUProfile   string `name:"cpu-profile" type:"path" help:"Write a pprof CPU profile of the federation pull (not of the filling of the source), or of the ingest when federation is not run, to this file."`
	Step         int    `default:"100000" help:"Objects per point of the ingest curve."`
	Envelope     int    `default:"500" help:"Objects per POST."`
	Clients      int    `default:"4" help:"Concurrent ingest clients."`
	Indicators   int    `default:"100000" help:"Indicators loaded by match and detect."`
	Observations int    `default:"1000000" help:"Observations matched by match."`
	Lines        int    `default:"1000000" help:"Zeek DNS log lines read by detect."`
}

// Run implements the command.
func (c *BenchCmd) Run(ctx context.Context, e *env) error {
	which := c.Which
	if len(which) == 0 {
		which = []string{"all"}
	}
	tmp, err := os.MkdirTemp("", "mitra-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	dsn := c.Store
	if dsn == "" {
		dsn = "sqlite:"
	}
	st, err := openStore(ctx, dsn, tmp)
	if err != nil {
		return err
	}
	defer st.Close()
	mdsn := c.Mirror
	if mdsn == "" {
		mdsn = "sqlite:" + filepath.Join(tmp, "mirror")
	}
	if mdsn == dsn && mdsn != "sqlite:" {
		return fmt.Errorf("--mirror names the --store database: federation needs two")
	}
	mirror, err := openStore(ctx, mdsn, tmp)
	if err != nil {
		return err
	}
	defer mirror.Close()
	var profile io.Writer
	if c.CPUProfile != "" {
		f, err := os.Create(c.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		profile = f
	}
	fmt.Fprintf(e.stderr, "mitra bench on %s\n", redactDSN(dsn))
	res, err := bench.Run(ctx, bench.Config{
		Store: st, Mirror: mirror, FeedPage: c.FeedPage, CPUProfile: profile, Validator: newValidator(),
		Objects: c.Objects, Step: c.Step, Envelope: c.Envelope, Clients: c.Clients,
		Indicators: c.Indicators, Observations: c.Observations, Lines: c.Lines,
		TempDir: tmp, Progress: e.stderr, Scratch: c.Store == "" && c.Mirror == "",
	}, which...)
	if err != nil {
		return err
	}
	return bench.Print(e.stdout, res)
}
