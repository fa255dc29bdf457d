package search

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/store"
)

// Prefix is where the search API lives: outside the TAXII API root, whose
// paths TAXII 2.1 defines.
const Prefix = "/x-mitra-search/"

// HandlerOptions configures a Handler.
type HandlerOptions struct {
	// Authenticate names the caller (the TAXII server's Authenticate).
	Authenticate func(*http.Request) (*access.Principal, error)
	Logger       *slog.Logger
}

// Handler serves, under Prefix:
//
//	GET  ?q=TEXT&type=..&tlp=..&collection=..&organisation=..&modified_from=..&modified_to=..&limit=..&cursor=..
//	     (filters repeat or take comma-separated lists)     -> Result
//	GET  lookup?value=V&value=W                              -> {"results":[LookupResult...]}
//	POST lookup  {"values":[...]} or text/plain, one per line -> {"results":[LookupResult...]}
//	GET  pivot/{id}?hops=1|2                                 -> Graph
//
// Errors are TAXII error message resources (TAXII 2.1 §3.6.1).
type Handler struct {
	svc *Service
	opt HandlerOptions
	mux *http.ServeMux
}

// maxLookupBody bounds a bulk lookup: 10,000 values of up to 2 KiB (URLs).
const maxLookupBody = 20 << 20

// NewHandler returns the search API over svc.
func NewHandler(svc *Service, opt HandlerOptions) *Handler {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{svc: svc, opt: opt, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET "+Prefix+"{$}", h.auth(h.search))
	h.mux.HandleFunc("GET "+Prefix+"lookup", h.auth(h.lookupGet))
	h.mux.HandleFunc("POST "+Prefix+"lookup", h.auth(h.lookupPost))
	h.mux.HandleFunc("GET "+Prefix+"pivot/{id}", h.auth(h.pivot))
	h.mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such search resource (GET "+Prefix+"?q=, GET or POST "+Prefix+"lookup, GET "+Prefix+"pivot/{id})")
	})
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// apiError is an error with its HTTP status.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func (h *Handler) auth(fn func(http.ResponseWriter, *http.Request, *access.Principal) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := h.opt.Authenticate(r)
		if err != nil {
			var te *access.ThrottledError
			if errors.As(err, &te) {
				w.Header().Set("Retry-After", strconv.Itoa(int(te.RetryAfter.Seconds()+0.999)))
				writeError(w, http.StatusTooManyRequests, "too many failed sign-ins: try again later")
				return
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="mitra", charset="UTF-8", Bearer realm="mitra"`)
			writeError(w, http.StatusUnauthorized, "authentication required")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxLookupBody)
		err = fn(w, r, p)
		if err == nil {
			return
		}
		status, msg := http.StatusInternalServerError, "internal error"
		var ae *apiError
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &ae):
			status, msg = ae.status, ae.msg
		case errors.As(err, &mbe):
			status, msg = http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", mbe.Limit)
		case errors.Is(err, ErrInvalid):
			status, msg = http.StatusBadRequest, err.Error()
		case errors.Is(err, store.ErrNotFound):
			// A hidden object is answered exactly as a missing one.
			status, msg = http.StatusNotFound, "no such object"
		case errors.Is(err, ErrNotReady):
			w.Header().Set("Retry-After", "5")
			status, msg = http.StatusServiceUnavailable, err.Error()
		case r.Context().Err() != nil:
			return // the client left
		default:
			h.opt.Logger.Error("search API", "path", r.URL.Path, "err", err)
		}
		writeError(w, status, msg)
	}
}

// errorMessage is a TAXII 2.1 error message resource (§3.6.1).
type errorMessage struct {
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	HTTPStatus  string `json:"http_status"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorMessage{Title: http.StatusText(status), Description: msg, HTTPStatus: strconv.Itoa(status)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (h *Handler) search(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	q, err := ParseQuery(r.URL.Query())
	if err != nil {
		return err
	}
	res, err := h.svc.Search(r.Context(), p, q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// LookupRequest is the JSON form of a bulk lookup.
type LookupRequest struct {
	Values []string `json:"values"`
}

// LookupResponse answers a lookup, one result per value in order.
type LookupResponse struct {
	Results []LookupResult `json:"results"`
}

func (h *Handler) lookupGet(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	return h.lookup(w, r, p, list(r.URL.Query(), "value"))
}

func (h *Handler) lookupPost(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var values []string
	switch mt {
	case "application/json":
		var req LookupRequest
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return err
			}
			return &apiError{http.StatusBadRequest, "body: " + err.Error()}
		}
		values = req.Values
	case "text/plain":
		sc := bufio.NewScanner(r.Body)
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for sc.Scan() {
			if v := strings.TrimSpace(sc.Text()); v != "" && !strings.HasPrefix(v, "#") {
				values = append(values, v)
			}
		}
		if err := sc.Err(); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return err
			}
			return &apiError{http.StatusBadRequest, "body: " + err.Error()}
		}
	default:
		return &apiError{http.StatusUnsupportedMediaType, "want Content-Type application/json or text/plain"}
	}
	return h.lookup(w, r, p, values)
}

func (h *Handler) lookup(w http.ResponseWriter, r *http.Request, p *access.Principal, values []string) error {
	if len(values) == 0 {
		return &apiError{http.StatusBadRequest, "no value to look up"}
	}
	res, err := h.svc.Lookup(r.Context(), p, values)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, LookupResponse{Results: res})
	return nil
}

func (h *Handler) pivot(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	hops := 1
	if v := r.URL.Query().Get("hops"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 2 {
			return &apiError{http.StatusBadRequest, "hops: want 1 or 2"}
		}
		hops = n
	}
	g, err := h.svc.Pivot(r.Context(), p, r.PathValue("id"), hops)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, g)
	return nil
}
