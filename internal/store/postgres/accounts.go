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

// --- collections -----------------------------------------------------------

// CreateCollection implements store.Collections.
func (s *Store) CreateCollection(ctx context.Context, c *store.Collection) error {
	if err := c.Prepare(); err != nil {
		return err
	}
	c.Created = fromMicros(micros(s.now()))
	tx, err := s.beginWrite(ctx)
	if err != nil {
		return fmt.Errorf("create collection: %w", err)
	}
	defer tx.Rollback(ctx)
	var alias any
	if c.Alias != "" {
		alias = c.Alias
	}
	var cid int64
	err = tx.QueryRow(ctx, `INSERT INTO collections (id, title, description, alias, created) VALUES ($1, $2, $3, $4, $5) RETURNING cid`,
		c.ID, c.Title, c.Description, alias, micros(c.Created)).Scan(&cid)
	if isUnique(err) {
		return fmt.Errorf("collection id or alias %q is taken: %w", c.Alias, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create collection: %w", err)
	}
	if err := setGrants(ctx, tx, cid, c.Readers, c.Writers); err != nil {
		return err
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
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("create collection: %w", err)
	}
	return nil
}

// setGrants gives readers read and writers write access to collection cid.
func setGrants(ctx context.Context, tx pgx.Tx, cid int64, readers, writers []string) error {
	grants := map[string][2]bool{}
	for _, u := range readers {
		g := grants[u]
		g[0] = true
		grants[u] = g
	}
	for _, u := range writers {
		g := grants[u]
		g[1] = true
		grants[u] = g
	}
	for u, g := range grants {
		if err := setGrant(ctx, tx, cid, u, g[0], g[1]); err != nil {
			return err
		}
	}
	return nil
}

func setGrant(ctx context.Context, tx pgx.Tx, cid int64, user string, read, write bool) error {
	var exists int
	err := tx.QueryRow(ctx, `SELECT 1 FROM users WHERE name = $1`, user).Scan(&exists)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("user %q: %w", user, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("grant: %w", err)
	}
	if !read && !write {
		_, err = tx.Exec(ctx, `DELETE FROM grants WHERE cid = $1 AND user_name = $2`, cid, user)
	} else {
		_, err = tx.Exec(ctx, `INSERT INTO grants (cid, user_name, can_read, can_write) VALUES ($1, $2, $3, $4)
			ON CONFLICT (cid, user_name) DO UPDATE SET can_read = excluded.can_read, can_write = excluded.can_write`, cid, user, read, write)
	}
	if isForeignKey(err) { // the user was deleted meanwhile
		return fmt.Errorf("user %q: %w", user, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("grant: %w", err)
	}
	return nil
}

// SetGrant implements store.Collections.
func (s *Store) SetGrant(ctx context.Context, collectionID, user string, read, write bool) error {
	tx, err := s.beginWrite(ctx)
	if err != nil {
		return fmt.Errorf("grant: %w", err)
	}
	defer tx.Rollback(ctx)
	cid, err := collectionKey(ctx, tx, collectionID)
	if err != nil {
		return err
	}
	if err := setGrant(ctx, tx, cid, user, read, write); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// GetCollection implements store.Collections.
func (s *Store) GetCollection(ctx context.Context, idOrAlias string) (*store.Collection, error) {
	cols, err := s.collectionRows(ctx, `WHERE id = $1 OR alias = $1`, idOrAlias)
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
	if err := s.loadPartyGrants(ctx, cols[:1]); err != nil {
		return nil, err
	}
	return &cols[0].Collection, nil
}

// ListCollections implements store.Collections.
func (s *Store) ListCollections(ctx context.Context) ([]*store.Collection, error) {
	cols, err := s.collectionRows(ctx, "")
	if err != nil {
		return nil, err
	}
	if err := s.loadPartyGrants(ctx, cols); err != nil {
		return nil, err
	}
	out := make([]*store.Collection, len(cols))
	for i := range cols {
		out[i] = &cols[i].Collection
	}
	return out, nil
}

// collectionRows reads collections with their user grants, policy and
// high-water marks (not their organisation and group grants: see
// loadPartyGrants).
func (s *Store) collectionRows(ctx context.Context, where string, args ...any) ([]store.CollectionRecord, error) {
	rows, err := s.pool.Query(ctx, `SELECT c.cid, c.id, c.title, c.description, COALESCE(c.alias, ''), c.created, c.last_added, c.last_seq,
		c.default_tlp, c.recipients, g.user_name, g.can_read, g.can_write
		FROM (SELECT * FROM collections `+where+`) c LEFT JOIN grants g ON g.cid = c.cid
		ORDER BY c.cid, g.user_name COLLATE "C"`, args...)
	if err != nil {
		return nil, fmt.Errorf("list collections: %w", err)
	}
	defer rows.Close()
	var out []store.CollectionRecord
	var last int64 = -1
	for rows.Next() {
		var cid, created, lastAdded, lastSeq int64
		var c store.Collection
		var user *string
		var r, w *bool
		var recipients string
		if err := rows.Scan(&cid, &c.ID, &c.Title, &c.Description, &c.Alias, &created, &lastAdded, &lastSeq, &c.DefaultTLP, &recipients, &user, &r, &w); err != nil {
			return nil, fmt.Errorf("list collections: %w", err)
		}
		if cid != last {
			c.Created = fromMicros(created)
			if c.Recipients, err = parseList(recipients); err != nil {
				return nil, fmt.Errorf("collection %s: recipients: %w", c.ID, err)
			}
			out = append(out, store.CollectionRecord{Collection: c, LastAdded: fromMicros(lastAdded), LastSeq: lastSeq})
			last = cid
		}
		cur := &out[len(out)-1].Collection
		if user != nil {
			if r != nil && *r {
				cur.Readers = append(cur.Readers, *user)
			}
			if w != nil && *w {
				cur.Writers = append(cur.Writers, *user)
			}
		}
	}
	return out, rows.Err()
}

// DeleteCollection implements store.Collections. It takes the collection's
// row lock first, so it waits for the collection's writers.
func (s *Store) DeleteCollection(ctx context.Context, id string) error {
	tx, err := s.beginWrite(ctx)
	if err != nil {
		return fmt.Errorf("delete collection: %w", err)
	}
	defer tx.Rollback(ctx)
	cid, _, _, err := lockCollection(ctx, tx, id)
	if err != nil {
		return err
	}
	b := &pgx.Batch{}
	for _, q := range []string{
		`DELETE FROM objects WHERE cid = $1`,
		`DELETE FROM changes WHERE cid = $1`,
		`DELETE FROM grants WHERE cid = $1`,
		`DELETE FROM party_grants WHERE cid = $1`,
		`DELETE FROM collections WHERE cid = $1`,
	} {
		b.Queue(q, cid)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("delete collection: %w", err)
	}
	return tx.Commit(ctx)
}

// --- organisations and users -----------------------------------------------

// DefaultOrganisation implements store.Users.
func (s *Store) DefaultOrganisation(ctx context.Context) (*store.Organisation, error) {
	o, err := scanOrg(s.pool.QueryRow(ctx, `SELECT `+orgCols+` FROM organisations WHERE is_default`))
	if errors.Is(err, pgx.ErrNoRows) {
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
	}
	u.Created = fromMicros(micros(s.now()))
	_, err := s.pool.Exec(ctx, `INSERT INTO users (name, organisation, role, password_hash, created) VALUES ($1, $2, $3, $4, $5)`,
		u.Name, u.Organisation, u.Role, u.PasswordHash, micros(u.Created))
	if isUnique(err) {
		return fmt.Errorf("user %q exists: %w", u.Name, store.ErrConflict)
	}
	if isForeignKey(err) {
		return fmt.Errorf("organisation %q: %w", u.Organisation, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	return nil
}

const userCols = `name, organisation, role, password_hash, created`

func scanUser(sc pgx.Row) (*store.User, error) {
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
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("user %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get user: %w", err)
	}
	return u, nil
}

// ListUsers implements store.Users.
func (s *Store) ListUsers(ctx context.Context) ([]*store.User, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+userCols+` FROM users ORDER BY name COLLATE "C"`)
	return collect(rows, err, "list users", scanUser)
}

// DeleteUser implements store.Users.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	tx, err := s.beginWrite(ctx)
	if err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	defer tx.Rollback(ctx)
	for _, q := range []string{`DELETE FROM grants WHERE user_name = $1`, `DELETE FROM tokens WHERE user_name = $1`} {
		if _, err := tx.Exec(ctx, q, name); err != nil {
			return fmt.Errorf("delete user: %w", err)
		}
	}
	tag, err := tx.Exec(ctx, `DELETE FROM users WHERE name = $1`, name)
	if err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("user %q: %w", name, store.ErrNotFound)
	}
	return tx.Commit(ctx)
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
	tag, err := s.pool.Exec(ctx, `INSERT INTO tokens (id, user_name, hash, role, created, expires) SELECT $1, name, $2, $3, $4, $5 FROM users WHERE name = $6`,
		t.ID, t.Hash, t.Role, micros(t.Created), expires, t.User)
	if isUnique(err) {
		return fmt.Errorf("create token: id or hash taken: %w", store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("user %q: %w", t.User, store.ErrNotFound)
	}
	return nil
}

const tokenCols = `id, user_name, hash, role, created, expires, revoked`

func scanToken(sc pgx.Row) (*store.Token, error) {
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
	t, err := scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenCols+` FROM tokens WHERE hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("token: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	return t, nil
}

// ListTokens implements store.Tokens.
func (s *Store) ListTokens(ctx context.Context, user string) ([]*store.Token, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+tokenCols+` FROM tokens WHERE user_name = $1 OR $1 = '' ORDER BY created, id`, user)
	return collect(rows, err, "list tokens", scanToken)
}

// RevokeToken implements store.Tokens.
func (s *Store) RevokeToken(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE tokens SET revoked = true WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("token %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// --- statuses --------------------------------------------------------------

func encodeDetails(d []store.StatusDetail) []byte {
	if d == nil {
		d = []store.StatusDetail{}
	}
	b, _ := json.Marshal(d) // plain strings: cannot fail
	return b
}

const saveStatusSQL = `INSERT INTO statuses (id, owner, collection_id, request_ts, complete, total, successes, failures, pendings)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
	ON CONFLICT (id) DO UPDATE SET complete = excluded.complete, total = excluded.total,
	successes = excluded.successes, failures = excluded.failures, pendings = excluded.pendings`

func statusArgs(st *store.Status) []any {
	return []any{st.ID, st.Owner, st.CollectionID, micros(st.RequestTimestamp), st.Complete, st.TotalCount,
		encodeDetails(st.Successes), encodeDetails(st.Failures), encodeDetails(st.Pendings)}
}

func queueSaveStatus(b *pgx.Batch, st *store.Status) {
	b.Queue(saveStatusSQL, statusArgs(st)...)
}

// SaveStatus implements store.Statuses.
func (s *Store) SaveStatus(ctx context.Context, st *store.Status) error {
	if _, err := s.pool.Exec(ctx, saveStatusSQL, statusArgs(st)...); err != nil {
		return fmt.Errorf("save status: %w", err)
	}
	return nil
}

const statusCols = `id, owner, collection_id, request_ts, complete, total, successes, failures, pendings`

func scanStatus(sc pgx.Row) (*store.Status, error) {
	var st store.Status
	var ts int64
	var succ, fail, pend []byte
	if err := sc.Scan(&st.ID, &st.Owner, &st.CollectionID, &ts, &st.Complete, &st.TotalCount, &succ, &fail, &pend); err != nil {
		return nil, err
	}
	st.RequestTimestamp = fromMicros(ts)
	for _, p := range []struct {
		b []byte
		d *[]store.StatusDetail
	}{{succ, &st.Successes}, {fail, &st.Failures}, {pend, &st.Pendings}} {
		if err := json.Unmarshal(p.b, p.d); err != nil {
			return nil, fmt.Errorf("status %s: %w", st.ID, err)
		}
	}
	return &st, nil
}

// GetStatus implements store.Statuses.
func (s *Store) GetStatus(ctx context.Context, id string) (*store.Status, error) {
	st, err := scanStatus(s.pool.QueryRow(ctx, `SELECT `+statusCols+` FROM statuses WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("status %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get status: %w", err)
	}
	return st, nil
}

// collect scans every row of a query (whose error is err) with scan.
func collect[T any](rows pgx.Rows, err error, what string, scan func(pgx.Row) (T, error)) ([]T, error) {
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
