package federation_test

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/prometheus/client_golang/prometheus"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/federation"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/mitra-cert/mitra/internal/taxiiclient"
)

func indicatorID(i int) string { return "indicator--00000000-0000-4000-8000-" + pad12(i) }

func pad12(i int) string {
	s := strings.Repeat("0", 12) + itoa(i)
	return s[len(s)-12:]
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// revoked is a new version of indicator i, revoked.
func revoked(i int) json.RawMessage {
	return json.RawMessage(strings.Replace(string(indicator(i, `,"revoked":true`)), `"modified":"2025-01-01T00:00:00.000Z"`, `"modified":"2025-02-01T00:00:00.000Z"`, 1))
}

func (f *federated) seed(t *testing.T, from, to int) {
	t.Helper()
	var objs []json.RawMessage
	for i := from; i <= to; i++ {
		objs = append(objs, indicator(i, ""))
	}
	if st, err := f.remote.client(t, "author", f.rShared.ID).Push(t.Context(), objs); err != nil || st.SuccessCount != len(objs) {
		t.Fatalf("seed remote: %+v %v", st, err)
	}
}

func (f *federated) deleteRemote(t *testing.T, i int) {
	t.Helper()
	if _, err := f.remote.st.DeleteObject(t.Context(), f.rShared.ID, indicatorID(i), store.Query{}); err != nil {
		t.Fatalf("delete %d on the remote: %v", i, err)
	}
}

func (f *federated) mode(t *testing.T, st store.Updater) federation.FeedPosition {
	t.Helper()
	pos, err := federation.LinkMode(t.Context(), st, f.lMirror.ID, "remote-in")
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

// latestOf is the version served by default of id in the local mirror.
func latestOf(t *testing.T, st store.Store, col, id string) *store.Entry {
	t.Helper()
	page, err := st.QueryObjects(t.Context(), col, store.Query{IDs: []string{id}, WithBody: true, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) == 0 {
		return nil
	}
	return &page.Entries[0]
}

// TestFeedMirrorsDeletesAndRevocations: a pull link to a Mitra peer
// follows its change feed: a revocation and a delete on the remote reach
// the local mirror; a delete of an object whose local copy did not come
// from the peer is refused and recorded.
func TestFeedMirrorsDeletesAndRevocations(t *testing.T) {
	f := newFederated(t)
	f.seed(t, 1, 5)
	// Object 50 is the local default organisation's own copy.
	def, _ := f.local.st.DefaultOrganisation(t.Context())
	addLocal(t, f.local.st, f.lMirror.ID, 50, def.ID, access.TLPGreen)
	f.seed(t, 50, 50)
	res := f.sync(t, f.runner)
	if got := f.mode(t, f.local.sq); got.Mode != federation.ModeFeed || got.Seq == 0 {
		t.Fatalf("position after the first run = %+v, want feed mode with a position", got)
	}
	if res[0].Pull.Added != 5 {
		t.Fatalf("first run: %+v", res[0].Pull)
	}
	if st, err := f.remote.client(t, "author", f.rShared.ID).Push(t.Context(), []json.RawMessage{revoked(1)}); err != nil || st.SuccessCount != 1 {
		t.Fatalf("revoke: %+v %v", st, err)
	}
	f.deleteRemote(t, 2)
	f.deleteRemote(t, 50)
	reg := prometheus.NewRegistry()
	f.runner.Metrics = federation.NewMetrics(reg)
	res = f.sync(t, f.runner)
	if p := res[0].Pull; p.Added != 1 || p.Deleted != 1 || p.Refused != 1 {
		t.Errorf("second run: %+v, want 1 added (the revocation), 1 deleted, 1 refused (object 50)", p)
	}
	for result, want := range map[string]float64{"added": 1, "deleted": 1, "refused": 1} {
		if got := metric(t, reg, "mitra_federation_link_objects_total", "remote", "remote-in", result); got != want {
			t.Errorf("%s metric = %v, want %v", result, got, want)
		}
	}
	if e := latestOf(t, f.local.st, f.lMirror.ID, indicatorID(2)); e != nil {
		t.Errorf("object 2 deleted on the remote is still in the mirror")
	}
	e := latestOf(t, f.local.st, f.lMirror.ID, indicatorID(1))
	if e == nil || !strings.Contains(string(e.Raw), `"revoked":true`) {
		t.Errorf("object 1 revoked on the remote: local latest = %v", e)
	}
	if e := latestOf(t, f.local.st, f.lMirror.ID, indicatorID(50)); e == nil || e.Submitter != def.ID {
		t.Errorf("the local organisation's object 50 was deleted by the peer: %v", e)
	}
	rej, err := f.local.sq.Rejections(t.Context(), "remote", 10)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rej {
		found = found || r.ObjectID == indicatorID(50) && r.Kind == "ownership"
	}
	if !found {
		t.Errorf("rejections = %+v, want the refused delete of object 50", rej)
	}
	for id, n := range count(t, f.local.st, f.lMirror.ID) {
		if want := map[string]int{indicatorID(1): 2}[id]; want == 0 && n != 1 || want != 0 && n != want {
			t.Errorf("%s stored %d times", id, n)
		}
	}
}

// cutFeed fails feed requests after the first n.
type cutFeed struct {
	next http.RoundTripper
	n    int64
	seen atomic.Int64
}

func (c *cutFeed) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.URL.Path, "x-mitra-changes") && c.seen.Add(1) > c.n {
		return nil, errors.New("connection cut")
	}
	return c.next.RoundTrip(r)
}

// TestFeedResumes: a feed pull cut after a few pages, then run again by a
// new runner on the reopened store (a restart), applies every change once:
// no object added twice, every delete applied.
func TestFeedResumes(t *testing.T) {
	f := newFederated(t)
	f.seed(t, 1, 20)
	f.runner.FeedPageLimit = 4
	f.runner.Configure = func(cl *taxiiclient.Client) {
		cl.HTTP.Transport = &cutFeed{next: cl.HTTP.Transport, n: 3} // the probe and two pages
		cl.Sleep = func(ctx context.Context, d time.Duration) error { return errors.New("no retry in this test") }
	}
	res, err := f.runner.SyncPeer(t.Context(), "remote")
	if err != nil || res[0].Err == nil {
		t.Fatalf("cut run: %+v %v, want an error", res, err)
	}
	first := res[0].Pull
	if first.Added != 8 {
		t.Fatalf("cut run: %+v, want the 8 objects of two pages", first)
	}
	f.local.st.Close()
	st, err := sqlite.Open(t.Context(), f.local.dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// Deleted on the remote: 3 is mirrored already, 15 not yet.
	for _, i := range []int{3, 9, 15} {
		f.deleteRemote(t, i)
	}
	r2 := f.newRunner(st, testSealer(t))
	r2.FeedPageLimit = 4
	res = f.sync(t, r2)
	p := res[0].Pull
	// The feed no longer shows the adds of deleted objects: 9 and 15 are
	// never added, 3 is added then deleted.
	if p.Duplicates != 0 || first.Added+p.Added != 18 || p.Deleted != 1 {
		t.Errorf("resumed run: %+v after %+v: want 18 added in all, object 3 deleted, no duplicate", p, first)
	}
	got := count(t, st, f.lMirror.ID)
	if len(got) != 17 {
		t.Errorf("mirror has %d objects, want 17", len(got))
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("%s stored %d times", id, n)
		}
	}
	for _, i := range []int{3, 9, 15} {
		if got[indicatorID(i)] != 0 {
			t.Errorf("object %d deleted on the remote is in the mirror", i)
		}
	}
}

// TestFeedResync: when the remote pruned the changes after the link's
// position (410), the link reads the remote collection whole, records the
// resynchronisation, continues from the remote's latest change, and the
// mirror converges.
func TestFeedResync(t *testing.T) {
	f := newFederated(t)
	f.seed(t, 1, 5)
	// Object 50 is the local default organisation's, not on the remote:
	// the resync must leave it.
	def, _ := f.local.st.DefaultOrganisation(t.Context())
	addLocal(t, f.local.st, f.lMirror.ID, 50, def.ID, access.TLPGreen)
	f.sync(t, f.runner)
	f.seed(t, 6, 10)
	f.deleteRemote(t, 4)
	if _, err := f.remote.st.PruneChanges(t.Context(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	f.seed(t, 11, 12)
	reg := prometheus.NewRegistry()
	f.runner.Metrics = federation.NewMetrics(reg)
	res := f.sync(t, f.runner)
	if p := res[0].Pull; p.Resyncs != 1 || p.Added != 7 || p.Deleted != 1 {
		t.Errorf("run after the prune: %+v, want one resync adding objects 6 to 12 and deleting 4", p)
	}
	if got := metric(t, reg, "mitra_federation_link_resyncs_total", "remote", "remote-in", ""); got != 1 {
		t.Errorf("resyncs metric = %v, want 1", got)
	}
	if e := latestOf(t, f.local.st, f.lMirror.ID, indicatorID(50)); e == nil {
		t.Errorf("the resync deleted the local organisation's object 50")
	}
	pos := f.mode(t, f.local.sq)
	if pos.Resyncs != 1 || pos.LastResync.IsZero() || pos.Resync != 0 || pos.Mode != federation.ModeFeed {
		t.Errorf("position = %+v, want one completed resync, feed mode", pos)
	}
	// After the resync the feed carries on.
	f.deleteRemote(t, 5)
	f.seed(t, 13, 13)
	res = f.sync(t, f.runner)
	if p := res[0].Pull; p.Resyncs != 0 || p.Added != 1 || p.Deleted != 1 {
		t.Errorf("run after the resync: %+v", p)
	}
	local, remote := count(t, f.local.st, f.lMirror.ID), count(t, f.remote.st, f.rShared.ID)
	for id := range remote {
		if local[id] != 1 {
			t.Errorf("%s: %d local copies, want 1", id, local[id])
		}
	}
	for id := range local {
		if remote[id] == 0 && id != indicatorID(50) {
			t.Errorf("%s in the mirror, not on the remote", id)
		}
	}
}

// noFeed answers 404 on the feed path, as a TAXII server that is not Mitra.
type noFeed struct{ next http.RoundTripper }

func (n noFeed) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.URL.Path, "x-mitra-changes") {
		body := `{"title":"not found","http_status":"404"}`
		return &http.Response{StatusCode: http.StatusNotFound, Header: http.Header{"Content-Type": {"application/taxii+json;version=2.1"}},
			Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
	}
	return n.next.RoundTrip(r)
}

// TestFeedFallbackPoll: a peer without the feed is pulled by added_after
// polling, as before, and the link says so.
func TestFeedFallbackPoll(t *testing.T) {
	f := newFederated(t)
	f.runner.Configure = func(cl *taxiiclient.Client) { cl.HTTP.Transport = noFeed{next: cl.HTTP.Transport} }
	f.seed(t, 1, 5)
	res := f.sync(t, f.runner)
	if p := res[0].Pull; p.Added != 5 {
		t.Fatalf("first run: %+v", p)
	}
	if pos := f.mode(t, f.local.sq); pos.Mode != federation.ModePoll {
		t.Fatalf("mode = %+v, want poll", pos)
	}
	f.seed(t, 6, 7)
	res = f.sync(t, f.runner)
	if p := res[0].Pull; p.Added != 2 || p.Received != 2 {
		t.Errorf("second run: %+v, want the 2 new objects", p)
	}
	if n := len(count(t, f.local.st, f.lMirror.ID)); n != 7 {
		t.Errorf("mirror has %d objects, want 7", n)
	}
}

// TestFeedMarkingDefinitionBeforeItsUse: the next page's adds are checked
// while a page is written, except after a page that changes a marking
// definition: an object marked with a definition of the page before must
// resolve it (from the store), whatever the page size.
func TestFeedMarkingDefinitionBeforeItsUse(t *testing.T) {
	for _, slow := range []bool{false, true} {
		t.Run(map[bool]string{false: "store", true: "slow-writer"}[slow], func(t *testing.T) { testMarkingBeforeUse(t, slow) })
	}
}

func testMarkingBeforeUse(t *testing.T, slow bool) {
	f := newFederated(t)
	const def = "marking-definition--00000000-0000-4000-8000-00000000d0d0"
	marking := json.RawMessage(`{"type":"marking-definition","spec_version":"2.1","id":"` + def + `","created":"2025-01-01T00:00:00.000Z","name":"TLP:GREEN","extensions":{"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d":{"extension_type":"property-extension","tlp_2_0":"green"}}}`)
	cl := f.remote.client(t, "author", f.rShared.ID)
	f.seed(t, 1, 3)
	if st, err := cl.Push(t.Context(), []json.RawMessage{marking}); err != nil || st.SuccessCount != 1 {
		t.Fatalf("push the marking definition: %+v %v", st, err)
	}
	var marked []json.RawMessage
	for i := 10; i < 14; i++ {
		marked = append(marked, indicator(i, `,"object_marking_refs":["`+def+`"]`))
	}
	if st, err := cl.Push(t.Context(), marked); err != nil || st.SuccessCount != len(marked) {
		t.Fatalf("push the marked objects: %+v %v", st, err)
	}
	r := *f.runner
	r.FeedPageLimit = 2
	if slow {
		// the fetcher is ahead of the writer: the pages after the
		// definition's wait for it to be written before they are checked
		r.Store = slowWrites{f.local.sq}
	}
	if res := f.sync(t, &r); res[0].Pull.Added != 8 {
		t.Fatalf("pull: %+v", res[0].Pull)
	}
	for i := 10; i < 14; i++ {
		e := latestOf(t, f.local.st, f.lMirror.ID, indicatorID(i))
		if e == nil {
			t.Fatalf("object %d not mirrored", i)
		}
		if e.TLP != int(access.TLPGreen) {
			t.Errorf("object %d stored with TLP %d, want that of its marking definition (GREEN, %d)", i, e.TLP, access.TLPGreen)
		}
	}
}

// slowWrites is the local store with every transaction started late, so
// that a pull link's fetcher gets ahead of its writer.
type slowWrites struct {
	*sqlite.Store
}

func (s slowWrites) Update(ctx context.Context, collectionID string, fn func(ctx context.Context, tx store.Tx) error) error {
	time.Sleep(40 * time.Millisecond)
	return s.Store.Update(ctx, collectionID, fn)
}

// TestFeedReadsAheadWithinBytes: the fetcher holds no more than
// Runner.FeedAheadBytes of objects read ahead: with room for less than a
// page it reads a page only once the one before is written, so no pages
// are there to be written together, and every object still arrives once.
func TestFeedReadsAheadWithinBytes(t *testing.T) {
	if p := pullSlowly(t, 1); p.Pages != 10 {
		t.Errorf("%d transactions wrote the 10 pages, want 10: one page read ahead at most", p.Pages)
	}
}

// pullSlowly pulls 40 objects in pages of four through a link whose writer
// is slow (slowWrites), with aheadBytes as Runner.FeedAheadBytes, checks
// that each object arrived once and returns the pull's figures.
func pullSlowly(t *testing.T, aheadBytes int) federation.PullStats {
	t.Helper()
	f := newFederated(t)
	f.seed(t, 1, 40)
	r := *f.runner
	r.Store = slowWrites{f.local.sq}
	r.FeedPageLimit = 4
	r.FeedAheadBytes = aheadBytes
	p := f.sync(t, &r)[0].Pull
	if p.Added != 40 || p.Duplicates != 0 {
		t.Fatalf("pull: %+v, want 40 added", p)
	}
	for id, n := range count(t, f.local.st, f.lMirror.ID) {
		if n != 1 {
			t.Errorf("%s stored %d times", id, n)
		}
	}
	return p
}

// TestFeedReadsAheadDuringCommit: the writer gives the fetcher its
// group's room back before the group's COMMIT, so the next page is read
// while the commit is still writing (and waiting for its fsync), not
// after it. With room for one page, every transaction but the last one
// sees the next page requested before it commits.
func TestFeedReadsAheadDuringCommit(t *testing.T) {
	f := newFederated(t)
	f.seed(t, 1, 40)
	var requests atomic.Int64
	r := *f.runner
	r.FeedPageLimit = 4
	r.FeedAheadBytes = 1
	r.Configure = func(cl *taxiiclient.Client) {
		cl.HTTP.Transport = feedRequests{next: cl.HTTP.Transport, n: &requests}
	}
	held := &heldCommits{Store: f.local.sq, requests: &requests}
	r.Store = held
	if p := f.sync(t, &r)[0].Pull; p.Added != 40 || p.Duplicates != 0 || p.Pages != 10 {
		t.Fatalf("pull: %+v, want 40 added in 10 transactions", p)
	}
	if held.early < 9 {
		t.Errorf("%d of the 10 transactions saw the next page requested before their commit, want 9", held.early)
	}
}

// feedRequests counts the change-feed requests of a client.
type feedRequests struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (c feedRequests) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.URL.Path, "x-mitra-changes") {
		c.n.Add(1)
	}
	return c.next.RoundTrip(r)
}

