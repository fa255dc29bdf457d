package detect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxiiclient"
)

// Sink stores sightings with their observed-data and SCOs. Put returns nil
// only when every object is durable.
type Sink interface {
	Put(ctx context.Context, objs []json.RawMessage) error
}

// StoreSink adds objects to a collection of a local store, submitted by
// an organisation.
type StoreSink struct {
	Store      ObjectAdder
	Collection string // id
	Submitter  string // organisation identity id
}

// Put implements Sink.
func (s *StoreSink) Put(ctx context.Context, raws []json.RawMessage) error {
	v := &stix.Validator{}
	objs := make([]store.Object, 0, len(raws))
	for _, raw := range raws {
		h, probs := v.Inspect(raw)
		if len(probs) > 0 {
			return fmt.Errorf("detector produced an invalid object: %s", probs[0])
		}
		o := store.Object{ID: h.ID, Type: h.Type, SpecVersion: h.SpecVersion, Raw: raw,
			Submitter: s.Submitter, TLP: int(access.Classify(h.MarkingRefs)), Recipients: h.Recipients}
		o.Version, o.VersionRaw, _ = h.Version()
		objs = append(objs, o)
	}
	res, err := s.Store.AddObjects(ctx, s.Collection, objs, nil)
	if err != nil {
		return err
	}
	var errs []error
	for i, r := range res {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", objs[i].ID, r.Err))
		}
	}
	return errors.Join(errs...)
}

// TAXIISink posts objects to a TAXII 2.1 collection.
type TAXIISink struct {
	Client *taxiiclient.Client
}

// Put implements Sink: the objects are durable when the status resource
// reports them all as successes (pending ones are waited for).
func (s *TAXIISink) Put(ctx context.Context, raws []json.RawMessage) error {
	st, err := s.Client.AddObjects(ctx, raws)
	if err != nil {
		return err
	}
	st, err = s.Client.WaitStatus(ctx, st)
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
