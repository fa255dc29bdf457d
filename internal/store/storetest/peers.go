package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
)

// testPeers: peers and links are kept with their status; rejections and
// provenance are written in Update transactions (rolled back with them);
// of many processes taking one lease at once exactly one wins, and the
// lease passes on only when it expired or was released.
func testPeers(t *testing.T, s store.Store) {
	ctx := context.Background()
	cid := newCollection(t, s)
	org := &store.Organisation{Name: "Peer org"}
	if err := s.CreateOrganisation(ctx, org); err != nil {
		t.Fatal(err)
	}
	if err := s.CreatePeer(ctx, &store.Peer{Name: "p", URL: "https://x/api/", Organisation: "identity--missing"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("peer of a missing organisation: %v", err)
	}
	p := &store.Peer{Name: "p", URL: "https://x/api/", Organisation: org.ID, User: "u", Secret: []byte{1, 0, 2}, CA: "ca", Cert: "cert"}
	if err := s.CreatePeer(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := s.CreatePeer(ctx, p); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second peer of one name: %v", err)
	}
	got, err := s.GetPeer(ctx, "p")
	if err != nil || got.URL != p.URL || string(got.Secret) != string(p.Secret) || got.CA != "ca" || got.Cert != "cert" || got.Created.IsZero() {
		t.Errorf("GetPeer = %+v, %v", got, err)
	}
	if err := s.AddLink(ctx, &store.Link{ID: "l", Peer: "p", Direction: "sideways", Local: cid, Remote: "r"}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("link with a bad direction: %v", err)
	}
	if err := s.AddLink(ctx, &store.Link{ID: "l", Peer: "p", Direction: store.LinkPull, Local: "missing", Remote: "r"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("link to a missing collection: %v", err)
	}
	if err := s.AddLink(ctx, &store.Link{ID: "l", Peer: "p", Direction: store.LinkPull, Local: cid, Remote: "r", Interval: time.Minute}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := s.SetLinkStatus(ctx, "l", store.LinkStatus{At: at, Synced: 5}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetLinkStatus(ctx, "l", store.LinkStatus{At: at.Add(time.Minute), Err: "boom", Synced: 2}); err != nil {
		t.Fatal(err)
	}
	links, err := s.Links(ctx, "p")
	if err != nil || len(links) != 1 || !links[0].LastSuccess.Equal(at) || links[0].LastError != "boom" || links[0].Synced != 7 || links[0].Interval != time.Minute {
		t.Errorf("Links = %+v, %v", links, err)
	}
	// Rejections and provenance commit or roll back with the transaction.
	rec := func(id string, fail bool) error {
		return s.Update(ctx, cid, func(ctx context.Context, tx store.Tx) error {
			ftx, ok := tx.(store.FederationTx)
			if !ok {
				return fmt.Errorf("the Tx of Update is not a FederationTx")
			}
			if err := ftx.RecordProvenance(ctx, []store.Provenance{{ObjectID: id, Version: "v1", Link: "l", Peer: "p", Received: at}}); err != nil {
				return err
			}
			if err := ftx.RecordRejections(ctx, []store.Rejection{{Link: "l", Peer: "p", Kind: "conflict", ObjectID: id, Version: "v1", Reason: "r", At: at}}); err != nil {
				return err
			}
			if fail {
				return errors.New("rolled back")
			}
			return nil
		})
	}
	if err := rec("indicator--a", false); err != nil {
		t.Fatal(err)
	}
	if err := rec("indicator--b", true); err == nil {
		t.Fatal("rollback not reported")
	}
	if err := rec("indicator--a", false); err != nil { // provenance again: kept once
		t.Fatal(err)
	}
	prov, err := s.ObjectProvenance(ctx, "indicator--a")
	if err != nil || len(prov) != 1 || prov[0].Link != "l" || !prov[0].Received.Equal(at) {
		t.Errorf("provenance = %+v, %v", prov, err)
	}
	if prov, _ := s.ObjectProvenance(ctx, "indicator--b"); len(prov) != 0 {
		t.Errorf("rolled-back provenance kept: %+v", prov)
	}
	rej, err := s.Rejections(ctx, "p", 10)
	if err != nil || len(rej) != 2 || rej[0].ObjectID != "indicator--a" || rej[0].Kind != "conflict" {
		t.Errorf("rejections = %+v, %v", rej, err)
	}

	// Many rows at once (several statements): every row kept once, the
	// first arrival of each.
	many := make([]store.Provenance, 450)
	for i := range many {
		many[i] = store.Provenance{ObjectID: fmt.Sprintf("indicator--m%03d", i), Version: "v1", Link: "l", Peer: "p", Received: at}
	}
	for round := range 2 {
		err := s.Update(ctx, cid, func(ctx context.Context, tx store.Tx) error {
			return tx.(store.FederationTx).RecordProvenance(ctx, many)
		})
		if err != nil {
			t.Fatal(err)
		}
		for i := range many {
			many[i].Received = at.Add(time.Duration(round+1) * time.Hour)
		}
	}
	for _, i := range []int{0, 199, 200, 399, 400, 449} {
		prov, err := s.ObjectProvenance(ctx, many[i].ObjectID)
		if err != nil || len(prov) != 1 || !prov[0].Received.Equal(at) {
			t.Errorf("provenance of row %d = %+v, %v", i, prov, err)
		}
	}

	if n, err := s.PruneRejections(ctx, at); err != nil || n != 0 {
		t.Errorf("prune nothing older: %d, %v", n, err)
	}
	if n, err := s.PruneRejections(ctx, at.Add(time.Second)); err != nil || n != 2 {
		t.Errorf("prune: %d, %v", n, err)
	}

	// Leases: 8 holders at once, one winner.
	var wg sync.WaitGroup
	wins := make(chan string, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := fmt.Sprintf("h%d", i)
			ok, err := s.TakeLease(ctx, "l", h, time.Hour)
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins <- h
			}
		}()
	}
	wg.Wait()
	close(wins)
	var winners []string
	for h := range wins {
		winners = append(winners, h)
	}
	if len(winners) != 1 {
		t.Fatalf("lease winners = %v, want exactly one", winners)
	}
	w := winners[0]
	if ok, _ := s.TakeLease(ctx, "l", w, time.Hour); !ok {
		t.Error("the holder could not renew its lease")
	}
	if ok, _ := s.TakeLease(ctx, "l", "other", time.Hour); ok {
		t.Error("a live lease was taken by another holder")
	}
	if err := s.ReleaseLease(ctx, "l", w); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.TakeLease(ctx, "l", "other", -time.Second); !ok { // expired at once
		t.Error("a released lease was not free")
	}
	if ok, _ := s.TakeLease(ctx, "l", "third", time.Hour); !ok {
		t.Error("an expired lease was not taken over")
	}

	if err := s.DeletePeer(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if links, _ := s.Links(ctx, "p"); len(links) != 0 {
		t.Errorf("links of a removed peer: %+v", links)
	}
	if err := s.DeletePeer(ctx, "p"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
}
