package federation

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxii"
	"github.com/mitra-cert/mitra/internal/taxiiclient"
)

// Pull link modes.
const (
	// ModeFeed follows the remote's change feed (a Mitra peer): adds,
	// revocations and deletes cross the border.
	ModeFeed = "feed"
	// ModePoll polls the remote with added_after (any TAXII 2.1 server):
	// deletes do not cross.
	ModePoll = "poll"
)

// Deleter deletes local copies of objects deleted on the peer.
type Deleter interface {
	DeleteObject(ctx context.Context, collectionID, objectID string, q store.Query) (int, error)
}

// feedPageLimit is the page size asked of the change feed: the largest a
// Mitra serves. A page is written in one transaction (or several pages,
// see feedGroupPages), and on SQLite a commit costs by the index pages it
// dirties and its fsync: a mirror of 300,000 objects ran at 8,400
// objects/s with pages of 2,000 and 12,200 with pages of 10,000 (mitra
// bench federation).
const feedPageLimit = 10000

// deletionsPageLimit is how many changes of the local change log a push
// link reads at a time for its DELETEs: its position moves after each
// such page, so after a crash at most this many DELETEs go again.
const deletionsPageLimit = 500

// FeedPosition is a pull link's stored mode and change-feed position.
type FeedPosition struct {
	// Mode is ModeFeed or ModePoll, decided by the first run's probe.
	Mode string `json:"mode"`
	// Seq is the last change applied.
	Seq int64 `json:"seq"`
	// Resync, when set, is the position to continue from once the full
	// resynchronisation in progress (after a 410) completes.
	Resync int64 `json:"resync,omitempty"`
	// Resyncs counts completed resynchronisations; LastResync is the last.
	Resyncs    int       `json:"resyncs,omitempty"`
	LastResync time.Time `json:"last_resync,omitzero"`
}

// feedKey is the store key of a pull link's FeedPosition.
func feedKey(linkID string) string { return CursorKeyOf(linkID) + "/feed" }

// resyncKey is the store key of the added_after cursor of a link's
// resynchronisation.
func resyncKey(linkID string) string { return CursorKeyOf(linkID) + "/resync" }

// LinkMode reads a pull link's stored mode and position (Mode "" before
// its first run).
func LinkMode(ctx context.Context, st store.Updater, collectionID, linkID string) (FeedPosition, error) {
	var pos FeedPosition
	err := st.Update(ctx, collectionID, func(ctx context.Context, tx store.Tx) error {
		b, err := tx.Cursor(ctx, feedKey(linkID))
		if err != nil || len(b) == 0 {
			return err
		}
		return json.Unmarshal(b, &pos)
	})
	if err != nil {
		return pos, fmt.Errorf("link %s: read feed position: %w", linkID, err)
	}
	return pos, nil
}

// feedPuller applies a remote change feed to a local collection.
type feedPuller struct {
	*Puller
	local  FeedStore
	log    *slog.Logger
	key    string
	limit  int
	stored []byte // the position as last read or committed
	// pos is written by the writer goroutine only (setPos), under mu; the
	// fetcher reads it under mu, and waits on wake, which setPos closes
	// and replaces.
	mu   sync.Mutex
	pos  FeedPosition
	wake chan struct{}
	head int64 // the newest change of the peer's feed seen (lag.go)
	// ahead is the bytes and the pages fetched and not written yet,
	// under mu: the fetcher reads on while they are under aheadBytes and
	// feedAheadPages (and waits on wake, which the writer closes as it
	// takes some off).
	ahead      room
	aheadBytes int // the bound
	// taken is what the writer's group holds of ahead until it lets it
	// go (release); only the writer touches it.
	taken room
}

// room is an amount of the fetcher's bounds: bytes and pages.
type room struct{ size, pages int }

