package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/pattern"
	"github.com/mitra-cert/mitra/internal/search"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
)

func (h *Handler) builtinPages() []Page {
	return []Page{
		{Name: "dashboard", Serve: h.dashboard},
		{Name: "search", Serve: h.search},
		{Name: "lookup", Serve: h.lookup},
		{Name: "indicator", Serve: h.indicator},
		{Name: "sightings", Serve: h.sightings},
		{Name: "admin", AdminOnly: true, Serve: h.admin},
		{Name: "object", Hidden: true, Serve: h.objectPage},
	}
}

// --- dashboard ------------------------------------------------------------

type count struct {
	Label string
	N     int
}

type dashboardData struct {
	Collections []count
	Types       []count
	TLPs        []count
	Total       int
	Chart       chart
	Detector    []count
}

// chartDays is how many days the sightings plot shows.
const chartDays = 14

func (h *Handler) dashboard(rq *Request) (any, error) {
	ctx := rq.R.Context()
	cols, err := h.readable(ctx, rq.P)
	if err != nil {
		return nil, err
	}
	var d dashboardData
	types := map[string]int{}
	tlps := map[int]int{}
	now := h.cfg.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	first := today.AddDate(0, 0, -(chartDays - 1))
	perDay := make([]int, chartDays)
	// The store counts groups of objects that the access decision cannot
	// tell apart (same type, TLP, submitter and recipients); one decision
	// per group counts exactly the objects the user may read, without
	// reading them one by one.
	for _, c := range cols {
		groups, err := h.cfg.Store.CountObjects(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		n := 0
		for _, g := range groups {
			e := &store.Entry{Type: g.Type, TLP: g.TLP, Submitter: g.Submitter, Recipients: g.Recipients}
			if !access.Decide(rq.P, c, e).Allowed {
				continue
			}
			n += g.N
			types[g.Type] += g.N
			tlps[int(access.EffectiveTLP(c, e))] += g.N
		}
		days, err := h.cfg.Store.CountSightingsPerDay(ctx, c.ID, first)
		if err != nil {
			return nil, err
		}
		for _, g := range days {
			e := &store.Entry{Type: g.Type, TLP: g.TLP, Submitter: g.Submitter, Recipients: g.Recipients}
			if !access.Decide(rq.P, c, e).Allowed {
				continue
			}
			if i := int(g.Day.Sub(first) / (24 * time.Hour)); i >= 0 && i < chartDays {
				perDay[i] += g.N
			}
		}
		d.Total += n
		d.Collections = append(d.Collections, count{Label: title(c), N: n})
	}
	for t, n := range types {
		d.Types = append(d.Types, count{Label: t, N: n})
	}
	sort.Slice(d.Types, func(i, j int) bool {
		if d.Types[i].N != d.Types[j].N {
			return d.Types[i].N > d.Types[j].N
		}
		return d.Types[i].Label < d.Types[j].Label
	})
	for level := int(access.TLPUnmarked); level <= int(access.TLPUnresolved); level++ {
		if tlps[level] > 0 {
			d.TLPs = append(d.TLPs, count{Label: rq.L.TLP(level), N: tlps[level]})
		}
	}
	d.Chart = sightingsChart(rq.L, first, perDay)
	d.Detector = h.detectorStats()
	return d, nil
}

func title(c *store.Collection) string {
	if c.Title != "" {
		return c.Title
	}
	return c.ID
}

// chart is the sightings plot, drawn by the template as inline SVG.
type chart struct {
	Width, Height int
	Bars          []bar
	Max           int
	Total         int
}

type bar struct {
	X, Y, W, H int
	Label      string // the day, for the axis and the tooltip
	N          int
	ShowLabel  bool
}

func sightingsChart(l *locale, first time.Time, perDay []int) chart {
	c := chart{Width: 700, Height: 200}
	for _, n := range perDay {
		c.Max = max(c.Max, n)
		c.Total += n
	}
	plot := c.Height - 45 // room for the value above a bar and the dates below
	w := c.Width / len(perDay)
	for i, n := range perDay {
		bh := 0
		if c.Max > 0 {
			bh = n * plot / c.Max
		}
		c.Bars = append(c.Bars, bar{X: i*w + 4, Y: plot - bh + 18, W: w - 8, H: bh, N: n,
			Label: l.Day(first.AddDate(0, 0, i)), ShowLabel: i%2 == 0})
	}
	return c
}

// detectorStats reads the detector's counters from the server's metrics,
// when a detector runs in the process.
func (h *Handler) detectorStats() []count {
	if h.cfg.Metrics == nil {
		return nil
	}
	mfs, err := h.cfg.Metrics.Gather()
	if err != nil {
		return nil
	}
	want := []string{"mitra_detect_events_total", "mitra_detect_matches_total", "mitra_detect_sightings_written_total", "mitra_detect_indicators"}
	var out []count
	for _, name := range want {
		for _, mf := range mfs {
			if mf.GetName() != name || len(mf.GetMetric()) == 0 {
				continue
			}
			m := mf.GetMetric()[0]
			v := m.GetCounter().GetValue()
			if m.GetGauge() != nil {
				v = m.GetGauge().GetValue()
			}
			out = append(out, count{Label: "detector." + strings.TrimPrefix(name, "mitra_detect_"), N: int(v)})
		}
	}
	return out
}

// --- object ---------------------------------------------------------------

type field struct {
	Name  string
	Text  string
	Refs  []string
	Multi []string
}

type objectData struct {
	ID         string
	Type       string
	Collection *store.Collection
	TLP        string
	Markings   []string
	Fields     []field
	JSON       string
	Versions   []store.Entry
	Graph      *graphView
	GraphError string
}

var refPattern = regexp.MustCompile(`^[a-z0-9-]+--[0-9a-fA-F-]{36}$`)

func (h *Handler) objectPage(rq *Request) (any, error) {
	ctx := rq.R.Context()
	id := rq.R.URL.Query().Get("id")
	f, ok, err := h.object(ctx, rq.P, id, rq.R.URL.Query().Get("c"))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNotFound
	}
	fs := []found{f}
	if err := h.served(ctx, rq.P, rq.R.URL.RequestURI(), fs); err != nil {
		return nil, err
	}
	f = fs[0]
	d := objectData{ID: f.Entry.ID, Type: f.Entry.Type, Collection: f.C, TLP: rq.L.TLP(int(access.EffectiveTLP(f.C, &f.Entry)))}
	var m map[string]any
	if err := json.Unmarshal(f.Entry.Raw, &m); err != nil {
		return nil, fmt.Errorf("object %s: %w", id, err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		d.Fields = append(d.Fields, renderField(k, m[k]))
	}
	for _, r := range stringsOf(m["object_marking_refs"]) {
		if level, ok := access.TLPOfMarking(r); ok {
			d.Markings = append(d.Markings, level.String())
		} else {
			d.Markings = append(d.Markings, r)
		}
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, f.Entry.Raw, "", "  "); err == nil {
		d.JSON = pretty.String()
	}
	if d.Versions, err = h.versions(ctx, rq.P, f.C, f.Entry.ID); err != nil {
		return nil, err
	}
	slices.Reverse(d.Versions)
	d.Graph, d.GraphError = h.graph(rq, f.Entry.ID)
	return d, nil
}

func renderField(k string, v any) field {
	f := field{Name: k}
	switch x := v.(type) {
	case string:
		if refPattern.MatchString(x) {
			f.Refs = []string{x}
		} else {
			f.Text = x
		}
	case []any:
		all := true
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				all = false
				break
			}
			if refPattern.MatchString(s) {
				f.Refs = append(f.Refs, s)
			} else {
				f.Multi = append(f.Multi, s)
			}
		}
		if !all {
			f.Refs, f.Multi = nil, nil
			b, _ := json.Marshal(x)
			f.Text = string(b)
		}
	default:
		b, _ := json.Marshal(x)
		f.Text = string(b)
	}
	return f
}

