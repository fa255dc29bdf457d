package sqlstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// The generic copier carries every table the typed copy (store.Copy) does
// not, column for column, so that a table a migration adds is copied by
// mitra migrate-store without anyone writing code for it. Both stores must
// be migrated to the same schema version; values are converted by the
// target column's type (SQLite integers to PostgreSQL booleans, blobs to
// bytea, JSON text lists to arrays, and back).

// TableDialect is what a dialect tells the generic copier about its
// schema. Both backends implement it.
type TableDialect interface {
	// TablesSQL lists the names of the schema's ordinary tables (no
	// arguments; virtual tables and their shadow tables excluded).
	TablesSQL() string
	// TableColumnsSQL lists a table's columns in order (one argument, the
	// table name): name, declared type, position in the primary key (0
	// when not in it), 1 when the database numbers the column itself
	// (identity, serial) and must be told to go on after copied values.
	TableColumnsSQL() string
	// TableReferencesSQL lists the tables a table's foreign keys
	// reference (one argument, the table name).
	TableReferencesSQL() string
	// ResetIdentity queues what makes the database number new rows of
	// table after the greatest value of its column col.
	ResetIdentity(b *Batch, table, col string)
}

// Derived tables are rebuilt by the target when the typed copy inserts
// objects (migration 0011: search_text and search_refs, by PostgreSQL's
// triggers; SQLite's are in a file of their own since migration 0016,
// written by its indexer, and not listed; migration 0014: the console's
// kept counts), or belong to the migration runner (schema_migrations,
// compared rather than copied): they are never copied.
var Derived = map[string]bool{
	"schema_migrations":     true,
	"search_text":           true,
	"search_refs":           true,
	"console_counts":        true,
	"console_sighting_days": true,
}

// Typed tables are copied by store.Copy's typed methods, which carry what
// a row copy cannot: collection and object keys (cid, rid) are the
// target's own, the default organisation is replaced, date_added order and
// latest flags are written by the store's version planning.
var Typed = map[string]bool{
	"organisations": true, "users": true, "tokens": true, "groups_": true, "group_members": true,
	"collections": true, "grants": true, "party_grants": true, "objects": true, "changes": true,
	"statuses": true, "audit": true, "owners": true, "cursors": true,
}

// ErrSchemaDiffers: the two stores of a copy are not at the same schema
// version or do not have the same tables and columns.
var ErrSchemaDiffers = errors.New("the stores' schemas differ")

// CopyPage is the number of rows the generic copier reads, and writes in
// one transaction, at a time.
const CopyPage = 1000

// insertRows is the number of rows one INSERT statement of the copier
// takes.
const insertRows = 100

// colClass is how the copier treats a column's values.
type colClass int

const (
	classText colClass = iota
	classInt
	classBool
	classBytes
	classFloat
	classArray // PostgreSQL text[]
	classJSON  // PostgreSQL json, jsonb
)

// Column is one column of a table as the copier sees it.
type Column struct {
	Name     string
	Type     string // as declared
	Key      int    // position in the primary key, 0 when not in it
	Identity bool
	class    colClass
}

// Table is a table's name and columns.
type Table struct {
	Name    string
	Columns []Column
	refs    []string
}

// key is the table's primary key columns, in key order.
func (t *Table) key() []Column {
	var k []Column
	for _, c := range t.Columns {
		if c.Key > 0 {
			k = append(k, c)
		}
	}
	sort.Slice(k, func(i, j int) bool { return k[i].Key < k[j].Key })
	return k
}

func classify(typ string) (colClass, error) {
	t := strings.ToLower(strings.TrimSpace(typ))
	switch {
	case strings.HasSuffix(t, "[]"):
		return classArray, nil
	case t == "boolean" || t == "bool":
		return classBool, nil
	case strings.Contains(t, "int"):
		return classInt, nil
	case t == "bytea" || t == "blob" || t == "":
		return classBytes, nil
	case t == "json" || t == "jsonb":
		return classJSON, nil
	case strings.Contains(t, "text") || strings.Contains(t, "char") || strings.Contains(t, "clob"):
		return classText, nil
	case strings.Contains(t, "real") || strings.Contains(t, "double") || strings.Contains(t, "float") || strings.Contains(t, "numeric"):
		return classFloat, nil
	}
	return 0, fmt.Errorf("column type %q: the copier does not know how to carry it", typ)
}

