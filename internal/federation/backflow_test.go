package federation_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/federation"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxii"
	"github.com/mitra-cert/mitra/internal/taxiiclient"
)

// TLP 2.0 marking-definition ids (access/tlp.go).
var tlpMarking = map[access.TLP]string{
	access.TLPClear:       "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
	access.TLPGreen:       "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
	access.TLPAmber:       "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
	access.TLPAmberStrict: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
	access.TLPRed:         "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}

// feedbackObj stores, in a local collection, a sighting (of ref) or an
// opinion (on ref) by org at a TLP level with recipients, as version n,
// and returns its id.
func feedbackObj(t *testing.T, st store.Store, col, typ string, i, n int, ref, org string, tlp access.TLP, recipients ...string) string {
	t.Helper()
	id := fmt.Sprintf("%s--00000000-0000-4000-9000-%012d", typ, i)
	mod := time.Date(2025, 2, 1, 0, 0, n, 0, time.UTC)
	body := map[string]any{"type": typ, "spec_version": "2.1", "id": id, "created": "2025-02-01T00:00:00.000Z",
		"modified": mod.Format("2006-01-02T15:04:05.000Z"), "created_by_ref": org, "object_marking_refs": []string{tlpMarking[tlp]}}
	if typ == "sighting" {
		body["sighting_of_ref"] = ref
		body["where_sighted_refs"] = []string{org}
		body["observed_data_refs"] = []string{"observed-data--00000000-0000-4000-9000-000000000001"}
		body["count"] = n + 1
	} else {
		body["object_refs"] = []string{ref}
		body["opinion"] = "strongly-agree"
		body["authors"] = []string{"Analyst Jane at " + org}
		body["explanation"] = "true positive"
	}
	if len(recipients) > 0 {
		body[access.RecipientsProperty] = recipients
	}
	raw, _ := json.Marshal(body)
	res, err := st.AddObjects(t.Context(), col, []store.Object{{ID: id, Type: typ, SpecVersion: "2.1", Version: mod, VersionRaw: mod.Format("2006-01-02T15:04:05.000Z"),
		Raw: raw, Submitter: org, Owner: org, TLP: int(tlp), Recipients: recipients}}, nil)
	if err != nil || res[0].Err != nil {
		t.Fatalf("add %s: %v %+v", id, err, res)
	}
	return id
}

// TestSightingsFlowBack: sightings and opinions of objects mirrored from a
// peer go back to the peer's collection over the pull link, only when the
// peer's organisation may read them (TLP, recipients, sharing groups), as
// the anonymous identity, with ids that are stable per peer and not the
// local ones; nothing names a local organisation or an original id.
func TestSightingsFlowBack(t *testing.T) {
	f := newFederated(t)
	ctx := t.Context()
	f.seed(t, 1, 3)
	orgA := f.local.org(t, "Energy Operator A")
	orgB := f.local.org(t, "Bank B")
	other := f.local.org(t, "Other Ministry")
	// lGroup is shared through a sharing group holding the peer's
	// organisation; lHidden lets the peer write (pull) but not read.
	g := &store.Group{Name: "regional", Orgs: []string{f.peerOrg, orgA}}
	if err := f.local.st.CreateGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	lGroup := f.local.collection(t, "group-mirror")
	lHidden := f.local.collection(t, "hidden-mirror")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.local.st.SetPartyGrant(ctx, lGroup.ID, store.GrantGroup, g.ID, true, true))
	must(f.local.st.SetPartyGrant(ctx, lHidden.ID, store.GrantOrg, f.peerOrg, false, true))
	for _, l := range []*store.Link{
		{ID: "remote-group", Peer: "remote", Direction: store.LinkPull, Local: lGroup.ID, Remote: f.rShared.ID, Interval: time.Minute},
		{ID: "remote-hidden", Peer: "remote", Direction: store.LinkPull, Local: lHidden.ID, Remote: f.rShared.ID, Interval: time.Minute},
	} {
		must(f.local.sq.AddLink(ctx, l))
	}
	f.sync(t, f.runner)
	ind1, ind2 := indicatorID(1), indicatorID(2)
	def, _ := f.local.st.DefaultOrganisation(ctx)
	localInd := addLocal(t, f.local.st, f.lMirror.ID, 900, def.ID, access.TLPGreen)

	// What may go, and what may not.
	goes := []string{
		feedbackObj(t, f.local.st, f.lMirror.ID, "sighting", 1, 0, ind1, orgA, access.TLPGreen),
		feedbackObj(t, f.local.st, f.lMirror.ID, "sighting", 2, 0, ind2, orgB, access.TLPClear),
		feedbackObj(t, f.local.st, f.lMirror.ID, "sighting", 3, 0, ind1, orgB, access.TLPAmberStrict, f.peerOrg),
		feedbackObj(t, f.local.st, f.lMirror.ID, "sighting", 4, 0, ind2, orgA, access.TLPRed, f.peerOrg, other),
		feedbackObj(t, f.local.st, f.lMirror.ID, "opinion", 5, 0, ind1, orgA, access.TLPAmber),
		feedbackObj(t, f.local.st, lGroup.ID, "sighting", 6, 0, ind1, orgA, access.TLPGreen),
	}
	stays := []string{
		feedbackObj(t, f.local.st, f.lMirror.ID, "sighting", 11, 0, ind1, orgA, access.TLPRed),
		feedbackObj(t, f.local.st, f.lMirror.ID, "sighting", 12, 0, ind2, orgB, access.TLPAmberStrict, other),
		feedbackObj(t, f.local.st, f.lMirror.ID, "opinion", 13, 0, ind1, orgB, access.TLPRed, other),
		feedbackObj(t, f.local.st, lHidden.ID, "sighting", 14, 0, ind1, orgA, access.TLPClear),
		// Not about the peer's objects: not feedback to it.
		feedbackObj(t, f.local.st, f.lMirror.ID, "sighting", 15, 0, localInd, orgA, access.TLPGreen),
	}
	res := f.sync(t, f.runner)
	var back int
	for _, r := range res {
		back += r.Back.Succeeded
	}
	if back != len(goes) {
		t.Fatalf("sent back %d, want %d", back, len(goes))
	}

	remote := func() map[string]json.RawMessage {
		out := map[string]json.RawMessage{}
		page, err := f.remote.st.QueryObjects(ctx, f.rShared.ID, store.Query{Types: []string{"sighting", "opinion"}, WithBody: true, Versions: store.VersionFilter{All: true}})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Entries {
			out[e.ID+"@"+e.VersionRaw] = e.Raw
		}
		return out
	}
	got := remote()
	if len(got) != len(goes) {
		t.Fatalf("the peer holds %d sightings and opinions, want %d: %v", len(got), len(goes), keys(got))
	}
	// Nothing names a local organisation, an original id, or an author.
	secrets := append([]string{orgA, orgB, other, def.ID, "Energy Operator A", "Bank B", "Analyst Jane", "observed-data--"}, goes...)
	secrets = append(secrets, stays...)
	for k, raw := range got {
		for _, s := range secrets {
			if bytes.Contains(raw, []byte(s)) || strings.Contains(k, s) {
				t.Errorf("the peer's copy %s reveals %q: %s", k, s, raw)
			}
		}
		var o struct {
			CreatedBy string   `json:"created_by_ref"`
			Where     []string `json:"where_sighted_refs"`
			Type      string   `json:"type"`
		}
		_ = json.Unmarshal(raw, &o)
		if o.CreatedBy != access.AnonymousIdentity || o.Type == "sighting" && (len(o.Where) != 1 || o.Where[0] != access.AnonymousIdentity) {
			t.Errorf("the peer's copy %s is not anonymous: %s", k, raw)
		}
	}

	// A new version keeps its one id at the peer; running again sends
	// nothing new.
	feedbackObj(t, f.local.st, f.lMirror.ID, "sighting", 1, 1, ind1, orgA, access.TLPGreen)
	f.sync(t, f.runner)
	after := remote()
	if len(after) != len(goes)+1 {
		t.Fatalf("after a new version the peer holds %d, want %d", len(after), len(goes)+1)
	}
	ids := map[string]int{}
	for k := range after {
		id, _, _ := strings.Cut(k, "@")
		ids[id]++
	}
	if len(ids) != len(goes) {
		t.Errorf("the peer holds %d ids for %d sightings and opinions: %v", len(ids), len(goes), ids)
	}

	// A push link sends the same anonymous copy (the same id), never the
	// original: a sighting of the peer's object in the pushed collection.
	pushed := feedbackObj(t, f.local.st, f.lOut.ID, "sighting", 21, 0, ind1, orgA, access.TLPGreen)
	f.sync(t, f.runner)
	page, err := f.remote.st.QueryObjects(ctx, f.rInbox.ID, store.Query{Types: []string{"sighting"}, WithBody: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != 1 || page.Entries[0].ID == pushed || bytes.Contains(page.Entries[0].Raw, []byte(orgA)) {
		t.Errorf("pushed sighting of the peer's object: %+v", page.Entries)
	}

	// The peer reading the local collection itself (its change feed, its
	// objects) gets the same anonymous copies, under the same ids.
	srv := taxii.NewServer(taxii.Config{Store: f.local.st, Auth: access.NewAuthenticator(f.local.st, nil), Validator: &stix.Validator{},
		Outgoing: (&federation.PeerReads{Store: f.local.sq}).Rewrite})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	f.local.user(t, "peer-reader", access.RoleReadOnly, f.peerOrg)
	must(f.local.st.SetPartyGrant(ctx, f.lMirror.ID, store.GrantOrg, f.peerOrg, true, true))
	cl, _ := taxiiclient.NewClient(ts.URL+"/api/", f.lMirror.ID)
	cl.User, cl.Password = "peer-reader", password
	feed, err := cl.Changes(ctx, "", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	sentIDs := map[string]bool{}
	for k := range after {
		id, _, _ := strings.Cut(k, "@")
		sentIDs[id] = true
	}
	seen := map[string]bool{}
	for _, c := range feed.Changes {
		// Sighting 15 is of a local indicator: not feedback, served as
		// any sighting is.
		if !strings.HasPrefix(c.ID, "sighting--") && !strings.HasPrefix(c.ID, "opinion--") || c.ID == stays[4] {
			continue
		}
		for _, s := range secrets {
			if strings.Contains(c.ID, s) || bytes.Contains(c.Object, []byte(s)) {
				t.Errorf("the peer's feed read of %s reveals %q: %s", c.ID, s, c.Object)
			}
		}
		var o struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(c.Object, &o)
		if o.ID != c.ID {
			t.Errorf("feed change id %s, object id %s", c.ID, o.ID)
		}
		if sentIDs[c.ID] {
			seen[c.ID] = true
		}
	}
	// Sightings 1, 2, 3, 4 and the opinion 5 of lMirror, and sighting 6
	// of the group collection, which the pull link brought back from the
	// peer into lMirror (the copies under the same ids).
	if len(seen) != 6 {
		t.Errorf("the peer's feed read shows %d of the sent ids, want 6: %v", len(seen), seen)
	}
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
