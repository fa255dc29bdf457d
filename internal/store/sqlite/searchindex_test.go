package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/storetest"
)

// searchWorld is a store whose background indexer is paused, so that
// only the searches' own catch-ups index, and a collection in it.
type searchWorld struct {
	t   *testing.T
	dir string
	st  *Store
	col string
	raw *sql.DB // the search file, behind the store's back
}

func newSearchWorld(t *testing.T) *searchWorld {
	w := &searchWorld{t: t, dir: t.TempDir()}
	w.open()
	c := &store.Collection{Title: "feed"}
	if err := w.st.CreateCollection(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	w.col = c.ID
	raw, err := sql.Open("sqlite", filepath.Join(w.dir, SearchFileName)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	w.raw = raw
	return w
}

// open opens the store with its background indexer paused.
func (w *searchWorld) open() {
	st, err := Open(w.t.Context(), w.dir, Options{})
	if err != nil {
		w.t.Fatal(err)
	}
	st.db.ix.pause(true)
	w.t.Cleanup(func() { st.Close() })
	w.st = st
}

func (w *searchWorld) reader() *store.Reader {
	return &store.Reader{Collections: []store.ReadableCollection{{ID: w.col, DefaultTLP: 1}}}
}

// add stores an object named name (referring to refs) and returns its id.
func (w *searchWorld) add(st *Store, name string, refs ...string) string {
	w.t.Helper()
	id := "report--" + uuid.NewString()
	list, _ := json.Marshal(append([]string{"identity--" + uuid.NewString()}, refs...))
	raw := fmt.Appendf(nil, `{"type":"report","spec_version":"2.1","id":%q,"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":%q,"published":"2026-01-01T00:00:00Z","object_refs":%s}`,
		id, name, list)
	res, err := st.AddObjects(w.t.Context(), w.col, []store.Object{storetest.Obj(w.t, raw)}, nil)
	if err != nil || res[0].Err != nil {
		w.t.Fatalf("add: %v %+v", err, res)
	}
	return id
}

// search returns the ids a text search finds.
func (w *searchWorld) search(text string) []string {
	w.t.Helper()
	got, err := w.st.SearchText(w.t.Context(), w.reader(), store.TextQuery{Text: text, Limit: 100})
	if err != nil {
		w.t.Fatal(err)
	}
	var ids []string
	for _, l := range got {
		ids = append(ids, l.ID)
	}
	slices.Sort(ids)
	return ids
}

// referencing returns the ids of the objects referring to id.
func (w *searchWorld) referencing(id string) []string {
	w.t.Helper()
	got, err := w.st.Referencing(w.t.Context(), w.reader(), []string{id}, nil, 100)
	if err != nil {
		w.t.Fatal(err)
	}
	var ids []string
	for _, l := range got {
		ids = append(ids, l.ID)
	}
	return ids
}

// count counts rows of the search file.
func (w *searchWorld) count(q string) int {
	w.t.Helper()
	var n int
	if err := w.raw.QueryRow(q).Scan(&n); err != nil {
		w.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// A search finds what was committed before it, the background indexer
// doing nothing: the search catches the index up itself. Another handle
// on the same files (a command-line tool) sees the writes of the first.
func TestSearchReadsItsWrites(t *testing.T) {
	w := newSearchWorld(t)
	target := "indicator--" + uuid.NewString()
	a := w.add(w.st, "alpha report", target)
	if n := w.count(`SELECT count(*) FROM search_docs`); n != 0 {
		t.Fatalf("%d rows indexed by a paused indexer", n)
	}
	if got := w.search("alpha"); !slices.Equal(got, []string{a}) {
		t.Errorf("search right after the commit: %v, want %v", got, a)
	}
	b := w.add(w.st, "bravo report", target)
	if got := w.referencing(target); len(got) != 2 || !slices.Contains(got, b) {
		t.Errorf("objects referring to the target right after the commit: %v, want %v and %v", got, a, b)
	}
	if got := w.search("bra*"); !slices.Equal(got, []string{b}) {
		t.Errorf("prefix search: %v, want %v", got, b)
	}

	other, err := Open(t.Context(), w.dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.db.ix.pause(true)
	c := w.add(other, "charlie report")
	if got := w.search("charlie"); !slices.Equal(got, []string{c}) {
		t.Errorf("search after another handle's commit: %v, want %v", got, c)
	}
	if n := w.count(`SELECT count(*) FROM search_text`); n != 3 {
		t.Errorf("%d rows of text for 3 objects", n)
	}
}

// The background indexer indexes after commits, without a search.
func TestSearchBackgroundIndexer(t *testing.T) {
	w := newSearchWorld(t)
	w.st.db.ix.pause(false)
	w.add(w.st, "delta report")
	deadline := time.Now().Add(5 * time.Second)
	for w.count(`SELECT count(*) FROM search_text WHERE search_text MATCH 'delta'`) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the background indexer did not index the object")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Deleted objects vanish from results at once, also when SQLite gives
// the deleted object's rid to the next object before the index follows:
// the rows left at that rid are not the new object's.
func TestSearchDeletesVanish(t *testing.T) {
	w := newSearchWorld(t)
	ctx := t.Context()
	target := "indicator--" + uuid.NewString()
	keep := w.add(w.st, "echo kept", target)
	gone := w.add(w.st, "echo deleted", target)
	if got := w.search("echo"); len(got) != 2 {
		t.Fatalf("search before the delete: %v", got)
	}
	var rid int64
	if err := w.st.db.r.QueryRow(`SELECT rid FROM objects WHERE id = ?`, gone).Scan(&rid); err != nil {
		t.Fatal(err)
	}
	if _, err := w.st.DeleteObject(ctx, w.col, gone, store.Query{}); err != nil {
		t.Fatal(err)
	}
	if got := w.search("echo"); !slices.Equal(got, []string{keep}) {
		t.Errorf("search after the delete: %v, want %v", got, keep)
	}
	if got := w.referencing(target); !slices.Equal(got, []string{keep}) {
		t.Errorf("referring objects after the delete: %v, want %v", got, keep)
	}

	// The next object takes the deleted one's rid; the index still
	// holds the deleted object's rows there.
	next := w.add(w.st, "foxtrot new")
	var nextRID int64
	if err := w.st.db.r.QueryRow(`SELECT rid FROM objects WHERE id = ?`, next).Scan(&nextRID); err != nil || nextRID != rid {
		t.Fatalf("rid of the next object: %d, %v; the deleted one's was %d", nextRID, err, rid)
	}
	q := `SELECT count(*) FROM objects o JOIN search_text ON search_text.rowid = o.rid WHERE search_text MATCH 'deleted'`
	var n int
	if err := w.st.db.r.QueryRow(q).Scan(&n); err != nil || n != 1 {
		t.Fatalf("stale rows at the reused rid: %d, %v (the test needs them)", n, err)
	}
	if err := w.st.db.r.QueryRow(q + " AND " + indexedSQL).Scan(&n); err != nil || n != 0 {
		t.Errorf("stale rows matching the object now at their rid: %d, %v", n, err)
	}
	if got := w.search("deleted"); len(got) != 0 {
		t.Errorf("search for the deleted object's name: %v", got)
	}
	if got := w.search("foxtrot"); !slices.Equal(got, []string{next}) {
		t.Errorf("search for the object at the reused rid: %v, want %v", got, next)
	}
	if got := w.referencing(target); !slices.Equal(got, []string{keep}) {
		t.Errorf("referring objects after the rid's reuse: %v, want %v", got, keep)
	}
	if n := w.count(`SELECT count(*) FROM search_text`); n != 2 {
		t.Errorf("%d rows of text for 2 objects", n)
	}

	// A deleted collection's objects vanish; the sweep removes the rows
	// of the deleted objects.
	if err := w.st.DeleteCollection(ctx, w.col); err != nil {
		t.Fatal(err)
	}
	if got := w.search("echo"); len(got) != 0 {
		t.Errorf("search after the collection's delete: %v", got)
	}
	if _, err := w.st.db.ix.catchUp(ctx, true); err != nil { // a background round
		t.Fatal(err)
	}
	w.st.db.ix.paused.Store(false)
	w.st.db.ix.lastSweep = time.Time{}
	w.st.db.ix.sweepOnce(ctx)
	for _, table := range []string{"search_text", "search_refs", "search_docs", "search_pos"} {
		if n := w.count(`SELECT count(*) FROM ` + table); n != 0 {
			t.Errorf("%d rows of %s after the collection's delete and a sweep", n, table)
		}
	}
}

// The index catches up after a crash between the objects' commit and the
// index's (the store closed with the objects unindexed), indexes each
// object once, and indexes again from the objects, without duplicates,
// when its position is lost or ahead of the store (an older store file
// restored beside it).
func TestSearchCatchesUpOnce(t *testing.T) {
	w := newSearchWorld(t)
	const n = 30
	var ids []string
	for i := range n {
		ids = append(ids, w.add(w.st, fmt.Sprintf("golf number%d", i), "indicator--"+uuid.NewString()))
	}
	slices.Sort(ids)
	w.st.Close()
	if got := w.count(`SELECT count(*) FROM search_docs`); got != 0 {
		t.Fatalf("%d rows indexed before the crash", got)
	}
	w.open()
	check := func(when string) {
		t.Helper()
		if got := w.search("golf"); !slices.Equal(got, ids) {
			t.Errorf("%s: search found %d objects, want %d", when, len(got), n)
		}
		for _, table := range []string{"search_text", "search_docs"} {
			if got := w.count(`SELECT count(*) FROM ` + table); got != n {
				t.Errorf("%s: %d rows of %s for %d objects", when, got, table, n)
			}
		}
		if got := w.count(`SELECT count(*) FROM search_refs`); got != 2*n {
			t.Errorf("%s: %d rows of search_refs for %d references", when, got, 2*n)
		}
		var added, mark int64
		if err := w.raw.QueryRow(`SELECT added FROM search_pos`).Scan(&added); err != nil {
			t.Fatal(err)
		}
		if err := w.st.db.r.QueryRow(`SELECT last_added FROM collections`).Scan(&mark); err != nil || added != mark {
			t.Errorf("%s: position %d, collection's mark %d (%v)", when, added, mark, err)
		}
	}
	check("after the reopening")
	for _, q := range []string{`UPDATE search_pos SET added = 0`, `UPDATE search_pos SET added = added + 1000000`, `DELETE FROM search_pos`} {
		if _, err := w.raw.Exec(q); err != nil {
			t.Fatal(err)
		}
		w.st.db.ix.known.Store(nil) // what the store knew of the positions
		check(q)
	}
}

// A catch-up larger than a transaction's batch goes on until it has
// every object (a search waits for all of it).
func TestSearchCatchUpBatches(t *testing.T) {
	w := newSearchWorld(t)
	w.st.db.ix.batch = 7
	objs := make([]store.Object, 0, 3*7+2)
	for i := range cap(objs) {
		id := "indicator--" + uuid.NewString()
		objs = append(objs, storetest.Obj(t, fmt.Appendf(nil, `{"type":"indicator","spec_version":"2.1","id":%q,"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"hotel %d","pattern":"[a:b = 'c']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`, id, i)))
	}
	if _, err := w.st.AddObjects(context.Background(), w.col, objs, nil); err != nil {
		t.Fatal(err)
	}
	got, err := w.st.SearchText(t.Context(), w.reader(), store.TextQuery{Text: "hotel", Limit: 10})
	if err != nil || len(got) != 10 {
		t.Fatalf("search: %d, %v", len(got), err)
	}
	if n := w.count(`SELECT count(*) FROM search_docs`); n != len(objs) {
		t.Errorf("%d objects indexed of %d", n, len(objs))
	}
	if n := w.count(`SELECT count(*) FROM search_text WHERE search_text MATCH '"hotel" "22"'`); n != 1 {
		t.Errorf("the last object indexed %d times", n)
	}
}

// An import writes the collection's record, with its exported high-water
// mark, before its objects: a search in between must not take the
// collection for indexed up to that mark.
func TestSearchFollowsAnImport(t *testing.T) {
	w := newSearchWorld(t)
	ctx := t.Context()
	rec := store.CollectionRecord{Collection: store.Collection{ID: uuid.NewString(), Title: "imported", Created: time.Now()},
		LastAdded: time.Now().Add(time.Hour), LastSeq: 1}
	if err := w.st.ImportCollection(ctx, rec); err != nil {
		t.Fatal(err)
	}
	w.col = rec.ID
	if got := w.search("india"); len(got) != 0 {
		t.Fatalf("search of an empty import: %v", got)
	}
	id := "indicator--" + uuid.NewString()
	raw := fmt.Appendf(nil, `{"type":"indicator","spec_version":"2.1","id":%q,"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"india","pattern":"[a:b = 'c']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`, id)
	o := storetest.Obj(t, raw)
	err := w.st.ImportObjects(ctx, rec.ID, []store.ObjectRecord{{Entry: store.Entry{ID: id, Type: o.Type, SpecVersion: "2.1", VersionRaw: o.VersionRaw,
		DateAdded: time.Now(), TLP: 1, Raw: raw}, Version: stix.SortKey(o.Version), Latest: true}})
	if err != nil {
		t.Fatal(err)
	}
	if got := w.search("india"); !slices.Equal(got, []string{id}) {
		t.Errorf("search after the import's objects: %v, want %v", got, id)
	}
}

// A data directory whose name has characters of SQL strings and URIs
// ('#?%) holds both files, and searches find what is stored.
func TestSearchFileOddDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "it's #1?%20")
	st, err := Open(t.Context(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	w := &searchWorld{t: t, dir: dir, st: st}
	c := &store.Collection{Title: "feed"}
	if err := st.CreateCollection(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	w.col = c.ID
	id := w.add(st, "juliett")
	if got := w.search("juliett"); !slices.Equal(got, []string{id}) {
		t.Errorf("search: %v, want %v", got, id)
	}
	if _, err := os.Stat(filepath.Join(dir, SearchFileName)); err != nil {
		t.Errorf("search file: %v", err)
	}
}

// The writer hands the bodies it commits to the indexer (committed.go),
// under the rids SQLite gave them; the indexer uses a body only for the
// object it was committed as, reads from the store what it was not handed,
// and forgets what it took.
func TestSearchHeldBodies(t *testing.T) {
	w := newSearchWorld(t)
	ctx := t.Context()
	held := w.st.db.ix.held

	// A batch of 57: one insert of 50 rows and 7 of one row.
	var objs []store.Object
	for i := range 57 {
		raw := fmt.Appendf(nil, `{"type":"indicator","spec_version":"2.1","id":"indicator--%s","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"alpha %d","pattern":"[x:y = 'z']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`,
			uuid.NewString(), i)
		objs = append(objs, storetest.Obj(t, raw))
	}
	if res, err := w.st.AddObjects(ctx, w.col, objs, nil); err != nil || res[0].Err != nil {
		t.Fatalf("add: %v %+v", err, res)
	}
	rows, err := w.st.db.r.QueryContext(ctx, `SELECT rid, cid, date_added, body FROM objects`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var rid, cid, added int64
		var body []byte
		if err := rows.Scan(&rid, &cid, &added, &body); err != nil {
			t.Fatal(err)
		}
		n++
		if b, ok := held.bodies[rid]; !ok || b.cid != cid || b.added != added || string(b.body) != string(body) {
			t.Errorf("rid %d: held %v (%d, %d, %.40q), stored (%d, %d, %.40q)", rid, ok, b.cid, b.added, b.body, cid, added, body)
		}
	}
	rows.Close()
	if n != 57 || len(held.bodies) != 57 {
		t.Fatalf("%d objects stored, %d bodies held", n, len(held.bodies))
	}
	if got := w.search("alpha"); len(got) != 57 {
		t.Fatalf("search: %d of 57", len(got))
	}
	if len(held.bodies) != 0 || held.size != 0 {
		t.Errorf("after indexing: %d bodies (%d bytes) still held", len(held.bodies), held.size)
	}

	// A body held for a rid whose row is another object's (added at
	// another date_added) is not taken for it.
	id := w.add(w.st, "bravo")
	var rid, cid, added int64
	if err := w.st.db.r.QueryRow(`SELECT rid, cid, date_added FROM objects WHERE id = ?`, id).Scan(&rid, &cid, &added); err != nil {
		t.Fatal(err)
	}
	stale := []byte(`{"type":"report","name":"charlie"}`)
	held.add([]int64{rid}, []committedBody{{cid: cid, added: added - 1, body: stale}})
	if got := w.search("charlie"); len(got) != 0 {
		t.Errorf("a body held for another object was indexed: %v", got)
	}
	if got := w.search("bravo"); !slices.Equal(got, []string{id}) {
		t.Errorf("search bravo: %v, want %v", got, id)
	}

	// Beyond the bound, bodies are read from the store.
	held.limit = held.size + len(stale)
	for i := range 3 {
		w.add(w.st, fmt.Sprintf("delta %d", i))
	}
	if len(held.bodies) != 0 {
		t.Errorf("%d bodies held beyond the bound", len(held.bodies))
	}
	if got := w.search("delta"); len(got) != 3 {
		t.Errorf("search delta: %v", got)
	}
}

// One indexer transaction writes its terms out as one FTS5 segment: they
// fit in FTS5's pending hash (ftsHashSize), so there is nothing to merge
// behind a mirror's large commits. With FTS5's default hash of 1 MiB the
// 20,000 objects below are written out as several segments.
func TestSearchOneSegmentPerCatchUp(t *testing.T) {
	w := newSearchWorld(t)
	objs := make([]store.Object, 0, 20000)
	for i := range cap(objs) {
		id := "indicator--" + uuid.NewString()
		objs = append(objs, storetest.Obj(t, fmt.Appendf(nil, `{"type":"indicator","spec_version":"2.1","id":%q,"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"host %d beacon","description":"seen beaconing to %s from sensor %d","labels":["malicious-activity","batch-%d"],"pattern":"[domain-name:value = 'h%d.example.net']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`,
			id, i, uuid.NewString(), i%97, i%13, i)))
	}
	if _, err := w.st.AddObjects(t.Context(), w.col, objs, nil); err != nil {
		t.Fatal(err)
	}
	if got := w.search("beacon"); len(got) != 100 {
		t.Fatalf("search found %d, want the limit of 100", len(got))
	}
	if n := w.count(`SELECT count(*) FROM search_docs`); n != len(objs) {
		t.Fatalf("%d objects indexed of %d", n, len(objs))
	}
	// FTS5 numbers its data rows by segment: the segment id is the row
	// id's bits from 37 up (fts5_index.c, FTS5_SEGMENT_ROWID); rows
	// below 1<<37 are the structure and averages records.
	if n := w.count(`SELECT count(DISTINCT id >> 37) FROM search_text_data WHERE id >= 1 << 37`); n != 1 {
		t.Errorf("one catch-up wrote %d FTS5 segments, want 1", n)
	}
}

// A search file made before hashsize was set is given it when opened.
func TestSearchFileHashSize(t *testing.T) {
	w := newSearchWorld(t)
	hashsize := func() int {
		return w.count(`SELECT v FROM search_text_config WHERE k = 'hashsize'`)
	}
	if got := hashsize(); got != ftsHashSize {
		t.Fatalf("new search file: hashsize %d, want %d", got, ftsHashSize)
	}
	if _, err := w.raw.Exec(`DELETE FROM search_text_config WHERE k = 'hashsize'`); err != nil {
		t.Fatal(err)
	}
	if err := w.st.Close(); err != nil {
		t.Fatal(err)
	}
	w.open()
	if got := hashsize(); got != ftsHashSize {
		t.Errorf("reopened search file: hashsize %d, want %d", got, ftsHashSize)
	}
}
