package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/store"
)

// --- organisations ---------------------------------------------------------

const orgCols = `id, name, created, anonymise_sightings, is_default`

func scanOrg(sc interface{ Scan(...any) error }) (*store.Organisation, error) {
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
	_, err := s.w.ExecContext(ctx, `INSERT INTO organisations (id, name, created, anonymise_sightings) VALUES (?, ?, ?, ?)`,
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
	o, err := scanOrg(s.r.QueryRowContext(ctx, `SELECT `+orgCols+` FROM organisations WHERE id = ? OR name = ? ORDER BY id = ? DESC LIMIT 1`, idOrName, idOrName, idOrName))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("organisation %q: %w", idOrName, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get organisation: %w", err)
	}
	return o, nil
}

// ListOrganisations implements store.Users.
func (s *Store) ListOrganisations(ctx context.Context) ([]*store.Organisation, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+orgCols+` FROM organisations ORDER BY created, name`)
	return collect(rows, err, "list organisations", scanOrg)
}

// DeleteOrganisation implements store.Users.
func (s *Store) DeleteOrganisation(ctx context.Context, id string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete organisation: %w", err)
	}
	defer tx.Rollback()
	var isDefault bool
	err = tx.QueryRowContext(ctx, `SELECT is_default FROM organisations WHERE id = ?`, id).Scan(&isDefault)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("organisation %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("delete organisation: %w", err)
	}
	if isDefault {
		return fmt.Errorf("the default organisation cannot be deleted: %w", store.ErrConflict)
	}
	var users int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE organisation = ?`, id).Scan(&users); err != nil {
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
		if _, err := tx.ExecContext(ctx, q, id); err != nil {
			return fmt.Errorf("delete organisation: %w", err)
		}
	}
	return tx.Commit()
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
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create group: %w", err)
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, `INSERT INTO groups_ (id, name, created) VALUES (?, ?, ?)`, g.ID, g.Name, micros(g.Created))
	if isUnique(err) {
		return fmt.Errorf("group %q exists: %w", g.Name, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create group: %w", err)
	}
	for _, org := range g.Orgs {
		res, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO group_members (group_id, organisation) SELECT ?, id FROM organisations WHERE id = ?`, g.ID, org)
		if err != nil {
			return fmt.Errorf("create group: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var ok int
			if err := tx.QueryRowContext(ctx, `SELECT 1 FROM organisations WHERE id = ?`, org).Scan(&ok); err != nil {
				return fmt.Errorf("organisation %q: %w", org, store.ErrNotFound)
			}
		}
	}
	return tx.Commit()
}

func (s *Store) groupMembers(ctx context.Context, id string) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT organisation FROM group_members WHERE group_id = ? ORDER BY organisation`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// GetGroup implements store.Groups.
func (s *Store) GetGroup(ctx context.Context, idOrName string) (*store.Group, error) {
	var g store.Group
	var created int64
	err := s.r.QueryRowContext(ctx, `SELECT id, name, created FROM groups_ WHERE id = ? OR name = ? ORDER BY id = ? DESC LIMIT 1`, idOrName, idOrName, idOrName).
		Scan(&g.ID, &g.Name, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("group %q: %w", idOrName, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get group: %w", err)
	}
	g.Created = fromMicros(created)
	if g.Orgs, err = s.groupMembers(ctx, g.ID); err != nil {
		return nil, fmt.Errorf("get group: %w", err)
	}
	return &g, nil
}

// ListGroups implements store.Groups.
func (s *Store) ListGroups(ctx context.Context) ([]*store.Group, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM groups_ ORDER BY created, name`)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list groups: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	var out []*store.Group
	for _, id := range ids {
		g, err := s.GetGroup(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

// DeleteGroup implements store.Groups.
func (s *Store) DeleteGroup(ctx context.Context, id string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete group: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM groups_ WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete group: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("group %q: %w", id, store.ErrNotFound)
	}
	for _, q := range []string{`DELETE FROM group_members WHERE group_id = ?`, `DELETE FROM party_grants WHERE kind = 'group' AND subject = ?`} {
		if _, err := tx.ExecContext(ctx, q, id); err != nil {
			return fmt.Errorf("delete group: %w", err)
		}
	}
	return tx.Commit()
}

// GroupsOf implements store.Groups.
func (s *Store) GroupsOf(ctx context.Context, org string) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT group_id FROM group_members WHERE organisation = ? ORDER BY group_id`, org)
	if err != nil {
		return nil, fmt.Errorf("groups of %s: %w", org, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return nil, fmt.Errorf("groups of %s: %w", org, err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// --- collection grants and policy ------------------------------------------

// SetPartyGrant implements store.Collections.
func (s *Store) SetPartyGrant(ctx context.Context, collectionID, kind, subject string, read, write bool) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("grant: %w", err)
	}
	defer tx.Rollback()
	cid, err := s.collectionKey(ctx, tx, collectionID)
	if err != nil {
		return err
	}
	if err := setPartyGrant(ctx, tx, cid, store.Grant{Kind: kind, Subject: subject, Read: read, Write: write}); err != nil {
		return err
	}
	return tx.Commit()
}

func setPartyGrant(ctx context.Context, tx *sql.Tx, cid int64, g store.Grant) error {
	var table string
	switch g.Kind {
	case store.GrantOrg:
		table = "organisations"
	case store.GrantGroup:
		table = "groups_"
	default:
		return fmt.Errorf("grant kind %q: %w", g.Kind, store.ErrInvalid)
	}
	var ok int
	if err := tx.QueryRowContext(ctx, `SELECT 1 FROM `+table+` WHERE id = ?`, g.Subject).Scan(&ok); errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s %q: %w", g.Kind, g.Subject, store.ErrNotFound)
	} else if err != nil {
		return fmt.Errorf("grant: %w", err)
	}
	var err error
	if !g.Read && !g.Write {
		_, err = tx.ExecContext(ctx, `DELETE FROM party_grants WHERE cid = ? AND kind = ? AND subject = ?`, cid, g.Kind, g.Subject)
	} else {
		_, err = tx.ExecContext(ctx, `INSERT INTO party_grants (cid, kind, subject, can_read, can_write) VALUES (?, ?, ?, ?, ?)
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
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("collection policy: %w", err)
	}
	defer tx.Rollback()
	cid, err := s.collectionKey(ctx, tx, collectionID)
	if err != nil {
		return err
	}
	if err := setPolicy(ctx, tx, cid, defaultTLP, recipients); err != nil {
		return err
	}
	return tx.Commit()
}

