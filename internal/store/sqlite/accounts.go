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

// --- collections -----------------------------------------------------------

// CreateCollection implements store.Collections.
func (s *Store) CreateCollection(ctx context.Context, c *store.Collection) error {
	if err := c.Prepare(); err != nil {
		return err
	}
	c.Created = fromMicros(micros(s.now()))
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create collection: %w", err)
	}
	defer tx.Rollback()
	var alias any
	if c.Alias != "" {
		alias = c.Alias
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO collections (id, title, description, alias, created) VALUES (?, ?, ?, ?, ?)`,
		c.ID, c.Title, c.Description, alias, micros(c.Created))
	if isUnique(err) {
		return fmt.Errorf("collection id or alias %q is taken: %w", c.Alias, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create collection: %w", err)
	}
	cid, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("create collection: %w", err)
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
	if c.DefaultTLP == 0 {
		c.DefaultTLP = 3 // AMBER (access.TLPAmber)
	}
	if err := setPolicy(ctx, tx, cid, c.DefaultTLP, c.Recipients); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create collection: %w", err)
	}
	return nil
}

func setGrant(ctx context.Context, tx *sql.Tx, cid int64, user string, read, write bool) error {
	var exists int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM users WHERE name = ?`, user).Scan(&exists)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("user %q: %w", user, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("grant: %w", err)
	}
	if !read && !write {
		_, err = tx.ExecContext(ctx, `DELETE FROM grants WHERE cid = ? AND user_name = ?`, cid, user)
	} else {
		_, err = tx.ExecContext(ctx, `INSERT INTO grants (cid, user_name, can_read, can_write) VALUES (?, ?, ?, ?)
			ON CONFLICT (cid, user_name) DO UPDATE SET can_read = excluded.can_read, can_write = excluded.can_write`, cid, user, read, write)
	}
	if err != nil {
		return fmt.Errorf("grant: %w", err)
	}
	return nil
}

// SetGrant implements store.Collections.
func (s *Store) SetGrant(ctx context.Context, collectionID, user string, read, write bool) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("grant: %w", err)
	}
	defer tx.Rollback()
	cid, err := s.collectionKey(ctx, tx, collectionID)
	if err != nil {
		return err
	}
	if err := setGrant(ctx, tx, cid, user, read, write); err != nil {
		return err
	}
	return tx.Commit()
}

// GetCollection implements store.Collections.
func (s *Store) GetCollection(ctx context.Context, idOrAlias string) (*store.Collection, error) {
	cols, err := s.listCollections(ctx, `WHERE id = ? OR alias = ?`, idOrAlias, idOrAlias)
	if err != nil {
		return nil, err
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("collection %s: %w", idOrAlias, store.ErrNotFound)
	}
	// An id match wins over an alias match.
	for _, c := range cols {
		if c.ID == idOrAlias {
			cols[0] = c
		}
	}
	if err := s.loadPolicies(ctx, cols[:1]); err != nil {
		return nil, err
	}
	return cols[0], nil
}

// ListCollections implements store.Collections.
func (s *Store) ListCollections(ctx context.Context) ([]*store.Collection, error) {
	cols, err := s.listCollections(ctx, "")
	if err != nil {
		return nil, err
	}
	if err := s.loadPolicies(ctx, cols); err != nil {
		return nil, err
	}
	return cols, nil
}

