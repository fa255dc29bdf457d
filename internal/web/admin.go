package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
)

// The administration pages call the admin API in process (Config.Admin),
// as the signed-in user: the API's own rules (admins only, validation)
// and audit records apply unchanged, and the console adds nothing an API
// client could not do.

// adminSections are the administration page's sections: the admin API
// listing each shows and the columns it shows of it.
var adminSections = []struct {
	Name    string
	Path    string
	Columns []string
}{
	{"orgs", "/admin/orgs", []string{"name", "id", "anonymise_sightings", "default"}},
	{"users", "/admin/users", []string{"name", "role", "organisation"}},
	{"tokens", "/admin/tokens", []string{"id", "user", "role", "expires", "revoked"}},
	{"groups", "/admin/groups", []string{"name", "id", "orgs"}},
	{"collections", "/admin/collections", []string{"title", "id", "alias", "default_tlp", "readers", "writers", "grants"}},
	{"audit", "/admin/audit?limit=100", []string{"Seq", "At", "Principal", "Action", "Collection", "Detail"}},
}

// adminActions are the changes the administration page makes: the
// method, the API path (with {field} taken from the form) and the JSON
// body built from the form.
var adminActions = map[string]struct {
	Method string
	Path   string
	Body   func(form url.Values) any
}{
	"org.create": {"POST", "/admin/orgs", func(f url.Values) any {
		return map[string]any{"name": f.Get("name"), "anonymise_sightings": f.Get("anonymise") == "on"}
	}},
	"org.delete": {"DELETE", "/admin/orgs/{id}", nil},
	"user.create": {"POST", "/admin/users", func(f url.Values) any {
		return map[string]any{"name": f.Get("name"), "password": f.Get("password"), "role": f.Get("role"), "organisation": f.Get("organisation")}
	}},
	"user.delete": {"DELETE", "/admin/users/{name}", nil},
	"token.create": {"POST", "/admin/tokens", func(f url.Values) any {
		return map[string]any{"user": f.Get("user"), "role": f.Get("role"), "expires": f.Get("expires")}
	}},
	"token.revoke": {"DELETE", "/admin/tokens/{id}", nil},
	"group.create": {"POST", "/admin/groups", func(f url.Values) any { return map[string]any{"name": f.Get("name")} }},
	"group.orgs":   {"PUT", "/admin/groups/{id}/orgs", func(f url.Values) any { return map[string]any{"orgs": splitList(f.Get("orgs"))} }},
	"group.delete": {"DELETE", "/admin/groups/{id}", nil},
	"collection.create": {"POST", "/admin/collections", func(f url.Values) any {
		return map[string]any{"title": f.Get("title"), "alias": f.Get("alias"), "default_tlp": f.Get("default_tlp")}
	}},
	"collection.delete": {"DELETE", "/admin/collections/{id}", nil},
	"grant.user":        {"PUT", "/admin/collections/{id}/grants/{subject}", grantBody},
	"grant.org":         {"PUT", "/admin/collections/{id}/org-grants/{subject}", grantBody},
	"grant.group":       {"PUT", "/admin/collections/{id}/group-grants/{subject}", grantBody},
}

func grantBody(f url.Values) any {
	return map[string]any{"read": f.Get("read") == "on", "write": f.Get("write") == "on"}
}

func splitList(s string) []string {
	out := []string{}
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

type adminData struct {
	Sections []string
	Section  string
	Columns  []string
	Rows     [][]string
	// IDs are the key of each row for the row actions (delete, revoke).
	IDs     []string
	Message string
	Detail  string
	OK      bool
	Secret  string // a token created just now, shown once
}

// callAdmin sends one request to the admin API as rq's user.
func (h *Handler) callAdmin(rq *Request, method, path string, body any) (int, []byte) {
	var rd bytes.Buffer
	if body != nil {
		_ = json.NewEncoder(&rd).Encode(body)
	}
	sub := httptest.NewRequestWithContext(rq.R.Context(), method, path, &rd)
	sub.RemoteAddr = rq.R.RemoteAddr
	sub.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.cfg.Admin.ServeHTTP(rec, sub)
	return rec.Code, rec.Body.Bytes()
}

func (h *Handler) admin(rq *Request) (any, error) {
	if h.cfg.Admin == nil {
		return nil, errNotFound
	}
	d := adminData{Section: rq.R.URL.Query().Get("s")}
	for _, s := range adminSections {
		d.Sections = append(d.Sections, s.Name)
	}
	if rq.R.Method == http.MethodPost {
		h.adminChange(rq, &d)
	}
	idx := 0
	for i, s := range adminSections {
		if s.Name == d.Section {
			idx = i
		}
	}
	sec := adminSections[idx]
	d.Section, d.Columns = sec.Name, sec.Columns
	status, out := h.callAdmin(rq, http.MethodGet, sec.Path, nil)
	if status == http.StatusForbidden || status == http.StatusUnauthorized {
		return nil, errForbidden
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("admin API %s: %d %s", sec.Path, status, out)
	}
	var rows []map[string]any
	if err := json.Unmarshal(out, &rows); err != nil {
		return nil, fmt.Errorf("admin API %s: %w", sec.Path, err)
	}
	for _, r := range rows {
		var line []string
		for _, c := range sec.Columns {
			line = append(line, cell(r[c]))
		}
		d.Rows = append(d.Rows, line)
		id := cell(r["id"])
		if sec.Name == "users" {
			id = cell(r["name"])
		}
		d.IDs = append(d.IDs, id)
	}
	return d, nil
}

// adminChange performs the form's action and says how it went.
func (h *Handler) adminChange(rq *Request, d *adminData) {
	f := rq.R.PostForm
	act, ok := adminActions[f.Get("action")]
	if !ok {
		d.Message = rq.L.T("error.badrequest")
		return
	}
	path := act.Path
	for _, k := range []string{"id", "name", "subject"} {
		path = strings.ReplaceAll(path, "{"+k+"}", url.PathEscape(f.Get(k)))
	}
	var body any
	if act.Body != nil {
		body = act.Body(f)
	}
	status, out := h.callAdmin(rq, act.Method, path, body)
	if status/100 == 2 {
		d.OK, d.Message = true, rq.L.T("admin.done")
		var tok struct {
			Token string `json:"token"`
		}
		if json.Unmarshal(out, &tok) == nil {
			d.Secret = tok.Token
		}
		return
	}
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(out, &e)
	d.Message, d.Detail = rq.L.T("admin.failed", "Status", status), e.Error
}

// cell renders one value of an admin API listing.
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		if x {
			return "✓"
		}
		return ""
	case float64:
		return fmt.Sprint(int64(x))
	case []any:
		var parts []string
		for _, e := range x {
			parts = append(parts, cell(e))
		}
		sort.Strings(parts)
		return strings.Join(parts, ", ")
	case map[string]any:
		// A grant: its subject with Unix-like rights (the same in every
		// language).
		if sub, ok := x["subject"].(string); ok {
			rights := ""
			if x["read"] == true {
				rights += "r"
			}
			if x["write"] == true {
				rights += "w"
			}
			return cell(x["kind"]) + " " + sub + " [" + rights + "]"
		}
		b, _ := json.Marshal(x)
		return string(b)
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}
