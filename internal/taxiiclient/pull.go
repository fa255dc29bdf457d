package taxiiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// Cursor is where a pull resumes. Callers persist it with the objects of
// the page it follows (in one transaction), so that a pull interrupted at
// any point resumes without loss or duplicate.
//
// Every object added to the collection before AddedAfter has been handed
// over; of those added exactly at AddedAfter, the ones in Seen have. The
// pull therefore asks for everything from AddedAfter on, inclusive, and
// drops what Seen lists: a server that treats added_after as inclusive
// repeats nothing, and one that gives many objects the same date_added
// (every object of a POST, say) is resumed inside such a batch without
// skipping the rest of it.
type Cursor struct {
	AddedAfter time.Time `json:"added_after,omitzero"`
	// Seen are the keys (ObjectKey) of objects handed over whose
	// date_added may equal AddedAfter.
	Seen []string `json:"seen,omitempty"`
	// Next is the server's next value for the page after the last one,
	// NextAt when it was received and NextBase the added_after of the
	// query it continues (TAXII 2.1 §3.4: next goes with the original
	// query's parameters).
	Next     string    `json:"next,omitempty"`
	NextAt   time.Time `json:"next_at,omitzero"`
	NextBase time.Time `json:"next_base,omitzero"`
}

// PullPage is one page of a pull: the objects not handed over before, and
// the cursor to persist with them.
type PullPage struct {
	Objects []json.RawMessage
	Cursor  Cursor
	// Repeated counts objects the server sent again and the pull dropped.
	Repeated int
}

// ErrStuck: the server keeps answering "more" without letting the pull
// advance (no next, and a page that holds nothing new even when asked for
// more objects at once).
var ErrStuck = errors.New("TAXII server does not let the pull advance")

// ObjectKey identifies one version of an object: its id and its modified
// (else created) timestamp, compared as instants. Unversioned objects
// (most SCOs) are keyed by their id.
func ObjectKey(raw json.RawMessage) (string, error) {
	var h struct {
		ID       string `json:"id"`
		Modified string `json:"modified"`
		Created  string `json:"created"`
	}
	if err := json.Unmarshal(raw, &h); err != nil || h.ID == "" {
		return "", fmt.Errorf("object without an id")
	}
	v := h.Modified
	if v == "" {
		v = h.Created
	}
	return h.ID + "|" + normalTime(v), nil
}

