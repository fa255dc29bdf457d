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
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/store"
)

// Handler serves the admin API under Prefix.
type Handler struct {
	store  Store
	authn  func(*http.Request) (*access.Principal, error)
	log    *slog.Logger
	now    func() time.Time
	mux    *http.ServeMux
	prefix string
}

// Prefix is where the admin API lives.
const Prefix = "/admin/"

// New returns the admin API. authn authenticates a request (the TAXII
// server's Authenticate, so both APIs take the same credentials).
func New(s Store, authn func(*http.Request) (*access.Principal, error), log *slog.Logger, now func() time.Time) *Handler {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{store: s, authn: authn, log: log, now: now, mux: http.NewServeMux(), prefix: Prefix}
	h.mux.HandleFunc("GET /admin/users", h.wrap(h.listUsers))
	h.mux.HandleFunc("POST /admin/users", h.wrap(h.createUser))
	h.mux.HandleFunc("DELETE /admin/users/{name}", h.wrap(h.deleteUser))
	h.mux.HandleFunc("GET /admin/collections", h.wrap(h.listCollections))
	h.mux.HandleFunc("POST /admin/collections", h.wrap(h.createCollection))
	h.mux.HandleFunc("DELETE /admin/collections/{id}", h.wrap(h.deleteCollection))
	h.mux.HandleFunc("PUT /admin/collections/{id}/grants/{user}", h.wrap(h.setGrant))
	h.mux.HandleFunc("GET /admin/tokens", h.wrap(h.listTokens))
	h.mux.HandleFunc("POST /admin/tokens", h.wrap(h.createToken))
	h.mux.HandleFunc("DELETE /admin/tokens/{id}", h.wrap(h.revokeToken))
	h.mux.HandleFunc("GET /admin/orgs", h.wrap(h.listOrgs))
	h.mux.HandleFunc("POST /admin/orgs", h.wrap(h.createOrg))
	h.mux.HandleFunc("DELETE /admin/orgs/{id}", h.wrap(h.deleteOrg))
	h.mux.HandleFunc("GET /admin/groups", h.wrap(h.listGroups))
	h.mux.HandleFunc("POST /admin/groups", h.wrap(h.createGroup))
	h.mux.HandleFunc("DELETE /admin/groups/{id}", h.wrap(h.deleteGroup))
	h.mux.HandleFunc("PUT /admin/collections/{id}/org-grants/{org}", h.wrap(h.setPartyGrant(store.GrantOrg, "org")))
	h.mux.HandleFunc("PUT /admin/collections/{id}/group-grants/{group}", h.wrap(h.setPartyGrant(store.GrantGroup, "group")))
	h.mux.HandleFunc("GET /admin/audit", h.wrap(h.listAudit))
	h.mux.HandleFunc("/admin/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusNotFound, "no admin endpoint "+r.Method+" "+r.URL.Path)
	})
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

type apiFunc func(r *http.Request, p *access.Principal) (status int, body any, err error)

