package taxii

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/store"
)

// The change feed is a Mitra extension endpoint under the API root (TAXII
// 2.1 §1.6.6 lets servers add endpoints; its x- name cannot clash with
// future TAXII ones): GET {api-root}/collections/{id}/x-mitra-changes/
// ?after=SEQ&limit=N answers every add (a new object, a new version, a
// revocation) and delete of the collection, in change-log order, for the
// versions the caller may read (access.Decide, as GET objects). Federation
// peers follow it to mirror a collection. The README documents it under
// "Federation".

// Change-feed page sizes.
const (
	defaultChangesLimit = 1000
	maxChangesLimit     = 10000
)

// changeItem is one change as the feed sends it.
type changeItem struct {
	Seq       int64          `json:"seq"`
	Op        store.ChangeOp `json:"op"`
	ID        string         `json:"id"`
	Version   string         `json:"version"`
	DateAdded string         `json:"date_added,omitempty"`
}

func (s *Server) changes(w http.ResponseWriter, r *http.Request, p *access.Principal) error {
	c, read, _, err := s.collectionFor(r.Context(), r, p)
	if err != nil {
		return err
	}
	if !read {
		// A collection the caller cannot read answers like a missing one:
		// the feed names objects, and may only to readers.
		return notFound("collection")
	}
	after, limit, err := changesParams(r)
	if err != nil {
		return err
	}
	page, err := s.cfg.Store.ChangeFeed(r.Context(), c.ID, after, limit, visible(p, c))
	if errors.Is(err, store.ErrPositionExpired) {
		return &Error{Status: http.StatusGone, Title: "position expired",
			Description: fmt.Sprintf("the change log no longer holds the changes after %d: the oldest change kept is %d; synchronise the whole collection again, then follow the feed after %d (details.latest, the newest change now)", after, page.Oldest, page.Latest),
			Details:     map[string]any{"oldest": page.Oldest, "latest": page.Latest}}
	}
	if err != nil {
		return err
	}
	// The same redaction of anonymous sightings and the same audit of
	// AMBER+STRICT/RED reads as GET objects.
	added := &store.Page{}
	var at []int
	for i, f := range page.Changes {
		if f.Op == store.OpAdd {
			added.Entries = append(added.Entries, f.Entry)
			at = append(at, i)
		}
	}
	if err := s.afterRead(r, p, c, added); err != nil {
		return err
	}
	items := make([]changeItem, len(page.Changes))
	for i, f := range page.Changes {
		items[i] = changeItem{Seq: f.Seq, Op: f.Op, ID: f.ObjectID, Version: f.VersionRaw}
	}
	if s.cfg.Outgoing != nil {
		// Tombstones name objects under the ids their adds were served
		// under (Config.Outgoing rewrites ids too).
		var tombs []store.Entry
		var ti []int
		for i, f := range page.Changes {
			if f.Op == store.OpDelete {
				// The feed gives a tombstone the inputs of the access
				// decision about the version it removed, and no body.
				e := f.Entry
				e.ID, e.Raw = f.ObjectID, nil
				tombs, ti = append(tombs, e), append(ti, i)
			}
		}
		if len(tombs) > 0 {
			if err := s.cfg.Outgoing(r.Context(), p, c, tombs); err != nil {
				return err
			}
			for j, i := range ti {
				items[i].ID = tombs[j].ID
			}
		}
	}
	raws := make([][]byte, len(page.Changes))
	for j, i := range at {
		e := added.Entries[j]
		items[i].ID = e.ID // as Config.Outgoing may have rewritten it
		items[i].DateAdded = formatTime(e.DateAdded)
		raws[i] = e.Raw
	}
	b, err := encodeChanges(items, raws, page)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", MediaType)
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b.Bytes())
	return err
}

// encodeChanges writes a page with each object's bytes as stored
// (encoding/json would compact them). Items are written as json.Marshal
// writes changeItem (TestEncodeChangesMatchesMarshal), without its
// reflection: the feed serves every object a mirror stores.
func encodeChanges(items []changeItem, raws [][]byte, page *store.FeedPage) (*bytes.Buffer, error) {
	// The items' heads first, so that the buffer has the page's size
	// exactly: growing a page of megabytes (a guess per item fell short)
	// cleared and copied it again, 2 µs per object served.
	var heads []byte
	ends := make([]int, len(items))
	size := 128
	for i, it := range items {
		var err error
		if heads, err = appendChangeItem(heads, it); err != nil {
			return nil, fmt.Errorf("change feed: %w", err)
		}
		ends[i] = len(heads)
		size += 1 + len(`,"object":`) + len(raws[i])
	}
	b := bytes.NewBuffer(make([]byte, 0, size+len(heads)))
	b.WriteString(`{"changes":[`)
	start := 0
	for i := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		head := heads[start:ends[i]]
		start = ends[i]
		if raws[i] == nil {
			b.Write(head)
			continue
		}
		b.Write(head[:len(head)-1]) // without the closing brace
		b.WriteString(`,"object":`)
		b.Write(raws[i])
		b.WriteByte('}')
	}
	fmt.Fprintf(b, `],"more":%t,"next":%d,"oldest":%d,"latest":%d}`, page.More, page.Next, page.Oldest, page.Latest)
	return b, nil
}

// appendChangeItem appends it to dst as json.Marshal encodes it.
func appendChangeItem(dst []byte, it changeItem) ([]byte, error) {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendInt(dst, it.Seq, 10)
	var err error
	for _, f := range [...]struct {
		name, v string
	}{{`,"op":`, string(it.Op)}, {`,"id":`, it.ID}, {`,"version":`, it.Version}, {`,"date_added":`, it.DateAdded}} {
		if f.v == "" && f.name == `,"date_added":` {
			continue // omitempty
		}
		dst = append(dst, f.name...)
		if dst, err = appendJSONString(dst, f.v); err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

// appendJSONString appends s as a JSON string, as json.Marshal writes it:
// plainly when no byte needs escaping (ids and timestamps), else by
// json.Marshal itself (HTML characters, control characters, non-ASCII).
func appendJSONString(dst []byte, s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, err := json.Marshal(s)
			return append(dst, q...), err
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"'), nil
}

// changesParams reads after (default 0) and limit (default 1000, at most
// 10000).
func changesParams(r *http.Request) (after int64, limit int, err error) {
	q := r.URL.Query()
	limit = defaultChangesLimit
	if v := q.Get("after"); v != "" {
		after, err = strconv.ParseInt(v, 10, 64)
		if err != nil || after < 0 {
			return 0, 0, badRequest("after must be a change sequence number (an integer from 0), not " + strconv.Quote(v))
		}
	}
	if v := q.Get("limit"); v != "" {
		limit, err = strconv.Atoi(v)
		if err != nil || limit < 1 {
			return 0, 0, badRequest("limit must be a positive integer, not " + strconv.Quote(v))
		}
		limit = min(limit, maxChangesLimit)
	}
	return after, limit, nil
}
