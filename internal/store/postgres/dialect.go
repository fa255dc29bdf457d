package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlstore"
)

// Dialect is PostgreSQL's sqlstore.Dialect: lists travel as arrays, bulk
// inserts unnest them (one statement whatever the number of rows), a
// collection's writers are serialised by a row lock, text orders by the
// "C" collation.
type Dialect struct{}

// In implements sqlstore.Dialect.
func (Dialect) In(a *sqlstore.Args, col string, vals any) string {
	switch vals.(type) {
	case []string:
		return col + " = ANY(" + a.Add(vals) + "::text[])"
	case []int64:
		return col + " = ANY(" + a.Add(vals) + "::bigint[])"
	}
	panic(fmt.Sprintf("postgres: In of %T", vals))
}

// ForUpdate implements sqlstore.Dialect.
func (Dialect) ForUpdate() string { return " FOR UPDATE" }

// ForShare implements sqlstore.Dialect.
func (Dialect) ForShare() string { return " FOR SHARE" }

// Binary implements sqlstore.Dialect.
func (Dialect) Binary() string { return ` COLLATE "C"` }

// insertObjectsSQL inserts object rows given as column arrays: one
// statement, whatever the number of rows.
const insertObjectsSQL = `INSERT INTO objects (cid, date_added, id, type, spec_version, version, version_raw, latest, body, submitter, tlp, recipients)
	SELECT ?, u.* FROM unnest(?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::boolean[], ?::bytea[],
		?::text[], ?::integer[], ?::text[]) AS u`

const insertChangesSQL = `INSERT INTO changes (cid, seq, op, object_id, version_raw, at)
	SELECT ?, u.* FROM unnest(?::bigint[], ?::text[], ?::text[], ?::text[], ?::bigint[]) AS u`

// InsertVersions implements sqlstore.Dialect.
func (Dialect) InsertVersions(b *sqlstore.Batch, cid int64, rows []store.NewVersion, withChanges bool) {
	n := len(rows)
	added, seq, tlp := make([]int64, n), make([]int64, n), make([]int32, n)
	id, typ, spec, version, versionRaw := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	submitter, recipients, op := make([]string, n), make([]string, n), make([]string, n)
	latest, body := make([]bool, n), make([][]byte, n)
	for i, v := range rows {
		o := v.Obj
		added[i], seq[i], tlp[i] = v.Added, v.Seq, int32(o.TLP)
		id[i], typ[i], spec[i], version[i], versionRaw[i] = o.ID, o.Type, v.Spec, v.Version, v.VersionRaw
		submitter[i], recipients[i], op[i] = o.Submitter, sqlstore.JSONList(o.Recipients), string(store.OpAdd)
		latest[i], body[i] = v.Latest, o.Raw
	}
	b.Queue(insertObjectsSQL, cid, added, id, typ, spec, version, versionRaw, latest, body, submitter, tlp, recipients)
	if withChanges {
		b.Queue(insertChangesSQL, cid, seq, op, id, versionRaw, added)
	}
}

// InsertOwners implements sqlstore.Dialect. Rows go in id order (the
// order of ids), so that concurrent claimants lock keys in one order.
func (Dialect) InsertOwners(b *sqlstore.Batch, ids, owners []string, ignoreConflicts bool) {
	q := `INSERT INTO owners (id, owner) SELECT u.id, u.owner FROM unnest(?::text[], ?::text[]) WITH ORDINALITY AS u(id, owner, n) ORDER BY u.n`
	if ignoreConflicts {
		q += ` ON CONFLICT DO NOTHING`
	}
	b.Queue(q, ids, owners)
}

// ClaimOwnersSQL implements sqlstore.Dialect: claims and reads in one
// round trip.
func (Dialect) ClaimOwnersSQL(a *sqlstore.Args, ids, owners, all []string) string {
	return `WITH ins AS (
			INSERT INTO owners (id, owner)
			SELECT u.id, u.owner FROM unnest(` + a.Add(ids) + `::text[], ` + a.Add(owners) + `::text[]) WITH ORDINALITY AS u(id, owner, n) ORDER BY u.n
			ON CONFLICT DO NOTHING RETURNING id, owner)
		SELECT id, owner FROM ins
		UNION ALL
		SELECT id, owner FROM owners WHERE id = ANY(` + a.Add(all) + `::text[])`
}

// InsertChanges implements sqlstore.Dialect.
func (Dialect) InsertChanges(b *sqlstore.Batch, cid int64, changes []store.Change) {
	n := len(changes)
	seq, at := make([]int64, n), make([]int64, n)
	op, oid, ver := make([]string, n), make([]string, n), make([]string, n)
	for i, c := range changes {
		seq[i], op[i], oid[i], ver[i], at[i] = c.Seq, string(c.Op), c.ObjectID, c.VersionRaw, c.At.UnixMicro()
	}
	b.Queue(insertChangesSQL, cid, seq, op, oid, ver, at)
}

