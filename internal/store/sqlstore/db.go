// Package sqlstore is Mitra's store written once for every SQL database.
// The backends (store/sqlite, store/postgres) give it a connection (DB)
// and a Dialect: the few places where the databases really differ (how
// lists are passed, bulk inserts, how a collection's writers are
// serialised, column types in migrations, driver error codes). Everything
// else (the TAXII filter SQL, the page scan, version planning, deletes,
// accounts, parties, audit, export and the migration runner) lives here.
//
// Queries use ? placeholders; a backend whose driver numbers them ($1)
// rewrites them (see Rebind).
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
)

// ErrNoRows is what Row.Scan returns when the query found nothing, whatever
// the driver.
var ErrNoRows = sql.ErrNoRows

// Querier runs statements: on the database (reads from its pool, single
// writes in their own transaction) or in a transaction.
type Querier interface {
	// Exec runs a statement and returns the number of rows it affected.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) Row
}

// Rows is the result of Query.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Row is the result of QueryRow; Scan returns ErrNoRows when empty.
type Row interface {
	Scan(dest ...any) error
}

// Tx is a write transaction.
type Tx interface {
	Querier
	// Send runs the statements queued in b, in order, in one round trip
	// where the driver can.
	Send(ctx context.Context, b *Batch) error
	Commit(ctx context.Context) error
	// Rollback ends the transaction unless it was committed.
	Rollback(ctx context.Context) error
}

// DB is a database as the shared store uses it.
type DB interface {
	Querier
	// Begin starts a write transaction. Writers that must be serialised
	// per collection take the collection's row with Dialect.ForUpdate.
	Begin(ctx context.Context) (Tx, error)
	Close() error
}

// Batch is a list of statements whose results are not needed, sent
// together (one round trip on PostgreSQL).
type Batch struct {
	Items []BatchItem
}

// BatchItem is one statement of a Batch.
type BatchItem struct {
	Query string
	Args  []any
}

// Queue appends a statement.
func (b *Batch) Queue(query string, args ...any) {
	b.Items = append(b.Items, BatchItem{query, args})
}

// Len is the number of queued statements.
func (b *Batch) Len() int { return len(b.Items) }

// Args collects the arguments of a query built piece by piece.
type Args []any

// Add appends v and returns its placeholder.
func (a *Args) Add(v any) string {
	*a = append(*a, v)
	return "?"
}

// Dialect is what differs between the databases.
type Dialect interface {
	// In renders a condition "col is one of vals" (vals is []string or
	// []int64, not empty), adding its arguments to a.
	In(a *Args, col string, vals any) string
	// ForUpdate locks the rows a SELECT reads until the transaction ends
	// (" FOR UPDATE", or "" where write transactions are serialised
	// anyway); ForShare likewise against deletes.
	ForUpdate() string
	ForShare() string
	// Binary makes an ORDER BY on text compare bytes, whatever the
	// database's locale.
	Binary() string
	// InsertVersions queues the inserts of object rows (and, when
	// withChanges, their "add" change-log records) on b.
	InsertVersions(b *Batch, cid int64, rows []store.NewVersion, withChanges bool)
	// InsertOwners queues the inserts of recorded owners (ids[i] owned by
	// owners[i]); with ignoreConflicts an id already owned keeps its owner.
	InsertOwners(b *Batch, ids, owners []string, ignoreConflicts bool)
	// ClaimOwnersSQL is one statement that inserts the owner claims (as
	// InsertOwners with ignoreConflicts) and returns (id, owner) of the
	// claims it inserted and, where it can, of the recorded owners of all
	// its snapshot sees (the owners of ids of all it does not return are
	// read afterwards); "" where claims and reads are separate statements.
	ClaimOwnersSQL(a *Args, ids, owners, all []string) string
	// InsertChanges queues the inserts of change-log records on b.
	InsertChanges(b *Batch, cid int64, changes []store.Change)
	// ListValue encodes a list column written by the audit log; ListDest
	// is a scan destination for it; HasElem renders "col contains v".
	ListValue(l []string) any
	ListDest(dst *[]string) any
	HasElem(a *Args, col, v string) string
	// WholeAdd says whether AddBatches should plan and write all batches
	// at once (each statement costs a round trip) rather than batch by
	// batch (statements are cheap, in process).
	WholeAdd() bool
	// AfterImportAudit queues what keeps the audit sequence going after
	// imported records.
	AfterImportAudit(b *Batch)
	// IsUnique and IsForeignKey classify constraint violations.
	IsUnique(err error) bool
	IsForeignKey(err error) bool
	// LockMigrations serialises concurrent migration runners in tx.
	LockMigrations(ctx context.Context, tx Tx) error
	// ColumnsSQL lists the column names of a table (one argument: the
	// table name).
	ColumnsSQL() string
	// TextMatch renders a full-text search of the user's text over objects
	// o (migration 0011): a join bringing in the index, the condition
	// (first in the WHERE clause; "" when the text has no searchable
	// word), a score expression without placeholders (lower is better)
	// and the index's row key (o.rid's value), by which the index hands
	// out matches in order.
	TextMatch(a *Args, text string) (join, cond, score, key string)
	// IndexedSQL renders, over objects o, " AND " a condition that the
	// search index's rows at o.rid are o's own, where the index is kept
	// apart from the objects' transaction (SQLite, migration 0016) and
	// can hold the rows of a deleted object under its reused rid; "" where
	// the index is written with the objects.
	IndexedSQL() string
}

// SearchSyncer is a DB whose search index follows the commits instead of
// being written in them: SyncSearch brings the index up to every object
// committed before it was called. The queries that read the index call
// it first, so that they never miss a committed object.
type SearchSyncer interface {
	SyncSearch(ctx context.Context) error
}

// Rebind numbers ? placeholders as $1, $2, … for drivers that want that.
func Rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

func noRows(err error) bool { return errors.Is(err, ErrNoRows) }
