package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlstore"
)

// Dialect is SQLite's sqlstore.Dialect. Write transactions are serialised
// by BEGIN IMMEDIATE, so rows need no locks; lists are JSON text; bulk
// inserts are multi-row VALUES statements, prepared once.
type Dialect struct{}

// In implements sqlstore.Dialect.
func (Dialect) In(a *sqlstore.Args, col string, vals any) string {
	n := 0
	switch v := vals.(type) {
	case []string:
		for _, x := range v {
			a.Add(x)
		}
		n = len(v)
	case []int64:
		for _, x := range v {
			a.Add(x)
		}
		n = len(v)
	default:
		panic(fmt.Sprintf("sqlite: In of %T", vals))
	}
	return col + " IN (" + strings.TrimSuffix(strings.Repeat("?,", n), ",") + ")"
}

// ForUpdate implements sqlstore.Dialect: writers are serialised already.
func (Dialect) ForUpdate() string { return "" }

// ForShare implements sqlstore.Dialect.
func (Dialect) ForShare() string { return "" }

// Binary implements sqlstore.Dialect: SQLite's default collation is
// binary.
func (Dialect) Binary() string { return "" }

// insertChunk is the number of rows one multi-row INSERT takes.
const insertChunk = 50

// The object and change-log rows go in with INSERT OR FAIL. A multi-row
// statement whose constraints ABORT (the default) makes SQLite copy every
// page it first changes into a statement journal, so that a failing row
// can take the statement's earlier rows back out: for the random-keyed
// objects_version index that is a page per row (2.3 µs of the writer's
// time per mirrored object). FAIL keeps those earlier rows instead, which
// changes nothing here: every caller ends its transaction with a rollback
// when an insert fails (sqlstore's write, Update and import transactions).
const (
	objectCols = `INSERT OR FAIL INTO objects (cid, date_added, id, type, spec_version, version, version_raw, latest, body, submitter, tlp, recipients) VALUES `
	objectRow  = "(?,?,?,?,?,?,?,?,?,?,?,?)"
	// objectWidth is objectRow's parameters: cid, date_added, id, type,
	// spec_version, version, version_raw, latest, body, submitter, tlp,
	// recipients.
	objectWidth = 12
	changeCols  = `INSERT OR FAIL INTO changes (cid, seq, op, object_id, version_raw, at) VALUES `
	changeRow   = "(?,?,?,?,?,?)"
)

var (
	insertObjectsN  = objectCols + repeatValues(objectRow, insertChunk)
	insertObjectOne = objectCols + objectRow
	insertChangesN  = changeCols + repeatValues(changeRow, insertChunk)
	// prepared are the statements Open prepares on the writer.
	prepared = []string{insertObjectsN, insertObjectOne, insertChangesN, changeCols + changeRow,
		addConsoleCounts, addSightingDays, sqlstore.ProvenanceVersionsInsert(sqlstore.ProvenanceChunk)}
)

func repeatValues(tuple string, n int) string {
	return strings.TrimSuffix(strings.Repeat(tuple+",", n), ",")
}

// chunks queues rows in statements of insertChunk rows, the rest one by
// one (a statement of each size is prepared once); tail follows each
// statement's row arguments.
func chunks[T any](b *sqlstore.Batch, rows []T, many, one string, args func([]any, T) []any, tail ...any) {
	width := strings.Count(one, "?")
	for len(rows) > 0 {
		n, q := insertChunk, many
		if len(rows) < insertChunk {
			n, q = 1, one
		}
		a := make([]any, 0, n*width)
		for _, r := range rows[:n] {
			a = args(a, r)
		}
		a = append(a, tail...)
		b.Queue(q, a...)
		rows = rows[n:]
	}
}

