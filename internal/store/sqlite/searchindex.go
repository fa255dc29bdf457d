package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	msqlite "modernc.org/sqlite"
)

// The search index (search_text, search_refs: migration 0011) lives in a
// database file of its own beside the store's, SearchFileName, written by
// an indexer that follows the committed objects (migration 0016 moved it
// there). SQLite has one write lock per file: the store's writer no longer
// computes or writes search rows, and the indexer writes them in large
// batches, on the other core, under the search file's lock.
//
// What the indexer follows: each collection's date_added, which is
// strictly increasing per object in commit order (store.PlanAdd) and never
// given twice (collections.last_added keeps the high-water mark through
// deletes). search_pos holds, per collection, the date_added up to which
// its objects are indexed, written in the transaction that writes their
// rows, so that every object is indexed exactly once across kill -9 and
// restarts. A collection deleted and another created with the same cid is
// told apart by its id.
//
// Deletes are not followed: a row of the index counts only for the object
// whose identity (rid, cid, date_added) search_docs records beside it.
// Queries check that identity (Dialect.IndexedSQL), so the rows of a
// deleted object never match, not even those at a rid SQLite gave again
// to a newer object (objects.rid is an INTEGER PRIMARY KEY: the greatest
// rid is reused once its row is deleted) before the indexer replaced
// them. The background indexer sweeps such leftover rows away slowly.
//
// Searches see every object committed before they started: SyncSearch,
// called first by every query that reads the index, compares the
// collections' high-water marks with the positions and, when the index is
// behind, catches up itself.

// SearchFileName is the search index's database file inside the data
// directory.
const SearchFileName = "mitra-search.db"

// searchSchema creates the search file's tables; user_version 1 marks it.
// FTS5 merges a level's segments once 8 of them are there (migration
// 0015's setting).
var searchSchema = []string{
	`CREATE VIRTUAL TABLE IF NOT EXISTS search_text USING fts5(
		name, description, labels, pattern,
		tokenize = 'unicode61 remove_diacritics 2')`,
	`INSERT INTO search_text (search_text, rank) VALUES ('automerge', 8)`,
	`CREATE TABLE IF NOT EXISTS search_refs (
		target TEXT NOT NULL,
		rid    INTEGER NOT NULL,
		PRIMARY KEY (target, rid)
	) WITHOUT ROWID`,
	`CREATE INDEX IF NOT EXISTS search_refs_rid ON search_refs (rid)`,
	// The object whose rows are at rid.
	`CREATE TABLE IF NOT EXISTS search_docs (
		rid   INTEGER PRIMARY KEY,
		cid   INTEGER NOT NULL,
		added INTEGER NOT NULL
	)`,
	// Per collection: its objects up to date_added = added are indexed.
	`CREATE TABLE IF NOT EXISTS search_pos (
		cid   INTEGER PRIMARY KEY,
		id    TEXT NOT NULL,
		added INTEGER NOT NULL
	)`,
	`PRAGMA user_version = 1`,
}

// ftsHashSize bounds the terms FTS5 keeps pending in memory (its
// 'hashsize', 1 MiB by default) before it writes them out as a segment.
// 20,000 small indicators fill it 11 times (TestSearchOneSegmentPerCatchUp),
// so an indexer transaction of indexBatch such objects wrote some 25 small
// segments, which FTS5 then merged level by level; with room for all of
// them it writes one at the commit, and flushing and merging cost about
// half as much (mirroring 1,000,000 objects: 4.4 s of CPU instead of 7.6,
// of which merges 2.6 instead of 5.0). It is the most memory the pending
// terms take; larger transactions are written out in more segments.
const ftsHashSize = 64 << 20

var setHashSize = `INSERT INTO search_text (search_text, rank) VALUES ('hashsize', ` + strconv.Itoa(ftsHashSize) + `)`

