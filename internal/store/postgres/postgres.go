// Package postgres is Mitra's PostgreSQL store, for deployments where several
// server processes share one database. It keeps the same model as the
// embedded SQLite store (same tables, same semantics, the same code in
// sqlstore) so that a store can be copied from one to the other (mitra
// migrate-store). This package connects and says how PostgreSQL differs
// (Dialect).
//
// # Concurrency and the pagination guarantee
//
// TAXII clients page through a collection with added_after = the last
// date_added they have seen. That is only correct when an object that a
// reader has not seen yet can never get a date_added at or below one the
// reader has already seen, whichever process wrote it. Every transaction that
// adds or deletes objects therefore starts by locking its collection's row:
//
//	SELECT cid, last_added, last_seq FROM collections WHERE id = $1 FOR UPDATE
//
// The row lock serialises the writers of one collection across all processes
// (writers of other collections do not wait). Under the lock the transaction
// reads the collection's high-water marks, numbers its rows after them
// (date_added = max(now, last_added+1), then +1 per row; seq likewise), writes
// the rows and the advanced marks, and commits. PostgreSQL makes a
// transaction visible to new snapshots before it releases its locks, and the
// next writer of the collection only gets the lock after that, reading the
// advanced marks (READ COMMITTED re-reads the locked row's newest version).
// Hence, within a collection, commit order equals date_added order: every
// snapshot that contains a row also contains every row with a smaller
// date_added, and rows not yet committed will get a date_added above every
// committed one. A reader that saw up to D and asks for date_added > D thus
// neither skips nor repeats an object, even while other processes write.
// The change-log seq gets the same guarantee the same way.
//
// Writes use READ COMMITTED explicitly: under REPEATABLE READ the lock
// would be taken against a snapshot older than the previous writer's commit.
//
// The shared code talks to pgx directly (not through database/sql): a
// Batch is one round trip, and rows scan without database/sql's copies.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options configures Open.
type Options struct {
	// Now is the clock; time.Now when nil. Tests inject their own.
	Now func() time.Time
}

// Store is the PostgreSQL implementation of store.Store.
type Store struct {
	*sqlstore.Store
}

var _ store.Store = (*Store)(nil)

// IsDSN reports whether dsn names a PostgreSQL database (postgres:// or
// postgresql:// URL).
func IsDSN(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Open connects to the database dsn names (a postgres:// URL; pgx's
// parameters such as pool_max_conns and runtime parameters such as
// search_path are accepted), applies pending migrations and makes sure the
// default organisation exists.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	d, err := connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	version, _, err := migrate(ctx, d, now)
	if err != nil {
		d.Close()
		return nil, err
	}
	s, err := sqlstore.New(ctx, d, Dialect{}, now, version)
	if err != nil {
		d.Close()
		return nil, err
	}
	return &Store{s}, nil
}

func connect(ctx context.Context, dsn string) (*db, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres %s@%s:%d/%s: %w", cfg.ConnConfig.User, cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	return &db{pool: pool}, nil
}

// Migrate applies pending migrations to the database dsn names and nothing
// else (mitra migrate). It returns the schema version and how many
// migrations it applied.
func Migrate(ctx context.Context, dsn string) (version, applied int, err error) {
	d, err := connect(ctx, dsn)
	if err != nil {
		return 0, 0, err
	}
	defer d.Close()
	return migrate(ctx, d, time.Now)
}

func migrate(ctx context.Context, d *db, now func() time.Time) (int, int, error) {
	ms, err := sqlstore.Migrations(migrations, "migrations")
	if err != nil {
		return 0, 0, err
	}
	return sqlstore.Migrate(ctx, d, Dialect{}, ms, now)
}

// db is the pool as sqlstore uses it: ? placeholders become $n.
type db struct {
	pool  *pgxpool.Pool
	texts sync.Map // query with ? -> query with $n
}

func (d *db) rebind(q string) string {
	if v, ok := d.texts.Load(q); ok {
		return v.(string)
	}
	r := sqlstore.Rebind(q)
	d.texts.Store(q, r)
	return r
}

func (d *db) Close() error {
	d.pool.Close()
	return nil
}

func (d *db) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	q, args = d.execArgs(q, args)
	tag, err := d.pool.Exec(ctx, q, args...)
	return tag.RowsAffected(), err
}

// execArgs prepares a statement for Exec. Without arguments (migrations,
// which hold several statements) it goes as written, by the simple
// protocol: only that runs several statements, and a ? in a comment stays.
func (d *db) execArgs(q string, args []any) (string, []any) {
	if len(args) == 0 {
		return q, []any{pgx.QueryExecModeSimpleProtocol}
	}
	return d.rebind(q), args
}

func (d *db) Query(ctx context.Context, q string, args ...any) (sqlstore.Rows, error) {
	return d.pool.Query(ctx, d.rebind(q), args...)
}

func (d *db) QueryRow(ctx context.Context, q string, args ...any) sqlstore.Row {
	return row{d.pool.QueryRow(ctx, d.rebind(q), args...)}
}

// Begin starts a READ COMMITTED transaction (see the package comment).
func (d *db) Begin(ctx context.Context) (sqlstore.Tx, error) {
	t, err := d.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return nil, err
	}
	return &tx{t: t, db: d}, nil
}

// row maps pgx's no-rows error to sqlstore's.
type row struct{ pgx.Row }

func (r row) Scan(dest ...any) error {
	err := r.Row.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return sqlstore.ErrNoRows
	}
	return err
}

type tx struct {
	t  pgx.Tx
	db *db
}

func (t *tx) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	q, args = t.db.execArgs(q, args)
	tag, err := t.t.Exec(ctx, q, args...)
	return tag.RowsAffected(), err
}

func (t *tx) Query(ctx context.Context, q string, args ...any) (sqlstore.Rows, error) {
	return t.t.Query(ctx, t.db.rebind(q), args...)
}

func (t *tx) QueryRow(ctx context.Context, q string, args ...any) sqlstore.Row {
	return row{t.t.QueryRow(ctx, t.db.rebind(q), args...)}
}

// Send implements sqlstore.Tx: the whole batch is one round trip.
func (t *tx) Send(ctx context.Context, b *sqlstore.Batch) error {
	if b.Len() == 0 {
		return nil
	}
	pb := &pgx.Batch{}
	for _, it := range b.Items {
		pb.Queue(t.db.rebind(it.Query), it.Args...)
	}
	return t.t.SendBatch(ctx, pb).Close()
}

func (t *tx) Commit(ctx context.Context) error { return t.t.Commit(ctx) }

func (t *tx) Rollback(ctx context.Context) error {
	if err := t.t.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		return err
	}
	return nil
}