// setPos commits pos (with fn's writes) if the stored position is still
// the one this run last saw.
func (f *feedPuller) setPos(ctx context.Context, pos FeedPosition, fn func(ctx context.Context, tx store.Tx) error) error {
	b, err := json.Marshal(pos)
	if err != nil {
		return err
	}
	err = f.Store.Update(ctx, f.Collection.ID, func(ctx context.Context, tx store.Tx) error {
		now, err := tx.Cursor(ctx, f.key)
		if err != nil {
			return err
		}
		if !bytes.Equal(now, f.stored) {
			return ErrConcurrentPull
		}
		if fn != nil {
			if err := fn(ctx, tx); err != nil {
				return err
			}
		}
		return tx.SetCursor(ctx, f.key, b)
	})
	if err != nil {
		return fmt.Errorf("link %s: store feed position: %w", f.Link.ID, err)
	}
	f.mu.Lock()
	f.stored, f.pos = b, pos
	f.broadcast()
	f.mu.Unlock()
	return nil
}

// broadcast wakes the fetcher's waits; f.mu is held.
func (f *feedPuller) broadcast() {
	close(f.wake)
	f.wake = make(chan struct{})
}

// release gives the fetcher back the room of the group being written
// (f.taken), once. The writer calls it as soon as the group's statements
// have run, before its COMMIT: the fetcher then reads and checks the
// next pages while the commit writes the WAL and waits for its fsync,
// when neither the writer nor the search indexer (which follows the
// commits) has work for a core. Released at the commit's return, that
// fetching fell at the start of the next transaction instead, competing
// with the writer, while the cores waited out every fsync. So the bounds
// hold for the pages fetched and not yet written but for the group being
// committed, which is in memory until its commit returns: one group more.
func (f *feedPuller) release() {
	if f.taken == (room{}) {
		return
	}
	f.mu.Lock()
	f.ahead.size -= f.taken.size
	f.ahead.pages -= f.taken.pages
	f.broadcast()
	f.mu.Unlock()
	f.taken = room{}
}

// waitRoom waits until the pages fetched ahead and not written are fewer
// than feedAheadPages and hold less than f.aheadBytes; false when ctx
// ends first.
func (f *feedPuller) waitRoom(ctx context.Context) bool {
	for {
		f.mu.Lock()
		ahead, wake := f.ahead, f.wake
		f.mu.Unlock()
		if ahead.size < f.aheadBytes && ahead.pages < feedAheadPages {
			return true
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return false
		}
	}
}

// pullLink runs a pull link: by the change feed when the remote offers
// it, else by added_after polling. The first run probes the feed once and
// stores the mode.
func (r *Runner) pullLink(ctx context.Context, pl *Puller, local FeedStore) (PullStats, error) {
	if _, write := access.CollectionAccess(pl.Principal, pl.Collection); !write {
		return PullStats{Behind: LagUnknown}, fmt.Errorf("collection %s: organisation %s may not write to it: %w", pl.Collection.ID, pl.Principal.Organisation, store.ErrForbidden)
	}
	f := &feedPuller{Puller: pl, local: local, log: r.log(), key: feedKey(pl.Link.ID), limit: r.FeedPageLimit, wake: make(chan struct{}),
		aheadBytes: cmp.Or(r.FeedAheadBytes, feedAheadBytes)}
	if f.limit <= 0 {
		f.limit = feedPageLimit
	}
	err := pl.Store.Update(ctx, pl.Collection.ID, func(ctx context.Context, tx store.Tx) error {
		var err error
		f.stored, err = tx.Cursor(ctx, f.key)
		return err
	})
	if err != nil {
		return PullStats{Behind: LagUnknown}, fmt.Errorf("link %s: read feed position: %w", pl.Link.ID, err)
	}
	if len(f.stored) > 0 {
		if err := json.Unmarshal(f.stored, &f.pos); err != nil {
			return PullStats{Behind: LagUnknown}, fmt.Errorf("link %s: feed position: %w", pl.Link.ID, err)
		}
	}
	if f.pos.Mode == "" {
		// Only a 404 of the feed of a collection we can read means "no
		// feed": the collection is read first.
		if _, err := pl.Client.Collection(ctx); err != nil {
			return PullStats{Behind: LagUnknown}, fmt.Errorf("link %s: remote collection: %w", pl.Link.ID, err)
		}
		_, err := pl.Client.Changes(ctx, "", 0, 1)
		var te *taxiiclient.Error
		switch {
		case errors.As(err, &te) && te.Status == http.StatusNotFound && !errors.Is(err, taxiiclient.ErrPositionExpired):
			// The collection is readable (pull would fail otherwise) but
			// has no feed: not a Mitra server, or an older one.
			err = f.setPos(ctx, FeedPosition{Mode: ModePoll}, nil)
		case err == nil || errors.Is(err, taxiiclient.ErrPositionExpired):
			err = f.setPos(ctx, FeedPosition{Mode: ModeFeed}, nil)
		}
		if err != nil {
			return PullStats{Behind: LagUnknown}, fmt.Errorf("link %s: probe the change feed: %w", pl.Link.ID, err)
		}
		r.log().Info("peer pull link mode", "peer", pl.Link.Peer, "link", pl.Link.ID, "mode", f.pos.Mode)
	}
	if f.pos.Mode == ModePoll {
		st, err := pl.Run(ctx)
		st.Behind = LagUnknown
		return st, err
	}
	st, err := f.run(ctx)
	st.Behind = f.behind()
	if err != nil && f.head == 0 {
		st.Behind = LagUnknown // the feed was not reached
	}
	return st, err
}

