package taxiiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// ErrPositionExpired: the server's change log no longer holds the changes
// after the position asked for (retention pruned them); the caller must
// synchronise the whole collection again. Test with errors.Is; the error is
// a *PositionExpiredError.
var ErrPositionExpired = errors.New("change-feed position expired")

// PositionExpiredError is the 410 answer of the change feed.
type PositionExpiredError struct {
	// Oldest is the oldest change the server still keeps (0 when the
	// server did not say).
	Oldest int64
	// Latest is the newest change when the server answered: resynchronise
	// the collection fully, then follow the feed after Latest.
	Latest int64
	// Err is the error message resource the server sent.
	Err *Error
}

func (e *PositionExpiredError) Error() string { return e.Err.Error() }

// Is makes errors.Is(err, ErrPositionExpired) true.
func (e *PositionExpiredError) Is(target error) bool { return target == ErrPositionExpired }

// Unwrap gives the server's *Error.
func (e *PositionExpiredError) Unwrap() error { return e.Err }

// Change is one record of a collection's change feed (Mitra's
// x-mitra-changes extension endpoint).
type Change struct {
	Seq int64 `json:"seq"`
	// Op is "add" (a new object, a new version or a revocation) or
	// "delete" (a tombstone: no object).
	Op        string `json:"op"`
	ID        string `json:"id"`
	Version   string `json:"version"`
	DateAdded string `json:"date_added,omitempty"`
	// Object is the stored object, byte for byte (adds only).
	Object json.RawMessage `json:"object,omitempty"`
}

// ChangesPage is one page of the change feed.
type ChangesPage struct {
	Changes []Change `json:"changes"`
	More    bool     `json:"more"`
	// Next is the position to pass as after for the following page.
	Next int64 `json:"next"`
	// Oldest is the oldest change the server still keeps.
	Oldest int64 `json:"oldest"`
	// Latest is the newest change the server has written (0 from servers
	// that do not say): how far behind a follower is.
	Latest int64 `json:"latest"`
}

// Changes reads one page of the change feed of collection (an id or
// alias of the client's API root; the client's own collection when empty):
// the changes after position after, at most limit of them (the server's
// default, 1000, when limit <= 0). A position older than the server keeps
// gives an error for which errors.Is(err, ErrPositionExpired) holds.
func (c *Client) Changes(ctx context.Context, collection string, after int64, limit int) (*ChangesPage, error) {
	var base string
	if collection == "" {
		base = c.collectionURL()
	} else {
		base = c.APIRootURL() + "collections/" + url.PathEscape(collection) + "/"
	}
	v := url.Values{}
	v.Set("after", strconv.FormatInt(after, 10))
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	var page ChangesPage
	_, err := c.do(ctx, http.MethodGet, base+"x-mitra-changes/?"+v.Encode(), nil, &page)
	var te *Error
	if errors.As(err, &te) && te.Status == http.StatusGone {
		pe := &PositionExpiredError{Err: te}
		if o, ok := te.Details["oldest"].(float64); ok {
			pe.Oldest = int64(o)
		}
		if l, ok := te.Details["latest"].(float64); ok {
			pe.Latest = int64(l)
		}
		return nil, pe
	}
	if err != nil {
		return nil, fmt.Errorf("change feed: %w", err)
	}
	return &page, nil
}
