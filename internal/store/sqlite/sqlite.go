// Package sqlite is Mitra's embedded store: one SQLite database file in the
// data directory, in WAL mode, shared safely by the server and by command-line
// tools running at the same time. The store's logic is sqlstore's; this
// package opens the file and says how SQLite differs (Dialect).
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
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlstore"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver (pure Go, no cgo).
)

//go:embed migrations/*.sql
var migrations embed.FS

// FileName is the database file inside the data directory.
const FileName = "mitra.db"

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
	*sqlstore.Store
	db *db
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
	// mmap_size is SQLite's compiled maximum (2 GB, SQLITE_MAX_MMAP_SIZE):
	// past it pages are read with pread, a system call each; a store of a
	// million objects is past 1 GB.
	common := pragmas{"busy_timeout": "20000", "foreign_keys": "1", "synchronous": sync, "journal_mode": "WAL",
		"cache_size": "-65536", "mmap_size": "2147418112", "temp_store": "2"}
	u := url.URL{Scheme: "file", Path: path}
	// The writer leaves checkpoints to the checkpointer (checkpoint.go).
	// Its page cache is larger than the readers' (256 MB): the index pages
	// that inserts touch at random (object ids, owners, references) stay
	// in it as the store grows, instead of being read again and again.
	w, err := sql.Open("sqlite", u.String()+"?"+common.with("wal_autocheckpoint", "0", "cache_size", "-262144").query()+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	d := &db{w: w, stmts: map[string]*sql.Stmt{}}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	ms, err := sqlstore.Migrations(migrations, "migrations")
	if err == nil {
		_, _, err = sqlstore.Migrate(ctx, d, Dialect{}, ms, now)
	}
	if err == nil {
		err = d.prepare(ctx, prepared...)
	}
	if err != nil {
		w.Close()
		return nil, err
	}
	// The search index's file (searchindex.go), created before the
	// readers attach it.
	searchPath := filepath.Join(filepath.Dir(path), SearchFileName)
	sw, err := openSearchFile(ctx, searchPath)
	if err != nil {
		w.Close()
		return nil, err
	}
	r := sql.OpenDB(newAttachConnector(u.String()+"?"+common.with("query_only", "1").query(), strings.ReplaceAll(searchPath, "'", "''")))
	r.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)*2))
	d.r = r
	d.ix = startIndexer(sw, r)
	if d.cp, err = startCheckpointer(u.String() + "?" + common.with("busy_timeout", "2000").query()); err != nil {
		d.Close()
		return nil, err
	}
	s, err := sqlstore.New(ctx, d, Dialect{}, now, len(ms))
	if err != nil {
		d.Close()
		return nil, err
	}
	return &Store{Store: s, db: d}, nil
}

// db runs writes on the one writer connection and reads on the read-only
// pool.
type db struct {
	w, r *sql.DB
	cp   *checkpointer
	ix   *indexer // keeps the search file

	// The bulk inserts, prepared once on the writer: preparing a
	// multi-row INSERT costs as much as running it. Read-only after Open.
	stmts map[string]*sql.Stmt
}

func (d *db) Close() error {
	var err error
	if d.cp != nil {
		err = d.cp.stop()
	}
	if d.ix != nil {
		err = errors.Join(err, d.ix.stop())
	}
	if d.r != nil {
		err = errors.Join(err, d.r.Close())
	}
	// The writer closes last: closing the last connection checkpoints
	// what is left.
	return errors.Join(err, d.w.Close())
}

// SyncSearch implements sqlstore.SearchSyncer.
func (d *db) SyncSearch(ctx context.Context) error { return d.ix.sync(ctx) }

func (d *db) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	return exec(d.w.ExecContext(ctx, q, args...))
}