// run follows the feed until it has nothing more.
func (f *feedPuller) run(ctx context.Context) (PullStats, error) {
	var stats PullStats
	if f.pos.Resync > 0 {
		if err := f.resync(ctx, &stats, f.pos.Resync); err != nil {
			return stats, err
		}
	}
	for {
		pages, stop := f.fetchAhead(ctx, f.pos.Seq)
		err := f.follow(ctx, pages, &stats)
		stop()
		var pe *taxiiclient.PositionExpiredError
		if !errors.As(err, &pe) {
			return stats, err
		}
		// The remote pruned the changes after our position: read the
		// collection whole, then follow the feed after its latest.
		f.log.Warn("peer change-feed position expired: full resynchronisation", "peer", f.Link.Peer, "link", f.Link.ID,
			"position", f.pos.Seq, "oldest", pe.Oldest, "latest", pe.Latest)
		next := f.pos
		next.Resync = max(pe.Latest, 1)
		if err := f.setPos(ctx, next, func(ctx context.Context, tx store.Tx) error {
			return tx.SetCursor(ctx, resyncKey(f.Link.ID), nil)
		}); err != nil {
			return stats, err
		}
		if err := f.resync(ctx, &stats, next.Resync); err != nil {
			return stats, err
		}
	}
}

// Pipelining of a feed pull.
const (
	// feedAheadPages is how many pages the fetcher holds read (and
	// checked) and not written yet, those of the group being written
	// included: while a group is written, the next one waits whole.
	feedAheadPages = 2 * feedGroupPages
	// feedGroupPages and feedGroupBytes bound the pages of adds that one
	// transaction writes, when the fetcher is that far ahead (the writer is
	// the bottleneck): on SQLite a commit costs by the index pages it
	// dirties, and once a store is large nearly every new object dirties
	// a page of its own in each id-keyed index, whatever the page size, so
	// fewer, larger commits write less (mirroring 1,000,000 objects, 8 KB
	// a mirrored object instead of 16 with pages of 10,000 written one by
	// one).
	feedGroupPages = 8
	feedGroupBytes = 96 << 20
	// feedAheadBytes bounds the objects fetched ahead and not written yet
	// (their decoded and checked forms take about as much again; the
	// group being committed is held beside them: release): large
	// objects fill it before feedAheadPages do.
	feedAheadBytes = 2 * feedGroupBytes
)

// fetched is a page of the feed as the fetcher hands it over.
type fetched struct {
	page   *taxiiclient.ChangesPage
	checks []taxii.Checked // of the page's runs of adds, when checked ahead
	size   int             // bytes of the page's objects
	err    error
}