func setPolicy(ctx context.Context, tx *sql.Tx, cid int64, defaultTLP int, recipients []string) error {
	if defaultTLP < 1 || defaultTLP > 5 {
		return fmt.Errorf("default TLP %d out of range: %w", defaultTLP, store.ErrInvalid)
	}
	for _, r := range recipients {
		var ok int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM organisations WHERE id = ?`, r).Scan(&ok); err != nil {
			return fmt.Errorf("recipient organisation %q: %w", r, store.ErrNotFound)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE collections SET default_tlp = ?, recipients = ? WHERE cid = ?`, defaultTLP, jsonList(recipients), cid); err != nil {
		return fmt.Errorf("collection policy: %w", err)
	}
	return nil
}

// loadPolicies fills the grants, default TLP and recipients of cols.
func (s *Store) loadPolicies(ctx context.Context, cols []*store.Collection) error {
	for _, c := range cols {
		var recipients string
		if err := s.r.QueryRowContext(ctx, `SELECT default_tlp, recipients FROM collections WHERE id = ?`, c.ID).Scan(&c.DefaultTLP, &recipients); err != nil {
			return fmt.Errorf("collection policy: %w", err)
		}
		if err := json.Unmarshal([]byte(recipients), &c.Recipients); err != nil {
			return fmt.Errorf("collection policy: %w", err)
		}
		if len(c.Recipients) == 0 {
			c.Recipients = nil
		}
		rows, err := s.r.QueryContext(ctx, `SELECT g.kind, g.subject, g.can_read, g.can_write FROM party_grants g JOIN collections c ON c.cid = g.cid
			WHERE c.id = ? ORDER BY g.kind, g.subject`, c.ID)
		if err != nil {
			return fmt.Errorf("collection grants: %w", err)
		}
		for rows.Next() {
			var g store.Grant
			if err := rows.Scan(&g.Kind, &g.Subject, &g.Read, &g.Write); err != nil {
				rows.Close()
				return fmt.Errorf("collection grants: %w", err)
			}
			c.Grants = append(c.Grants, g)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("collection grants: %w", err)
		}
	}
	return nil
}

// --- audit -----------------------------------------------------------------

// AppendAudit implements store.Audit.
func (s *Store) AppendAudit(ctx context.Context, recs ...store.AuditRecord) error {
	if len(recs) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer tx.Rollback()
	for _, r := range recs {
		at := r.At
		if at.IsZero() {
			at = s.now()
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit (at, principal, organisation, action, path, collection, objects, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			micros(at), r.Principal, r.Organisation, r.Action, r.Path, r.Collection, jsonList(r.Objects), r.Detail); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
	}
	return tx.Commit()
}

// ListAudit implements store.Audit.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditRecord, error) {
	q := `SELECT seq, at, principal, organisation, action, path, collection, objects, detail FROM audit WHERE 1 = 1`
	var args []any
	if f.Principal != "" {
		q += ` AND principal = ?`
		args = append(args, f.Principal)
	}
	if f.Action != "" {
		if strings.HasSuffix(f.Action, ".") {
			q += ` AND substr(action, 1, ?) = ?`
			args = append(args, len(f.Action), f.Action)
		} else {
			q += ` AND action = ?`
			args = append(args, f.Action)
		}
	}
	if f.Object != "" {
		q += ` AND EXISTS (SELECT 1 FROM json_each(audit.objects) WHERE value = ?)`
		args = append(args, f.Object)
	}
	if !f.Since.IsZero() {
		q += ` AND at >= ?`
		args = append(args, micros(f.Since))
	}
	if f.Before > 0 {
		q += ` AND seq < ?`
		args = append(args, f.Before)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	q += ` ORDER BY seq DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	var out []store.AuditRecord
	for rows.Next() {
		var r store.AuditRecord
		var at int64
		var objs string
		if err := rows.Scan(&r.Seq, &at, &r.Principal, &r.Organisation, &r.Action, &r.Path, &r.Collection, &objs, &r.Detail); err != nil {
			return nil, fmt.Errorf("list audit: %w", err)
		}
		r.At = fromMicros(at)
		if err := json.Unmarshal([]byte(objs), &r.Objects); err != nil {
			return nil, fmt.Errorf("list audit: %w", err)
		}
		if len(r.Objects) == 0 {
			r.Objects = nil
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
