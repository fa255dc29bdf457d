package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/pprof"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/federation"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxii"
	"github.com/mitra-cert/mitra/internal/taxiiclient"
)

// Federation mirrors cfg.Objects indicators from one Mitra to another
// over loopback, end to end: the source is a TAXII server on cfg.Store
// (filled first by POSTs, not measured), serving its change feed; the
// mirror is a federation pull link on cfg.Mirror that follows the feed,
// checks every object as a TAXII POST would and stores it under the
// peer's organisation with its provenance. The row is the pull alone,
// until the mirror can search what it received (the source's index has
// caught up before it starts); its CPU time is the whole process's (both
// servers and the client).
func Federation(ctx context.Context, cfg Config) (Row, error) {
	cfg.defaults()
	if cfg.Store == nil || cfg.Mirror == nil {
		return Row{}, errors.New("federation needs a source and a mirror store")
	}
	src, err := startServer(ctx, cfg)
	if err != nil {
		return Row{}, err
	}
	defer src.close(context.WithoutCancel(ctx))
	fmt.Fprintf(cfg.Progress, "federation: filling the source with %d objects\n", cfg.Objects)
	fill := cfg
	fill.Step, fill.Progress = max(cfg.Objects/4, 1), io.Discard
	if _, _, err := src.ingest(ctx, fill, envelopeSources(fill)); err != nil {
		return Row{}, fmt.Errorf("federation: fill the source: %w", err)
	}

	dst := cfg.Mirror
	org := &store.Organisation{Name: "bench source " + uuid.NewString()[:8]}
	if err := dst.CreateOrganisation(ctx, org); err != nil {
		return Row{}, fmt.Errorf("federation: organisation: %w", err)
	}
	col := &store.Collection{Title: "mitra bench mirror " + time.Now().UTC().Format(time.RFC3339)}
	if err := dst.CreateCollection(ctx, col); err != nil {
		return Row{}, fmt.Errorf("federation: mirror collection: %w", err)
	}
	peer := &store.Peer{Name: "bench-" + uuid.NewString()[:8], URL: src.apiRoot(), Organisation: org.ID}
	if err := dst.CreatePeer(ctx, peer); err != nil {
		return Row{}, fmt.Errorf("federation: peer: %w", err)
	}
	cleanup := func() {
		if cfg.Scratch {
			return
		}
		c := context.WithoutCancel(ctx)
		dst.DeletePeer(c, peer.Name)
		dst.DeleteCollection(c, col.ID)
	}
	defer cleanup()
	if err := dst.SetPartyGrant(ctx, col.ID, store.GrantOrg, org.ID, true, true); err != nil {
		return Row{}, fmt.Errorf("federation: grant: %w", err)
	}
	link := &store.Link{ID: peer.Name + "-pull-1", Peer: peer.Name, Direction: store.LinkPull, Remote: src.col, Local: col.ID}
	if err := dst.AddLink(ctx, link); err != nil {
		return Row{}, fmt.Errorf("federation: link: %w", err)
	}
	check := taxii.NewServer(taxii.Config{Store: dst, Validator: cfg.Validator, Logger: slog.New(slog.DiscardHandler)}).Check
	r := &federation.Runner{Store: dst, Check: check, Holder: "mitra bench", FeedPageLimit: cfg.FeedPage,
		// The source's bearer token, as a peer's sealed one would be.
		Configure: func(cl *taxiiclient.Client) { cl.Token = src.token }}
	fmt.Fprintf(cfg.Progress, "federation: mirroring %d objects\n", cfg.Objects)
	if cfg.CPUProfile != nil {
		if err := pprof.StartCPUProfile(cfg.CPUProfile); err != nil {
			return Row{}, fmt.Errorf("federation: CPU profile: %w", err)
		}
	}
	c0 := CPUTime()
	start := time.Now()
	res := r.RunLink(ctx, peer, link)
	if res.Err == nil {
		res.Err = searchable(ctx, dst, col.ID)
	}
	el := time.Since(start)
	cpu := CPUTime() - c0
	if cfg.CPUProfile != nil {
		pprof.StopCPUProfile()
	}
	if res.Err != nil {
		return Row{}, fmt.Errorf("federation: pull: %w", res.Err)
	}
	if res.Pull.Added != cfg.Objects {
		return Row{}, fmt.Errorf("federation: %d objects mirrored, want %d (%d duplicates, %d refused)", res.Pull.Added, cfg.Objects, res.Pull.Duplicates, res.Pull.Refused)
	}
	return Row{Name: "federation", Count: res.Pull.Added, Unit: "objects", Time: el, CPU: cpu,
		Note: fmt.Sprintf("pull link following the change feed, pages of %d, %d commits", cfg.FeedPage, res.Pull.Pages)}, nil
}

// apiRoot is the server's API root URL.
func (s *server) apiRoot() string {
	return s.base + "/api/"
}
