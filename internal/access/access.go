// Package access decides who is calling and what they may do: password and
// API-token authentication, roles, and per-collection read/write grants.
//
// Every read and write path asks this package; the store itself enforces no
// policy.
package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"
)

// Roles. Richer organisations and groups extend these later.
const (
	RoleAdmin    = "admin"
	RoleAnalyst  = "analyst"
	RoleReadOnly = "read-only"
	RoleSensor   = "sensor"
	// RoleRelay may submit objects whose created_by_ref names another
	// organisation: a hub or a federation peer relaying others' intelligence.
	RoleRelay = "relay"
)

// ValidRole reports whether r is a known role.
func ValidRole(r string) bool {
	switch r {
	case RoleAdmin, RoleAnalyst, RoleReadOnly, RoleSensor, RoleRelay:
		return true
	}
	return false
}

// ErrUnauthenticated means the credentials are missing, wrong, expired or
// revoked. It deliberately does not say which.
var ErrUnauthenticated = errors.New("unauthenticated")

// Principal is an authenticated caller.
type Principal struct {
	User         string
	Organisation string
	// Groups are the sharing groups the principal's organisation is in.
	Groups []string
	// Role is the effective role: a token's role when the caller used one.
	Role string
	// UserRole is the user's own role when the caller used a token. Roles
	// are not a chain (a sensor writes without reading, a read-only user
	// reads without writing), so a token gets what both its role and its
	// user's role allow: a token never exceeds its user.
	UserRole string
	TokenID  string
}

// MayRelay reports whether p may submit objects created by other
// organisations.
func (p *Principal) MayRelay() bool {
	return p != nil && (p.Role == RoleRelay || p.Role == RoleAdmin)
}

// IsAdmin reports whether p may use the admin API.
func (p *Principal) IsAdmin() bool { return p != nil && p.Role == RoleAdmin }

// MaxPasswordBytes is the longest password bcrypt takes.
const MaxPasswordBytes = 72