// The indexer's statements, run once per row in the indexer's
// transaction. FTS5 writes its pending terms out as a segment whenever a
// statement opens a statement journal (a savepoint: an INSERT ... SELECT
// or a multi-row VALUES does), but a one-row INSERT opens none, so the
// terms of a whole transaction stay pending and go out as one segment at
// the commit (or when they fill FTS5's hash).
const (
	indexText = `INSERT INTO search_text (rowid, name, description, labels, pattern) VALUES (?, ?, ?, ?, ?)`
	indexRefs = `INSERT OR IGNORE INTO search_refs (target, rid) VALUES (?, ?)`
	indexDocs = `INSERT OR REPLACE INTO search_docs (rid, cid, added) VALUES (?, ?, ?)`
	// objectsAfter reads a collection's objects in date_added order
	// through objects_added.
	objectsAfter = `SELECT rid, date_added, body FROM objects WHERE cid = ? AND date_added > ? ORDER BY date_added LIMIT ?`
	// ridsAfter is objectsAfter without the bodies, from objects_added
	// alone, for those the writer handed over (committed.go); objectBody
	// reads one that it did not.
	ridsAfter  = `SELECT rid, date_added FROM objects WHERE cid = ? AND date_added > ? ORDER BY date_added LIMIT ?`
	objectBody = `SELECT body FROM objects WHERE rid = ? AND cid = ? AND date_added = ?`
	// collectionMarks reads the collections' marks; the greatest
	// date_added is one probe of objects_added each.
	collectionMarks = `SELECT c.cid, c.id, c.last_added, COALESCE((SELECT MAX(o.date_added) FROM objects o WHERE o.cid = c.cid), 0) FROM collections c`
)

// Indexer tuning.
const (
	// indexBatch is the most objects one indexer transaction writes: FTS5
	// writes a segment per transaction and merges them later, so a mirror
	// committing pages of tens of thousands of objects is indexed with
	// fewer, larger segments.
	indexBatch = 50000
	// indexPoll is how often the background indexer looks for commits of
	// other processes (command-line tools share the file).
	indexPoll = time.Second
	// indexGather is how long the background indexer lets commits gather
	// after the writer's signal: an FTS5 segment per transaction, so
	// fewer, larger transactions merge less.
	indexGather = 50 * time.Millisecond
	// sweepBatch is how many indexed objects an idle round checks for
	// deletes, at most every sweepEvery.
	sweepBatch = 5000
	sweepEvery = 10 * time.Second
)

// searchPos is a collection's position in search_pos.
type searchPos struct {
	id    string
	added int64
}

// collectionMark is where a collection is in the store: the greatest
// date_added it handed out (last_added) and the greatest of its objects.
// They differ once its newest object is deleted, and while an import
// (sqlstore.ImportCollection, then ImportObjects) fills it: the record
// comes first, with the exported high-water mark, so the indexer follows
// the objects it finds rather than last_added.
type collectionMark struct {
	cid      int64
	id       string
	last     int64
	maxAdded int64
}

// indexer keeps the search file in step with the store's objects.
type indexer struct {
	w     *sql.DB // the search file, one connection, BEGIN IMMEDIATE
	r     *sql.DB // the store's readers
	batch int     // indexBatch; tests make it smaller
	held  *committed

	// mu serialises this process's catch-ups (the file's write lock
	// serialises processes); known is what the positions were at this
	// process's last look, for the fast path of SyncSearch.
	mu        sync.Mutex
	known     atomic.Pointer[map[int64]searchPos]
	sweep     int64     // the sweep's next rid; under mu
	lastSweep time.Time // under mu

	// paused stops the background indexer's rounds (tests of the
	// synchronous catch-up); set under mu, so that no round is under way
	// once it is set.
	paused atomic.Bool

	wake   chan struct{}
	cancel context.CancelFunc
	done   sync.WaitGroup
}

// openSearchFile opens (creating it when needed) the search file at path
// (absolute) for the indexer. The index is derived data whose positions commit with
// its rows, so synchronous NORMAL (consistent through crashes, possibly
// behind after a power loss, then caught up again) is enough.
func openSearchFile(ctx context.Context, path string) (*sql.DB, error) {
	u := url.URL{Scheme: "file", Path: path}
	p := pragmas{"busy_timeout": "20000", "synchronous": "NORMAL", "journal_mode": "WAL", "cache_size": "-131072", "temp_store": "2"}
	w, err := sql.Open("sqlite", u.String()+"?"+p.query()+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	var v int
	if err := w.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		w.Close()
		return nil, fmt.Errorf("search index %s: %w", path, err)
	}
	if v == 0 {
		if err := searchTx(ctx, w, searchSchema...); err != nil {
			w.Close()
			return nil, fmt.Errorf("search index %s: create: %w", path, err)
		}
	}
	// FTS5 keeps hashsize in the file: new files, and those made before
	// it was set, are given it here.
	var hs int64
	err = w.QueryRowContext(ctx, `SELECT v FROM search_text_config WHERE k = 'hashsize'`).Scan(&hs)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		w.Close()
		return nil, fmt.Errorf("search index %s: %w", path, err)
	}
	if hs != ftsHashSize {
		if err := searchTx(ctx, w, setHashSize); err != nil {
			w.Close()
			return nil, fmt.Errorf("search index %s: %w", path, err)
		}
	}
	return w, nil
}

