package sqlstore

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
)

// This file implements store.Peers and store.FederationTx.

var _ store.Peers = (*Store)(nil)

// CreatePeer implements store.Peers.
func (s *Store) CreatePeer(ctx context.Context, p *store.Peer) error {
	if p.Name == "" || p.URL == "" || p.Organisation == "" {
		return fmt.Errorf("peer needs a name, a URL and an organisation: %w", store.ErrInvalid)
	}
	var n int
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM organisations WHERE id = ?`, p.Organisation).Scan(&n); err != nil {
		return fmt.Errorf("create peer: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("organisation %s: %w", p.Organisation, store.ErrNotFound)
	}
	p.Created = s.now().UTC()
	if p.Secret == nil {
		p.Secret = []byte{}
	}
	_, err := s.db.Exec(ctx, `INSERT INTO peers (name, url, organisation, username, secret, ca_pem, cert_pem, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		p.Name, p.URL, p.Organisation, p.User, p.Secret, p.CA, p.Cert, micros(p.Created))
	if s.d.IsUnique(err) {
		return fmt.Errorf("peer %q: %w", p.Name, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create peer: %w", err)
	}
	return nil
}

const peerCols = `name, url, organisation, username, secret, ca_pem, cert_pem, created`

func scanPeer(r Row) (*store.Peer, error) {
	var p store.Peer
	var created int64
	if err := r.Scan(&p.Name, &p.URL, &p.Organisation, &p.User, &p.Secret, &p.CA, &p.Cert, &created); err != nil {
		return nil, err
	}
	p.Created = fromMicros(created)
	return &p, nil
}

// GetPeer implements store.Peers.
func (s *Store) GetPeer(ctx context.Context, name string) (*store.Peer, error) {
	p, err := scanPeer(s.db.QueryRow(ctx, `SELECT `+peerCols+` FROM peers WHERE name = ?`, name))
	if noRows(err) {
		return nil, fmt.Errorf("peer %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("peer %q: %w", name, err)
	}
	return p, nil
}

// ListPeers implements store.Peers.
func (s *Store) ListPeers(ctx context.Context) ([]*store.Peer, error) {
	rows, err := s.db.Query(ctx, `SELECT `+peerCols+` FROM peers ORDER BY name`)
	return collect(rows, err, "list peers", scanPeer)
}

// DeletePeer implements store.Peers.
func (s *Store) DeletePeer(ctx context.Context, name string) error {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("delete peer: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `DELETE FROM peer_links WHERE peer = ?`, name); err != nil {
		return fmt.Errorf("delete peer: %w", err)
	}
	n, err := tx.Exec(ctx, `DELETE FROM peers WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("delete peer: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("peer %q: %w", name, store.ErrNotFound)
	}
	return tx.Commit(ctx)
}

// AddLink implements store.Peers.
func (s *Store) AddLink(ctx context.Context, l *store.Link) error {
	if l.ID == "" || l.Local == "" || l.Remote == "" || (l.Direction != store.LinkPull && l.Direction != store.LinkPush) {
		return fmt.Errorf("link needs an id, a direction (pull or push), a local and a remote collection: %w", store.ErrInvalid)
	}
	if _, err := s.GetPeer(ctx, l.Peer); err != nil {
		return err
	}
	if _, err := collectionKey(ctx, s.db, l.Local); err != nil {
		return fmt.Errorf("link %s: local collection %s: %w", l.ID, l.Local, err)
	}
	l.Created = s.now().UTC()
	_, err := s.db.Exec(ctx, `INSERT INTO peer_links (id, peer, direction, local_collection, remote_collection, interval_ms, created) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		l.ID, l.Peer, l.Direction, l.Local, l.Remote, l.Interval.Milliseconds(), micros(l.Created))
	if s.d.IsUnique(err) {
		return fmt.Errorf("link %q: %w", l.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("add link: %w", err)
	}
	return nil
}

// Links implements store.Peers.
func (s *Store) Links(ctx context.Context, peer string) ([]*store.Link, error) {
	q := `SELECT id, peer, direction, local_collection, remote_collection, interval_ms, created, last_success, last_error, last_error_at, lag_objects, lag_ms, synced FROM peer_links`
	var a Args
	if peer != "" {
		q += ` WHERE peer = ` + a.Add(peer)
	}
	rows, err := s.db.Query(ctx, q+` ORDER BY peer, id`, a...)
	return collect(rows, err, "list links", func(r Row) (*store.Link, error) {
		var l store.Link
		var iv, created, ok, errAt, lagMS int64
		if err := r.Scan(&l.ID, &l.Peer, &l.Direction, &l.Local, &l.Remote, &iv, &created, &ok, &l.LastError, &errAt, &l.LagObjects, &lagMS, &l.Synced); err != nil {
			return nil, err
		}
		l.Interval, l.Lag = time.Duration(iv)*time.Millisecond, time.Duration(lagMS)*time.Millisecond
		l.Created, l.LastSuccess, l.LastErrorAt = fromMicros(created), fromMicros(ok), fromMicros(errAt)
		return &l, nil
	})
}

// SetLinkStatus implements store.Peers.
func (s *Store) SetLinkStatus(ctx context.Context, linkID string, st store.LinkStatus) error {
	var err error
	if st.Err == "" {
		_, err = s.db.Exec(ctx, `UPDATE peer_links SET last_success = ?, lag_objects = ?, lag_ms = ?, synced = synced + ? WHERE id = ?`,
			micros(st.At), st.LagObjects, st.Lag.Milliseconds(), st.Synced, linkID)
	} else {
		_, err = s.db.Exec(ctx, `UPDATE peer_links SET last_error = ?, last_error_at = ?, lag_objects = ?, lag_ms = ?, synced = synced + ? WHERE id = ?`,
			st.Err, micros(st.At), st.LagObjects, st.Lag.Milliseconds(), st.Synced, linkID)
	}
	if err != nil {
		return fmt.Errorf("link %s status: %w", linkID, err)
	}
	return nil
}

// Rejections implements store.Peers.
func (s *Store) Rejections(ctx context.Context, peer string, limit int) ([]store.Rejection, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.Query(ctx, `SELECT link, peer, kind, object_id, version, reason, at FROM peer_rejections WHERE peer = ? ORDER BY seq DESC LIMIT ?`, peer, limit)
	return collect(rows, err, "rejections", func(r Row) (store.Rejection, error) {
		var x store.Rejection
		var at int64
		err := r.Scan(&x.Link, &x.Peer, &x.Kind, &x.ObjectID, &x.Version, &x.Reason, &at)
		x.At = fromMicros(at)
		return x, err
	})
}

// PruneRejections implements store.Peers.
func (s *Store) PruneRejections(ctx context.Context, before time.Time) (int64, error) {
	n, err := s.db.Exec(ctx, `DELETE FROM peer_rejections WHERE at < ?`, micros(before))
	if err != nil {
		return 0, fmt.Errorf("prune rejections: %w", err)
	}
	return n, nil
}

// ObjectProvenance implements store.Peers. A version's provenance is
// found from its objects row (the range of its collection that covers its
// date_added) or by id (provenance_versions); of each (id, version, link)
// the first delivery is kept, as the key of migration 5's table did.
// CROSS JOIN fixes SQLite's join order (collections, then each one's
// versions of the id by objects_version): without statistics it scanned
// objects.
func (s *Store) ObjectProvenance(ctx context.Context, objectID string) ([]store.Provenance, error) {
	rows, err := s.db.Query(ctx, `SELECT x.version, d.link, d.peer, d.received FROM (
  SELECT o.version_raw AS version, r.delivery AS delivery
  FROM collections c CROSS JOIN objects o CROSS JOIN provenance_ranges r
  WHERE o.cid = c.cid AND o.id = ? AND r.collection = c.id AND r.first_added <= o.date_added
   AND r.last_added = (SELECT MIN(m.last_added) FROM provenance_ranges m WHERE m.collection = c.id AND m.last_added >= o.date_added)
  UNION ALL
  SELECT version, delivery FROM provenance_versions WHERE id = ?
) x JOIN provenance_deliveries d ON d.delivery = x.delivery ORDER BY d.delivery`, objectID, objectID)
	all, err := collect(rows, err, "provenance", func(r Row) (store.Provenance, error) {
		p := store.Provenance{ObjectID: objectID}
		var at int64
		err := r.Scan(&p.Version, &p.Link, &p.Peer, &at)
		p.Received = fromMicros(at)
		return p, err
	})
	if err != nil {
		return nil, err
	}
	type key struct{ version, link string }
	seen := make(map[key]bool, len(all))
	out := all[:0]
	for _, p := range all {
		if k := (key{p.Version, p.Link}); !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.Received.Equal(b.Received) {
			return a.Received.Before(b.Received)
		}
		if a.Link != b.Link {
			return a.Link < b.Link
		}
		return a.Version < b.Version
	})
	return out, nil
}

// TakeLease implements store.Peers: one statement, so that of two
// processes taking a free or expired lease at once exactly one wins (the
// primary key serialises them on both databases).
func (s *Store) TakeLease(ctx context.Context, link, holder string, ttl time.Duration) (bool, error) {
	now := s.now()
	n, err := s.db.Exec(ctx, `INSERT INTO peer_leases (link, holder, expires) VALUES (?, ?, ?)
ON CONFLICT (link) DO UPDATE SET holder = excluded.holder, expires = excluded.expires
WHERE peer_leases.holder = excluded.holder OR peer_leases.expires < ?`, link, holder, micros(now.Add(ttl)), micros(now))
	if err != nil {
		return false, fmt.Errorf("lease %s: %w", link, err)
	}
	return n == 1, nil
}

// ReleaseLease implements store.Peers.
func (s *Store) ReleaseLease(ctx context.Context, link, holder string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM peer_leases WHERE link = ? AND holder = ?`, link, holder); err != nil {
		return fmt.Errorf("release lease %s: %w", link, err)
	}
	return nil
}

var _ store.FederationTx = (*writeTx)(nil)

// ProvenanceChunk is the number of rows one statement of RecordProvenance
// inserts at most.
const ProvenanceChunk = 200

// ProvenanceVersionsInsert returns the statement that inserts n rows of
// provenance by id.
func ProvenanceVersionsInsert(n int) string {
	return `INSERT INTO provenance_versions (id, version, delivery) VALUES ` +
		strings.TrimSuffix(strings.Repeat("(?, ?, ?),", n), ",") + ` ON CONFLICT DO NOTHING`
}

// addedVersion is a version this transaction added: its date_added, and
// whether a delivery took it already.
type addedVersion struct {
	added int64
	taken bool
}

// noteAdded remembers the versions Add inserted, for RecordProvenance.
func (t *writeTx) noteAdded(rows []store.NewVersion) {
	if len(rows) == 0 {
		return
	}
	if t.added == nil {
		t.added = make(map[string]*addedVersion, len(rows))
	}
	for _, r := range rows {
		v := &addedVersion{added: r.Added}
		t.added[r.Obj.ID+"\x00"+r.VersionRaw] = v
		t.addedOrder = append(t.addedOrder, v)
	}
}

// RecordProvenance implements store.FederationTx: of each (id, version,
// link) the first delivery is kept (ObjectProvenance reads it).
//
// Rows are not keyed by id, which put every mirrored version at a random
// place of an index (a page written to the WAL per version): a delivery
// (each distinct link, peer and time of ps) is one row, and the versions
// this transaction added are named by runs of their date_added in the
// collection (a row per run, usually one per page of the feed). Only the
// others (versions added before, versions the transaction did not add,
// versions given again) are rows by id.
func (t *writeTx) RecordProvenance(ctx context.Context, ps []store.Provenance) error {
	if t.done {
		return errTxDone
	}
	type source struct {
		link, peer string
		received   int64
	}
	var order []source
	groups := map[source][]store.Provenance{}
	for _, p := range ps {
		k := source{p.Link, p.Peer, micros(p.Received)}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], p)
	}
	b := &Batch{}
	for _, k := range order {
		var delivery int64
		if err := t.tx.QueryRow(ctx, `INSERT INTO provenance_deliveries (link, peer, received) VALUES (?, ?, ?) RETURNING delivery`,
			k.link, k.peer, k.received).Scan(&delivery); err != nil {
			return fmt.Errorf("record provenance: %w", err)
		}
		var byID []any
		mine := map[*addedVersion]bool{}
		for _, p := range groups[k] {
			if v := t.added[p.ObjectID+"\x00"+p.Version]; v != nil && !v.taken {
				v.taken = true
				mine[v] = true
				continue
			}
			byID = append(byID, p.ObjectID, p.Version, delivery)
		}
		// Runs of versions added one after the other: no version of the
		// collection added between two of them (only this transaction
		// adds to it) came from elsewhere.
		var ranges []any
		first := -1
		flush := func(last int) {
			if first >= 0 {
				ranges = append(ranges, t.collection, t.addedOrder[last].added, t.addedOrder[first].added, delivery)
				first = -1
			}
		}
		for i, v := range t.addedOrder {
			switch {
			case mine[v] && first < 0:
				first = i
			case !mine[v]:
				flush(i - 1)
			}
		}
		flush(len(t.addedOrder) - 1)
		for len(ranges) > 0 {
			n := min(len(ranges)/4, ProvenanceChunk)
			b.Queue(`INSERT INTO provenance_ranges (collection, last_added, first_added, delivery) VALUES `+
				strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?),", n), ","), ranges[:4*n]...)
			ranges = ranges[4*n:]
		}
		// Full chunks share one text, which a dialect can prepare once.
		for len(byID) > 0 {
			n := min(len(byID)/3, ProvenanceChunk)
			b.Queue(ProvenanceVersionsInsert(n), byID[:3*n]...)
			byID = byID[3*n:]
		}
	}
	if b.Len() == 0 {
		return nil
	}
	if err := t.tx.Send(ctx, b); err != nil {
		return fmt.Errorf("record provenance: %w", err)
	}
	return nil
}

// RecordRejections implements store.FederationTx.
func (t *writeTx) RecordRejections(ctx context.Context, rs []store.Rejection) error {
	if t.done {
		return errTxDone
	}
	b := &Batch{}
	for _, r := range rs {
		b.Queue(`INSERT INTO peer_rejections (link, peer, kind, object_id, version, reason, at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			r.Link, r.Peer, r.Kind, r.ObjectID, r.Version, r.Reason, micros(r.At))
	}
	if b.Len() == 0 {
		return nil
	}
	if err := t.tx.Send(ctx, b); err != nil {
		return fmt.Errorf("record rejections: %w", err)
	}
	return nil
}
