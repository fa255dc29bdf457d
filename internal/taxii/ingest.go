package taxii

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/store"
)

// Checked is what the POST path decides about objects before it stores
// them: the objects to store (submitter, TLP, recipients and owner set for
// p), the refused ones with their reasons, and the ids of those p relays
// for another organisation (to audit).
type Checked struct {
	Objects  []store.Object
	Failures []store.StatusDetail
	Relayed  []string
}

// Check validates raws and applies the ownership and marking rules for p
// exactly as a TAXII POST does, for other ingest paths (a federation pull
// stores what it reads through this, in its own transactions).
func (s *Server) Check(ctx context.Context, p *access.Principal, raws []json.RawMessage) (Checked, error) {
	var out Checked
	// Marking definitions are resolved across the whole page, as across a
	// POST's envelope (an id cannot span two objects: each ends in '}').
	var ids []string
	for _, raw := range raws {
		ids = markingIDs(ids, raw)
	}
	markings, err := s.resolveMarkings(ctx, ids, raws)
	if err != nil {
		return out, err
	}
	orgs, err := s.organisations(ctx)
	if err != nil {
		return out, err
	}
	for chunk := range s.check(p, raws, markings, orgs) {
		for _, ch := range chunk {
			if ch.failure != nil {
				out.Failures = append(out.Failures, *ch.failure)
				continue
			}
			out.Objects = append(out.Objects, ch.obj)
			if ch.relayed {
				out.Relayed = append(out.Relayed, ch.obj.ID)
			}
		}
	}
	return out, nil
}

// newCommitter returns a group committer over st when its backend can
// commit several requests in one transaction, else nil.
func newCommitter(st Store) *store.Committer {
	if g, ok := st.(store.GroupAdder); ok {
		return store.NewCommitter(g, 0)
	}
	return nil
}

// commit stores a POST's validated objects with its status and audit
// records. With a group committer, concurrent POSTs to the collection
// share one transaction and one durable commit; either way, when commit
// returns nil the request's objects, status and audit records are durable
// (TAXII 2.1 §5.5: the status a client fetches later exists).
func (s *Server) commit(ctx context.Context, collectionID string, req *store.AddRequest) error {
	if s.group != nil {
		return s.group.Add(ctx, collectionID, req)
	}
	res, err := s.cfg.Store.AddBatches(ctx, collectionID, slices.Values([][]store.Object{req.Objects}), req.Status)
	if err != nil {
		return err
	}
	req.Results = res
	if req.Audit == nil {
		return nil
	}
	return s.cfg.Store.AppendAudit(ctx, req.Audit(req)...)
}
