// Package taxii serves Mitra's collections over TAXII 2.1 (OASIS, 10 June
// 2021): discovery, one API root, status, collections, objects, manifests
// and versions, with the filtering, pagination, content negotiation and
// error semantics of the specification.
//
// Handlers return errors; writeError is the one place that turns them into
// HTTP statuses and TAXII error message resources (TAXII 2.1 §3.6).
package taxii

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/prometheus/client_golang/prometheus"
)

// MediaType is the TAXII 2.1 media type (TAXII 2.1 §1.6.8).
const MediaType = "application/taxii+json;version=2.1"

// stixMediaType is what collections hold (TAXII 2.1 §5.2.1 media_types).
const stixMediaType = "application/stix+json;version=2.1"

// Config configures a Server.
type Config struct {
	Store Store
	Auth  *access.Authenticator
	// Validator checks every POSTed object; an object with problems is
	// refused and reported in the status failures (TAXII 2.1 §5.5). The
	// zero Validator when nil.
	Validator *stix.Validator
	Logger    *slog.Logger
	// APIRoot is the path of the one API root, with leading and trailing
	// slash; "/api/" when empty.
	APIRoot     string
	Title       string
	Description string
	Contact     string
	// MaxContentLength is the largest request body accepted (TAXII 2.1
	// §4.2.1); 64 MiB when zero.
	MaxContentLength int64
	// PageSize is the server's page limit (TAXII 2.1 §3.4 limit); 1000
	// when zero.
	PageSize int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Metrics, when set, receives the HTTP metrics (requests, status codes
	// and latency per endpoint) and the ingest metrics (objects accepted
	// and refused per collection).
	Metrics prometheus.Registerer
	// UploadMemory caps the request bytes of POSTs being processed at once;
	// 4 × MaxContentLength when zero. A POST that finds no room within
	// UploadWait (5s when zero) gets 503 with Retry-After.
	UploadMemory int64
	UploadWait   time.Duration
	// TrustedProxies are the addresses of reverse proxies whose
	// X-Forwarded-For header names the client (for sign-in throttling per
	// client address); the header of anyone else is ignored.
	TrustedProxies []netip.Prefix
	// Outgoing, when set, rewrites in place the bodies of the objects a
	// read (GET objects, an object, the change feed) serves p from c,
	// after policy and sighting redaction (federation: feedback on
	// mirrored objects read by a peer, federation.PeerReads).
	// Entries may come without bodies (manifest, versions, change-feed
	// tombstones): then only their ids are rewritten.
	Outgoing func(ctx context.Context, p *access.Principal, c *store.Collection, entries []store.Entry) error
	// IncomingIDs, when set, maps the object ids p names in a read (the
	// object of the path, match[id]) to the local ids to look up: an id
	// Outgoing gives p stands for the local one it rewrote, and a local id
	// that Outgoing never shows p maps to nothing, so that it answers
	// exactly like a missing object.
	IncomingIDs func(ctx context.Context, p *access.Principal, c *store.Collection, ids []string) ([]string, error)
	// BeforeDelete, when set, is called in the deleting transaction
	// before object id of c is deleted (federation.PeerReads.MarkDeleted
	// remembers what Outgoing needs to name its tombstone).
	BeforeDelete func(ctx context.Context, tx store.Tx, c *store.Collection, id string) error
}

// Server is the TAXII 2.1 HTTP handler.
type Server struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux
	// mounts are the path patterns of handlers added with Mount.
	mounts  []string
	metrics *metrics
	uploads *uploadCap
	// group shares commits between concurrent POSTs (ingest.go).
	group *store.Committer
}

