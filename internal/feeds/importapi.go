package feeds

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/extapi"
	"github.com/mitra-cert/mitra/internal/store"
)

// Prefix is where the import API is mounted.
const Prefix = "/x-mitra-import/"

// HandlerOptions configure the import API.
type HandlerOptions struct {
	Authenticate func(*http.Request) (*access.Principal, error)
	Importer     *Importer
	// Scheduler manages feeds (nil: no feed endpoints).
	Scheduler *Scheduler
	// Lists keeps the warning lists changed through the API.
	Lists ListStore
	// Flags lists inactive objects.
	Flags FlagStore
	// MaxUpload bounds an uploaded file (0: 1 GiB).
	MaxUpload int64
	Logger    *slog.Logger
}

// Handler serves the import API:
//
//	POST   /x-mitra-import/collections/{collection}/   import the body (any member who may write to the collection)
//	GET    /x-mitra-import/feeds                       list feeds (admin)
//	POST   /x-mitra-import/feeds                       add a feed (admin)
//	DELETE /x-mitra-import/feeds/{name}                remove a feed (admin)
//	POST   /x-mitra-import/feeds/{name}/run            run a feed now (admin)
//	GET    /x-mitra-import/warninglists                list warning lists (admin)
//	PUT    /x-mitra-import/warninglists/{name}         add or replace a list (admin)
//	DELETE /x-mitra-import/warninglists/{name}         remove a stored list (admin)
//	GET    /x-mitra-import/inactive/{collection}       flagged objects the caller may read, with reasons
//	POST   /x-mitra-import/inactive/{collection}/rescan  check stored indicators against the lists now (admin)
type Handler struct {
	opt HandlerOptions
	api *extapi.Brief
	mux *http.ServeMux
}