// heldCommits holds each transaction open, once its statements have
// run, until the fetcher requests another page or half a second has passed,
// and counts the transactions that saw that request (early).
type heldCommits struct {
	*sqlite.Store
	requests *atomic.Int64
	early    int // only the writer's goroutine runs Update
}

func (h *heldCommits) Update(ctx context.Context, collectionID string, fn func(ctx context.Context, tx store.Tx) error) error {
	return h.Store.Update(ctx, collectionID, func(ctx context.Context, tx store.Tx) error {
		before := h.requests.Load()
		if err := fn(ctx, tx); err != nil {
			return err
		}
		for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if h.requests.Load() > before {
				h.early++
				break
			}
		}
		return nil
	})
}

// TestFeedGroupsPagesAhead: when the writer is the bottleneck, pages of
// adds the fetcher has read and checked ahead go in one transaction, at
// most federation.FeedGroupPages at a time, and every object arrives once.
func TestFeedGroupsPagesAhead(t *testing.T) {
	p := pullSlowly(t, 0)
	// Ten pages of four: one commit each without grouping, at least
	// ceil(10/feedGroupPages) with groups.
	if least := (10 + federation.FeedGroupPages - 1) / federation.FeedGroupPages; p.Pages >= 10 || p.Pages < least {
		t.Errorf("%d transactions wrote the 10 pages, want %d to 9 (groups of up to %d)", p.Pages, least, federation.FeedGroupPages)
	}
}