// fetchAhead reads the feed after position after in a goroutine of its
// own, up to feedAheadPages pages ahead of their writing, until a page says
// nothing more follows or a read fails (the last value sent). It checks
// each page's adds too, unless a marking definition changes in it, and
// only once every earlier page that changes one has been written (the
// checks resolve markings from the store, so they must see the
// definitions the pages before committed; f.written tells). stop ends it
// and waits for it.
func (f *feedPuller) fetchAhead(ctx context.Context, after int64) (<-chan fetched, func()) {
	fctx, cancel := context.WithCancel(ctx)
	out := make(chan fetched, feedAheadPages)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		var markingsUpTo int64 // the end of the last page that changes a marking definition
		for {
			if !f.waitRoom(fctx) {
				return
			}
			page, err := f.Client.Changes(fctx, "", after, f.limit)
			got := fetched{page: page, err: err}
			if err == nil {
				end := after
				if n := len(page.Changes); n > 0 {
					end = page.Changes[n-1].Seq
				}
				if changesMarkings(page) {
					markingsUpTo = end
				} else if f.waitWritten(fctx, markingsUpTo) {
					got.checks = f.precheck(fctx, page)
				}
				for _, c := range page.Changes {
					got.size += len(c.Object)
				}
				f.mu.Lock()
				f.ahead.size += got.size
				f.ahead.pages++
				f.mu.Unlock()
				after = max(end, page.Next)
			}
			select {
			case out <- got:
			case <-fctx.Done():
				return
			}
			if err != nil || !page.More || len(page.Changes) == 0 {
				return
			}
		}
	}()
	return out, func() {
		cancel()
		<-done
		// The pages fetched and not written are dropped with the run.
		f.mu.Lock()
		f.ahead = room{}
		f.mu.Unlock()
		f.taken = room{}
	}
}

// waitWritten waits until the writer has written the feed up to seq; false
// when ctx ends first.
func (f *feedPuller) waitWritten(ctx context.Context, seq int64) bool {
	for {
		f.mu.Lock()
		written, wake := f.pos.Seq, f.wake
		f.mu.Unlock()
		if written >= seq {
			return true
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return false
		}
	}
}

// follow writes the pages the fetcher hands over until the feed has nothing
// more. Pages of adds checked ahead that are already there when the
// writer is free go in one transaction, up to feedGroupPages and
// feedGroupBytes.
func (f *feedPuller) follow(ctx context.Context, pages <-chan fetched, stats *PullStats) error {
	var held *fetched // a page taken while grouping that could not join
	for {
		var got fetched
		if held != nil {
			got, held = *held, nil
		} else {
			var ok bool
			if got, ok = <-pages; !ok {
				return ctx.Err()
			}
		}
		if got.err != nil {
			return got.err
		}
		// Only the first page and each new one are looked at: the pages
		// joined all have more after them, so the last one's head is the
		// group's.
		parts := []fetched{got}
		size, joins := got.size, groupable(&got)
		for joins && len(parts) < feedGroupPages && parts[len(parts)-1].page.More {
			var next fetched
			var ok bool
			select {
			case next, ok = <-pages:
			default:
			}
			if !ok {
				break
			}
			if next.err != nil || !groupable(&next) || size+next.size > feedGroupBytes {
				held = &next
				break
			}
			parts = append(parts, next)
			size += next.size
		}
		group := joinPages(parts)
		f.seeHead(group.page)
		f.taken = room{group.size, len(parts)}
		if err := f.apply(ctx, group.page, group.checks, stats); err != nil {
			return err
		}
		f.release()
		if !group.page.More || len(group.page.Changes) == 0 {
			return nil
		}
	}
}

// groupable says whether a fetched page can share a transaction with
// others: adds only, checked ahead as one run.
func groupable(g *fetched) bool {
	if len(g.checks) != 1 || len(g.page.Changes) == 0 {
		return false
	}
	for _, c := range g.page.Changes {
		if c.Op != "add" {
			return false
		}
	}
	return true
}

