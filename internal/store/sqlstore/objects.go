package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
)

// maxPage caps a page when the query asks for no limit.
const maxPage = 10000

// Store implements store.Store (and the Exporter and Importer) on a DB.
type Store struct {
	db     DB
	d      Dialect
	now    func() time.Time
	schema int // the schema version this binary expects (Ping)
}

var (
	_ store.Store    = (*Store)(nil)
	_ store.Exporter = (*Store)(nil)
	_ store.Importer = (*Store)(nil)
)

// New returns the store on db, whose schema is migrated to version schema
// (Migrate), and makes sure the default organisation exists. now is the
// clock (time.Now when nil).
func New(ctx context.Context, db DB, d Dialect, now func() time.Time, schema int) (*Store, error) {
	if now == nil {
		now = time.Now
	}
	s := &Store{db: db, d: d, now: now, schema: schema}
	// The unique index on is_default (PostgreSQL) or the serialised
	// writer (SQLite) settles concurrent first starts.
	_, err := db.Exec(ctx, `INSERT INTO organisations (id, name, created, is_default)
		SELECT ?, ?, ?, true WHERE NOT EXISTS (SELECT 1 FROM organisations WHERE is_default)
		ON CONFLICT DO NOTHING`,
		"identity--"+uuid.NewString(), "Default organisation", micros(now()))
	if err != nil {
		return nil, fmt.Errorf("create default organisation: %w", err)
	}
	return s, nil
}

// Close releases the database.
func (s *Store) Close() error { return s.db.Close() }

// write runs fn in a write transaction and commits it when fn succeeds.
func (s *Store) write(ctx context.Context, what string, fn func(tx Tx) error) error {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer tx.Rollback(ctx)
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("%s: commit: %w", what, err)
	}
	return nil
}

// lockCollection takes the collection's row for the rest of tx (a row lock
// on PostgreSQL; SQLite's write transactions are serialised already) and
// returns its key and high-water marks. This is what keeps date_added and
// the change-log seq strictly increasing in commit order.
func (s *Store) lockCollection(ctx context.Context, tx Tx, collectionID string) (cid, lastAdded, lastSeq int64, err error) {
	err = tx.QueryRow(ctx, `SELECT cid, last_added, last_seq FROM collections WHERE id = ?`+s.d.ForUpdate(), collectionID).Scan(&cid, &lastAdded, &lastSeq)
	if noRows(err) {
		return 0, 0, 0, fmt.Errorf("collection %s: %w", collectionID, store.ErrNotFound)
	}
	if err != nil {
		return 0, 0, 0, fmt.Errorf("collection %s: %w", collectionID, err)
	}
	return cid, lastAdded, lastSeq, nil
}

