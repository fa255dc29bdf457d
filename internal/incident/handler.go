package incident

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxii"
)

// Prefix is where the incident API lives: outside the TAXII API root,
// whose paths TAXII 2.1 defines.
const Prefix = "/x-mitra-incidents/"

// Notifications lists the notification queue (the admin's view).
type Notifications interface {
	List(ctx context.Context, f store.NotificationFilter) ([]store.Notification, error)
}

// HandlerOptions configures a Handler.
type HandlerOptions struct {
	// Authenticate names the caller (the TAXII server's Authenticate).
	Authenticate func(*http.Request) (*access.Principal, error)
	// Notifications, when set, is listed at Prefix+"notifications" for
	// administrators.
	Notifications Notifications
	// MaxBody bounds a request body (bytes); 1 MiB when zero.
	MaxBody int64
	Logger  *slog.Logger
	// Prefix is where the API is served (Prefix when empty; the drill's
	// incident service is served under the drill's prefix).
	Prefix string
}

// Handler serves the incident API under Prefix:
//
//	GET  ./                           incidents the caller may see (?state=, ?limit=)
//	POST ./                           report an incident (Report as JSON)
//	GET  ./{id}                       one incident: clocks, history, STIX object
//	POST ./{id}/transition            {"state":..,"note":..}
//	POST ./{id}/stages/{stage}        {"note":..}: a stage met by other means
//	POST ./{id}/reports               a follow-up report (FollowUp as JSON)
//	GET  ./regimes                    the reporting regimes and sectors
//	GET  ./extension-definition       the STIX extension-definition
//	GET  ./schema                     its JSON schema
//	GET  ./notifications              the notification queue (administrators)
//
// Errors are TAXII error message resources; an incident the caller may
// not see is answered exactly as a missing one (404).
type Handler struct {
	svc *Service
	opt HandlerOptions
	mux *http.ServeMux
}

// NewHandler returns the incident API over svc.
func NewHandler(svc *Service, opt HandlerOptions) *Handler {
	if opt.MaxBody <= 0 {
		opt.MaxBody = 1 << 20
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Prefix == "" {
		opt.Prefix = Prefix
	}
	Prefix := opt.Prefix
	h := &Handler{svc: svc, opt: opt, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET "+Prefix+"{$}", h.auth(h.list))
	h.mux.HandleFunc("POST "+Prefix+"{$}", h.auth(h.report))
	h.mux.HandleFunc("GET "+Prefix+"regimes", h.auth(h.regimes))
	h.mux.HandleFunc("GET "+Prefix+"extension-definition", h.auth(h.extension))
	h.mux.HandleFunc("GET "+Prefix+"schema", h.auth(h.schema))
	h.mux.HandleFunc("GET "+Prefix+"notifications", h.auth(h.notifications))
	h.mux.HandleFunc("GET "+Prefix+"{id}", h.auth(h.show))
	h.mux.HandleFunc("POST "+Prefix+"{id}/transition", h.auth(h.transition))
	h.mux.HandleFunc("POST "+Prefix+"{id}/stages/{stage}", h.auth(h.stage))
	h.mux.HandleFunc("POST "+Prefix+"{id}/reports", h.auth(h.followUp))
	h.mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{http.StatusNotFound, "Not found", "no such resource"})
	})
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

type apiError struct {
	status      int
	title, desc string
}

func (e *apiError) Error() string { return e.title + ": " + e.desc }

// writeError writes the TAXII error message resource (TAXII 2.1 §3.6.1).
func writeError(w http.ResponseWriter, e *apiError) {
	taxii.WriteErrorMessage(w, e.status, e.title, e.desc)
}

// statusOf maps the package's errors to statuses: the one place they
// become HTTP.
func statusOf(err error) *apiError {
	var ae *apiError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &mbe):
		return &apiError{http.StatusRequestEntityTooLarge, "Request too large", fmt.Sprintf("body larger than %d bytes", mbe.Limit)}
	case errors.Is(err, ErrNotFound):
		// The same words whether missing or hidden.
		return &apiError{http.StatusNotFound, "Not found", "not found, or not accessible to you"}
	case errors.Is(err, ErrForbidden):
		return &apiError{http.StatusForbidden, "Forbidden", err.Error()}
	case errors.Is(err, ErrConflict):
		return &apiError{http.StatusConflict, "Conflict", err.Error()}
	case errors.Is(err, ErrInvalid), errors.Is(err, store.ErrInvalid):
		return &apiError{http.StatusBadRequest, "Bad request", err.Error()}
	case errors.Is(err, context.Canceled):
		return &apiError{499, "Request cancelled", ""}
	}
	return nil
}