// joinPages joins pages that follow each other into one; all are
// groupable (when more than one), so their checks are of one run each,
// and as their pages change no marking definition, checking them apart is
// checking them together.
func joinPages(parts []fetched) fetched {
	if len(parts) == 1 {
		return parts[0]
	}
	var nc, no int
	for _, p := range parts {
		nc += len(p.page.Changes)
		no += len(p.checks[0].Objects)
	}
	page := *parts[len(parts)-1].page
	page.Changes = make([]taxiiclient.Change, 0, nc)
	checked := taxii.Checked{Objects: make([]store.Object, 0, no)}
	size := 0
	for _, p := range parts {
		page.Changes = append(page.Changes, p.page.Changes...)
		c := p.checks[0]
		checked.Objects = append(checked.Objects, c.Objects...)
		checked.Failures = append(checked.Failures, c.Failures...)
		checked.Relayed = append(checked.Relayed, c.Relayed...)
		size += p.size
	}
	return fetched{page: &page, checks: []taxii.Checked{checked}, size: size}
}

// resync reads the remote collection whole with the added_after pull
// (its own cursor, so an interrupted resync resumes), then sets the
// position to latest.
func (f *feedPuller) resync(ctx context.Context, stats *PullStats, latest int64) error {
	pl := *f.Puller
	pl.Key = resyncKey(f.Link.ID)
	pl.OnPage = nil
	// A resync that starts from scratch in this run sees every object the
	// remote still has; the peer's local copies it did not see were
	// deleted during the gap and are deleted here. A resync resumed after
	// an interruption cannot tell, and leaves them.
	var fresh bool
	if err := f.Store.Update(ctx, f.Collection.ID, func(ctx context.Context, tx store.Tx) error {
		b, err := tx.Cursor(ctx, pl.Key)
		fresh = len(b) == 0
		return err
	}); err != nil {
		return fmt.Errorf("link %s: read resync cursor: %w", f.Link.ID, err)
	}
	seen := map[string]bool{}
	check := pl.Check
	pl.Check = func(ctx context.Context, p *access.Principal, raws []json.RawMessage) (taxii.Checked, error) {
		for _, raw := range raws {
			var o struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(raw, &o) == nil {
				seen[o.ID] = true
			}
		}
		return check(ctx, p, raws)
	}
	st, err := pl.Run(ctx)
	stats.Pages += st.Pages
	stats.Received += st.Received
	stats.Added += st.Added
	stats.Duplicates += st.Duplicates
	stats.Repeated += st.Repeated
	for _, d := range st.Failures {
		stats.refuse(d)
	}
	stats.Refused += st.Refused - len(st.Failures)
	if err != nil {
		return fmt.Errorf("link %s: resynchronisation: %w", f.Link.ID, err)
	}
	if fresh {
		n, err := f.sweep(ctx, seen)
		if err != nil {
			return err
		}
		stats.Deleted += n
	}
	next := f.pos
	next.Seq, next.Resync = latest, 0
	next.Resyncs++
	next.LastResync = f.now().UTC()
	if err := f.setPos(ctx, next, nil); err != nil {
		return err
	}
	stats.Resyncs++
	return nil
}

// sweep deletes the peer's local copies of objects the resync did not
// see. Only objects owned by the peer go (DeleteObject's owner check).
func (f *feedPuller) sweep(ctx context.Context, seen map[string]bool) (int, error) {
	var gone []string
	q := store.Query{Limit: 1000}
	for {
		page, err := f.local.QueryObjects(ctx, f.Collection.ID, q)
		if err != nil {
			return 0, fmt.Errorf("link %s: resync sweep: %w", f.Link.ID, err)
		}
		for _, e := range page.Entries {
			if !seen[e.ID] {
				gone = append(gone, e.ID)
			}
		}
		if !page.More || len(page.Entries) == 0 {
			break
		}
		q.AddedAfter = page.Entries[len(page.Entries)-1].DateAdded
	}
	n := 0
	var deleted []string
	for _, id := range gone {
		k, err := f.local.DeleteObject(ctx, f.Collection.ID, id, store.Query{Owner: PeerOwner(f.Link.Peer), Versions: store.VersionFilter{All: true}})
		switch {
		case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrForbidden):
		case err != nil:
			return n, fmt.Errorf("link %s: resync sweep: delete %s: %w", f.Link.ID, id, err)
		default:
			n += k
			deleted = append(deleted, id)
		}
	}
	if len(deleted) > 0 {
		if err := f.Store.AppendAudit(ctx, store.AuditRecord{Principal: f.Label, Organisation: f.Principal.Organisation, Action: "objects.delete",
			Path: "taxii pull " + f.Client.ObjectsURL, Collection: f.Collection.ID, Objects: deleted,
			Detail: "no longer on the peer (resynchronisation after an expired feed position)"}); err != nil {
			return n, err
		}
	}
	return n, nil
}

