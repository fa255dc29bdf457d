package web

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/store"
)

// Cookie names. The session cookie carries a random secret whose SHA-256
// names the stored session; the pre-session cookie protects the sign-in
// form itself against cross-site posts (login CSRF).
const (
	sessionCookie = "mitra_session"
	preCookie     = "mitra_signin"
)

// Request is one request of a signed-in user (or of the sign-in page).
type Request struct {
	W    http.ResponseWriter
	R    *http.Request
	P    *access.Principal
	Sess *store.Session
	L    *locale
	// done says the handler has answered itself (a redirect).
	done bool
}

// Redirect answers with 303 to path (under the console).
func (rq *Request) Redirect(path string) {
	http.Redirect(rq.W, rq.R, path, http.StatusSeeOther)
	rq.done = true
}

type principalKey struct{}

// PrincipalFrom returns the console user of a request the console sends
// to the admin API in process (see Config.Admin), or ErrUnauthenticated.
func PrincipalFrom(r *http.Request) (*access.Principal, error) {
	if p, ok := r.Context().Value(principalKey{}).(*access.Principal); ok && p != nil {
		return p, nil
	}
	return nil, access.ErrUnauthenticated
}

// secure says whether cookies of r must be Secure.
func (h *Handler) secure(r *http.Request) bool { return r.TLS != nil || h.cfg.SecureCookies }

func (h *Handler) cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: h.secure(r), SameSite: http.SameSiteStrictMode}
}

// session serves next to a signed-in user: the session cookie must name a
// live session of an existing user, and a POST must carry the session's
// CSRF token. Without a session, pages redirect to the sign-in page and
// other requests get 401.
func (h *Handler) session(next func(*Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		rq, err := h.load(w, r)
		if err != nil {
			if !errors.Is(err, access.ErrUnauthenticated) {
				h.log.ErrorContext(r.Context(), "console session", "err", err)
				http.Error(w, "internal error", http.StatusInternalServerError)
				return
			}
			if r.Method == http.MethodGet && !strings.HasPrefix(r.URL.Path, Prefix+"api/") {
				http.Redirect(w, r, Prefix+"signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !h.csrfOK(rq.R, rq.Sess.CSRF) {
				h.fail(rq, errCSRF)
				return
			}
		}
		next(rq)
	}
}

// load finds the session of r and rebuilds its principal from the store,
// so that a deleted user, a changed role or organisation takes effect at
// once.
func (h *Handler) load(w http.ResponseWriter, r *http.Request) (*Request, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, access.ErrUnauthenticated
	}
	ctx := r.Context()
	hash := access.HashToken(c.Value)
	s, err := h.cfg.Store.GetSession(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, access.ErrUnauthenticated
	}
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(s.Hash), []byte(hash)) != 1 {
		return nil, access.ErrUnauthenticated
	}
	if !h.cfg.Now().Before(s.Expires) {
		_ = h.cfg.Store.DeleteSession(ctx, hash)
		return nil, access.ErrUnauthenticated
	}
	p, u, err := h.principal(ctx, s.User)
	if err != nil {
		return nil, err
	}
	// A user deleted and created again under the same name is another
	// person: sessions older than the user are not theirs. A password
	// changed since sign-in ends the session too.
	if u.Created.After(s.Created) || subtle.ConstantTimeCompare([]byte(credential(u)), []byte(s.Credential)) != 1 {
		return nil, access.ErrUnauthenticated
	}
	lang, err := h.cfg.Store.UserLanguage(ctx, s.User)
	if err != nil {
		return nil, err
	}
	lang = h.cat.pick(lang, r.Header.Get("Accept-Language"))
	return &Request{W: w, R: r.WithContext(context.WithValue(ctx, principalKey{}, p)), P: p, Sess: s, L: h.cat.locale(lang)}, nil
}

