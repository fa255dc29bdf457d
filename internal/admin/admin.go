// Package admin is Mitra's administration REST API (JSON over HTTP): users,
// collections with their grants, and API tokens. It offers what the
// `mitra user|collection|token` commands do, for callers over the network.
// Only principals with the admin role may use it.
package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/federation"
	"github.com/mitra-cert/mitra/internal/store"
)

// Handler serves the admin API under Prefix, and the account API (a
// user's own password) under AccountPrefix.
type Handler struct {
	store       Store
	authn       func(*http.Request) (*access.Principal, error)
	auth        *access.Authenticator
	log         *slog.Logger
	now         func() time.Time
	mux         *http.ServeMux
	prefix      string
	tokenExpiry time.Duration
	clientAddr  func(*http.Request) string
	sealer      *federation.Sealer
}

// Prefix is where the admin API lives.
const Prefix = "/admin/"

// AccountPrefix is where users manage their own account.
const AccountPrefix = "/account/"

// Options configures a Handler.
type Options struct {
	Log *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Auth checks the current password of a password change, through its
	// sign-in throttle; a default Authenticator on the store when nil.
	Auth *access.Authenticator
	// TokenExpiry is the lifetime of tokens created without "expires"
	// (0: such tokens never expire).
	TokenExpiry time.Duration
	// ClientAddr names the client of a request for sign-in throttling (the
	// TAXII server's, which knows the trusted proxies); the connection's
	// address when nil.
	ClientAddr func(*http.Request) string
	// PeerSealer seals the credentials of peers added over the API; nil
	// when no key is configured (such peers are then refused).
	PeerSealer *federation.Sealer
}

// New returns the admin API with default options (tokens expire after
// access.DefaultTokenExpiry). authn authenticates a request (the TAXII
// server's Authenticate, so both APIs take the same credentials).
func New(s Store, authn func(*http.Request) (*access.Principal, error), log *slog.Logger, now func() time.Time) *Handler {
	return NewWith(s, authn, Options{Log: log, Now: now, TokenExpiry: access.DefaultTokenExpiry})
}

