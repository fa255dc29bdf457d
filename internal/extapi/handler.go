// Package extapi is the HTTP plumbing Mitra's extension APIs share (the
// incident, assistance, hash, search and feed APIs served beside TAXII):
// errors that carry their HTTP answer, the JSON body reader and writer, the
// sign-in wrapper, and the client side of the same conventions.
package extapi

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
	"github.com/mitra-cert/mitra/internal/taxii"
)

// Error is an error that says how the API answers it.
type Error struct {
	Status int
	// Title is the error message's title; http.StatusText(Status) when
	// empty.
	Title       string
	Description string
}

// Errorf is an Error whose title is the status text.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Description: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	if e.Title == "" {
		return e.Description
	}
	return e.Title + ": " + e.Description
}

// title is e's title, the status text when it has none.
func (e *Error) title() string {
	if e.Title == "" {
		return http.StatusText(e.Status)
	}
	return e.Title
}

// Write writes e as a TAXII error message resource (TAXII 2.1 §3.6.1).
func (e *Error) Write(w http.ResponseWriter) {
	taxii.WriteErrorMessage(w, e.Status, e.title(), e.Description)
}

// WriteBrief writes e as a JSON object of the status text and the
// description only: the form the hash and feed APIs answer in.
func (e *Error) WriteBrief(w http.ResponseWriter) {
	WriteJSON(w, e.Status, map[string]string{"title": http.StatusText(e.Status), "description": e.Description})
}

// As returns the answer err carries: an *Error in its chain, or 413 for a
// body over its http.MaxBytesReader bound; nil for any other error.
func As(err error) *Error {
	var ae *Error
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &mbe):
		return &Error{http.StatusRequestEntityTooLarge, "Request too large", fmt.Sprintf("body larger than %d bytes", mbe.Limit)}
	}
	return nil
}

// IsJSON reports whether r's body is declared application/json.
func IsJSON(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/json"
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Decode reads r's JSON body into v, refusing unknown fields. A body over
// its bound is returned as the *http.MaxBytesError; any other fault is an
// *Error (415 or 400).
func Decode(r *http.Request, v any) error {
	if !IsJSON(r) {
		return &Error{http.StatusUnsupportedMediaType, "Unsupported media type", "want Content-Type application/json"}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return &Error{http.StatusBadRequest, "Bad request", "body: " + err.Error()}
	}
	return nil
}

// HandlerFunc serves one request of a signed-in principal; an error it
// returns is answered by the API.
type HandlerFunc func(http.ResponseWriter, *http.Request, *access.Principal) error

// API serves requests whose errors are TAXII error message resources: the
// incident and assistance APIs.
type API struct {
	// Name names the API in the log ("incident API").
	Name string
	// Authenticate names the caller (the TAXII server's Authenticate).
	Authenticate func(*http.Request) (*access.Principal, error)
	// MaxBody bounds a request body (bytes).
	MaxBody int64
	// StatusOf maps the API's own errors to answers; nil for an error it
	// does not know, which is logged and answered 500. Errors As knows are
	// mapped before it, context.Canceled after it.
	StatusOf func(error) *Error
	Logger   *slog.Logger
}

// Auth signs the caller in (401, or 429 with Retry-After when sign-ins
// are throttled), bounds the body and answers fn's error.
func (a *API) Auth(fn HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := a.Authenticate(r)
		if err != nil {
			var throttled *access.ThrottledError
			if errors.As(err, &throttled) {
				w.Header().Set("Retry-After", strconv.Itoa(throttled.RetryAfterSeconds()))
				(&Error{http.StatusTooManyRequests, "Too many failed sign-ins", throttled.Error()}).Write(w)
				return
			}
			(&Error{http.StatusUnauthorized, "Authentication required", "send HTTP Basic credentials or a Bearer API token"}).Write(w)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, a.MaxBody)
		if err := fn(w, r, p); err != nil {
			a.Fail(w, r, err)
		}
	}
}

// Fail answers err: its mapped status, else 500 with err logged.
func (a *API) Fail(w http.ResponseWriter, r *http.Request, err error) {
	e := As(err)
	if e == nil && a.StatusOf != nil {
		e = a.StatusOf(err)
	}
	if e == nil && errors.Is(err, context.Canceled) {
		e = &Error{499, "Request cancelled", ""}
	}
	if e == nil {
		a.Logger.ErrorContext(r.Context(), a.Name, "method", r.Method, "path", r.URL.Path, "err", err)
		e = &Error{http.StatusInternalServerError, "Internal server error", "the server could not complete the request; the error is logged"}
	}
	e.Write(w)
}

// Brief serves requests whose errors are written with WriteBrief: the hash
// and feed APIs.
type Brief struct {
	// Name names the API in the log ("hash API").
	Name string
	// Authenticate names the caller (the TAXII server's Authenticate).
	Authenticate func(*http.Request) (*access.Principal, error)
	// MaxBody bounds a request body (bytes); no bound when zero.
	MaxBody int64
	// StatusOf maps the API's own errors to answers (after those As
	// knows); nil for an error it does not know, which is logged and
	// answered 500.
	StatusOf func(error) *Error
	Logger   *slog.Logger
}

// Auth signs the caller in (401 otherwise), refuses a caller without the
// admin role when admin is set (403), bounds the body and answers fn's
// error.
func (b *Brief) Auth(admin bool, fn HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := b.Authenticate(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Basic realm="mitra", charset="UTF-8", Bearer realm="mitra"`)
			Errorf(http.StatusUnauthorized, "authentication required").WriteBrief(w)
			return
		}
		if admin && !p.IsAdmin() {
			Errorf(http.StatusForbidden, "the admin role is required").WriteBrief(w)
			return
		}
		if b.MaxBody > 0 {
			r.Body = http.MaxBytesReader(w, r.Body, b.MaxBody)
		}
		if err := fn(w, r, p); err != nil {
			e := As(err)
			if e == nil && b.StatusOf != nil {
				e = b.StatusOf(err)
			}
			if e == nil {
				b.Logger.Error(b.Name, "path", r.URL.Path, "err", err)
				e = Errorf(http.StatusInternalServerError, "internal error")
			}
			e.WriteBrief(w)
		}
	}
}
