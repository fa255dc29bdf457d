package hashmatch

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/contenthash"
	"github.com/mitra-cert/mitra/internal/extapi"
)

// Prefix is where the hash API lives: outside the TAXII API root, whose
// paths TAXII 2.1 defines.
const Prefix = "/x-mitra-hash/"

// taxiiMediaType is the TAXII 2.1 media type (TAXII 2.1 §1.6.8).
const taxiiMediaType = "application/taxii+json;version=2.1"

// HandlerOptions configures a Handler.
type HandlerOptions struct {
	// Authenticate names the caller (the TAXII server's Authenticate).
	Authenticate func(*http.Request) (*access.Principal, error)
	// TAXII serves the TAXII API: shares and verdicts are POSTed to it as
	// the caller, so they take the same path and policy as any TAXII POST
	// (validation, ownership, TLP markings, recipients).
	TAXII http.Handler
	// APIRoot is the TAXII API root path ("/api/").
	APIRoot string
	// MaxUpload bounds an uploaded file (bytes); 64 MiB when zero.
	MaxUpload int64
	Logger    *slog.Logger
	Now       func() time.Time
}

// Handler serves, under Prefix:
//
//	POST match    a file (any non-JSON body, hashed in memory and dropped)
//	              or JSON {"hashes":{...},"pdq_threshold":..,"min_quality":..,"tlsh_distance":..}
//	POST share    JSON {"collection":..,"hashes":{...},"labels":[..],"tlp":..,"recipients":[..]}
//	POST verdict  JSON {"collection":..,"indicator":..,"verdict":"true-positive"|"false-positive"}
type Handler struct {
	svc *Service
	opt HandlerOptions
	api *extapi.Brief
	mux *http.ServeMux
	// hashing bounds the uploads hashed at once: decoding an image for PDQ
	// holds hundreds of megabytes at the pixel limit.
	hashing chan struct{}
}

// NewHandler returns the hash API over svc.
func NewHandler(svc *Service, opt HandlerOptions) *Handler {
	if opt.MaxUpload <= 0 {
		opt.MaxUpload = 64 << 20
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.APIRoot == "" {
		opt.APIRoot = "/api/"
	}
	h := &Handler{svc: svc, opt: opt, mux: http.NewServeMux(), hashing: make(chan struct{}, runtime.GOMAXPROCS(0))}
	h.api = &extapi.Brief{Name: "hash API", Authenticate: opt.Authenticate, MaxBody: opt.MaxUpload, StatusOf: statusOf, Logger: opt.Logger}
	h.mux.HandleFunc("POST "+Prefix+"match", h.api.Auth(false, h.match))
	h.mux.HandleFunc("POST "+Prefix+"share", h.api.Auth(false, h.share))
	h.mux.HandleFunc("POST "+Prefix+"verdict", h.api.Auth(false, h.verdict))
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// statusOf maps the package's errors to answers.
func statusOf(err error) *extapi.Error {
	if errors.Is(err, ErrInvalid) {
		return &extapi.Error{Status: http.StatusBadRequest, Description: err.Error()}
	}
	return nil
}

// MatchRequest is the JSON form of a match.
type MatchRequest struct {
	Hashes       Hashes `json:"hashes"`
	PDQThreshold int    `json:"pdq_threshold,omitempty"`
	MinQuality   int    `json:"min_quality,omitempty"`
	TLSHDistance int    `json:"tlsh_distance,omitempty"`
}

func (h *Handler) match(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	var req MatchRequest
	if extapi.IsJSON(r) {
		if err := extapi.Decode(r, &req); err != nil {
			return err
		}
	} else {
		// A file: hashed here, never stored.
		select {
		case h.hashing <- struct{}{}:
		case <-r.Context().Done():
			return r.Context().Err()
		}
		fh, err := contenthash.HashReader(r.Context(), r.Body)
		<-h.hashing
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return err
			}
			return &extapi.Error{Status: http.StatusBadRequest, Description: "hash the body: " + err.Error()}
		}
		req.Hashes = FromFile(fh)
		q := r.URL.Query()
		for name, dst := range map[string]*int{"pdq_threshold": &req.PDQThreshold, "min_quality": &req.MinQuality, "tlsh_distance": &req.TLSHDistance} {
			if v := q.Get(name); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 {
					return &extapi.Error{Status: http.StatusBadRequest, Description: name + ": want a non-negative integer"}
				}
				*dst = n
			}
		}
	}
	res, err := h.svc.Match(p, Query(req))
	if err != nil {
		return err
	}
	extapi.WriteJSON(w, http.StatusOK, res)
	return nil
}