func exec(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (d *db) Query(ctx context.Context, q string, args ...any) (sqlstore.Rows, error) {
	return query(d.r.QueryContext(ctx, q, args...))
}

func query(rows *sql.Rows, err error) (sqlstore.Rows, error) {
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

func (d *db) QueryRow(ctx context.Context, q string, args ...any) sqlstore.Row {
	return d.r.QueryRowContext(ctx, q, args...)
}

func (d *db) Begin(ctx context.Context) (sqlstore.Tx, error) {
	t, err := d.w.BeginTx(ctx, nil) // BEGIN IMMEDIATE (_txlock)
	if err != nil {
		return nil, err
	}
	return &tx{t: t, db: d}, nil
}

// prepare prepares, once per store and before any transaction holds the
// one writer connection, the fixed statements of batches.
func (d *db) prepare(ctx context.Context, qs ...string) error {
	for _, q := range qs {
		st, err := d.w.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		d.stmts[q] = st
	}
	return nil
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { r.Rows.Close() }

type tx struct {
	t  *sql.Tx
	db *db

	// The objects the transaction inserted, by rid, for the search
	// indexer once it commits (committed.go).
	rids   []int64
	bodies []committedBody
}

func (t *tx) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	return exec(t.t.ExecContext(ctx, q, args...))
}

func (t *tx) Query(ctx context.Context, q string, args ...any) (sqlstore.Rows, error) {
	return query(t.t.QueryContext(ctx, q, args...))
}

func (t *tx) QueryRow(ctx context.Context, q string, args ...any) sqlstore.Row {
	return t.t.QueryRowContext(ctx, q, args...)
}

// Send runs the batch's statements one after the other: in process, a
// statement costs microseconds.
func (t *tx) Send(ctx context.Context, b *sqlstore.Batch) error {
	for _, it := range b.Items {
		var res sql.Result
		var err error
		if st := t.db.stmts[it.Query]; st != nil {
			// The bulk inserts are short and many: they run without
			// ctx's cancellation, for which the driver would start a
			// goroutine per statement; ctx is checked before each, and
			// its end rolls the transaction back.
			if err := ctx.Err(); err != nil {
				return err
			}
			res, err = t.t.StmtContext(ctx, st).ExecContext(context.WithoutCancel(ctx), it.Args...)
		} else {
			res, err = t.t.ExecContext(ctx, it.Query, it.Args...)
		}
		if err != nil {
			return err
		}
		if t.db.ix != nil && (it.Query == insertObjectsN || it.Query == insertObjectOne) {
			t.keepBodies(res, it.Args)
		}
	}
	return nil
}

// keepBodies records the bodies of an insert of objects rows (args as
// InsertVersions queues them) with their rids. SQLite gives the rows of
// one INSERT without rids one after the other the rid after the greatest,
// so they end at the last insert rowid; were it otherwise, the indexer
// would find no body held for the rids it reads and read them from the
// store.
func (t *tx) keepBodies(res sql.Result, args []any) {
	n := len(args) / objectWidth
	last, err := res.LastInsertId()
	if err != nil || n == 0 {
		return
	}
	for i := range n {
		a := args[i*objectWidth:]
		cid, ok1 := a[0].(int64)
		added, ok2 := a[1].(int64)
		body, ok3 := a[8].([]byte)
		if !ok1 || !ok2 || !ok3 {
			return
		}
		t.rids = append(t.rids, last-int64(n-1-i))
		t.bodies = append(t.bodies, committedBody{cid: cid, added: added, body: body})
	}
}

// Commit commits and tells the search indexer.
func (t *tx) Commit(context.Context) error {
	if err := t.t.Commit(); err != nil {
		return err
	}
	if t.db.ix != nil {
		if len(t.rids) > 0 {
			t.db.ix.held.add(t.rids, t.bodies)
		}
		t.db.ix.notify()
	}
	return nil
}

func (t *tx) Rollback(context.Context) error {
	if err := t.t.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return err
	}
	return nil
}

// pragmas are a connection's PRAGMA settings by name. modernc runs a DSN's
// _pragma values in the order of their text, not as given, so a name
// given twice ends with whichever value sorts last (wal_autocheckpoint(0)
// before wal_autocheckpoint(16384)): each name is set once here.
type pragmas map[string]string

// with returns a copy of p with the name and value pairs of kv set.
func (p pragmas) with(kv ...string) pragmas {
	q := maps.Clone(p)
	for i := 0; i+1 < len(kv); i += 2 {
		q[kv[i]] = kv[i+1]
	}
	return q
}

// query returns p as DSN query parameters.
func (p pragmas) query() string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(p)) {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString("_pragma=" + url.QueryEscape(k+"("+p[k]+")"))
	}
	return b.String()
}
