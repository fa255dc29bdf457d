package sqlstore

import (
	"context"
	"fmt"
	"maps"

	"github.com/mitra-cert/mitra/internal/store"
)

// This file implements object ownership (STIX 2.1 §3.6, store/contract.go)
// and marking resolution.

// claimOwners records the owner of each id of objs that has none yet and
// returns the recorded owner of every id of objs that has one. On SQLite
// the add transaction holds the database's write lock: no other writer
// can claim in between. On PostgreSQL writers of different collections run
// concurrently: when two claim one id, the owners primary key makes the
// second INSERT wait for the first transaction and then do nothing. Where
// the dialect has one statement that claims and reads (the rows it
// inserted, the others from its snapshot), an id it neither inserted nor
// saw was claimed by a transaction that committed meanwhile, and a second
// statement (a new snapshot under READ COMMITTED) reads the winner. Ids
// are claimed in sorted order (store.OwnerClaims), so two claimants never
// wait for each other in a cycle.
func (s *Store) claimOwners(ctx context.Context, tx Tx, objs []store.Object) (map[string]string, error) {
	ids, owners := store.OwnerClaims(objs)
	all := uniqueIDs(objs)
	if len(ids) == 0 {
		return s.loadOwners(ctx, tx, all)
	}
	out := make(map[string]string, len(all))
	claim := func(q string, a Args) error {
		return readOwners(ctx, tx, q, a, "add objects: record owners", out)
	}
	var a Args
	if q := s.d.ClaimOwnersSQL(&a, ids, owners, all); q != "" {
		if err := claim(q, a); err != nil {
			return nil, err
		}
	} else {
		// Too many claims for one statement (SQLite's variables are
		// limited; a federation transaction holds tens of thousands):
		// chunks, in the claims' sorted order. Reading every owner back
		// after inserting them instead costs an index probe per id.
		for lo := 0; lo < len(ids); lo += claimChunk {
			hi := min(lo+claimChunk, len(ids))
			var a Args
			if q := s.d.ClaimOwnersSQL(&a, ids[lo:hi], owners[lo:hi], nil); q != "" {
				if err := claim(q, a); err != nil {
					return nil, err
				}
				continue
			}
			b := &Batch{}
			s.d.InsertOwners(b, ids[lo:hi], owners[lo:hi], true)
			if err := tx.Send(ctx, b); err != nil {
				return nil, fmt.Errorf("add objects: record owners: %w", err)
			}
		}
	}
	// Owners recorded before that the statements did not return (a
	// dialect may return only the claims it inserted).
	var late []string
	for _, id := range all {
		if _, ok := out[id]; !ok {
			late = append(late, id)
		}
	}
	if len(late) > 0 {
		won, err := s.loadOwners(ctx, tx, late)
		if err != nil {
			return nil, err
		}
		maps.Copy(out, won)
	}
	return out, nil
}

// claimChunk is how many owner claims go in one statement when the
// dialect cannot take a transaction's claims in one.
const claimChunk = 5000

// loadOwners reads the recorded owners of ids.
func (s *Store) loadOwners(ctx context.Context, q Querier, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	err := inChunks(ids, func(part []string) error {
		var a Args
		query := `SELECT id, owner FROM owners WHERE ` + s.d.In(&a, "id", part)
		return readOwners(ctx, q, query, a, "owners", out)
	})
	return out, err
}

// readOwners runs query, whose rows are (id, owner), and adds them to out.
func readOwners(ctx context.Context, q Querier, query string, a Args, what string, out map[string]string) error {
	rows, err := q.Query(ctx, query, a...)
	_, err = collect(rows, err, what, func(r Row) (struct{}, error) {
		var id, owner string
		err := r.Scan(&id, &owner)
		out[id] = owner
		return struct{}{}, err
	})
	return err
}

// checkDeleteOwner refuses a delete by an organisation that does not own
// the object (contract.go); owner "" is server moderation.
func checkDeleteOwner(ctx context.Context, tx Tx, objectID, owner string) error {
	if owner == "" {
		return nil
	}
	var rec string
	err := tx.QueryRow(ctx, `SELECT owner FROM owners WHERE id = ?`, objectID).Scan(&rec)
	if noRows(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete object: owner: %w", err)
	}
	if rec != owner {
		return fmt.Errorf("delete object %s: only the organisation that created it may delete it: %w", objectID, store.ErrForbidden)
	}
	return nil
}

// ObjectOwners implements store.Owners.
func (s *Store) ObjectOwners(ctx context.Context, ids []string) (map[string]string, error) {
	return s.loadOwners(ctx, s.db, ids)
}

// MarkingDefinitions implements store.Markings. The partial index
// objects_markings (migration 0003) holds marking-definition rows only, so
// the lookup costs no more than the number of their versions.
func (s *Store) MarkingDefinitions(ctx context.Context, ids []string) (map[string][]byte, error) {
	type best struct {
		spec, version string
		body          []byte
	}
	found := make(map[string]best, len(ids))
	err := inChunks(ids, func(part []string) error {
		var a Args
		rows, err := s.db.Query(ctx, `SELECT id, spec_version, version, body FROM objects
			WHERE type = 'marking-definition' AND latest AND `+s.d.In(&a, "id", part), a...)
		_, err = collect(rows, err, "marking definitions", func(r Row) (struct{}, error) {
			var id string
			var b best
			if err := r.Scan(&id, &b.spec, &b.version, &b.body); err != nil {
				return struct{}{}, err
			}
			// The latest across collections: greatest spec version, then
			// version, as each collection's latest row is chosen.
			if cur, ok := found[id]; !ok || b.spec > cur.spec || (b.spec == cur.spec && b.version > cur.version) {
				found[id] = b
			}
			return struct{}{}, nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(found))
	for id, b := range found {
		out[id] = b.body
	}
	return out, nil
}
