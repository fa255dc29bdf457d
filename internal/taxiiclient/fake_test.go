package taxiiclient_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/taxiiclient"
)

// behaviour is how the in-test TAXII server misbehaves.
type behaviour struct {
	inclusive     bool          // added_after keeps date_added == added_after
	pageSize      int           // the server's page limit (default 1000)
	ignoreLimit   bool          // pages are pageSize long whatever limit says
	noNext        bool          // "more" without "next"
	noDateHeaders bool          // no X-TAXII-Date-Added-First/-Last
	nextTTL       time.Duration // next values expire after this (server clock)
	// fail answers the n-th objects GET (from 1) with a status and an
	// optional Retry-After.
	fail map[int]failure
	// stall makes the n-th objects GET hang until the client gives up.
	stall map[int]bool
	// sharedDateAdded gives every object of a POST one date_added.
	sharedDateAdded bool
	// pendingPolls is how many status reads answer "pending".
	pendingPolls int
	// failPost answers the n-th POST (from 1) with a failure.
	failPost map[int]failure
	// repeat answers every page request with the first page and more=true.
	repeat bool
	// failDelete answers the n-th DELETE (from 1) with a failure.
	failDelete map[int]failure
}

type failure struct {
	status     int
	retryAfter string
}

type fobj struct {
	raw   json.RawMessage
	id    string
	ver   string
	added time.Time
}

type nextState struct {
	after  time.Time
	offset int
	issued time.Time
}

// fakeServer is a small TAXII 2.1 server on one collection ("c1") that
// behaves as told.
type fakeServer struct {
	t  *testing.T
	b  behaviour
	ts *httptest.Server

	mu          sync.Mutex
	now         time.Time
	objs        []fobj
	nexts       map[string]nextState
	gets        int // objects GETs
	posts       int
	polls       map[string]int
	refusedNext int
	stalled     int
	requests    []string
	deletes     []string // DELETE requests, path and query
}

func newFake(t *testing.T, b behaviour) *fakeServer {
	if b.pageSize == 0 {
		b.pageSize = 1000
	}
	f := &fakeServer{t: t, b: b, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), nexts: map[string]nextState{}, polls: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /taxii2/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"title": "fake", "default": "/api1/", "api_roots": []string{"/api1/"}})
	})
	mux.HandleFunc("GET /api1/{$}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"title": "fake root", "versions": []string{taxiiclient.MediaType}, "max_content_length": 1 << 20})
	})
	mux.HandleFunc("GET /api1/collections/{$}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"collections": []map[string]any{{"id": "c1", "title": "One", "can_read": true, "can_write": true}}})
	})
	mux.HandleFunc("GET /api1/collections/c1/objects/", f.getObjects)
	mux.HandleFunc("POST /api1/collections/c1/objects/", f.postObjects)
	mux.HandleFunc("GET /api1/collections/c1/manifest/", f.manifest)
	mux.HandleFunc("GET /api1/status/{id}/", f.status)
	mux.HandleFunc("DELETE /api1/collections/c1/objects/{id}/", f.deleteObject)
	f.ts = httptest.NewServer(mux)
	t.Cleanup(f.ts.Close)
	return f
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", taxiiclient.MediaType)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func taxiiError(w http.ResponseWriter, f failure) {
	if f.retryAfter != "" {
		w.Header().Set("Retry-After", f.retryAfter)
	}
	writeJSON(w, f.status, map[string]any{"title": http.StatusText(f.status)})
}

// client is a client of the fake server that never really sleeps: the
// delays it asks for are recorded.
func (f *fakeServer) client(t *testing.T) (*taxiiclient.Client, *[]time.Duration) {
	cl, err := taxiiclient.NewClient(f.ts.URL+"/api1/", "c1")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var delays []time.Duration
	cl.Sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		delays = append(delays, d)
		mu.Unlock()
		return ctx.Err()
	}
	return cl, &delays
}

// add stores n objects, one POST's worth: with sharedDateAdded they share
// one date_added.
func (f *fakeServer) add(n int) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var keys []string
	for range n {
		i := len(f.objs) + 1
		id := fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i)
		ver := "2026-01-01T00:00:00.000Z"
		raw := fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":%q,"created":%q,"modified":%q,"pattern":"[ipv4-addr:value = '198.51.100.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`, id, ver, ver, i%250)
		f.store(json.RawMessage(raw), id, ver)
		keys = append(keys, id+"|2026-01-01T00:00:00Z")
	}
	f.tick()
	return keys
}

func (f *fakeServer) store(raw json.RawMessage, id, ver string) {
	if !f.b.sharedDateAdded {
		f.tick()
	}
	f.objs = append(f.objs, fobj{raw: raw, id: id, ver: ver, added: f.now})
}

func (f *fakeServer) tick() { f.now = f.now.Add(time.Microsecond) }

// advance moves the server clock.
func (f *fakeServer) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

func (f *fakeServer) selected(after time.Time, ids []string) []fobj {
	var out []fobj
	for _, o := range f.objs {
		if !after.IsZero() && (o.added.Before(after) || !f.b.inclusive && o.added.Equal(after)) {
			continue
		}
		if len(ids) > 0 && !slices.Contains(ids, o.id) {
			continue
		}
		out = append(out, o)
	}
	return out
}