// ListValue implements sqlstore.Dialect: lists are text[].
func (Dialect) ListValue(l []string) any {
	if l == nil {
		return []string{}
	}
	return l
}

// ListDest implements sqlstore.Dialect.
func (Dialect) ListDest(dst *[]string) any { return dst }

// HasElem implements sqlstore.Dialect.
func (Dialect) HasElem(a *sqlstore.Args, col, v string) string {
	return a.Add(v) + "::text = ANY(" + col + ")"
}

// WholeAdd implements sqlstore.Dialect: each round trip costs more than
// overlapping with the caller's validation gains.
func (Dialect) WholeAdd() bool { return true }

// AfterImportAudit implements sqlstore.Dialect: the identity sequence
// goes on after the greatest imported seq.
func (Dialect) AfterImportAudit(b *sqlstore.Batch) {
	b.Queue(`SELECT setval(pg_get_serial_sequence('audit', 'seq'), (SELECT max(seq) FROM audit))`)
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// IsUnique implements sqlstore.Dialect.
func (Dialect) IsUnique(err error) bool { return pgCode(err) == "23505" }

// IsForeignKey implements sqlstore.Dialect.
func (Dialect) IsForeignKey(err error) bool { return pgCode(err) == "23503" }

// LockMigrations implements sqlstore.Dialect: a transaction-level advisory
// lock keyed by the schema, so that concurrent first starts migrate once.
func (Dialect) LockMigrations(ctx context.Context, tx sqlstore.Tx) error {
	var schema string
	if err := tx.QueryRow(ctx, `SELECT COALESCE(current_schema(), '')`).Scan(&schema); err != nil {
		return err
	}
	if schema == "" {
		return fmt.Errorf("no schema of the search_path exists")
	}
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('mitra.migrate.' || ?::text))`, schema)
	return err
}

// ColumnsSQL implements sqlstore.Dialect.
func (Dialect) ColumnsSQL() string {
	return `SELECT column_name::text FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?`
}

// IndexedSQL implements sqlstore.Dialect: the index is written by
// triggers in the objects' transaction.
func (Dialect) IndexedSQL() string { return "" }

// TextMatch implements sqlstore.Dialect with a tsvector index (migration
// 0011): websearch_to_tsquery reads any text without syntax errors (words
// are ANDed, "quoted phrases", -excluded, or); a word of letters and
// digits ending in * matches as a prefix. ts_rank weighs the name (A) over
// the pattern, value and labels (B) and the description (C).
func (Dialect) TextMatch(a *sqlstore.Args, text string) (join, cond, score, key string) {
	var plain, prefixes []string
	for _, w := range strings.Fields(text) {
		if p, ok := strings.CutSuffix(w, "*"); ok && p != "" && strings.IndexFunc(p, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) < 0 {
			prefixes = append(prefixes, strings.ToLower(p)+":*")
			continue
		}
		plain = append(plain, w)
	}
	q := "websearch_to_tsquery('simple', " + a.Add(strings.Join(plain, " ")) + ")"
	if len(prefixes) > 0 {
		q = "(" + q + " && to_tsquery('simple', " + a.Add(strings.Join(prefixes, " & ")) + "))"
	}
	return " JOIN search_text st ON st.rid = o.rid CROSS JOIN (SELECT " + q + " AS q) tq", "numnode(tq.q) > 0 AND st.doc @@ tq.q", "-ts_rank(st.doc, tq.q)", "o.rid"
}

// TablesSQL implements sqlstore.TableDialect.
func (Dialect) TablesSQL() string {
	return `SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
}

// TableColumnsSQL implements sqlstore.TableDialect.
func (Dialect) TableColumnsSQL() string {
	return `SELECT a.attname::text, format_type(a.atttypid, a.atttypmod),
			COALESCE((SELECT k.n FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(att, n) WHERE k.att = a.attnum), 0)::bigint,
			CASE WHEN a.attidentity <> '' OR pg_get_serial_sequence(a.attrelid::regclass::text, a.attname::text) IS NOT NULL THEN 1 ELSE 0 END::bigint
		FROM pg_attribute a LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
		WHERE a.attrelid = to_regclass(?::text) AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attnum`
}

// TableReferencesSQL implements sqlstore.TableDialect.
func (Dialect) TableReferencesSQL() string {
	return `SELECT DISTINCT c.relname::text FROM pg_constraint f JOIN pg_class c ON c.oid = f.confrelid
		WHERE f.conrelid = to_regclass(?::text) AND f.contype = 'f'`
}

// ResetIdentity implements sqlstore.TableDialect: the sequence goes on
// after the greatest copied value (and stays as it is on an empty table).
func (Dialect) ResetIdentity(b *sqlstore.Batch, table, col string) {
	b.Queue(`SELECT setval(pg_get_serial_sequence(?::text, ?::text), m) FROM (SELECT max(`+quoteIdent(col)+`) AS m FROM `+quoteIdent(table)+`) x WHERE m IS NOT NULL`, table, col)
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
