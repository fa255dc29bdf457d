package federation_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/federation"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/mitra-cert/mitra/internal/taxiiclient"
)

// versionOf is version n (from 1, a month apart) of indicator i.
func versionOf(n int) (time.Time, string) {
	v := time.Date(2025, time.Month(n), 1, 0, 0, 0, 0, time.UTC)
	return v, v.Format("2006-01-02T15:04:05.000Z")
}

// addVersion stores version n of indicator i in a local collection.
func addVersion(t *testing.T, st store.Store, col string, i, n int, submitter string, tlp access.TLP) string {
	t.Helper()
	v, raw := versionOf(n)
	body := strings.Replace(string(indicator(i, "")), `"modified":"2025-01-01T00:00:00.000Z"`, `"modified":"`+raw+`"`, 1)
	res, err := st.AddObjects(t.Context(), col, []store.Object{{ID: indicatorID(i), Type: "indicator", SpecVersion: "2.1", Version: v, VersionRaw: raw,
		Raw: []byte(body), Submitter: submitter, Owner: submitter, TLP: int(tlp)}}, nil)
	if err != nil || res[0].Err != nil {
		t.Fatalf("add %d v%d: %v %+v", i, n, err, res)
	}
	return indicatorID(i)
}

// versions lists the versions a collection holds of each object.
func versions(t *testing.T, st store.Store, col string) map[string][]string {
	t.Helper()
	page, err := st.QueryObjects(t.Context(), col, store.Query{Versions: store.VersionFilter{All: true}, Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, e := range page.Entries {
		out[e.ID] = append(out[e.ID], e.VersionRaw)
	}
	for _, vs := range out {
		slices.Sort(vs)
	}
	return out
}

func deleteLocal(t *testing.T, st store.Store, col, id string, vf store.VersionFilter) {
	t.Helper()
	if _, err := st.DeleteObject(t.Context(), col, id, store.Query{Versions: vf}); err != nil {
		t.Fatalf("delete %s: %v", id, err)
	}
}

// deleteLog records the DELETE requests a runner's clients send, and cuts
// the connection of every one after the first cutAfter (never when 0).
type deleteLog struct {
	next     http.RoundTripper
	cutAfter int

	mu   sync.Mutex
	reqs []string // "id|match[version]", and the raw URL of each
	urls []string
}

func (d *deleteLog) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodDelete {
		d.mu.Lock()
		if d.cutAfter > 0 && len(d.reqs) >= d.cutAfter {
			d.mu.Unlock()
			return nil, errors.New("connection cut")
		}
		parts := strings.Split(strings.TrimSuffix(r.URL.Path, "/"), "/")
		d.reqs = append(d.reqs, parts[len(parts)-1]+"|"+r.URL.Query().Get("match[version]"))
		d.urls = append(d.urls, r.URL.String())
		d.mu.Unlock()
	}
	return d.next.RoundTrip(r)
}

func (d *deleteLog) sent() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.reqs)
}

// record makes every client of r log its DELETEs in d (without retries
// when d cuts connections, so that a cut ends the run).
func (d *deleteLog) record(r *federation.Runner) {
	r.Configure = func(c *taxiiclient.Client) {
		if d.next == nil {
			d.next = c.HTTP.Transport
		}
		c.HTTP.Transport = d
		if d.cutAfter > 0 {
			c.Retry.Attempts = -1
		}
	}
}

