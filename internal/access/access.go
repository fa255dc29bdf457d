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
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
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
	Role    string
	TokenID string
}

// MayRelay reports whether p may submit objects created by other
// organisations.
func (p *Principal) MayRelay() bool {
	return p != nil && (p.Role == RoleRelay || p.Role == RoleAdmin)
}

// IsAdmin reports whether p may use the admin API.
func (p *Principal) IsAdmin() bool { return p != nil && p.Role == RoleAdmin }

// HashPassword returns the bcrypt hash of pw.
func HashPassword(pw string) (string, error) {
	if len(pw) < 8 {
		return "", fmt.Errorf("password must have at least 8 characters: %w", store.ErrInvalid)
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

	// bcrypt costs tens of milliseconds; remembering the last good password
	// per user (as a SHA-256 bound to the stored hash) keeps Basic auth
	// cheap for clients that send it with every request.
	mu    sync.Mutex
	cache map[string]cached
	dummy []byte
}

type cached struct {
	storedHash string
	sum        [32]byte
}

// NewAuthenticator returns an Authenticator on s; now defaults to time.Now.
func NewAuthenticator(s UserStore, now func() time.Time) *Authenticator {
	if now == nil {
		now = time.Now
	}
	dummy, _ := bcrypt.GenerateFromPassword([]byte("timing equaliser"), bcrypt.DefaultCost)
	return &Authenticator{store: s, now: now, cache: map[string]cached{}, dummy: dummy}
}

// Password authenticates a user name and password (HTTP Basic).
func (a *Authenticator) Password(ctx context.Context, name, password string) (*Principal, error) {
	u, err := a.store.GetUser(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		// Spend the same time as a wrong password, so that user names
		// cannot be probed by timing.
		_ = bcrypt.CompareHashAndPassword(a.dummy, []byte(password))
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
		if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil {
			return nil, ErrUnauthenticated
		}
		a.mu.Lock()
		a.cache[name] = cached{storedHash: u.PasswordHash, sum: sum}
		a.mu.Unlock()
	}
	return a.principal(ctx, u, u.Role, "")
}

func (a *Authenticator) principal(ctx context.Context, u *store.User, role, tokenID string) (*Principal, error) {
	groups, err := a.store.GroupsOf(ctx, u.Organisation)
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	return &Principal{User: u.Name, Organisation: u.Organisation, Groups: groups, Role: role, TokenID: tokenID}, nil
}

// Token authenticates an API token (HTTP Bearer).
func (a *Authenticator) Token(ctx context.Context, secret string) (*Principal, error) {
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
	switch p.Role {
	case RoleReadOnly:
		write = false
	case RoleSensor:
		// Sensors report sightings; they do not browse intelligence.
		read, via = false, ""
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