func (s *Store) listCollections(ctx context.Context, where string, args ...any) ([]*store.Collection, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT c.cid, c.id, c.title, c.description, COALESCE(c.alias, ''), c.created,
		g.user_name, g.can_read, g.can_write
		FROM (SELECT * FROM collections `+where+`) c LEFT JOIN grants g ON g.cid = c.cid
		ORDER BY c.cid, g.user_name`, args...)
	if err != nil {
		return nil, fmt.Errorf("list collections: %w", err)
	}
	defer rows.Close()
	var out []*store.Collection
	var last int64 = -1
	for rows.Next() {
		var cid, created int64
		var c store.Collection
		var user sql.NullString
		var r, w sql.NullBool
		if err := rows.Scan(&cid, &c.ID, &c.Title, &c.Description, &c.Alias, &created, &user, &r, &w); err != nil {
			return nil, fmt.Errorf("list collections: %w", err)
		}
		if cid != last {
			c.Created = fromMicros(created)
			out = append(out, &c)
			last = cid
		}
		cur := out[len(out)-1]
		if user.Valid {
			if r.Bool {
				cur.Readers = append(cur.Readers, user.String)
			}
			if w.Bool {
				cur.Writers = append(cur.Writers, user.String)
			}
		}
	}
	return out, rows.Err()
}

// DeleteCollection implements store.Collections.
func (s *Store) DeleteCollection(ctx context.Context, id string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete collection: %w", err)
	}
	defer tx.Rollback()
	cid, err := s.collectionKey(ctx, tx, id)
	if err != nil {
		return err
	}
	for _, q := range []string{
		`DELETE FROM objects WHERE cid = ?`,
		`DELETE FROM changes WHERE cid = ?`,
		`DELETE FROM grants WHERE cid = ?`,
		`DELETE FROM party_grants WHERE cid = ?`,
		`DELETE FROM collections WHERE cid = ?`,
	} {
		if _, err := tx.ExecContext(ctx, q, cid); err != nil {
			return fmt.Errorf("delete collection: %w", err)
		}
	}
	return tx.Commit()
}

// --- organisations and users -----------------------------------------------

// DefaultOrganisation implements store.Users.
func (s *Store) DefaultOrganisation(ctx context.Context) (*store.Organisation, error) {
	o, err := scanOrg(s.r.QueryRowContext(ctx, `SELECT `+orgCols+` FROM organisations WHERE is_default = 1`))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("default organisation: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("default organisation: %w", err)
	}
	return o, nil
}

// CreateUser implements store.Users.
func (s *Store) CreateUser(ctx context.Context, u *store.User) error {
	if strings.TrimSpace(u.Name) == "" || strings.ContainsAny(u.Name, ":\r\n\t ") {
		return fmt.Errorf("user name %q must be non-empty without spaces or colons: %w", u.Name, store.ErrInvalid)
	}
	if u.Organisation == "" {
		org, err := s.DefaultOrganisation(ctx)
		if err != nil {
			return err
		}
		u.Organisation = org.ID
	} else if _, err := s.GetOrganisation(ctx, u.Organisation); err != nil {
		return err
	}
	u.Created = fromMicros(micros(s.now()))
	_, err := s.w.ExecContext(ctx, `INSERT INTO users (name, organisation, role, password_hash, created) VALUES (?, ?, ?, ?, ?)`,
		u.Name, u.Organisation, u.Role, u.PasswordHash, micros(u.Created))
	if isUnique(err) || (err != nil && strings.Contains(err.Error(), "PRIMARY KEY")) {
		return fmt.Errorf("user %q exists: %w", u.Name, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	return nil
}

const userCols = `name, organisation, role, password_hash, created`

func scanUser(sc interface{ Scan(...any) error }) (*store.User, error) {
	var u store.User
	var created int64
	if err := sc.Scan(&u.Name, &u.Organisation, &u.Role, &u.PasswordHash, &created); err != nil {
		return nil, err
	}
	u.Created = fromMicros(created)
	return &u, nil
}

// GetUser implements store.Users.
func (s *Store) GetUser(ctx context.Context, name string) (*store.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("user %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get user: %w", err)
	}
	return u, nil
}

// ListUsers implements store.Users.
func (s *Store) ListUsers(ctx context.Context) ([]*store.User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+userCols+` FROM users ORDER BY name`)
	return collect(rows, err, "list users", scanUser)
}

// DeleteUser implements store.Users.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	defer tx.Rollback()
	for _, q := range []string{`DELETE FROM grants WHERE user_name = ?`, `DELETE FROM tokens WHERE user_name = ?`} {
		if _, err := tx.ExecContext(ctx, q, name); err != nil {
			return fmt.Errorf("delete user: %w", err)
		}
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("user %q: %w", name, store.ErrNotFound)
	}
	return tx.Commit()
}

// --- tokens ----------------------------------------------------------------

// CreateToken implements store.Tokens.
func (s *Store) CreateToken(ctx context.Context, t *store.Token) error {
	if t.ID == "" {
		t.ID = uuid.NewString()
	}
	t.Created = fromMicros(micros(s.now()))
	var expires int64
	if !t.Expires.IsZero() {
		expires = micros(t.Expires)
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO tokens (id, user_name, hash, role, created, expires) SELECT ?, name, ?, ?, ?, ? FROM users WHERE name = ?`,
		t.ID, t.Hash, t.Role, micros(t.Created), expires, t.User)
	if err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("user %q: %w", t.User, store.ErrNotFound)
	}
	return nil
}