// TestPushCarriesDeletions: objects pushed and then deleted here, whole
// or one version, are deleted at the remote (TAXII DELETE with
// match[version], once), which keeps everything else; a version deleted
// and stored again before the link ran stays there; peer show's count
// says how many deletions went.
func TestPushCarriesDeletions(t *testing.T) {
	f := newFederated(t)
	ctx := t.Context()
	def, _ := f.local.st.DefaultOrganisation(ctx)
	for i := 1; i <= 5; i++ {
		addVersion(t, f.local.st, f.lOut.ID, i, 1, def.ID, access.TLPGreen)
	}
	for _, i := range []int{2, 3} {
		addVersion(t, f.local.st, f.lOut.ID, i, 2, def.ID, access.TLPGreen)
	}
	f.sync(t, f.runner)
	_, v1 := versionOf(1)
	_, v2 := versionOf(2)
	if got := versions(t, f.remote.st, f.rInbox.ID); len(got) != 5 || len(got[indicatorID(2)]) != 2 || len(got[indicatorID(3)]) != 2 {
		t.Fatalf("the remote holds %v after the push", got)
	}

	deleteLocal(t, f.local.st, f.lOut.ID, indicatorID(1), store.VersionFilter{All: true})
	t1, _ := versionOf(1)
	t2, _ := versionOf(2)
	deleteLocal(t, f.local.st, f.lOut.ID, indicatorID(2), store.VersionFilter{Exact: []time.Time{t1}})
	deleteLocal(t, f.local.st, f.lOut.ID, indicatorID(3), store.VersionFilter{Exact: []time.Time{t2}})
	// Deleted and stored again before the link ran: not deleted there.
	deleteLocal(t, f.local.st, f.lOut.ID, indicatorID(4), store.VersionFilter{All: true})
	addVersion(t, f.local.st, f.lOut.ID, 4, 1, def.ID, access.TLPGreen)

	log := &deleteLog{}
	log.record(f.runner)
	res := f.sync(t, f.runner)
	if res[1].Push.Deleted != 3 {
		t.Errorf("the push link deleted %d versions, want 3", res[1].Push.Deleted)
	}
	wantReqs := []string{indicatorID(1) + "|" + v1, indicatorID(2) + "|" + v1, indicatorID(3) + "|" + v2}
	if got := log.sent(); !slices.Equal(got, wantReqs) {
		t.Errorf("DELETEs sent %q, want %q", got, wantReqs)
	}
	want := map[string][]string{indicatorID(2): {v2}, indicatorID(3): {v1}, indicatorID(4): {v1}, indicatorID(5): {v1}}
	if got := versions(t, f.remote.st, f.rInbox.ID); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the remote holds %v, want %v", got, want)
	}
	// Once sent, not again.
	res = f.sync(t, f.runner)
	if res[1].Push.Deleted != 0 || len(log.sent()) != 3 {
		t.Errorf("a second run deleted %d (%d requests in all)", res[1].Push.Deleted, len(log.sent()))
	}
	seq, sent, err := federation.PushDeletions(ctx, f.local.sq, f.lOut.ID, "remote-out")
	if err != nil || sent != 3 || seq == 0 {
		t.Errorf("stored deletions position %d, sent %d, %v; want 3 sent", seq, sent, err)
	}
}