func (s *Store) tableDialect() (TableDialect, error) {
	td, ok := s.d.(TableDialect)
	if !ok {
		return nil, fmt.Errorf("copy: dialect %T cannot list its tables", s.d)
	}
	return td, nil
}

// SchemaVersion is the greatest migration applied to the store.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.db.QueryRow(ctx, `SELECT COALESCE(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return v, nil
}

// Tables lists the store's ordinary tables (derived ones included) with
// their columns, in name order.
func (s *Store) Tables(ctx context.Context) ([]Table, error) {
	td, err := s.tableDialect()
	if err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, td.TablesSQL())
	names, err := collect(rows, err, "list tables", func(r Row) (string, error) {
		var n string
		return n, r.Scan(&n)
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := make([]Table, 0, len(names))
	for _, n := range names {
		t := Table{Name: n}
		rows, err := s.db.Query(ctx, td.TableColumnsSQL(), n)
		t.Columns, err = collect(rows, err, "columns of "+n, func(r Row) (Column, error) {
			var c Column
			var key, ident int64
			if err := r.Scan(&c.Name, &c.Type, &key, &ident); err != nil {
				return c, err
			}
			c.Key, c.Identity = int(key), ident != 0
			return c, nil
		})
		if err != nil {
			return nil, err
		}
		rows, err = s.db.Query(ctx, td.TableReferencesSQL(), n)
		t.refs, err = collect(rows, err, "references of "+n, func(r Row) (string, error) {
			var ref string
			err := r.Scan(&ref)
			return strings.Trim(ref, `"`), err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// TableStat is a copied table's row count and checksum in one store.
type TableStat struct {
	Table    string
	Rows     int64
	Checksum string // hex XOR of the rows' SHA-256, values as the target stores them
}

// CopyPlan is the tables the generic copier carries from one store to
// another, in an order where referenced tables come first.
type CopyPlan struct {
	Tables []Table // as the target declares them
}

// PlanCopy checks that src and dst have the same schema version, tables
// and columns, that every table to copy has a primary key and columns of
// known types, and that those tables are empty in dst.
func PlanCopy(ctx context.Context, dst, src *Store) (*CopyPlan, error) {
	sv, err := src.SchemaVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	dv, err := dst.SchemaVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	if sv != dv {
		return nil, fmt.Errorf("%w: the source is at schema version %d, the target at %d: run mitra migrate on both with the same mitra", ErrSchemaDiffers, sv, dv)
	}
	st, err := src.Tables(ctx)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	dt, err := dst.Tables(ctx)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	srcCols := map[string][]string{}
	for _, t := range st {
		for _, c := range t.Columns {
			srcCols[t.Name] = append(srcCols[t.Name], c.Name)
		}
	}
	byName := map[string]*Table{}
	var plan []*Table
	for i := range dt {
		t := &dt[i]
		if Derived[t.Name] {
			continue
		}
		sc, ok := srcCols[t.Name]
		delete(srcCols, t.Name)
		var dc []string
		for _, c := range t.Columns {
			dc = append(dc, c.Name)
		}
		if !ok || strings.Join(sc, ",") != strings.Join(dc, ",") {
			return nil, fmt.Errorf("%w: table %s has columns (%s) in the source, (%s) in the target", ErrSchemaDiffers, t.Name, strings.Join(sc, ", "), strings.Join(dc, ", "))
		}
		if Typed[t.Name] {
			continue
		}
		if len(t.key()) == 0 {
			return nil, fmt.Errorf("copy: table %s has no primary key: the copier cannot read it in order", t.Name)
		}
		if err := checkRenumbered(t); err != nil {
			return nil, err
		}
		for j := range t.Columns {
			if t.Columns[j].class, err = classify(t.Columns[j].Type); err != nil {
				return nil, fmt.Errorf("copy: table %s: %w", t.Name, err)
			}
		}
		byName[t.Name] = t
		plan = append(plan, t)
	}
	for n := range srcCols {
		if !Derived[n] {
			return nil, fmt.Errorf("%w: table %s is in the source, not in the target", ErrSchemaDiffers, n)
		}
	}
	// Referenced tables first (foreign keys are enforced on both).
	var ordered []Table
	state := map[string]int{}
	var visit func(t *Table) error
	visit = func(t *Table) error {
		switch state[t.Name] {
		case 1:
			return fmt.Errorf("copy: table %s: foreign keys form a cycle", t.Name)
		case 2:
			return nil
		}
		state[t.Name] = 1
		for _, r := range t.refs {
			if rt := byName[r]; rt != nil && rt != t {
				if err := visit(rt); err != nil {
					return err
				}
			}
		}
		state[t.Name] = 2
		ordered = append(ordered, *t)
		return nil
	}
	for _, t := range plan {
		if err := visit(t); err != nil {
			return nil, err
		}
	}
	for _, t := range ordered {
		var n int64
		if err := dst.db.QueryRow(ctx, `SELECT count(*) FROM `+quoteIdent(t.Name)).Scan(&n); err != nil {
			return nil, fmt.Errorf("target: count %s: %w", t.Name, err)
		}
		if n > 0 {
			return nil, fmt.Errorf("target table %s holds %d rows: the target must be empty", t.Name, n)
		}
	}
	return &CopyPlan{Tables: ordered}, nil
}

// renumbered are the keys the typed copy gives new values in the target
// (collections and object versions are numbered by the target): a table
// holding them cannot be copied row for row.
var renumbered = map[string]string{"collections": "cid", "objects": "rid"}

// checkRenumbered refuses a table that references or holds a renumbered
// key: its rows would point at other collections or versions.
func checkRenumbered(t *Table) error {
	for _, r := range t.refs {
		if k, ok := renumbered[r]; ok {
			return fmt.Errorf("copy: table %s references %s (%s), which the copy renumbers: it needs a typed copy", t.Name, r, k)
		}
	}
	for _, c := range t.Columns {
		for r, k := range renumbered {
			if c.Name == k {
				return fmt.Errorf("copy: table %s has a column %s, the key of %s, which the copy renumbers: it needs a typed copy", t.Name, k, r)
			}
		}
	}
	return nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// Names are the names of the plan's tables, in copy order.
func (p *CopyPlan) Names() []string {
	out := make([]string, len(p.Tables))
	for i, t := range p.Tables {
		out[i] = t.Name
	}
	return out
}

// Copy copies the plan's tables from src to dst, a page of rows per
// transaction, calling progress with the number of rows copied at each
// page; then it sets dst's identity counters after the copied values.
func (p *CopyPlan) Copy(ctx context.Context, dst, src *Store, progress func(rows int64)) error {
	td, err := dst.tableDialect()
	if err != nil {
		return err
	}
	for _, t := range p.Tables {
		err := scanTable(ctx, src, &t, func(rows [][]any) error {
			if err := insertPage(ctx, dst, &t, rows); err != nil {
				return err
			}
			if progress != nil {
				progress(int64(len(rows)))
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("copy table %s: %w", t.Name, err)
		}
		b := &Batch{}
		for _, c := range t.Columns {
			if c.Identity {
				td.ResetIdentity(b, t.Name, c.Name)
			}
		}
		if b.Len() > 0 {
			if err := dst.importTx(ctx, "identity of "+t.Name, func(tx Tx) error { return tx.Send(ctx, b) }); err != nil {
				return err
			}
		}
	}
	return nil
}

// scanTable calls fn with the table's rows of s, in primary key order, a
// page at a time, values converted for the columns of t.
func scanTable(ctx context.Context, s *Store, t *Table, fn func([][]any) error) error {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = quoteIdent(c.Name)
	}
	key := t.key()
	keyNames := make([]string, len(key))
	keyIdx := make([]int, len(key))
	for i, k := range key {
		keyNames[i] = quoteIdent(k.Name)
		for j, c := range t.Columns {
			if c.Name == k.Name {
				keyIdx[i] = j
			}
		}
	}
	base := `SELECT ` + strings.Join(names, ", ") + ` FROM ` + quoteIdent(t.Name)
	order := ` ORDER BY ` + strings.Join(keyNames, ", ") + ` LIMIT ?`
	// Row values compare in the same collation as ORDER BY sorts, in
	// both databases.
	after := ` WHERE (` + strings.Join(keyNames, ", ") + `) > (` + strings.TrimSuffix(strings.Repeat("?, ", len(key)), ", ") + `)`
	var last []any
	for {
		q, args := base+order, []any{CopyPage}
		if last != nil {
			q = base + after + order
			args = append(append([]any{}, last...), CopyPage)
		}
		rows, err := s.db.Query(ctx, q, args...)
		page, err := collect(rows, err, "read", func(r Row) ([]any, error) {
			vals := make([]any, len(t.Columns))
			ptrs := make([]any, len(vals))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := r.Scan(ptrs...); err != nil {
				return nil, err
			}
			for i := range vals {
				v, err := convert(vals[i], t.Columns[i].class)
				if err != nil {
					return nil, fmt.Errorf("column %s: %w", t.Columns[i].Name, err)
				}
				vals[i] = v
			}
			return vals, nil
		})
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		if err := fn(page); err != nil {
			return err
		}
		if len(page) < CopyPage {
			return nil
		}
		lr := page[len(page)-1]
		last = make([]any, len(keyIdx))
		for i, j := range keyIdx {
			last[i] = lr[j]
		}
	}
}

// insertPage writes rows into t in one transaction.
func insertPage(ctx context.Context, s *Store, t *Table, rows [][]any) error {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = quoteIdent(c.Name)
	}
	head := `INSERT INTO ` + quoteIdent(t.Name) + ` (` + strings.Join(names, ", ") + `) VALUES `
	tuple := `(` + strings.TrimSuffix(strings.Repeat("?, ", len(names)), ", ") + `)`
	return s.importBatch(ctx, t.Name, func(b *Batch) {
		for len(rows) > 0 {
			n := min(insertRows, len(rows))
			args := make([]any, 0, n*len(names))
			for _, r := range rows[:n] {
				args = append(args, r...)
			}
			b.Queue(head+strings.TrimSuffix(strings.Repeat(tuple+", ", n), ", "), args...)
			rows = rows[n:]
		}
	})
}

// convert turns a value read from either database into what a column of
// class c takes in the other.
func convert(v any, c colClass) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch c {
	case classInt:
		switch x := v.(type) {
		case int64:
			return x, nil
		case int32:
			return int64(x), nil
		case int16:
			return int64(x), nil
		case int:
			return int64(x), nil
		case bool:
			if x {
				return int64(1), nil
			}
			return int64(0), nil
		case float64:
			if x == math.Trunc(x) {
				return int64(x), nil
			}
		case string:
			if n, err := strconv.ParseInt(x, 10, 64); err == nil {
				return n, nil
			}
		case []byte:
			if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
				return n, nil
			}
		}
	case classBool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case int64:
			return x != 0, nil
		case int32:
			return x != 0, nil
		case int:
			return x != 0, nil
		}
	case classBytes:
		switch x := v.(type) {
		case []byte:
			return append([]byte{}, x...), nil
		case string:
			return []byte(x), nil
		}
	case classFloat:
		switch x := v.(type) {
		case float64:
			return x, nil
		case float32:
			return float64(x), nil
		case int64:
			return float64(x), nil
		}
	case classText, classJSON:
		switch x := v.(type) {
		case string:
			return x, nil
		case []byte:
			return string(x), nil
		case int64, int32, int, float64, bool:
			return fmt.Sprint(x), nil
		case []any, []string, map[string]any:
			// A PostgreSQL array or JSON value going to SQLite text.
			b, err := json.Marshal(x)
			return string(b), err
		}
	case classArray:
		switch x := v.(type) {
		case []string:
			return x, nil
		case []any:
			l := make([]string, len(x))
			for i, e := range x {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("array element %T", e)
				}
				l[i] = s
			}
			return l, nil
		case string:
			l, err := ParseList(x)
			if l == nil {
				l = []string{}
			}
			return l, err
		case []byte:
			l, err := ParseList(string(x))
			if l == nil {
				l = []string{}
			}
			return l, err
		}
	}
	return nil, fmt.Errorf("cannot carry a %T value into a column of class %d", v, c)
}

// Stats counts and checksums the plan's tables in s, values converted to
// the target's column types, so that the same rows give the same checksum
// in both stores. The checksum is the XOR of the rows' SHA-256 hashes: the
// databases may order text keys differently (PostgreSQL's collation,
// SQLite's bytes), and the primary key makes every row unique, so no two
// rows cancel out.
func (p *CopyPlan) Stats(ctx context.Context, s *Store) ([]TableStat, error) {
	out := make([]TableStat, 0, len(p.Tables))
	for _, t := range p.Tables {
		var sum [sha256.Size]byte
		st := TableStat{Table: t.Name}
		err := scanTable(ctx, s, &t, func(rows [][]any) error {
			for _, r := range rows {
				st.Rows++
				h := sha256.New()
				for _, v := range r {
					hashValue(h, v)
				}
				for i, b := range h.Sum(nil) {
					sum[i] ^= b
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("checksum %s: %w", t.Name, err)
		}
		st.Checksum = hex.EncodeToString(sum[:])
		out = append(out, st)
	}
	return out, nil
}

// hashValue writes a value, tagged with its kind and length, so that no
// two rows hash alike by shifting bytes between columns.
func hashValue(h interface{ Write([]byte) (int, error) }, v any) {
	var tag byte
	var b []byte
	switch x := v.(type) {
	case nil:
		tag = 'n'
	case int64:
		tag, b = 'i', binary.BigEndian.AppendUint64(nil, uint64(x))
	case bool:
		tag, b = 'b', []byte(strconv.FormatBool(x))
	case float64:
		tag, b = 'f', binary.BigEndian.AppendUint64(nil, math.Float64bits(x))
	case string:
		tag, b = 's', []byte(x)
	case []byte:
		tag, b = 'x', x
	case []string:
		tag, b = 'a', []byte(JSONList(x))
	default:
		tag, b = '?', []byte(fmt.Sprintf("%#v", x))
	}
	h.Write([]byte{tag})
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(b))))
	h.Write(b)
}

// SQLStore returns s: the backends embed *Store, so that a caller holding
// one of them reaches the generic copier through this method.
func (s *Store) SQLStore() *Store { return s }

// ReadTable calls fn with the rows of the named table of s in primary key
// order, a page at a time, values as s's own columns hold them, and
// returns the table's column names.
func (s *Store) ReadTable(ctx context.Context, name string, fn func([][]any) error) ([]string, error) {
	ts, err := s.Tables(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range ts {
		if t.Name != name {
			continue
		}
		cols := make([]string, len(t.Columns))
		for i := range t.Columns {
			cols[i] = t.Columns[i].Name
			if t.Columns[i].class, err = classify(t.Columns[i].Type); err != nil {
				return nil, fmt.Errorf("table %s: %w", name, err)
			}
		}
		if len(t.key()) == 0 {
			return nil, fmt.Errorf("table %s has no primary key", name)
		}
		return cols, scanTable(ctx, s, &t, fn)
	}
	return nil, fmt.Errorf("table %s: %w", name, ErrSchemaDiffers)
}