const tokenCols = `id, user_name, hash, role, created, expires, revoked`

func scanToken(sc interface{ Scan(...any) error }) (*store.Token, error) {
	var t store.Token
	var created, expires int64
	if err := sc.Scan(&t.ID, &t.User, &t.Hash, &t.Role, &created, &expires, &t.Revoked); err != nil {
		return nil, err
	}
	t.Created, t.Expires = fromMicros(created), fromMicros(expires)
	return &t, nil
}

// TokenByHash implements store.Tokens.
func (s *Store) TokenByHash(ctx context.Context, hash string) (*store.Token, error) {
	t, err := scanToken(s.r.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("token: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	return t, nil
}

// ListTokens implements store.Tokens.
func (s *Store) ListTokens(ctx context.Context, user string) ([]*store.Token, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE user_name = ? OR ? = '' ORDER BY created`, user, user)
	return collect(rows, err, "list tokens", scanToken)
}

// RevokeToken implements store.Tokens.
func (s *Store) RevokeToken(ctx context.Context, id string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE tokens SET revoked = 1 WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("token %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// --- statuses --------------------------------------------------------------

func saveStatus(ctx context.Context, tx *sql.Tx, st *store.Status) error {
	enc := func(d []store.StatusDetail) []byte {
		if d == nil {
			d = []store.StatusDetail{}
		}
		b, _ := json.Marshal(d) // plain strings: cannot fail
		return b
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO statuses (id, owner, collection_id, request_ts, complete, total, successes, failures, pendings)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET complete = excluded.complete, total = excluded.total,
		successes = excluded.successes, failures = excluded.failures, pendings = excluded.pendings`,
		st.ID, st.Owner, st.CollectionID, micros(st.RequestTimestamp), st.Complete, st.TotalCount,
		enc(st.Successes), enc(st.Failures), enc(st.Pendings))
	if err != nil {
		return fmt.Errorf("save status: %w", err)
	}
	return nil
}

// SaveStatus implements store.Statuses.
func (s *Store) SaveStatus(ctx context.Context, st *store.Status) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save status: %w", err)
	}
	defer tx.Rollback()
	if err := saveStatus(ctx, tx, st); err != nil {
		return err
	}
	return tx.Commit()
}

// GetStatus implements store.Statuses.
func (s *Store) GetStatus(ctx context.Context, id string) (*store.Status, error) {
	var st store.Status
	var ts int64
	var succ, fail, pend []byte
	err := s.r.QueryRowContext(ctx, `SELECT id, owner, collection_id, request_ts, complete, total, successes, failures, pendings FROM statuses WHERE id = ?`, id).
		Scan(&st.ID, &st.Owner, &st.CollectionID, &ts, &st.Complete, &st.TotalCount, &succ, &fail, &pend)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("status %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get status: %w", err)
	}
	st.RequestTimestamp = fromMicros(ts)
	for _, p := range []struct {
		b []byte
		d *[]store.StatusDetail
	}{{succ, &st.Successes}, {fail, &st.Failures}, {pend, &st.Pendings}} {
		if err := json.Unmarshal(p.b, p.d); err != nil {
			return nil, fmt.Errorf("get status %s: %w", id, err)
		}
	}
	return &st, nil
}

// collect scans every row of a query (whose error is err) with scan.
func collect[T any](rows *sql.Rows, err error, what string, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}
