package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/store"
)

// --- organisations ---------------------------------------------------------

const orgCols = `id, name, created, anonymise_sightings, is_default`

func scanOrg(sc Row) (*store.Organisation, error) {
	var o store.Organisation
	var created int64
	if err := sc.Scan(&o.ID, &o.Name, &created, &o.AnonymiseSightings, &o.Default); err != nil {
		return nil, err
	}
	o.Created = fromMicros(created)
	return &o, nil
}

// DefaultOrganisation implements store.Users.
func (s *Store) DefaultOrganisation(ctx context.Context) (*store.Organisation, error) {
	return one(s.db.QueryRow(ctx, `SELECT `+orgCols+` FROM organisations WHERE is_default`), scanOrg, "default organisation", "default organisation")
}

// CreateOrganisation implements store.Users.
func (s *Store) CreateOrganisation(ctx context.Context, o *store.Organisation) error {
	if strings.TrimSpace(o.Name) == "" {
		return fmt.Errorf("organisation name is empty: %w", store.ErrInvalid)
	}
	if o.ID == "" {
		o.ID = "identity--" + uuid.NewString()
	} else if !strings.HasPrefix(o.ID, "identity--") || uuid.Validate(strings.TrimPrefix(o.ID, "identity--")) != nil {
		return fmt.Errorf("organisation id %q is not an identity id: %w", o.ID, store.ErrInvalid)
	}
	o.Created = fromMicros(micros(s.now()))
	_, err := s.db.Exec(ctx, `INSERT INTO organisations (id, name, created, anonymise_sightings) VALUES (?, ?, ?, ?)`,
		o.ID, o.Name, micros(o.Created), o.AnonymiseSightings)
	if s.d.IsUnique(err) {
		return fmt.Errorf("organisation %q exists: %w", o.Name, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create organisation: %w", err)
	}
	return nil
}

// GetOrganisation implements store.Users.
func (s *Store) GetOrganisation(ctx context.Context, idOrName string) (*store.Organisation, error) {
	return one(s.db.QueryRow(ctx, `SELECT `+orgCols+` FROM organisations WHERE id = ? OR name = ? ORDER BY id = ? DESC LIMIT 1`, idOrName, idOrName, idOrName),
		scanOrg, fmt.Sprintf("organisation %q", idOrName), "get organisation")
}

// ListOrganisations implements store.Users.
func (s *Store) ListOrganisations(ctx context.Context) ([]*store.Organisation, error) {
	rows, err := s.db.Query(ctx, `SELECT `+orgCols+` FROM organisations ORDER BY created, name`+s.d.Binary())
	return collect(rows, err, "list organisations", scanOrg)
}

// DeleteOrganisation implements store.Users.
func (s *Store) DeleteOrganisation(ctx context.Context, id string) error {
	return s.write(ctx, "delete organisation", func(tx Tx) error {
		var isDefault bool
		// Locked: a user created meanwhile in another transaction either
		// commits first (and is counted) or fails its foreign key.
		err := tx.QueryRow(ctx, `SELECT is_default FROM organisations WHERE id = ?`+s.d.ForUpdate(), id).Scan(&isDefault)
		if noRows(err) {
			return fmt.Errorf("organisation %q: %w", id, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("delete organisation: %w", err)
		}
		if isDefault {
			return fmt.Errorf("the default organisation cannot be deleted: %w", store.ErrConflict)
		}
		var users int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM users WHERE organisation = ?`, id).Scan(&users); err != nil {
			return fmt.Errorf("delete organisation: %w", err)
		}
		if users > 0 {
			return fmt.Errorf("organisation %s still has %d users: %w", id, users, store.ErrConflict)
		}
		for _, q := range []string{
			`DELETE FROM group_members WHERE organisation = ?`,
			`DELETE FROM party_grants WHERE kind = 'org' AND subject = ?`,
			`DELETE FROM organisations WHERE id = ?`,
		} {
			if _, err := tx.Exec(ctx, q, id); err != nil {
				if s.d.IsForeignKey(err) {
					return fmt.Errorf("organisation %s is still in use: %w", id, store.ErrConflict)
				}
				return fmt.Errorf("delete organisation: %w", err)
			}
		}
		return nil
	})
}

// missingOrgs returns those of ids that are not organisations, in order.
func (s *Store) missingOrgs(ctx context.Context, q Querier, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var a Args
	rows, err := q.Query(ctx, `SELECT id FROM organisations WHERE `+s.d.In(&a, "id", ids)+s.d.ForShare(), a...)
	found, err := collect(rows, err, "organisations", func(r Row) (string, error) {
		var id string
		return id, r.Scan(&id)
	})
	if err != nil {
		return nil, err
	}
	have := make(map[string]bool, len(found))
	for _, id := range found {
		have[id] = true
	}
	var missing []string
	for _, id := range ids {
		if !have[id] {
			missing = append(missing, id)
		}
	}
	return missing, nil
}

// --- groups ----------------------------------------------------------------

// CreateGroup implements store.Groups.
func (s *Store) CreateGroup(ctx context.Context, g *store.Group) error {
	if strings.TrimSpace(g.Name) == "" {
		return fmt.Errorf("group name is empty: %w", store.ErrInvalid)
	}
	if g.ID == "" {
		g.ID = uuid.NewString()
	}
	g.Created = fromMicros(micros(s.now()))
	return s.write(ctx, "create group", func(tx Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO groups_ (id, name, created) VALUES (?, ?, ?)`, g.ID, g.Name, micros(g.Created))
		if s.d.IsUnique(err) {
			return fmt.Errorf("group %q exists: %w", g.Name, store.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("create group: %w", err)
		}
		return s.addMembers(ctx, tx, g.ID, g.Orgs)
	})
}

func (s *Store) addMembers(ctx context.Context, tx Tx, group string, orgs []string) error {
	missing, err := s.missingOrgs(ctx, tx, orgs)
	if err != nil {
		return fmt.Errorf("group members: %w", err)
	}
	if len(missing) > 0 {
		return fmt.Errorf("organisation %q: %w", missing[0], store.ErrNotFound)
	}
	b := &Batch{}
	for _, o := range orgs {
		b.Queue(`INSERT INTO group_members (group_id, organisation) VALUES (?, ?) ON CONFLICT DO NOTHING`, group, o)
	}
	err = tx.Send(ctx, b)
	if s.d.IsForeignKey(err) {
		return fmt.Errorf("group members: an organisation was deleted meanwhile: %w", store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("group members: %w", err)
	}
	return nil
}

func (s *Store) listGroups(ctx context.Context, where string, args ...any) ([]*store.Group, error) {
	rows, err := s.db.Query(ctx, `SELECT g.id, g.name, g.created, m.organisation
		FROM groups_ g LEFT JOIN group_members m ON m.group_id = g.id `+where+`
		ORDER BY g.created, g.name`+s.d.Binary()+`, g.id, m.organisation`+s.d.Binary(), args...)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	defer rows.Close()
	var out []*store.Group
	for rows.Next() {
		var g store.Group
		var created int64
		var member *string
		if err := rows.Scan(&g.ID, &g.Name, &created, &member); err != nil {
			return nil, fmt.Errorf("list groups: %w", err)
		}
		if len(out) == 0 || out[len(out)-1].ID != g.ID {
			g.Created = fromMicros(created)
			out = append(out, &g)
		}
		if member != nil {
			cur := out[len(out)-1]
			cur.Orgs = append(cur.Orgs, *member)
		}
	}
	return out, rows.Err()
}

// GetGroup implements store.Groups.
func (s *Store) GetGroup(ctx context.Context, idOrName string) (*store.Group, error) {
	gs, err := s.listGroups(ctx, `WHERE g.id = ? OR g.name = ?`, idOrName, idOrName)
	if err != nil {
		return nil, err
	}
	if len(gs) == 0 {
		return nil, fmt.Errorf("group %q: %w", idOrName, store.ErrNotFound)
	}
	for _, g := range gs {
		if g.ID == idOrName {
			return g, nil
		}
	}
	return gs[0], nil
}

// ListGroups implements store.Groups.
func (s *Store) ListGroups(ctx context.Context) ([]*store.Group, error) {
	return s.listGroups(ctx, "")
}

// DeleteGroup implements store.Groups.
func (s *Store) DeleteGroup(ctx context.Context, id string) error {
	return s.deleteRows(ctx, "delete group", fmt.Sprintf("group %q", id), id,
		`DELETE FROM group_members WHERE group_id = ?`, `DELETE FROM party_grants WHERE kind = 'group' AND subject = ?`, `DELETE FROM groups_ WHERE id = ?`)
}

// GroupsOf implements store.Groups.
func (s *Store) GroupsOf(ctx context.Context, org string) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT group_id FROM group_members WHERE organisation = ? ORDER BY group_id`+s.d.Binary(), org)
	return collect(rows, err, "groups of "+org, func(r Row) (string, error) {
		var g string
		return g, r.Scan(&g)
	})
}

// --- collection grants and policy ------------------------------------------

// SetPartyGrant implements store.Collections.
func (s *Store) SetPartyGrant(ctx context.Context, collectionID, kind, subject string, read, write bool) error {
	return s.onCollection(ctx, "grant", collectionID, func(tx Tx, cid int64) error {
		return s.setPartyGrant(ctx, tx, cid, store.Grant{Kind: kind, Subject: subject, Read: read, Write: write})
	})
}

func (s *Store) setPartyGrant(ctx context.Context, tx Tx, cid int64, g store.Grant) error {
	var table string
	switch g.Kind {
	case store.GrantOrg:
		table = "organisations"
	case store.GrantGroup:
		table = "groups_"
	default:
		return fmt.Errorf("grant kind %q: %w", g.Kind, store.ErrInvalid)
	}
	// Locked against deletes: the organisation or group cannot go before
	// this transaction ends, so no grant to a deleted party is left behind.
	var ok int
	if err := tx.QueryRow(ctx, `SELECT 1 FROM `+table+` WHERE id = ?`+s.d.ForShare(), g.Subject).Scan(&ok); noRows(err) {
		return fmt.Errorf("%s %q: %w", g.Kind, g.Subject, store.ErrNotFound)
	} else if err != nil {
		return fmt.Errorf("grant: %w", err)
	}
	var err error
	if !g.Read && !g.Write {
		_, err = tx.Exec(ctx, `DELETE FROM party_grants WHERE cid = ? AND kind = ? AND subject = ?`, cid, g.Kind, g.Subject)
	} else {
		_, err = tx.Exec(ctx, `INSERT INTO party_grants (cid, kind, subject, can_read, can_write) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (cid, kind, subject) DO UPDATE SET can_read = excluded.can_read, can_write = excluded.can_write`,
			cid, g.Kind, g.Subject, g.Read, g.Write)
	}
	if err != nil {
		return fmt.Errorf("grant: %w", err)
	}
	return nil
}

// SetCollectionPolicy implements store.Collections.
func (s *Store) SetCollectionPolicy(ctx context.Context, collectionID string, defaultTLP int, recipients []string) error {
	return s.onCollection(ctx, "collection policy", collectionID, func(tx Tx, cid int64) error {
		return s.setPolicy(ctx, tx, cid, defaultTLP, recipients)
	})
}

func (s *Store) setPolicy(ctx context.Context, tx Tx, cid int64, defaultTLP int, recipients []string) error {
	if defaultTLP < 1 || defaultTLP > 5 {
		return fmt.Errorf("default TLP %d out of range: %w", defaultTLP, store.ErrInvalid)
	}
	missing, err := s.missingOrgs(ctx, tx, recipients)
	if err != nil {
		return fmt.Errorf("collection policy: %w", err)
	}
	if len(missing) > 0 {
		return fmt.Errorf("recipient organisation %q: %w", missing[0], store.ErrNotFound)
	}
	if _, err := tx.Exec(ctx, `UPDATE collections SET default_tlp = ?, recipients = ? WHERE cid = ?`, defaultTLP, JSONList(recipients), cid); err != nil {
		return fmt.Errorf("collection policy: %w", err)
	}
	return nil
}

// loadPartyGrants fills the organisation and group grants of cols, in one
// query.
func (s *Store) loadPartyGrants(ctx context.Context, cols []store.CollectionRecord) error {
	if len(cols) == 0 {
		return nil
	}
	byID := make(map[string]*store.Collection, len(cols))
	ids := make([]string, len(cols))
	for i := range cols {
		byID[cols[i].ID] = &cols[i].Collection
		ids[i] = cols[i].ID
	}
	var a Args
	rows, err := s.db.Query(ctx, `SELECT c.id, g.kind, g.subject, g.can_read, g.can_write FROM party_grants g JOIN collections c ON c.cid = g.cid
		WHERE `+s.d.In(&a, "c.id", ids)+` ORDER BY c.cid, g.kind`+s.d.Binary()+`, g.subject`+s.d.Binary(), a...)
	if err != nil {
		return fmt.Errorf("collection grants: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var g store.Grant
		if err := rows.Scan(&id, &g.Kind, &g.Subject, &g.Read, &g.Write); err != nil {
			return fmt.Errorf("collection grants: %w", err)
		}
		if c := byID[id]; c != nil {
			c.Grants = append(c.Grants, g)
		}
	}
	return rows.Err()
}

// --- audit -----------------------------------------------------------------

const auditCols = `seq, at, principal, organisation, action, path, collection, objects, detail`

// AppendAudit implements store.Audit.
func (s *Store) AppendAudit(ctx context.Context, recs ...store.AuditRecord) error {
	if len(recs) == 0 {
		return nil
	}
	return s.write(ctx, "audit", func(tx Tx) error {
		b := &Batch{}
		for _, r := range recs {
			at := r.At
			if at.IsZero() {
				at = s.now()
			}
			b.Queue(`INSERT INTO audit (at, principal, organisation, action, path, collection, objects, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				micros(at), r.Principal, r.Organisation, r.Action, r.Path, r.Collection, s.d.ListValue(r.Objects), r.Detail)
		}
		if err := tx.Send(ctx, b); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		return nil
	})
}

