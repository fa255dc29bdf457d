package web

import (
	"context"
	"slices"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/store"
)

// The console's read paths: the same store queries as TAXII's, with the
// same access.Decide filter, so the console shows exactly what its user
// could read over TAXII.

// readable returns the collections p may read.
func (h *Handler) readable(ctx context.Context, p *access.Principal) ([]*store.Collection, error) {
	all, err := h.cfg.Store.ListCollections(ctx)
	if err != nil {
		return nil, err
	}
	var out []*store.Collection
	for _, c := range all {
		if read, _ := access.CollectionAccess(p, c); read {
			out = append(out, c)
		}
	}
	return out, nil
}

// writable returns the collections p may add objects to.
func (h *Handler) writable(ctx context.Context, p *access.Principal) ([]*store.Collection, error) {
	all, err := h.cfg.Store.ListCollections(ctx)
	if err != nil {
		return nil, err
	}
	var out []*store.Collection
	for _, c := range all {
		if _, write := access.CollectionAccess(p, c); write {
			out = append(out, c)
		}
	}
	return out, nil
}

func visible(p *access.Principal, c *store.Collection) func(*store.Entry) bool {
	return func(e *store.Entry) bool { return access.Decide(p, c, e).Allowed }
}

// found is an object as p sees it in one collection.
type found struct {
	C     *store.Collection
	Entry store.Entry
}

// object returns the latest version of id that p may see, from the
// collection hint when p reads it, else from the first readable collection
// that has it. ok is false when p sees it nowhere: hidden and missing
// objects look the same.
func (h *Handler) object(ctx context.Context, p *access.Principal, id, hint string) (f found, ok bool, err error) {
	cols, err := h.readable(ctx, p)
	if err != nil {
		return f, false, err
	}
	// The hinted collection first.
	slices.SortStableFunc(cols, func(a, b *store.Collection) int {
		switch {
		case a.ID == hint && b.ID != hint:
			return -1
		case b.ID == hint && a.ID != hint:
			return 1
		}
		return 0
	})
	for _, c := range cols {
		page, err := h.cfg.Store.QueryObjects(ctx, c.ID, store.Query{IDs: []string{id}, Limit: 1, WithBody: true, Visible: visible(p, c)})
		if err != nil {
			return f, false, err
		}
		if len(page.Entries) > 0 {
			return found{C: c, Entry: page.Entries[0]}, true, nil
		}
	}
	return f, false, nil
}

// versions returns the versions of id in c that p may see, oldest first.
func (h *Handler) versions(ctx context.Context, p *access.Principal, c *store.Collection, id string) ([]store.Entry, error) {
	page, err := h.cfg.Store.QueryObjects(ctx, c.ID, store.Query{IDs: []string{id}, Versions: store.VersionFilter{All: true}, Visible: visible(p, c)})
	if err != nil {
		return nil, err
	}
	return page.Entries, nil
}

// anonymous returns the organisations whose identities sightings hide.
func (h *Handler) anonymousOrgs(ctx context.Context) ([]string, error) {
	orgs, err := h.cfg.Store.ListOrganisations(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, o := range orgs {
		if o.AnonymiseSightings {
			out = append(out, o.ID)
		}
	}
	return out, nil
}

// served redacts sightings for p and audits reads of AMBER+STRICT and RED
// objects, as TAXII does when it serves them.
func (h *Handler) served(ctx context.Context, p *access.Principal, path string, fs []found) error {
	var anon []string
	loaded := false
	strict := map[string][]string{}
	for i := range fs {
		e := &fs[i].Entry
		if access.EffectiveTLP(fs[i].C, e) >= access.TLPAmberStrict {
			strict[fs[i].C.ID] = append(strict[fs[i].C.ID], e.ID)
		}
		if e.Type == "sighting" && e.Raw != nil {
			if !loaded {
				var err error
				if anon, err = h.anonymousOrgs(ctx); err != nil {
					return err
				}
				loaded = true
			}
			e.Raw = access.RedactSighting(p, e, anon)
		}
	}
	for c, ids := range strict {
		if err := h.cfg.Store.AppendAudit(ctx, store.AuditRecord{Principal: p.User, Organisation: p.Organisation,
			Action: "objects.read", Path: path, Collection: c, Objects: ids, Detail: "AMBER+STRICT/RED objects shown in the console"}); err != nil {
			return err
		}
	}
	return nil
}
