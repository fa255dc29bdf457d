package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
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
	if c.DefaultTLP == 0 {
		c.DefaultTLP = 3 // AMBER (access.TLPAmber)
	}
	return s.write(ctx, "create collection", func(tx Tx) error {
		var alias any
		if c.Alias != "" {
			alias = c.Alias
		}
		var cid int64
		err := tx.QueryRow(ctx, `INSERT INTO collections (id, title, description, alias, created) VALUES (?, ?, ?, ?, ?) RETURNING cid`,
			c.ID, c.Title, c.Description, alias, micros(c.Created)).Scan(&cid)
		if s.d.IsUnique(err) {
			return fmt.Errorf("collection id or alias %q is taken: %w", c.Alias, store.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("create collection: %w", err)
		}
		if err := s.setGrants(ctx, tx, cid, c); err != nil {
			return err
		}
		return s.setPolicy(ctx, tx, cid, c.DefaultTLP, c.Recipients)
	})
}

// setGrants gives c's readers read and writers write access, and sets its
// party grants, on collection cid.
func (s *Store) setGrants(ctx context.Context, tx Tx, cid int64, c *store.Collection) error {
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
		if err := s.setGrant(ctx, tx, cid, u, g[0], g[1]); err != nil {
			return err
		}
	}
	for _, g := range c.Grants {
		if err := s.setPartyGrant(ctx, tx, cid, g); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) setGrant(ctx context.Context, tx Tx, cid int64, user string, read, write bool) error {
	var exists int
	err := tx.QueryRow(ctx, `SELECT 1 FROM users WHERE name = ?`, user).Scan(&exists)
	if noRows(err) {
		return fmt.Errorf("user %q: %w", user, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("grant: %w", err)
	}
	if !read && !write {
		_, err = tx.Exec(ctx, `DELETE FROM grants WHERE cid = ? AND user_name = ?`, cid, user)
	} else {
		_, err = tx.Exec(ctx, `INSERT INTO grants (cid, user_name, can_read, can_write) VALUES (?, ?, ?, ?)
			ON CONFLICT (cid, user_name) DO UPDATE SET can_read = excluded.can_read, can_write = excluded.can_write`, cid, user, read, write)
	}
	if s.d.IsForeignKey(err) { // the user was deleted meanwhile
		return fmt.Errorf("user %q: %w", user, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("grant: %w", err)
	}
	return nil
}

// onCollection runs fn in a write transaction on the collection's key.
func (s *Store) onCollection(ctx context.Context, what, collectionID string, fn func(tx Tx, cid int64) error) error {
	return s.write(ctx, what, func(tx Tx) error {
		cid, err := collectionKey(ctx, tx, collectionID)
		if err != nil {
			return err
		}
		return fn(tx, cid)
	})
}

// SetGrant implements store.Collections.
func (s *Store) SetGrant(ctx context.Context, collectionID, user string, read, write bool) error {
	return s.onCollection(ctx, "grant", collectionID, func(tx Tx, cid int64) error {
		return s.setGrant(ctx, tx, cid, user, read, write)
	})
}

// GetCollection implements store.Collections.
func (s *Store) GetCollection(ctx context.Context, idOrAlias string) (*store.Collection, error) {
	cols, err := s.collectionRows(ctx, `WHERE id = ? OR alias = ?`, idOrAlias, idOrAlias)
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
	cols, err := s.ExportCollections(ctx)
	if err != nil {
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
	rows, err := s.db.Query(ctx, `SELECT c.cid, c.id, c.title, c.description, COALESCE(c.alias, ''), c.created, c.last_added, c.last_seq,
		c.default_tlp, c.recipients, g.user_name, g.can_read, g.can_write
		FROM (SELECT * FROM collections `+where+`) c LEFT JOIN grants g ON g.cid = c.cid
		ORDER BY c.cid, g.user_name`+s.d.Binary(), args...)
	if err != nil {
		return nil, fmt.Errorf("list collections: %w", err)
	}
	defer rows.Close()
	var out []store.CollectionRecord
	var last int64 = -1
	for rows.Next() {
		var cid, created, lastAdded, lastSeq int64
		var c store.Collection
		var user sql.NullString
		var r, w sql.NullBool
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

// DeleteCollection implements store.Collections. It takes the collection's
// row lock first, so it waits for the collection's writers.
func (s *Store) DeleteCollection(ctx context.Context, id string) error {
	return s.write(ctx, "delete collection", func(tx Tx) error {
		cid, _, _, err := s.lockCollection(ctx, tx, id)
		if err != nil {
			return err
		}
		b := &Batch{}
		for _, table := range []string{"objects", "changes", "grants", "party_grants", "collections"} {
			b.Queue(`DELETE FROM `+table+` WHERE cid = ?`, cid)
		}
		if err := tx.Send(ctx, b); err != nil {
			return fmt.Errorf("delete collection: %w", err)
		}
		return nil
	})
}

// --- users -----------------------------------------------------------------

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
	_, err := s.db.Exec(ctx, `INSERT INTO users (name, organisation, role, password_hash, created) VALUES (?, ?, ?, ?, ?)`,
		u.Name, u.Organisation, u.Role, u.PasswordHash, micros(u.Created))
	if s.d.IsUnique(err) {
		return fmt.Errorf("user %q exists: %w", u.Name, store.ErrConflict)
	}
	if s.d.IsForeignKey(err) {
		return fmt.Errorf("organisation %q: %w", u.Organisation, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	return nil
}

const userCols = `name, organisation, role, password_hash, created`

func scanUser(sc Row) (*store.User, error) {
	var u store.User
	var created int64
	if err := sc.Scan(&u.Name, &u.Organisation, &u.Role, &u.PasswordHash, &created); err != nil {
		return nil, err
	}
	u.Created = fromMicros(created)
	return &u, nil
}

// one reads one row with scan; ErrNotFound (wrapped with notFound) when
// there is none.
func one[T any](row Row, scan func(Row) (T, error), notFound, what string) (T, error) {
	v, err := scan(row)
	if noRows(err) {
		return v, fmt.Errorf("%s: %w", notFound, store.ErrNotFound)
	}
	if err != nil {
		return v, fmt.Errorf("%s: %w", what, err)
	}
	return v, nil
}

// GetUser implements store.Users.
func (s *Store) GetUser(ctx context.Context, name string) (*store.User, error) {
	return one(s.db.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE name = ?`, name), scanUser, fmt.Sprintf("user %q", name), "get user")
}

// ListUsers implements store.Users.
func (s *Store) ListUsers(ctx context.Context) ([]*store.User, error) {
	rows, err := s.db.Query(ctx, `SELECT `+userCols+` FROM users ORDER BY name`+s.d.Binary())
	return collect(rows, err, "list users", scanUser)
}

// deleteRows runs the statements of q with arg in a write transaction; the
// last one must remove a row, else ErrNotFound (wrapped with notFound).
func (s *Store) deleteRows(ctx context.Context, what, notFound string, arg any, q ...string) error {
	return s.write(ctx, what, func(tx Tx) error {
		var n int64
		for _, stmt := range q {
			var err error
			if n, err = tx.Exec(ctx, stmt, arg); err != nil {
				if s.d.IsForeignKey(err) {
					return fmt.Errorf("%s is still in use: %w", notFound, store.ErrConflict)
				}
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		if n == 0 {
			return fmt.Errorf("%s: %w", notFound, store.ErrNotFound)
		}
		return nil
	})
}

// DeleteUser implements store.Users.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	return s.deleteRows(ctx, "delete user", fmt.Sprintf("user %q", name), name,
		`DELETE FROM grants WHERE user_name = ?`, `DELETE FROM tokens WHERE user_name = ?`, `DELETE FROM users WHERE name = ?`)
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
	n, err := s.db.Exec(ctx, `INSERT INTO tokens (id, user_name, hash, role, created, expires) SELECT ?, name, ?, ?, ?, ? FROM users WHERE name = ?`,
		t.ID, t.Hash, t.Role, micros(t.Created), expires, t.User)
	if s.d.IsUnique(err) {
		return fmt.Errorf("create token: id or hash taken: %w", store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("user %q: %w", t.User, store.ErrNotFound)
	}
	return nil
}

const tokenCols = `id, user_name, hash, role, created, expires, revoked`

func scanToken(sc Row) (*store.Token, error) {
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
	return one(s.db.QueryRow(ctx, `SELECT `+tokenCols+` FROM tokens WHERE hash = ?`, hash), scanToken, "token", "token")
}

// ListTokens implements store.Tokens.
func (s *Store) ListTokens(ctx context.Context, user string) ([]*store.Token, error) {
	rows, err := s.db.Query(ctx, `SELECT `+tokenCols+` FROM tokens WHERE user_name = ? OR ? = '' ORDER BY created, id`, user, user)
	return collect(rows, err, "list tokens", scanToken)
}

// RevokeToken implements store.Tokens.
func (s *Store) RevokeToken(ctx context.Context, id string) error {
	n, err := s.db.Exec(ctx, `UPDATE tokens SET revoked = true WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	if n == 0 {
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

const statusCols = `id, owner, collection_id, request_ts, complete, total, successes, failures, pendings`

func statusArgs(st *store.Status) []any {
	return []any{st.ID, st.Owner, st.CollectionID, micros(st.RequestTimestamp), st.Complete, st.TotalCount,
		encodeDetails(st.Successes), encodeDetails(st.Failures), encodeDetails(st.Pendings)}
}

func queueSaveStatus(b *Batch, st *store.Status) {
	b.Queue(`INSERT INTO statuses (`+statusCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (id) DO UPDATE SET complete = excluded.complete, total = excluded.total,
	successes = excluded.successes, failures = excluded.failures, pendings = excluded.pendings`, statusArgs(st)...)
}

// SaveStatus implements store.Statuses.
func (s *Store) SaveStatus(ctx context.Context, st *store.Status) error {
	b := &Batch{}
	queueSaveStatus(b, st)
	if _, err := s.db.Exec(ctx, b.Items[0].Query, b.Items[0].Args...); err != nil {
		return fmt.Errorf("save status: %w", err)
	}
	return nil
}

func scanStatus(sc Row) (*store.Status, error) {
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
	return one(s.db.QueryRow(ctx, `SELECT `+statusCols+` FROM statuses WHERE id = ?`, id), scanStatus, "status "+id, "get status")
}
