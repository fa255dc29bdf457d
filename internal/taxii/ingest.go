package taxii

import (
	"context"
	"slices"

	"github.com/mitra-cert/mitra/internal/store"
)

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
