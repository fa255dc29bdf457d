package web

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/feeds"
	"github.com/mitra-cert/mitra/internal/search"
	"github.com/mitra-cert/mitra/internal/store"
)

// Searcher answers the search, lookup and graph pages (internal/search);
// each answer holds only what access.Decide lets the principal read.
type Searcher interface {
	Search(ctx context.Context, p *access.Principal, q search.Query) (search.Result, error)
	Lookup(ctx context.Context, p *access.Principal, values []string) ([]search.LookupResult, error)
	Pivot(ctx context.Context, p *access.Principal, id string, hops int) (search.Graph, error)
}

var searchTypes = []string{"indicator", "malware", "threat-actor", "intrusion-set", "campaign", "attack-pattern", "tool",
	"vulnerability", "report", "sighting", "observed-data", "identity", "relationship", "ipv4-addr", "ipv6-addr", "domain-name", "url", "file"}

var searchTLPs = []string{"clear", "green", "amber", "amber+strict", "red"}

type searchData struct {
	Form        url.Values
	Types       []string
	TLPs        []string
	Collections []*store.Collection
	Searched    bool
	Hits        []search.Hit
	Next        string
	Error       string
	// ExportFormats are offered to export the search's indicators.
	ExportFormats []string
}

func (h *Handler) search(rq *Request) (any, error) {
	ctx := rq.R.Context()
	cols, err := h.readable(ctx, rq.P)
	if err != nil {
		return nil, err
	}
	f := rq.R.URL.Query()
	d := searchData{Form: f, Types: searchTypes, TLPs: searchTLPs, Collections: cols, ExportFormats: feeds.ExportFormats()}
	if !f.Has("q") {
		return d, nil
	}
	if h.cfg.Search == nil {
		return nil, errNotFound
	}
	q := search.Query{Text: f.Get("q"), Cursor: f.Get("cursor")}
	for k, dst := range map[string]*[]string{"type": &q.Types, "tlp": &q.TLPs, "collection": &q.Collections} {
		if v := f.Get(k); v != "" {
			*dst = []string{v}
		}
	}
	// Only the user's own organisation is offered as a filter: listing
	// the others would tell every analyst who takes part.
	if f.Get("org") == "mine" && rq.P.Organisation != "" {
		q.Organisations = []string{rq.P.Organisation}
	}
	if v := f.Get("from"); v != "" {
		if q.ModifiedFrom, err = time.Parse("2006-01-02", v); err != nil {
			d.Error = rq.L.T("search.baddate")
			return d, nil
		}
	}
	if v := f.Get("to"); v != "" {
		t, err := time.Parse("2006-01-02", v)
		if err != nil {
			d.Error = rq.L.T("search.baddate")
			return d, nil
		}
		q.ModifiedTo = t.AddDate(0, 0, 1)
	}
	if format := f.Get("export"); format != "" && slices.Contains(d.ExportFormats, format) {
		rq.Redirect(exportURL(format, q))
		return nil, nil
	}
	res, err := h.cfg.Search.Search(ctx, rq.P, q)
	if errors.Is(err, search.ErrInvalid) {
		d.Error = rq.L.T("search.invalid")
		return d, nil
	}
	if err != nil {
		return nil, err
	}
	d.Searched, d.Hits = true, res.Hits
	if res.Next != "" {
		next := url.Values{}
		for k, v := range f {
			next[k] = v
		}
		next.Set("cursor", res.Next)
		d.Next = Prefix + "search?" + next.Encode()
	}
	return d, nil
}

// exportURL is the export API's address (feeds.ExportHandler) of the
// active indicators among q's results, with q's filters as the search API
// names them; the export applies the requester's access policy again.
func exportURL(format string, q search.Query) string {
	v := url.Values{"q": {q.Text}}
	for k, l := range map[string][]string{"type": q.Types, "tlp": q.TLPs, "collection": q.Collections, "organisation": q.Organisations} {
		if len(l) > 0 {
			v[k] = l
		}
	}
	if !q.ModifiedFrom.IsZero() {
		v.Set("modified_from", q.ModifiedFrom.Format(time.DateOnly))
	}
	if !q.ModifiedTo.IsZero() {
		v.Set("modified_to", q.ModifiedTo.Format(time.DateOnly))
	}
	return feeds.ExportPrefix + format + "?" + v.Encode()
}

type lookupData struct {
	Values  string
	Results []search.LookupResult
	Done    bool
	Error   string
}