// normalTime renders a STIX timestamp canonically so that
// "…00Z" and "…00.000Z" are the same version.
func normalTime(v string) string {
	if v == "" {
		return ""
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return v
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// maxStalls is how many pages in a row may bring nothing new (the page
// size doubling each time) before Pull gives up with ErrStuck.
const maxStalls = 12

// Pull reads the query's objects from cur on, calling fn once per page
// with the objects not handed over before and the cursor that follows
// them, until the server has nothing more; it returns the last cursor. An
// error from fn stops the pull (the cursor fn last persisted stands).
//
// Pull copes with the servers that exist: next values are used while
// younger than NextMaxAge and dropped when the server refuses them (the
// pull then resumes from AddedAfter); "more" without next or without
// X-TAXII-Date-Added-Last (the manifest then tells the page's date_added);
// limit ignored; added_after inclusive; whole batches sharing one
// date_added. Pages that fail or time out are asked for again from the
// same cursor, as Retry says.
func (c *Client) Pull(ctx context.Context, q ObjectsQuery, cur Cursor, fn func(ctx context.Context, p PullPage) error) (Cursor, error) {
	if !q.AddedAfter.IsZero() && q.AddedAfter.After(cur.AddedAfter) {
		// added_after is exclusive (TAXII 2.1 §3.4.2): start just after it.
		cur = Cursor{AddedAfter: q.AddedAfter.Add(time.Microsecond)}
	}
	maxAge := c.NextMaxAge
	if maxAge <= 0 {
		maxAge = 25 * time.Second
	}
	limit, stalls := q.Limit, 0
	for {
		if cur.Next != "" && c.now().Sub(cur.NextAt) >= maxAge {
			cur.Next = ""
		}
		v := q.values()
		if limit > 0 {
			v.Set("limit", fmt.Sprint(limit))
		}
		base := cur.AddedAfter
		if !base.IsZero() {
			// The inclusive bound, whatever the server's reading of
			// added_after: timestamps have microsecond precision.
			base = base.Add(-time.Microsecond)
		}
		if cur.Next != "" {
			base = cur.NextBase
			v.Set("next", cur.Next)
		}
		if !base.IsZero() {
			v.Set("added_after", formatTime(base))
		}
		var env envelope
		h, err := c.do(ctx, http.MethodGet, withQuery(c.ObjectsURL, v), nil, &env)
		if err != nil {
			var te *Error
			if cur.Next != "" && errors.As(err, &te) && (te.Status == http.StatusBadRequest || te.Status == http.StatusNotFound ||
				te.Status == http.StatusGone || te.Status == http.StatusUnprocessableEntity) {
				// An expired or forgotten next: resume from the bound.
				cur.Next = ""
				continue
			}
			return cur, err
		}
		keys := make([]string, len(env.Objects))
		for i, o := range env.Objects {
			if keys[i], err = ObjectKey(o); err != nil {
				return cur, fmt.Errorf("TAXII page object %d: %w", i, err)
			}
		}
		last, err := c.pageLast(ctx, h, env.Objects, keys)
		if err != nil {
			return cur, err
		}
		seen := make(map[string]bool, len(cur.Seen))
		for _, k := range cur.Seen {
			seen[k] = true
		}
		page := PullPage{}
		for i, o := range env.Objects {
			if seen[keys[i]] {
				page.Repeated++
				continue
			}
			seen[keys[i]] = true
			page.Objects = append(page.Objects, o)
		}
		next := cur
		switch {
		case len(env.Objects) == 0:
		case last.After(cur.AddedAfter):
			// Every object of the page may sit at last (only the first and
			// last ones' date_added are known), so all are remembered;
			// those of the previous bound too when it is one tick earlier,
			// as the inclusive query reaches down to it.
			s := slices.Clone(keys)
			if !last.After(cur.AddedAfter.Add(time.Microsecond)) {
				s = append(s, cur.Seen...)
			}
			next.AddedAfter, next.Seen = last, dedup(s)
		default:
			next.Seen = dedup(append(slices.Clone(cur.Seen), keys...))
		}
		next.Next, next.NextAt, next.NextBase = "", time.Time{}, time.Time{}
		if env.More && env.Next != "" {
			next.Next, next.NextAt, next.NextBase = env.Next, c.now(), base
		}
		progressed := len(page.Objects) > 0 || next.AddedAfter.After(cur.AddedAfter)
		page.Cursor = next
		if progressed || !env.More {
			if err := fn(ctx, page); err != nil {
				return cur, err
			}
		}
		cur = next
		if !env.More {
			return cur, nil
		}
		if progressed {
			stalls = 0
			continue
		}
		// Nothing new: a server that repeats the same page (inclusive
		// added_after inside a batch larger than its page, and no next).
		// Ask for more at once, up to the server's limit.
		if stalls++; stalls > maxStalls {
			return cur, fmt.Errorf("%w: %d pages in a row brought nothing new at date_added %s", ErrStuck, stalls, formatTime(cur.AddedAfter))
		}
		cur.Next = ""
		limit = max(limit, len(env.Objects), 1) * 2
	}
}

func dedup(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

// pageLast is the date_added of the page's last object: the
// X-TAXII-Date-Added-Last header (TAXII 2.1 §3.2), else what the
// collection's manifest says of the page's objects.
func (c *Client) pageLast(ctx context.Context, h http.Header, objs []json.RawMessage, keys []string) (time.Time, error) {
	if len(objs) == 0 {
		return time.Time{}, nil
	}
	if t, err := parseHeaderTime(h.Get("X-TAXII-Date-Added-Last")); err == nil {
		return t, nil
	}
	want := make(map[string]bool, len(keys))
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		want[k] = true
		id, _, _ := cutKey(k)
		ids = append(ids, id)
	}
	var last time.Time
	found := 0
	ids = dedup(ids)
	// A few ids per request keep the URL short.
	const chunk = 40
	for len(ids) > 0 {
		part := ids[:min(chunk, len(ids))]
		ids = ids[len(part):]
		if err := c.Manifest(ctx, ObjectsQuery{IDs: part, Version: "all"}, func(recs []ManifestRecord) error {
			for _, r := range recs {
				if !want[r.ID+"|"+normalTime(r.Version)] && !want[r.ID+"|"] {
					continue
				}
				t, err := time.Parse(time.RFC3339Nano, r.DateAdded)
				if err != nil {
					return fmt.Errorf("manifest date_added %q: %w", r.DateAdded, err)
				}
				found++
				if t.After(last) {
					last = t
				}
			}
			return nil
		}); err != nil {
			return time.Time{}, fmt.Errorf("TAXII page without X-TAXII-Date-Added-Last; its manifest: %w", err)
		}
	}
	if found == 0 {
		return time.Time{}, errors.New("TAXII page without X-TAXII-Date-Added-Last, and the manifest does not list its objects")
	}
	return last, nil
}

func cutKey(k string) (id, version string, ok bool) {
	for i := len(k) - 1; i >= 0; i-- {
		if k[i] == '|' {
			return k[:i], k[i+1:], true
		}
	}
	return k, "", false
}
