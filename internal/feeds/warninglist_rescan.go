package feeds

import (
	"context"
	"errors"
	"fmt"

	"github.com/mitra-cert/mitra/internal/store"
)

// Rescan checks the latest versions of a collection's stored indicators
// against the lists as they are now, page by page: those that hit are
// flagged (or their reason updated), the others' flags are cleared. For
// lists added or changed after an import. It returns how many indicators
// it checked and how many are flagged.
func (i *Importer) Rescan(ctx context.Context, collection string) (checked, flagged int, err error) {
	col, err := i.Store.GetCollection(ctx, collection)
	if err != nil {
		return 0, 0, fmt.Errorf("collection %s: %w", collection, err)
	}
	q := store.Query{Types: []string{"indicator"}, WithBody: true, Limit: 500}
	for {
		page, err := i.Store.QueryObjects(ctx, col.ID, q)
		if err != nil {
			return checked, flagged, err
		}
		var flags []store.InactiveFlag
		var clear []string
		at := i.now()
		for _, e := range page.Entries {
			checked++
			if hit, ok := i.Warnings.CheckIndicator(e.Raw); ok {
				flags = append(flags, store.InactiveFlag{ObjectID: e.ID, Collection: col.ID, List: hit.List, Value: hit.Value, Reason: hit.Reason(), At: at})
			} else {
				clear = append(clear, e.ID)
			}
		}
		flagged += len(flags)
		err = i.Store.Update(ctx, col.ID, func(ctx context.Context, tx store.Tx) error {
			itx, ok := tx.(store.ImportTx)
			if !ok {
				return errors.New("the store cannot record inactive flags")
			}
			if err := itx.ClearInactive(ctx, clear); err != nil {
				return err
			}
			return itx.FlagInactive(ctx, flags)
		})
		if err != nil {
			return checked, flagged, err
		}
		if !page.More || len(page.Entries) == 0 {
			return checked, flagged, nil
		}
		q.AddedAfter = page.Entries[len(page.Entries)-1].DateAdded
	}
}