// searchTx runs qs in one transaction of the search file w.
func searchTx(ctx context.Context, w *sql.DB, qs ...string) error {
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range qs {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// attachConnector opens reader connections on the store's file with the
// search file attached as schema "search": the search SQL names
// search_text and search_refs unqualified, which resolve there since the
// store's file no longer has them.
type attachConnector struct {
	drv *msqlite.Driver
	dsn string
}

func newAttachConnector(dsn, searchPath string) attachConnector {
	drv := &msqlite.Driver{}
	drv.RegisterConnectionHook(func(c msqlite.ExecQuerierContext, _ string) error {
		for _, q := range []string{
			`ATTACH DATABASE '` + searchPath + `' AS search`,
			`PRAGMA search.cache_size = -65536`,
			`PRAGMA search.mmap_size = 2147418112`,
		} {
			var args []driver.NamedValue
			if _, err := c.ExecContext(context.Background(), q, args); err != nil {
				return fmt.Errorf("attach the search index: %w", err)
			}
		}
		return nil
	})
	return attachConnector{drv: drv, dsn: dsn}
}

func (c attachConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }

func (c attachConnector) Driver() driver.Driver { return c.drv }

// startIndexer starts the background indexer over the search file w and
// the store's readers r.
func startIndexer(w, r *sql.DB) *indexer {
	ctx, cancel := context.WithCancel(context.Background())
	x := &indexer{w: w, r: r, batch: indexBatch, held: newCommitted(committedBytes), wake: make(chan struct{}, 1), cancel: cancel}
	x.done.Add(1)
	go x.run(ctx)
	return x
}

// notify tells the background indexer that the store committed.
func (x *indexer) notify() {
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

// stop ends the background indexer and closes the search file.
func (x *indexer) stop() error {
	x.cancel()
	x.done.Wait()
	return x.w.Close()
}

func (x *indexer) run(ctx context.Context) {
	defer x.done.Done()
	tick := time.NewTicker(indexPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-x.wake:
			select {
			case <-ctx.Done():
				return
			case <-time.After(indexGather):
			}
		case <-tick.C:
		}
		// Errors are retried at the next round; searches catch up
		// themselves and report theirs.
		n, err := x.catchUp(ctx, false)
		if err == nil && n == 0 {
			x.sweepOnce(ctx)
		} else if err == nil {
			x.notify() // more to do
		}
	}
}

// sync brings the index up to every object committed before it was
// called.
func (x *indexer) sync(ctx context.Context) error {
	marks, err := x.marks(ctx)
	if err != nil {
		return err
	}
	if covered(x.known.Load(), marks) {
		return nil
	}
	// Each catch-up reads the marks again, after these: it stops short
	// of them only when its batch is full.
	for {
		n, err := x.catchUp(ctx, true)
		if err != nil || n < x.batch {
			return err
		}
	}
}

// pause stops (or restarts) the background indexer's rounds.
func (x *indexer) pause(p bool) {
	x.mu.Lock()
	x.paused.Store(p)
	x.mu.Unlock()
}

// covered reports whether positions cover the collections' marks.
func covered(pos *map[int64]searchPos, marks []collectionMark) bool {
	for _, m := range marks {
		if m.maxAdded == 0 {
			continue
		}
		if pos == nil {
			return false
		}
		p, ok := (*pos)[m.cid]
		if !ok || p.id != m.id || p.added < m.maxAdded {
			return false
		}
	}
	return true
}

// marks reads the collections' high-water marks.
func (x *indexer) marks(ctx context.Context) ([]collectionMark, error) {
	rows, err := x.r.QueryContext(ctx, collectionMarks)
	if err != nil {
		return nil, fmt.Errorf("search index: collections: %w", err)
	}
	defer rows.Close()
	var out []collectionMark
	for rows.Next() {
		var m collectionMark
		if err := rows.Scan(&m.cid, &m.id, &m.last, &m.maxAdded); err != nil {
			return nil, fmt.Errorf("search index: collections: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search index: collections: %w", err)
	}
	return out, nil
}

// indexedDoc is one object's search rows.
type indexedDoc struct {
	rid, cid, added int64
	doc             searchDoc
	refs            []string
}

// catchUp indexes, in one transaction of the search file, up to
// x.batch objects committed since the positions, and returns how many
// it indexed. wait says whether to wait for another process's catch-up
// (a search) or to leave the work to it (the background).
func (x *indexer) catchUp(ctx context.Context, wait bool) (int, error) {
	if wait {
		x.mu.Lock()
	} else if !x.mu.TryLock() {
		return 0, nil
	}
	defer x.mu.Unlock()
	if !wait && x.paused.Load() {
		return 0, nil
	}
	tx, err := x.w.BeginTx(ctx, nil) // BEGIN IMMEDIATE: the search file's write lock
	if err != nil {
		return 0, fmt.Errorf("search index: %w", err)
	}
	defer tx.Rollback()
	pos, err := readPositions(ctx, tx)
	if err != nil {
		return 0, err
	}
	// The marks are read after the lock: what another process indexed
	// meanwhile is in pos.
	marks, err := x.marks(ctx)
	if err != nil {
		return 0, err
	}
	var maxDoc int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(rid), 0) FROM search_docs`).Scan(&maxDoc); err != nil {
		return 0, fmt.Errorf("search index: %w", err)
	}
	var docs []indexedDoc
	changed := map[int64]searchPos{}
	live := map[int64]bool{}
	for _, m := range marks {
		live[m.cid] = true
		p, ok := pos[m.cid]
		if !ok || p.id != m.id || p.added > m.last {
			// New, or another collection under a reused cid, or a
			// store file older than the index (restored): from the
			// start. Rows left by earlier objects are replaced.
			p = searchPos{id: m.id}
			changed[m.cid] = p
		}
		for p.added < m.maxAdded && len(docs) < x.batch {
			limit := x.batch - len(docs)
			got, n, last, err := x.read(ctx, m.cid, p.added, limit)
			if err != nil {
				return 0, err
			}
			docs = append(docs, got...)
			if n > 0 {
				p.added = last
				changed[m.cid] = p
			}
			if n < limit {
				break // nothing more committed
			}
		}
	}
	for cid := range pos {
		if !live[cid] {
			// Deleted: its rows no longer match anything; the sweep
			// removes them.
			if _, err := tx.ExecContext(ctx, `DELETE FROM search_pos WHERE cid = ?`, cid); err != nil {
				return 0, fmt.Errorf("search index: %w", err)
			}
			delete(pos, cid)
		}
	}
	if len(docs) == 0 && len(changed) == 0 {
		// Everything committed is indexed: bodies still held are of
		// objects deleted before the indexer came to them.
		x.held.clear()
	}
	if err := writeDocs(ctx, tx, docs, maxDoc); err != nil {
		return 0, err
	}
	for cid, p := range changed {
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO search_pos (cid, id, added) VALUES (?, ?, ?)`, cid, p.id, p.added); err != nil {
			return 0, fmt.Errorf("search index: position: %w", err)
		}
		pos[cid] = p
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("search index: commit: %w", err)
	}
	x.known.Store(&pos)
	return len(docs), nil
}

