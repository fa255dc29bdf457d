package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"
)

// throttleEnv is an Authenticator with a hand-driven clock over a store
// with the user ann.
type throttleEnv struct {
	ctx   context.Context
	st    store.Store
	auth  *Authenticator
	clock time.Time
	reg   *prometheus.Registry
}

func newThrottleEnv(t *testing.T, cfg ThrottleConfig) *throttleEnv {
	t.Helper()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// The lowest bcrypt cost keeps the test fast; the code path is the same.
	h, err := bcrypt.GenerateFromPassword([]byte("a-long-password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateUser(ctx, &store.User{Name: "ann", Role: RoleAnalyst, PasswordHash: string(h)}); err != nil {
		t.Fatal(err)
	}
	e := &throttleEnv{ctx: ctx, st: st, clock: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), reg: prometheus.NewRegistry()}
	e.auth, err = NewAuthenticatorWith(st, AuthOptions{Now: func() time.Time { return e.clock }, Throttle: cfg, Metrics: e.reg})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// retryAfter is the delay a throttled sign-in reports, 0 when it is not
// throttled.
func retryAfter(t *testing.T, err error) time.Duration {
	t.Helper()
	var te *ThrottledError
	if errors.As(err, &te) {
		if !errors.Is(err, ErrThrottled) {
			t.Error("ThrottledError is not ErrThrottled")
		}
		return te.RetryAfter
	}
	return 0
}

func TestSignInThrottle(t *testing.T) {
	e := newThrottleEnv(t, ThrottleConfig{Free: 3, Base: time.Second, Max: 8 * time.Second, Window: time.Hour})
	const attacker, owner, other = "198.51.100.7", "192.0.2.1", "203.0.113.9"
	// The owner signs in from its usual address.
	if _, err := e.auth.PasswordFrom(e.ctx, "ann", "a-long-password", owner); err != nil {
		t.Fatal(err)
	}
	// Three free failures, then delays that double: 1s, 2s, 4s, 8s, 8s.
	for i := range 3 {
		if _, err := e.auth.PasswordFrom(e.ctx, "ann", fmt.Sprint("guess-", i), attacker); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("free failure %d: %v", i, err)
		}
	}
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second} {
		if _, err := e.auth.PasswordFrom(e.ctx, "ann", "guess", attacker); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("failure %d: %v", i+4, err)
		}
		// Within the delay, even the right password is refused unchecked,
		// per address and per user name (from an address never seen).
		_, err := e.auth.PasswordFrom(e.ctx, "ann", "a-long-password", attacker)
		if got := retryAfter(t, err); got != want {
			t.Fatalf("after failure %d from the address: retry after %v (%v), want %v", i+4, got, err, want)
		}
		_, err = e.auth.PasswordFrom(e.ctx, "ann", "a-long-password", other)
		if got := retryAfter(t, err); got != want {
			t.Fatalf("after failure %d, for the user name from elsewhere: retry after %v (%v), want %v", i+4, got, err, want)
		}
		// The owner's usual address is not locked out by the attack.
		if _, err := e.auth.PasswordFrom(e.ctx, "ann", "a-long-password", owner); err != nil {
			t.Fatalf("owner during the attack: %v", err)
		}
		e.clock = e.clock.Add(want)
	}
	// Once the delay has passed, the right password works again: nobody
	// is locked out longer than Max.
	if _, err := e.auth.PasswordFrom(e.ctx, "ann", "a-long-password", other); err != nil {
		t.Fatalf("after the delay: %v", err)
	}
	// Another user name from the attacking address is throttled too (per
	// address) until its delay passes.
	if _, err := e.auth.PasswordFrom(e.ctx, "ann", "guess", attacker); !errors.Is(err, ErrUnauthenticated) {
		t.Fatal(err)
	}
	if _, err := e.auth.PasswordFrom(e.ctx, "bob", "whatever-pw", attacker); retryAfter(t, err) == 0 {
		t.Errorf("another user from the attacking address: %v, want throttled", err)
	}

	// Audit: each failure, and the start of delays.
	fails, err := e.st.ListAudit(e.ctx, store.AuditFilter{Action: "auth.failure"})
	if err != nil {
		t.Fatal(err)
	}
	if len(fails) != 9 || fails[0].Principal != "ann" || !strings.Contains(fails[0].Detail, attacker) {
		t.Errorf("auth.failure records: %d, first %+v", len(fails), fails[0])
	}
	if recs, _ := e.st.ListAudit(e.ctx, store.AuditFilter{Action: "auth.throttled"}); len(recs) == 0 {
		t.Error("no auth.throttled record")
	}
	// Metrics: failures by reason.
	got := gather(t, e.reg)
	if v := got[`mitra_auth_failures_total{reason="invalid",scheme="password"}`]; v != 9 {
		t.Errorf("invalid failures metric = %v, want 9 (%v)", v, got)
	}
	if v := got[`mitra_auth_failures_total{reason="throttled",scheme="password"}`]; v != 11 {
		t.Errorf("throttled metric = %v, want 11 (%v)", v, got)
	}
	if v, ok := got["mitra_auth_throttle_entries"]; !ok || v < 3 {
		t.Errorf("throttle entries metric = %v, %v", v, ok)
	}
}

