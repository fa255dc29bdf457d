// Package web is Mitra's console: server-rendered pages for analysts and
// operators, served by `mitra serve` under /console/ (and / redirects
// there). Every asset is embedded; nothing is fetched from elsewhere, so
// the console works on networks without internet.
//
// The console signs users in with their Mitra password (the same
// authenticator, with its throttling, as the APIs), keeps sessions in the
// store, protects every state-changing request with a per-session CSRF
// token, and reads objects only through access.Decide, exactly as TAXII
// does: it never shows what its user could not read over TAXII.
package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/taxii"
	"github.com/prometheus/client_golang/prometheus"
)

// Prefix is where the console lives.
const Prefix = "/console/"

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Config configures the console.
type Config struct {
	Store Store
	// Auth checks passwords, with the sign-in throttle of the APIs.
	Auth *access.Authenticator
	// Search answers the search, lookup and graph views.
	Search Searcher
	// Check applies the TAXII POST rules to objects the console creates
	// (the TAXII server's Check).
	Check func(ctx context.Context, p *access.Principal, raws []json.RawMessage) (taxii.Checked, error)
	// Admin is the admin API, authenticating with PrincipalFrom: the
	// console's administration pages call it in process, so that every
	// rule and audit record of the API applies.
	Admin http.Handler
	// Metrics is read for the detector's throughput on the dashboard.
	Metrics prometheus.Gatherer
	// ClientAddr names a request's client for sign-in throttling.
	ClientAddr func(*http.Request) string
	Logger     *slog.Logger
	Now        func() time.Time
	// SessionTTL is how long a session lasts (8 hours when zero).
	SessionTTL time.Duration
	// SecureCookies marks cookies Secure even on plain HTTP requests
	// (behind a TLS-terminating proxy); requests over TLS always get them.
	SecureCookies bool
}

// Handler serves the console.
type Handler struct {
	cfg   Config
	log   *slog.Logger
	cat   *catalogue
	mux   *http.ServeMux
	tmpl  map[string]*template.Template
	pages []Page
}

// Page is one page of the console's navigation. Adding a page (federation,
// incidents, drills) is one Register call with its template and messages.
type Page struct {
	// Name is the page's path under Prefix and its template's name
	// (templates/NAME.html); its title is the message "nav.NAME".
	Name string
	// AdminOnly pages are shown and served to admins only.
	AdminOnly bool
	// Hidden pages are served but not listed in the navigation.
	Hidden bool
	// Serve answers GET (and POST, after the CSRF check) with the data its
	// template renders, or an error (see httpError).
	Serve func(rq *Request) (any, error)
}

// New builds the console.
func New(cfg Config) (*Handler, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 8 * time.Hour
	}
	if cfg.ClientAddr == nil {
		cfg.ClientAddr = func(r *http.Request) string { return r.RemoteAddr }
	}
	cat, err := newCatalogue()
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, log: cfg.Logger, cat: cat, mux: http.NewServeMux(), tmpl: map[string]*template.Template{}}
	static, _ := fs.Sub(staticFiles, "static")
	h.mux.Handle("GET "+Prefix+"static/", http.StripPrefix(Prefix+"static/", cacheStatic(http.FileServerFS(static))))
	h.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
	})
	h.mux.HandleFunc("GET "+Prefix+"signin", h.signInPage)
	h.mux.HandleFunc("POST "+Prefix+"signin", h.signIn)
	h.mux.HandleFunc("POST "+Prefix+"signout", h.session(h.signOut))
	h.mux.HandleFunc("POST "+Prefix+"language", h.session(h.setLanguage))
	h.mux.HandleFunc("POST "+Prefix+"api/pattern", h.session(h.checkPattern))
	h.mux.HandleFunc("POST "+Prefix+"api/pattern/test", h.session(h.testPattern))
	h.mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		h.notFound(w, r)
	})
	if err := h.parse("signin", "error"); err != nil {
		return nil, err
	}
	for _, p := range h.builtinPages() {
		if err := h.Register(p); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// Register adds a page to the console and its navigation.
func (h *Handler) Register(p Page) error {
	if err := h.parse(p.Name); err != nil {
		return err
	}
	h.pages = append(h.pages, p)
	path := Prefix + p.Name
	if p.Name == "dashboard" {
		path = Prefix + "{$}"
	}
	h.mux.HandleFunc("GET "+path, h.session(h.page(p)))
	h.mux.HandleFunc("POST "+path, h.session(h.page(p)))
	return nil
}

// parse loads the templates of names with the layout.
func (h *Handler) parse(names ...string) error {
	for _, n := range names {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/"+n+".html")
		if err != nil {
			return fmt.Errorf("console template %s: %w", n, err)
		}
		h.tmpl[n] = t
	}
	return nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The console's pages are never framed (clickjacking) and load nothing
	// from elsewhere.
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	h.mux.ServeHTTP(w, r)
}

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"hopsLink": hopsLink,
	"objectLink": func(id string, c ...string) string {
		u := Prefix + "object?id=" + url.QueryEscape(id)
		if len(c) > 0 && c[0] != "" {
			u += "&c=" + url.QueryEscape(c[0])
		}
		return u
	},
	"sub": func(a, b int) int { return a - b },
	// langLink is the current page in another language, for the pages
	// shown before sign-in (which keep their other parameters, e.g. next).
	"langLink": func(here, lang string) string {
		u, err := url.Parse(here)
		if err != nil {
			return "?lang=" + url.QueryEscape(lang)
		}
		q := u.Query()
		q.Set("lang", lang)
		return u.Path + "?" + q.Encode()
	},
	"half":    func(a int) int { return a / 2 },
	"rowCtx":  func(v view, i int) rowCtx { return rowCtx{V: v, I: i} },
	"add":     func(a, b int) int { return a + b },
	"nonzero": func(t time.Time) bool { return !t.IsZero() },
}

// rowCtx is a row of an admin table with the page around it.
type rowCtx struct {
	V view
	I int
}

// cacheStatic lets browsers keep the embedded assets for an hour.
func cacheStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "private, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

// httpError is an error with the status and message id a page shows.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return fmt.Sprintf("%d %s", e.status, e.msg) }

var (
	errForbidden = &httpError{http.StatusForbidden, "error.forbidden"}
	errNotFound  = &httpError{http.StatusNotFound, "error.notfound"}
	errCSRF      = &httpError{http.StatusForbidden, "error.csrf"}
)

// page serves p for a signed-in user.
func (h *Handler) page(p Page) func(*Request) {
	return func(rq *Request) {
		if p.AdminOnly && !rq.P.IsAdmin() {
			h.fail(rq, errForbidden)
			return
		}
		data, err := p.Serve(rq)
		if err != nil {
			h.fail(rq, err)
			return
		}
		if rq.done {
			return
		}
		h.render(rq.W, rq, http.StatusOK, p.Name, data)
	}
}

// fail answers with an error page: a known status and message, or 500
// (logged) for anything else.
func (h *Handler) fail(rq *Request, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		h.log.ErrorContext(rq.R.Context(), "console", "path", rq.R.URL.Path, "err", err)
		he = &httpError{http.StatusInternalServerError, "error.internal"}
	}
	h.render(rq.W, rq, he.status, "error", map[string]any{"Message": he.msg})
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	rq := h.anonymous(w, r)
	h.render(w, rq, http.StatusNotFound, "error", map[string]any{"Message": errNotFound.msg})
}