// read reads up to limit objects of collection cid added after from, and
// returns the rows of those that are JSON, how many it read and the last
// one's date_added. Objects are committed in date_added order within a
// collection (a snapshot sees all those before its last), so the next
// read goes on after the last.
func (x *indexer) read(ctx context.Context, cid, from int64, limit int) ([]indexedDoc, int, int64, error) {
	if !x.held.empty() {
		return x.readHeld(ctx, cid, from, limit)
	}
	rows, err := x.r.QueryContext(ctx, objectsAfter, cid, from, limit)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("search index: objects: %w", err)
	}
	defer rows.Close()
	var out []indexedDoc
	n := 0
	last := from
	var body []byte
	for rows.Next() {
		var rid int64
		if err := rows.Scan(&rid, &last, &body); err != nil {
			return nil, 0, 0, fmt.Errorf("search index: objects: %w", err)
		}
		n++
		if d, ok := docOf(rid, cid, last, body); ok {
			out = append(out, d)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, 0, fmt.Errorf("search index: objects: %w", err)
	}
	return out, n, last, nil
}

// readHeld is read for objects whose bodies the writer handed over: the
// rids and date_added from objects_added, the bodies from x.held, and
// those not held from the store, in the same snapshot.
func (x *indexer) readHeld(ctx context.Context, cid, from int64, limit int) ([]indexedDoc, int, int64, error) {
	tx, err := x.r.BeginTx(ctx, nil)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("search index: objects: %w", err)
	}
	defer tx.Rollback()
	type row struct{ rid, added int64 }
	var rs []row
	rows, err := tx.QueryContext(ctx, ridsAfter, cid, from, limit)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("search index: objects: %w", err)
	}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.rid, &r.added); err != nil {
			rows.Close()
			return nil, 0, 0, fmt.Errorf("search index: objects: %w", err)
		}
		rs = append(rs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, 0, fmt.Errorf("search index: objects: %w", err)
	}
	var st *sql.Stmt // objectBody, prepared at the first body not held
	defer func() {
		if st != nil {
			st.Close()
		}
	}()
	out := make([]indexedDoc, 0, len(rs))
	last := from
	for _, r := range rs {
		last = r.added
		body, ok := x.held.take(r.rid, cid, r.added)
		if !ok {
			if st == nil {
				if st, err = tx.PrepareContext(ctx, objectBody); err != nil {
					return nil, 0, 0, fmt.Errorf("search index: objects: %w", err)
				}
			}
			// Without ctx's cancellation, as writeDocs's statements.
			if err := st.QueryRowContext(context.WithoutCancel(ctx), r.rid, cid, r.added).Scan(&body); err != nil {
				return nil, 0, 0, fmt.Errorf("search index: objects: %w", err)
			}
		}
		if d, ok := docOf(r.rid, cid, r.added, body); ok {
			out = append(out, d)
		}
	}
	return out, len(rs), last, nil
}

