package incident

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxii"
)

// Publisher adds STIX objects to a collection as a principal, under the
// same rules as a TAXII POST by that principal.
type Publisher interface {
	Publish(ctx context.Context, p *access.Principal, collection string, objs []json.RawMessage) error
}

// Ingest publishes through the TAXII ingest path: the collection's write
// grant, then taxii.Server.Check (validation, ownership, TLP markings,
// recipients, submitter) exactly as for a POST, then the store, then the
// audit log. Any refused object refuses the whole publication, so that an
// incident never exists without its relationships.
type Ingest struct {
	Check func(ctx context.Context, p *access.Principal, raws []json.RawMessage) (taxii.Checked, error)
	Store IngestStore
	// Path names the API in audit records.
	Path string
}

// Publish implements Publisher.
func (in *Ingest) Publish(ctx context.Context, p *access.Principal, collection string, objs []json.RawMessage) error {
	c, err := in.Store.GetCollection(ctx, collection)
	if err != nil {
		return err
	}
	read, write := access.CollectionAccess(p, c)
	if !write {
		if !read {
			// Indistinguishable from a collection that does not exist.
			return fmt.Errorf("collection %s: %w", collection, store.ErrNotFound)
		}
		return fmt.Errorf("collection %s: no write grant: %w", collection, ErrForbidden)
	}
	checked, err := in.Check(ctx, p, objs)
	if err != nil {
		return err
	}
	if len(checked.Failures) > 0 {
		msgs := make([]string, len(checked.Failures))
		for i, f := range checked.Failures {
			msgs[i] = f.ID + ": " + f.Message
		}
		return fmt.Errorf("refused by the ingest: %s: %w", strings.Join(msgs, "; "), ErrInvalid)
	}
	res, err := in.Store.AddBatches(ctx, c.ID, slices.Values([][]store.Object{checked.Objects}), nil)
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(res))
	for i, r := range res {
		if r.Err != nil && checked.Objects[i].ID == stix.ExerciseMarkingID {
			// The fixed exercise marking-definition, stored before by
			// another organisation (who owns it): it exists, which is all
			// the exercise objects need.
			continue
		}
		if r.Err != nil {
			return fmt.Errorf("store %s: %w", checked.Objects[i].ID, r.Err)
		}
		ids = append(ids, checked.Objects[i].ID)
	}
	recs := []store.AuditRecord{{Principal: p.User, Organisation: p.Organisation, Action: "objects.add", Path: in.Path,
		Collection: c.ID, Objects: ids, Detail: "incident coordination"}}
	if len(checked.Relayed) > 0 {
		recs = append(recs, store.AuditRecord{Principal: p.User, Organisation: p.Organisation, Action: "objects.relay", Path: in.Path,
			Collection: c.ID, Objects: checked.Relayed})
	}
	return in.Store.AppendAudit(ctx, recs...)
}