// TestPushDeletionsResume: a push link cut part-way through its
// deletions, then run by a new runner on the reopened store (a restart or
// kill -9), resumes from the position stored after the last complete
// page: it sends again only the DELETEs of the cut page (answered 404 for
// those that went through, counted as done), and every deleted object is
// gone from the remote while the others stay.
func TestPushDeletionsResume(t *testing.T) {
	f := newFederated(t)
	ctx := t.Context()
	def, _ := f.local.st.DefaultOrganisation(ctx)
	for i := 1; i <= 12; i++ {
		addVersion(t, f.local.st, f.lOut.ID, i, 1, def.ID, access.TLPGreen)
	}
	f.sync(t, f.runner)
	for i := 1; i <= 10; i++ {
		deleteLocal(t, f.local.st, f.lOut.ID, indicatorID(i), store.VersionFilter{All: true})
	}
	f.runner.FeedPageLimit = 4
	cut := &deleteLog{cutAfter: 6} // the first page of 4, and 2 of the second
	cut.record(f.runner)
	p, _ := f.local.sq.GetPeer(ctx, "remote")
	out := linkOf(t, f.local.sq, "remote-out")
	if res := f.runner.RunLink(ctx, p, out); res.Err == nil || res.Push.Deleted != 6 {
		t.Fatalf("cut run: deleted %d, %v; want 6 and an error", res.Push.Deleted, res.Err)
	}
	if n := len(count(t, f.remote.st, f.rInbox.ID)); n != 6 {
		t.Fatalf("the remote holds %d after the cut, want 6", n)
	}
	if _, sent, err := federation.PushDeletions(ctx, f.local.sq, f.lOut.ID, "remote-out"); err != nil || sent != 4 {
		t.Errorf("after the cut the stored position counts %d sent (%v), want the first page's 4", sent, err)
	}

	f.local.st.Close()
	st, err := sqlite.Open(ctx, f.local.dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r2 := f.newRunner(st, testSealer(t))
	r2.FeedPageLimit = 4
	again := &deleteLog{}
	again.record(r2)
	res := r2.RunLink(ctx, p, out)
	if res.Err != nil || res.Push.Deleted != 6 || res.Push.Sent != 0 {
		t.Fatalf("resumed run: deleted %d, sent %d, %v; want the 6 DELETEs of the cut page on, nothing pushed", res.Push.Deleted, res.Push.Sent, res.Err)
	}
	var want []string
	for i := 5; i <= 10; i++ {
		want = append(want, indicatorID(i)+"|2025-01-01T00:00:00.000Z")
	}
	if got := again.sent(); !slices.Equal(got, want) {
		t.Errorf("resumed DELETEs %q, want %q", got, want)
	}
	if got := count(t, f.remote.st, f.rInbox.ID); len(got) != 2 || got[indicatorID(11)] != 1 || got[indicatorID(12)] != 1 {
		t.Errorf("the remote holds %v, want indicators 11 and 12", got)
	}
	if res := r2.RunLink(ctx, p, out); res.Err != nil || res.Push.Deleted != 0 {
		t.Errorf("a further run: deleted %d, %v", res.Push.Deleted, res.Err)
	}
	if _, sent, _ := federation.PushDeletions(ctx, st, f.lOut.ID, "remote-out"); sent != 10 {
		t.Errorf("%d deletions counted, want 10", sent)
	}
}

// TestPushDeletionsLeak: when everything in the pushed collection is
// deleted, DELETEs go for exactly what the peer received (under the ids it
// received: a sighting of its own object under its per-peer id), across
// several organisations, TLP levels, recipients and a sharing group;
// nothing the peer's organisation could not read, nothing it sent itself,
// and nothing of a collection it no longer reads (its sharing group
// removed) is named in any request.
func TestPushDeletionsLeak(t *testing.T) {
	f := newFederated(t)
	ctx := t.Context()
	st := f.local.sq
	a, b := f.local.org(t, "Org A"), f.local.org(t, "Org B")
	f.seed(t, 1, 1) // the peer's indicator 1, pulled: sightings of it are feedback
	f.sync(t, f.runner)

	hidden := map[string]bool{}
	var all []string
	put := func(i int, sub string, tlp access.TLP, visible bool, rcpt ...string) {
		id := addLocal(t, st, f.lOut.ID, i, sub, tlp, rcpt...)
		all = append(all, id)
		if !visible {
			hidden[id] = true
		}
	}
	// Owned by A (addVersion records the owner), so that a sighting of it
	// is about no peer's object and goes under its own id.
	all = append(all, addVersion(t, st, f.lOut.ID, 101, 1, a, access.TLPClear))
	put(102, a, access.TLPGreen, true)
	put(103, b, access.TLPAmber, true)
	put(104, a, access.TLPAmberStrict, false)
	put(105, a, access.TLPRed, false)
	put(106, a, access.TLPRed, false, b)        // RED for another organisation
	put(107, b, access.TLPRed, true, f.peerOrg) // RED naming the peer
	put(108, a, access.TLPAmberStrict, true, f.peerOrg, b)
	put(109, f.peerOrg, access.TLPClear, false) // the peer's own: never pushed
	put(110, b, access.TLPUnresolved, false)    // unknown marking: its author only
	sight := func(i int, ref, org string, tlp access.TLP, visible bool, rcpt ...string) {
		id := feedbackObj(t, st, f.lOut.ID, "sighting", i, 0, ref, org, tlp, rcpt...)
		all = append(all, id)
		if !visible {
			hidden[id] = true
		}
	}
	sight(1, indicatorID(1), a, access.TLPGreen, true)                                             // of the peer's object: per-peer id
	sight(2, indicatorID(1), a, access.TLPRed, false, b)                                           // RED, not for the peer
	plain := feedbackObj(t, st, f.lOut.ID, "sighting", 3, 0, indicatorID(101), b, access.TLPGreen) // of a local object: its own id
	all = append(all, plain)
	sight(4, indicatorID(101), b, access.TLPAmberStrict, false)
	// A collection shared through a group the peer is in, until the group
	// is removed.
	in := &store.Group{Name: "in", Orgs: []string{f.peerOrg, a}}
	if err := st.CreateGroup(ctx, in); err != nil {
		t.Fatal(err)
	}
	grouped := f.local.collection(t, "grouped")
	if err := st.SetPartyGrant(ctx, grouped.ID, store.GrantGroup, in.ID, true, false); err != nil {
		t.Fatal(err)
	}
	groupedID := addLocal(t, st, grouped.ID, 160, a, access.TLPGreen)
	if err := st.AddLink(ctx, &store.Link{ID: "grouped-out", Peer: "remote", Direction: store.LinkPush, Local: grouped.ID, Remote: f.rInbox.ID}); err != nil {
		t.Fatal(err)
	}
	f.sync(t, f.runner)

	// What the peer received, under the ids it received.
	received := map[string]bool{}
	for id := range count(t, f.remote.st, f.rInbox.ID) {
		received[id] = true
	}
	if !received[groupedID] || len(received) != len(all)-len(hidden)+1 {
		t.Fatalf("the remote received %d objects, want %d and the grouped one: %v", len(received), len(all)-len(hidden), received)
	}
	for id := range hidden {
		if received[id] {
			t.Fatalf("hidden %s was pushed", id)
		}
	}
	if !received[plain] {
		t.Fatalf("the sighting of a local object was not pushed under its own id")
	}

	// Everything deleted here, feedback as the TAXII DELETE does it (its
	// mark left in the deleting transaction); the group removed.
	pr := &federation.PeerReads{Store: st}
	for _, id := range all {
		err := st.Update(ctx, f.lOut.ID, func(ctx context.Context, tx store.Tx) error {
			if err := pr.MarkDeleted(ctx, tx, f.lOut, id); err != nil {
				return err
			}
			_, err := tx.Delete(ctx, id, store.Query{Versions: store.VersionFilter{All: true}})
			return err
		})
		if err != nil {
			t.Fatalf("delete %s: %v", id, err)
		}
	}
	if err := st.DeleteGroup(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	deleteLocal(t, st, grouped.ID, groupedID, store.VersionFilter{All: true})

	log := &deleteLog{}
	log.record(f.runner)
	res, err := f.runner.SyncPeer(ctx, "remote")
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range res {
		if x.Link.ID == "grouped-out" {
			if x.Err == nil || x.Push.Deleted != 0 {
				t.Errorf("link of a collection the peer no longer reads: %+v %v", x.Push, x.Err)
			}
		} else if x.Err != nil {
			t.Errorf("link %s: %v", x.Link.ID, x.Err)
		}
	}
	sentIDs := map[string]bool{}
	for _, r := range log.sent() {
		id, _, _ := strings.Cut(r, "|")
		if sentIDs[id] {
			t.Errorf("%s deleted twice", id)
		}
		sentIDs[id] = true
	}
	if !sentIDs[plain] {
		t.Errorf("the sighting of a local object was not deleted under its own id")
	}
	for id := range received {
		if id != groupedID && !sentIDs[id] {
			t.Errorf("%s was pushed, deleted here, and not deleted at the peer", id)
		}
	}
	for id := range sentIDs {
		if !received[id] || id == groupedID {
			t.Errorf("DELETE of %s, which the peer did not receive from this link", id)
		}
	}
	for _, u := range log.urls {
		raw, _ := url.PathUnescape(u)
		for id := range hidden {
			if strings.Contains(raw, id) {
				t.Errorf("a DELETE names hidden %s: %s", id, raw)
			}
		}
		if strings.Contains(raw, groupedID) {
			t.Errorf("a DELETE names %s of a collection the peer no longer reads", groupedID)
		}
	}
	if got := count(t, f.remote.st, f.rInbox.ID); len(got) != 1 || got[groupedID] != 1 {
		t.Errorf("the remote holds %v, want only the grouped object", got)
	}
}