// InsertVersions implements sqlstore.Dialect.
func (Dialect) InsertVersions(b *sqlstore.Batch, cid int64, rows []store.NewVersion, withChanges bool) {
	chunks(b, rows, insertObjectsN, insertObjectOne, func(a []any, r store.NewVersion) []any {
		return append(a, cid, r.Added, r.Obj.ID, r.Obj.Type, r.Spec, r.Version, r.VersionRaw, r.Latest, r.Obj.Raw,
			r.Obj.Submitter, r.Obj.TLP, sqlstore.JSONList(r.Obj.Recipients))
	})
	insertConsoleCounts(b, cid, rows)
	if withChanges {
		chunks(b, rows, insertChangesN, changeCols+changeRow, func(a []any, r store.NewVersion) []any {
			return append(a, cid, r.Seq, string(store.OpAdd), r.Obj.ID, r.VersionRaw, r.Added)
		})
	}
}

// InsertOwners implements sqlstore.Dialect.
func (Dialect) InsertOwners(b *sqlstore.Batch, ids, owners []string, ignoreConflicts bool) {
	verb := "INSERT"
	if ignoreConflicts {
		verb = "INSERT OR IGNORE"
	}
	for len(ids) > 0 {
		n := min(500, len(ids))
		args := make([]any, 0, 2*n)
		for i := range n {
			args = append(args, ids[i], owners[i])
		}
		b.Queue(verb+` INTO owners (id, owner) VALUES `+repeatValues("(?,?)", n), args...)
		ids, owners = ids[n:], owners[n:]
	}
}

// ClaimOwnersSQL implements sqlstore.Dialect: the insert-or-ignore
// returns the claims it recorded, so that only the owners of ids recorded
// before (none, for new objects) are read afterwards. SQLite has no INSERT
// in WITH to read those in the same statement. Beyond maxClaims ids (the
// statement's variables are limited) the claims go in chunks instead.
func (Dialect) ClaimOwnersSQL(a *sqlstore.Args, ids, owners, _ []string) string {
	if len(ids) > maxClaims {
		return ""
	}
	for i := range ids {
		a.Add(ids[i])
		a.Add(owners[i])
	}
	return `INSERT OR IGNORE INTO owners (id, owner) VALUES ` + repeatValues("(?,?)", len(ids)) + ` RETURNING id, owner`
}

// maxClaims keeps ClaimOwnersSQL's statement under SQLite's default limit
// of 32,766 variables.
const maxClaims = 10000

// InsertChanges implements sqlstore.Dialect.
func (Dialect) InsertChanges(b *sqlstore.Batch, cid int64, changes []store.Change) {
	chunks(b, changes, insertChangesN, changeCols+changeRow, func(a []any, c store.Change) []any {
		return append(a, cid, c.Seq, string(c.Op), c.ObjectID, c.VersionRaw, c.At.UnixMicro())
	})
}

// ListValue implements sqlstore.Dialect: lists are JSON text.
func (Dialect) ListValue(l []string) any { return sqlstore.JSONList(l) }

// ListDest implements sqlstore.Dialect.
func (Dialect) ListDest(dst *[]string) any { return jsonList{dst} }

// HasElem implements sqlstore.Dialect.
func (Dialect) HasElem(a *sqlstore.Args, col, v string) string {
	return `EXISTS (SELECT 1 FROM json_each(` + col + `) WHERE value = ` + a.Add(v) + `)`
}

// jsonList scans a JSON text list.
type jsonList struct{ dst *[]string }

func (j jsonList) Scan(src any) error {
	var s string
	switch v := src.(type) {
	case string:
		s = v
	case []byte:
		s = string(v)
	case nil:
	default:
		return fmt.Errorf("list column: %T", src)
	}
	l, err := sqlstore.ParseList(s)
	*j.dst = l
	return err
}

// WholeAdd implements sqlstore.Dialect: statements are cheap in process,
// so batches are written while the caller validates the next.
func (Dialect) WholeAdd() bool { return false }

// AfterImportAudit implements sqlstore.Dialect: INTEGER PRIMARY KEY goes
// on after the greatest seq by itself.
func (Dialect) AfterImportAudit(*sqlstore.Batch) {}