// docOf is the search rows of the object at rid in collection cid added
// at added; false for a body that is not JSON, which is never indexed.
func docOf(rid, cid, added int64, body []byte) (indexedDoc, bool) {
	d := indexedDoc{rid: rid, cid: cid, added: added}
	var ok bool
	d.doc, d.refs, ok = searchFields(body)
	return d, ok
}

// writeDocs writes the rows of docs. Rows at rids up to maxDoc (the
// greatest indexed rid) may be those of a deleted object whose rid SQLite
// gave again: they go first.
func writeDocs(ctx context.Context, tx *sql.Tx, docs []indexedDoc, maxDoc int64) error {
	if len(docs) == 0 {
		return nil
	}
	// A rid read twice (from collections read at different moments: the
	// object read first deleted, its rid given to the one read later)
	// goes to the later.
	at := make(map[int64]int, len(docs))
	for i, d := range docs {
		at[d.rid] = i
	}
	var gone []int64
	for i, d := range docs {
		if at[d.rid] == i && d.rid <= maxDoc {
			gone = append(gone, d.rid)
		}
	}
	if err := deleteRows(ctx, tx, gone); err != nil {
		return err
	}
	var sts [3]*sql.Stmt
	for k, q := range []string{indexDocs, indexRefs, indexText} {
		st, err := tx.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("search index: insert: %w", err)
		}
		defer st.Close()
		sts[k] = st
	}
	// The rows' statements run without ctx's cancellation: with it, the
	// driver starts a goroutine per statement to watch ctx, three per
	// object. ctx is checked between objects instead, and its end rolls
	// the transaction back (database/sql watches the transaction's ctx).
	rctx := context.WithoutCancel(ctx)
	for i, d := range docs {
		if at[d.rid] != i {
			continue
		}
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if _, err := sts[0].ExecContext(rctx, d.rid, d.cid, d.added); err != nil {
			return fmt.Errorf("search index: insert: %w", err)
		}
		for _, t := range d.refs {
			if _, err := sts[1].ExecContext(rctx, t, d.rid); err != nil {
				return fmt.Errorf("search index: insert: %w", err)
			}
		}
		if _, err := sts[2].ExecContext(rctx, d.rid, d.doc.name, d.doc.description, d.doc.labels, d.doc.pattern); err != nil {
			return fmt.Errorf("search index: insert: %w", err)
		}
	}
	return nil
}