// ListAudit implements store.Audit.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditRecord, error) {
	var a Args
	q := `SELECT ` + auditCols + ` FROM audit WHERE true`
	if f.Principal != "" {
		q += ` AND principal = ` + a.Add(f.Principal)
	}
	if f.Action != "" {
		if strings.HasSuffix(f.Action, ".") {
			q += ` AND substr(action, 1, ` + a.Add(utf8.RuneCountInString(f.Action)) + `) = ` + a.Add(f.Action)
		} else {
			q += ` AND action = ` + a.Add(f.Action)
		}
	}
	if f.Object != "" {
		q += ` AND ` + s.d.HasElem(&a, "objects", f.Object)
	}
	if !f.Since.IsZero() {
		q += ` AND at >= ` + a.Add(micros(f.Since))
	}
	if f.Before > 0 {
		q += ` AND seq < ` + a.Add(f.Before)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	q += ` ORDER BY seq DESC LIMIT ` + a.Add(limit)
	return s.auditRows(ctx, q, a...)
}

func (s *Store) auditRows(ctx context.Context, q string, args ...any) ([]store.AuditRecord, error) {
	rows, err := s.db.Query(ctx, q, args...)
	return collect(rows, err, "list audit", func(r Row) (store.AuditRecord, error) {
		var rec store.AuditRecord
		var at int64
		if err := r.Scan(&rec.Seq, &at, &rec.Principal, &rec.Organisation, &rec.Action, &rec.Path, &rec.Collection, s.d.ListDest(&rec.Objects), &rec.Detail); err != nil {
			return rec, err
		}
		rec.At = fromMicros(at)
		if len(rec.Objects) == 0 {
			rec.Objects = nil
		}
		return rec, nil
	})
}
