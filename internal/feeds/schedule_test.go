package feeds_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/feeds"
	"github.com/mitra-cert/mitra/internal/store"
)

// csvServer serves a list with an ETag and answers If-None-Match.
type csvServer struct {
	mu   sync.Mutex
	body string
	full int
	etag string
}

func (c *csvServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.Header.Get("If-None-Match") == c.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	c.full++
	w.Header().Set("ETag", c.etag)
	_, _ = w.Write([]byte(c.body))
}

func (c *csvServer) set(body, etag string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.body, c.etag = body, etag
}

func scheduler(w *world) *feeds.Scheduler {
	return &feeds.Scheduler{Feeds: w.st, Users: w.st, Importer: w.imp, Lists: w.st}
}

// A scheduled CSV feed: the first run imports, the second gets 304 and
// reads nothing, a changed list reports added, updated, unchanged and
// rejected, and the run is recorded with its report and validators.
func TestScheduledFeedConditionalGET(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	org := w.org("cert")
	w.member("alice", org)
	col := w.collection("feed", org)
	srv := &csvServer{}
	srv.set("value,comment\nevil-one.com,a\nevil-two.com,b\n", `"v1"`)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	s := scheduler(w)
	f := &store.ImportFeed{Name: "abuse", URL: ts.URL + "/list.csv", Format: "csv", Collection: col, User: "alice", Interval: time.Hour}
	if err := s.Add(t.Context(), f, feeds.Options{TLP: "green"}); err != nil {
		t.Fatal(err)
	}
	if err := s.RunDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	got, _ := w.st.GetImportFeed(t.Context(), "abuse")
	if got.ETag != `"v1"` || !got.NextRun.Equal(w.now.Add(time.Hour)) || !strings.Contains(string(got.LastReport), `"added":2`) {
		t.Fatalf("after the first run: %+v %s", got, got.LastReport)
	}
	// Not due yet: nothing fetched.
	if err := s.RunDue(t.Context()); err != nil || srv.full != 1 {
		t.Fatalf("a feed not due was fetched (%d, %v)", srv.full, err)
	}
	w.now = w.now.Add(time.Hour)
	rep, err := s.RunFeed(t.Context(), "abuse")
	if err != nil || !rep.NotModified || srv.full != 1 {
		t.Fatalf("second run: %+v, %v (%d full GETs)", rep, err, srv.full)
	}
	srv.set("value,comment\nevil-one.com,a\nevil-two.com,changed\nevil-three.com,c\n10.0.0.1,internal\n???,junk\n", `"v2"`)
	rep, err = s.RunFeed(t.Context(), "abuse")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Added != 2 || rep.Updated != 1 || rep.Unchanged != 1 || rep.Rejected != 1 || rep.Inactive != 1 ||
		!strings.Contains(rep.Rejections[0].Reason, `"???"`) || !strings.Contains(rep.Flags[0].Reason, "10.0.0.1") {
		t.Errorf("changed list: %+v", rep)
	}
	if n := len(w.objects("alice", col)); n != 4 {
		t.Errorf("%d objects stored, want 4", n)
	}
	// A failing server: the run is recorded with its error, validators kept.
	ts.Close()
	if _, err := s.RunFeed(t.Context(), "abuse"); err == nil {
		t.Error("a run against a closed server succeeded")
	}
	got, _ = w.st.GetImportFeed(t.Context(), "abuse")
	if got.ETag != `"v2"` || !strings.Contains(string(got.LastReport), `"error"`) {
		t.Errorf("after a failed run: %+v %s", got, got.LastReport)
	}
}

// A MISP feed over HTTP (manifest.json and event files, served with
// Last-Modified): imported, then 304 on If-Modified-Since.
func TestScheduledMISPFeedOverHTTP(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	org := w.org("cert")
	w.member("alice", org)
	col := w.collection("feed", org)
	var gets int
	var mu sync.Mutex
	fs := http.FileServer(http.Dir(filepath.Join("testdata", "import", "misp-feed")))
	ts := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gets++
		mu.Unlock()
		fs.ServeHTTP(rw, r)
	}))
	defer ts.Close()
	s := scheduler(w)
	if err := s.Add(t.Context(), &store.ImportFeed{Name: "osint", URL: ts.URL + "/", Format: "misp-feed", Collection: col, User: "alice", Interval: time.Hour}, feeds.Options{}); err != nil {
		t.Fatal(err)
	}
	rep, err := s.RunFeed(t.Context(), "osint")
	if err != nil || rep.Added == 0 || rep.Rejected != 0 || rep.Inactive != 1 || gets != 4 {
		t.Fatalf("first run: %+v, %v (%d GETs)", rep, err, gets)
	}
	rep, err = s.RunFeed(t.Context(), "osint")
	if err != nil || !rep.NotModified || gets != 5 {
		t.Errorf("second run: %+v, %v (%d GETs)", rep, err, gets)
	}
}

// A feed is refused when its user may not write to the collection, or
// its URL or interval is unusable.
func TestScheduledFeedAddChecks(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a, b := w.org("a"), w.org("b")
	w.member("alice", a)
	w.member("bob", b)
	col := w.collection("a-only", a)
	s := scheduler(w)
	for _, c := range []struct {
		f    store.ImportFeed
		want error
	}{
		{store.ImportFeed{Name: "x", URL: "https://example.org/l.csv", Format: "csv", Collection: col, User: "bob", Interval: time.Hour}, store.ErrNotFound},
		{store.ImportFeed{Name: "x", URL: "file:///etc/passwd", Format: "csv", Collection: col, User: "alice", Interval: time.Hour}, feeds.ErrInvalid},
		{store.ImportFeed{Name: "x", URL: "https://example.org/l.csv", Format: "xml", Collection: col, User: "alice", Interval: time.Hour}, feeds.ErrInvalid},
		{store.ImportFeed{Name: "x", URL: "https://example.org/l.csv", Format: "csv", Collection: col, User: "alice", Interval: time.Second}, feeds.ErrInvalid},
	} {
		if err := s.Add(t.Context(), &c.f, feeds.Options{}); !errors.Is(err, c.want) {
			t.Errorf("Add(%+v) = %v, want %v", c.f, err, c.want)
		}
	}
}

// Two servers sharing a store look at a due feed at once: one runs it.
func TestScheduledFeedRunsOnceAcrossServers(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	org := w.org("cert")
	w.member("alice", org)
	col := w.collection("feed", org)
	srv := &csvServer{}
	srv.set("evil-one.com\n", `"v1"`)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	s1, s2 := scheduler(w), scheduler(w)
	if err := s1.Add(t.Context(), &store.ImportFeed{Name: "abuse", URL: ts.URL, Format: "text", Collection: col, User: "alice", Interval: time.Hour}, feeds.Options{}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, s := range []*feeds.Scheduler{s1, s2} {
		wg.Go(func() {
			if err := s.RunDue(t.Context()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if srv.full != 1 {
		t.Errorf("the feed was fetched %d times", srv.full)
	}
}
