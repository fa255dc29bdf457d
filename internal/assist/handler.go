package assist

import (
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/extapi"
	"github.com/mitra-cert/mitra/internal/store"
)

// Prefix is where the assistance API lives, PocPrefix the directory's:
// outside the TAXII API root, whose paths TAXII 2.1 defines.
const (
	Prefix    = "/x-mitra-assist/"
	PocPrefix = "/x-mitra-poc/"
)

// HandlerOptions configures a Handler.
type HandlerOptions struct {
	// Authenticate names the caller (the TAXII server's Authenticate).
	Authenticate func(*http.Request) (*access.Principal, error)
	Logger       *slog.Logger
	// MaxBody bounds request bodies; 1 MiB when zero.
	MaxBody int64
	// Prefix and PocPrefix are where the two APIs are mounted (Prefix and
	// PocPrefix when empty; a drill's service is mounted elsewhere).
	Prefix, PocPrefix string
}

// Handler serves the assistance API under Prefix:
//
//	GET  requests                 the requests the caller may see
//	POST requests                 {"contact","kind","concerns":[..],"tlp","response_time":"4h","abstract","content"}
//	GET  requests/{id}            one request with its history and deliveries
//	POST requests/{id}/steps      {"message":"acknowledge|answer|more-information|accept|decline|information","content"}
//	POST tick                     run the clock now (what the server's own clock would do next)
//
// and the directory under PocPrefix:
//
//	GET  contacts                 the entries the caller may see
//	POST contacts                 a Contact
//	POST ping                     {"contacts":[..]}: send challenges (administrators)
//	GET  report?since=RFC3339     reachability per contact
//	POST challenges/{id}/answer   answer a challenge as the caller
//	GET|POST answer/{id}?sig=..   the signed answer link (no sign-in)
type Handler struct {
	svc *Service
	opt HandlerOptions
	api *extapi.API
	mux *http.ServeMux
}

// NewHandler returns the API over svc.
func NewHandler(svc *Service, opt HandlerOptions) *Handler {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.MaxBody <= 0 {
		opt.MaxBody = 1 << 20
	}
	if opt.Prefix == "" {
		opt.Prefix = Prefix
	}
	if opt.PocPrefix == "" {
		opt.PocPrefix = PocPrefix
	}
	h := &Handler{svc: svc, opt: opt, mux: http.NewServeMux()}
	h.api = &extapi.API{Name: "assistance API", Authenticate: opt.Authenticate, MaxBody: opt.MaxBody, StatusOf: statusOf, Logger: opt.Logger}
	h.mux.HandleFunc("GET "+opt.Prefix+"requests", h.api.Auth(h.list))
	h.mux.HandleFunc("POST "+opt.Prefix+"requests", h.api.Auth(h.raise))
	h.mux.HandleFunc("GET "+opt.Prefix+"requests/{id}", h.api.Auth(h.show))
	h.mux.HandleFunc("POST "+opt.Prefix+"requests/{id}/steps", h.api.Auth(h.step))
	h.mux.HandleFunc("POST "+opt.Prefix+"tick", h.api.Auth(h.tick))
	h.mux.HandleFunc("GET "+opt.PocPrefix+"contacts", h.api.Auth(h.contacts))
	h.mux.HandleFunc("POST "+opt.PocPrefix+"contacts", h.api.Auth(h.addContact))
	h.mux.HandleFunc("POST "+opt.PocPrefix+"ping", h.api.Auth(h.ping))
	h.mux.HandleFunc("GET "+opt.PocPrefix+"report", h.api.Auth(h.report))
	h.mux.HandleFunc("POST "+opt.PocPrefix+"challenges/{id}/answer", h.api.Auth(h.answerAPI))
	h.mux.HandleFunc("GET "+opt.PocPrefix+"answer/{id}", h.answerForm)
	h.mux.HandleFunc("POST "+opt.PocPrefix+"answer/{id}", h.answerLink)
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// statusOf maps the package's errors to statuses.
func statusOf(err error) *extapi.Error {
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, store.ErrNotFound):
		// The same words whether missing or hidden.
		return &extapi.Error{Status: http.StatusNotFound, Title: "Not found", Description: "not found, or not accessible to you"}
	case errors.Is(err, ErrForbidden), errors.Is(err, store.ErrForbidden):
		return &extapi.Error{Status: http.StatusForbidden, Title: "Forbidden", Description: err.Error()}
	case errors.Is(err, ErrInvalid), errors.Is(err, store.ErrInvalid):
		return &extapi.Error{Status: http.StatusBadRequest, Title: "Bad request", Description: err.Error()}
	}
	return nil
}

func adminOnly(p *access.Principal) error {
	if !p.IsAdmin() {
		return &extapi.Error{Status: http.StatusForbidden, Title: "Forbidden", Description: "administrators only"}
	}
	return nil
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	l, err := h.svc.List(r.Context(), p)
	if err != nil {
		return err
	}
	extapi.WriteJSON(w, http.StatusOK, map[string]any{"requests": l})
	return nil
}

