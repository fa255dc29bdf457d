package federation_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/federation"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxiiclient"
)

// linkOf is the stored link id of the peer "remote".
func linkOf(t *testing.T, st store.Peers, id string) *store.Link {
	t.Helper()
	ls, err := st.Links(t.Context(), "remote")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.ID == id {
			return l
		}
	}
	t.Fatalf("no link %s", id)
	return nil
}

// TestLinkLagObjects: a pull link cut mid-feed records how many of the
// peer's changes it has not applied (the feed's head minus its position),
// and zero once it caught up; a push link's lag counts the local objects
// the peer may read that it has not sent yet, and only those.
func TestLinkLagObjects(t *testing.T) {
	f := newFederated(t)
	f.seed(t, 1, 20)
	reg := prometheus.NewRegistry()
	f.runner.Metrics = federation.NewMetrics(reg)
	f.runner.FeedPageLimit = 4
	cut := true
	f.runner.Configure = func(cl *taxiiclient.Client) {
		if cut {
			cl.HTTP.Transport = &cutFeed{next: cl.HTTP.Transport, n: 3} // the probe and two pages
			cl.Sleep = func(ctx context.Context, d time.Duration) error { return errors.New("no retry in this test") }
		}
	}
	if _, err := f.runner.SyncPeer(t.Context(), "remote"); err != nil {
		t.Fatal(err)
	}
	if l := linkOf(t, f.local.sq, "remote-in"); l.LagObjects != 12 {
		t.Errorf("pull lag after a cut run: %d objects, want 12 (20 changes, 8 applied)", l.LagObjects)
	}
	if g := lagGauge(t, reg, "remote-in"); g != 12 {
		t.Errorf("lag gauge after a cut run: %v, want 12", g)
	}
	cut = false

	def, _ := f.local.st.DefaultOrganisation(t.Context())
	lp := linkOf(t, f.local.sq, "remote-out")
	p, _ := f.local.sq.GetPeer(t.Context(), "remote")
	for i := 101; i <= 105; i++ {
		addLocal(t, f.local.st, f.lOut.ID, i, def.ID, access.TLPGreen)
	}
	addLocal(t, f.local.st, f.lOut.ID, 106, def.ID, access.TLPRed)      // the peer may not read it
	addLocal(t, f.local.st, f.lOut.ID, 107, f.peerOrg, access.TLPGreen) // came from the peer
	if n, err := federation.PushLag(t.Context(), f.local.sq, p, lp); err != nil || n != 5 {
		t.Errorf("push lag before the run: %d, %v; want 5", n, err)
	}
	f.sync(t, f.runner)
	for _, id := range []string{"remote-in", "remote-out"} {
		if l := linkOf(t, f.local.sq, id); l.LagObjects != 0 {
			t.Errorf("link %s lag after catching up: %d, want 0", id, l.LagObjects)
		}
	}
	if n, err := federation.PushLag(t.Context(), f.local.sq, p, lp); err != nil || n != 0 {
		t.Errorf("push lag after the run: %d, %v; want 0", n, err)
	}
	if g := lagGauge(t, reg, "remote-in"); g != 0 {
		t.Errorf("lag gauge after catching up: %v, want 0", g)
	}
}

// lagGauge is the link's mitra_federation_link_lag_objects (-1 when absent).
func lagGauge(t *testing.T, reg *prometheus.Registry, link string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "mitra_federation_link_lag_objects" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "link" && l.GetValue() == link {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}