// NewWith returns the admin API configured by o.
func NewWith(s Store, authn func(*http.Request) (*access.Principal, error), o Options) *Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Auth == nil {
		o.Auth = access.NewAuthenticator(s, o.Now)
	}
	if o.ClientAddr == nil {
		o.ClientAddr = remoteHost
	}
	h := &Handler{store: s, authn: authn, auth: o.Auth, log: o.Log, now: o.Now, mux: http.NewServeMux(), prefix: Prefix, tokenExpiry: o.TokenExpiry, clientAddr: o.ClientAddr}
	// Every change names its audit action (the same names as the
	// command-line tools use).
	h.mux.HandleFunc("GET /admin/users", h.wrap("", h.listUsers))
	h.mux.HandleFunc("POST /admin/users", h.wrap("admin.user.create", h.createUser))
	h.mux.HandleFunc("PATCH /admin/users/{name}", h.wrap("admin.user.update", h.updateUser))
	h.mux.HandleFunc("DELETE /admin/users/{name}", h.wrap("admin.user.delete", h.deleteUser))
	h.mux.HandleFunc("GET /admin/collections", h.wrap("", h.listCollections))
	h.mux.HandleFunc("POST /admin/collections", h.wrap("admin.collection.create", h.createCollection))
	h.mux.HandleFunc("DELETE /admin/collections/{id}", h.wrap("admin.collection.delete", h.deleteCollection))
	h.mux.HandleFunc("PUT /admin/collections/{id}/grants/{user}", h.wrap("admin.collection.grant", h.setGrant))
	h.mux.HandleFunc("PUT /admin/collections/{id}/policy", h.wrap("admin.collection.policy", h.setPolicy))
	h.mux.HandleFunc("GET /admin/tokens", h.wrap("", h.listTokens))
	h.mux.HandleFunc("POST /admin/tokens", h.wrap("admin.token.create", h.createToken))
	h.mux.HandleFunc("DELETE /admin/tokens/{id}", h.wrap("admin.token.revoke", h.revokeToken))
	h.mux.HandleFunc("GET /admin/orgs", h.wrap("", h.listOrgs))
	h.mux.HandleFunc("POST /admin/orgs", h.wrap("admin.org.create", h.createOrg))
	h.mux.HandleFunc("DELETE /admin/orgs/{id}", h.wrap("admin.org.delete", h.deleteOrg))
	h.mux.HandleFunc("GET /admin/groups", h.wrap("", h.listGroups))
	h.mux.HandleFunc("POST /admin/groups", h.wrap("admin.group.create", h.createGroup))
	h.mux.HandleFunc("PUT /admin/groups/{id}/orgs", h.wrap("admin.group.members", h.setGroupOrgs))
	h.mux.HandleFunc("DELETE /admin/groups/{id}", h.wrap("admin.group.delete", h.deleteGroup))
	h.mux.HandleFunc("PUT /admin/collections/{id}/org-grants/{org}", h.wrap("admin.collection.grant", h.setPartyGrant(store.GrantOrg, "org")))
	h.mux.HandleFunc("PUT /admin/collections/{id}/group-grants/{group}", h.wrap("admin.collection.grant", h.setPartyGrant(store.GrantGroup, "group")))
	h.mux.HandleFunc("GET /admin/audit", h.wrap("", h.listAudit))
	h.peerRoutes(o.PeerSealer)
	h.mux.HandleFunc("/admin/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusNotFound, "no admin endpoint "+r.Method+" "+r.URL.Path)
	})
	h.mux.HandleFunc("PUT /account/password", h.serve("user.password", false, h.changeOwnPassword))
	h.mux.HandleFunc("/account/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusNotFound, "no account endpoint "+r.Method+" "+r.URL.Path)
	})
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// apiFunc serves one request. The object of a change is read from the
// path, or from the view returned for a created object (changedObject).
type apiFunc func(r *http.Request, p *access.Principal) (status int, body any, err error)

// wrap serves fn to admins; action, when set, names the change for the
// audit log.
func (h *Handler) wrap(action string, fn apiFunc) http.HandlerFunc {
	return h.serve(action, true, fn)
}