// collectionKey resolves a collection id to its compact key.
func collectionKey(ctx context.Context, q Querier, id string) (int64, error) {
	var cid int64
	err := q.QueryRow(ctx, `SELECT cid FROM collections WHERE id = ?`, id).Scan(&cid)
	if noRows(err) {
		return 0, fmt.Errorf("collection %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("collection %s: %w", id, err)
	}
	return cid, nil
}

// AddObjects implements store.Objects.
//
// It works per batch rather than per object: one query loads what is
// stored for the batch's ids, the decisions (duplicate, conflict, which row
// is the latest) are made in memory (store.PlanAdd), and the rows, their
// change-log records, the flags of superseded rows, the collection's marks
// and the status go out as one Batch.
func (s *Store) AddObjects(ctx context.Context, collectionID string, objs []store.Object, status *store.Status) ([]store.AddResult, error) {
	return s.AddBatches(ctx, collectionID, slices.Values([][]store.Object{objs}), status)
}

// AddBatches implements store.Objects.
func (s *Store) AddBatches(ctx context.Context, collectionID string, batches iter.Seq[[]store.Object], status *store.Status) ([]store.AddResult, error) {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("add objects: %w", err)
	}
	defer tx.Rollback(ctx)
	cid, lastAdded, lastSeq, err := s.lockCollection(ctx, tx, collectionID)
	if err != nil {
		return nil, err
	}
	if s.d.WholeAdd() {
		// Each round trip to the server costs more than the overlap with
		// the caller's validation gains (measured: 5 round trips of 100
		// objects were 4 times slower than one of 500).
		var all []store.Object
		for batch := range batches {
			all = append(all, batch...)
		}
		batches = slices.Values([][]store.Object{all})
	}
	m := &marks{cid: cid, lastAdded: lastAdded, lastSeq: lastSeq}
	var results []store.AddResult
	for objs := range batches {
		// Versions inserted by earlier batches are visible here: same
		// transaction.
		plan, err := s.addBatch(ctx, tx, m, objs, status, s.d.WholeAdd(), nil)
		if err != nil {
			return nil, err
		}
		results = append(results, plan.Results...)
	}
	if status != nil && !s.d.WholeAdd() {
		b := &Batch{}
		queueSaveStatus(b, status)
		if err := tx.Send(ctx, b); err != nil {
			return nil, fmt.Errorf("add objects: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("add objects: commit: %w", err)
	}
	return results, nil
}

// marks are a locked collection's key and high-water marks.
type marks struct {
	cid, lastAdded, lastSeq int64
}

// addBatch plans objs against what tx sees (stored versions, recorded
// owners) and sends the rows, their change-log records, the superseded
// flags and the collection's new marks as one Batch, with status (when
// saveStatus) in the same round trip. When status is not nil the
// objects' outcomes are appended to it. known are versions tx has read
// already (nil when none). tx holds the collection's lock.
func (s *Store) addBatch(ctx context.Context, tx Tx, m *marks, objs []store.Object, status *store.Status, saveStatus bool, known storedVersions) (*store.AddPlan, error) {
	existing, err := loadVersions(ctx, tx, s.d, m.cid, objs, known)
	if err != nil {
		return nil, err
	}
	owners, err := s.claimOwners(ctx, tx, objs)
	if err != nil {
		return nil, err
	}
	plan := store.PlanAdd(objs, existing, owners, micros(s.now()), m.lastAdded, m.lastSeq)
	b := &Batch{}
	if len(plan.Rows) > 0 {
		s.d.InsertVersions(b, m.cid, plan.Rows, true)
	}
	if len(plan.Superseded) > 0 {
		var a Args
		b.Queue(`UPDATE objects SET latest = false WHERE `+s.d.In(&a, "rid", plan.Superseded), a...)
	}
	m.lastAdded, m.lastSeq = plan.LastAdded, plan.LastSeq
	b.Queue(`UPDATE collections SET last_added = ?, last_seq = ? WHERE cid = ?`, m.lastAdded, m.lastSeq, m.cid)
	if status != nil {
		plan.RecordStatus(objs, status)
		if saveStatus {
			queueSaveStatus(b, status)
		}
	}
	if err := tx.Send(ctx, b); err != nil {
		return nil, fmt.Errorf("add objects: %w", err)
	}
	return plan, nil
}

// uniqueIDs returns the ids of objs, each once, in order.
func uniqueIDs(objs []store.Object) []string {
	ids := make([]string, 0, len(objs))
	seen := make(map[string]bool, len(objs))
	for _, o := range objs {
		if !seen[o.ID] {
			seen[o.ID] = true
			ids = append(ids, o.ID)
		}
	}
	return ids
}

// inChunks runs fn on ids in chunks small enough for every driver's limit
// on parameters.
func inChunks(ids []string, fn func(part []string) error) error {
	const chunk = 1000
	for len(ids) > 0 {
		part := ids[:min(chunk, len(ids))]
		ids = ids[len(part):]
		if err := fn(part); err != nil {
			return err
		}
	}
	return nil
}

// storedVersions are the stored versions of ids in a collection, as read
// in a transaction: an id present with no versions has none.
type storedVersions map[string][]store.StoredVersion

// loadVersions reads every stored version of the batch's ids, but for the
// ids of known (versions the transaction has read already). For new
// objects it finds nothing, with an index probe per id.
func loadVersions(ctx context.Context, tx Tx, d Dialect, cid int64, objs []store.Object, known storedVersions) (storedVersions, error) {
	out := make(storedVersions, len(objs))
	ids := uniqueIDs(objs)
	if known != nil {
		unread := ids[:0:0]
		for _, id := range ids {
			if vs, ok := known[id]; ok {
				if len(vs) > 0 {
					out[id] = vs
				}
			} else {
				unread = append(unread, id)
			}
		}
		ids = unread
	}
	err := inChunks(ids, func(part []string) error {
		a := Args{cid}
		rows, err := tx.Query(ctx, `SELECT id, rid, version, version_raw, spec_version, latest, body FROM objects WHERE cid = ? AND `+d.In(&a, "id", part), a...)
		_, err = collect(rows, err, "add objects: load versions", func(r Row) (struct{}, error) {
			var id string
			var v store.StoredVersion
			if err := r.Scan(&id, &v.RID, &v.Version, &v.VersionRaw, &v.Spec, &v.Latest, &v.Body); err != nil {
				return struct{}{}, err
			}
			out[id] = append(out[id], v)
			return struct{}{}, nil
		})
		return err
	})
	return out, err
}

// filterSQL renders the id/type/spec_version/version filters of q as a
// WHERE fragment over alias o (TAXII 2.1 §3.4.1).
func filterSQL(d Dialect, q store.Query, a *Args) string {
	var b strings.Builder
	if len(q.IDs) > 0 {
		b.WriteString(" AND " + d.In(a, "o.id", q.IDs))
	}
	if len(q.Types) > 0 {
		b.WriteString(" AND " + d.In(a, "o.type", q.Types))
	}
	vf := q.Versions
	if vf.IsZero() {
		vf.Last = true
	}
	if len(q.SpecVersions) == 0 && vf.Last && !vf.First && !vf.All && len(vf.Exact) == 0 {
		// The default read: the maintained latest flag answers it.
		b.WriteString(" AND o.latest")
		return b.String()
	}
	if len(q.SpecVersions) > 0 {
		b.WriteString(" AND " + d.In(a, "o.spec_version", q.SpecVersions))
	} else {
		// "the server MUST return only the latest specification version
		// that it can provide for each object" (TAXII 2.1 §3.4.1).
		b.WriteString(" AND o.spec_version = (SELECT MAX(s.spec_version) FROM objects s WHERE s.cid = o.cid AND s.id = o.id)")
	}
	if vf.All {
		return b.String()
	}
	// specCond restricts the versions compared by first/last to the same
	// spec versions the outer query admits.
	specCond := func() string {
		if len(q.SpecVersions) > 0 {
			return " AND " + d.In(a, "v.spec_version", q.SpecVersions)
		}
		return " AND v.spec_version = o.spec_version"
	}
	var ors []string
	if vf.Last {
		ors = append(ors, "o.version = (SELECT MAX(v.version) FROM objects v WHERE v.cid = o.cid AND v.id = o.id"+specCond()+")")
	}
	if vf.First {
		ors = append(ors, "o.version = (SELECT MIN(v.version) FROM objects v WHERE v.cid = o.cid AND v.id = o.id"+specCond()+")")
	}
	if len(vf.Exact) > 0 {
		keys := make([]string, len(vf.Exact))
		for i, t := range vf.Exact {
			keys[i] = stix.SortKey(t)
		}
		ors = append(ors, d.In(a, "o.version", keys))
	}
	b.WriteString(" AND (" + strings.Join(ors, " OR ") + ")")
	return b.String()
}

// QueryObjects implements store.Objects. Without q.Visible one statement
// (one snapshot) answers: writers are serialised per collection and number
// their rows after every committed one, so date_added > AddedAfter never
// skips an object. With q.Visible, hidden rows are skipped and the scan
// goes on in chunks, each starting after the last row read, until limit+1
// visible rows are found or the collection ends; every chunk is a later
// snapshot, which by the same argument only adds rows after the ones
// already read.
func (s *Store) QueryObjects(ctx context.Context, collectionID string, q store.Query) (*store.Page, error) {
	limit := q.Limit
	if limit <= 0 || limit > maxPage {
		limit = maxPage
	}
	cols := entryCols
	if q.WithBody {
		cols += ", o.body"
	}
	var after int64
	if !q.AddedAfter.IsZero() {
		after = micros(q.AddedAfter)
	}
	a := Args{collectionID, after}
	where := filterSQL(s.d, q, &a)
	chunk := limit + 1
	if q.Visible != nil {
		chunk = max(chunk, 256)
	}
	added := "o.date_added"
	if len(q.IDs) > 0 {
		// By id, the (cid, id, version) index finds the few rows; the
		// unary plus keeps SQLite's planner from walking the whole
		// collection by date_added instead (seconds at a million objects).
		added = "+o.date_added"
	}
	query := "SELECT " + cols + " FROM objects o WHERE o.cid = (SELECT cid FROM collections WHERE id = ?) AND " + added + " > ?" +
		where + " ORDER BY " + added + " LIMIT " + a.Add(chunk)
	page := &store.Page{Entries: make([]store.Entry, 0, min(limit, 1024))}
	read := 0
	for {
		a[1] = after
		n, done, err := s.scanPage(ctx, query, a, q, page, limit, &after)
		if err != nil {
			return nil, err
		}
		read += n
		if done || n < chunk {
			break
		}
	}
	if read == 0 {
		// Nothing matched: tell an empty collection from a missing one.
		if _, err := collectionKey(ctx, s.db, collectionID); err != nil {
			return nil, err
		}
	}
	return page, nil
}

// scanPage reads one chunk of rows into page. It returns the number of rows
// read and whether the page is complete (limit entries and a further visible
// one, which sets More).
func (s *Store) scanPage(ctx context.Context, query string, a Args, q store.Query, page *store.Page, limit int, after *int64) (int, bool, error) {
	rows, err := s.db.Query(ctx, query, a...)
	if err != nil {
		return 0, false, fmt.Errorf("query objects: %w", err)
	}
	defer rows.Close()
	n := 0
	sc := newEntryScan(q.WithBody)
	for rows.Next() {
		n++
		e, added, err := sc.scan(rows)
		if err != nil {
			return 0, false, fmt.Errorf("query objects: %w", err)
		}
		*after = added
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

// entryCols are the columns of an Entry, without the body, over alias o.
const entryCols = "o.id, o.type, o.spec_version, o.version_raw, o.date_added, o.submitter, o.tlp, o.recipients"

// entryScan scans rows of entryCols (and the body when withBody) into
// entries, reusing its destinations from row to row.
type entryScan struct {
	e          store.Entry
	added      int64
	recipients string
	dest       []any
}

func newEntryScan(withBody bool) *entryScan {
	s := &entryScan{}
	s.dest = []any{&s.e.ID, &s.e.Type, &s.e.SpecVersion, &s.e.VersionRaw, &s.added, &s.e.Submitter, &s.e.TLP, &s.recipients}
	if withBody {
		s.dest = append(s.dest, &s.e.Raw)
	}
	return s
}

// scan reads one row; added is its date_added in microseconds.
func (s *entryScan) scan(r Row) (e store.Entry, added int64, err error) {
	s.e = store.Entry{}
	if err := r.Scan(s.dest...); err != nil {
		return e, 0, err
	}
	e = s.e
	e.DateAdded = fromMicros(s.added)
	if e.Recipients, err = parseList(s.recipients); err != nil {
		return e, 0, fmt.Errorf("recipients of %s: %w", e.ID, err)
	}
	return e, s.added, nil
}

// DeleteObject implements store.Objects.
func (s *Store) DeleteObject(ctx context.Context, collectionID, objectID string, q store.Query) (int, error) {
	var removed int
	err := s.write(ctx, "delete object", func(tx Tx) error {
		var m marks
		var err error
		if m.cid, m.lastAdded, m.lastSeq, err = s.lockCollection(ctx, tx, collectionID); err != nil {
			return err
		}
		removed, err = s.deleteIn(ctx, tx, &m, objectID, q)
		return err
	})
	return removed, err
}

// deleteIn deletes the versions of objectID selected by q in the
// collection tx holds locked (m), with their tombstones in the change log,
// and returns how many went. ErrNotFound and ErrForbidden are returned
// before anything is written, so tx stays usable after them.
func (s *Store) deleteIn(ctx context.Context, tx Tx, m *marks, objectID string, q store.Query) (int, error) {
	cid := m.cid
	q.IDs = []string{objectID}
	if q.Versions.IsZero() {
		// Without a version filter the whole object goes: afterwards a
		// GET of it MUST answer 404 (TAXII 2.1 §5.7).
		q.Versions.All = true
	}
	a := Args{cid}
	var where string
	if len(q.SpecVersions) == 0 && q.Versions.All {
		// All versions of every spec version.
		where = " AND o.id = " + a.Add(objectID)
	} else {
		where = filterSQL(s.d, q, &a)
	}
	rows, err := tx.Query(ctx, "SELECT o.rid, o.version_raw, o.id, o.type, o.submitter, o.tlp, o.recipients FROM objects o WHERE o.cid = ?"+where+" ORDER BY o.date_added", a...)
	if err != nil {
		return 0, fmt.Errorf("delete object: %w", err)
	}
	var rids []int64
	var tombs []store.Change
	at := max(micros(s.now()), m.lastAdded)
	lastSeq := m.lastSeq
	for rows.Next() {
		var rid int64
		var recipients string
		var e store.Entry
		if err := rows.Scan(&rid, &e.VersionRaw, &e.ID, &e.Type, &e.Submitter, &e.TLP, &recipients); err != nil {
			rows.Close()
			return 0, fmt.Errorf("delete object: %w", err)
		}
		// The recipients decide q.Visible and go into the tombstone.
		if e.Recipients, err = parseList(recipients); err != nil {
			rows.Close()
			return 0, fmt.Errorf("delete object: %w", err)
		}
		if q.Visible != nil && !q.Visible(&e) {
			continue
		}
		lastSeq++
		rids = append(rids, rid)
		tombs = append(tombs, store.Change{Seq: lastSeq, Op: store.OpDelete, ObjectID: objectID, VersionRaw: e.VersionRaw, At: time.UnixMicro(at),
			Deleted: &store.Entry{Type: e.Type, Submitter: e.Submitter, TLP: e.TLP, Recipients: e.Recipients}})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("delete object: %w", err)
	}
	if len(rids) == 0 {
		return 0, fmt.Errorf("object %s: %w", objectID, store.ErrNotFound)
	}
	if err := checkDeleteOwner(ctx, tx, objectID, q.Owner); err != nil {
		return 0, err
	}
	b := &Batch{}
	var da Args
	b.Queue(`DELETE FROM objects WHERE `+s.d.In(&da, "rid", rids), da...)
	queueTombstones(b, cid, tombs)
	// The remaining latest version (if any) becomes the default one.
	b.Queue(`UPDATE objects SET latest = (rid = (SELECT rid FROM objects WHERE cid = ? AND id = ?
		ORDER BY spec_version DESC, version DESC LIMIT 1)) WHERE cid = ? AND id = ?`, cid, objectID, cid, objectID)
	b.Queue(`UPDATE collections SET last_seq = ? WHERE cid = ?`, lastSeq, cid)
	if err := tx.Send(ctx, b); err != nil {
		return 0, fmt.Errorf("delete object: %w", err)
	}
	m.lastSeq = lastSeq
	return len(rids), nil
}

// Changes implements store.Objects.
func (s *Store) Changes(ctx context.Context, collectionID string, afterSeq int64, limit int) ([]store.Change, error) {
	cid, err := collectionKey(ctx, s.db, collectionID)
	if err != nil {
		return nil, err
	}
	if limit <= 0 || limit > maxPage {
		limit = maxPage
	}
	rows, err := s.db.Query(ctx, `SELECT seq, op, object_id, version_raw, at, type, submitter, tlp, recipients FROM changes WHERE cid = ? AND seq > ? ORDER BY seq LIMIT ?`, cid, afterSeq, limit)
	return collect(rows, err, "changes", func(r Row) (store.Change, error) {
		var c store.Change
		var at int64
		var op, recipients string
		var d store.Entry
		if err := r.Scan(&c.Seq, &op, &c.ObjectID, &c.VersionRaw, &at, &d.Type, &d.Submitter, &d.TLP, &recipients); err != nil {
			return c, err
		}
		c.Op, c.At = store.ChangeOp(op), fromMicros(at)
		if c.Op == store.OpDelete && (d.Submitter != "" || d.TLP != tlpUnrecorded) {
			var err error
			if d.Recipients, err = parseList(recipients); err != nil {
				return c, err
			}
			c.Deleted = &d
		}
		return c, nil
	})
}

// collect scans every row of a query (whose error is err) with scan.
func collect[T any](rows Rows, err error, what string, scan func(Row) (T, error)) ([]T, error) {
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// JSONList encodes a list of strings for a JSON text column ("[]" when
// empty).
func JSONList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l) // strings: cannot fail
	return string(b)
}

// parseList decodes a JSON text list; empty gives nil.
func parseList(s string) ([]string, error) {
	if s == "" || s == "[]" {
		return nil, nil
	}
	var l []string
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, err
	}
	return l, nil
}

// ParseList is parseList for dialects.
func ParseList(s string) ([]string, error) { return parseList(s) }