// NewServer builds a Server from cfg.
func NewServer(cfg Config) *Server {
	if cfg.APIRoot == "" {
		cfg.APIRoot = "/api/"
	}
	if cfg.Title == "" {
		cfg.Title = "Mitra"
	}
	if cfg.MaxContentLength <= 0 {
		cfg.MaxContentLength = 64 << 20
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 1000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Validator == nil {
		cfg.Validator = &stix.Validator{}
	}
	if cfg.UploadMemory <= 0 {
		cfg.UploadMemory = 4 * cfg.MaxContentLength
	}
	if cfg.UploadWait <= 0 {
		cfg.UploadWait = 5 * time.Second
	}
	s := &Server{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), group: newCommitter(cfg.Store),
		metrics: newMetrics(cfg.Metrics, cfg.Logger), uploads: newUploadCap(cfg.UploadMemory, cfg.UploadWait)}
	// Liveness and readiness, without authentication.
	s.Mount("GET /healthz", http.HandlerFunc(s.healthz))
	s.Mount("GET /readyz", http.HandlerFunc(s.readyz))
	root := cfg.APIRoot
	s.handle("/taxii2/{$}", map[string]handlerFunc{"GET": s.discovery})
	s.handle(root+"{$}", map[string]handlerFunc{"GET": s.apiRoot})
	s.handle(root+"status/{status}/{$}", map[string]handlerFunc{"GET": s.status})
	s.handle(root+"collections/{$}", map[string]handlerFunc{"GET": s.collections})
	s.handle(root+"collections/{collection}/{$}", map[string]handlerFunc{"GET": s.collection})
	s.handle(root+"collections/{collection}/manifest/{$}", map[string]handlerFunc{"GET": s.manifest})
	s.handle(root+"collections/{collection}/objects/{$}", map[string]handlerFunc{"GET": s.getObjects, "POST": s.addObjects})
	s.handle(root+"collections/{collection}/objects/{object}/{$}", map[string]handlerFunc{"GET": s.getObject, "DELETE": s.deleteObject})
	s.handle(root+"collections/{collection}/objects/{object}/versions/{$}", map[string]handlerFunc{"GET": s.versions})
	s.handle(root+"collections/{collection}/x-mitra-changes/{$}", map[string]handlerFunc{"GET": s.changes})
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, errorf(http.StatusNotFound, "Not found", "no TAXII endpoint at "+r.URL.Path+" (TAXII paths end with '/')"))
	})
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.observe(w, r, http.HandlerFunc(s.serve))
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	// TAXII endpoint paths end in '/' (TAXII 2.1 §3.1). Left to itself the
	// mux answers "/taxii2" with a 301 to "/taxii2/", which clients follow
	// by turning a POST into a GET without its body; answer 404 instead.
	if !strings.HasSuffix(r.URL.Path, "/") && !s.mounted(r.URL.Path) {
		s.writeError(w, r, errorf(http.StatusNotFound, "Not found", "no TAXII endpoint at "+r.URL.Path+" (TAXII paths end with '/')"))
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Mount adds another handler (the admin API) under pattern, sharing the
// server's mux so that unknown paths still get TAXII errors.
func (s *Server) Mount(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
	_, path, ok := strings.Cut(pattern, " ")
	if !ok {
		path = pattern
	}
	s.mounts = append(s.mounts, path)
}

// mounted reports whether path is served by a mounted handler.
func (s *Server) mounted(path string) bool {
	for _, m := range s.mounts {
		if path == m || strings.HasSuffix(m, "/") && strings.HasPrefix(path, m) {
			return true
		}
	}
	return false
}

// handlerFunc serves one authenticated, negotiated TAXII request.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p *access.Principal) error

func (s *Server) handle(pattern string, methods map[string]handlerFunc) {
	var allow []string
	for m := range methods {
		allow = append(allow, m)
	}
	allowed := strings.Join(allow, ", ")
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		h, ok := methods[r.Method]
		if !ok && r.Method == http.MethodHead {
			h, ok = methods[http.MethodGet]
		}
		if !ok {
			w.Header().Set("Allow", allowed)
			s.writeError(w, r, errorf(http.StatusMethodNotAllowed, "Method not allowed", r.Method+" is not supported here; allowed: "+allowed))
			return
		}
		p, err := s.authenticate(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		// Every TAXII request MUST include a TAXII media range in Accept
		// (TAXII 2.1 §3.1); one we cannot serve gets 406.
		if !acceptable(r.Header.Values("Accept")) {
			s.writeError(w, r, errorf(http.StatusNotAcceptable, "Not acceptable", "this server answers with "+MediaType+"; send it in the Accept header"))
			return
		}
		if r.Method == http.MethodPost {
			release, err := s.reserveUpload(r)
			if err != nil {
				w.Header().Set("Retry-After", strconv.Itoa(max(1, int(s.cfg.UploadWait.Seconds()))))
				s.writeError(w, r, err)
				return
			}
			defer release()
		}
		if err := h(w, r, p); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// Principal returns the caller of r, or an error wrapping
// access.ErrUnauthenticated.
func (s *Server) authenticate(r *http.Request) (*access.Principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		// A client certificate the TLS layer verified (serve
		// --tls-client-ca) names its user in the subject CN.
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
			return s.cfg.Auth.Certificate(r.Context(), r.TLS.VerifiedChains[0][0])
		}
		return nil, access.ErrUnauthenticated
	}
	if user, pw, ok := r.BasicAuth(); ok {
		return s.cfg.Auth.PasswordFrom(r.Context(), user, pw, s.ClientAddr(r))
	}
	if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
		return s.cfg.Auth.Token(r.Context(), strings.TrimSpace(tok))
	}
	return nil, access.ErrUnauthenticated
}

// ClientAddr is the address the request came from, without the port: the
// key of per-address sign-in throttling. From a trusted proxy, it is the
// nearest address in X-Forwarded-For that is not a trusted proxy.
func (s *Server) ClientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if !s.trusted(host) {
		return host
	}
	// Proxies append the address they received from; read from the end.
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		if _, err := netip.ParseAddr(hop); err != nil {
			break // garbage: keep the last address we can vouch for
		}
		host = hop
		if !s.trusted(hop) {
			break
		}
	}
	return host
}