func TestThrottleForgetsAndIsBounded(t *testing.T) {
	e := newThrottleEnv(t, ThrottleConfig{Free: 1, Base: time.Minute, Max: time.Minute, Window: time.Hour, MaxEntries: 5})
	for range 2 {
		e.auth.PasswordFrom(e.ctx, "ann", "guess", "192.0.2.1")
	}
	if _, err := e.auth.PasswordFrom(e.ctx, "ann", "a-long-password", "192.0.2.1"); retryAfter(t, err) == 0 {
		t.Fatalf("not throttled: %v", err)
	}
	// Failures are forgotten after the window: one more failure is free.
	e.clock = e.clock.Add(2 * time.Hour)
	e.auth.PasswordFrom(e.ctx, "ann", "guess", "192.0.2.1")
	if _, err := e.auth.PasswordFrom(e.ctx, "ann", "a-long-password", "192.0.2.1"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	// Whatever names and addresses an attacker sends, the tables stay
	// within MaxEntries each.
	for i := range 500 {
		e.auth.throttle.fail(fmt.Sprint("user", i), fmt.Sprintf("10.0.%d.%d", i/256, i%256), e.clock)
		e.auth.throttle.succeed(fmt.Sprint("user", i), "192.0.2.1", e.clock)
	}
	if n := e.auth.throttle.size(); n != 3*5 {
		t.Errorf("throttle tracks %d entries, bound is %d", n, 3*5)
	}
}

func TestPasswordLength(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	long := strings.Repeat("x", MaxPasswordBytes+1)
	if _, err := CreateUser(ctx, st, "ann", long, RoleAnalyst, ""); !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "72") {
		t.Errorf("73-byte password: %v, want ErrInvalid naming the limit", err)
	}
	if _, err := CreateUser(ctx, st, "ann", strings.Repeat("x", MaxPasswordBytes), RoleAnalyst, ""); err != nil {
		t.Errorf("72-byte password: %v", err)
	}
	auth := NewAuthenticator(st, nil)
	if _, err := auth.Password(ctx, "ann", long); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("sign-in with 73 bytes: %v", err)
	}
}

func TestTokenNeverExceedsItsUser(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := CreateUser(ctx, st, "rita", "a-long-password", RoleReadOnly, ""); err != nil {
		t.Fatal(err)
	}
	// CreateToken refuses a sensor token for a read-only user.
	if _, _, err := CreateToken(ctx, st, "rita", RoleSensor, 0, time.Now()); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("sensor token of a read-only user: %v", err)
	}
	// One made before the user was demoted (here: straight in the store)
	// can neither write (the user's role) nor read (the token's).
	secret, hash, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateToken(ctx, &store.Token{User: "rita", Hash: hash, Role: RoleSensor}); err != nil {
		t.Fatal(err)
	}
	p, err := NewAuthenticator(st, nil).Token(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	c := &store.Collection{Readers: []string{"rita"}, Writers: []string{"rita"}}
	if r, w := CollectionAccess(p, c); r || w {
		t.Errorf("sensor token of a read-only user: read=%v write=%v, want neither", r, w)
	}
}

// gather returns the counter and gauge values in reg by series name.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			name := mf.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil:
				out[name] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[name] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

func TestThrottleCountsIPv6PerSlash64(t *testing.T) {
	for addr, want := range map[string]string{
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1": "2001:db8:1:2::/64",
		"192.0.2.1":            "192.0.2.1",
		"::ffff:192.0.2.1":     "::ffff:192.0.2.1",
		"":                     "",
	} {
		if got := addrKey(addr); got != want {
			t.Errorf("addrKey(%q) = %q, want %q", addr, got, want)
		}
	}
}
