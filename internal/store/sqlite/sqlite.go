// Package sqlite is Mitra's embedded store: one SQLite database file in the
// data directory, in WAL mode, shared safely by the server and by command-line
// tools running at the same time.
//
// Writes go through one connection with BEGIN IMMEDIATE transactions, so all
// writers (of this process and of any other process on the same file) are
// serialised by SQLite's write lock. That is what makes date_added and the
// change-log sequence strictly increasing in commit order: each transaction
// reads the collection's high-water mark and advances it before committing.
// Reads use a separate pool of read-only connections and never block writers.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver (pure Go, no cgo).
)

//go:embed migrations/*.sql
var migrations embed.FS

// FileName is the database file inside the data directory.
const FileName = "mitra.db"

// maxPage caps a page when the query asks for no limit.
const maxPage = 10000

// Options configures Open.
type Options struct {
	// Now is the clock; time.Now when nil. Tests inject their own.
	Now func() time.Time
	// Sync is SQLite's synchronous setting: "full" (the default) makes
	// every commit durable against power loss; "normal" against process
	// crashes (kill -9) only, for about 40 % more ingest on disks with slow
	// fsync.
	Sync string
}

// Store is the SQLite implementation of store.Store.
type Store struct {
	w   *sql.DB // one connection, BEGIN IMMEDIATE: the writer
	r   *sql.DB // read-only pool
	now func() time.Time

	// Prepared on the writer: see prepareInserts.
	insObjN, insObj1, insChgN, insChg1 *sql.Stmt
}

var _ store.Store = (*Store)(nil)

