package taxii_test

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxii"
	"github.com/prometheus/client_golang/prometheus"
)

func TestSensorTokenOfReadOnlyUserCannotPost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.user("rita", access.RoleReadOnly)
	e.user("sam", access.RoleAnalyst)
	c := e.collection("", []string{"rita", "sam"}, []string{"rita", "sam"})
	// A sensor token of a read-only user: made straight in the store (as
	// before rita was demoted), since CreateToken refuses it.
	token := func(user string) string {
		secret, hash, err := access.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		if err := e.st.CreateToken(e.ctx, &store.Token{User: user, Hash: hash, Role: access.RoleSensor}); err != nil {
			t.Fatal(err)
		}
		return secret
	}
	r := e.bearer(token("rita")).do(http.MethodPost, objectsPath(c.ID), envelope(malware(1, created)))
	if r.status != http.StatusForbidden && r.status != http.StatusNotFound {
		t.Fatalf("sensor token of a read-only user: POST answered %d: %s", r.status, r.body)
	}
	r.wantError(r.status)
	// The same token of an analyst writes.
	e.bearer(token("sam")).do(http.MethodPost, objectsPath(c.ID), envelope(malware(2, created))).ok(http.StatusAccepted)
	page, err := e.st.QueryObjects(e.ctx, c.ID, store.Query{})
	if err != nil || len(page.Entries) != 1 || page.Entries[0].ID != malwareID(2) {
		t.Fatalf("stored: %+v, %v", page, err)
	}
}

func TestSignInThrottleOverHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *taxii.Config) {
		a, err := access.NewAuthenticatorWith(c.Store.(access.UserStore), access.AuthOptions{Throttle: access.ThrottleConfig{Free: 2, Base: 30 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		c.Auth = a
	})
	e.user("alice", access.RoleAnalyst)
	wrong := e.basic("alice", "not the password")
	wrong.get("/taxii2/").wantError(http.StatusUnauthorized)
	wrong.get("/taxii2/").wantError(http.StatusUnauthorized)
	wrong.get("/taxii2/").wantError(http.StatusUnauthorized) // the third failure starts a delay
	for _, cl := range []*client{wrong, e.basic("alice", password), e.basic("bob", "whatever-password")} {
		r := cl.get("/taxii2/")
		r.wantError(http.StatusTooManyRequests)
		if ra := r.header.Get("Retry-After"); ra != "30" {
			t.Errorf("Retry-After = %q, want 30", ra)
		}
	}
	recs, err := e.st.ListAudit(e.ctx, store.AuditFilter{Action: "auth."})
	if err != nil {
		t.Fatal(err)
	}
	var fails, throttled int
	for _, r := range recs {
		switch r.Action {
		case "auth.failure":
			fails++
			if r.Principal != "alice" || !strings.Contains(r.Detail, "127.0.0.1") {
				t.Errorf("audit record %+v", r)
			}
		case "auth.throttled":
			throttled++
		}
	}
	if fails != 3 || throttled != 1 {
		t.Errorf("audit: %d failures, %d throttled; want 3, 1: %+v", fails, throttled, recs)
	}
}

func TestBareObjectPostIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", access.RoleAnalyst)
	c := e.collection("", []string{"alice"}, []string{"alice"})
	for _, body := range []string{
		malware(1, created),
		`{"type":"bundle","id":"bundle--` + uuidN(1) + `"}`,
	} {
		r := alice.do(http.MethodPost, objectsPath(c.ID), []byte(body))
		er := r.wantError(http.StatusBadRequest)
		if d, _ := er["description"].(string); !strings.Contains(d, "not a TAXII envelope") {
			t.Errorf("description %q does not say the body is not an envelope", d)
		}
	}
	// Envelopes, empty ones included, are still taken.
	alice.do(http.MethodPost, objectsPath(c.ID), []byte(`{"more":false}`)).ok(http.StatusAccepted)
	alice.do(http.MethodPost, objectsPath(c.ID), []byte(`{"objects":[`+malware(2, created)+`],"type":"custom"}`)).ok(http.StatusAccepted)
	page, err := e.st.QueryObjects(e.ctx, c.ID, store.Query{})
	if err != nil || len(page.Entries) != 1 || page.Entries[0].ID != malwareID(2) {
		t.Fatalf("stored: %+v, %v", page, err)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	anon := e.anonymous()
	for _, p := range []string{"/healthz", "/readyz"} {
		r := anon.get(p)
		r.want(http.StatusOK)
		if r.header.Get("WWW-Authenticate") != "" {
			t.Errorf("%s asks for credentials", p)
		}
	}
	// A store that cannot answer makes the server not ready, but alive.
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	anon.get("/readyz").want(http.StatusServiceUnavailable)
	anon.get("/healthz").want(http.StatusOK)
}

func TestHTTPAndIngestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	e := newEnv(t, func(c *taxii.Config) { c.Metrics = reg })
	alice := e.user("alice", access.RoleAnalyst)
	c := e.collection("", []string{"alice"}, []string{"alice"})
	alice.post(c.ID, malware(1, created), malware(2, created), `{"type":"malware","id":"bad"}`)
	alice.get(objectsPath(c.ID)).ok(http.StatusOK)
	e.anonymous().get("/taxii2/").wantError(http.StatusUnauthorized)

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%s", l.GetName(), l.GetValue()))
			}
			key := mf.GetName() + "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.GetCounter() != nil:
				got[key] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				got[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	objects := "/api/collections/{collection}/objects/"
	for key, want := range map[string]float64{
		"mitra_http_requests_total{code=202,endpoint=" + objects + ",method=POST}":  1,
		"mitra_http_requests_total{code=200,endpoint=" + objects + ",method=GET}":   1,
		"mitra_http_requests_total{code=401,endpoint=/taxii2/,method=GET}":          1,
		"mitra_http_request_duration_seconds{endpoint=" + objects + ",method=POST}": 1,
		"mitra_http_request_duration_seconds{endpoint=/taxii2/,method=GET}":         1,
		"mitra_ingest_objects_total{collection=" + c.ID + ",outcome=accepted}":      2,
		"mitra_ingest_objects_total{collection=" + c.ID + ",outcome=refused}":       1,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v", key, got[key], want)
		}
	}
	if t.Failed() {
		t.Logf("gathered: %v", got)
	}
}

