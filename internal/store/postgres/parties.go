package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/mitra-cert/mitra/internal/store"
)

// --- organisations ---------------------------------------------------------

const orgCols = `id, name, created, anonymise_sightings, is_default`

func scanOrg(sc pgx.Row) (*store.Organisation, error) {
	var o store.Organisation
	var created int64
	if err := sc.Scan(&o.ID, &o.Name, &created, &o.AnonymiseSightings, &o.Default); err != nil {
		return nil, err
	}
	o.Created = fromMicros(created)
	return &o, nil
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
	_, err := s.pool.Exec(ctx, `INSERT INTO organisations (id, name, created, anonymise_sightings) VALUES ($1, $2, $3, $4)`,
		o.ID, o.Name, micros(o.Created), o.AnonymiseSightings)
	if isUnique(err) {
		return fmt.Errorf("organisation %q exists: %w", o.Name, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create organisation: %w", err)
	}
	return nil
}

// GetOrganisation implements store.Users.
func (s *Store) GetOrganisation(ctx context.Context, idOrName string) (*store.Organisation, error) {
	o, err := scanOrg(s.pool.QueryRow(ctx, `SELECT `+orgCols+` FROM organisations WHERE id = $1 OR name = $1 ORDER BY id = $1 DESC LIMIT 1`, idOrName))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("organisation %q: %w", idOrName, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get organisation: %w", err)
	}
	return o, nil
}

// ListOrganisations implements store.Users.
func (s *Store) ListOrganisations(ctx context.Context) ([]*store.Organisation, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+orgCols+` FROM organisations ORDER BY created, name COLLATE "C"`)
	return collect(rows, err, "list organisations", scanOrg)
}

// DeleteOrganisation implements store.Users.
func (s *Store) DeleteOrganisation(ctx context.Context, id string) error {
	tx, err := s.beginWrite(ctx)
	if err != nil {
		return fmt.Errorf("delete organisation: %w", err)
	}
	defer tx.Rollback(ctx)
	var isDefault bool
	// FOR UPDATE: a user created meanwhile in another transaction either
	// commits first (and is counted) or fails its foreign key.
	err = tx.QueryRow(ctx, `SELECT is_default FROM organisations WHERE id = $1 FOR UPDATE`, id).Scan(&isDefault)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("organisation %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("delete organisation: %w", err)
	}
	if isDefault {
		return fmt.Errorf("the default organisation cannot be deleted: %w", store.ErrConflict)
	}
	var users int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM users WHERE organisation = $1`, id).Scan(&users); err != nil {
		return fmt.Errorf("delete organisation: %w", err)
	}
	if users > 0 {
		return fmt.Errorf("organisation %s still has %d users: %w", id, users, store.ErrConflict)
	}
	for _, q := range []string{
		`DELETE FROM group_members WHERE organisation = $1`,
		`DELETE FROM party_grants WHERE kind = 'org' AND subject = $1`,
		`DELETE FROM organisations WHERE id = $1`,
	} {
		if _, err := tx.Exec(ctx, q, id); err != nil {
			if isForeignKey(err) {
				return fmt.Errorf("organisation %s is still in use: %w", id, store.ErrConflict)
			}
			return fmt.Errorf("delete organisation: %w", err)
		}
	}
	return tx.Commit(ctx)
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
	tx, err := s.beginWrite(ctx)
	if err != nil {
		return fmt.Errorf("create group: %w", err)
	}
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, `INSERT INTO groups_ (id, name, created) VALUES ($1, $2, $3)`, g.ID, g.Name, micros(g.Created))
	if isUnique(err) {
		return fmt.Errorf("group %q exists: %w", g.Name, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create group: %w", err)
	}
	if err := addMembers(ctx, tx, g.ID, g.Orgs); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func addMembers(ctx context.Context, tx pgx.Tx, group string, orgs []string) error {
	if len(orgs) == 0 {
		return nil
	}
	var missing []string
	if err := tx.QueryRow(ctx, `SELECT COALESCE(array_agg(o), '{}') FROM unnest($1::text[]) AS o WHERE NOT EXISTS (SELECT 1 FROM organisations WHERE id = o)`, orgs).Scan(&missing); err != nil {
		return fmt.Errorf("group members: %w", err)
	}
	if len(missing) > 0 {
		return fmt.Errorf("organisation %q: %w", missing[0], store.ErrNotFound)
	}
	_, err := tx.Exec(ctx, `INSERT INTO group_members (group_id, organisation) SELECT $1, o FROM unnest($2::text[]) AS o ON CONFLICT DO NOTHING`, group, orgs)
	if isForeignKey(err) {
		return fmt.Errorf("group members: an organisation was deleted meanwhile: %w", store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("group members: %w", err)
	}
	return nil
}

func (s *Store) listGroups(ctx context.Context, where string, args ...any) ([]*store.Group, error) {
	rows, err := s.pool.Query(ctx, `SELECT g.id, g.name, g.created, COALESCE(array_agg(m.organisation ORDER BY m.organisation COLLATE "C") FILTER (WHERE m.organisation IS NOT NULL), '{}')
		FROM groups_ g LEFT JOIN group_members m ON m.group_id = g.id `+where+`
		GROUP BY g.id, g.name, g.created ORDER BY g.created, g.name COLLATE "C"`, args...)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	defer rows.Close()
	var out []*store.Group
	for rows.Next() {
		var g store.Group
		var created int64
		if err := rows.Scan(&g.ID, &g.Name, &created, &g.Orgs); err != nil {
			return nil, fmt.Errorf("list groups: %w", err)
		}
		g.Created = fromMicros(created)
		if len(g.Orgs) == 0 {
			g.Orgs = nil
		}
		out = append(out, &g)
	}
	return out, rows.Err()
}

// GetGroup implements store.Groups.
func (s *Store) GetGroup(ctx context.Context, idOrName string) (*store.Group, error) {
	gs, err := s.listGroups(ctx, `WHERE g.id = $1 OR g.name = $1`, idOrName)
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
	tx, err := s.beginWrite(ctx)
	if err != nil {
		return fmt.Errorf("delete group: %w", err)
	}
	defer tx.Rollback(ctx)
	for _, q := range []string{`DELETE FROM group_members WHERE group_id = $1`, `DELETE FROM party_grants WHERE kind = 'group' AND subject = $1`} {
		if _, err := tx.Exec(ctx, q, id); err != nil {
			return fmt.Errorf("delete group: %w", err)
		}
	}
	tag, err := tx.Exec(ctx, `DELETE FROM groups_ WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete group: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("group %q: %w", id, store.ErrNotFound)
	}
	return tx.Commit(ctx)
}

