package feeds

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/mitra-cert/mitra/internal/access"
)

// Matcher finds what a search matches, for exports from a search. The
// search service (internal/search) is one; feeds declares it so that the
// dependency points from the wiring (cmd/mitra) to both packages, never
// from feeds to search.
type Matcher interface {
	// MatchingIDs returns the id of every object matching the search
	// that p may read, over all pages. params are the search API's
	// (/x-mitra-search/): q, type, tlp, collection, organisation,
	// modified_from, modified_to. A malformed search is an error
	// wrapping store.ErrInvalid.
	MatchingIDs(ctx context.Context, p *access.Principal, params url.Values) ([]string, error)
}

// SearchParams are the query parameters that make an export one from a
// search: the search API's filters. collection, which exports from
// collections take too, also filters the search when one of these is
// given.
var SearchParams = []string{"q", "type", "tlp", "organisation", "modified_from", "modified_to"}

// SearchOf returns the search filters in query (SearchParams and
// collection), or nil when query names no search.
func SearchOf(query url.Values) url.Values {
	if !slices.ContainsFunc(SearchParams, query.Has) {
		return nil
	}
	out := url.Values{}
	for _, k := range append([]string{"collection"}, SearchParams...) {
		if v, ok := query[k]; ok {
			out[k] = slices.Clone(v)
		}
	}
	return out
}

// searchIDs returns the indicators among the search's results, sorted.
// The search leaves out what the principal may not read; the export reads
// each indicator again through access.Decide.
func (x *Exporter) searchIDs(ctx context.Context, req Request) ([]string, error) {
	if x.Matcher == nil {
		return nil, fmt.Errorf("exports from a search are not available here: %w", ErrInvalid)
	}
	params := url.Values{}
	for k, v := range req.Search {
		params[k] = slices.Clone(v)
	}
	// Only indicators are exported: ask the search for them alone, or for
	// nothing when its type filter leaves them out.
	if types := params["type"]; len(types) > 0 {
		indicators := false
		for _, t := range types {
			for _, one := range strings.Split(t, ",") {
				indicators = indicators || strings.TrimSpace(one) == "indicator"
			}
		}
		if !indicators {
			return []string{}, nil
		}
	}
	params["type"] = []string{"indicator"}
	ids, err := x.Matcher.MatchingIDs(ctx, req.Principal, params)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if strings.HasPrefix(id, "indicator--") {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
