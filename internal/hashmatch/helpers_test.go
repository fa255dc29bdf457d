package hashmatch_test

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/hashmatch"
	"github.com/mitra-cert/mitra/internal/pattern"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/postgres"
	"github.com/mitra-cert/mitra/internal/store/postgres/pgtest"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/mitra-cert/mitra/internal/taxii"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/image/draw"
)

const password = "correct horse battery"

var passwordHash = sync.OnceValue(func() string {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
})

// world is a TAXII server with the hash API mounted, over a store of one
// of the backends.
type world struct {
	t   testing.TB
	st  store.Store
	svc *hashmatch.Service
	ts  *httptest.Server
}

// backend opens a new, empty store.
type backend func(t testing.TB) store.Store

func openSQLite(t testing.TB) store.Store {
	st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// openPostgres opens a store in a schema of its own (skipped, or failed
// under CI=true, when PostgreSQL is unreachable).
func openPostgres(t testing.TB) store.Store {
	st, err := postgres.Open(t.Context(), pgtest.NewSchema(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// onBackends runs a store-facing test on SQLite and on PostgreSQL.
func onBackends(t *testing.T, test func(t *testing.T, b backend)) {
	t.Run("sqlite", func(t *testing.T) { test(t, openSQLite) })
	t.Run("postgres", func(t *testing.T) { test(t, openPostgres) })
}

func newWorld(t *testing.T, b backend) *world { return newWorldB(t, b) }

// newWorldB is newWorld for tests and benchmarks.
func newWorldB(t testing.TB, b backend) *world {
	t.Helper()
	st := b(t)
	t.Cleanup(func() { st.Close() })
	srv := taxii.NewServer(taxii.Config{Store: st, Auth: access.NewAuthenticator(st, nil),
		Validator: &stix.Validator{CheckPattern: pattern.Check}})
	svc := hashmatch.New(hashmatch.Config{Store: st})
	srv.Mount(hashmatch.Prefix, hashmatch.NewHandler(svc, hashmatch.HandlerOptions{Authenticate: srv.Authenticate, TAXII: srv}))
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &world{t: t, st: st, svc: svc, ts: ts}
}

func (w *world) org(name string, anonymise bool) string {
	w.t.Helper()
	o := &store.Organisation{Name: name, AnonymiseSightings: anonymise}
	if err := w.st.CreateOrganisation(w.t.Context(), o); err != nil {
		w.t.Fatal(err)
	}
	return o.ID
}

// member creates a user of org and returns its client.
func (w *world) member(name, org, role string) *client {
	w.t.Helper()
	if err := w.st.CreateUser(w.t.Context(), &store.User{Name: name, Organisation: org, Role: role, PasswordHash: passwordHash()}); err != nil {
		w.t.Fatal(err)
	}
	return &client{w: w, name: name}
}

func (w *world) group(name string, orgs ...string) string {
	w.t.Helper()
	g := &store.Group{Name: name, Orgs: orgs}
	if err := w.st.CreateGroup(w.t.Context(), g); err != nil {
		w.t.Fatal(err)
	}
	return g.ID
}

func (w *world) collection(c *store.Collection) string {
	w.t.Helper()
	if err := w.st.CreateCollection(w.t.Context(), c); err != nil {
		w.t.Fatal(err)
	}
	return c.ID
}

func (w *world) poll() {
	w.t.Helper()
	if err := w.svc.Poll(w.t.Context()); err != nil {
		w.t.Fatal(err)
	}
}

type client struct {
	w    *world
	name string
}

// do sends a request and returns the status and body.
func (c *client) do(method, path, contentType string, body []byte) (int, []byte) {
	c.w.t.Helper()
	req, err := http.NewRequestWithContext(c.w.t.Context(), method, c.w.ts.URL+path, bytes.NewReader(body))
	if err != nil {
		c.w.t.Fatal(err)
	}
	if c.name != "" {
		req.SetBasicAuth(c.name, password)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if strings.HasPrefix(path, "/api/") {
		req.Header.Set("Accept", "application/taxii+json;version=2.1")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.w.t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, out
}

func (c *client) postJSON(path string, v any) (int, []byte) {
	c.w.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.w.t.Fatal(err)
	}
	return c.do(http.MethodPost, path, "application/json", b)
}

// share shares hashes through the API and returns the indicator id.
func (c *client) share(req hashmatch.ShareRequest) string {
	c.w.t.Helper()
	status, body := c.postJSON(hashmatch.Prefix+"share", req)
	if status != http.StatusOK {
		c.w.t.Fatalf("%s: share: %d %s", c.name, status, body)
	}
	var out hashmatch.ShareResponse
	if err := json.Unmarshal(body, &out); err != nil || out.Indicator == "" {
		c.w.t.Fatalf("share response %s: %v", body, err)
	}
	return out.Indicator
}

// match asks the match service about hashes and returns the raw body and
// the decoded result.
func (c *client) match(h hashmatch.Hashes) ([]byte, hashmatch.Result) {
	c.w.t.Helper()
	status, body := c.postJSON(hashmatch.Prefix+"match", hashmatch.MatchRequest{Hashes: h})
	if status != http.StatusOK {
		c.w.t.Fatalf("%s: match: %d %s", c.name, status, body)
	}
	var res hashmatch.Result
	if err := json.Unmarshal(body, &res); err != nil {
		c.w.t.Fatal(err)
	}
	return body, res
}

// matchFile uploads a file to the match service.
func (c *client) matchFile(data []byte) hashmatch.Result {
	c.w.t.Helper()
	status, body := c.do(http.MethodPost, hashmatch.Prefix+"match", "application/octet-stream", data)
	if status != http.StatusOK {
		c.w.t.Fatalf("%s: match file: %d %s", c.name, status, body)
	}
	var res hashmatch.Result
	if err := json.Unmarshal(body, &res); err != nil {
		c.w.t.Fatal(err)
	}
	return res
}

func ids(res hashmatch.Result) []string {
	out := []string{}
	for _, m := range res.Matches {
		out = append(out, m.Indicator)
	}
	return out
}

// picture draws a synthetic photograph-like image: smooth gradients,
// discs and a texture that depend on seed.
func picture(seed, wd, ht int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, wd, ht))
	s := float64(seed)
	for y := 0; y < ht; y++ {
		for x := 0; x < wd; x++ {
			fx, fy := float64(x)/float64(wd), float64(y)/float64(ht)
			v := 128 + 60*math.Sin(6*fx*(1+s/3)+s) + 50*math.Cos(5*fy*(1+s/5)-s)
			for k := 0; k < 3; k++ {
				cx, cy := 0.2+0.3*float64(k)+0.05*s, 0.3+0.2*math.Sin(s+float64(k))
				if (fx-cx)*(fx-cx)+(fy-cy)*(fy-cy) < 0.01*float64(k+1) {
					v = 255 - v
				}
			}
			c := uint8(math.Max(0, math.Min(255, v)))
			img.SetRGBA(x, y, color.RGBA{c, uint8(int(c) * (seed + 1) % 256), uint8(255 - int(c)), 255})
		}
	}
	return img
}

func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// resizedJPEG is img scaled to wd×ht and recompressed as JPEG.
func resizedJPEG(t *testing.T, img image.Image, wd, ht, quality int) []byte {
	t.Helper()
	dst := image.NewRGBA(image.Rect(0, 0, wd, ht))
	draw.CatmullRom.Scale(dst, dst.Bounds(), img, img.Bounds(), draw.Src, nil)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, dst, &jpeg.Options{Quality: quality}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
