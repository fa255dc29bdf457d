package search

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
)

// ParseQuery reads a search from the search API's query parameters: q,
// type, tlp, collection, organisation (filters repeat or take
// comma-separated lists), modified_from and modified_to (a timestamp or a
// date), limit and cursor. A malformed parameter is ErrInvalid.
func ParseQuery(qs url.Values) (Query, error) {
	q := Query{Text: first(qs["q"]), Types: list(qs, "type"), TLPs: list(qs, "tlp"), Collections: list(qs, "collection"),
		Organisations: list(qs, "organisation"), Cursor: first(qs["cursor"])}
	var err error
	if q.ModifiedFrom, err = parseTime(qs, "modified_from"); err != nil {
		return q, err
	}
	if q.ModifiedTo, err = parseTime(qs, "modified_to"); err != nil {
		return q, err
	}
	if v := first(qs["limit"]); v != "" {
		if q.Limit, err = strconv.Atoi(v); err != nil || q.Limit < 1 {
			return q, fmt.Errorf("limit: want an integer from 1 to %d: %w", MaxLimit, ErrInvalid)
		}
	}
	return q, nil
}

// list reads a filter given repeated or comma-separated.
func list(q url.Values, name string) []string {
	var out []string
	for _, v := range q[name] {
		for _, x := range strings.Split(v, ",") {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
	}
	return out
}

func parseTime(q url.Values, name string) (time.Time, error) {
	v := strings.TrimSpace(first(q[name]))
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := stix.ParseTimestamp(v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%s: want a timestamp (2026-01-02T15:04:05Z) or a date (2026-01-02): %w", name, ErrInvalid)
}

func first(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return l[0]
}

// idsPage is the page size MatchingIDs reads the index with: larger than
// an API page, since nothing is rendered per hit, and below the store's
// cap on a page (sqlstore's 10,000), which would hide the next page.
var idsPage = 5000

// MatchingIDs returns the id of every object matching the search that p
// may read, over all pages, each once, best first: what an export from a
// search holds (internal/feeds). params are the search API's (limit and
// cursor are ignored). A malformed search is an error wrapping both
// ErrInvalid and store.ErrInvalid, so that a caller that knows only the
// store (feeds) can answer 400.
func (s *Service) MatchingIDs(ctx context.Context, p *access.Principal, params url.Values) ([]string, error) {
	q, err := ParseQuery(params)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, store.ErrInvalid)
	}
	q.Limit, q.Cursor = 0, ""
	v, err := s.view(ctx, p)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for offset := 0; ; offset += idsPage {
		res, err := s.page(ctx, p, v, q, offset, idsPage)
		if errors.Is(err, ErrInvalid) {
			return nil, fmt.Errorf("%w: %w", err, store.ErrInvalid)
		}
		if err != nil {
			return nil, err
		}
		for _, h := range res.Hits {
			if !seen[h.ID] {
				seen[h.ID] = true
				out = append(out, h.ID)
			}
		}
		if res.Next == "" {
			return out, nil
		}
	}
}
