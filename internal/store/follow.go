package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// ChangeReader reads collections' change logs.
type ChangeReader interface {
	// Changes is Objects.Changes.
	Changes(ctx context.Context, collectionID string, afterSeq int64, limit int) ([]Change, error)
}

// Follower keeps an in-memory view of collections' objects (the hash
// index, the search value index) in step with the collections' change
// logs: a collection is loaded whole when first seen; after that only the
// objects its change log names since the last poll are loaded again.
//
// A Follower is not safe for concurrent use: its user serialises Poll,
// Forget and Reset (one lock around its polls).
type Follower struct {
	// Store is read for the change logs; when it is also an Exporter its
	// export records give a collection's position without reading the
	// log to its end.
	Store ChangeReader
	// Wants reports whether the view holds objects such as the one whose
	// id a change names.
	Wants func(objectID string) bool
	// Load loads into the view the latest versions of a collection's
	// objects: those named (an id no longer found is dropped), or all when
	// ids is nil.
	Load func(ctx context.Context, collectionID string, ids []string) error
	// Drop removes what the view holds of a collection: it is called
	// before a collection is loaded whole, so that what a failed earlier
	// load left does not stay.
	Drop func(collectionID string)

	pos map[string]int64 // change-log position of each loaded collection
}

// followBatch is how many change-log records are read at a time;
// loadBatch how many objects are loaded at a time.
const (
	followBatch = 10000
	loadBatch   = 500
)

// Reset forgets every collection: the next Poll loads each whole.
func (f *Follower) Reset() { f.pos = nil }

// Forget forgets a collection (deleted): the view drops it itself.
func (f *Follower) Forget(collectionID string) { delete(f.pos, collectionID) }

// Poll loads whole the collections of ids not loaded yet, then applies to
// the others what their change logs recorded since the last poll, so that
// the view is up to date with what the store had committed when Poll
// started.
func (f *Follower) Poll(ctx context.Context, ids []string) error {
	if f.pos == nil {
		f.pos = map[string]int64{}
	}
	var known []string
	for _, id := range ids {
		if _, loaded := f.pos[id]; loaded {
			known = append(known, id)
			continue
		}
		// The position is read before the load: changes made during the
		// load are applied again by the next poll, which is harmless.
		seq, err := f.lastSeq(ctx, id)
		if err != nil {
			return err
		}
		f.Drop(id)
		if err := f.Load(ctx, id, nil); err != nil {
			return err
		}
		f.pos[id] = seq
	}
	for _, id := range known {
		if err := f.follow(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// lastSeq is the newest change-log position of a collection: from the
// store's export records when it has them (as the detector reads it),
// else by reading the change log to its end.
func (f *Follower) lastSeq(ctx context.Context, cid string) (int64, error) {
	if ex, ok := f.Store.(Exporter); ok {
		if recs, err := ex.ExportCollections(ctx); err == nil {
			for _, r := range recs {
				if r.ID == cid {
					return r.LastSeq, nil
				}
			}
		}
	}
	var seq int64
	for {
		chs, err := f.Store.Changes(ctx, cid, seq, followBatch)
		if err != nil {
			return 0, fmt.Errorf("collection %s: changes: %w", cid, err)
		}
		if len(chs) == 0 {
			return seq, nil
		}
		seq = chs[len(chs)-1].Seq
	}
}

// follow loads again the objects a collection's change log names since
// its position, in id order.
func (f *Follower) follow(ctx context.Context, cid string) error {
	seq := f.pos[cid]
	ids := map[string]bool{}
	for {
		chs, err := f.Store.Changes(ctx, cid, seq, followBatch)
		if errors.Is(err, ErrNotFound) {
			return nil // deleted: the next poll drops it
		}
		if err != nil {
			return fmt.Errorf("collection %s: changes: %w", cid, err)
		}
		for _, ch := range chs {
			if f.Wants(ch.ObjectID) {
				ids[ch.ObjectID] = true
			}
			seq = ch.Seq
		}
		if len(chs) < followBatch {
			break
		}
	}
	list := make([]string, 0, len(ids))
	for id := range ids {
		list = append(list, id)
	}
	slices.Sort(list)
	for lo := 0; lo < len(list); lo += loadBatch {
		if err := f.Load(ctx, cid, list[lo:min(lo+loadBatch, len(list))]); err != nil {
			return err
		}
	}
	f.pos[cid] = seq
	return nil
}
