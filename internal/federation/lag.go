package federation

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxiiclient"
)

// LagUnknown is the object lag of a link that cannot know it: a pull link
// that polls added_after (a TAXII server says nothing of what it has not
// sent), or one that has not run yet.
const LagUnknown = -1

// behind is how many changes of the peer's feed a pull link has not
// applied: the feed's head as last seen minus the position.
func (f *feedPuller) behind() int64 {
	return max(f.head-f.pos.Seq, 0)
}

// seeHead records the feed's head as a page shows it: its latest change
// when the server says, else its last position when nothing more follows.
func (f *feedPuller) seeHead(page *taxiiclient.ChangesPage) {
	h := page.Latest
	if h == 0 && !page.More {
		h = page.Next
	}
	f.head = max(f.head, h)
}

// LagStore is what PushLag needs of the local store.
type LagStore interface {
	store.Updater
	QueryObjects(ctx context.Context, collectionID string, q store.Query) (*store.Page, error)
	GetCollection(ctx context.Context, idOrAlias string) (*store.Collection, error)
	GroupsOf(ctx context.Context, org string) ([]string, error)
}

// PushLag counts the local objects a push link has not sent yet: those
// added to its collection after its stored position that the peer's
// organisation may read (access.Decide) and that did not come from it.
func PushLag(ctx context.Context, st LagStore, p *store.Peer, l *store.Link) (int64, error) {
	col, err := st.GetCollection(ctx, l.Local)
	if err != nil {
		return 0, err
	}
	groups, err := st.GroupsOf(ctx, p.Organisation)
	if err != nil {
		return 0, err
	}
	pr := &access.Principal{User: "peer:" + p.Name, Organisation: p.Organisation, Groups: groups, Role: access.RoleReadOnly}
	var pos pushPosition
	err = st.Update(ctx, col.ID, func(ctx context.Context, tx store.Tx) error {
		b, err := tx.Cursor(ctx, CursorKeyOf(l.ID))
		if err != nil || len(b) == 0 {
			return err
		}
		return json.Unmarshal(b, &pos)
	})
	if err != nil {
		return 0, fmt.Errorf("link %s: read push position: %w", l.ID, err)
	}
	return countAfter(ctx, st, col, pos.After, func(e *store.Entry) bool {
		return e.Submitter != p.Organisation && access.Decide(pr, col, e).Allowed
	})
}

// countAfter counts the entries of col added after after that visible
// admits.
func countAfter(ctx context.Context, st interface {
	QueryObjects(ctx context.Context, collectionID string, q store.Query) (*store.Page, error)
}, col *store.Collection, after time.Time, visible func(*store.Entry) bool) (int64, error) {
	var n int64
	for {
		page, err := st.QueryObjects(ctx, col.ID, store.Query{AddedAfter: after, Limit: 1000, Visible: visible})
		if err != nil {
			return n, err
		}
		n += int64(len(page.Entries))
		if !page.More || len(page.Entries) == 0 {
			return n, nil
		}
		after = page.Entries[len(page.Entries)-1].DateAdded
	}
}
