package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/mitra-cert/mitra/internal/store"
)

var (
	_ store.Exporter = (*Store)(nil)
	_ store.Importer = (*Store)(nil)
)

// Counts implements store.Exporter.
func (s *Store) Counts(ctx context.Context) (store.Counts, error) {
	var c store.Counts
	err := s.pool.QueryRow(ctx, `SELECT
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

// ExportObjects implements store.Exporter. It pages by date_added, which is
// unique within a collection.
func (s *Store) ExportObjects(ctx context.Context, collectionID string, fn func([]store.ObjectRecord) error) error {
	cid, err := collectionKey(ctx, s.pool, collectionID)
	if err != nil {
		return err
	}
	var after int64 = -1 << 62
	for {
		rows, err := s.pool.Query(ctx, `SELECT id, type, spec_version, version_raw, date_added, submitter, tlp, recipients, body, version, latest
			FROM objects WHERE cid = $1 AND date_added > $2 ORDER BY date_added LIMIT $3`, cid, after, store.ExportBatch)
		if err != nil {
			return fmt.Errorf("export objects: %w", err)
		}
		batch := make([]store.ObjectRecord, 0, store.ExportBatch)
		for rows.Next() {
			var o store.ObjectRecord
			var tlp int32
			var recipients string
			if err := rows.Scan(&o.ID, &o.Type, &o.SpecVersion, &o.VersionRaw, &after, &o.Submitter, &tlp, &recipients, &o.Raw, &o.Version, &o.Latest); err != nil {
				rows.Close()
				return fmt.Errorf("export objects: %w", err)
			}
			o.DateAdded, o.TLP = fromMicros(after), int(tlp)
			if o.Recipients, err = parseList(recipients); err != nil {
				rows.Close()
				return fmt.Errorf("export objects: %w", err)
			}
			batch = append(batch, o)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("export objects: %w", err)
		}
		if len(batch) == 0 {
			return nil
		}
		if err := fn(batch); err != nil {
			return err
		}
	}
}

// ExportStatuses implements store.Exporter.
func (s *Store) ExportStatuses(ctx context.Context, fn func([]*store.Status) error) error {
	after := ""
	for {
		rows, err := s.pool.Query(ctx, `SELECT `+statusCols+` FROM statuses WHERE id > $1 ORDER BY id COLLATE "C" LIMIT $2`, after, store.ExportBatch)
		if err != nil {
			return fmt.Errorf("export statuses: %w", err)
		}
		var batch []*store.Status
		for rows.Next() {
			st, err := scanStatus(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("export statuses: %w", err)
			}
			batch = append(batch, st)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("export statuses: %w", err)
		}
		if len(batch) == 0 {
			return nil
		}
		if err := fn(batch); err != nil {
			return err
		}
		after = batch[len(batch)-1].ID
	}
}

// ExportAudit implements store.Exporter.
func (s *Store) ExportAudit(ctx context.Context, fn func([]store.AuditRecord) error) error {
	var after int64
	for {
		recs, err := s.auditRows(ctx, `SELECT seq, at, principal, organisation, action, path, collection, objects, detail FROM audit
			WHERE seq > $1 ORDER BY seq LIMIT $2`, after, store.ExportBatch)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			return nil
		}
		if err := fn(recs); err != nil {
			return err
		}
		after = recs[len(recs)-1].Seq
	}
}

// importTx runs fn in one write transaction, mapping unique violations to
// store.ErrConflict and foreign-key violations to store.ErrNotFound.
func (s *Store) importTx(ctx context.Context, what string, fn func(tx pgx.Tx) error) error {
	tx, err := s.beginWrite(ctx)
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
	case isUnique(err):
		return fmt.Errorf("import %s: %w: %v", what, store.ErrConflict, err)
	case isForeignKey(err):
		return fmt.Errorf("import %s: %w: %v", what, store.ErrNotFound, err)
	default:
		return fmt.Errorf("import %s: %w", what, err)
	}
}

// ImportOrganisations implements store.Importer.
func (s *Store) ImportOrganisations(ctx context.Context, orgs []*store.Organisation) error {
	return s.importTx(ctx, "organisations", func(tx pgx.Tx) error {
		for _, o := range orgs {
			if o.Default {
				// The imported default replaces the store's own.
				if _, err := tx.Exec(ctx, `DELETE FROM organisations WHERE is_default AND id <> $1`, o.ID); err != nil {
					return err
				}
			}
		}
		for _, o := range orgs {
			if _, err := tx.Exec(ctx, `INSERT INTO organisations (id, name, created, is_default, anonymise_sightings) VALUES ($1, $2, $3, $4, $5)`,
				o.ID, o.Name, micros(o.Created), o.Default, o.AnonymiseSightings); err != nil {
				return err
			}
		}
		return nil
	})
}

// ImportUsers implements store.Importer.
func (s *Store) ImportUsers(ctx context.Context, users []*store.User) error {
	return s.importTx(ctx, "users", func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, u := range users {
			b.Queue(`INSERT INTO users (name, organisation, role, password_hash, created) VALUES ($1, $2, $3, $4, $5)`,
				u.Name, u.Organisation, u.Role, u.PasswordHash, micros(u.Created))
		}
		return tx.SendBatch(ctx, b).Close()
	})
}

// ImportTokens implements store.Importer.
func (s *Store) ImportTokens(ctx context.Context, tokens []*store.Token) error {
	return s.importTx(ctx, "tokens", func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, t := range tokens {
			var expires int64
			if !t.Expires.IsZero() {
				expires = micros(t.Expires)
			}
			b.Queue(`INSERT INTO tokens (id, user_name, hash, role, created, expires, revoked) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				t.ID, t.User, t.Hash, t.Role, micros(t.Created), expires, t.Revoked)
		}
		return tx.SendBatch(ctx, b).Close()
	})
}

