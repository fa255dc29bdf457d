// Package search answers the analyst's everyday questions over everything a
// caller may read: full-text search with filters, value lookup ("is this
// IP, domain, URL or hash known?", an IP inside an indicator's CIDR
// counting) and pivots over relationships, sightings and embedded
// references.
//
// What a caller may not read never shows: the store methods leave out, in
// the database, rows that access.Decide would refuse (store.Reader), and
// every row that comes back is checked again with access.Decide before it
// is used. Counts, cursors, page sizes, truncation flags and errors depend
// only on visible objects. What remains is the cost of index entries of
// hidden objects that the database (or the value index) reads and drops:
// microseconds per entry, far below the noise of a request (README).
package search

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/store"
)

// Errors the API maps to HTTP statuses.
var (
	// ErrInvalid: a malformed query (400).
	ErrInvalid = errors.New("invalid search request")
	// ErrNotReady: the value index is still loading after a start (503).
	ErrNotReady = errors.New("the value index is still loading")
)

// Limits.
const (
	DefaultLimit = 50
	MaxLimit     = 500
	// MaxLookupValues is the most values one lookup takes.
	MaxLookupValues = 10000
	// MaxPivotNodes bounds a pivot graph.
	MaxPivotNodes = 500
	// maxMentions bounds the sightings and reports one lookup lists.
	maxMentions = 10000
)

// Config configures a Service.
type Config struct {
	Store  Store
	Logger *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Service answers searches, lookups and pivots. Search and Pivot read the
// store's indexes (kept in the objects' transactions); Lookup reads an
// in-memory value index that follows the collections' change logs (Run).
type Service struct {
	cfg    Config
	log    *slog.Logger
	values *valueIndex
}

// New returns a service. Search and Pivot answer at once; Lookup answers
// once Sync (or Run) has loaded the value index.
func New(cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg, log: cfg.Logger, values: newValueIndex(cfg.Store, cfg.Logger)}
}

// Query is one search. Filters are ANDed; the values of one filter ORed.
type Query struct {
	// Text: words that must all occur in the name, description, labels or
	// pattern/value (a word ending in * is a prefix). Empty: every object,
	// newest first.
	Text string
	// Types are STIX types ("indicator", "malware", ...).
	Types []string
	// TLPs are levels by name ("clear", "green", "amber", "amber+strict",
	// "red"), as access.ParseTLP reads them; they filter the effective
	// level (the collection's default for unmarked objects).
	TLPs []string
	// Collections are collection ids or aliases.
	Collections []string
	// Organisations are the organisations (identity ids) that submitted.
	Organisations []string
	// ModifiedFrom (inclusive) and ModifiedTo (exclusive) bound the
	// object's modified (else created) time.
	ModifiedFrom, ModifiedTo time.Time
	// Limit is the page size: DefaultLimit when 0, at most MaxLimit.
	Limit int
	// Cursor continues from a previous Result.Next.
	Cursor string
}

// Hit is one object version found, in one collection.
type Hit struct {
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	Name       string    `json:"name,omitempty"`
	Snippet    string    `json:"snippet,omitempty"`
	Collection string    `json:"collection"`
	TLP        string    `json:"tlp"`
	Modified   time.Time `json:"modified,omitzero"`
	// Score ranks the hits of one search: lower is better.
	Score float64 `json:"score"`
}

// Result is one page of hits, best first. Next is the cursor of the next
// page; empty on the last.
type Result struct {
	Hits []Hit  `json:"hits"`
	Next string `json:"next,omitempty"`
}

// view is what one principal reads: its collections and the store.Reader
// that lets the store leave the rest out.
type view struct {
	p      *access.Principal
	colls  map[string]*store.Collection // readable, by id
	alias  map[string]string            // alias -> id, readable only
	reader *store.Reader
	anon   map[string]bool // organisations anonymous in sightings
}

func (s *Service) view(ctx context.Context, p *access.Principal) (*view, error) {
	all, err := s.cfg.Store.ListCollections(ctx)
	if err != nil {
		return nil, fmt.Errorf("search: collections: %w", err)
	}
	v := &view{p: p, colls: map[string]*store.Collection{}, alias: map[string]string{}, reader: &store.Reader{}, anon: map[string]bool{}}
	if p != nil {
		v.reader.Organisation = p.Organisation
	}
	for _, c := range all {
		if read, _ := access.CollectionAccess(p, c); !read {
			continue
		}
		v.colls[c.ID] = c
		if c.Alias != "" {
			v.alias[c.Alias] = c.ID
		}
		def := c.DefaultTLP
		if def == int(access.TLPUnmarked) {
			def = int(access.TLPAmber)
		}
		v.reader.Collections = append(v.reader.Collections, store.ReadableCollection{ID: c.ID, DefaultTLP: def,
			Recipient: p.Organisation != "" && slices.Contains(c.Recipients, p.Organisation)})
	}
	orgs, err := s.cfg.Store.ListOrganisations(ctx)
	if err != nil {
		return nil, fmt.Errorf("search: organisations: %w", err)
	}
	for _, o := range orgs {
		if o.AnonymiseSightings {
			v.anon[o.ID] = true
		}
	}
	return v, nil
}

// visible is access.Decide for one located row.
func (v *view) visible(l *store.Located) bool {
	c := v.colls[l.Collection]
	return c != nil && access.Decide(v.p, c, &l.Entry).Allowed
}

