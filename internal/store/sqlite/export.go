package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/mitra-cert/mitra/internal/store"
)

var (
	_ store.Exporter = (*Store)(nil)
	_ store.Importer = (*Store)(nil)
)

// Counts implements store.Exporter.
func (s *Store) Counts(ctx context.Context) (store.Counts, error) {
	var c store.Counts
	err := s.r.QueryRowContext(ctx, `SELECT
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
	cols, err := s.ListCollections(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]store.CollectionRecord, len(cols))
	for i, c := range cols {
		var lastAdded int64
		if err := s.r.QueryRowContext(ctx, `SELECT last_added, last_seq FROM collections WHERE id = ?`, c.ID).Scan(&lastAdded, &out[i].LastSeq); err != nil {
			return nil, fmt.Errorf("export collections: %w", err)
		}
		out[i].Collection, out[i].LastAdded = *c, fromMicros(lastAdded)
	}
	return out, nil
}

// ExportObjects implements store.Exporter. It pages by date_added, which is
// unique within a collection.
func (s *Store) ExportObjects(ctx context.Context, collectionID string, fn func([]store.ObjectRecord) error) error {
	cid, err := s.collectionKey(ctx, s.r, collectionID)
	if err != nil {
		return err
	}
	var after int64 = -1 << 62
	for {
		rows, err := s.r.QueryContext(ctx, `SELECT id, type, spec_version, version_raw, date_added, submitter, tlp, recipients, body, version, latest
			FROM objects WHERE cid = ? AND date_added > ? ORDER BY date_added LIMIT ?`, cid, after, store.ExportBatch)
		if err != nil {
			return fmt.Errorf("export objects: %w", err)
		}
		batch := make([]store.ObjectRecord, 0, store.ExportBatch)
		for rows.Next() {
			var o store.ObjectRecord
			var recipients string
			if err := rows.Scan(&o.ID, &o.Type, &o.SpecVersion, &o.VersionRaw, &after, &o.Submitter, &o.TLP, &recipients, &o.Raw, &o.Version, &o.Latest); err != nil {
				rows.Close()
				return fmt.Errorf("export objects: %w", err)
			}
			o.DateAdded = fromMicros(after)
			if recipients != "" && recipients != "[]" {
				if err := json.Unmarshal([]byte(recipients), &o.Recipients); err != nil {
					rows.Close()
					return fmt.Errorf("export objects: %w", err)
				}
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
		rows, err := s.r.QueryContext(ctx, `SELECT id FROM statuses WHERE id > ? ORDER BY id LIMIT ?`, after, store.ExportBatch)
		if err != nil {
			return fmt.Errorf("export statuses: %w", err)
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("export statuses: %w", err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("export statuses: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		batch := make([]*store.Status, len(ids))
		for i, id := range ids {
			if batch[i], err = s.GetStatus(ctx, id); err != nil {
				return err
			}
		}
		if err := fn(batch); err != nil {
			return err
		}
		after = ids[len(ids)-1]
	}
}

// ExportAudit implements store.Exporter.
func (s *Store) ExportAudit(ctx context.Context, fn func([]store.AuditRecord) error) error {
	var after int64
	for {
		rows, err := s.r.QueryContext(ctx, `SELECT seq, at, principal, organisation, action, path, collection, objects, detail FROM audit
			WHERE seq > ? ORDER BY seq LIMIT ?`, after, store.ExportBatch)
		if err != nil {
			return fmt.Errorf("export audit: %w", err)
		}
		var batch []store.AuditRecord
		for rows.Next() {
			var r store.AuditRecord
			var at int64
			var objs string
			if err := rows.Scan(&r.Seq, &at, &r.Principal, &r.Organisation, &r.Action, &r.Path, &r.Collection, &objs, &r.Detail); err != nil {
				rows.Close()
				return fmt.Errorf("export audit: %w", err)
			}
			r.At = fromMicros(at)
			if err := json.Unmarshal([]byte(objs), &r.Objects); err != nil {
				rows.Close()
				return fmt.Errorf("export audit: %w", err)
			}
			if len(r.Objects) == 0 {
				r.Objects = nil
			}
			batch = append(batch, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("export audit: %w", err)
		}
		if len(batch) == 0 {
			return nil
		}
		if err := fn(batch); err != nil {
			return err
		}
		after = batch[len(batch)-1].Seq
	}
}

// importTx runs fn in one write transaction, mapping unique violations to
// store.ErrConflict.
func (s *Store) importTx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("import %s: %w", what, err)
	}
	defer tx.Rollback()
	err = fn(tx)
	if err == nil {
		err = tx.Commit()
	}
	switch {
	case err == nil:
		return nil
	case isUnique(err):
		return fmt.Errorf("import %s: %w: %v", what, store.ErrConflict, err)
	default:
		return fmt.Errorf("import %s: %w", what, err)
	}
}

// ImportOrganisations implements store.Importer.
func (s *Store) ImportOrganisations(ctx context.Context, orgs []*store.Organisation) error {
	return s.importTx(ctx, "organisations", func(tx *sql.Tx) error {
		for _, o := range orgs {
			if o.Default {
				// The imported default replaces the store's own.
				if _, err := tx.ExecContext(ctx, `DELETE FROM organisations WHERE is_default = 1 AND id <> ?`, o.ID); err != nil {
					return err
				}
			}
		}
		for _, o := range orgs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO organisations (id, name, created, is_default, anonymise_sightings) VALUES (?, ?, ?, ?, ?)`,
				o.ID, o.Name, micros(o.Created), o.Default, o.AnonymiseSightings); err != nil {
				return err
			}
		}
		return nil
	})
}