// deleteRows deletes the index rows at rids. One statement per rid:
// FTS5 finds a row by rowid only for an equality.
func deleteRows(ctx context.Context, tx *sql.Tx, rids []int64) error {
	if len(rids) == 0 {
		return nil
	}
	for _, q := range []string{`DELETE FROM search_text WHERE rowid = ?`, `DELETE FROM search_refs WHERE rid = ?`, `DELETE FROM search_docs WHERE rid = ?`} {
		st, err := tx.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("search index: delete: %w", err)
		}
		for _, rid := range rids {
			if _, err := st.ExecContext(ctx, rid); err != nil {
				st.Close()
				return fmt.Errorf("search index: delete: %w", err)
			}
		}
		st.Close()
	}
	return nil
}

// readPositions reads search_pos.
func readPositions(ctx context.Context, tx *sql.Tx) (map[int64]searchPos, error) {
	rows, err := tx.QueryContext(ctx, `SELECT cid, id, added FROM search_pos`)
	if err != nil {
		return nil, fmt.Errorf("search index: positions: %w", err)
	}
	defer rows.Close()
	pos := map[int64]searchPos{}
	for rows.Next() {
		var cid int64
		var p searchPos
		if err := rows.Scan(&cid, &p.id, &p.added); err != nil {
			return nil, fmt.Errorf("search index: positions: %w", err)
		}
		pos[cid] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search index: positions: %w", err)
	}
	return pos, nil
}

// sweepOnce removes the rows of up to sweepBatch indexed objects, from
// where the last sweep stopped, whose object is gone (deleted, or its rid
// given to a newer object not indexed yet). It runs when the indexer is
// idle.
func (x *indexer) sweepOnce(ctx context.Context) {
	if !x.mu.TryLock() {
		return
	}
	defer x.mu.Unlock()
	if x.paused.Load() || time.Since(x.lastSweep) < sweepEvery {
		return
	}
	x.lastSweep = time.Now()
	if err := x.sweepLocked(ctx); err != nil && !errors.Is(err, context.Canceled) {
		x.sweep = 0 // from the start next time
	}
}

func (x *indexer) sweepLocked(ctx context.Context) error {
	tx, err := x.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT rid, cid, added FROM search_docs WHERE rid >= ? ORDER BY rid LIMIT ?`, x.sweep, sweepBatch)
	if err != nil {
		return err
	}
	want := map[int64][2]int64{}
	var ids []int64
	for rows.Next() {
		var rid, cid, added int64
		if err := rows.Scan(&rid, &cid, &added); err != nil {
			rows.Close()
			return err
		}
		want[rid] = [2]int64{cid, added}
		ids = append(ids, rid)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(ids) == 0 {
		x.sweep = 0
		return nil
	}
	j, _ := json.Marshal(ids)
	live, err := x.r.QueryContext(ctx, `SELECT o.rid, o.cid, o.date_added FROM json_each(?) j CROSS JOIN objects o ON o.rid = j.value`, string(j))
	if err != nil {
		return err
	}
	stale := maps.Clone(want)
	for live.Next() {
		var rid, cid, added int64
		if err := live.Scan(&rid, &cid, &added); err != nil {
			live.Close()
			return err
		}
		if want[rid] == [2]int64{cid, added} {
			delete(stale, rid)
		}
	}
	live.Close()
	if err := live.Err(); err != nil {
		return err
	}
	gone := make([]int64, 0, len(stale))
	for rid := range stale {
		gone = append(gone, rid)
	}
	if err := deleteRows(ctx, tx, gone); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	x.sweep = ids[len(ids)-1] + 1
	if len(ids) < sweepBatch {
		x.sweep = 0
	}
	return nil
}