// FeedStore is what a feed pull needs of the local store besides
// PullStore: listing the mirror and deleting what a resync did not see
// (the sweep; feed deletes go through Tx.Delete).
type FeedStore interface {
	Deleter
	QueryObjects(ctx context.Context, collectionID string, q store.Query) (*store.Page, error)
}

func (p *Puller) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// apply applies one feed page in order, in segments of adds followed by
// deletes: each segment is committed with the position after it in one
// transaction (Tx.Delete), so a crash never separates a delete from the
// position that records it, and a replay finds nothing more to do. checks
// are the runs of adds already checked (precheck), in order, or nil.
func (f *feedPuller) apply(ctx context.Context, page *taxiiclient.ChangesPage, checks []taxii.Checked, stats *PullStats) error {
	var adds []json.RawMessage
	var dels []taxiiclient.Change
	seq := f.pos.Seq
	var deleted []string
	flush := func(to int64) error {
		if len(adds) == 0 && len(dels) == 0 && to == f.pos.Seq {
			return nil
		}
		var checked *taxii.Checked
		if len(adds) > 0 && len(checks) > 0 {
			checked, checks = &checks[0], checks[1:]
		}
		d, err := f.commit(ctx, adds, checked, dels, to, stats)
		if err != nil {
			return err
		}
		deleted = append(deleted, d...)
		adds, dels = nil, nil
		return nil
	}
	for _, c := range page.Changes {
		switch c.Op {
		case "add":
			if len(dels) > 0 {
				if err := flush(seq); err != nil {
					return err
				}
			}
			adds = append(adds, c.Object)
		case "delete":
			dels = append(dels, c)
		default:
			return fmt.Errorf("link %s: change %d: unknown op %q", f.Link.ID, c.Seq, c.Op)
		}
		seq = c.Seq
	}
	if err := flush(max(seq, page.Next)); err != nil {
		return err
	}
	if len(deleted) > 0 {
		if err := f.Store.AppendAudit(ctx, store.AuditRecord{Principal: f.Label, Organisation: f.Principal.Organisation, Action: "objects.delete",
			Path: "taxii pull " + f.Client.ObjectsURL, Collection: f.Collection.ID, Objects: deleted,
			Detail: "deleted on the peer (change feed)"}); err != nil {
			return err
		}
	}
	return nil
}

// deleteLocal deletes, in tx, the local copy of a version the peer
// deleted, if it came from that peer; a refusal comes back as a
// rejection.
func (f *feedPuller) deleteLocal(ctx context.Context, tx store.Tx, c taxiiclient.Change) (int, *store.Rejection, error) {
	q := store.Query{Owner: PeerOwner(f.Link.Peer)}
	if c.Version != "" {
		v, err := time.Parse(time.RFC3339Nano, c.Version)
		if err != nil {
			return 0, &store.Rejection{Link: f.Link.ID, Peer: f.Link.Peer, Kind: "invalid", ObjectID: c.ID, Version: c.Version,
				Reason: "delete: version is not a timestamp", At: f.now().UTC()}, nil
		}
		q.Versions = store.VersionFilter{Exact: []time.Time{v}}
	}
	n, err := tx.Delete(ctx, c.ID, q)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return 0, nil, nil // never mirrored, or already deleted
	case errors.Is(err, store.ErrForbidden):
		return 0, &store.Rejection{Link: f.Link.ID, Peer: f.Link.Peer, Kind: "ownership", ObjectID: c.ID, Version: c.Version,
			Reason: "delete refused: the local copy did not come from this peer", At: f.now().UTC()}, nil
	case err != nil:
		return 0, nil, fmt.Errorf("link %s: delete %s: %w", f.Link.ID, c.ID, err)
	}
	return n, nil, nil
}