// maxConsoleLookup bounds the values of one lookup in the console (the
// API takes up to search.MaxLookupValues).
const maxConsoleLookup = 1000

func (h *Handler) lookup(rq *Request) (any, error) {
	var d lookupData
	if rq.R.Method != http.MethodPost {
		d.Values = rq.R.URL.Query().Get("v")
		if d.Values == "" {
			return d, nil
		}
	} else {
		d.Values = rq.R.PostFormValue("values")
	}
	if h.cfg.Search == nil {
		return nil, errNotFound
	}
	values := strings.FieldsFunc(d.Values, func(r rune) bool { return r == '\n' || r == '\r' || r == ',' || r == ' ' || r == '\t' })
	if len(values) > maxConsoleLookup {
		d.Error = rq.L.T("lookup.toomany", "Max", maxConsoleLookup)
		return d, nil
	}
	res, err := h.cfg.Search.Lookup(rq.R.Context(), rq.P, values)
	if errors.Is(err, search.ErrNotReady) {
		d.Error = rq.L.T("lookup.notready")
		return d, nil
	}
	if errors.Is(err, search.ErrInvalid) {
		d.Error = rq.L.T("search.invalid")
		return d, nil
	}
	if err != nil {
		return nil, err
	}
	d.Results, d.Done = res, true
	return d, nil
}

// graphView is a pivot graph laid out for inline SVG: the object in the
// middle, its neighbours on a circle around it, theirs on a wider one.
type graphView struct {
	Width, Height int
	Nodes         []graphNode
	Edges         []graphEdge
	Truncated     bool
	Hops          int
}

type graphNode struct {
	ID, Type, Label string
	X, Y            int
	Center          bool
	Collection      string
}

type graphEdge struct {
	X1, Y1, X2, Y2 int
	Label          string
}

// graphNodes bounds the nodes drawn; the rest are counted as truncated.
const graphNodes = 60

func (h *Handler) graph(rq *Request, id string) (*graphView, string) {
	if h.cfg.Search == nil {
		return nil, rq.L.T("graph.unavailable")
	}
	hops := 1
	if rq.R.URL.Query().Get("hops") == "2" {
		hops = 2
	}
	g, err := h.cfg.Search.Pivot(rq.R.Context(), rq.P, id, hops)
	if err != nil {
		h.log.WarnContext(rq.R.Context(), "console graph", "id", id, "err", err)
		return nil, rq.L.T("graph.unavailable")
	}
	v := &graphView{Width: 760, Height: 520, Truncated: g.Truncated, Hops: hops}
	cx, cy := v.Width/2, v.Height/2
	byHop := map[int][]search.Node{}
	for _, n := range g.Nodes {
		byHop[n.Hop] = append(byHop[n.Hop], n)
	}
	pos := map[string][2]int{}
	drawn := 0
	for hop := 0; hop <= hops; hop++ {
		ring := byHop[hop]
		radius := float64(hop) * 170
		if hops == 2 && hop == 1 {
			radius = 120
		}
		if hops == 2 && hop == 2 {
			radius = 235
		}
		for i, n := range ring {
			if drawn >= graphNodes {
				v.Truncated = true
				break
			}
			drawn++
			a := 2 * math.Pi * float64(i) / float64(max(1, len(ring)))
			x, y := cx+int(radius*math.Cos(a)), cy+int(radius*math.Sin(a))
			pos[n.ID] = [2]int{x, y}
			label := n.Name
			if label == "" {
				label = n.Type
			}
			if r := []rune(label); len(r) > 28 {
				label = string(r[:27]) + "…"
			}
			c := ""
			if len(n.Collections) > 0 {
				c = n.Collections[0]
			}
			v.Nodes = append(v.Nodes, graphNode{ID: n.ID, Type: n.Type, Label: label, X: x, Y: y, Center: n.ID == id, Collection: c})
		}
	}
	for _, e := range g.Edges {
		a, ok1 := pos[e.Source]
		b, ok2 := pos[e.Target]
		if !ok1 || !ok2 {
			continue
		}
		v.Edges = append(v.Edges, graphEdge{X1: a[0], Y1: a[1], X2: b[0], Y2: b[1], Label: e.Kind})
	}
	return v, ""
}

// hopsLink is the object page with the other hop count.
func hopsLink(id string, hops int) string {
	return Prefix + "object?id=" + url.QueryEscape(id) + "&hops=" + strconv.Itoa(hops)
}