func (h *Handler) wrap(fn apiFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := h.authn(r)
		if err != nil {
			if errors.Is(err, access.ErrUnauthenticated) {
				w.Header().Set("WWW-Authenticate", `Basic realm="mitra", charset="UTF-8", Bearer realm="mitra"`)
				writeErr(w, http.StatusUnauthorized, "authentication required")
				return
			}
			h.log.ErrorContext(r.Context(), "admin: authenticate", "err", err)
			writeErr(w, http.StatusInternalServerError, "internal error")
			return
		}
		if !p.IsAdmin() {
			writeErr(w, http.StatusForbidden, "the admin API needs the admin role")
			return
		}
		status, body, err := fn(r, p)
		if err != nil {
			switch {
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
		if r.Method != http.MethodGet {
			h.log.InfoContext(r.Context(), "admin change", "user", p.User, "method", r.Method, "path", r.URL.Path, "status", status)
			// Every admin change is audited; a failure to record it is
			// reported, the change itself stands.
			if err := h.store.AppendAudit(r.Context(), store.AuditRecord{Principal: p.User, Organisation: p.Organisation,
				Action: "admin." + strings.ToLower(r.Method), Path: r.URL.Path, Detail: fmt.Sprint(status)}); err != nil {
				h.log.ErrorContext(r.Context(), "admin: audit", "err", err)
			}
		}
		if body == nil {
			w.WriteHeader(status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(body)
	}
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
	if err != nil {
		return 0, nil, err
	}
	out := make([]User, 0, len(us))
	for _, u := range us {
		out = append(out, userView(u))
	}
	return http.StatusOK, out, nil
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
	if err != nil {
		return 0, nil, err
	}
	out := make([]Collection, 0, len(cs))
	for _, c := range cs {
		out = append(out, collectionView(c))
	}
	return http.StatusOK, out, nil
}

func (h *Handler) createCollection(r *http.Request, _ *access.Principal) (int, any, error) {
	var in struct {
		Title       string   `json:"title"`
		Description string   `json:"description"`
		Alias       string   `json:"alias"`
		Readers     []string `json:"readers"`
		Writers     []string `json:"writers"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	c := &store.Collection{Title: in.Title, Description: in.Description, Alias: in.Alias, Readers: in.Readers, Writers: in.Writers}
	if err := h.store.CreateCollection(r.Context(), c); err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, collectionView(c), nil
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
	if err != nil {
		return 0, nil, err
	}
	out := make([]Token, 0, len(ts))
	for _, t := range ts {
		out = append(out, tokenView(t))
	}
	return http.StatusOK, out, nil
}

func (h *Handler) createToken(r *http.Request, _ *access.Principal) (int, any, error) {
	var in struct {
		User    string `json:"user"`
		Role    string `json:"role"`
		Expires string `json:"expires"` // a Go duration such as "720h"; empty: never
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	var ttl time.Duration
	if in.Expires != "" {
		d, err := time.ParseDuration(in.Expires)
		if err != nil || d <= 0 {
			return 0, nil, errors.Join(errBadBody, errors.New(`expires must be a positive duration such as "720h"`))
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
	if err != nil {
		return 0, nil, err
	}
	out := make([]Organisation, 0, len(os))
	for _, o := range os {
		out = append(out, orgView(o))
	}
	return http.StatusOK, out, nil
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

func (h *Handler) listGroups(r *http.Request, _ *access.Principal) (int, any, error) {
	gs, err := h.store.ListGroups(r.Context())
	if err != nil {
		return 0, nil, err
	}
	type group struct {
		ID   string   `json:"id"`
		Name string   `json:"name"`
		Orgs []string `json:"orgs"`
	}
	out := make([]group, 0, len(gs))
	for _, g := range gs {
		out = append(out, group{ID: g.ID, Name: g.Name, Orgs: append([]string{}, g.Orgs...)})
	}
	return http.StatusOK, out, nil
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
	return http.StatusCreated, map[string]any{"id": g.ID, "name": g.Name, "orgs": g.Orgs}, nil
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

// positiveParam parses an optional positive integer query parameter (0
// when absent).
func positiveParam(v string, most int64) (int64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 || n > most {
		return 0, fmt.Errorf("%q is not an integer from 1 to %d", v, most)
	}
	return n, nil
}

func (h *Handler) listAudit(r *http.Request, _ *access.Principal) (int, any, error) {
	q := r.URL.Query()
	f := store.AuditFilter{Principal: q.Get("user"), Action: q.Get("action"), Object: q.Get("object")}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return 0, nil, errors.Join(errBadBody, errors.New("since must be an RFC 3339 time"))
		}
		f.Since = t
	}
	// Newest first; the next page is before = the last record's seq.
	var err error
	if f.Before, err = positiveParam(q.Get("before"), 1<<62); err != nil {
		return 0, nil, errors.Join(errBadBody, fmt.Errorf("before: %w", err))
	}
	limit, err := positiveParam(q.Get("limit"), 1000)
	if err != nil {
		return 0, nil, errors.Join(errBadBody, fmt.Errorf("limit: %w", err))
	}
	f.Limit = int(limit)
	recs, err := h.store.ListAudit(r.Context(), f)
	if err != nil {
		return 0, nil, err
	}
	if recs == nil {
		recs = []store.AuditRecord{}
	}
	return http.StatusOK, recs, nil
}