// HashPassword returns the bcrypt hash of pw.
func HashPassword(pw string) (string, error) {
	if len(pw) < 8 {
		return "", fmt.Errorf("password must have at least 8 characters: %w", store.ErrInvalid)
	}
	if len(pw) > MaxPasswordBytes {
		return "", fmt.Errorf("password must have at most %d bytes (bcrypt's limit), not %d: %w", MaxPasswordBytes, len(pw), store.ErrInvalid)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// RandomSecret returns n random bytes, base64url-encoded.
func RandomSecret(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// TokenPrefix marks Mitra API tokens, so that leaked ones are easy to spot.
const TokenPrefix = "mitra_"

// NewToken returns a fresh API token secret and the hash under which the
// store keeps it. The secret is shown once and never stored.
func NewToken() (secret, hash string, err error) {
	s, err := RandomSecret(32)
	if err != nil {
		return "", "", err
	}
	secret = TokenPrefix + s
	return secret, HashToken(secret), nil
}

// HashToken is the stored form of a token secret. Tokens carry 256 bits of
// randomness, so a fast hash is enough (unlike passwords).
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// DefaultTokenExpiry is the lifetime of tokens created without one, unless
// the server or the command is configured otherwise.
const DefaultTokenExpiry = 90 * 24 * time.Hour

// CreateToken makes a token for user with the given role (the user's own
// role when empty; never more than it) and lifetime (0: no expiry), stores
// it and returns the secret.
func CreateToken(ctx context.Context, s TokenStore, user, role string, ttl time.Duration, now time.Time) (string, *store.Token, error) {
	u, err := s.GetUser(ctx, user)
	if err != nil {
		return "", nil, err
	}
	if role == "" {
		role = u.Role
	}
	if !ValidRole(role) {
		return "", nil, fmt.Errorf("unknown role %q: %w", role, store.ErrInvalid)
	}
	if rank(role) > rank(u.Role) {
		return "", nil, fmt.Errorf("a token cannot have role %q above its user's role %q: %w", role, u.Role, store.ErrInvalid)
	}
	if role == RoleSensor && u.Role == RoleReadOnly {
		return "", nil, fmt.Errorf("a sensor token of a read-only user could neither read nor write: %w", store.ErrInvalid)
	}
	secret, hash, err := NewToken()
	if err != nil {
		return "", nil, err
	}
	t := &store.Token{User: user, Hash: hash, Role: role}
	if ttl > 0 {
		t.Expires = now.Add(ttl)
	}
	if err := s.CreateToken(ctx, t); err != nil {
		return "", nil, err
	}
	return secret, t, nil
}

// rank orders roles by power, for the rule that a token never exceeds its user.
func rank(role string) int {
	return slices.Index([]string{RoleSensor, RoleReadOnly, RoleAnalyst, RoleRelay, RoleAdmin}, role)
}

// Authenticator checks credentials against the store. Changes in the store
// (a deleted user, a revoked token) take effect on the next request.
type Authenticator struct {
	store UserStore
	now   func() time.Time
	log   *slog.Logger

	// bcrypt costs tens of milliseconds; remembering the last good password
	// per user (as a SHA-256 bound to the stored hash) keeps Basic auth
	// cheap for clients that send it with every request.
	mu    sync.Mutex
	cache map[string]cached
	dummy []byte

	throttle *throttle
	failures *prometheus.CounterVec
	// bcryptSlots bounds concurrent bcrypt checks, so that a sign-in storm
	// from many addresses waits for CPU instead of taking all of it.
	bcryptSlots chan struct{}
}

// dummyHash is the bcrypt hash an unknown user name's password is checked
// against, at the cost of HashPassword's. Every Authenticator of the
// process shares it: making it costs as much as a sign-in (about a second
// under the race detector, paid by every test server when each made its
// own), and which salt it has does not matter.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("timing equaliser"), bcrypt.DefaultCost)
	return h
})

type cached struct {
	storedHash string
	sum        [32]byte
}

// AuthOptions configures an Authenticator.
type AuthOptions struct {
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Throttle slows down repeated failed password sign-ins.
	Throttle ThrottleConfig
	// Metrics, when set, receives the authentication metrics.
	Metrics prometheus.Registerer
	// Logger; none when nil.
	Logger *slog.Logger
}

// NewAuthenticator returns an Authenticator on s with default options; now
// defaults to time.Now.
func NewAuthenticator(s UserStore, now func() time.Time) *Authenticator {
	a, _ := NewAuthenticatorWith(s, AuthOptions{Now: now}) // no registry: cannot fail
	return a
}

// NewAuthenticatorWith returns an Authenticator on s configured by o.
func NewAuthenticatorWith(s UserStore, o AuthOptions) (*Authenticator, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Authenticator{store: s, now: o.Now, log: o.Logger, cache: map[string]cached{}, dummy: dummyHash(), throttle: newThrottle(o.Throttle),
		bcryptSlots: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2)),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "mitra", Subsystem: "auth", Name: "failures_total",
			Help: "Refused sign-ins, by scheme (password, token) and reason (invalid credentials, throttled after failures)."}, []string{"scheme", "reason"})}
	if o.Metrics != nil {
		tracked := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "mitra", Subsystem: "auth", Name: "throttle_entries",
			Help: "User names, client addresses and known good pairs tracked by the sign-in throttle."}, func() float64 { return float64(a.throttle.size()) })
		for _, c := range []prometheus.Collector{a.failures, tracked} {
			if err := o.Metrics.Register(c); err != nil {
				return nil, fmt.Errorf("authentication metrics: %w", err)
			}
		}
	}
	return a, nil
}

// Password authenticates a user name and password (HTTP Basic) from an
// unknown client address.
func (a *Authenticator) Password(ctx context.Context, name, password string) (*Principal, error) {
	return a.PasswordFrom(ctx, name, password, "")
}