// GroupsOf implements store.Groups.
func (s *Store) GroupsOf(ctx context.Context, org string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT group_id FROM group_members WHERE organisation = $1 ORDER BY group_id COLLATE "C"`, org)
	if err != nil {
		return nil, fmt.Errorf("groups of %s: %w", org, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("groups of %s: %w", org, err)
	}
	return out, nil
}

// --- collection grants and policy ------------------------------------------

// SetPartyGrant implements store.Collections.
func (s *Store) SetPartyGrant(ctx context.Context, collectionID, kind, subject string, read, write bool) error {
	tx, err := s.beginWrite(ctx)
	if err != nil {
		return fmt.Errorf("grant: %w", err)
	}
	defer tx.Rollback(ctx)
	cid, err := collectionKey(ctx, tx, collectionID)
	if err != nil {
		return err
	}
	if err := setPartyGrant(ctx, tx, cid, store.Grant{Kind: kind, Subject: subject, Read: read, Write: write}); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func setPartyGrant(ctx context.Context, tx pgx.Tx, cid int64, g store.Grant) error {
	var table string
	switch g.Kind {
	case store.GrantOrg:
		table = "organisations"
	case store.GrantGroup:
		table = "groups_"
	default:
		return fmt.Errorf("grant kind %q: %w", g.Kind, store.ErrInvalid)
	}
	// FOR SHARE: the organisation or group cannot be deleted before this
	// transaction ends, so no grant to a deleted party is left behind.
	var ok int
	if err := tx.QueryRow(ctx, `SELECT 1 FROM `+table+` WHERE id = $1 FOR SHARE`, g.Subject).Scan(&ok); errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s %q: %w", g.Kind, g.Subject, store.ErrNotFound)
	} else if err != nil {
		return fmt.Errorf("grant: %w", err)
	}
	var err error
	if !g.Read && !g.Write {
		_, err = tx.Exec(ctx, `DELETE FROM party_grants WHERE cid = $1 AND kind = $2 AND subject = $3`, cid, g.Kind, g.Subject)
	} else {
		_, err = tx.Exec(ctx, `INSERT INTO party_grants (cid, kind, subject, can_read, can_write) VALUES ($1, $2, $3, $4, $5)
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
	tx, err := s.beginWrite(ctx)
	if err != nil {
		return fmt.Errorf("collection policy: %w", err)
	}
	defer tx.Rollback(ctx)
	cid, err := collectionKey(ctx, tx, collectionID)
	if err != nil {
		return err
	}
	if err := setPolicy(ctx, tx, cid, defaultTLP, recipients); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func setPolicy(ctx context.Context, tx pgx.Tx, cid int64, defaultTLP int, recipients []string) error {
	if defaultTLP < 1 || defaultTLP > 5 {
		return fmt.Errorf("default TLP %d out of range: %w", defaultTLP, store.ErrInvalid)
	}
	if len(recipients) > 0 {
		var missing []string
		if err := tx.QueryRow(ctx, `SELECT COALESCE(array_agg(o), '{}') FROM unnest($1::text[]) AS o WHERE NOT EXISTS (SELECT 1 FROM organisations WHERE id = o)`, recipients).Scan(&missing); err != nil {
			return fmt.Errorf("collection policy: %w", err)
		}
		if len(missing) > 0 {
			return fmt.Errorf("recipient organisation %q: %w", missing[0], store.ErrNotFound)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE collections SET default_tlp = $1, recipients = $2 WHERE cid = $3`, defaultTLP, jsonList(recipients), cid); err != nil {
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
	rows, err := s.pool.Query(ctx, `SELECT c.id, g.kind, g.subject, g.can_read, g.can_write FROM party_grants g JOIN collections c ON c.cid = g.cid
		WHERE c.id = ANY($1::text[]) ORDER BY c.cid, g.kind COLLATE "C", g.subject COLLATE "C"`, ids)
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

// jsonList encodes a list of strings for a JSON text column ("[]" when
// empty), as the embedded store does.
func jsonList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l) // strings: cannot fail
	return string(b)
}

// parseList decodes a JSON text list; empty gives nil.
func parseList(s string) ([]string, error) {
	if s == "" || s == "[]" {
		return nil, nil
	}
	var l []string
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, err
	}
	return l, nil
}

// --- audit -----------------------------------------------------------------

// AppendAudit implements store.Audit.
func (s *Store) AppendAudit(ctx context.Context, recs ...store.AuditRecord) error {
	if len(recs) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, r := range recs {
		at := r.At
		if at.IsZero() {
			at = s.now()
		}
		objs := r.Objects
		if objs == nil {
			objs = []string{}
		}
		b.Queue(`INSERT INTO audit (at, principal, organisation, action, path, collection, objects, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			micros(at), r.Principal, r.Organisation, r.Action, r.Path, r.Collection, objs, r.Detail)
	}
	// A batch outside a transaction runs as one implicit transaction.
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// ListAudit implements store.Audit.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditRecord, error) {
	var a args
	q := `SELECT seq, at, principal, organisation, action, path, collection, objects, detail FROM audit WHERE true`
	if f.Principal != "" {
		q += ` AND principal = ` + a.add(f.Principal)
	}
	if f.Action != "" {
		if strings.HasSuffix(f.Action, ".") {
			q += ` AND starts_with(action, ` + a.add(f.Action) + `)`
		} else {
			q += ` AND action = ` + a.add(f.Action)
		}
	}
	if f.Object != "" {
		q += ` AND ` + a.add(f.Object) + `::text = ANY(objects)`
	}
	if !f.Since.IsZero() {
		q += ` AND at >= ` + a.add(micros(f.Since))
	}
	if f.Before > 0 {
		q += ` AND seq < ` + a.add(f.Before)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	q += ` ORDER BY seq DESC LIMIT ` + a.add(limit)
	return s.auditRows(ctx, q, a...)
}

func (s *Store) auditRows(ctx context.Context, q string, args ...any) ([]store.AuditRecord, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	var out []store.AuditRecord
	for rows.Next() {
		var r store.AuditRecord
		var at int64
		if err := rows.Scan(&r.Seq, &at, &r.Principal, &r.Organisation, &r.Action, &r.Path, &r.Collection, &r.Objects, &r.Detail); err != nil {
			return nil, fmt.Errorf("list audit: %w", err)
		}
		r.At = fromMicros(at)
		if len(r.Objects) == 0 {
			r.Objects = nil
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
