package store

import (
	"context"
	"time"
)

// Reader is what the search store methods need to know of a caller to
// leave out, in the database, what access.Decide would refuse: the
// collections it reads and how. The store still enforces no policy of its
// own: the search service builds a Reader from access rules and checks
// every row it gets back with access.Decide.
type Reader struct {
	// Organisation is the caller's organisation ("" when none).
	Organisation string
	// Collections are the collections the caller reads; nothing is
	// returned from any other.
	Collections []ReadableCollection
}

// ReadableCollection is one collection a Reader reads.
type ReadableCollection struct {
	ID string
	// DefaultTLP is the level of the collection's unmarked objects (never
	// zero: AMBER when the collection sets none).
	DefaultTLP int
	// Recipient is true when the collection names the reader's
	// organisation among the recipients of its AMBER+STRICT and RED objects.
	Recipient bool
}

// TextQuery is one full-text search.
type TextQuery struct {
	// Text is the user's search text: words, all of which must match (in
	// the name, description, labels or pattern and value of an object).
	Text string
	// Types, Collections and TLPs filter (empty: no filter). TLPs are
	// effective levels (the collection's default for unmarked objects).
	Types       []string
	Collections []string
	TLPs        []int
	// Submitters keeps objects submitted by these organisations.
	Submitters []string
	// ExcludeTypes leaves these types out.
	ExcludeTypes []string
	// ModifiedFrom and ModifiedTo bound the object's version (modified,
	// else created, else date added); zero: no bound. From is inclusive,
	// To exclusive.
	ModifiedFrom, ModifiedTo time.Time
	// Offset and Limit page the ranked results.
	Offset, Limit int
}

// Located is the latest version of an object in one collection.
type Located struct {
	Collection string
	Entry
	// Score ranks text hits: lower is better.
	Score float64
	// Modified is the object's version as a time (zero when unversioned).
	Modified time.Time
}

// Searcher finds objects by text and by reference. Every method returns
// only the latest versions (the TAXII default), and only rows of the
// reader's collections that its TLP rules admit.
type Searcher interface {
	// SearchText returns the latest versions matching q, best first.
	SearchText(ctx context.Context, r *Reader, q TextQuery) ([]Located, error)
	// LatestByID returns the latest versions of the objects with these
	// ids, in every readable collection holding them, with their bodies.
	LatestByID(ctx context.Context, r *Reader, ids []string) ([]Located, error)
	// Referencing returns the latest versions of objects (of the given
	// types; any when empty) whose embedded references (*_ref, *_refs,
	// markings excepted) name one of ids, with their bodies, at most
	// limit of them.
	Referencing(ctx context.Context, r *Reader, ids, types []string, limit int) ([]Located, error)
}
