package federation_test

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/federation"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/postgres"
	"github.com/mitra-cert/mitra/internal/store/postgres/pgtest"
	"github.com/mitra-cert/mitra/internal/taxii"
)

// TestPeerLinkTwoProcessesPostgres: two processes (two stores, two
// runners) on one PostgreSQL database run the same pull link at the same
// time, round after round: the lease lets one run it at a time, and every
// remote object is stored exactly once.
func TestPeerLinkTwoProcessesPostgres(t *testing.T) {
	dsn := pgtest.NewSchema(t)
	remote := newTLSNode(t)
	org := remote.org(t, "Local CERT")
	remote.user(t, "mirror", access.RoleRelay, org)
	rc := remote.collection(t, "shared", "mirror")
	var objs []json.RawMessage
	for i := 1; i <= 300; i++ {
		objs = append(objs, indicator(i, ""))
	}
	if st, err := remote.client(t, "mirror", rc.ID).Push(t.Context(), objs); err != nil || st.SuccessCount != 300 {
		t.Fatalf("seed: %+v %v", st, err)
	}
	open := func() *postgres.Store {
		st, err := postgres.Open(t.Context(), dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	s1, s2 := open(), open()
	peerOrg := &store.Organisation{Name: "Remote CERT"}
	if err := s1.CreateOrganisation(t.Context(), peerOrg); err != nil {
		t.Fatal(err)
	}
	mirror := &store.Collection{Title: "mirror", Alias: "mirror"}
	if err := s1.CreateCollection(t.Context(), mirror); err != nil {
		t.Fatal(err)
	}
	if err := s1.SetPartyGrant(t.Context(), mirror.ID, store.GrantOrg, peerOrg.ID, true, true); err != nil {
		t.Fatal(err)
	}
	sealer := testSealer(t)
	secret, _ := sealer.Seal("remote", federation.Credentials{Password: password})
	p := &store.Peer{Name: "remote", URL: remote.ts.URL + "/api/", Organisation: peerOrg.ID, User: "mirror", Secret: secret, CA: remote.ca}
	if err := s1.CreatePeer(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	l := &store.Link{ID: "remote-in", Peer: "remote", Direction: store.LinkPull, Local: mirror.ID, Remote: rc.ID}
	if err := s1.AddLink(t.Context(), l); err != nil {
		t.Fatal(err)
	}
	runner := func(st *postgres.Store, holder string) *federation.Runner {
		srv := taxii.NewServer(taxii.Config{Store: st, Auth: access.NewAuthenticator(st, nil), Validator: &stix.Validator{}})
		return &federation.Runner{Store: st, Sealer: sealer, Check: srv.Check, Holder: holder, LeaseTTL: time.Minute}
	}
	runners := []*federation.Runner{runner(s1, "process 1"), runner(s2, "process 2")}
	added := 0
	for round := 0; round < 3; round++ {
		var wg sync.WaitGroup
		results := make([]federation.LinkResult, 2)
		for i, r := range runners {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = r.RunLink(t.Context(), p, l)
			}()
		}
		wg.Wait()
		for _, res := range results {
			if res.Err != nil && !errors.Is(res.Err, federation.ErrLeaseHeld) && !errors.Is(res.Err, federation.ErrConcurrentPull) {
				t.Errorf("round %d: %v", round, res.Err)
			}
			added += res.Pull.Added
		}
	}
	if added != 300 {
		t.Errorf("added %d objects in all, want 300", added)
	}
	page, err := s2.QueryObjects(t.Context(), mirror.ID, store.Query{Versions: store.VersionFilter{All: true}, Limit: 1000})
	if err != nil || len(page.Entries) != 300 {
		t.Errorf("mirror holds %d versions, want 300 (%v)", len(page.Entries), err)
	}
}
