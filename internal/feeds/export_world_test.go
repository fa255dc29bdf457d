package feeds_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/feeds"
	"github.com/mitra-cert/mitra/internal/pattern"
	"github.com/mitra-cert/mitra/internal/search"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/mitra-cert/mitra/internal/taxii"
)

// TLP 2.0 marking definitions (access.tlpMarkings).
var tlpRef = map[string]string{
	"clear":        "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
	"green":        "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
	"amber":        "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
	"amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
	"red":          "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}

// exportWorld is a TAXII server with the export API mounted, over a SQLite
// store, with a clock the test moves.
type exportWorld struct {
	t   testing.TB
	st  store.Store
	ts  *httptest.Server
	now time.Time
	mu  sync.Mutex
	x   *feeds.Exporter
}

func newExportWorld(t testing.TB) *exportWorld {
	t.Helper()
	st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w := &exportWorld{t: t, st: st, now: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	srv := taxii.NewServer(taxii.Config{Store: st, Auth: access.NewAuthenticator(st, nil),
		Validator: &stix.Validator{CheckPattern: pattern.Check}})
	w.x = &feeds.Exporter{Store: st, Now: w.clock, Matcher: search.New(search.Config{Store: st, Now: w.clock})}
	srv.Mount(feeds.ExportPrefix, feeds.NewExportHandler(w.x, feeds.ExportHandlerOptions{Authenticate: srv.Authenticate, Now: w.clock}))
	w.ts = httptest.NewServer(srv)
	t.Cleanup(w.ts.Close)
	return w
}

func (w *exportWorld) clock() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

func (w *exportWorld) advance(d time.Duration) {
	w.mu.Lock()
	w.now = w.now.Add(d)
	w.mu.Unlock()
}

func (w *exportWorld) org(name string) string {
	w.t.Helper()
	o := &store.Organisation{Name: name}
	if err := w.st.CreateOrganisation(w.t.Context(), o); err != nil {
		w.t.Fatal(err)
	}
	return o.ID
}

func (w *exportWorld) member(name, org, role string) *client {
	w.t.Helper()
	if err := w.st.CreateUser(w.t.Context(), &store.User{Name: name, Organisation: org, Role: role, PasswordHash: passwordHash()}); err != nil {
		w.t.Fatal(err)
	}
	return &client{w: w, name: name}
}

func (w *exportWorld) group(name string, orgs ...string) string {
	w.t.Helper()
	g := &store.Group{Name: name, Orgs: orgs}
	if err := w.st.CreateGroup(w.t.Context(), g); err != nil {
		w.t.Fatal(err)
	}
	return g.ID
}

func (w *exportWorld) collection(c *store.Collection) string {
	w.t.Helper()
	if err := w.st.CreateCollection(w.t.Context(), c); err != nil {
		w.t.Fatal(err)
	}
	return c.ID
}

type client struct {
	w     *exportWorld
	name  string
	token string
}

// get fetches path with the client's credentials and extra headers.
func (c *client) get(path string, hdr ...string) (*http.Response, []byte) {
	c.w.t.Helper()
	return c.do(http.MethodGet, path, "", nil, hdr...)
}

func (c *client) do(method, path, contentType string, body []byte, hdr ...string) (*http.Response, []byte) {
	c.w.t.Helper()
	req, err := http.NewRequest(method, c.w.ts.URL+path, bytes.NewReader(body))
	if err != nil {
		c.w.t.Fatal(err)
	}
	switch {
	case c.token != "":
		req.Header.Set("Authorization", "Bearer "+c.token)
	case c.name != "":
		req.SetBasicAuth(c.name, password)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Accept", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.w.t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res, out
}

// post adds objects to a collection over TAXII as the client.
func (c *client) post(coll string, objs ...map[string]any) {
	c.w.t.Helper()
	body, _ := json.Marshal(map[string]any{"objects": objs})
	res, out := c.do(http.MethodPost, "/api/collections/"+coll+"/objects/", "application/taxii+json;version=2.1", body)
	if res.StatusCode/100 != 2 {
		c.w.t.Fatalf("%s: post: %d %s", c.name, res.StatusCode, out)
	}
	var st struct {
		FailureCount int `json:"failure_count"`
		Failures     any `json:"failures"`
	}
	_ = json.Unmarshal(out, &st)
	if st.FailureCount > 0 {
		c.w.t.Fatalf("%s: post refused: %s", c.name, out)
	}
}

// indicator is a STIX indicator created now with the given pattern.
func (w *exportWorld) indicator(pat, tlp string, extra ...any) map[string]any {
	ts := stix.FormatMicro(w.clock())
	o := map[string]any{"type": "indicator", "spec_version": "2.1", "id": "indicator--" + uuid.NewString(),
		"created": ts, "modified": ts, "valid_from": ts, "pattern": pat, "pattern_type": "stix",
		"name": "test " + pat, "confidence": 80}
	if tlp != "" {
		o["object_marking_refs"] = []string{tlpRef[tlp]}
	}
	for i := 0; i+1 < len(extra); i += 2 {
		o[extra[i].(string)] = extra[i+1]
	}
	return o
}

func (w *exportWorld) opinion(ind, op, tlp string) map[string]any {
	ts := stix.FormatMicro(w.clock())
	o := map[string]any{"type": "opinion", "spec_version": "2.1", "id": "opinion--" + uuid.NewString(),
		"created": ts, "modified": ts, "object_refs": []string{ind}, "opinion": op}
	if tlp != "" {
		o["object_marking_refs"] = []string{tlpRef[tlp]}
	}
	return o
}

func (w *exportWorld) sighting(ind, tlp string) map[string]any {
	ts := stix.FormatMicro(w.clock())
	o := map[string]any{"type": "sighting", "spec_version": "2.1", "id": "sighting--" + uuid.NewString(),
		"created": ts, "modified": ts, "sighting_of_ref": ind, "first_seen": ts, "last_seen": ts, "count": 1}
	if tlp != "" {
		o["object_marking_refs"] = []string{tlpRef[tlp]}
	}
	return o
}

func id(o map[string]any) string { return o["id"].(string) }

func must(t testing.TB, cond bool, format string, args ...any) {
	t.Helper()
	if !cond {
		t.Fatalf(format, args...)
	}
}