func (h *Handler) serve(action string, adminOnly bool, fn apiFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := h.authn(r)
		if err != nil {
			var throttled *access.ThrottledError
			switch {
			case errors.As(err, &throttled):
				w.Header().Set("Retry-After", strconv.Itoa(throttled.RetryAfterSeconds()))
				writeErr(w, http.StatusTooManyRequests, throttled.Error())
			case errors.Is(err, access.ErrUnauthenticated):
				w.Header().Set("WWW-Authenticate", `Basic realm="mitra", charset="UTF-8", Bearer realm="mitra"`)
				writeErr(w, http.StatusUnauthorized, "authentication required")
			default:
				h.log.ErrorContext(r.Context(), "admin: authenticate", "err", err)
				writeErr(w, http.StatusInternalServerError, "internal error")
			}
			return
		}
		if adminOnly && !p.IsAdmin() {
			writeErr(w, http.StatusForbidden, "the admin API needs the admin role")
			return
		}
		status, body, err := fn(r, p)
		if err != nil {
			var throttled *access.ThrottledError
			switch {
			case errors.As(err, &throttled):
				w.Header().Set("Retry-After", strconv.Itoa(throttled.RetryAfterSeconds()))
				writeErr(w, http.StatusTooManyRequests, throttled.Error())
			case errors.Is(err, access.ErrUnauthenticated):
				writeErr(w, http.StatusForbidden, "the current password is wrong")
			case errors.Is(err, store.ErrNotFound):
				writeErr(w, http.StatusNotFound, err.Error())
			case errors.Is(err, store.ErrConflict):
				writeErr(w, http.StatusConflict, err.Error())
			case errors.Is(err, store.ErrInvalid), errors.Is(err, errBadBody):
				writeErr(w, http.StatusBadRequest, err.Error())
			default:
				h.log.ErrorContext(r.Context(), "admin: internal error", "path", r.URL.Path, "err", err)
				writeErr(w, http.StatusInternalServerError, "internal error; it is logged")
			}
			return
		}
		if action != "" {
			obj := changedObject(r, body)
			if !adminOnly {
				obj = p.User // the caller's own account
			}
			h.log.InfoContext(r.Context(), "admin change", "user", p.User, "action", action, "object", obj, "status", status)
			// Every change is audited: who, what, and the object changed.
			// A failure to record it is reported; the change itself stands.
			rec := store.AuditRecord{Principal: p.User, Organisation: p.Organisation, Action: action, Path: r.Method + " " + r.URL.Path,
				Objects: []string{obj}, Detail: fmt.Sprint(status)}
			if strings.HasPrefix(action, "admin.collection.") {
				rec.Collection = r.PathValue("id")
				if c, ok := body.(Collection); ok {
					rec.Collection = c.ID
				}
			}
			if t, ok := body.(Token); ok {
				rec.Detail = fmt.Sprintf("%d: token for user %s, role %s", status, t.User, t.Role)
			}
			if err := h.store.AppendAudit(r.Context(), rec); err != nil {
				h.log.ErrorContext(r.Context(), "admin: audit", "err", err)
			}
		}
		if body == nil {
			w.WriteHeader(status)
			return
		}
		if pg, ok := body.(paged); ok {
			w.Header().Set("Link", pg.next)
			body = pg.items
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(body)
	}
}

// changedObject names the object of a change: the one in the path (by its
// id when the answer carries it, since paths may use names), else the one
// created.
func changedObject(r *http.Request, body any) string {
	var parts []string
	for _, k := range []string{"name", "id", "user", "org", "group"} {
		if v := r.PathValue(k); v != "" {
			parts = append(parts, v)
		}
	}
	var id string
	switch v := body.(type) {
	case User:
		id = v.Name
	case Collection:
		id = v.ID
	case Token:
		id = v.ID
	case Organisation:
		id = v.ID
	case Group:
		id = v.ID
	case Peer:
		id = v.Name
	}
	switch {
	case id == "":
	case len(parts) > 0:
		parts[0] = id
	default:
		parts = []string{id}
	}
	return strings.Join(parts, "/")
}

var errBadBody = errors.New("bad request body")

func writeErr(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.Join(errBadBody, err)
	}
	return nil
}

// User is the admin API's view of a user; the password hash never leaves.
type User struct {
	Name         string    `json:"name"`
	Organisation string    `json:"organisation"`
	Role         string    `json:"role"`
	Created      time.Time `json:"created"`
}

func userView(u *store.User) User {
	return User{Name: u.Name, Organisation: u.Organisation, Role: u.Role, Created: u.Created}
}

func (h *Handler) listUsers(r *http.Request, _ *access.Principal) (int, any, error) {
	us, err := h.store.ListUsers(r.Context())
	return list(us, err, userView)
}

