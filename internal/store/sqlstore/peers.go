package sqlstore

import (
	"context"
	"fmt"
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

// ObjectProvenance implements store.Peers.
func (s *Store) ObjectProvenance(ctx context.Context, objectID string) ([]store.Provenance, error) {
	rows, err := s.db.Query(ctx, `SELECT id, version, link, peer, received FROM object_provenance WHERE id = ? ORDER BY received, link`, objectID)
	return collect(rows, err, "provenance", func(r Row) (store.Provenance, error) {
		var p store.Provenance
		var at int64
		err := r.Scan(&p.ObjectID, &p.Version, &p.Link, &p.Peer, &at)
		p.Received = fromMicros(at)
		return p, err
	})
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

// ProvenanceChunk is the number of provenance rows one statement inserts
// at most.
const ProvenanceChunk = 200

// ProvenanceInsert returns the statement that inserts n provenance rows,
// keeping the first arrival of each (id, version, link).
func ProvenanceInsert(n int) string {
	return `INSERT INTO object_provenance (id, version, link, peer, received) VALUES ` +
		strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?),", n), ",") + ` ON CONFLICT (id, version, link) DO NOTHING`
}

// RecordProvenance implements store.FederationTx: the first arrival of a
// version through a link is kept.
func (t *writeTx) RecordProvenance(ctx context.Context, ps []store.Provenance) error {
	if t.done {
		return errTxDone
	}
	// Several rows per statement: one statement per row was an eighth of
	// a federation pull's CPU time. Full chunks share one text, which a
	// dialect can prepare once (SQLite does: preparing the statement cost
	// a quarter of its time).
	b := &Batch{}
	for len(ps) > 0 {
		n := min(len(ps), ProvenanceChunk)
		q := ProvenanceInsert(n)
		args := make([]any, 0, 5*n)
		for _, p := range ps[:n] {
			args = append(args, p.ObjectID, p.Version, p.Link, p.Peer, micros(p.Received))
		}
		b.Queue(q, args...)
		ps = ps[n:]
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