// precheck checks the runs of adds of page (those apply commits one by
// one), in order; nil when a check fails (apply then checks again and
// reports it).
func (f *feedPuller) precheck(ctx context.Context, page *taxiiclient.ChangesPage) []taxii.Checked {
	var out []taxii.Checked
	var run []json.RawMessage
	end := func() bool {
		if len(run) == 0 {
			return true
		}
		c, err := f.Check(ctx, f.Principal, run)
		if err != nil {
			return false
		}
		out, run = append(out, c), nil
		return true
	}
	for _, c := range page.Changes {
		if c.Op != "add" {
			if !end() {
				return nil
			}
			continue
		}
		run = append(run, c.Object)
	}
	if !end() {
		return nil
	}
	return out
}

// changesMarkings says whether page adds or deletes a marking definition:
// by the change's id, or by the type in the object (a quoted
// "marking-definition" anywhere in it, which references, ending in --uuid,
// are not). When it errs, it errs towards checking in order.
func changesMarkings(page *taxiiclient.ChangesPage) bool {
	for _, c := range page.Changes {
		if strings.HasPrefix(c.ID, "marking-definition--") || bytes.Contains(c.Object, markingType) {
			return true
		}
	}
	return false
}

var markingType = []byte(`"marking-definition"`)

// commit checks (unless checked already: pre) and stores raws as the
// peer's (as a pull page is stored),
// then applies dels, with their rejections and the position to, in one
// transaction. It returns the ids deleted.
func (f *feedPuller) commit(ctx context.Context, raws []json.RawMessage, pre *taxii.Checked, dels []taxiiclient.Change, to int64, stats *PullStats) ([]string, error) {
	var checked taxii.Checked
	if pre != nil {
		checked = *pre
	} else if len(raws) > 0 {
		var err error
		if checked, err = f.Check(ctx, f.Principal, raws); err != nil {
			return nil, err
		}
	}
	checked = withoutExercise(checked)
	for i := range checked.Objects {
		if o := &checked.Objects[i]; o.Owner != o.ID {
			o.Owner = PeerOwner(f.Link.Peer)
		}
	}
	next := f.pos
	next.Seq = to
	var results []store.AddResult
	var deleted []string
	var refused []store.Rejection
	var removed int
	err := f.setPos(ctx, next, func(ctx context.Context, tx store.Tx) error {
		// A retried transaction starts again from nothing.
		deleted, refused, removed, results = nil, nil, 0, nil
		var latest map[string]store.Entry
		if len(checked.Objects) > 0 {
			ids := make([]string, len(checked.Objects))
			for i := range checked.Objects {
				ids[i] = checked.Objects[i].ID
			}
			var err error
			if latest, err = tx.Latest(ctx, ids); err != nil {
				return err
			}
			if results, err = tx.Add(ctx, checked.Objects); err != nil {
				return err
			}
		}
		if err := f.recordLink(ctx, tx, checked, results, latest); err != nil {
			return err
		}
		for _, c := range dels {
			n, rej, err := f.deleteLocal(ctx, tx, c)
			switch {
			case err != nil:
				return err
			case rej != nil:
				refused = append(refused, *rej)
			case n > 0:
				removed += n
				deleted = append(deleted, c.ID)
			}
		}
		if ftx, ok := tx.(store.FederationTx); ok && len(refused) > 0 {
			if err := ftx.RecordRejections(ctx, refused); err != nil {
				return err
			}
		}
		f.release()
		return nil
	})
	if err != nil {
		return nil, err
	}
	stats.Deleted += removed
	for _, r := range refused {
		stats.refuse(store.StatusDetail{ID: r.ObjectID, Version: r.Version, Message: r.Reason})
	}
	if len(raws) == 0 {
		return deleted, nil
	}
	stats.Pages++
	stats.Received += len(raws)
	return deleted, f.audit(ctx, stats.tally(checked, results), checked, len(raws))
}