func (h *Handler) createUser(r *http.Request, _ *access.Principal) (int, any, error) {
	var in struct {
		Name         string `json:"name"`
		Password     string `json:"password"`
		Role         string `json:"role"`
		Organisation string `json:"organisation"` // name or identity id; default organisation when empty
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	org := ""
	if in.Organisation != "" {
		o, err := h.store.GetOrganisation(r.Context(), in.Organisation)
		if err != nil {
			return 0, nil, err
		}
		org = o.ID
	}
	u, err := access.CreateUser(r.Context(), h.store, in.Name, in.Password, in.Role, org)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, userView(u), nil
}

// updateUser handles PATCH /admin/users/{name} with any of "role",
// "organisation" (name or identity id) and "password".
func (h *Handler) updateUser(r *http.Request, p *access.Principal) (int, any, error) {
	var in struct {
		Role         *string `json:"role"`
		Organisation *string `json:"organisation"`
		Password     *string `json:"password"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	name := r.PathValue("name")
	if name == p.User && in.Role != nil && *in.Role != access.RoleAdmin {
		return 0, nil, errors.Join(store.ErrInvalid, errors.New("you cannot take the admin role from yourself"))
	}
	ch := access.UserChange{Role: in.Role, Password: in.Password}
	if in.Organisation != nil {
		o, err := h.store.GetOrganisation(r.Context(), *in.Organisation)
		if err != nil {
			return 0, nil, fmt.Errorf("organisation %q: %w", *in.Organisation, err)
		}
		ch.Organisation = &o.ID
	}
	u, err := access.UpdateUser(r.Context(), h.store, name, ch)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, userView(u), nil
}

// changeOwnPassword handles PUT /account/password with {"current": ...,
// "new": ...}: any user changes their own password. The current password
// is checked like a sign-in (throttled, audited when wrong), so that a
// stolen token cannot take over the account.
func (h *Handler) changeOwnPassword(r *http.Request, p *access.Principal) (int, any, error) {
	var in struct {
		Current string `json:"current"`
		New     string `json:"new"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if _, err := h.auth.PasswordFrom(r.Context(), p.User, in.Current, h.clientAddr(r)); err != nil {
		return 0, nil, err
	}
	if _, err := access.UpdateUser(r.Context(), h.store, p.User, access.UserChange{Password: &in.New}); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// remoteHost is the connection's address without the port.
func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (h *Handler) deleteUser(r *http.Request, p *access.Principal) (int, any, error) {
	name := r.PathValue("name")
	if name == p.User {
		return 0, nil, errors.Join(store.ErrInvalid, errors.New("you cannot delete yourself"))
	}
	if err := h.store.DeleteUser(r.Context(), name); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// Grant is a collection grant to an organisation or a sharing group.
type Grant struct {
	Kind    string `json:"kind"` // "org" or "group"
	Subject string `json:"subject"`
	Read    bool   `json:"read"`
	Write   bool   `json:"write"`
}

// Collection is the admin API's view of a collection.
type Collection struct {
	ID          string    `json:"id"`
	Title       string    `json:"title"`
	Description string    `json:"description,omitempty"`
	Alias       string    `json:"alias,omitempty"`
	Readers     []string  `json:"readers"`
	Writers     []string  `json:"writers"`
	Grants      []Grant   `json:"grants"`
	DefaultTLP  string    `json:"default_tlp"`
	Recipients  []string  `json:"recipients"`
	Created     time.Time `json:"created"`
}

func collectionView(c *store.Collection) Collection {
	v := Collection{ID: c.ID, Title: c.Title, Description: c.Description, Alias: c.Alias, Readers: c.Readers, Writers: c.Writers, Created: c.Created,
		Grants: []Grant{}, DefaultTLP: access.TLP(c.DefaultTLP).String(), Recipients: append([]string{}, c.Recipients...)}
	for _, g := range c.Grants {
		v.Grants = append(v.Grants, Grant(g))
	}
	if v.Readers == nil {
		v.Readers = []string{}
	}
	if v.Writers == nil {
		v.Writers = []string{}
	}
	return v
}

func (h *Handler) listCollections(r *http.Request, _ *access.Principal) (int, any, error) {
	cs, err := h.store.ListCollections(r.Context())
	return list(cs, err, collectionView)
}

func (h *Handler) createCollection(r *http.Request, _ *access.Principal) (int, any, error) {
	var in struct {
		Title       string   `json:"title"`
		Description string   `json:"description"`
		Alias       string   `json:"alias"`
		Readers     []string `json:"readers"`
		Writers     []string `json:"writers"`
		DefaultTLP  string   `json:"default_tlp"` // AMBER when empty
		Recipients  []string `json:"recipients"`  // organisation names or identity ids
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	c := &store.Collection{Title: in.Title, Description: in.Description, Alias: in.Alias, Readers: in.Readers, Writers: in.Writers}
	var err error
	if c.DefaultTLP, c.Recipients, err = h.policy(r, in.DefaultTLP, in.Recipients); err != nil {
		return 0, nil, err
	}
	if err := h.store.CreateCollection(r.Context(), c); err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, collectionView(c), nil
}

// policy reads a collection policy: the default TLP by name (AMBER when
// empty) and recipient organisations by name or id.
func (h *Handler) policy(r *http.Request, tlp string, recipients []string) (int, []string, error) {
	level := access.TLPAmber
	if tlp != "" {
		var err error
		if level, err = access.ParseTLP(tlp); err != nil || level == access.TLPUnmarked {
			return 0, nil, errors.Join(errBadBody, fmt.Errorf("default_tlp %q: use clear, green, amber, amber+strict or red", tlp))
		}
	}
	var ids []string
	for _, name := range recipients {
		o, err := h.store.GetOrganisation(r.Context(), name)
		if err != nil {
			return 0, nil, fmt.Errorf("recipient %q: %w", name, err)
		}
		ids = append(ids, o.ID)
	}
	return int(level), ids, nil
}

// setPolicy handles PUT /admin/collections/{id}/policy with
// {"default_tlp": "amber", "recipients": ["org", ...]}.
func (h *Handler) setPolicy(r *http.Request, _ *access.Principal) (int, any, error) {
	var in struct {
		DefaultTLP string   `json:"default_tlp"`
		Recipients []string `json:"recipients"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	c, err := h.store.GetCollection(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	tlp, recipients, err := h.policy(r, in.DefaultTLP, in.Recipients)
	if err != nil {
		return 0, nil, err
	}
	if err := h.store.SetCollectionPolicy(r.Context(), c.ID, tlp, recipients); err != nil {
		return 0, nil, err
	}
	if c, err = h.store.GetCollection(r.Context(), c.ID); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, collectionView(c), nil
}

func (h *Handler) deleteCollection(r *http.Request, _ *access.Principal) (int, any, error) {
	if err := h.store.DeleteCollection(r.Context(), r.PathValue("id")); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

func (h *Handler) setGrant(r *http.Request, _ *access.Principal) (int, any, error) {
	var in struct {
		Read  bool `json:"read"`
		Write bool `json:"write"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if err := h.store.SetGrant(r.Context(), r.PathValue("id"), r.PathValue("user"), in.Read, in.Write); err != nil {
		return 0, nil, err
	}
	c, err := h.store.GetCollection(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, collectionView(c), nil
}

// Token is the admin API's view of a token; the secret appears only in the
// answer to its creation.
type Token struct {
	ID      string     `json:"id"`
	User    string     `json:"user"`
	Role    string     `json:"role"`
	Created time.Time  `json:"created"`
	Expires *time.Time `json:"expires,omitempty"`
	Revoked bool       `json:"revoked"`
	Token   string     `json:"token,omitempty"`
}

func tokenView(t *store.Token) Token {
	v := Token{ID: t.ID, User: t.User, Role: t.Role, Created: t.Created, Revoked: t.Revoked}
	if !t.Expires.IsZero() {
		e := t.Expires
		v.Expires = &e
	}
	return v
}

func (h *Handler) listTokens(r *http.Request, _ *access.Principal) (int, any, error) {
	ts, err := h.store.ListTokens(r.Context(), r.URL.Query().Get("user"))
	return list(ts, err, tokenView)
}

func (h *Handler) createToken(r *http.Request, _ *access.Principal) (int, any, error) {
	var in struct {
		User    string `json:"user"`
		Role    string `json:"role"`
		Expires string `json:"expires"` // a Go duration such as "720h", or "never"; empty: the server's default
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	ttl := h.tokenExpiry
	switch in.Expires {
	case "":
	case "never":
		ttl = 0
	default:
		d, err := time.ParseDuration(in.Expires)
		if err != nil || d <= 0 {
			return 0, nil, errors.Join(errBadBody, errors.New(`expires must be a positive duration such as "720h", or "never"`))
		}
		ttl = d
	}
	secret, t, err := access.CreateToken(r.Context(), h.store, in.User, in.Role, ttl, h.now())
	if err != nil {
		return 0, nil, err
	}
	v := tokenView(t)
	v.Token = secret
	return http.StatusCreated, v, nil
}

func (h *Handler) revokeToken(r *http.Request, _ *access.Principal) (int, any, error) {
	if err := h.store.RevokeToken(r.Context(), r.PathValue("id")); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// Organisation is the admin API's view of an organisation.
type Organisation struct {
	ID                 string    `json:"id"`
	Name               string    `json:"name"`
	AnonymiseSightings bool      `json:"anonymise_sightings"`
	Default            bool      `json:"default"`
	Created            time.Time `json:"created"`
	// Identity is the organisation's STIX identity object.
	Identity json.RawMessage `json:"identity"`
}

func orgView(o *store.Organisation) Organisation {
	return Organisation{ID: o.ID, Name: o.Name, AnonymiseSightings: o.AnonymiseSightings, Default: o.Default, Created: o.Created, Identity: access.IdentityObject(o)}
}

func (h *Handler) listOrgs(r *http.Request, _ *access.Principal) (int, any, error) {
	os, err := h.store.ListOrganisations(r.Context())
	return list(os, err, orgView)
}

func (h *Handler) createOrg(r *http.Request, _ *access.Principal) (int, any, error) {
	var in struct {
		Name               string `json:"name"`
		AnonymiseSightings bool   `json:"anonymise_sightings"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	o := &store.Organisation{Name: in.Name, AnonymiseSightings: in.AnonymiseSightings}
	if err := h.store.CreateOrganisation(r.Context(), o); err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, orgView(o), nil
}

func (h *Handler) deleteOrg(r *http.Request, _ *access.Principal) (int, any, error) {
	o, err := h.store.GetOrganisation(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	if err := h.store.DeleteOrganisation(r.Context(), o.ID); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// Group is the admin API's view of a sharing group.
type Group struct {
	ID   string   `json:"id"`
	Name string   `json:"name"`
	Orgs []string `json:"orgs"`
}

func groupView(g *store.Group) Group {
	return Group{ID: g.ID, Name: g.Name, Orgs: append([]string{}, g.Orgs...)}
}

func (h *Handler) listGroups(r *http.Request, _ *access.Principal) (int, any, error) {
	gs, err := h.store.ListGroups(r.Context())
	return list(gs, err, groupView)
}

// orgIDs resolves organisation names or ids.
func (h *Handler) orgIDs(r *http.Request, names []string) ([]string, error) {
	ids := []string{}
	for _, name := range names {
		o, err := h.store.GetOrganisation(r.Context(), name)
		if err != nil {
			return nil, fmt.Errorf("organisation %q: %w", name, err)
		}
		ids = append(ids, o.ID)
	}
	return ids, nil
}

// setGroupOrgs handles PUT /admin/groups/{id}/orgs with {"orgs": [...]}:
// the group's members become exactly these organisations.
func (h *Handler) setGroupOrgs(r *http.Request, _ *access.Principal) (int, any, error) {
	var in struct {
		Orgs []string `json:"orgs"` // names or identity ids
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	g, err := h.store.GetGroup(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	ids, err := h.orgIDs(r, in.Orgs)
	if err != nil {
		return 0, nil, err
	}
	if err := h.store.SetGroupOrgs(r.Context(), g.ID, ids); err != nil {
		return 0, nil, err
	}
	if g, err = h.store.GetGroup(r.Context(), g.ID); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, groupView(g), nil
}

func (h *Handler) createGroup(r *http.Request, _ *access.Principal) (int, any, error) {
	var in struct {
		Name string   `json:"name"`
		Orgs []string `json:"orgs"` // names or identity ids
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	g := &store.Group{Name: in.Name}
	for _, name := range in.Orgs {
		o, err := h.store.GetOrganisation(r.Context(), name)
		if err != nil {
			return 0, nil, err
		}
		g.Orgs = append(g.Orgs, o.ID)
	}
	if err := h.store.CreateGroup(r.Context(), g); err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, groupView(g), nil
}

func (h *Handler) deleteGroup(r *http.Request, _ *access.Principal) (int, any, error) {
	g, err := h.store.GetGroup(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	if err := h.store.DeleteGroup(r.Context(), g.ID); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// setPartyGrant handles PUT .../org-grants/{org} and .../group-grants/{group}
// with {"read": bool, "write": bool}; both false removes the grant.
func (h *Handler) setPartyGrant(kind, param string) apiFunc {
	return func(r *http.Request, _ *access.Principal) (int, any, error) {
		var in struct {
			Read  bool `json:"read"`
			Write bool `json:"write"`
		}
		if err := decode(r, &in); err != nil {
			return 0, nil, err
		}
		subject := r.PathValue(param)
		if kind == store.GrantOrg {
			o, err := h.store.GetOrganisation(r.Context(), subject)
			if err != nil {
				return 0, nil, err
			}
			subject = o.ID
		} else {
			g, err := h.store.GetGroup(r.Context(), subject)
			if err != nil {
				return 0, nil, err
			}
			subject = g.ID
		}
		if err := h.store.SetPartyGrant(r.Context(), r.PathValue("id"), kind, subject, in.Read, in.Write); err != nil {
			return 0, nil, err
		}
		c, err := h.store.GetCollection(r.Context(), r.PathValue("id"))
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, collectionView(c), nil
	}
}

// listAudit handles GET /admin/audit: records newest first, at most limit
// (100, up to 1000) per page. When more may follow, the Link header (RFC
// 8288, rel="next") gives the next page: the same query with before= the
// last record's seq.
func (h *Handler) listAudit(r *http.Request, _ *access.Principal) (int, any, error) {
	q := r.URL.Query()
	f := store.AuditFilter{Principal: q.Get("user"), Action: q.Get("action"), Object: q.Get("object"), Limit: 100}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return 0, nil, errors.Join(errBadBody, errors.New("since must be an RFC 3339 time"))
		}
		f.Since = t
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return 0, nil, errors.Join(errBadBody, errors.New("limit must be between 1 and 1000"))
		}
		f.Limit = n
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return 0, nil, errors.Join(errBadBody, errors.New("before must be the seq of an audit record"))
		}
		f.Before = n
	}
	recs, err := h.store.ListAudit(r.Context(), f)
	if err != nil {
		return 0, nil, err
	}
	if recs == nil {
		recs = []store.AuditRecord{}
	}
	if len(recs) == f.Limit {
		q.Set("before", strconv.FormatInt(recs[len(recs)-1].Seq, 10))
		return http.StatusOK, paged{recs, fmt.Sprintf(`<%s?%s>; rel="next"`, r.URL.Path, q.Encode())}, nil
	}
	return http.StatusOK, recs, nil
}

// paged is a page of a listing with the link to the next one.
type paged struct {
	items any
	next  string
}

// list answers a listing: each item in its API view, and [] rather than
// null when there is none.
func list[T, V any](items []T, err error, view func(T) V) (int, any, error) {
	if err != nil {
		return 0, nil, err
	}
	out := make([]V, 0, len(items))
	for _, it := range items {
		out = append(out, view(it))
	}
	return http.StatusOK, out, nil
}