// anonymous lists the anonymous organisations other than the caller's,
// for access.RedactSighting.
func (v *view) anonymous() []string {
	var out []string
	for o := range v.anon {
		if v.p == nil || o != v.p.Organisation {
			out = append(out, o)
		}
	}
	slices.Sort(out)
	return out
}

// Search returns one page of the objects matching q that p may read.
func (s *Service) Search(ctx context.Context, p *access.Principal, q Query) (Result, error) {
	res := Result{Hits: []Hit{}}
	limit := q.Limit
	switch {
	case limit == 0:
		limit = DefaultLimit
	case limit < 0 || limit > MaxLimit:
		return res, fmt.Errorf("limit must be between 1 and %d: %w", MaxLimit, ErrInvalid)
	}
	offset, err := parseCursor(q.Cursor)
	if err != nil {
		return res, err
	}
	v, err := s.view(ctx, p)
	if err != nil {
		return res, err
	}
	return s.page(ctx, p, v, q, offset, limit)
}

// page is one page of Search: limit hits from offset, as v reads them.
func (s *Service) page(ctx context.Context, p *access.Principal, v *view, q Query, offset, limit int) (Result, error) {
	res := Result{Hits: []Hit{}}
	if utf8.RuneCountInString(q.Text) > 1000 {
		return res, fmt.Errorf("search text is longer than 1000 characters: %w", ErrInvalid)
	}
	tq := store.TextQuery{Text: q.Text, Types: q.Types, Submitters: q.Organisations,
		ModifiedFrom: q.ModifiedFrom, ModifiedTo: q.ModifiedTo, Offset: offset, Limit: limit + 1}
	for _, t := range q.TLPs {
		l, err := access.ParseTLP(t)
		if err != nil {
			return res, fmt.Errorf("%w: %w", err, ErrInvalid)
		}
		tq.TLPs = append(tq.TLPs, int(l))
	}
	for _, c := range q.Collections {
		if id, ok := v.alias[c]; ok {
			c = id
		}
		// An unreadable collection filters to nothing, as a missing one.
		tq.Collections = append(tq.Collections, c)
	}
	for _, o := range q.Organisations {
		if v.anon[o] && (p == nil || o != p.Organisation) {
			// The sightings of an anonymous organisation must not be
			// found by naming it.
			tq.ExcludeTypes = append(tq.ExcludeTypes, "sighting")
			break
		}
	}
	rows, err := s.cfg.Store.SearchText(ctx, v.reader, tq)
	if err != nil {
		return res, err
	}
	if len(rows) > limit {
		rows = rows[:limit]
		res.Next = formatCursor(offset + limit)
	}
	words := strings.Fields(strings.ToLower(q.Text))
	for i := range rows {
		l := &rows[i]
		if !v.visible(l) {
			continue
		}
		res.Hits = append(res.Hits, hitOf(v, l, words))
	}
	return res, nil
}

// doc is the part of an object a hit or a node shows.
type doc struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Pattern     string `json:"pattern"`
	Value       string `json:"value"`
	// Relationship and sighting fields name unnamed objects.
	RelationshipType string `json:"relationship_type"`
}

func parseDoc(raw []byte) doc {
	var d doc
	_ = json.Unmarshal(raw, &d) // stored objects are JSON; a bad one shows no text
	return d
}

// displayName is the name of an object, else its value or pattern.
func (d doc) displayName() string {
	switch {
	case d.Name != "":
		return d.Name
	case d.Value != "":
		return d.Value
	case d.Pattern != "":
		return clip(d.Pattern, 120)
	}
	return ""
}

func hitOf(v *view, l *store.Located, words []string) Hit {
	d := parseDoc(l.Raw)
	return Hit{ID: l.ID, Type: l.Type, Name: d.displayName(), Snippet: snippet(d, words), Collection: l.Collection,
		TLP: tlpName(v.colls[l.Collection], &l.Entry), Modified: l.Modified, Score: l.Score}
}

func tlpName(c *store.Collection, e *store.Entry) string {
	return strings.TrimPrefix(access.EffectiveTLP(c, e).String(), "TLP:")
}

// snippet is up to about 200 characters of the description around the
// first search word it contains, else its start, else the pattern.
func snippet(d doc, words []string) string {
	text := d.Description
	if text == "" {
		text = d.Pattern
	}
	lower := strings.ToLower(text)
	at := -1
	for _, w := range words {
		if i := strings.Index(lower, strings.TrimRight(w, "*")); i >= 0 && (at < 0 || i < at) {
			at = i
		}
	}
	start := 0
	if at > 80 {
		start = at - 80
		for start < len(text) && !utf8.RuneStart(text[start]) {
			start++
		}
	}
	out := clip(text[start:], 200)
	if start > 0 {
		out = "…" + out
	}
	return out
}

// clip cuts s to at most n runes, marking the cut.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

func parseCursor(c string) (int, error) {
	if c == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		var n int
		if n, err = strconv.Atoi(strings.TrimPrefix(string(b), "o:")); err == nil && n >= 0 && strings.HasPrefix(string(b), "o:") {
			return n, nil
		}
	}
	return 0, fmt.Errorf("bad cursor: %w", ErrInvalid)
}

func formatCursor(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("o:" + strconv.Itoa(offset)))
}