// IsUnique implements sqlstore.Dialect. modernc reports constraint
// violations as *sqlite.Error with extended codes; the message is stable
// across versions.
func (Dialect) IsUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// IsForeignKey implements sqlstore.Dialect.
func (Dialect) IsForeignKey(err error) bool {
	return err != nil && strings.Contains(err.Error(), "FOREIGN KEY constraint failed")
}

// LockMigrations implements sqlstore.Dialect: BEGIN IMMEDIATE holds the
// database's write lock already.
func (Dialect) LockMigrations(context.Context, sqlstore.Tx) error { return nil }

// ColumnsSQL implements sqlstore.Dialect.
func (Dialect) ColumnsSQL() string { return `SELECT name FROM pragma_table_info(?)` }

// TextMatch implements sqlstore.Dialect with FTS5 (migration 0011). Each
// word of the text becomes a quoted FTS5 string, so that no character of
// it is FTS5 syntax; a word ending in * matches as a prefix.
//
// The score is not bm25: bm25 weighs words by their frequency in the whole
// index, hidden objects included, so scores and order could tell a reader
// about objects it may not see. It counts instead, in the object alone,
// the words found in its name (10), labels or pattern/value (4) and
// description (1).
func (Dialect) TextMatch(a *sqlstore.Args, text string) (join, cond, score, key string) {
	var terms, parts []string
	for _, w := range strings.Fields(text) {
		prefix := strings.HasSuffix(w, "*")
		w = strings.TrimRight(w, "*")
		if w == "" {
			continue
		}
		t := `"` + strings.ReplaceAll(w, `"`, `""`) + `"`
		if prefix {
			t += "*"
		}
		terms = append(terms, t)
		// A literal: SQLite strings have no escape but the doubled quote.
		lit := "'" + strings.ReplaceAll(strings.ToLower(w), "'", "''") + "'"
		parts = append(parts,
			"10 * (instr(lower(coalesce(search_text.name, '')), "+lit+") > 0)",
			"4 * (instr(lower(coalesce(search_text.labels, '') || ' ' || coalesce(search_text.pattern, '')), "+lit+") > 0)",
			"(instr(lower(coalesce(search_text.description, '')), "+lit+") > 0)")
	}
	if len(terms) == 0 {
		return "", "", "", ""
	}
	// Ordered by search_text.rowid, FTS5 reads matches newest first
	// without sorting them. The rows must be o's own (IndexedSQL).
	return " JOIN search_text ON search_text.rowid = o.rid", "search_text MATCH " + a.Add(strings.Join(terms, " ")) + " AND " + indexedSQL,
		"CAST(-(" + strings.Join(parts, " + ") + ") AS REAL)", "search_text.rowid"
}

// indexedSQL is the condition that the search index's rows at o.rid are
// o's own: the index follows the commits in another file, and a deleted
// object's rows stay there until swept, even once its rid is given again
// (searchindex.go).
const indexedSQL = "EXISTS (SELECT 1 FROM search_docs sd WHERE sd.rid = o.rid AND sd.cid = o.cid AND sd.added = o.date_added)"

// IndexedSQL implements sqlstore.Dialect.
func (Dialect) IndexedSQL() string { return " AND " + indexedSQL }

// TablesSQL implements sqlstore.TableDialect: table_list marks virtual
// tables and their shadow tables (search_text, migration 0011) apart.
func (Dialect) TablesSQL() string {
	return `SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'`
}

// TableColumnsSQL implements sqlstore.TableDialect. An INTEGER PRIMARY
// KEY goes on after the greatest rowid by itself: no identity to reset.
func (Dialect) TableColumnsSQL() string {
	return `SELECT name, type, pk, 0 FROM pragma_table_info(?) ORDER BY cid`
}

// TableReferencesSQL implements sqlstore.TableDialect.
func (Dialect) TableReferencesSQL() string {
	return `SELECT DISTINCT "table" FROM pragma_foreign_key_list(?)`
}

// ResetIdentity implements sqlstore.TableDialect: nothing to reset.
func (Dialect) ResetIdentity(*sqlstore.Batch, string, string) {}
