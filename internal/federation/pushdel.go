package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxiiclient"
)

// Push links carry deletions (issue 14: every add, new version,
// revocation and delete crosses). A push link follows its local
// collection's change log from a position of its own (deletesPosition,
// stored per link) and sends, for each tombstone of a version the peer's
// organisation could read (access.Decide on what the change log recorded
// of the deleted version: type, submitter, TLP, recipients), a TAXII 2.1
// DELETE of that version (§5.7, match[version]). What the peer could not
// read never leaves, not even its id; what came from the peer was never
// pushed and is not deleted there.
//
// The adds follow date_added (the push position) and the deletions the
// change log, two positions, so a kill -9 between them is harmless: a
// DELETE sent again is answered 404 (gone), which counts as done, and a
// version deleted and then stored again is not deleted at the peer (the
// add position sends it, or did).

// deletesPosition is where a link's DELETEs stand in the local
// collection's change log.
type deletesPosition struct {
	Seq int64 `json:"seq"`
	// All is set on push links that send every deletion (a position
	// without it was a push link's, for feedback only: it starts again from
	// the oldest change kept, so deletions it passed over are sent).
	All bool `json:"all,omitempty"`
	// Sent counts the deletions a push link has sent (remote 404 included).
	Sent int64 `json:"sent,omitempty"`
}

func deletesKey(linkID string) string { return CursorKeyOf(linkID) + "/deletes" }

// PushDeletions is a push link's stored deletions position: the change log
// sequence number it has sent deletions up to and how many it sent (zero
// before its first run).
func PushDeletions(ctx context.Context, st store.Updater, collectionID, linkID string) (seq, sent int64, err error) {
	pos, err := readDeletesPosition(ctx, st, collectionID, linkID)
	return pos.Seq, pos.Sent, err
}

// readDeletesPosition reads a link's deletions position (zero before its
// first run).
func readDeletesPosition(ctx context.Context, st store.Updater, collectionID, linkID string) (deletesPosition, error) {
	var pos deletesPosition
	err := st.Update(ctx, collectionID, func(ctx context.Context, tx store.Tx) error {
		b, err := tx.Cursor(ctx, deletesKey(linkID))
		if err != nil || len(b) == 0 {
			return err
		}
		return json.Unmarshal(b, &pos)
	})
	if err != nil {
		return pos, fmt.Errorf("link %s: read deletions position: %w", linkID, err)
	}
	return pos, nil
}

// saveDeletesPosition stores a link's deletions position together with
// the rejections of the DELETEs the remote refused for good.
func saveDeletesPosition(ctx context.Context, st store.Updater, collectionID, linkID string, pos deletesPosition, refused []store.Rejection) error {
	b, _ := json.Marshal(pos)
	err := st.Update(ctx, collectionID, func(ctx context.Context, tx store.Tx) error {
		if ftx, ok := tx.(store.FederationTx); ok && len(refused) > 0 {
			if err := ftx.RecordRejections(ctx, refused); err != nil {
				return err
			}
		}
		return tx.SetCursor(ctx, deletesKey(linkID), b)
	})
	if err != nil {
		return fmt.Errorf("link %s: store deletions position: %w", linkID, err)
	}
	return nil
}

