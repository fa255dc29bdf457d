package federation_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/federation"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxii"
)

// TestFeedbackDeletionsFlowBack: a sighting of a peer's object that went
// back to the peer anonymously (over the pull link's send-back, or a push
// link) and is then deleted here is deleted at the peer too, under its
// per-peer id; the deletion of a sighting of a local object, never sent
// anonymously, sends nothing.
func TestFeedbackDeletionsFlowBack(t *testing.T) {
	f := newFederated(t)
	ctx := t.Context()
	f.seed(t, 1, 2)
	f.sync(t, f.runner)
	orgA := f.local.org(t, "Energy Operator A")
	for _, c := range []string{f.lMirror.ID, f.lOut.ID} {
		if err := f.local.st.SetPartyGrant(ctx, c, store.GrantOrg, orgA, true, true); err != nil {
			t.Fatal(err)
		}
	}
	f.local.user(t, "operator", access.RoleAnalyst, orgA)
	back := feedbackObj(t, f.local.st, f.lMirror.ID, "sighting", 1, 0, indicatorID(1), orgA, access.TLPGreen)
	pushed := feedbackObj(t, f.local.st, f.lOut.ID, "opinion", 2, 0, indicatorID(2), orgA, access.TLPGreen)
	f.sync(t, f.runner)
	count := func(col string) int {
		t.Helper()
		page, err := f.remote.st.QueryObjects(ctx, col, store.Query{Types: []string{"sighting", "opinion"}, Versions: store.VersionFilter{All: true}})
		if err != nil {
			t.Fatal(err)
		}
		return len(page.Entries)
	}
	if count(f.rShared.ID) != 1 || count(f.rInbox.ID) != 1 {
		t.Fatalf("before the deletions the peer holds %d sent back and %d pushed, want 1 and 1", count(f.rShared.ID), count(f.rInbox.ID))
	}

	// Deleted here, through TAXII as mitra serve wires it.
	pr := &federation.PeerReads{Store: f.local.sq}
	srv := taxii.NewServer(taxii.Config{Store: f.local.st, Auth: access.NewAuthenticator(f.local.st, nil), Validator: &stix.Validator{},
		Outgoing: pr.Rewrite, IncomingIDs: pr.LocalIDs, BeforeDelete: pr.MarkDeleted})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	del := func(col, id string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, ts.URL+"/api/collections/"+col+"/objects/"+id+"/", nil)
		req.SetBasicAuth("operator", password)
		req.Header.Set("Accept", taxii.MediaType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("delete %s: %d", id, resp.StatusCode)
		}
	}
	del(f.lMirror.ID, back)
	del(f.lOut.ID, pushed)
	// A sighting of a local object, deleted: nothing to send.
	def, _ := f.local.st.DefaultOrganisation(ctx)
	localInd := addLocal(t, f.local.st, f.lMirror.ID, 900, def.ID, access.TLPGreen)
	plain := feedbackObj(t, f.local.st, f.lMirror.ID, "sighting", 3, 0, localInd, orgA, access.TLPGreen)
	del(f.lMirror.ID, plain)

	res := f.sync(t, f.runner)
	deleted := 0
	for _, r := range res {
		deleted += r.Back.Deleted
	}
	if deleted != 1 {
		t.Errorf("the pull link's send-back sent %d deletions, want 1", deleted)
	}
	if n := count(f.rShared.ID); n != 0 {
		t.Errorf("the peer still holds %d sightings sent back and deleted here", n)
	}
	if n := count(f.rInbox.ID); n != 0 {
		t.Errorf("the peer still holds %d opinions pushed and deleted here", n)
	}
	// Once sent, not again.
	res = f.sync(t, f.runner)
	for _, r := range res {
		if r.Back.Deleted != 0 || r.Err != nil {
			t.Errorf("second run: %+v", r)
		}
	}
}

// TestEarlySightingWaitsForItsTarget: a sighting recorded before the
// peer's object it names has arrived is not passed over, nor sent as an
// ordinary sighting: it waits, and goes back anonymously once the object
// arrives from the peer. One of an object that never arrives stays here.
func TestEarlySightingWaitsForItsTarget(t *testing.T) {
	f := newFederated(t)
	ctx := t.Context()
	f.seed(t, 1, 1)
	f.sync(t, f.runner)
	orgA := f.local.org(t, "Energy Operator A")
	early := feedbackObj(t, f.local.st, f.lMirror.ID, "sighting", 1, 0, indicatorID(2), orgA, access.TLPGreen)
	never := feedbackObj(t, f.local.st, f.lMirror.ID, "sighting", 2, 0, indicatorID(99), orgA, access.TLPGreen)
	// A later sighting moves the position past both.
	feedbackObj(t, f.local.st, f.lMirror.ID, "sighting", 3, 0, indicatorID(1), orgA, access.TLPGreen)
	remote := func() []store.Entry {
		t.Helper()
		page, err := f.remote.st.QueryObjects(ctx, f.rShared.ID, store.Query{Types: []string{"sighting"}, WithBody: true})
		if err != nil {
			t.Fatal(err)
		}
		return page.Entries
	}
	res := f.sync(t, f.runner)
	if got := remote(); len(got) != 1 {
		t.Fatalf("before its target arrived the peer holds %d sightings, want 1 (of indicator 1): %+v", len(got), got)
	}
	pending := 0
	for _, r := range res {
		pending += r.Back.Pending
	}
	if pending != 2 {
		t.Errorf("pending %d, want 2", pending)
	}
	// The peer publishes indicator 2: the next run pulls it, then sends
	// the early sighting back, anonymously, under its per-peer id.
	f.seed(t, 2, 2)
	f.sync(t, f.runner)
	got := remote()
	if len(got) != 2 {
		t.Fatalf("after its target arrived the peer holds %d sightings, want 2", len(got))
	}
	for _, e := range got {
		if e.ID == early || e.ID == never || strings.Contains(string(e.Raw), orgA) {
			t.Errorf("the peer's copy names a local id or organisation: %s", e.Raw)
		}
	}
	res = f.sync(t, f.runner)
	for _, r := range res {
		if r.Back.Sent != 0 {
			t.Errorf("a further run sent %d again", r.Back.Sent)
		}
	}

	// A push link, and the peer reading the collection, get feedback of
	// unknown objects anonymously too: it cannot be taken back once it
	// turns out to be about the peer's object.
	pushed := feedbackObj(t, f.local.st, f.lOut.ID, "sighting", 4, 0, indicatorID(98), orgA, access.TLPGreen)
	f.sync(t, f.runner)
	page, err := f.remote.st.QueryObjects(ctx, f.rInbox.ID, store.Query{Types: []string{"sighting"}, WithBody: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != 1 || page.Entries[0].ID == pushed || strings.Contains(string(page.Entries[0].Raw), orgA) {
		t.Errorf("pushed sighting of an unknown object: %+v", page.Entries)
	}
	pr := &federation.PeerReads{Store: f.local.sq}
	entries, err := f.local.st.QueryObjects(ctx, f.lMirror.ID, store.Query{IDs: []string{never}, WithBody: true})
	if err != nil || len(entries.Entries) != 1 {
		t.Fatal(err)
	}
	reader := &access.Principal{User: "peer-reader", Organisation: f.peerOrg, Role: access.RoleReadOnly}
	if err := pr.Rewrite(ctx, reader, f.lMirror, entries.Entries); err != nil {
		t.Fatal(err)
	}
	if e := entries.Entries[0]; e.ID == never || strings.Contains(string(e.Raw), orgA) {
		t.Errorf("the peer reads a sighting of an unknown object as %s: %s", e.ID, e.Raw)
	}
}