func (h *Handler) auth(fn func(http.ResponseWriter, *http.Request, *access.Principal) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := h.opt.Authenticate(r)
		if err != nil {
			var throttled *access.ThrottledError
			if errors.As(err, &throttled) {
				w.Header().Set("Retry-After", strconv.Itoa(throttled.RetryAfterSeconds()))
				writeError(w, &apiError{http.StatusTooManyRequests, "Too many failed sign-ins", throttled.Error()})
				return
			}
			writeError(w, &apiError{http.StatusUnauthorized, "Authentication required", "send HTTP Basic credentials or a Bearer API token"})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, h.opt.MaxBody)
		if err := fn(w, r, p); err != nil {
			e := statusOf(err)
			if e == nil {
				h.opt.Logger.ErrorContext(r.Context(), "incident API", "method", r.Method, "path", r.URL.Path, "err", err)
				e = &apiError{http.StatusInternalServerError, "Internal server error", "the server could not complete the request; the error is logged"}
			}
			writeError(w, e)
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func decode(r *http.Request, v any) error {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return &apiError{http.StatusUnsupportedMediaType, "Unsupported media type", "want Content-Type application/json"}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return &apiError{http.StatusBadRequest, "Bad request", "body: " + err.Error()}
	}
	return nil
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	var f ListFilter
	if s := r.URL.Query().Get("state"); s != "" {
		st, err := ParseState(s)
		if err != nil {
			return err
		}
		f.State = st
	}
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return &apiError{http.StatusBadRequest, "Bad request", "limit: want a positive integer"}
		}
		f.Limit = n
	}
	incs, err := h.svc.List(r.Context(), p, f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"incidents": incs})
	return nil
}

func (h *Handler) report(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	var rep Report
	if err := decode(r, &rep); err != nil {
		return err
	}
	inc, err := h.svc.Report(r.Context(), p, rep)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, inc)
	return nil
}

func (h *Handler) show(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	inc, err := h.svc.Get(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, inc)
	return nil
}

// TransitionRequest is the body of a transition.
type TransitionRequest struct {
	State string `json:"state"`
	Note  string `json:"note,omitempty"`
}

func (h *Handler) transition(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	var req TransitionRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	to, err := ParseState(req.State)
	if err != nil {
		return err
	}
	inc, err := h.svc.Transition(r.Context(), p, r.PathValue("id"), to, req.Note)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, inc)
	return nil
}

// StageRequest is the body of a stage met by other means.
type StageRequest struct {
	Note string `json:"note,omitempty"`
}

func (h *Handler) stage(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	var req StageRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	inc, err := h.svc.MeetStage(r.Context(), p, r.PathValue("id"), r.PathValue("stage"), req.Note)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, inc)
	return nil
}

// FollowUpResponse is the answer to a follow-up: the report's id and the
// incident after it.
type FollowUpResponse struct {
	Report   string    `json:"report"`
	Incident *Incident `json:"incident"`
}

func (h *Handler) followUp(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	var f FollowUp
	if err := decode(r, &f); err != nil {
		return err
	}
	inc, rep, err := h.svc.FollowUp(r.Context(), p, r.PathValue("id"), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, FollowUpResponse{Report: rep, Incident: inc})
	return nil
}

func (h *Handler) regimes(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	writeJSON(w, http.StatusOK, map[string]any{"regimes": h.svc.Regimes().List(), "sectors": h.svc.Sectors(), "severities": Severities})
	return nil
}

func (h *Handler) extension(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	w.Header().Set("Content-Type", "application/stix+json;version=2.1")
	_, _ = w.Write(ExtensionDefinition())
	return nil
}

func (h *Handler) schema(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	w.Header().Set("Content-Type", "application/schema+json")
	_, _ = w.Write([]byte(Schema))
	return nil
}

func (h *Handler) notifications(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	// Notifications name incidents of every organisation: administrators
	// only.
	if !p.IsAdmin() || h.opt.Notifications == nil {
		return &apiError{http.StatusNotFound, "Not found", "no such resource"}
	}
	f := store.NotificationFilter{State: r.URL.Query().Get("state")}
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return &apiError{http.StatusBadRequest, "Bad request", "limit: want a positive integer"}
		}
		f.Limit = n
	}
	ds, err := h.opt.Notifications.List(r.Context(), f)
	if err != nil {
		return err
	}
	type item struct {
		store.Notification
		Body json.RawMessage `json:"body"`
	}
	out := make([]item, len(ds))
	for i, d := range ds {
		out[i] = item{d, d.Body}
	}
	writeJSON(w, http.StatusOK, map[string]any{"notifications": out})
	return nil
}
