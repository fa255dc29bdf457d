package taxii

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/store"
)

// Error is a failure with the HTTP status and TAXII error message resource
// (TAXII 2.1 §3.6.1) to send for it.
type Error struct {
	Status      int
	Title       string
	Description string
	Details     map[string]any
}

func (e *Error) Error() string {
	if e.Description != "" {
		return e.Title + ": " + e.Description
	}
	return e.Title
}

func errorf(status int, title, desc string) *Error {
	return &Error{Status: status, Title: title, Description: desc}
}

func badRequest(desc string) *Error { return errorf(http.StatusBadRequest, "Bad request", desc) }

// notFound answers both "does not exist" and "you may not know it exists".
func notFound(what string) *Error {
	return errorf(http.StatusNotFound, "Not found", what+" not found, or not accessible to you")
}

// writeError maps err to a status and writes the error message resource. It
// is the one place where errors become HTTP statuses.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var te *Error
	var throttled *access.ThrottledError
	switch {
	case errors.As(err, &te):
	case errors.As(err, &throttled):
		w.Header().Set("Retry-After", strconv.Itoa(throttled.RetryAfterSeconds()))
		te = errorf(http.StatusTooManyRequests, "Too many failed sign-ins", throttled.Error())
	case errors.Is(err, access.ErrUnauthenticated):
		te = errorf(http.StatusUnauthorized, "Authentication required", "send HTTP Basic credentials or a Bearer API token")
	case errors.Is(err, store.ErrNotFound):
		te = notFound("resource")
	case errors.Is(err, store.ErrConflict):
		te = errorf(http.StatusConflict, "Conflict", err.Error())
	case errors.Is(err, store.ErrInvalid):
		te = badRequest(err.Error())
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads the answer.
		te = errorf(499, "Request cancelled", "")
	default:
		// Never send internals to the client; log them.
		s.log.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		te = errorf(http.StatusInternalServerError, "Internal server error", "the server could not complete the request; the error is logged")
	}
	writeMessage(w, r.Method != http.MethodHead, te)
	if te.Status >= 500 {
		return
	}
	s.log.DebugContext(r.Context(), "request refused", "method", r.Method, "path", r.URL.Path, "status", te.Status, "reason", te.Error())
}

// WriteErrorMessage writes the TAXII error message resource (TAXII 2.1
// §3.6.1) with status, title and description: the form every Mitra API
// answers errors in, TAXII or extension.
func WriteErrorMessage(w http.ResponseWriter, status int, title, description string) {
	writeMessage(w, true, &Error{Status: status, Title: title, Description: description})
}

func writeMessage(w http.ResponseWriter, withBody bool, te *Error) {
	if te.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="mitra", charset="UTF-8", Bearer realm="mitra"`)
	}
	body := map[string]any{"title": te.Title, "http_status": strconv.Itoa(te.Status)}
	if te.Description != "" {
		body["description"] = te.Description
	}
	if len(te.Details) > 0 {
		body["details"] = te.Details
	}
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", MediaType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(te.Status)
	if withBody {
		_, _ = w.Write(b)
	}
}
