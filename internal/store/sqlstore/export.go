package sqlstore

import (
	"context"
	"fmt"

	"github.com/mitra-cert/mitra/internal/store"
)

// Counts implements store.Exporter.
func (s *Store) Counts(ctx context.Context) (store.Counts, error) {
	var c store.Counts
	err := s.db.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM organisations), (SELECT count(*) FROM users), (SELECT count(*) FROM tokens),
		(SELECT count(*) FROM groups_), (SELECT count(*) FROM group_members), (SELECT count(*) FROM collections),
		(SELECT count(*) FROM grants), (SELECT count(*) FROM party_grants), (SELECT count(*) FROM objects),
		(SELECT count(*) FROM changes), (SELECT count(*) FROM statuses), (SELECT count(*) FROM audit),
		(SELECT count(*) FROM owners), (SELECT count(*) FROM cursors)`).Scan(
		&c.Organisations, &c.Users, &c.Tokens, &c.Groups, &c.GroupMembers, &c.Collections,
		&c.Grants, &c.PartyGrants, &c.Objects, &c.Changes, &c.Statuses, &c.Audit, &c.Owners, &c.Cursors)
	if err != nil {
		return c, fmt.Errorf("counts: %w", err)
	}
	return c, nil
}

// ExportCollections implements store.Exporter.
func (s *Store) ExportCollections(ctx context.Context) ([]store.CollectionRecord, error) {
	cols, err := s.collectionRows(ctx, "")
	if err != nil {
		return nil, err
	}
	if err := s.loadPartyGrants(ctx, cols); err != nil {
		return nil, err
	}
	return cols, nil
}

// exportPages calls fn with the pages read (by page, from the cursor the
// previous page leaves) until a page is empty.
func exportPages[T any](ctx context.Context, page func(ctx context.Context) ([]T, error), fn func([]T) error) error {
	for {
		batch, err := page(ctx)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		if err := fn(batch); err != nil {
			return err
		}
	}
}

// ExportObjects implements store.Exporter. It pages by date_added, which is
// unique within a collection.
func (s *Store) ExportObjects(ctx context.Context, collectionID string, fn func([]store.ObjectRecord) error) error {
	cid, err := collectionKey(ctx, s.db, collectionID)
	if err != nil {
		return err
	}
	var after int64 = -1 << 62
	return exportPages(ctx, func(ctx context.Context) ([]store.ObjectRecord, error) {
		rows, err := s.db.Query(ctx, `SELECT id, type, spec_version, version_raw, date_added, submitter, tlp, recipients, body, version, latest
			FROM objects WHERE cid = ? AND date_added > ? ORDER BY date_added LIMIT ?`, cid, after, store.ExportBatch)
		return collect(rows, err, "export objects", func(r Row) (store.ObjectRecord, error) {
			var o store.ObjectRecord
			var recipients string
			if err := r.Scan(&o.ID, &o.Type, &o.SpecVersion, &o.VersionRaw, &after, &o.Submitter, &o.TLP, &recipients, &o.Raw, &o.Version, &o.Latest); err != nil {
				return o, err
			}
			o.DateAdded = fromMicros(after)
			var err error
			o.Recipients, err = parseList(recipients)
			return o, err
		})
	}, fn)
}

// ExportStatuses implements store.Exporter.
func (s *Store) ExportStatuses(ctx context.Context, fn func([]*store.Status) error) error {
	after := ""
	return exportPages(ctx, func(ctx context.Context) ([]*store.Status, error) {
		rows, err := s.db.Query(ctx, `SELECT `+statusCols+` FROM statuses WHERE id > ? ORDER BY id`+s.d.Binary()+` LIMIT ?`, after, store.ExportBatch)
		batch, err := collect(rows, err, "export statuses", scanStatus)
		if len(batch) > 0 {
			after = batch[len(batch)-1].ID
		}
		return batch, err
	}, fn)
}

// ExportAudit implements store.Exporter.
func (s *Store) ExportAudit(ctx context.Context, fn func([]store.AuditRecord) error) error {
	var after int64
	return exportPages(ctx, func(ctx context.Context) ([]store.AuditRecord, error) {
		recs, err := s.auditRows(ctx, `SELECT `+auditCols+` FROM audit WHERE seq > ? ORDER BY seq LIMIT ?`, after, store.ExportBatch)
		if len(recs) > 0 {
			after = recs[len(recs)-1].Seq
		}
		return recs, err
	}, fn)
}

// importTx runs fn in one write transaction, mapping unique violations to
// store.ErrConflict and foreign-key violations to store.ErrNotFound.
func (s *Store) importTx(ctx context.Context, what string, fn func(tx Tx) error) error {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("import %s: %w", what, err)
	}
	defer tx.Rollback(ctx)
	err = fn(tx)
	if err == nil {
		err = tx.Commit(ctx)
	}
	switch {
	case err == nil:
		return nil
	case s.d.IsUnique(err):
		return fmt.Errorf("import %s: %w: %v", what, store.ErrConflict, err)
	case s.d.IsForeignKey(err):
		return fmt.Errorf("import %s: %w: %v", what, store.ErrNotFound, err)
	default:
		return fmt.Errorf("import %s: %w", what, err)
	}
}

// importBatch runs the statements queue queues in one import transaction.
func (s *Store) importBatch(ctx context.Context, what string, queue func(b *Batch)) error {
	return s.importTx(ctx, what, func(tx Tx) error {
		b := &Batch{}
		queue(b)
		return tx.Send(ctx, b)
	})
}

// ImportOrganisations implements store.Importer.
func (s *Store) ImportOrganisations(ctx context.Context, orgs []*store.Organisation) error {
	return s.importBatch(ctx, "organisations", func(b *Batch) {
		for _, o := range orgs {
			if o.Default {
				// The imported default replaces the store's own.
				b.Queue(`DELETE FROM organisations WHERE is_default AND id <> ?`, o.ID)
			}
		}
		for _, o := range orgs {
			b.Queue(`INSERT INTO organisations (id, name, created, is_default, anonymise_sightings) VALUES (?, ?, ?, ?, ?)`,
				o.ID, o.Name, micros(o.Created), o.Default, o.AnonymiseSightings)
		}
	})
}

// ImportUsers implements store.Importer.
func (s *Store) ImportUsers(ctx context.Context, users []*store.User) error {
	return s.importBatch(ctx, "users", func(b *Batch) {
		for _, u := range users {
			b.Queue(`INSERT INTO users (`+userCols+`) VALUES (?, ?, ?, ?, ?)`,
				u.Name, u.Organisation, u.Role, u.PasswordHash, micros(u.Created))
		}
	})
}

// ImportTokens implements store.Importer.
func (s *Store) ImportTokens(ctx context.Context, tokens []*store.Token) error {
	return s.importBatch(ctx, "tokens", func(b *Batch) {
		for _, t := range tokens {
			var expires int64
			if !t.Expires.IsZero() {
				expires = micros(t.Expires)
			}
			b.Queue(`INSERT INTO tokens (`+tokenCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				t.ID, t.User, t.Hash, t.Role, micros(t.Created), expires, t.Revoked)
		}
	})
}

// ImportGroups implements store.Importer.
func (s *Store) ImportGroups(ctx context.Context, groups []*store.Group) error {
	return s.importTx(ctx, "groups", func(tx Tx) error {
		for _, g := range groups {
			if _, err := tx.Exec(ctx, `INSERT INTO groups_ (id, name, created) VALUES (?, ?, ?)`, g.ID, g.Name, micros(g.Created)); err != nil {
				return err
			}
			if err := s.addMembers(ctx, tx, g.ID, g.Orgs); err != nil {
				return err
			}
		}
		return nil
	})
}

// ImportCollection implements store.Importer.
func (s *Store) ImportCollection(ctx context.Context, c store.CollectionRecord) error {
	return s.importTx(ctx, "collection "+c.ID, func(tx Tx) error {
		var alias any
		if c.Alias != "" {
			alias = c.Alias
		}
		var cid int64
		if err := tx.QueryRow(ctx, `INSERT INTO collections (id, title, description, alias, created, last_added, last_seq, default_tlp, recipients)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING cid`,
			c.ID, c.Title, c.Description, alias, micros(c.Created), micros(c.LastAdded), c.LastSeq, c.DefaultTLP, JSONList(c.Recipients)).Scan(&cid); err != nil {
			return err
		}
		return s.setGrants(ctx, tx, cid, &c.Collection)
	})
}

// ImportObjects implements store.Importer.
func (s *Store) ImportObjects(ctx context.Context, collectionID string, objs []store.ObjectRecord) error {
	return s.importTx(ctx, "objects", func(tx Tx) error {
		cid, err := collectionKey(ctx, tx, collectionID)
		if err != nil {
			return err
		}
		rows := make([]store.NewVersion, len(objs))
		for i := range objs {
			o := &objs[i]
			rows[i] = store.NewVersion{Added: micros(o.DateAdded), Spec: o.SpecVersion, Version: o.Version, VersionRaw: o.VersionRaw, Latest: o.Latest,
				Obj: &store.Object{ID: o.ID, Type: o.Type, Raw: o.Raw, Submitter: o.Submitter, TLP: o.TLP, Recipients: o.Recipients}}
		}
		b := &Batch{}
		s.d.InsertVersions(b, cid, rows, false)
		return tx.Send(ctx, b)
	})
}

// ImportChanges implements store.Importer.
func (s *Store) ImportChanges(ctx context.Context, collectionID string, changes []store.Change) error {
	return s.importTx(ctx, "change log", func(tx Tx) error {
		cid, err := collectionKey(ctx, tx, collectionID)
		if err != nil {
			return err
		}
		// Tombstones keep what the feed decides on; adds need nothing more.
		var adds, deletes []store.Change
		for _, c := range changes {
			if c.Op == store.OpDelete {
				deletes = append(deletes, c)
			} else {
				adds = append(adds, c)
			}
		}
		b := &Batch{}
		if len(adds) > 0 {
			s.d.InsertChanges(b, cid, adds)
		}
		queueTombstones(b, cid, deletes)
		return tx.Send(ctx, b)
	})
}

// ImportStatuses implements store.Importer.
func (s *Store) ImportStatuses(ctx context.Context, statuses []*store.Status) error {
	return s.importBatch(ctx, "statuses", func(b *Batch) {
		for _, st := range statuses {
			b.Queue(`INSERT INTO statuses (`+statusCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, statusArgs(st)...)
		}
	})
}

// ImportAudit implements store.Importer. The audit sequence continues after
// the greatest imported seq.
func (s *Store) ImportAudit(ctx context.Context, recs []store.AuditRecord) error {
	return s.importBatch(ctx, "audit", func(b *Batch) {
		for _, r := range recs {
			b.Queue(`INSERT INTO audit (`+auditCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				r.Seq, micros(r.At), r.Principal, r.Organisation, r.Action, r.Path, r.Collection, s.d.ListValue(r.Objects), r.Detail)
		}
		s.d.AfterImportAudit(b)
	})
}