// Open opens (creating when needed) the store in directory dir and applies
// pending migrations.
func Open(ctx context.Context, dir string, opts Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	path, err := filepath.Abs(filepath.Join(dir, FileName))
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	// synchronous(FULL): a commit is on disk before AddObjects returns, so a
	// TAXII 202 survives kill -9 and power loss alike. NORMAL (Options.Sync)
	// still writes the WAL before COMMIT returns: it survives kill -9.
	sync := "FULL"
	switch strings.ToLower(opts.Sync) {
	case "", "full":
	case "normal":
		sync = "NORMAL"
	default:
		return nil, fmt.Errorf("sqlite sync %q: want full or normal: %w", opts.Sync, store.ErrInvalid)
	}
	common := "_pragma=busy_timeout(20000)&_pragma=foreign_keys(1)&_pragma=synchronous(" + sync + ")&_pragma=journal_mode(WAL)&_pragma=cache_size(-65536)&_pragma=mmap_size(1073741824)&_pragma=wal_autocheckpoint(16384)&_pragma=temp_store(2)"
	u := url.URL{Scheme: "file", Path: path}
	w, err := sql.Open("sqlite", u.String()+"?"+common+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	s := &Store{w: w, now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	if err := s.prepareInserts(ctx); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", u.String()+"?"+common+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	r.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)*2))
	s.r = r
	if err := s.ensureDefaultOrganisation(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the database.
func (s *Store) Close() error {
	var err error
	if s.r != nil {
		err = s.r.Close()
	}
	return errors.Join(err, s.w.Close())
}

func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var cur int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	sort.Strings(names)
	for i, name := range names {
		v := i + 1
		if v <= cur {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("migrate %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("migrate %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied) VALUES (?, ?)`, v, micros(s.now())); err != nil {
			return fmt.Errorf("migrate %s: %w", name, err)
		}
	}
	return tx.Commit()
}

func (s *Store) ensureDefaultOrganisation(ctx context.Context) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO organisations (id, name, created, is_default)
		SELECT ?, ?, ?, 1 WHERE NOT EXISTS (SELECT 1 FROM organisations WHERE is_default = 1)`,
		"identity--"+uuid.NewString(), "Default organisation", micros(s.now()))
	if err != nil {
		return fmt.Errorf("create default organisation: %w", err)
	}
	return nil
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

func isUnique(err error) bool {
	// modernc reports constraint violations as *sqlite.Error with extended
	// codes; the message is stable ("UNIQUE constraint failed") across versions.
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// --- objects ---------------------------------------------------------------

// AddObjects implements store.Objects.
//
// It works per batch rather than per object: one query loads what is stored
// for the batch's ids, the decisions (duplicate, conflict, which row is the
// latest) are made in memory, and rows go in with multi-row INSERTs. Each
// SQLite statement costs microseconds of fixed overhead, which per object
// would dominate ingest.
func (s *Store) AddObjects(ctx context.Context, collectionID string, objs []store.Object, status *store.Status) ([]store.AddResult, error) {
	return s.AddBatches(ctx, collectionID, slices.Values([][]store.Object{objs}), status)
}

// AddBatches implements store.Objects.
func (s *Store) AddBatches(ctx context.Context, collectionID string, batches iter.Seq[[]store.Object], status *store.Status) ([]store.AddResult, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("add objects: %w", err)
	}
	defer tx.Rollback()
	var cid, lastAdded, lastSeq int64
	err = tx.QueryRowContext(ctx, `SELECT cid, last_added, last_seq FROM collections WHERE id = ?`, collectionID).Scan(&cid, &lastAdded, &lastSeq)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("collection %s: %w", collectionID, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("add objects: %w", err)
	}
	var results []store.AddResult
	for objs := range batches {
		// Versions inserted by earlier batches are visible here: same
		// transaction.
		plan, err := s.addBatch(ctx, tx, cid, lastAdded, lastSeq, objs)
		if err != nil {
			return nil, err
		}
		lastAdded, lastSeq = plan.LastAdded, plan.LastSeq
		if status != nil {
			plan.RecordStatus(objs, status)
		}
		results = append(results, plan.Results...)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE collections SET last_added = ?, last_seq = ? WHERE cid = ?`, lastAdded, lastSeq, cid); err != nil {
		return nil, fmt.Errorf("add objects: %w", err)
	}
	if status != nil {
		if err := saveStatus(ctx, tx, status); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("add objects: commit: %w", err)
	}
	return results, nil
}

// addBatch plans one batch of objects against what tx sees and writes
// its rows; the caller advances the collection's marks to the plan's.
func (s *Store) addBatch(ctx context.Context, tx *sql.Tx, cid, lastAdded, lastSeq int64, objs []store.Object) (*store.AddPlan, error) {
	existing, err := loadVersions(ctx, tx, cid, objs)
	if err != nil {
		return nil, err
	}
	owners, err := claimOwners(ctx, tx, objs)
	if err != nil {
		return nil, err
	}
	plan := store.PlanAdd(objs, existing, owners, micros(s.now()), lastAdded, lastSeq)
	if err := s.insertRows(ctx, tx, cid, plan.Rows); err != nil {
		return nil, err
	}
	for _, rid := range plan.Superseded {
		if _, err := tx.ExecContext(ctx, `UPDATE objects SET latest = 0 WHERE rid = ?`, rid); err != nil {
			return nil, fmt.Errorf("add objects: %w", err)
		}
	}
	return plan, nil
}

// loadVersions reads every stored version of the batch's ids, in one query
// per chunk of ids. For new objects it finds nothing, cheaply.
func loadVersions(ctx context.Context, tx *sql.Tx, cid int64, objs []store.Object) (map[string][]store.StoredVersion, error) {
	out := make(map[string][]store.StoredVersion, len(objs))
	ids := make([]any, 0, len(objs))
	seen := make(map[string]bool, len(objs))
	for _, o := range objs {
		if !seen[o.ID] {
			seen[o.ID] = true
			ids = append(ids, o.ID)
		}
	}
	const chunk = 500
	for len(ids) > 0 {
		n := min(chunk, len(ids))
		part := ids[:n]
		ids = ids[n:]
		q := `SELECT id, rid, version, version_raw, spec_version, latest, body FROM objects WHERE cid = ? AND id IN (` +
			strings.TrimSuffix(strings.Repeat("?,", len(part)), ",") + `)`
		rows, err := tx.QueryContext(ctx, q, append([]any{cid}, part...)...)
		if err != nil {
			return nil, fmt.Errorf("add objects: load versions: %w", err)
		}
		for rows.Next() {
			var id string
			var v store.StoredVersion
			if err := rows.Scan(&id, &v.RID, &v.Version, &v.VersionRaw, &v.Spec, &v.Latest, &v.Body); err != nil {
				rows.Close()
				return nil, fmt.Errorf("add objects: load versions: %w", err)
			}
			out[id] = append(out[id], v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("add objects: load versions: %w", err)
		}
	}
	return out, nil
}

// insertChunk is the number of rows one prepared multi-row INSERT takes.
const insertChunk = 50

const (
	objectCols = `INSERT INTO objects (cid, date_added, id, type, spec_version, version, version_raw, latest, body, submitter, tlp, recipients) VALUES `
	changeCols = `INSERT INTO changes (cid, seq, op, object_id, version_raw, at) VALUES `
)

func repeatValues(tuple string, n int) string {
	return strings.TrimSuffix(strings.Repeat(tuple+",", n), ",")
}

// prepareInserts prepares, once per store, the INSERTs of insertChunk rows
// and of one row: preparing a statement of many rows costs as much as
// running it.
func (s *Store) prepareInserts(ctx context.Context) error {
	var err error
	prep := func(q string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = s.w.PrepareContext(ctx, q)
		return st
	}
	s.insObjN = prep(objectCols + repeatValues("(?,?,?,?,?,?,?,?,?,?,?,?)", insertChunk))
	s.insObj1 = prep(objectCols + "(?,?,?,?,?,?,?,?,?,?,?,?)")
	s.insChgN = prep(changeCols + repeatValues("(?,?,'add',?,?,?)", insertChunk))
	s.insChg1 = prep(changeCols + "(?,?,'add',?,?,?)")
	if err != nil {
		return fmt.Errorf("prepare inserts: %w", err)
	}
	return nil
}

// insertRows writes rows and their change-log records with multi-row INSERTs.
func (s *Store) insertRows(ctx context.Context, tx *sql.Tx, cid int64, rows []store.NewVersion) error {
	objN, obj1 := tx.StmtContext(ctx, s.insObjN), tx.StmtContext(ctx, s.insObj1)
	chgN, chg1 := tx.StmtContext(ctx, s.insChgN), tx.StmtContext(ctx, s.insChg1)
	oargs := make([]any, 0, insertChunk*12)
	cargs := make([]any, 0, insertChunk*5)
	for len(rows) > 0 {
		n := insertChunk
		objStmt, chgStmt := objN, chgN
		if len(rows) < insertChunk {
			n, objStmt, chgStmt = 1, obj1, chg1
		}
		oargs, cargs = oargs[:0], cargs[:0]
		for _, r := range rows[:n] {
			oargs = append(oargs, cid, r.Added, r.Obj.ID, r.Obj.Type, r.Spec, r.Version, r.VersionRaw, r.Latest, r.Obj.Raw,
				r.Obj.Submitter, r.Obj.TLP, jsonList(r.Obj.Recipients))
			cargs = append(cargs, cid, r.Seq, r.Obj.ID, r.VersionRaw, r.Added)
		}
		rows = rows[n:]
		if _, err := objStmt.ExecContext(ctx, oargs...); err != nil {
			return fmt.Errorf("add objects: insert: %w", err)
		}
		if _, err := chgStmt.ExecContext(ctx, cargs...); err != nil {
			return fmt.Errorf("add objects: log changes: %w", err)
		}
	}
	return nil
}

// collectionKey resolves a collection id to its compact key.
func (s *Store) collectionKey(ctx context.Context, db interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id string) (int64, error) {
	var cid int64
	err := db.QueryRowContext(ctx, `SELECT cid FROM collections WHERE id = ?`, id).Scan(&cid)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("collection %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("collection %s: %w", id, err)
	}
	return cid, nil
}

// filterSQL renders the id/type/spec_version/version filters of q as a
// WHERE fragment over alias o (TAXII 2.1 §3.4.1).
func filterSQL(q store.Query) (string, []any) {
	var b strings.Builder
	var args []any
	in := func(col string, vals []string) {
		b.WriteString(" AND " + col + " IN (")
		for i, v := range vals {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('?')
			args = append(args, v)
		}
		b.WriteByte(')')
	}
	if len(q.IDs) > 0 {
		in("o.id", q.IDs)
	}
	if len(q.Types) > 0 {
		in("o.type", q.Types)
	}
	vf := q.Versions
	if vf.IsZero() {
		vf.Last = true
	}
	if len(q.SpecVersions) == 0 && vf.Last && !vf.First && !vf.All && len(vf.Exact) == 0 {
		// The default read: the maintained latest flag answers it.
		b.WriteString(" AND o.latest = 1")
		return b.String(), args
	}
	// specCond restricts the versions compared by first/last to the same
	// spec versions the outer query admits.
	var specCond string
	var specArgs []any
	if len(q.SpecVersions) > 0 {
		in("o.spec_version", q.SpecVersions)
		specCond = " AND v.spec_version IN (" + strings.TrimSuffix(strings.Repeat("?,", len(q.SpecVersions)), ",") + ")"
		for _, v := range q.SpecVersions {
			specArgs = append(specArgs, v)
		}
	} else {
		// "the server MUST return only the latest specification version
		// that it can provide for each object" (TAXII 2.1 §3.4.1).
		b.WriteString(" AND o.spec_version = (SELECT MAX(s.spec_version) FROM objects s WHERE s.cid = o.cid AND s.id = o.id)")
		specCond = " AND v.spec_version = o.spec_version"
	}
	if vf.All {
		return b.String(), args
	}
	var ors []string
	if vf.Last {
		ors = append(ors, "o.version = (SELECT MAX(v.version) FROM objects v WHERE v.cid = o.cid AND v.id = o.id"+specCond+")")
		args = append(args, specArgs...)
	}
	if vf.First {
		ors = append(ors, "o.version = (SELECT MIN(v.version) FROM objects v WHERE v.cid = o.cid AND v.id = o.id"+specCond+")")
		args = append(args, specArgs...)
	}
	if len(vf.Exact) > 0 {
		ors = append(ors, "o.version IN ("+strings.TrimSuffix(strings.Repeat("?,", len(vf.Exact)), ",")+")")
		for _, t := range vf.Exact {
			args = append(args, stix.SortKey(t))
		}
	}
	b.WriteString(" AND (" + strings.Join(ors, " OR ") + ")")
	return b.String(), args
}

// QueryObjects implements store.Objects.
func (s *Store) QueryObjects(ctx context.Context, collectionID string, q store.Query) (*store.Page, error) {
	cid, err := s.collectionKey(ctx, s.r, collectionID)
	if err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit <= 0 || limit > maxPage {
		limit = maxPage
	}
	cols := "o.id, o.type, o.spec_version, o.version_raw, o.date_added, o.submitter, o.tlp, o.recipients"
	if q.WithBody {
		cols += ", o.body"
	}
	where, args := filterSQL(q)
	query := "SELECT " + cols + " FROM objects o WHERE o.cid = ? AND o.date_added > ?" + where + " ORDER BY o.date_added LIMIT ?"
	var after int64
	if !q.AddedAfter.IsZero() {
		after = micros(q.AddedAfter)
	}
	page := &store.Page{Entries: make([]store.Entry, 0, min(limit, 1024))}
	// Without a visibility filter one query of limit+1 rows answers. With
	// one, hidden rows are skipped and the scan goes on in chunks until
	// limit+1 visible rows are found or the collection ends.
	for {
		chunk := limit + 1
		if q.Visible != nil {
			chunk = max(chunk, 256)
		}
		all := append([]any{cid, after}, args...)
		all = append(all, chunk)
		n, done, err := s.scanPage(ctx, query, all, q, page, limit, &after)
		if err != nil {
			return nil, err
		}
		if done || n < chunk {
			return page, nil
		}
	}
}

// scanPage reads one chunk of rows into page. It returns the number of
// rows read and whether the page is complete (limit entries and a further
// visible one, which sets More).
func (s *Store) scanPage(ctx context.Context, query string, args []any, q store.Query, page *store.Page, limit int, after *int64) (int, bool, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return 0, false, fmt.Errorf("query objects: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
		var e store.Entry
		var added int64
		var recipients string
		dest := []any{&e.ID, &e.Type, &e.SpecVersion, &e.VersionRaw, &added, &e.Submitter, &e.TLP, &recipients}
		if q.WithBody {
			dest = append(dest, &e.Raw)
		}
		if err := rows.Scan(dest...); err != nil {
			return 0, false, fmt.Errorf("query objects: %w", err)
		}
		*after = added
		e.DateAdded = fromMicros(added)
		if recipients != "[]" && recipients != "" {
			if err := json.Unmarshal([]byte(recipients), &e.Recipients); err != nil {
				return 0, false, fmt.Errorf("query objects: recipients of %s: %w", e.ID, err)
			}
		}
		if q.Visible != nil && !q.Visible(&e) {
			continue
		}
		if len(page.Entries) == limit {
			page.More = true
			return n, true, nil
		}
		page.Entries = append(page.Entries, e)
	}
	if err := rows.Err(); err != nil {
		return 0, false, fmt.Errorf("query objects: %w", err)
	}
	return n, false, nil
}

// jsonList encodes a list of strings for a TEXT column ("[]" when empty).
func jsonList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l) // strings: cannot fail
	return string(b)
}

// DeleteObject implements store.Objects.
func (s *Store) DeleteObject(ctx context.Context, collectionID, objectID string, q store.Query) (int, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("delete object: %w", err)
	}
	defer tx.Rollback()
	var cid, lastSeq, lastAdded int64
	err = tx.QueryRowContext(ctx, `SELECT cid, last_seq, last_added FROM collections WHERE id = ?`, collectionID).Scan(&cid, &lastSeq, &lastAdded)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("collection %s: %w", collectionID, store.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("delete object: %w", err)
	}
	q.IDs = []string{objectID}
	if q.Versions.IsZero() {
		// Without a version filter the whole object goes: afterwards a GET
		// of it MUST answer 404 (TAXII 2.1 §5.7).
		q.Versions.All = true
	}
	where, args := filterSQL(q)
	if len(q.SpecVersions) == 0 && q.Versions.All {
		// All versions of every spec version.
		where = " AND o.id = ?"
		args = []any{objectID}
	}
	rows, err := tx.QueryContext(ctx, "SELECT o.rid, o.version_raw, o.id, o.type, o.submitter, o.tlp, o.recipients FROM objects o WHERE o.cid = ?"+where+" ORDER BY o.date_added", append([]any{cid}, args...)...)
	if err != nil {
		return 0, fmt.Errorf("delete object: %w", err)
	}
	type victim struct {
		rid int64
		ver string
	}
	var victims []victim
	for rows.Next() {
		var v victim
		var e store.Entry
		var recipients string
		if err := rows.Scan(&v.rid, &v.ver, &e.ID, &e.Type, &e.Submitter, &e.TLP, &recipients); err != nil {
			rows.Close()
			return 0, fmt.Errorf("delete object: %w", err)
		}
		if q.Visible != nil {
			e.VersionRaw = v.ver
			if err := json.Unmarshal([]byte(recipients), &e.Recipients); err != nil {
				rows.Close()
				return 0, fmt.Errorf("delete object: %w", err)
			}
			if !q.Visible(&e) {
				continue
			}
		}
		victims = append(victims, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("delete object: %w", err)
	}
	if len(victims) == 0 {
		return 0, fmt.Errorf("object %s: %w", objectID, store.ErrNotFound)
	}
	if err := checkDeleteOwner(ctx, tx, objectID, q.Owner); err != nil {
		return 0, err
	}
	at := max(micros(s.now()), lastAdded)
	for _, v := range victims {
		if _, err := tx.ExecContext(ctx, `DELETE FROM objects WHERE rid = ?`, v.rid); err != nil {
			return 0, fmt.Errorf("delete object: %w", err)
		}
		lastSeq++
		if _, err := tx.ExecContext(ctx, `INSERT INTO changes (cid, seq, op, object_id, version_raw, at) VALUES (?, ?, 'delete', ?, ?, ?)`,
			cid, lastSeq, objectID, v.ver, at); err != nil {
			return 0, fmt.Errorf("log delete: %w", err)
		}
	}
	// The remaining latest version (if any) becomes the default one.
	if _, err := tx.ExecContext(ctx, `UPDATE objects SET latest = (rid = (SELECT rid FROM objects WHERE cid = ?1 AND id = ?2
		ORDER BY spec_version DESC, version DESC LIMIT 1)) WHERE cid = ?1 AND id = ?2`, cid, objectID); err != nil {
		return 0, fmt.Errorf("delete object: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE collections SET last_seq = ? WHERE cid = ?`, lastSeq, cid); err != nil {
		return 0, fmt.Errorf("delete object: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("delete object: commit: %w", err)
	}
	return len(victims), nil
}

// Changes implements store.Objects.
func (s *Store) Changes(ctx context.Context, collectionID string, afterSeq int64, limit int) ([]store.Change, error) {
	cid, err := s.collectionKey(ctx, s.r, collectionID)
	if err != nil {
		return nil, err
	}
	if limit <= 0 || limit > maxPage {
		limit = maxPage
	}
	rows, err := s.r.QueryContext(ctx, `SELECT seq, op, object_id, version_raw, at FROM changes WHERE cid = ? AND seq > ? ORDER BY seq LIMIT ?`, cid, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("changes: %w", err)
	}
	defer rows.Close()
	var out []store.Change
	for rows.Next() {
		var c store.Change
		var at int64
		var op string
		if err := rows.Scan(&c.Seq, &op, &c.ObjectID, &c.VersionRaw, &at); err != nil {
			return nil, fmt.Errorf("changes: %w", err)
		}
		c.Op, c.At = store.ChangeOp(op), fromMicros(at)
		out = append(out, c)
	}
	return out, rows.Err()
}