func (f *fakeServer) getObjects(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.gets++
	n := f.gets
	f.requests = append(f.requests, r.URL.RawQuery)
	if fl, ok := f.b.fail[n]; ok {
		f.mu.Unlock()
		taxiiError(w, fl)
		return
	}
	if f.b.stall[n] {
		f.stalled++
		f.mu.Unlock()
		<-r.Context().Done()
		return
	}
	defer f.mu.Unlock()
	q := r.URL.Query()
	var after time.Time
	if v := q.Get("added_after"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			taxiiError(w, failure{status: 400})
			return
		}
		after = t
	}
	limit := f.b.pageSize
	if v := q.Get("limit"); v != "" && !f.b.ignoreLimit {
		l, _ := strconv.Atoi(v)
		limit = min(l, f.b.pageSize)
	}
	offset := 0
	if tok := q.Get("next"); tok != "" {
		st, ok := f.nexts[tok]
		if !ok || f.b.nextTTL > 0 && f.now.Sub(st.issued) > f.b.nextTTL {
			f.refusedNext++
			taxiiError(w, failure{status: 400})
			return
		}
		after, offset = st.after, st.offset
	}
	sel := f.selected(after, nil)
	if f.b.repeat {
		offset = 0
	}
	end := min(offset+limit, len(sel))
	page := sel[offset:end]
	more := end < len(sel) || f.b.repeat
	env := map[string]any{}
	if more {
		env["more"] = true
		if !f.b.noNext {
			tok := fmt.Sprintf("n%d", len(f.nexts)+1)
			f.nexts[tok] = nextState{after: after, offset: end, issued: f.now}
			env["next"] = tok
		}
	}
	if len(page) > 0 {
		var raws []json.RawMessage
		for _, o := range page {
			raws = append(raws, o.raw)
		}
		env["objects"] = raws
		if !f.b.noDateHeaders {
			w.Header().Set("X-TAXII-Date-Added-First", fmtTime(page[0].added))
			w.Header().Set("X-TAXII-Date-Added-Last", fmtTime(page[len(page)-1].added))
		}
	}
	writeJSON(w, 200, env)
}

func (f *fakeServer) manifest(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	if v := r.URL.Query().Get("match[id]"); v != "" {
		ids = strings.Split(v, ",")
	}
	var recs []map[string]string
	for _, o := range f.selected(time.Time{}, ids) {
		recs = append(recs, map[string]string{"id": o.id, "date_added": fmtTime(o.added), "version": o.ver, "media_type": "application/stix+json;version=2.1"})
	}
	writeJSON(w, 200, map[string]any{"objects": recs})
}

func (f *fakeServer) postObjects(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.posts++
	if fl, ok := f.b.failPost[f.posts]; ok {
		taxiiError(w, fl)
		return
	}
	var env struct{ Objects []json.RawMessage }
	if err := json.NewDecoder(r.Body).Decode(&env); err != nil {
		taxiiError(w, failure{status: 422})
		return
	}
	var succ []map[string]string
	for _, o := range env.Objects {
		var h struct{ ID, Modified string }
		json.Unmarshal(o, &h)
		dup := false
		for _, s := range f.objs {
			if s.id == h.ID && s.ver == h.Modified {
				dup = true
			}
		}
		if !dup {
			f.store(o, h.ID, h.Modified)
		}
		succ = append(succ, map[string]string{"id": h.ID, "version": h.Modified})
	}
	f.tick()
	id := fmt.Sprintf("status-%d", f.posts)
	f.polls[id] = 0
	status := "complete"
	if f.b.pendingPolls > 0 {
		status = "pending"
	}
	writeJSON(w, 202, map[string]any{"id": id, "status": status, "total_count": len(env.Objects), "success_count": len(succ), "successes": succ})
}

func (f *fakeServer) status(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := r.PathValue("id")
	n, ok := f.polls[id]
	if !ok {
		taxiiError(w, failure{status: 404})
		return
	}
	f.polls[id] = n + 1
	status := "complete"
	if n+1 < f.b.pendingPolls {
		status = "pending"
	}
	writeJSON(w, 200, map[string]any{"id": id, "status": status})
}

// deleteObject removes an object's versions (TAXII 2.1 §5.7): the one
// match[version] names, or all; 404 when none matches.
func (f *fakeServer) deleteObject(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deletes = append(f.deletes, r.URL.RequestURI())
	if fl, ok := f.b.failDelete[len(f.deletes)]; ok {
		taxiiError(w, fl)
		return
	}
	id, ver := r.PathValue("id"), r.URL.Query().Get("match[version]")
	kept := f.objs[:0:0]
	for _, o := range f.objs {
		if o.id != id || ver != "" && o.ver != ver {
			kept = append(kept, o)
		}
	}
	if len(kept) == len(f.objs) {
		taxiiError(w, failure{status: 404})
		return
	}
	f.objs = kept
	writeJSON(w, 200, map[string]any{})
}
