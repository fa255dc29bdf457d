package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
)

// feedCols are a change record and, for an add, the version it added
// (found by its date_added, which the add record keeps as its time; absent
// when the version has been deleted since).
const feedCols = `c.seq, c.op, c.object_id, c.version_raw, c.at, c.type, c.submitter, c.tlp, c.recipients,
	COALESCE(o.rid, 0), COALESCE(o.type, ''), COALESCE(o.spec_version, ''), COALESCE(o.submitter, ''), COALESCE(o.tlp, 0), COALESCE(o.recipients, '[]'), o.body`

// deleteCols are feedCols for a delete record, which adds no version.
const deleteCols = `c.seq, c.op, c.object_id, c.version_raw, c.at, c.type, c.submitter, c.tlp, c.recipients,
	0, '', '', '', 0, '[]', NULL`

// ChangeFeed implements store.Feed. Like QueryObjects with a Visible
// filter, it reads the log in chunks, each starting after the last record
// read, until limit+1 visible records are found or the log ends. Writers
// number records under the collection's lock and commit in that order, so
// a chunk never sees a record without every earlier one. Retention only
// removes a prefix of the log, so checking the oldest kept record after
// the scan tells whether anything after the position was pruned.
func (s *Store) ChangeFeed(ctx context.Context, collectionID string, after int64, limit int, visible func(*store.Entry) bool) (*store.FeedPage, error) {
	return s.feed(ctx, collectionID, after, limit, visible, false)
}

// DeletionFeed implements store.DeletionFeed: ChangeFeed's scan over the
// delete records alone, without the join that reads added versions'
// bodies.
func (s *Store) DeletionFeed(ctx context.Context, collectionID string, after int64, limit int, visible func(*store.Entry) bool) (*store.FeedPage, error) {
	return s.feed(ctx, collectionID, after, limit, visible, true)
}

func (s *Store) feed(ctx context.Context, collectionID string, after int64, limit int, visible func(*store.Entry) bool, deletesOnly bool) (*store.FeedPage, error) {
	cid, err := collectionKey(ctx, s.db, collectionID)
	if err != nil {
		return nil, err
	}
	if limit <= 0 || limit > maxPage {
		limit = maxPage
	}
	page := &store.FeedPage{Changes: make([]store.FeedEntry, 0, min(limit, 1024)), Next: after}
	if err := s.checkPosition(ctx, cid, collectionID, after, page); err != nil {
		return page, err // fail fast: no scan for a reader that must resync
	}
	// Every change up to latest was committed before the scan began
	// (numbered under the collection's lock, committed in order).
	latest := page.Latest
	chunk := limit + 1
	if visible != nil {
		chunk = max(chunk, 256)
	}
	cursor := after
	for {
		n, done, err := s.feedChunk(ctx, cid, &cursor, chunk, limit, visible, page, deletesOnly)
		if err != nil {
			return nil, err
		}
		if done || n < chunk {
			break
		}
	}
	switch {
	case page.More:
		page.Next = page.Changes[len(page.Changes)-1].Seq
	case deletesOnly:
		// The scan saw only deletes; the adds up to latest are past too.
		page.Next = max(cursor, latest)
	default:
		// Past hidden records at the end too: the reader learns only that
		// positions were skipped.
		page.Next = cursor
	}
	if err := s.checkPosition(ctx, cid, collectionID, after, page); err != nil {
		return page, err
	}
	return page, nil
}