func stringsOf(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, e := range l {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// --- sightings ------------------------------------------------------------

// sightingsShown bounds the sightings page.
const sightingsShown = 50

type sightingView struct {
	ID         string
	Collection string
	Added      time.Time
	Count      string
	FirstSeen  string
	LastSeen   string
	Of         string
	OfName     string
	Observed   []string // "type: value" of the observed objects p may see
}

func (h *Handler) sightings(rq *Request) (any, error) {
	ctx := rq.R.Context()
	fs, err := h.latestSightings(rq)
	if err != nil {
		return nil, err
	}
	if err := h.served(ctx, rq.P, rq.R.URL.RequestURI(), fs); err != nil {
		return nil, err
	}
	var out []sightingView
	for _, f := range fs {
		var s struct {
			Count      *int     `json:"count"`
			FirstSeen  string   `json:"first_seen"`
			LastSeen   string   `json:"last_seen"`
			Of         string   `json:"sighting_of_ref"`
			ObservedDa []string `json:"observed_data_refs"`
		}
		_ = json.Unmarshal(f.Entry.Raw, &s)
		v := sightingView{ID: f.Entry.ID, Collection: f.C.ID, Added: f.Entry.DateAdded, FirstSeen: s.FirstSeen, LastSeen: s.LastSeen, Of: s.Of}
		if s.Count != nil {
			v.Count = rq.L.N(*s.Count)
		}
		if of, ok, err := h.object(ctx, rq.P, s.Of, f.C.ID); err != nil {
			return nil, err
		} else if ok {
			v.OfName = nameOf(of.Entry.Raw)
		}
		for _, od := range s.ObservedDa {
			o, ok, err := h.object(ctx, rq.P, od, f.C.ID)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			obs, err := h.observed(rq, o)
			if err != nil {
				return nil, err
			}
			v.Observed = append(v.Observed, obs...)
		}
		out = append(out, v)
	}
	return out, nil
}

// latestSightings returns the newest sightings p may read, from the
// search index (newest first), without reading every sighting.
func (h *Handler) latestSightings(rq *Request) ([]found, error) {
	if h.cfg.Search == nil {
		return nil, errNotFound
	}
	ctx := rq.R.Context()
	res, err := h.cfg.Search.Search(ctx, rq.P, search.Query{Types: []string{"sighting"}, Limit: sightingsShown})
	if err != nil {
		return nil, err
	}
	var fs []found
	for _, hit := range res.Hits {
		f, ok, err := h.object(ctx, rq.P, hit.ID, hit.Collection)
		if err != nil {
			return nil, err
		}
		if ok {
			fs = append(fs, f)
		}
	}
	return fs, nil
}

// observed renders what an observed-data object saw: its SCOs (object_refs
// that p may read, or the deprecated embedded objects) as "type: value".
func (h *Handler) observed(rq *Request, od found) ([]string, error) {
	var o struct {
		Refs    []string                  `json:"object_refs"`
		Objects map[string]map[string]any `json:"objects"`
	}
	_ = json.Unmarshal(od.Entry.Raw, &o)
	var out []string
	for _, m := range o.Objects {
		out = append(out, scoLine(m))
	}
	for _, r := range o.Refs {
		sco, ok, err := h.object(rq.R.Context(), rq.P, r, od.C.ID)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		var m map[string]any
		if json.Unmarshal(sco.Entry.Raw, &m) == nil {
			out = append(out, scoLine(m))
		}
	}
	sort.Strings(out)
	return out, nil
}

func scoLine(m map[string]any) string {
	t, _ := m["type"].(string)
	for _, k := range []string{"value", "name", "path", "user_id", "key"} {
		if v, ok := m[k].(string); ok {
			return t + ": " + v
		}
	}
	if hs, ok := m["hashes"].(map[string]any); ok {
		for _, k := range []string{"SHA-256", "SHA-1", "MD5"} {
			if v, ok := hs[k].(string); ok {
				return t + ": " + k + " " + v
			}
		}
	}
	return t
}

func nameOf(raw []byte) string {
	var m struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(raw, &m)
	return m.Name
}

// --- indicator editor -----------------------------------------------------

// TLP 2.0 marking definitions the editor offers (OASIS TLP 2.0 extension).
var tlpChoices = []struct{ Level, Marking string }{
	{"TLP:CLEAR", "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"},
	{"TLP:GREEN", "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"},
	{"TLP:AMBER", "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"},
	{"TLP:AMBER+STRICT", "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"},
	{"TLP:RED", "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"},
}

type indicatorData struct {
	Collections []*store.Collection
	TLPs        []string
	Form        map[string]string
	Error       string
	PatternPos  int
	PatternErr  string
	Created     string
}

func (h *Handler) indicator(rq *Request) (any, error) {
	ctx := rq.R.Context()
	cols, err := h.writable(ctx, rq.P)
	if err != nil {
		return nil, err
	}
	d := indicatorData{Collections: cols, Form: map[string]string{"tlp": "TLP:AMBER"}, PatternPos: -1}
	for _, t := range tlpChoices {
		d.TLPs = append(d.TLPs, t.Level)
	}
	if rq.R.Method != http.MethodPost {
		return d, nil
	}
	for _, k := range []string{"name", "description", "pattern", "collection", "tlp"} {
		d.Form[k] = strings.TrimSpace(rq.R.PostFormValue(k))
	}
	var se *pattern.SyntaxError
	switch err := pattern.Check(d.Form["pattern"]); {
	case errors.As(err, &se):
		d.PatternPos, d.PatternErr = se.Pos, se.Msg
		d.Error = rq.L.T("indicator.invalid", "Pos", se.Pos)
		return d, nil
	case err != nil:
		d.Error = rq.L.T("indicator.invalid", "Pos", 0)
		return d, nil
	}
	if d.Form["name"] == "" {
		d.Error = rq.L.T("indicator.noname")
		return d, nil
	}
	var col *store.Collection
	for _, c := range cols {
		if c.ID == d.Form["collection"] {
			col = c
		}
	}
	if col == nil {
		return nil, errForbidden
	}
	marking := ""
	for _, t := range tlpChoices {
		if t.Level == d.Form["tlp"] {
			marking = t.Marking
		}
	}
	if marking == "" {
		return nil, &httpError{http.StatusBadRequest, "error.badrequest"}
	}
	now := stix.FormatMicro(h.cfg.Now())
	obj := map[string]any{"type": "indicator", "spec_version": "2.1", "id": "indicator--" + uuid.NewString(),
		"created": now, "modified": now, "valid_from": now, "name": d.Form["name"], "pattern": d.Form["pattern"],
		"pattern_type": "stix", "object_marking_refs": []string{marking}}
	if d.Form["description"] != "" {
		obj["description"] = d.Form["description"]
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	checked, err := h.cfg.Check(ctx, rq.P, []json.RawMessage{raw})
	if err != nil {
		return nil, err
	}
	if len(checked.Failures) > 0 || len(checked.Objects) != 1 {
		d.Error = rq.L.T("indicator.refused")
		h.log.InfoContext(ctx, "console indicator refused", "user", rq.P.User, "failures", fmt.Sprint(checked.Failures))
		return d, nil
	}
	res, err := h.cfg.Store.AddObjects(ctx, col.ID, checked.Objects, nil)
	if err != nil {
		return nil, err
	}
	if len(res) == 1 && res[0].Err != nil {
		d.Error = rq.L.T("indicator.refused")
		return d, nil
	}
	if err := h.cfg.Store.AppendAudit(ctx, store.AuditRecord{Principal: rq.P.User, Organisation: rq.P.Organisation,
		Action: "objects.add", Path: rq.R.URL.Path, Collection: col.ID, Objects: []string{checked.Objects[0].ID}, Detail: "indicator created in the console"}); err != nil {
		return nil, err
	}
	rq.Redirect(Prefix + "object?id=" + checked.Objects[0].ID + "&c=" + col.ID)
	return nil, nil
}

// patternCheck is the answer of the pattern endpoints.
type patternCheck struct {
	Valid bool `json:"valid"`
	// Pos is the character offset of the error (-1 when valid).
	Pos int `json:"pos"`
	// Message is the translated summary; Detail the parser's own words.
	Message string `json:"message"`
	Detail  string `json:"detail,omitempty"`
	// Matched, for a test against sample events.
	Matched *bool `json:"matched,omitempty"`
}

// maxPatternBody bounds the pattern endpoints' requests.
const maxPatternBody = 1 << 20

func (h *Handler) patternRequest(rq *Request) (pat string, events json.RawMessage, ok bool) {
	var in struct {
		Pattern string          `json:"pattern"`
		Events  json.RawMessage `json:"events"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(rq.W, rq.R.Body, maxPatternBody)).Decode(&in); err != nil {
		writeJSON(rq.W, http.StatusBadRequest, patternCheck{Pos: -1, Message: rq.L.T("error.badrequest")})
		return "", nil, false
	}
	return in.Pattern, in.Events, true
}

func (h *Handler) syntax(rq *Request, pat string) (patternCheck, bool) {
	var se *pattern.SyntaxError
	if err := pattern.Check(pat); errors.As(err, &se) {
		return patternCheck{Pos: se.Pos, Message: rq.L.T("indicator.invalid", "Pos", se.Pos), Detail: se.Msg}, false
	} else if err != nil {
		return patternCheck{Pos: 0, Message: rq.L.T("indicator.invalid", "Pos", 0)}, false
	}
	return patternCheck{Valid: true, Pos: -1, Message: rq.L.T("indicator.valid")}, true
}

// checkPattern answers POST /console/api/pattern {"pattern": ...} with the
// position of the first syntax error.
func (h *Handler) checkPattern(rq *Request) {
	pat, _, ok := h.patternRequest(rq)
	if !ok {
		return
	}
	res, _ := h.syntax(rq, pat)
	writeJSON(rq.W, http.StatusOK, res)
}

// testPattern evaluates a pattern against pasted sample events: a JSON
// array of STIX objects (observed-data with their SCOs, as a bundle's
// objects) or a bundle.
func (h *Handler) testPattern(rq *Request) {
	pat, events, ok := h.patternRequest(rq)
	if !ok {
		return
	}
	res, valid := h.syntax(rq, pat)
	if !valid {
		writeJSON(rq.W, http.StatusOK, res)
		return
	}
	var bundle struct {
		Objects json.RawMessage `json:"objects"`
	}
	if json.Unmarshal(events, &bundle) == nil && bundle.Objects != nil {
		events = bundle.Objects
	}
	obs, err := pattern.ObservationsFromJSON(events)
	if err != nil {
		res.Valid, res.Message, res.Detail = false, rq.L.T("indicator.badevents"), err.Error()
		writeJSON(rq.W, http.StatusOK, res)
		return
	}
	matched, _, err := pattern.Evaluate(pat, obs)
	if err != nil {
		res.Valid, res.Message, res.Detail = false, rq.L.T("indicator.budget"), err.Error()
		writeJSON(rq.W, http.StatusOK, res)
		return
	}
	res.Matched = &matched
	if matched {
		res.Message = rq.L.T("indicator.matched", "N", len(obs))
	} else {
		res.Message = rq.L.T("indicator.notmatched", "N", len(obs))
	}
	writeJSON(rq.W, http.StatusOK, res)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