func TestConcurrentUploadCap(t *testing.T) {
	t.Parallel()
	body := envelope(malware(1, created))
	e := newEnv(t, func(c *taxii.Config) {
		// Room for one upload of this size at a time.
		c.UploadMemory = int64(len(body)) + 10
		c.UploadWait = 50 * time.Millisecond
	})
	alice := e.user("alice", access.RoleAnalyst)
	c := e.collection("", []string{"alice"}, []string{"alice"})

	// A slow upload holds its reservation while its body trickles in.
	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.ts.URL+objectsPath(c.ID), pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", taxiiMT)
	req.Header.Set("Accept", taxiiMT)
	req.SetBasicAuth("alice", password)
	slow := make(chan *resp, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			slow <- &resp{status: -1, body: []byte(err.Error())}
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		slow <- &resp{status: res.StatusCode, body: b}
	}()
	if _, err := pw.Write(body[:10]); err != nil {
		t.Fatal(err)
	}
	// Another upload finds no room: 503 with Retry-After.
	var busy *resp
	for range 100 {
		r := alice.do(http.MethodPost, objectsPath(c.ID), envelope(malware(2, created)))
		if r.status == http.StatusServiceUnavailable {
			busy = r
			break
		}
		r.want(http.StatusAccepted) // the slow one had not reserved yet
		time.Sleep(20 * time.Millisecond)
	}
	if busy == nil {
		t.Fatal("no 503 while the cap was held")
	}
	busy.wantError(http.StatusServiceUnavailable)
	if busy.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	// The slow upload completes, and frees its room.
	if _, err := pw.Write(body[10:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if r := <-slow; r.status != http.StatusAccepted {
		t.Fatalf("slow upload: %d %s", r.status, r.body)
	}
	alice.do(http.MethodPost, objectsPath(c.ID), envelope(malware(3, created))).ok(http.StatusAccepted)
}

func TestThrottleKeysOnTheClientBehindTrustedProxies(t *testing.T) {
	t.Parallel()
	throttled := func(trusted bool) func(*taxii.Config) {
		return func(c *taxii.Config) {
			a, err := access.NewAuthenticatorWith(c.Store.(access.UserStore), access.AuthOptions{Throttle: access.ThrottleConfig{Free: 1, Base: 30 * time.Second}})
			if err != nil {
				t.Fatal(err)
			}
			c.Auth = a
			if trusted {
				c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
			}
		}
	}
	for _, trusted := range []bool{true, false} {
		e := newEnv(t, throttled(trusted))
		e.user("alice", access.RoleAnalyst)
		from := func(user, pw, xff string) *resp {
			return e.basic(user, pw).do(http.MethodGet, "/taxii2/", nil, "X-Forwarded-For", xff)
		}
		from("mallory", "guess-guess", "10.9.9.9, 198.51.100.1").wantError(http.StatusUnauthorized)
		from("mallory", "guess-guess", "10.9.9.9, 198.51.100.1").wantError(http.StatusUnauthorized)
		// The attacking client is delayed...
		from("alice", password, "198.51.100.1").wantError(http.StatusTooManyRequests)
		// ...and another client behind the same proxy is not, when the
		// proxy is trusted. Otherwise the header proves nothing: a client
		// cannot escape its delay by sending one.
		r := from("alice", password, "198.51.100.2")
		if trusted {
			r.ok(http.StatusOK)
		} else {
			r.wantError(http.StatusTooManyRequests)
		}
	}
}
