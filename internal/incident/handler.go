package incident

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/extapi"
	"github.com/mitra-cert/mitra/internal/store"
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
	api *extapi.API
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
	h.api = &extapi.API{Name: "incident API", Authenticate: opt.Authenticate, MaxBody: opt.MaxBody, StatusOf: statusOf, Logger: opt.Logger}
	h.mux.HandleFunc("GET "+Prefix+"{$}", h.api.Auth(h.list))
	h.mux.HandleFunc("POST "+Prefix+"{$}", h.api.Auth(h.report))
	h.mux.HandleFunc("GET "+Prefix+"regimes", h.api.Auth(h.regimes))
	h.mux.HandleFunc("GET "+Prefix+"extension-definition", h.api.Auth(h.extension))
	h.mux.HandleFunc("GET "+Prefix+"schema", h.api.Auth(h.schema))
	h.mux.HandleFunc("GET "+Prefix+"notifications", h.api.Auth(h.notifications))
	h.mux.HandleFunc("GET "+Prefix+"{id}", h.api.Auth(h.show))
	h.mux.HandleFunc("POST "+Prefix+"{id}/transition", h.api.Auth(h.transition))
	h.mux.HandleFunc("POST "+Prefix+"{id}/stages/{stage}", h.api.Auth(h.stage))
	h.mux.HandleFunc("POST "+Prefix+"{id}/reports", h.api.Auth(h.followUp))
	h.mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		(&extapi.Error{Status: http.StatusNotFound, Title: "Not found", Description: "no such resource"}).Write(w)
	})
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// statusOf maps the package's errors to statuses: the one place they
// become HTTP.
func statusOf(err error) *extapi.Error {
	switch {
	case errors.Is(err, ErrNotFound):
		// The same words whether missing or hidden.
		return &extapi.Error{Status: http.StatusNotFound, Title: "Not found", Description: "not found, or not accessible to you"}
	case errors.Is(err, ErrForbidden):
		return &extapi.Error{Status: http.StatusForbidden, Title: "Forbidden", Description: err.Error()}
	case errors.Is(err, ErrConflict):
		return &extapi.Error{Status: http.StatusConflict, Title: "Conflict", Description: err.Error()}
	case errors.Is(err, ErrInvalid), errors.Is(err, store.ErrInvalid):
		return &extapi.Error{Status: http.StatusBadRequest, Title: "Bad request", Description: err.Error()}
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
			return &extapi.Error{Status: http.StatusBadRequest, Title: "Bad request", Description: "limit: want a positive integer"}
		}
		f.Limit = n
	}
	incs, err := h.svc.List(r.Context(), p, f)
	if err != nil {
		return err
	}
	extapi.WriteJSON(w, http.StatusOK, map[string]any{"incidents": incs})
	return nil
}

func (h *Handler) report(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	var rep Report
	if err := extapi.Decode(r, &rep); err != nil {
		return err
	}
	inc, err := h.svc.Report(r.Context(), p, rep)
	if err != nil {
		return err
	}
	extapi.WriteJSON(w, http.StatusCreated, inc)
	return nil
}

func (h *Handler) show(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	inc, err := h.svc.Get(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	extapi.WriteJSON(w, http.StatusOK, inc)
	return nil
}

// TransitionRequest is the body of a transition.
type TransitionRequest struct {
	State string `json:"state"`
	Note  string `json:"note,omitempty"`
}

func (h *Handler) transition(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	var req TransitionRequest
	if err := extapi.Decode(r, &req); err != nil {
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
	extapi.WriteJSON(w, http.StatusOK, inc)
	return nil
}

// StageRequest is the body of a stage met by other means.
type StageRequest struct {
	Note string `json:"note,omitempty"`
}

func (h *Handler) stage(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	var req StageRequest
	if err := extapi.Decode(r, &req); err != nil {
		return err
	}
	inc, err := h.svc.MeetStage(r.Context(), p, r.PathValue("id"), r.PathValue("stage"), req.Note)
	if err != nil {
		return err
	}
	extapi.WriteJSON(w, http.StatusOK, inc)
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
	if err := extapi.Decode(r, &f); err != nil {
		return err
	}
	inc, rep, err := h.svc.FollowUp(r.Context(), p, r.PathValue("id"), f)
	if err != nil {
		return err
	}
	extapi.WriteJSON(w, http.StatusCreated, FollowUpResponse{Report: rep, Incident: inc})
	return nil
}

func (h *Handler) regimes(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	extapi.WriteJSON(w, http.StatusOK, map[string]any{"regimes": h.svc.Regimes().List(), "sectors": h.svc.Sectors(), "severities": Severities})
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
		return &extapi.Error{Status: http.StatusNotFound, Title: "Not found", Description: "no such resource"}
	}
	f := store.NotificationFilter{State: r.URL.Query().Get("state")}
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return &extapi.Error{Status: http.StatusBadRequest, Title: "Bad request", Description: "limit: want a positive integer"}
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
	extapi.WriteJSON(w, http.StatusOK, map[string]any{"notifications": out})
	return nil
}