// pushDeletes sends the peer the deletions made in the local collection
// since the link's stored position: versions the link pushed or could
// have pushed (reader may read them; not the peer's own), each as a
// DELETE of that version, feedback under the id the peer knows it by. The
// position moves after each page, in the store; pushed tells whether the
// link has pushed anything yet (a link that has not starts at the end of
// the log: what was deleted before never reached the peer); sends is what
// the link's adds send.
func (r *Runner) pushDeletes(ctx context.Context, cl *taxiiclient.Client, p *store.Peer, l *store.Link, col *store.Collection, reader *access.Principal, fb *feedback, sends func(*store.Entry) bool, pushed bool) (int, error) {
	feed, ok := r.Store.(store.Feed)
	if !ok {
		return 0, nil
	}
	pos, err := readDeletesPosition(ctx, r.Store, col.ID, l.ID)
	if err != nil {
		return 0, err
	}
	save := func(next deletesPosition, refused []store.Rejection) error {
		if err := saveDeletesPosition(ctx, r.Store, col.ID, l.ID, next, refused); err != nil {
			return err
		}
		pos = next
		return nil
	}
	if !pos.All {
		next := deletesPosition{All: true, Sent: pos.Sent}
		if !pushed {
			// Nothing sent yet: no deletion so far concerns the peer.
			head, err := feed.ChangeFeed(ctx, col.ID, math.MaxInt64, 1, func(*store.Entry) bool { return false })
			if err != nil {
				return 0, fmt.Errorf("link %s: change log head: %w", l.ID, err)
			}
			next.Seq = head.Latest
		}
		// Stored before anything is pushed, so that a run cut after its
		// first envelope does not start from the oldest change next time.
		if err := save(next, nil); err != nil {
			return 0, err
		}
	}
	visible := func(e *store.Entry) bool {
		// Tombstones only (they have no body): the adds are the push
		// position's.
		return e.Raw == nil && e.Submitter != p.Organisation && access.Decide(reader, col, e).Allowed
	}
	limit := deletionsPageLimit
	if r.FeedPageLimit > 0 {
		limit = min(limit, r.FeedPageLimit)
	}
	sent := 0
	for {
		page, err := deletionPage(ctx, feed, col.ID, pos.Seq, limit, visible)
		if errors.Is(err, store.ErrPositionExpired) && page != nil {
			// Retention passed the position (the link did not run for
			// longer than it keeps): the deletions pruned are lost to this
			// link, which goes on from the oldest change kept.
			r.log().Warn("push link: deletions pruned before they were sent", "peer", p.Name, "link", l.ID, "position", pos.Seq, "oldest", page.Oldest)
			pos.Seq = page.Oldest - 1
			continue
		}
		if err != nil {
			return sent, err
		}
		targets, err := r.deleteTargets(ctx, col, p, fb, sends, page.Changes)
		if err != nil {
			return sent, err
		}
		done, refused, err := r.deleteTargetsAt(ctx, cl, p, l, targets)
		sent += len(done)
		if err != nil {
			return sent, err
		}
		if len(done) > 0 {
			if err := r.Store.AppendAudit(ctx, store.AuditRecord{Principal: "peer:" + p.Name, Organisation: p.Organisation, Action: "objects.push",
				Path: "peer push deletes " + cl.ObjectsURL, Collection: col.ID, Objects: dedupe(done),
				Detail: fmt.Sprintf("link %s: %d deleted versions deleted at the peer", l.ID, len(done))}); err != nil {
				return sent, err
			}
		}
		if page.Next <= pos.Seq {
			return sent, nil
		}
		if err := save(deletesPosition{Seq: page.Next, All: true, Sent: pos.Sent + int64(len(done))}, refused); err != nil {
			return sent, err
		}
		if !page.More {
			return sent, nil
		}
	}
}

// deletionPage reads the tombstones after position after that visible
// admits: from the store's deletion feed when it has one (the adds'
// bodies are not read), else from the change feed, whose adds visible
// never sees.
func deletionPage(ctx context.Context, feed store.Feed, collectionID string, after int64, limit int, visible func(*store.Entry) bool) (*store.FeedPage, error) {
	if df, ok := feed.(store.DeletionFeed); ok {
		return df.DeletionFeed(ctx, collectionID, after, limit, visible)
	}
	return feed.ChangeFeed(ctx, collectionID, after, limit, func(e *store.Entry) bool {
		return e.Raw == nil && visible(e) // a delete has no body
	})
}

// deleteTarget is one DELETE a push link sends: the id the peer knows the
// object by, the deleted version, and the local id (for the audit log).
type deleteTarget struct {
	id, version, local string
}