// ShareRequest is the JSON form of a share.
type ShareRequest struct {
	Collection string   `json:"collection"`
	Hashes     Hashes   `json:"hashes"`
	Labels     []string `json:"labels"`
	TLP        string   `json:"tlp,omitempty"`
	Recipients []string `json:"recipients,omitempty"`
	Name       string   `json:"name,omitempty"`
}

// ShareResponse names the indicator and carries the TAXII status.
type ShareResponse struct {
	Indicator string          `json:"indicator,omitempty"`
	Status    json.RawMessage `json:"status"`
}

func (h *Handler) share(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	var req ShareRequest
	if err := extapi.Decode(r, &req); err != nil {
		return err
	}
	if req.Collection == "" {
		return &extapi.Error{Status: http.StatusBadRequest, Description: "collection is required"}
	}
	objs, err := Share{Hashes: req.Hashes, Labels: req.Labels, TLP: req.TLP, Recipients: req.Recipients,
		CreatedBy: p.Organisation, Name: req.Name}.Objects(h.opt.Now())
	if err != nil {
		return err
	}
	var ind struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(objs[1], &ind)
	return h.post(w, r, req.Collection, objs, ind.ID)
}

// VerdictRequest is the JSON form of a verdict.
type VerdictRequest struct {
	Collection  string   `json:"collection"`
	Indicator   string   `json:"indicator"`
	Verdict     string   `json:"verdict"` // true-positive or false-positive
	Explanation string   `json:"explanation,omitempty"`
	TLP         string   `json:"tlp,omitempty"`
	Recipients  []string `json:"recipients,omitempty"`
}

func (h *Handler) verdict(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	var req VerdictRequest
	if err := extapi.Decode(r, &req); err != nil {
		return err
	}
	if req.Collection == "" {
		return &extapi.Error{Status: http.StatusBadRequest, Description: "collection is required"}
	}
	if req.Verdict != "true-positive" && req.Verdict != "false-positive" {
		return &extapi.Error{Status: http.StatusBadRequest, Description: `verdict must be "true-positive" or "false-positive"`}
	}
	op, err := Verdict{Indicator: req.Indicator, TruePositive: req.Verdict == "true-positive", Explanation: req.Explanation,
		TLP: req.TLP, Recipients: req.Recipients}.Object(h.opt.Now())
	if err != nil {
		return err
	}
	return h.post(w, r, req.Collection, []json.RawMessage{op}, "")
}

// post adds objs to a collection through the TAXII API, as the caller (its
// own credentials), and relays the answer.
func (h *Handler) post(w http.ResponseWriter, r *http.Request, collection string, objs []json.RawMessage, indicator string) error {
	body, err := json.Marshal(map[string]any{"objects": objs})
	if err != nil {
		return err
	}
	u := h.opt.APIRoot + "collections/" + url.PathEscape(collection) + "/objects/"
	sub, err := http.NewRequestWithContext(r.Context(), http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	sub.RemoteAddr = r.RemoteAddr
	for _, k := range []string{"Authorization", "X-Forwarded-For"} {
		if v := r.Header.Get(k); v != "" {
			sub.Header.Set(k, v)
		}
	}
	sub.Header.Set("Content-Type", taxiiMediaType)
	sub.Header.Set("Accept", taxiiMediaType)
	rec := httptest.NewRecorder()
	h.opt.TAXII.ServeHTTP(rec, sub)
	res := rec.Result()
	out, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		// The TAXII error message (TAXII 2.1 §3.6.1), as it is.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(res.StatusCode)
		_, _ = w.Write(out)
		return nil
	}
	status := http.StatusOK
	var st struct {
		FailureCount int `json:"failure_count"`
	}
	if json.Unmarshal(out, &st) == nil && st.FailureCount > 0 {
		status, indicator = http.StatusUnprocessableEntity, ""
	}
	extapi.WriteJSON(w, status, ShareResponse{Indicator: indicator, Status: out})
	return nil
}
