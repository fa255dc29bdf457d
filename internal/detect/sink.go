package detect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxiiclient"
)

// Sink stores sightings with their observed-data and SCOs. A write reads
// the stored versions of the sightings it updates and merges its counts
// into them, so the same bucket written by several detectors, by one
// detector before and after a restart, or twice because of a late event,
// remains one sighting.
type Sink interface {
	// Update runs fn in one transaction: what fn puts and the cursors it
	// sets are durable together when Update returns nil, and nothing is
	// when it returns an error.
	Update(ctx context.Context, fn func(ctx context.Context, tx SinkTx) error) error
}

// SinkTx is one transaction of a Sink.
type SinkTx interface {
	// Latest returns the raw latest stored version of each of ids that is
	// stored.
	Latest(ctx context.Context, ids []string) (map[string]json.RawMessage, error)
	// Put stores objects.
	Put(ctx context.Context, objs []json.RawMessage) error
	// Cursor returns the value stored under key (nil when none).
	Cursor(ctx context.Context, key string) ([]byte, error)
	// SetCursor stores value under key.
	SetCursor(ctx context.Context, key string, value []byte) error
}

// StoreSink adds objects to a collection of a local store, submitted by
// an organisation, in store transactions (store.Updater): counts and
// stream positions are committed together.
type StoreSink struct {
	Store      SightingStore
	Collection string // id
	Submitter  string // organisation identity id
	// Audit, when set, records every write (who: "detector" for the
	// organisation, what: the objects written), as every other change of
	// the store is recorded.
	Audit store.Audit
	// Log reports an audit record that could not be written; discarded
	// when nil.
	Log *slog.Logger
}

// Update implements Sink.
func (s *StoreSink) Update(ctx context.Context, fn func(ctx context.Context, tx SinkTx) error) error {
	var written []string
	err := s.Store.Update(ctx, s.Collection, func(ctx context.Context, tx store.Tx) error {
		written = written[:0] // a retried transaction starts again
		return fn(ctx, &storeTx{s: s, tx: tx, written: &written})
	})
	if err != nil || s.Audit == nil || len(written) == 0 {
		return err
	}
	// The objects are committed: a failed audit record must not make the
	// caller write them again, so it is logged, not returned.
	rec := store.AuditRecord{Principal: "detector", Organisation: s.Submitter, Action: "detect.write",
		Collection: s.Collection, Objects: written, Detail: fmt.Sprintf("%d objects", len(written))}
	if aerr := s.Audit.AppendAudit(ctx, rec); aerr != nil && s.Log != nil {
		s.Log.ErrorContext(ctx, "audit detector write", "err", aerr)
	}
	return nil
}

// storeTx is a StoreSink transaction.
type storeTx struct {
	s       *StoreSink
	tx      store.Tx
	written *[]string
}

func (t *storeTx) Latest(ctx context.Context, ids []string) (map[string]json.RawMessage, error) {
	got, err := t.tx.Latest(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]json.RawMessage, len(got))
	for id, e := range got {
		out[id] = e.Raw
	}
	return out, nil
}

func (t *storeTx) Put(ctx context.Context, raws []json.RawMessage) error {
	v := &stix.Validator{}
	objs := make([]store.Object, 0, len(raws))
	for _, raw := range raws {
		h, probs := v.Inspect(raw)
		if len(probs) > 0 {
			return fmt.Errorf("detector produced an invalid object: %s", probs[0])
		}
		o := store.Object{ID: h.ID, Type: h.Type, SpecVersion: h.SpecVersion, Raw: raw,
			Submitter: t.s.Submitter, TLP: int(access.Classify(h.MarkingRefs)), Recipients: h.Recipients}
		o.Version, o.VersionRaw, _ = h.Version()
		objs = append(objs, o)
	}
	res, err := t.tx.Add(ctx, objs)
	if err != nil {
		return err
	}
	var errs []error
	for i, r := range res {
		switch {
		case r.Err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", objs[i].ID, r.Err))
		case !r.Duplicate:
			*t.written = append(*t.written, objs[i].ID)
		}
	}
	return errors.Join(errs...)
}

func (t *storeTx) Cursor(ctx context.Context, key string) ([]byte, error) {
	return t.tx.Cursor(ctx, key)
}

func (t *storeTx) SetCursor(ctx context.Context, key string, value []byte) error {
	return t.tx.SetCursor(ctx, key, value)
}

// TAXIISink posts objects to a TAXII 2.1 collection. It reads the stored
// sightings back to merge counts; it has no transactions, so a stream
// read through it is counted at least once (a crash between a post and
// the acknowledgements counts the messages again).
type TAXIISink struct {
	Client *taxiiclient.Client

	mu      sync.Mutex
	cursors map[string][]byte
}

// Update implements Sink.
func (s *TAXIISink) Update(ctx context.Context, fn func(ctx context.Context, tx SinkTx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fn(ctx, taxiiTx{s})
}

type taxiiTx struct{ s *TAXIISink }

func (t taxiiTx) Latest(ctx context.Context, ids []string) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	for lo := 0; lo < len(ids); lo += 50 {
		err := t.s.Client.GetObjects(ctx, taxiiclient.ObjectsQuery{IDs: ids[lo:min(lo+50, len(ids))]}, func(p taxiiclient.ObjectsPage) error {
			for _, raw := range p.Objects {
				var h struct {
					ID string `json:"id"`
				}
				if json.Unmarshal(raw, &h) == nil {
					out[h.ID] = raw
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Put posts the objects: they are durable when the status resource
// reports them all as successes (pending ones are waited for).
func (t taxiiTx) Put(ctx context.Context, raws []json.RawMessage) error {
	st, err := t.s.Client.AddObjects(ctx, raws)
	if err != nil {
		return err
	}
	st, err = t.s.Client.WaitStatus(ctx, st)
	if err != nil {
		return err
	}
	if len(st.Failures) > 0 {
		msgs := make([]string, 0, len(st.Failures))
		for _, f := range st.Failures {
			msgs = append(msgs, f.ID+": "+f.Message)
		}
		return fmt.Errorf("TAXII server refused %d of %d objects: %s", len(st.Failures), st.TotalCount, strings.Join(msgs, "; "))
	}
	return nil
}

func (t taxiiTx) Cursor(_ context.Context, key string) ([]byte, error) { return t.s.cursors[key], nil }

func (t taxiiTx) SetCursor(_ context.Context, key string, value []byte) error {
	if t.s.cursors == nil {
		t.s.cursors = map[string][]byte{}
	}
	t.s.cursors[key] = value
	return nil
}