// ImportUsers implements store.Importer.
func (s *Store) ImportUsers(ctx context.Context, users []*store.User) error {
	return s.importTx(ctx, "users", func(tx *sql.Tx) error {
		for _, u := range users {
			if _, err := tx.ExecContext(ctx, `INSERT INTO users (name, organisation, role, password_hash, created) VALUES (?, ?, ?, ?, ?)`,
				u.Name, u.Organisation, u.Role, u.PasswordHash, micros(u.Created)); err != nil {
				return err
			}
		}
		return nil
	})
}

// ImportTokens implements store.Importer.
func (s *Store) ImportTokens(ctx context.Context, tokens []*store.Token) error {
	return s.importTx(ctx, "tokens", func(tx *sql.Tx) error {
		for _, t := range tokens {
			var expires int64
			if !t.Expires.IsZero() {
				expires = micros(t.Expires)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO tokens (id, user_name, hash, role, created, expires, revoked) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				t.ID, t.User, t.Hash, t.Role, micros(t.Created), expires, t.Revoked); err != nil {
				return err
			}
		}
		return nil
	})
}

// ImportGroups implements store.Importer.
func (s *Store) ImportGroups(ctx context.Context, groups []*store.Group) error {
	return s.importTx(ctx, "groups", func(tx *sql.Tx) error {
		for _, g := range groups {
			if _, err := tx.ExecContext(ctx, `INSERT INTO groups_ (id, name, created) VALUES (?, ?, ?)`, g.ID, g.Name, micros(g.Created)); err != nil {
				return err
			}
			for _, org := range g.Orgs {
				if _, err := tx.ExecContext(ctx, `INSERT INTO group_members (group_id, organisation) VALUES (?, ?)`, g.ID, org); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// ImportCollection implements store.Importer.
func (s *Store) ImportCollection(ctx context.Context, c store.CollectionRecord) error {
	return s.importTx(ctx, "collection "+c.ID, func(tx *sql.Tx) error {
		var alias any
		if c.Alias != "" {
			alias = c.Alias
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO collections (id, title, description, alias, created, last_added, last_seq, default_tlp, recipients)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.Title, c.Description, alias, micros(c.Created), micros(c.LastAdded), c.LastSeq, c.DefaultTLP, jsonList(c.Recipients))
		if err != nil {
			return err
		}
		cid, err := res.LastInsertId()
		if err != nil {
			return err
		}
		grants := map[string][2]bool{}
		for _, u := range c.Readers {
			g := grants[u]
			g[0] = true
			grants[u] = g
		}
		for _, u := range c.Writers {
			g := grants[u]
			g[1] = true
			grants[u] = g
		}
		for u, g := range grants {
			if err := setGrant(ctx, tx, cid, u, g[0], g[1]); err != nil {
				return err
			}
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
	return s.importTx(ctx, "objects", func(tx *sql.Tx) error {
		cid, err := s.collectionKey(ctx, tx, collectionID)
		if err != nil {
			return err
		}
		st, err := tx.PrepareContext(ctx, objectCols+"(?,?,?,?,?,?,?,?,?,?,?,?)")
		if err != nil {
			return err
		}
		defer st.Close()
		for _, o := range objs {
			if _, err := st.ExecContext(ctx, cid, micros(o.DateAdded), o.ID, o.Type, o.SpecVersion, o.Version, o.VersionRaw, o.Latest, o.Raw,
				o.Submitter, o.TLP, jsonList(o.Recipients)); err != nil {
				return err
			}
		}
		return nil
	})
}

// ImportChanges implements store.Importer.
func (s *Store) ImportChanges(ctx context.Context, collectionID string, changes []store.Change) error {
	return s.importTx(ctx, "change log", func(tx *sql.Tx) error {
		cid, err := s.collectionKey(ctx, tx, collectionID)
		if err != nil {
			return err
		}
		for _, c := range changes {
			if _, err := tx.ExecContext(ctx, `INSERT INTO changes (cid, seq, op, object_id, version_raw, at) VALUES (?, ?, ?, ?, ?, ?)`,
				cid, c.Seq, string(c.Op), c.ObjectID, c.VersionRaw, micros(c.At)); err != nil {
				return err
			}
		}
		return nil
	})
}

// ImportStatuses implements store.Importer.
func (s *Store) ImportStatuses(ctx context.Context, statuses []*store.Status) error {
	return s.importTx(ctx, "statuses", func(tx *sql.Tx) error {
		for _, st := range statuses {
			var exists int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM statuses WHERE id = ?`, st.ID).Scan(&exists)
			if err == nil {
				return fmt.Errorf("status %s exists: %w", st.ID, store.ErrConflict)
			}
			if err := saveStatus(ctx, tx, st); err != nil {
				return err
			}
		}
		return nil
	})
}

// ImportAudit implements store.Importer.
func (s *Store) ImportAudit(ctx context.Context, recs []store.AuditRecord) error {
	return s.importTx(ctx, "audit", func(tx *sql.Tx) error {
		for _, r := range recs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO audit (seq, at, principal, organisation, action, path, collection, objects, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				r.Seq, micros(r.At), r.Principal, r.Organisation, r.Action, r.Path, r.Collection, jsonList(r.Objects), r.Detail); err != nil {
				return err
			}
		}
		return nil
	})
}