// PasswordFrom authenticates a user name and password sent from client
// address addr. After repeated failures for the name or from the address,
// attempts are refused with a *ThrottledError before any password is
// checked, so that guessing is slow and cannot burn the server's CPU on
// bcrypt. Failures are audited and counted.
func (a *Authenticator) PasswordFrom(ctx context.Context, name, password, addr string) (*Principal, error) {
	now := a.now()
	// The name is whatever the client sent: the throttle's tables and the
	// audit log keep at most 128 bytes of it, so their size stays bounded.
	key := name
	if len(key) > 128 {
		key = key[:128]
	}
	if w := a.throttle.wait(key, addr, now); w > 0 {
		a.failures.WithLabelValues("password", "throttled").Inc()
		return nil, &ThrottledError{RetryAfter: w}
	}
	p, err := a.password(ctx, name, password)
	if errors.Is(err, ErrUnauthenticated) {
		a.failures.WithLabelValues("password", "invalid").Inc()
		delayed := a.throttle.fail(key, addr, now)
		recs := []store.AuditRecord{{Principal: key, Action: "auth.failure", Detail: "password sign-in failed from " + orUnknown(addr)}}
		if delayed {
			recs = append(recs, store.AuditRecord{Principal: key, Action: "auth.throttled",
				Detail: "further sign-ins as this user or from " + orUnknown(addr) + " are delayed"})
		}
		if aerr := a.store.AppendAudit(ctx, recs...); aerr != nil {
			a.log.ErrorContext(ctx, "audit failed sign-in", "err", aerr)
		}
		return nil, err
	}
	if err == nil {
		a.throttle.succeed(key, addr, now)
	}
	return p, err
}

func orUnknown(addr string) string {
	if addr == "" {
		return "an unknown address"
	}
	return addr
}

func (a *Authenticator) password(ctx context.Context, name, password string) (*Principal, error) {
	if len(password) > MaxPasswordBytes {
		// No stored password is this long (HashPassword refuses them).
		return nil, ErrUnauthenticated
	}
	u, err := a.store.GetUser(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		// Spend the same time as a wrong password, so that user names
		// cannot be probed by timing.
		_ = a.compare(ctx, a.dummy, password)
		return nil, ErrUnauthenticated
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	sum := sha256.Sum256([]byte(password))
	a.mu.Lock()
	c, ok := a.cache[name]
	a.mu.Unlock()
	if !ok || c.storedHash != u.PasswordHash || subtle.ConstantTimeCompare(c.sum[:], sum[:]) != 1 {
		if err := a.compare(ctx, []byte(u.PasswordHash), password); err != nil {
			return nil, err
		}
		a.mu.Lock()
		a.cache[name] = cached{storedHash: u.PasswordHash, sum: sum}
		a.mu.Unlock()
	}
	return a.principal(ctx, u, u.Role, "")
}

// compare checks password against a bcrypt hash in one of the bounded
// slots: ErrUnauthenticated when it does not match.
func (a *Authenticator) compare(ctx context.Context, hash []byte, password string) error {
	select {
	case a.bcryptSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-a.bcryptSlots }()
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return ErrUnauthenticated
	}
	return nil
}

func (a *Authenticator) principal(ctx context.Context, u *store.User, role, tokenID string) (*Principal, error) {
	groups, err := a.store.GroupsOf(ctx, u.Organisation)
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	p := &Principal{User: u.Name, Organisation: u.Organisation, Groups: groups, Role: role, TokenID: tokenID}
	if tokenID != "" {
		p.UserRole = u.Role
	}
	return p, nil
}

// Token authenticates an API token (HTTP Bearer).
func (a *Authenticator) Token(ctx context.Context, secret string) (*Principal, error) {
	p, err := a.token(ctx, secret)
	if errors.Is(err, ErrUnauthenticated) {
		// Tokens carry 256 random bits: guessing them is hopeless, and
		// checking one is cheap, so failures are counted, not throttled.
		a.failures.WithLabelValues("token", "invalid").Inc()
	}
	return p, err
}