// principal is the user's principal as a password sign-in makes it: the
// user's role, organisation and the organisation's sharing groups.
func (h *Handler) principal(ctx context.Context, name string) (*access.Principal, *store.User, error) {
	u, err := h.cfg.Store.GetUser(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, access.ErrUnauthenticated
	}
	if err != nil {
		return nil, nil, err
	}
	groups, err := h.cfg.Store.GroupsOf(ctx, u.Organisation)
	if err != nil {
		return nil, nil, err
	}
	return &access.Principal{User: u.Name, Organisation: u.Organisation, Groups: groups, Role: u.Role}, u, nil
}

// credential is the digest of u's stored password hash that a session
// is bound to.
func credential(u *store.User) string { return access.HashToken(u.PasswordHash) }

// PruneSessions removes expired sessions every interval until ctx ends
// (expired ones are refused anyway; this keeps the table small).
func (h *Handler) PruneSessions(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := h.cfg.Store.PruneSessions(ctx, h.cfg.Now()); err != nil && ctx.Err() == nil {
			h.log.Warn("console: prune sessions", "err", err)
		} else if n > 0 {
			h.log.Info("console: pruned expired sessions", "sessions", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// csrfOK checks the request's CSRF token (form field "csrf" or header
// X-CSRF-Token) against want, in constant time.
func (h *Handler) csrfOK(r *http.Request, want string) bool {
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// anonymous is the Request of a page shown without a session.
func (h *Handler) anonymous(w http.ResponseWriter, r *http.Request) *Request {
	lang := h.cat.pick(r.URL.Query().Get("lang"), r.Header.Get("Accept-Language"))
	if r.Method == http.MethodPost {
		lang = h.cat.pick(r.PostFormValue("lang"), r.Header.Get("Accept-Language"))
	}
	return &Request{W: w, R: r, L: h.cat.locale(lang)}
}

// safeNext keeps a redirect target inside the console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix
	}
	return next
}

func (h *Handler) signInPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	rq := h.anonymous(w, r)
	h.showSignIn(rq, http.StatusOK, "", r.URL.Query().Get("next"))
}

func (h *Handler) showSignIn(rq *Request, status int, msg, next string) {
	token, err := access.RandomSecret(24)
	if err != nil {
		h.fail(rq, err)
		return
	}
	http.SetCookie(rq.W, h.cookie(rq.R, preCookie, token, 600))
	h.render(rq.W, rq, status, "signin", map[string]any{"PreCSRF": token, "Error": msg, "Next": safeNext(next)})
}

// signIn checks the password and starts a new session. A session the
// browser already had is ended, and the new one gets a fresh secret: an
// identifier planted before sign-in never becomes a signed-in session
// (session fixation).
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	rq := h.anonymous(w, r)
	pre, err := r.Cookie(preCookie)
	if err != nil || pre.Value == "" || subtle.ConstantTimeCompare([]byte(pre.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		h.fail(rq, errCSRF)
		return
	}
	next := r.PostFormValue("next")
	p, err := h.cfg.Auth.PasswordFrom(r.Context(), r.PostFormValue("user"), r.PostFormValue("password"), h.cfg.ClientAddr(r))
	var throttled *access.ThrottledError
	switch {
	case errors.As(err, &throttled):
		w.Header().Set("Retry-After", strconv.Itoa(throttled.RetryAfterSeconds()))
		h.showSignIn(rq, http.StatusTooManyRequests, rq.L.T("signin.throttled", "Seconds", throttled.RetryAfterSeconds()), next)
		return
	case errors.Is(err, access.ErrUnauthenticated):
		h.showSignIn(rq, http.StatusUnauthorized, rq.L.T("signin.failed"), next)
		return
	case err != nil:
		h.fail(rq, err)
		return
	}
	if old, err := r.Cookie(sessionCookie); err == nil && old.Value != "" {
		if err := h.cfg.Store.DeleteSession(r.Context(), access.HashToken(old.Value)); err != nil {
			h.fail(rq, err)
			return
		}
	}
	secret, err := access.RandomSecret(32)
	if err != nil {
		h.fail(rq, err)
		return
	}
	csrf, err := access.RandomSecret(32)
	if err != nil {
		h.fail(rq, err)
		return
	}
	u, err := h.cfg.Store.GetUser(r.Context(), p.User)
	if err != nil {
		h.fail(rq, err)
		return
	}
	s := &store.Session{Hash: access.HashToken(secret), User: p.User, CSRF: csrf, Credential: credential(u), Expires: h.cfg.Now().Add(h.cfg.SessionTTL)}
	if err := h.cfg.Store.CreateSession(r.Context(), s); err != nil {
		h.fail(rq, err)
		return
	}
	// A language chosen on the sign-in page becomes the user's.
	if l := r.PostFormValue("lang"); l != "" && l == h.cat.pick(l, "") {
		if err := h.cfg.Store.SetUserLanguage(r.Context(), p.User, l); err != nil {
			h.fail(rq, err)
			return
		}
	}
	_ = h.cfg.Store.AppendAudit(r.Context(), store.AuditRecord{Principal: p.User, Organisation: p.Organisation,
		Action: "console.signin", Path: r.URL.Path, Detail: "console sign-in from " + h.cfg.ClientAddr(r)})
	http.SetCookie(w, h.cookie(r, preCookie, "", -1))
	http.SetCookie(w, h.cookie(r, sessionCookie, secret, int(h.cfg.SessionTTL.Seconds())))
	http.Redirect(w, r, safeNext(next), http.StatusSeeOther)
}

func (h *Handler) signOut(rq *Request) {
	if err := h.cfg.Store.DeleteSession(rq.R.Context(), rq.Sess.Hash); err != nil {
		h.fail(rq, err)
		return
	}
	_ = h.cfg.Store.AppendAudit(rq.R.Context(), store.AuditRecord{Principal: rq.P.User, Organisation: rq.P.Organisation,
		Action: "console.signout", Path: rq.R.URL.Path})
	http.SetCookie(rq.W, h.cookie(rq.R, sessionCookie, "", -1))
	rq.Redirect(Prefix + "signin")
}

// setLanguage records the user's language and returns to the page.
func (h *Handler) setLanguage(rq *Request) {
	l := rq.R.PostFormValue("lang")
	if l != h.cat.pick(l, "") {
		h.fail(rq, &httpError{http.StatusBadRequest, "error.badrequest"})
		return
	}
	if err := h.cfg.Store.SetUserLanguage(rq.R.Context(), rq.P.User, l); err != nil {
		h.fail(rq, err)
		return
	}
	rq.Redirect(safeNext(rq.R.PostFormValue("next")))
}

// view is what every template gets: the page's data and the frame around
// it (user, navigation, language, CSRF token).
type view struct {
	*locale
	Page      string
	User      *access.Principal
	CSRF      string
	Nav       []navItem
	Languages []langItem
	Here      string
	Data      any
}

type navItem struct {
	Name    string
	Current bool
}

type langItem struct {
	Code, Name string
	Current    bool
}

// render executes a page template into a buffer first, so that a template
// error answers 500 instead of half a page.
func (h *Handler) render(w http.ResponseWriter, rq *Request, status int, name string, data any) {
	v := view{locale: rq.L, Page: name, User: rq.P, Here: rq.R.URL.RequestURI(), Data: data}
	if rq.Sess != nil {
		v.CSRF = rq.Sess.CSRF
	}
	if rq.P != nil {
		for _, p := range h.pages {
			if p.Hidden || p.AdminOnly && !rq.P.IsAdmin() {
				continue
			}
			v.Nav = append(v.Nav, navItem{Name: p.Name, Current: p.Name == name})
		}
	}
	for _, l := range Languages {
		v.Languages = append(v.Languages, langItem{Code: l, Name: languageName(l), Current: l == rq.L.lang})
	}
	var buf bytes.Buffer
	if err := h.tmpl[name].Execute(&buf, v); err != nil {
		h.log.Error("console template", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if len(*rq.L.missing) > 0 {
		h.log.Warn("console: untranslated messages", "lang", rq.L.lang, "ids", fmt.Sprint(*rq.L.missing))
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
