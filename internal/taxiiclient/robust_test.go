package taxiiclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/taxiiclient"
)

var errCrash = errors.New("simulated crash")

// pullResult is what a pull delivered, across restarts.
type pullResult struct {
	got      map[string]int // object key → times handed over
	order    []string
	restarts int
	cursor   taxiiclient.Cursor
}

// pullAll pulls everything, "crashing" after every crashEvery pages (0:
// never) and resuming from the cursor persisted with the last page, as a
// durable caller would (the cursor goes through JSON); only pages that
// bring objects count, so that the pull ends. onPage runs after
// each page is persisted.
func pullAll(t *testing.T, cl *taxiiclient.Client, q taxiiclient.ObjectsQuery, crashEvery int, onPage func()) *pullResult {
	t.Helper()
	res := &pullResult{got: map[string]int{}}
	var persisted []byte
	pages := 0
	for attempt := 0; ; attempt++ {
		if attempt > 1000 {
			t.Fatal("pull does not terminate")
		}
		var cur taxiiclient.Cursor
		if persisted != nil {
			if err := json.Unmarshal(persisted, &cur); err != nil {
				t.Fatal(err)
			}
		}
		last, err := cl.Pull(t.Context(), q, cur, func(ctx context.Context, p taxiiclient.PullPage) error {
			for _, o := range p.Objects {
				k, err := taxiiclient.ObjectKey(o)
				if err != nil {
					t.Fatal(err)
				}
				res.got[k]++
				res.order = append(res.order, k)
			}
			b, err := json.Marshal(p.Cursor)
			if err != nil {
				t.Fatal(err)
			}
			persisted = b
			if onPage != nil {
				onPage()
			}
			if len(p.Objects) == 0 {
				return nil
			}
			pages++
			if crashEvery > 0 && pages%crashEvery == 0 {
				return errCrash
			}
			return nil
		})
		if errors.Is(err, errCrash) {
			res.restarts++
			continue
		}
		if err != nil {
			t.Fatalf("pull: %v", err)
		}
		res.cursor = last
		return res
	}
}

// check asserts that exactly want was handed over, each once.
func (r *pullResult) check(t *testing.T, want []string) {
	t.Helper()
	for k, n := range r.got {
		if n != 1 {
			t.Errorf("%s handed over %d times", k, n)
		}
	}
	for _, k := range want {
		if r.got[k] == 0 {
			t.Errorf("%s lost", k)
		}
	}
	if len(r.got) != len(want) {
		t.Errorf("%d objects handed over, want %d", len(r.got), len(want))
	}
}