func (a *Authenticator) token(ctx context.Context, secret string) (*Principal, error) {
	if !strings.HasPrefix(secret, TokenPrefix) {
		return nil, ErrUnauthenticated
	}
	hash := HashToken(secret)
	t, err := a.store.TokenByHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnauthenticated
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	// The lookup is by hash; compare again in constant time so that the
	// decision never depends on a variable-time comparison of secrets.
	if subtle.ConstantTimeCompare([]byte(t.Hash), []byte(hash)) != 1 || t.Revoked {
		return nil, ErrUnauthenticated
	}
	if !t.Expires.IsZero() && !a.now().Before(t.Expires) {
		return nil, ErrUnauthenticated
	}
	u, err := a.store.GetUser(ctx, t.User)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnauthenticated
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	role := t.Role
	if rank(role) > rank(u.Role) {
		role = u.Role // the user was demoted after the token was made
	}
	return a.principal(ctx, u, role, t.ID)
}

// CollectionAccess says what p may do with collection c, through grants
// to the user, to its organisation or to a sharing group its organisation
// is in. A principal with neither right must not learn that the
// collection exists.
func CollectionAccess(p *Principal, c *store.Collection) (read, write bool) {
	read, write, _ = collectionAccess(p, c)
	return read, write
}

// collectionAccess also says through which grant p reads c.
func collectionAccess(p *Principal, c *store.Collection) (read, write bool, via string) {
	if p == nil {
		return false, false, ""
	}
	if slices.Contains(c.Readers, p.User) {
		read, via = true, "user grant"
	}
	write = slices.Contains(c.Writers, p.User)
	for _, g := range c.Grants {
		var match bool
		switch g.Kind {
		case store.GrantOrg:
			match = g.Subject == p.Organisation
		case store.GrantGroup:
			match = slices.Contains(p.Groups, g.Subject)
		}
		if !match {
			continue
		}
		if g.Read && !read {
			read, via = true, g.Kind+" grant "+g.Subject
		}
		write = write || g.Write
	}
	for _, role := range []string{p.Role, p.UserRole} {
		switch role {
		case RoleReadOnly:
			write = false
		case RoleSensor:
			// Sensors report sightings; they do not browse intelligence.
			read, via = false, ""
		}
	}
	return read, write, via
}

// CreateUser validates and stores a new user with a hashed password. The
// role defaults to analyst; the organisation to the default one.
func CreateUser(ctx context.Context, s UserCreator, name, password, role, organisation string) (*store.User, error) {
	if role == "" {
		role = RoleAnalyst
	}
	if !ValidRole(role) {
		return nil, fmt.Errorf("unknown role %q (admin, analyst, read-only, sensor): %w", role, store.ErrInvalid)
	}
	hash, err := HashPassword(password)
	if err != nil {
		return nil, err
	}
	u := &store.User{Name: name, Role: role, PasswordHash: hash, Organisation: organisation}
	if err := s.CreateUser(ctx, u); err != nil {
		return nil, err
	}
	return u, nil
}

// UserChange lists the changes to make to a user; nil fields stay as they
// are.
type UserChange struct {
	Role         *string
	Organisation *string // identity id
	Password     *string
}

// UpdateUser applies ch to the user named name, checking the role and
// hashing the new password, and returns the user as stored.
func UpdateUser(ctx context.Context, s interface {
	store.Users
	store.AccountChanges
}, name string, ch UserChange) (*store.User, error) {
	u, err := s.GetUser(ctx, name)
	if err != nil {
		return nil, err
	}
	if ch.Role != nil {
		if !ValidRole(*ch.Role) {
			return nil, fmt.Errorf("unknown role %q (admin, analyst, read-only, sensor, relay): %w", *ch.Role, store.ErrInvalid)
		}
		u.Role = *ch.Role
	}
	if ch.Organisation != nil {
		u.Organisation = *ch.Organisation
	}
	if ch.Password != nil {
		if u.PasswordHash, err = HashPassword(*ch.Password); err != nil {
			return nil, err
		}
	}
	if err := s.UpdateUser(ctx, u); err != nil {
		return nil, err
	}
	return u, nil
}