// deleteTargetsAt sends each target's DELETE to the peer (deleteAt):
// done are the local ids of the versions gone there, refused the lasting
// refusals. An error stops at that target, with what was done before it.
func (r *Runner) deleteTargetsAt(ctx context.Context, cl *taxiiclient.Client, p *store.Peer, l *store.Link, targets []deleteTarget) (done []string, refused []store.Rejection, err error) {
	for _, t := range targets {
		ok, rej, err := r.deleteAt(ctx, cl, p, l, t.id, t.version)
		switch {
		case err != nil:
			return done, refused, err
		case ok:
			done = append(done, t.local)
		default:
			refused = append(refused, rej)
		}
	}
	return done, refused, nil
}

// deleteTargets turns a page of visible tombstones into the DELETEs to
// send. A version stored again since its deletion, in a form the link
// sends (sends), is left alone: the push position sends it again, or did
// (when it was stored again between a run's deletions and its adds). Local feedback goes under the id
// the peer received it by: the per-peer id when it was rewritten (a mark
// names peers), its own when it was about no peer's object (a plain
// mark); feedback deleted without either mark (before marks existed) is
// not sent, since its local id may be one the peer never saw.
func (r *Runner) deleteTargets(ctx context.Context, col *store.Collection, p *store.Peer, fb *feedback, sends func(*store.Entry) bool, changes []store.FeedEntry) ([]deleteTarget, error) {
	var ids, feedbackIDs []string
	seen := map[string]bool{}
	for _, c := range changes {
		if c.Op != store.OpDelete || seen[c.ObjectID] {
			continue
		}
		seen[c.ObjectID] = true
		ids = append(ids, c.ObjectID)
		if isFeedback(c.Entry.Type) && fb.local(&c.Entry) {
			feedbackIDs = append(feedbackIDs, c.ObjectID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	stored, err := storedVersions(ctx, r.Store, col.ID, ids, sends)
	if err != nil {
		return nil, err
	}
	marks, err := deletedMarks(ctx, r.Store, col.ID, feedbackIDs)
	if err != nil {
		return nil, err
	}
	plain := map[string]bool{}
	err = r.Store.Update(ctx, col.ID, func(ctx context.Context, tx store.Tx) error {
		for _, id := range feedbackIDs {
			if _, ok := marks[id]; ok {
				continue
			}
			b, err := tx.Cursor(ctx, plainDeletedKey(id))
			if err != nil {
				return err
			}
			plain[id] = len(b) > 0
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("federation: deleted feedback marks: %w", err)
	}
	var out []deleteTarget
	for _, c := range changes {
		if c.Op != store.OpDelete || stored[c.ObjectID+"|"+c.VersionRaw] {
			continue
		}
		id := c.ObjectID
		if isFeedback(c.Entry.Type) && fb.local(&c.Entry) {
			switch {
			case len(marks[id]) > 0:
				id = peerID(fb.key, p.Name, id)
			case !plain[id]:
				continue
			}
		}
		out = append(out, deleteTarget{id: id, version: c.VersionRaw, local: c.ObjectID})
	}
	return out, nil
}

// storedVersions returns the versions of ids the collection holds now
// that sends admits, as "id|version". The store shows every version to
// Visible, which records it and keeps none: one scan, with no page
// boundary to fall between versions sharing a date_added.
func storedVersions(ctx context.Context, st interface {
	QueryObjects(ctx context.Context, collectionID string, q store.Query) (*store.Page, error)
}, collectionID string, ids []string, sends func(*store.Entry) bool) (map[string]bool, error) {
	out := map[string]bool{}
	_, err := st.QueryObjects(ctx, collectionID, store.Query{IDs: ids, Limit: 1, WithBody: true, Versions: store.VersionFilter{All: true},
		Visible: func(e *store.Entry) bool {
			if sends(e) {
				out[e.ID+"|"+e.VersionRaw] = true
			}
			return false
		}})
	if err != nil {
		return nil, fmt.Errorf("federation: versions stored: %w", err)
	}
	return out, nil
}