// TestPullWellBehaved: a server that follows the specification, with
// next; a later pull from the returned cursor brings only new objects.
func TestPullWellBehaved(t *testing.T) {
	f := newFake(t, behaviour{})
	want := f.add(40)
	cl, _ := f.client(t)
	r := pullAll(t, cl, taxiiclient.ObjectsQuery{Limit: 7}, 0, nil)
	r.check(t, want)
	more := f.add(5)
	r2 := &pullResult{got: map[string]int{}}
	_, err := cl.Pull(t.Context(), taxiiclient.ObjectsQuery{Limit: 7}, r.cursor, func(_ context.Context, p taxiiclient.PullPage) error {
		for _, o := range p.Objects {
			k, _ := taxiiclient.ObjectKey(o)
			r2.got[k]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r2.check(t, more)
}

// TestPullInclusiveAddedAfter: added_after treated as inclusive, no next:
// the object at the bound comes again and is dropped; the pull ends.
func TestPullInclusiveAddedAfter(t *testing.T) {
	f := newFake(t, behaviour{inclusive: true, noNext: true})
	want := f.add(40)
	cl, _ := f.client(t)
	r := pullAll(t, cl, taxiiclient.ObjectsQuery{Limit: 7}, 2, nil)
	r.check(t, want)
	if r.restarts == 0 {
		t.Error("no restart exercised")
	}
}

// TestPullLimitIgnored: the server sends pages of 10 whatever limit says.
func TestPullLimitIgnored(t *testing.T) {
	f := newFake(t, behaviour{pageSize: 10, ignoreLimit: true})
	want := f.add(45)
	cl, _ := f.client(t)
	r := pullAll(t, cl, taxiiclient.ObjectsQuery{Limit: 3}, 2, nil)
	r.check(t, want)
	if f.gets > 10 {
		t.Errorf("%d requests for 45 objects in pages of 10", f.gets)
	}
}

// TestPullMoreWithoutNext: "more" without "next": the pull goes on from
// X-TAXII-Date-Added-Last (TAXII 2.1 §3.4.2).
func TestPullMoreWithoutNext(t *testing.T) {
	f := newFake(t, behaviour{noNext: true})
	want := f.add(40)
	cl, _ := f.client(t)
	r := pullAll(t, cl, taxiiclient.ObjectsQuery{Limit: 7}, 3, nil)
	r.check(t, want)
}

// TestPullMissingDateAddedLast: no X-TAXII-Date-Added-Last and no next:
// the page's date_added comes from the manifest.
func TestPullMissingDateAddedLast(t *testing.T) {
	f := newFake(t, behaviour{noDateHeaders: true, noNext: true})
	want := f.add(130)
	cl, _ := f.client(t)
	// Pages of 45: the manifest is asked about their ids in parts.
	r := pullAll(t, cl, taxiiclient.ObjectsQuery{Limit: 45}, 2, nil)
	r.check(t, want)
	if r.cursor.AddedAfter.IsZero() {
		t.Error("the final cursor has no date_added bound")
	}
}

// TestPullSharedDateAdded: every object of a POST shares one date_added;
// a pull interrupted inside such a batch resumes without skipping the rest
// of it, whether the server reads added_after as exclusive or inclusive.
func TestPullSharedDateAdded(t *testing.T) {
	for _, inclusive := range []bool{false, true} {
		t.Run(fmt.Sprintf("inclusive=%v", inclusive), func(t *testing.T) {
			f := newFake(t, behaviour{sharedDateAdded: true, noNext: true, inclusive: inclusive})
			var want []string
			for _, n := range []int{25, 3, 18} {
				want = append(want, f.add(n)...)
			}
			cl, _ := f.client(t)
			r := pullAll(t, cl, taxiiclient.ObjectsQuery{Limit: 7}, 1, nil)
			r.check(t, want)
			if len(r.cursor.Seen) < 18 {
				t.Errorf("cursor remembers %d objects of the last batch, want its 18", len(r.cursor.Seen))
			}
		})
	}
}

// TestPullNextExpires: next values expire after 30 s; pages arrive slower
// than that, so the server refuses them and the pull resumes from its
// bound. A persisted cursor with an old next does not send it at all.
func TestPullNextExpires(t *testing.T) {
	f := newFake(t, behaviour{nextTTL: 30 * time.Second})
	want := f.add(40)
	cl, _ := f.client(t)
	r := pullAll(t, cl, taxiiclient.ObjectsQuery{Limit: 7}, 0, func() { f.advance(31 * time.Second) })
	r.check(t, want)
	if f.refusedNext == 0 {
		t.Error("the server never refused an expired next")
	}

	// An old cursor: the client's own clock says its next is stale.
	cur := taxiiclient.Cursor{Next: "n1", NextAt: time.Now().Add(-time.Minute)}
	f.mu.Lock()
	f.requests = nil
	f.mu.Unlock()
	if _, err := cl.Pull(t.Context(), taxiiclient.ObjectsQuery{Limit: 50}, cur, func(context.Context, taxiiclient.PullPage) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if len(f.requests) == 0 || strings.Contains(f.requests[0], "next=") {
		t.Errorf("stale next sent: %q", f.requests)
	}
}

// TestPullRetries: 429 and 5xx are retried with exponential backoff that
// honours Retry-After (seconds and HTTP dates).
func TestPullRetries(t *testing.T) {
	f := newFake(t, behaviour{fail: map[int]failure{
		2: {status: 429, retryAfter: "7"},
		3: {status: 503},
		4: {status: 502},
		5: {status: 500, retryAfter: time.Now().Add(20 * time.Second).UTC().Format(http.TimeFormat)},
		7: {status: 504},
	}})
	want := f.add(30)
	cl, delays := f.client(t)
	cl.Retry = taxiiclient.Retry{Base: 100 * time.Millisecond}
	r := pullAll(t, cl, taxiiclient.ObjectsQuery{Limit: 7}, 0, nil)
	r.check(t, want)
	d := *delays
	if len(d) != 5 {
		t.Fatalf("delays %v, want 5 retries", d)
	}
	if d[0] < 7*time.Second {
		t.Errorf("Retry-After: 7 not honoured: waited %v", d[0])
	}
	if d[1] < 200*time.Millisecond || d[2] < 400*time.Millisecond || d[2] > 440*time.Millisecond {
		t.Errorf("backoff not exponential: %v", d)
	}
	if d[3] < 18*time.Second {
		t.Errorf("Retry-After as an HTTP date not honoured: waited %v", d[3])
	}
	if d[4] > 110*time.Millisecond {
		t.Errorf("backoff does not restart after a success: %v", d[4])
	}

	// A server that keeps failing: the error comes back after the retries.
	always := map[int]failure{}
	for i := 1; i <= 20; i++ {
		always[i] = failure{status: 503}
	}
	g := newFake(t, behaviour{fail: always})
	cl2, delays2 := g.client(t)
	cl2.Retry = taxiiclient.Retry{Attempts: 3}
	_, err := cl2.Pull(t.Context(), taxiiclient.ObjectsQuery{}, taxiiclient.Cursor{}, func(context.Context, taxiiclient.PullPage) error { return nil })
	var te *taxiiclient.Error
	if !errors.As(err, &te) || te.Status != 503 || len(*delays2) != 3 {
		t.Errorf("persistent 503: %v after %d retries", err, len(*delays2))
	}
}

// TestPullPageTimeout: a page that hangs is abandoned after
// RequestTimeout and asked for again from the same cursor.
func TestPullPageTimeout(t *testing.T) {
	f := newFake(t, behaviour{noNext: true, stall: map[int]bool{3: true, 4: true}})
	want := f.add(30)
	cl, _ := f.client(t)
	cl.RequestTimeout = 200 * time.Millisecond
	r := pullAll(t, cl, taxiiclient.ObjectsQuery{Limit: 7}, 0, nil)
	r.check(t, want)
	if f.stalled != 2 {
		t.Errorf("%d stalled pages, want 2", f.stalled)
	}
}

// TestPullStuckServer: a server that answers every page with the same
// objects and more=true ends the pull with ErrStuck instead of a loop.
func TestPullStuckServer(t *testing.T) {
	f := newFake(t, behaviour{repeat: true, noNext: true, pageSize: 5, ignoreLimit: true})
	f.add(12)
	cl, _ := f.client(t)
	_, err := cl.Pull(t.Context(), taxiiclient.ObjectsQuery{Limit: 5}, taxiiclient.Cursor{}, func(context.Context, taxiiclient.PullPage) error { return nil })
	if !errors.Is(err, taxiiclient.ErrStuck) {
		t.Errorf("stuck server: %v", err)
	}
	if f.gets > 20 {
		t.Errorf("%d requests before giving up", f.gets)
	}
}

// TestPushPollsStatus: a POST answered "pending" is polled until
// complete; a 503 on the POST is retried (objects already stored count as
// successes, so a retried POST stores nothing twice).
func TestPushPollsStatus(t *testing.T) {
	f := newFake(t, behaviour{pendingPolls: 3, failPost: map[int]failure{1: {status: 503, retryAfter: "1"}}})
	src := newFake(t, behaviour{})
	keys := src.add(12)
	var objs []json.RawMessage
	for _, o := range src.objs {
		objs = append(objs, o.raw)
	}
	cl, delays := f.client(t)
	st, err := cl.Push(t.Context(), objs)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != "complete" || f.polls[st.ID] != 3 {
		t.Errorf("status %+v after %d polls", st, f.polls[st.ID])
	}
	if (*delays)[0] < time.Second {
		t.Errorf("POST retry did not honour Retry-After: %v", *delays)
	}
	if _, err := cl.Push(t.Context(), objs); err != nil {
		t.Fatal(err)
	}
	if len(f.objs) != len(keys) {
		t.Errorf("server holds %d objects after pushing %d twice", len(f.objs), len(keys))
	}
}

// TestDialDiscovery: Dial finds the default API root from the discovery
// resource; the API root and collections are read.
func TestDialDiscovery(t *testing.T) {
	f := newFake(t, behaviour{})
	cl, err := taxiiclient.Dial(t.Context(), f.ts.URL+"/taxii2/", "c1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cl.ObjectsURL != f.ts.URL+"/api1/collections/c1/objects/" {
		t.Errorf("objects URL %s", cl.ObjectsURL)
	}
	root, err := cl.APIRoot(t.Context())
	if err != nil || root.MaxContentLength != 1<<20 {
		t.Errorf("API root %+v, %v", root, err)
	}
	cols, err := cl.Collections(t.Context())
	if err != nil || len(cols) != 1 || cols[0].ID != "c1" || !cols[0].CanRead {
		t.Errorf("collections %+v, %v", cols, err)
	}
	if _, err := taxiiclient.Dial(t.Context(), f.ts.URL+"/api1/", "c1", nil); err != nil {
		t.Errorf("Dial on an API root: %v", err)
	}
}

// TestDeleteObject: a DELETE names the version with match[version]
// (TAXII 2.1 §5.7), is retried on 503 and 429 with the server's
// Retry-After, removes only that version, and tells a missing object by
// an *Error with Status 404; a lasting refusal (403) is not retried.
func TestDeleteObject(t *testing.T) {
	f := newFake(t, behaviour{failDelete: map[int]failure{1: {status: 503}, 2: {status: 429, retryAfter: "3"}, 5: {status: 403}}})
	f.add(2)
	const v2 = "2026-02-01T00:00:00.000Z"
	id := "indicator--00000000-0000-4000-8000-000000000001"
	f.mu.Lock()
	f.store(json.RawMessage(`{}`), id, v2)
	f.mu.Unlock()
	cl, delays := f.client(t)
	if err := cl.DeleteObject(t.Context(), id, v2); err != nil {
		t.Fatal(err)
	}
	if len(*delays) != 2 || (*delays)[1] != 3*time.Second {
		t.Errorf("delays %v, want two retries, the second after Retry-After 3 s", *delays)
	}
	f.mu.Lock()
	want := "/api1/collections/c1/objects/" + id + "/?match[version]=" + strings.ReplaceAll(v2, ":", "%3A")
	if len(f.deletes) != 3 || f.deletes[2] != want {
		t.Errorf("requests %q, want the third to be %s", f.deletes, want)
	}
	left := map[string]int{}
	for _, o := range f.objs {
		left[o.id]++
	}
	if left[id] != 1 || len(f.objs) != 2 {
		t.Errorf("after deleting one version the server holds %v", left)
	}
	f.mu.Unlock()
	// Already gone: 404, as an *Error.
	var te *taxiiclient.Error
	if err := cl.DeleteObject(t.Context(), id, v2); !errors.As(err, &te) || te.Status != http.StatusNotFound {
		t.Errorf("deleting a missing version: %v", err)
	}
	// A refusal is final.
	requests := func() int {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.deletes)
	}
	n := requests()
	if err := cl.DeleteObject(t.Context(), id, ""); !errors.As(err, &te) || te.Status != http.StatusForbidden || requests() != n+1 {
		t.Errorf("refused delete: %v after %d requests", err, requests()-n)
	}
	// Without a version, every version goes.
	if err := cl.DeleteObject(t.Context(), id, ""); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range f.objs {
		if o.id == id {
			t.Errorf("version %s left after deleting every version", o.ver)
		}
	}
}