func (s *Server) trusted(addr string) bool {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Authenticate is the server's authentication, for other HTTP layers
// (the admin API) that share its credentials.
func (s *Server) Authenticate(r *http.Request) (*access.Principal, error) { return s.authenticate(r) }

// acceptable reports whether the Accept header values admit a TAXII 2.1
// response. An absent header accepts anything (RFC 7231 §5.3.2).
func acceptable(values []string) bool {
	if len(values) == 0 {
		return true
	}
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			if q, ok := params["q"]; ok && (q == "0" || q == "0.0" || q == "0.00" || q == "0.000") {
				continue
			}
			switch mt {
			case "application/taxii+json":
				if ver, ok := params["version"]; !ok || ver == "2.1" {
					return true
				}
			case "*/*", "application/*":
				return true
			}
		}
	}
	return false
}

// contentTypeOK reports whether a POST body is declared as TAXII 2.1.
func contentTypeOK(v string) bool {
	mt, params, err := mime.ParseMediaType(v)
	if err != nil || mt != "application/taxii+json" {
		return false
	}
	ver, ok := params["version"]
	return !ok || ver == "2.1"
}

// writeJSON sends a TAXII resource.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // STIX text is not HTML; keep '<' readable
	if err := enc.Encode(v); err != nil {
		return err
	}
	w.Header().Set("Content-Type", MediaType)
	w.WriteHeader(status)
	_, err := w.Write(b.Bytes())
	return err
}

// collectionFor loads the collection named in the path and checks that p
// may see it. A collection p has no grant on is reported as not found, so
// that its existence does not leak.
func (s *Server) collectionFor(ctx context.Context, r *http.Request, p *access.Principal) (c *store.Collection, read, write bool, err error) {
	c, err = s.cfg.Store.GetCollection(ctx, r.PathValue("collection"))
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, false, notFound("collection")
	}
	if err != nil {
		return nil, false, false, err
	}
	read, write = access.CollectionAccess(p, c)
	if !read && !write {
		return nil, false, false, notFound("collection")
	}
	return c, read, write, nil
}

func (s *Server) discovery(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	d := map[string]any{
		"title":     s.cfg.Title,
		"default":   s.cfg.APIRoot,
		"api_roots": []string{s.cfg.APIRoot},
	}
	if s.cfg.Description != "" {
		d["description"] = s.cfg.Description
	}
	if s.cfg.Contact != "" {
		d["contact"] = s.cfg.Contact
	}
	return writeJSON(w, http.StatusOK, d)
}

func (s *Server) apiRoot(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	d := map[string]any{
		"title":              s.cfg.Title,
		"versions":           []string{MediaType},
		"max_content_length": s.cfg.MaxContentLength,
	}
	if s.cfg.Description != "" {
		d["description"] = s.cfg.Description
	}
	return writeJSON(w, http.StatusOK, d)
}

func collectionResource(c *store.Collection, read, write bool) map[string]any {
	m := map[string]any{
		"id":          c.ID,
		"title":       c.Title,
		"can_read":    read,
		"can_write":   write,
		"media_types": []string{stixMediaType},
	}
	if c.Description != "" {
		m["description"] = c.Description
	}
	if c.Alias != "" {
		m["alias"] = c.Alias
	}
	return m
}

func (s *Server) collections(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	all, err := s.cfg.Store.ListCollections(r.Context())
	if err != nil {
		return err
	}
	var out []map[string]any
	for _, c := range all {
		read, write := access.CollectionAccess(p, c)
		if read || write {
			out = append(out, collectionResource(c, read, write))
		}
	}
	// "If there are no Collections in the list, this key MUST be omitted"
	// (TAXII 2.1 §5.1.1).
	if len(out) == 0 {
		return writeJSON(w, http.StatusOK, struct{}{})
	}
	return writeJSON(w, http.StatusOK, map[string]any{"collections": out})
}

func (s *Server) collection(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	c, read, write, err := s.collectionFor(r.Context(), r, p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, collectionResource(c, read, write))
}

func (s *Server) status(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	st, err := s.cfg.Store.GetStatus(r.Context(), r.PathValue("status"))
	if errors.Is(err, store.ErrNotFound) {
		return notFound("status")
	}
	if err != nil {
		return err
	}
	// A status tells which objects someone sent: only they (and admins) see it.
	if st.Owner != p.User && !p.IsAdmin() {
		return notFound("status")
	}
	return writeJSON(w, http.StatusOK, statusResource(st))
}

// statusResource renders a TAXII 2.1 status resource (§4.3.1).
func statusResource(st *store.Status) map[string]any {
	state := "pending"
	if st.Complete {
		state = "complete"
	}
	m := map[string]any{
		"id":                st.ID,
		"status":            state,
		"request_timestamp": formatTime(st.RequestTimestamp),
		"total_count":       st.TotalCount,
		"success_count":     len(st.Successes),
		"failure_count":     len(st.Failures),
		"pending_count":     len(st.Pendings),
	}
	if len(st.Successes) > 0 {
		m["successes"] = st.Successes
	}
	if len(st.Failures) > 0 {
		m["failures"] = st.Failures
	}
	if len(st.Pendings) > 0 {
		m["pendings"] = st.Pendings
	}
	return m
}