// RaiseBody is the body of POST requests.
type RaiseBody struct {
	Contact      string   `json:"contact"`
	Kind         string   `json:"kind"`
	Concerns     []string `json:"concerns"`
	TLP          string   `json:"tlp,omitempty"`
	ResponseTime string   `json:"response_time"`
	Abstract     string   `json:"abstract,omitempty"`
	Content      string   `json:"content,omitempty"`
}

func (h *Handler) raise(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	var b RaiseBody
	if err := extapi.Decode(r, &b); err != nil {
		return err
	}
	d, err := time.ParseDuration(b.ResponseTime)
	if err != nil {
		return &extapi.Error{Status: http.StatusBadRequest, Title: "Bad request", Description: "response_time: want a duration such as 4h"}
	}
	req, err := h.svc.Raise(r.Context(), p, RaiseInput{Contact: b.Contact, Kind: b.Kind, Concerns: b.Concerns, TLP: b.TLP, ResponseTime: d, Abstract: b.Abstract, Content: b.Content})
	if err != nil {
		return err
	}
	extapi.WriteJSON(w, http.StatusCreated, req)
	return nil
}

func (h *Handler) show(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	req, err := h.svc.Get(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	extapi.WriteJSON(w, http.StatusOK, req)
	return nil
}

// StepBody is the body of POST requests/{id}/steps.
type StepBody struct {
	Message string `json:"message"`
	Content string `json:"content,omitempty"`
}

func (h *Handler) step(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	var b StepBody
	if err := extapi.Decode(r, &b); err != nil {
		return err
	}
	req, err := h.svc.AddStep(r.Context(), p, r.PathValue("id"), b.Message, b.Content)
	if err != nil {
		return err
	}
	extapi.WriteJSON(w, http.StatusOK, req)
	return nil
}

// tick runs the scheduled work now: any signed-in user may ask, as it
// does only what the clock would do anyway.
func (h *Handler) tick(w http.ResponseWriter, r *http.Request, _ *access.Principal) error {
	res, err := h.svc.Tick(r.Context())
	if err != nil {
		return err
	}
	extapi.WriteJSON(w, http.StatusOK, res)
	return nil
}

func (h *Handler) contacts(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	l, err := h.svc.Contacts(r.Context(), p)
	if err != nil {
		return err
	}
	extapi.WriteJSON(w, http.StatusOK, map[string]any{"contacts": l})
	return nil
}

func (h *Handler) addContact(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	var c Contact
	if err := extapi.Decode(r, &c); err != nil {
		return err
	}
	got, err := h.svc.AddContact(r.Context(), p, c)
	if err != nil {
		return err
	}
	extapi.WriteJSON(w, http.StatusCreated, got)
	return nil
}

func (h *Handler) ping(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	if err := adminOnly(p); err != nil {
		return err
	}
	var b struct {
		Contacts []string `json:"contacts"`
	}
	if r.ContentLength != 0 {
		if err := extapi.Decode(r, &b); err != nil {
			return err
		}
	}
	chs, err := h.svc.Ping(r.Context(), p, b.Contacts)
	if err != nil {
		return err
	}
	extapi.WriteJSON(w, http.StatusOK, map[string]any{"challenges": chs})
	return nil
}

func (h *Handler) report(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	var since time.Time
	if s := r.URL.Query().Get("since"); s != "" {
		var err error
		if since, err = time.Parse(time.RFC3339, s); err != nil {
			return &extapi.Error{Status: http.StatusBadRequest, Title: "Bad request", Description: "since: want an RFC 3339 time"}
		}
	}
	rep, err := h.svc.Report(r.Context(), p, since)
	if err != nil {
		return err
	}
	extapi.WriteJSON(w, http.StatusOK, map[string]any{"contacts": rep})
	return nil
}

func (h *Handler) answerAPI(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	ch, err := h.svc.Answer(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	extapi.WriteJSON(w, http.StatusOK, ch)
	return nil
}

// answerForm shows a confirmation button: opening the link alone (a mail
// scanner fetching it) answers nothing.
func (h *Handler) answerForm(w http.ResponseWriter, r *http.Request) {
	id, sig := r.PathValue("id"), r.URL.Query().Get("sig")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; form-action 'self'")
	fmt.Fprintf(w, `<!doctype html><title>Mitra reachability test</title><form method="post" action="?sig=%s"><p>Reachability test %s</p><button>Confirm</button></form>`,
		html.EscapeString(sig), html.EscapeString(id))
}

func (h *Handler) answerLink(w http.ResponseWriter, r *http.Request) {
	ch, err := h.svc.AnswerSigned(r.Context(), r.PathValue("id"), r.URL.Query().Get("sig"))
	if err != nil {
		h.api.Fail(w, r, err)
		return
	}
	extapi.WriteJSON(w, http.StatusOK, ch)
}