// NewHandler returns the import API.
func NewHandler(opt HandlerOptions) *Handler {
	if opt.MaxUpload <= 0 {
		opt.MaxUpload = 1 << 30
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{opt: opt, mux: http.NewServeMux()}
	h.api = &extapi.Brief{Name: "import API", Authenticate: opt.Authenticate, MaxBody: opt.MaxUpload, StatusOf: statusOf, Logger: opt.Logger}
	h.mux.HandleFunc("POST "+Prefix+"collections/{collection}/", h.api.Auth(false, h.importBody))
	h.mux.HandleFunc("GET "+Prefix+"feeds", h.api.Auth(true, h.listFeeds))
	h.mux.HandleFunc("POST "+Prefix+"feeds", h.api.Auth(true, h.addFeed))
	h.mux.HandleFunc("DELETE "+Prefix+"feeds/{name}", h.api.Auth(true, h.removeFeed))
	h.mux.HandleFunc("POST "+Prefix+"feeds/{name}/run", h.api.Auth(true, h.runFeed))
	h.mux.HandleFunc("GET "+Prefix+"warninglists", h.api.Auth(true, h.listLists))
	h.mux.HandleFunc("PUT "+Prefix+"warninglists/{name}", h.api.Auth(true, h.putList))
	h.mux.HandleFunc("DELETE "+Prefix+"warninglists/{name}", h.api.Auth(true, h.deleteList))
	h.mux.HandleFunc("GET "+Prefix+"inactive/{collection}", h.api.Auth(false, h.inactive))
	h.mux.HandleFunc("POST "+Prefix+"inactive/{collection}/rescan", h.api.Auth(true, h.rescan))
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// statusOf maps the import API's errors to answers.
func statusOf(err error) *extapi.Error {
	switch {
	case errors.Is(err, ErrInvalid), errors.Is(err, store.ErrInvalid):
		return &extapi.Error{Status: http.StatusBadRequest, Description: err.Error()}
	case errors.Is(err, store.ErrNotFound):
		// A collection the caller may not write to is as missing as one
		// that does not exist.
		return &extapi.Error{Status: http.StatusNotFound, Description: err.Error()}
	case errors.Is(err, store.ErrConflict):
		return &extapi.Error{Status: http.StatusConflict, Description: err.Error()}
	}
	return nil
}

// OptionsFromQuery reads import options from query parameters: format,
// tlp, confidence, columns (field:column,...), delimiter, encoding,
// header (true or false), type, source, sharing_group (misp:mitra,
// repeated).
func OptionsFromQuery(q map[string][]string) (Options, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	opt := Options{Format: get("format"), TLP: get("tlp")}
	if c := get("confidence"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil {
			return opt, fmt.Errorf("confidence %q: %w", c, ErrInvalid)
		}
		opt.Confidence = &n
	}
	if cols := get("columns"); cols != "" {
		m, err := ParseColumns(cols)
		if err != nil {
			return opt, err
		}
		opt.CSV.Columns = m
	}
	opt.CSV.Delimiter, opt.CSV.Encoding, opt.CSV.Type, opt.CSV.Source = get("delimiter"), get("encoding"), get("type"), get("source")
	if hd := get("header"); hd != "" {
		b, err := strconv.ParseBool(hd)
		if err != nil {
			return opt, fmt.Errorf("header %q: %w", hd, ErrInvalid)
		}
		opt.CSV.Header = &b
	}
	for _, sg := range q["sharing_group"] {
		misp, mitra, ok := strings.Cut(sg, ":")
		if !ok {
			return opt, fmt.Errorf("sharing_group %q: want MISP-GROUP:MITRA-GROUP: %w", sg, ErrInvalid)
		}
		if opt.MISP.SharingGroups == nil {
			opt.MISP.SharingGroups = map[string]string{}
		}
		opt.MISP.SharingGroups[misp] = mitra
	}
	return opt, nil
}

// ParseColumns reads a column mapping: "value:1,type:2" or
// "value=ioc,description=comment".
func ParseColumns(s string) (map[string]string, error) {
	m := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(part, ":")
		if !ok {
			k, v, ok = strings.Cut(part, "=")
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("column mapping %q: want field:column,...: %w", part, ErrInvalid)
		}
		switch k {
		case "value", "type", "description", "first_seen", "last_seen", "labels", "confidence", "name":
		default:
			return nil, fmt.Errorf("column mapping: unknown field %q (value, type, description, first_seen, last_seen, labels, confidence, name): %w", k, ErrInvalid)
		}
		m[k] = v
	}
	return m, nil
}

func (h *Handler) importBody(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	opt, err := OptionsFromQuery(r.URL.Query())
	if err != nil {
		return err
	}
	location := r.URL.Query().Get("url")
	if opt.Format == "misp-feed" {
		// Fetching a URL on the server's behalf is for admins only.
		if !p.IsAdmin() {
			return &extapi.Error{Status: http.StatusForbidden, Description: "importing a MISP feed by URL needs the admin role (upload its events as format misp instead)"}
		}
		if !strings.HasPrefix(location, "http://") && !strings.HasPrefix(location, "https://") {
			return &extapi.Error{Status: http.StatusBadRequest, Description: "format misp-feed needs url=http(s)://.../ (the feed's directory)"}
		}
	} else if location == "" {
		location = opt.CSV.Source
	}
	var body io.Reader = r.Body
	if opt.Format == "misp-feed" {
		body = nil // the manifest is fetched from the URL
	}
	src, err := h.opt.Importer.Open(r.Context(), p, opt, body, location)
	if err != nil {
		return err
	}
	imp := *h.opt.Importer
	imp.Label = "POST " + r.URL.Path
	rep, err := imp.Import(r.Context(), p, r.PathValue("collection"), src, opt, nil)
	if err != nil {
		return err
	}
	extapi.WriteJSON(w, http.StatusOK, rep)
	return nil
}

// FeedRequest is a feed as the API takes it.
type FeedRequest struct {
	Name       string  `json:"name"`
	URL        string  `json:"url"`
	Format     string  `json:"format"`
	Collection string  `json:"collection"`
	User       string  `json:"user"`
	Interval   string  `json:"interval"`
	Options    Options `json:"options"`
}

// FeedInfo is a feed as the API shows it.
type FeedInfo struct {
	Name         string          `json:"name"`
	URL          string          `json:"url"`
	Format       string          `json:"format"`
	Collection   string          `json:"collection"`
	User         string          `json:"user"`
	Interval     string          `json:"interval"`
	Options      json.RawMessage `json:"options"`
	ETag         string          `json:"etag,omitempty"`
	LastModified string          `json:"last_modified,omitempty"`
	LastRun      *time.Time      `json:"last_run,omitempty"`
	NextRun      *time.Time      `json:"next_run,omitempty"`
	LastReport   json.RawMessage `json:"last_report,omitempty"`
}

// Info shows f.
func Info(f *store.ImportFeed) FeedInfo {
	fi := FeedInfo{Name: f.Name, URL: f.URL, Format: f.Format, Collection: f.Collection, User: f.User, Interval: f.Interval.String(),
		Options: f.Options, ETag: f.ETag, LastModified: f.LastModified}
	if !f.LastRun.IsZero() {
		fi.LastRun = &f.LastRun
	}
	if !f.NextRun.IsZero() {
		fi.NextRun = &f.NextRun
	}
	if len(f.LastReport) > 0 {
		fi.LastReport = f.LastReport
	}
	return fi
}

func (h *Handler) scheduler() (*Scheduler, error) {
	if h.opt.Scheduler == nil {
		return nil, &extapi.Error{Status: http.StatusNotFound, Description: "feeds are not available on this server"}
	}
	return h.opt.Scheduler, nil
}

func (h *Handler) listFeeds(w http.ResponseWriter, r *http.Request, _ *access.Principal) error {
	s, err := h.scheduler()
	if err != nil {
		return err
	}
	fs, err := s.Feeds.ListImportFeeds(r.Context())
	if err != nil {
		return err
	}
	out := make([]FeedInfo, 0, len(fs))
	for _, f := range fs {
		out = append(out, Info(f))
	}
	extapi.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (h *Handler) addFeed(w http.ResponseWriter, r *http.Request, _ *access.Principal) error {
	s, err := h.scheduler()
	if err != nil {
		return err
	}
	var req FeedRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return fmt.Errorf("feed: %v: %w", err, ErrInvalid)
	}
	every, err := time.ParseDuration(req.Interval)
	if err != nil {
		return fmt.Errorf("interval %q: %w", req.Interval, ErrInvalid)
	}
	f := &store.ImportFeed{Name: req.Name, URL: req.URL, Format: req.Format, Collection: req.Collection, User: req.User, Interval: every}
	if err := s.Add(r.Context(), f, req.Options); err != nil {
		return err
	}
	extapi.WriteJSON(w, http.StatusCreated, Info(f))
	return nil
}

func (h *Handler) removeFeed(w http.ResponseWriter, r *http.Request, _ *access.Principal) error {
	s, err := h.scheduler()
	if err != nil {
		return err
	}
	if err := s.Feeds.DeleteImportFeed(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) runFeed(w http.ResponseWriter, r *http.Request, _ *access.Principal) error {
	s, err := h.scheduler()
	if err != nil {
		return err
	}
	rep, err := s.RunFeed(r.Context(), r.PathValue("name"))
	if err != nil && rep.At.IsZero() {
		return err
	}
	status := http.StatusOK
	if err != nil {
		status = http.StatusBadGateway
	}
	extapi.WriteJSON(w, status, rep)
	return nil
}

func (h *Handler) listLists(w http.ResponseWriter, _ *http.Request, _ *access.Principal) error {
	extapi.WriteJSON(w, http.StatusOK, h.opt.Importer.Warnings.Lists())
	return nil
}

func (h *Handler) putList(w http.ResponseWriter, r *http.Request, _ *access.Principal) error {
	name := r.PathValue("name")
	l, err := ParseList(name, r.URL.Query().Get("type"), r.Body)
	if err != nil {
		return err
	}
	l.Name = name
	if d := r.URL.Query().Get("description"); d != "" {
		l.Description = d
	}
	if err := h.opt.Lists.PutWarningList(r.Context(), l.StoredList()); err != nil {
		return err
	}
	if err := h.opt.Importer.Warnings.Set(l); err != nil {
		return err
	}
	extapi.WriteJSON(w, http.StatusOK, map[string]any{"name": l.Name, "type": l.Kind, "entries": len(l.Entries)})
	return nil
}

func (h *Handler) deleteList(w http.ResponseWriter, r *http.Request, _ *access.Principal) error {
	name := r.PathValue("name")
	if err := h.opt.Lists.DeleteWarningList(r.Context(), name); err != nil {
		return err
	}
	h.opt.Importer.Warnings.Remove(name)
	// A built-in list of the same name comes back.
	for _, b := range BuiltinLists() {
		if b.Name == name {
			if err := h.opt.Importer.Warnings.Set(b); err != nil {
				return err
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) rescan(w http.ResponseWriter, r *http.Request, _ *access.Principal) error {
	checked, flagged, err := h.opt.Importer.Rescan(r.Context(), r.PathValue("collection"))
	if err != nil {
		return err
	}
	extapi.WriteJSON(w, http.StatusOK, map[string]int{"checked": checked, "inactive": flagged})
	return nil
}

func (h *Handler) inactive(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	col, err := h.opt.Importer.Store.GetCollection(r.Context(), r.PathValue("collection"))
	if err != nil {
		return err
	}
	if read, _ := access.CollectionAccess(p, col); !read {
		return fmt.Errorf("collection %s: %w", r.PathValue("collection"), store.ErrNotFound)
	}
	flags, err := h.opt.Flags.ListInactive(r.Context(), col.ID)
	if err != nil {
		return err
	}
	// A flag names an object and a value: only those of objects the
	// caller may read are listed (access.Decide, as every read path).
	visible := map[string]bool{}
	for start := 0; start < len(flags); start += 500 {
		ids := make([]string, 0, 500)
		for _, f := range flags[start:min(start+500, len(flags))] {
			ids = append(ids, f.ObjectID)
		}
		page, err := h.opt.Importer.Store.QueryObjects(r.Context(), col.ID, store.Query{IDs: ids, Limit: len(ids),
			Visible: func(e *store.Entry) bool { return access.Decide(p, col, e).Allowed }})
		if err != nil {
			return err
		}
		for _, e := range page.Entries {
			visible[e.ID] = true
		}
	}
	type flag struct {
		ID     string    `json:"id"`
		List   string    `json:"list"`
		Value  string    `json:"value"`
		Reason string    `json:"reason"`
		At     time.Time `json:"at"`
	}
	out := make([]flag, 0, len(flags))
	for _, f := range flags {
		if visible[f.ObjectID] {
			out = append(out, flag{f.ObjectID, f.List, f.Value, f.Reason, f.At})
		}
	}
	extapi.WriteJSON(w, http.StatusOK, out)
	return nil
}
