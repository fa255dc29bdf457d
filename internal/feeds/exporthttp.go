package feeds

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/extapi"
	"github.com/mitra-cert/mitra/internal/store"
)

// ExportPrefix is where exports are served: outside the TAXII API root.
const ExportPrefix = "/x-mitra-export/"

// ExportHandlerOptions configures a ExportHandler.
type ExportHandlerOptions struct {
	// Authenticate names the caller (the TAXII server's Authenticate):
	// HTTP Basic or a Bearer API token, as sensors use.
	Authenticate func(*http.Request) (*access.Principal, error)
	// Render tunes the formats.
	Render RenderOptions
	// CacheFor keeps a rendered export for this long per requester and
	// query, so that many sensors polling the same export cost one
	// rendering (0: render on every request).
	CacheFor time.Duration
	Logger   *slog.Logger
	Now      func() time.Time
}

// ExportHandler serves, under ExportPrefix (GET):
//
//	{format}            the export's main file (?collection=..&min_confidence=..)
//	{format}/{file}     another file of it (Suricata lists, MISP events)
//	{format}/collection/{collection}/{file}
//	                    the same, of one collection named in the path: a
//	                    MISP feed URL cannot carry a query string, since
//	                    MISP appends /manifest.json and /<uuid>.json to it
//	score/{indicator}   the indicator's lifecycle score and why it is not exported
//
// An export is one from a search when its query has one of SearchParams
// (the search API's filters: ?q=..&type=..&tlp=..&collection=..&
// organisation=..&modified_from=..&modified_to=..): it holds the active
// indicators among all the search's results.
//
// Every answer carries an ETag; If-None-Match with it gives 304.
type ExportHandler struct {
	x   *Exporter
	opt ExportHandlerOptions
	api *extapi.Brief
	mux *http.ServeMux

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	at time.Time
	ex *Export
}

// NewExportHandler serves exports made by x.
func NewExportHandler(x *Exporter, opt ExportHandlerOptions) *ExportHandler {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	h := &ExportHandler{x: x, opt: opt, mux: http.NewServeMux(), cache: map[string]cached{}}
	h.api = &extapi.Brief{Name: "export", Authenticate: opt.Authenticate, StatusOf: exportStatusOf, Logger: opt.Logger}
	h.mux.HandleFunc("GET "+ExportPrefix+"score/{id}", h.api.Auth(false, h.score))
	h.mux.HandleFunc("GET "+ExportPrefix+"{format}", h.api.Auth(false, h.export))
	h.mux.HandleFunc("GET "+ExportPrefix+"{format}/{file}", h.api.Auth(false, h.export))
	h.mux.HandleFunc("GET "+ExportPrefix+"{format}/collection/{collection}/{file}", h.api.Auth(false, h.export))
	return h
}

// ServeHTTP implements http.Handler.
func (h *ExportHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// exportStatusOf maps the export API's errors to answers.
func exportStatusOf(err error) *extapi.Error {
	switch {
	case errors.Is(err, ErrNotFound):
		// The same answer for a hidden collection or indicator as for a
		// missing one.
		return &extapi.Error{Status: http.StatusNotFound, Description: "not found"}
	case errors.Is(err, ErrInvalid), errors.Is(err, store.ErrInvalid):
		return &extapi.Error{Status: http.StatusBadRequest, Description: err.Error()}
	}
	return nil
}

// request reads the query parameters every route takes.
func request(r *http.Request, p *access.Principal) (Request, error) {
	req := Request{Principal: p}
	if c := r.PathValue("collection"); c != "" {
		req.Collections = append(req.Collections, c)
	}
	q := r.URL.Query()
	for _, c := range q["collection"] {
		for _, part := range strings.Split(c, ",") {
			if part = strings.TrimSpace(part); part != "" {
				req.Collections = append(req.Collections, part)
			}
		}
	}
	if v := q.Get("min_confidence"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100 {
			return req, &extapi.Error{Status: http.StatusBadRequest, Description: "min_confidence: want an integer from 0 to 100"}
		}
		req.MinConfidence = n
	}
	return req, nil
}

func (h *ExportHandler) score(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	req, err := request(r, p)
	if err != nil {
		return err
	}
	s, err := h.x.ScoreOf(r.Context(), req, r.PathValue("id"))
	if err != nil {
		return err
	}
	extapi.WriteJSON(w, http.StatusOK, s)
	return nil
}

func (h *ExportHandler) export(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	format := r.PathValue("format")
	if renderers[format] == nil {
		return &extapi.Error{Status: http.StatusNotFound, Description: "unknown export format; known: " + strings.Join(ExportFormats(), ", ")}
	}
	req, err := request(r, p)
	if err != nil {
		return err
	}
	req.Search = SearchOf(r.URL.Query())
	ex, err := h.render(r, format, req)
	if err != nil {
		return err
	}
	f := &ex.Files[0]
	if name := r.PathValue("file"); name != "" {
		if f = ex.File(name); f == nil {
			return ErrNotFound
		}
	}
	etag := f.ETag()
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "private, no-cache")
	if len(ex.Skipped) > 0 {
		w.Header().Set("X-Mitra-Skipped", SkippedSummary(ex.Skipped))
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	w.Header().Set("Content-Type", f.ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(f.Data)))
	_, _ = w.Write(f.Data)
	return nil
}

// etagMatch applies If-None-Match's weak comparison (RFC 9110 §13.1.2).
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// render returns the export, from the cache when a fresh one is there.
// The key names everything access.Decide reads of the principal.
func (h *ExportHandler) render(r *http.Request, format string, req Request) (*Export, error) {
	p := req.Principal
	key := strings.Join([]string{format, p.User, p.Organisation, strings.Join(p.Groups, ","), p.Role, p.UserRole,
		strings.Join(req.Collections, ","), strconv.Itoa(req.MinConfidence), strconv.FormatBool(req.Search != nil), req.Search.Encode()}, "\x00")
	now := h.opt.Now()
	if h.opt.CacheFor > 0 {
		h.mu.Lock()
		c, ok := h.cache[key]
		for k, v := range h.cache {
			if now.Sub(v.at) >= h.opt.CacheFor {
				delete(h.cache, k)
			}
		}
		h.mu.Unlock()
		if ok && now.Sub(c.at) < h.opt.CacheFor {
			return c.ex, nil
		}
	}
	req.SkipRaw = !NeedsRaw(format)
	sel, err := h.x.Select(r.Context(), req)
	if err != nil {
		return nil, err
	}
	ex, err := Render(format, sel, h.opt.Render)
	if err != nil {
		return nil, err
	}
	if h.opt.CacheFor > 0 {
		h.mu.Lock()
		h.cache[key] = cached{at: now, ex: ex}
		h.mu.Unlock()
	}
	return ex, nil
}