// checkPosition sets page.Oldest and page.Latest and refuses a position
// retention has passed.
func (s *Store) checkPosition(ctx context.Context, cid int64, collectionID string, after int64, page *store.FeedPage) error {
	err := s.db.QueryRow(ctx, `SELECT COALESCE((SELECT MIN(seq) FROM changes WHERE cid = ?), last_seq + 1), last_seq FROM collections WHERE cid = ?`, cid, cid).Scan(&page.Oldest, &page.Latest)
	if noRows(err) {
		return fmt.Errorf("collection %s: %w", collectionID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("change feed: %w", err)
	}
	if after < page.Oldest-1 {
		return fmt.Errorf("collection %s: changes after %d were pruned, the oldest kept is %d: %w", collectionID, after, page.Oldest, store.ErrPositionExpired)
	}
	return nil
}

// feedChunk reads up to chunk records after *cursor into page, advancing
// *cursor to the last record read. It returns the number of records read
// and whether the page is complete (limit records and a further visible
// one, which sets More).
func (s *Store) feedChunk(ctx context.Context, cid int64, cursor *int64, chunk, limit int, visible func(*store.Entry) bool, page *store.FeedPage, deletesOnly bool) (int, bool, error) {
	q := `SELECT ` + feedCols + ` FROM changes c
		LEFT JOIN objects o ON c.op = 'add' AND o.cid = c.cid AND o.date_added = c.at AND o.id = c.object_id
		WHERE c.cid = ? AND c.seq > ? ORDER BY c.seq LIMIT ?`
	if deletesOnly {
		q = `SELECT ` + deleteCols + ` FROM changes c
		WHERE c.cid = ? AND c.seq > ? AND c.op = 'delete' ORDER BY c.seq LIMIT ?`
	}
	rows, err := s.db.Query(ctx, q, cid, *cursor, chunk)
	if err != nil {
		return 0, false, fmt.Errorf("change feed: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
		var f store.FeedEntry
		var op, cType, cSub, cRecips, oType, oSpec, oSub, oRecips string
		var at, rid int64
		var cTLP, oTLP int
		var body []byte
		if err := rows.Scan(&f.Seq, &op, &f.ObjectID, &f.VersionRaw, &at, &cType, &cSub, &cTLP, &cRecips,
			&rid, &oType, &oSpec, &oSub, &oTLP, &oRecips, &body); err != nil {
			return 0, false, fmt.Errorf("change feed: %w", err)
		}
		*cursor = f.Seq
		f.Op, f.At = store.ChangeOp(op), fromMicros(at)
		e := &f.Entry
		e.ID, e.VersionRaw, e.DateAdded = f.ObjectID, f.VersionRaw, f.At
		recips := cRecips
		switch f.Op {
		case store.OpAdd:
			if rid == 0 {
				continue // deleted since: its tombstone follows
			}
			e.Type, e.SpecVersion, e.Submitter, e.TLP, e.Raw = oType, oSpec, oSub, oTLP, body
			recips = oRecips
		case store.OpDelete:
			e.Type, e.Submitter, e.TLP = cType, cSub, cTLP
		default:
			continue // an operation this binary does not know: not served
		}
		if e.Recipients, err = parseList(recips); err != nil {
			return 0, false, fmt.Errorf("change feed: recipients of %s: %w", e.ID, err)
		}
		if visible != nil && !visible(e) {
			continue
		}
		if len(page.Changes) == limit {
			page.More = true
			return n, true, nil
		}
		page.Changes = append(page.Changes, f)
	}
	if err := rows.Err(); err != nil {
		return 0, false, fmt.Errorf("change feed: %w", err)
	}
	return n, false, nil
}

// tlpUnrecorded is the TLP column of change records without decision
// inputs (migration 4's default): a marking the server cannot resolve,
// which with no submitter no reader may see.
const tlpUnrecorded = 6

// queueTombstones queues delete records with the inputs of the access
// decision about the version each removed (ChangeFeed serves a tombstone
// only to readers of that version). A record without them (Deleted nil)
// gets the column defaults: nobody's.
func queueTombstones(b *Batch, cid int64, tombs []store.Change) {
	for _, t := range tombs {
		d := t.Deleted
		if d == nil {
			d = &store.Entry{TLP: tlpUnrecorded}
		}
		b.Queue(`INSERT INTO changes (cid, seq, op, object_id, version_raw, at, type, submitter, tlp, recipients) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			cid, t.Seq, string(store.OpDelete), t.ObjectID, t.VersionRaw, micros(t.At), d.Type, d.Submitter, d.TLP, JSONList(d.Recipients))
	}
}

// PruneChanges implements store.ChangeRetention: per collection, every
// record up to the last one older than before goes, so that what is kept
// is an unbroken run up to the newest even where record times are not in
// sequence order.
func (s *Store) PruneChanges(ctx context.Context, before time.Time) (int64, error) {
	type mark struct{ cid, seq int64 }
	rows, err := s.db.Query(ctx, `SELECT cid, MAX(seq) FROM changes WHERE at < ? GROUP BY cid`, micros(before))
	marks, err := collect(rows, err, "prune changes", func(r Row) (mark, error) {
		var m mark
		return m, r.Scan(&m.cid, &m.seq)
	})
	if err != nil {
		return 0, err
	}
	var total int64
	for _, m := range marks {
		n, err := s.db.Exec(ctx, `DELETE FROM changes WHERE cid = ? AND seq <= ?`, m.cid, m.seq)
		if err != nil {
			return total, fmt.Errorf("prune changes: %w", err)
		}
		total += n
	}
	return total, nil
}

var _ store.DeletionFeed = (*Store)(nil)