// ImportGroups implements store.Importer.
func (s *Store) ImportGroups(ctx context.Context, groups []*store.Group) error {
	return s.importTx(ctx, "groups", func(tx pgx.Tx) error {
		for _, g := range groups {
			if _, err := tx.Exec(ctx, `INSERT INTO groups_ (id, name, created) VALUES ($1, $2, $3)`, g.ID, g.Name, micros(g.Created)); err != nil {
				return err
			}
			if err := addMembers(ctx, tx, g.ID, g.Orgs); err != nil {
				return err
			}
		}
		return nil
	})
}

// ImportCollection implements store.Importer.
func (s *Store) ImportCollection(ctx context.Context, c store.CollectionRecord) error {
	return s.importTx(ctx, "collection "+c.ID, func(tx pgx.Tx) error {
		var alias any
		if c.Alias != "" {
			alias = c.Alias
		}
		var cid int64
		if err := tx.QueryRow(ctx, `INSERT INTO collections (id, title, description, alias, created, last_added, last_seq, default_tlp, recipients)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING cid`,
			c.ID, c.Title, c.Description, alias, micros(c.Created), micros(c.LastAdded), c.LastSeq, c.DefaultTLP, jsonList(c.Recipients)).Scan(&cid); err != nil {
			return err
		}
		if err := setGrants(ctx, tx, cid, c.Readers, c.Writers); err != nil {
			return err
		}
		for _, g := range c.Grants {
			if err := setPartyGrant(ctx, tx, cid, g); err != nil {
				return err
			}
		}
		return nil
	})
}

// ImportObjects implements store.Importer.
func (s *Store) ImportObjects(ctx context.Context, collectionID string, objs []store.ObjectRecord) error {
	return s.importTx(ctx, "objects", func(tx pgx.Tx) error {
		cid, err := collectionKey(ctx, tx, collectionID)
		if err != nil {
			return err
		}
		var rows newRows
		for i := range objs {
			o := &objs[i]
			rows.add(store.NewVersion{Added: micros(o.DateAdded), Spec: o.SpecVersion, Version: o.Version, VersionRaw: o.VersionRaw, Latest: o.Latest,
				Obj: &store.Object{ID: o.ID, Type: o.Type, Raw: o.Raw, Submitter: o.Submitter, TLP: o.TLP, Recipients: o.Recipients}})
		}
		_, err = tx.Exec(ctx, insertObjectsSQL, cid, rows.added, rows.id, rows.typ, rows.spec, rows.version, rows.versionRaw, rows.latest, rows.body,
			rows.submitter, rows.tlp, rows.recipients)
		return err
	})
}

// ImportChanges implements store.Importer.
func (s *Store) ImportChanges(ctx context.Context, collectionID string, changes []store.Change) error {
	return s.importTx(ctx, "change log", func(tx pgx.Tx) error {
		cid, err := collectionKey(ctx, tx, collectionID)
		if err != nil {
			return err
		}
		seq, at := make([]int64, len(changes)), make([]int64, len(changes))
		op, oid, ver := make([]string, len(changes)), make([]string, len(changes)), make([]string, len(changes))
		for i, c := range changes {
			seq[i], op[i], oid[i], ver[i], at[i] = c.Seq, string(c.Op), c.ObjectID, c.VersionRaw, micros(c.At)
		}
		_, err = tx.Exec(ctx, `INSERT INTO changes (cid, seq, op, object_id, version_raw, at)
			SELECT $1, u.* FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[]) AS u`, cid, seq, op, oid, ver, at)
		return err
	})
}

// ImportStatuses implements store.Importer.
func (s *Store) ImportStatuses(ctx context.Context, statuses []*store.Status) error {
	return s.importTx(ctx, "statuses", func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, st := range statuses {
			b.Queue(`INSERT INTO statuses (`+statusCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, statusArgs(st)...)
		}
		return tx.SendBatch(ctx, b).Close()
	})
}

// ImportAudit implements store.Importer. The audit sequence continues after
// the greatest imported seq.
func (s *Store) ImportAudit(ctx context.Context, recs []store.AuditRecord) error {
	return s.importTx(ctx, "audit", func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, r := range recs {
			objs := r.Objects
			if objs == nil {
				objs = []string{}
			}
			b.Queue(`INSERT INTO audit (seq, at, principal, organisation, action, path, collection, objects, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
				r.Seq, micros(r.At), r.Principal, r.Organisation, r.Action, r.Path, r.Collection, objs, r.Detail)
		}
		b.Queue(`SELECT setval(pg_get_serial_sequence('audit', 'seq'), (SELECT max(seq) FROM audit))`)
		return tx.SendBatch(ctx, b).Close()
	})
}
