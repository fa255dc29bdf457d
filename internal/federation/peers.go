package federation

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxii"
	"github.com/mitra-cert/mitra/internal/taxiiclient"
)

// LinkStore is what peer links need of the local store.
type LinkStore interface {
	PullStore
	store.Peers
	QueryObjects(ctx context.Context, collectionID string, q store.Query) (*store.Page, error)
	ListOrganisations(ctx context.Context) ([]*store.Organisation, error)
	GetCollection(ctx context.Context, idOrAlias string) (*store.Collection, error)
	GroupsOf(ctx context.Context, org string) ([]string, error)
	Deleter
	store.Owners
}

// Runner runs peer links: once (mitra peer sync) or on their intervals
// inside mitra serve (Serve). Several processes on one database may run
// it: a lease in the store lets one of them run a link at a time.
type Runner struct {
	Store LinkStore
	// Sealer opens peer credentials; nil when no key is configured, and
	// then peers with sealed credentials are not run (Serve says so).
	Sealer *Sealer
	// Check is the TAXII POST path's checks (taxii.Server.Check).
	Check func(ctx context.Context, p *access.Principal, raws []json.RawMessage) (taxii.Checked, error)
	Log   *slog.Logger
	// Holder names this process in link leases.
	Holder   string
	LeaseTTL time.Duration // 1 minute when zero
	Metrics  *Metrics
	Now      func() time.Time
	// Rescan is how often Serve looks for added and removed peers and
	// links; 30 s when zero.
	Rescan time.Duration
	// RejectionRetention is how long Serve keeps rejected-object records;
	// 90 days when zero.
	RejectionRetention time.Duration
	// Configure, when set, adjusts each client (tests: retries, timeouts).
	Configure func(*taxiiclient.Client)
	// FeedPageLimit is the change-feed page size of pull links (10,000,
	// the largest a Mitra serves, when zero). Push links read the local
	// change log for deletions in pages of 500, or of FeedPageLimit when
	// smaller.
	FeedPageLimit int
	// FeedAheadBytes bounds the objects a pull link's fetcher holds read
	// ahead of their writing (2 × 96 MiB when zero).
	FeedAheadBytes int
}

// Metrics are Prometheus metrics per peer and link.
type Metrics struct {
	runs    *prometheus.CounterVec
	objects *prometheus.CounterVec
	lastOK  *prometheus.GaugeVec
	lag     *prometheus.GaugeVec
	resyncs *prometheus.CounterVec
	lagObj  *prometheus.GaugeVec
}

// NewMetrics registers the federation metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "mitra", Subsystem: "federation", Name: "link_runs_total",
			Help: "Runs of peer links, by outcome (ok, error)."}, []string{"peer", "link", "outcome"}),
		objects: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "mitra", Subsystem: "federation", Name: "link_objects_total",
			Help: "Objects handled by peer links, by result (added, duplicate, deleted, refused, sent)."}, []string{"peer", "link", "result"}),
		lastOK: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "mitra", Subsystem: "federation", Name: "link_last_success_timestamp_seconds",
			Help: "When a peer link last completed a run."}, []string{"peer", "link"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "mitra", Subsystem: "federation", Name: "link_lag_seconds",
			Help: "How far behind a peer link was at the end of its last run: 0 after a success, else the time since its last success."}, []string{"peer", "link"}),
		resyncs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "mitra", Subsystem: "federation", Name: "link_resyncs_total",
			Help: "Full resynchronisations of pull links (their change-feed position had expired on the peer)."}, []string{"peer", "link"}),
		lagObj: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "mitra", Subsystem: "federation", Name: "link_lag_objects",
			Help: "Objects a peer link was behind after its last run (pull: the peer's feed changes not applied; push: local objects not sent); absent when unknown."}, []string{"peer", "link"}),
	}
	if reg != nil {
		reg.MustRegister(m.runs, m.objects, m.lastOK, m.lag, m.resyncs, m.lagObj)
	}
	return m
}

// ErrLeaseHeld: another process runs this link now.
var ErrLeaseHeld = errors.New("another process runs this link")

// LinkResult is the outcome of one run of a link.
type LinkResult struct {
	Link *store.Link
	Pull PullStats
	Push PushStats
	// Back counts the sightings and opinions a pull link sent back.
	Back  BackStats
	Err   error
	Taken bool // false when another process held the lease
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

// CursorKeyOf is the store key of a link's pull cursor or push position.
func CursorKeyOf(linkID string) string { return "federation/link/" + linkID }

// Credentials opens a peer's credentials; ErrNoKey without a key.
func (r *Runner) Credentials(p *store.Peer) (Credentials, error) {
	if len(p.Secret) == 0 {
		return Credentials{}, nil
	}
	if r.Sealer == nil {
		return Credentials{}, fmt.Errorf("peer %s: %w", p.Name, ErrNoKey)
	}
	return r.Sealer.Open(p.Name, p.Secret)
}

// Client builds the TAXII client of a peer's remote collection, with the
// peer's TLS settings and credentials (assistance deliveries use it).
func (r *Runner) Client(ctx context.Context, p *store.Peer, remote string) (*taxiiclient.Client, error) {
	return r.client(ctx, p, remote)
}

// client builds the TAXII client of a peer's remote collection.
func (r *Runner) client(ctx context.Context, p *store.Peer, remote string) (*taxiiclient.Client, error) {
	creds, err := r.Credentials(p)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if p.CA != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(p.CA)) {
			return nil, fmt.Errorf("peer %s: CA bundle has no PEM certificate", p.Name)
		}
		cfg.RootCAs = pool
	}
	if p.Cert != "" {
		cert, err := tls.X509KeyPair([]byte(p.Cert), []byte(creds.ClientKey))
		if err != nil {
			return nil, fmt.Errorf("peer %s: client certificate: %w", p.Name, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	cl, err := taxiiclient.NewClient(p.URL, remote)
	if err != nil {
		return nil, fmt.Errorf("peer %s: %w", p.Name, err)
	}
	cl.HTTP, cl.User, cl.Password, cl.Token = &http.Client{Transport: tr}, p.User, creds.Password, creds.Token
	if r.Configure != nil {
		r.Configure(cl)
	}
	return cl, nil
}

// principal is the peer's organisation as a reader (pushes) or as a relay
// of its authors (pulls).
func (r *Runner) principal(ctx context.Context, p *store.Peer, role string) (*access.Principal, error) {
	groups, err := r.Store.GroupsOf(ctx, p.Organisation)
	if err != nil {
		return nil, fmt.Errorf("peer %s: groups of %s: %w", p.Name, p.Organisation, err)
	}
	return &access.Principal{User: "peer:" + p.Name, Organisation: p.Organisation, Groups: groups, Role: role}, nil
}

// SyncPeer runs each of a peer's links once.
func (r *Runner) SyncPeer(ctx context.Context, name string) ([]LinkResult, error) {
	p, err := r.Store.GetPeer(ctx, name)
	if err != nil {
		return nil, err
	}
	links, err := r.Store.Links(ctx, name)
	if err != nil {
		return nil, err
	}
	var out []LinkResult
	for _, l := range links {
		out = append(out, r.RunLink(ctx, p, l))
	}
	return out, nil
}

// RunLink runs a link once under its lease and records its status.
func (r *Runner) RunLink(ctx context.Context, p *store.Peer, l *store.Link) LinkResult {
	res := LinkResult{Link: l}
	ttl := r.LeaseTTL
	if ttl <= 0 {
		ttl = time.Minute
	}
	holder := r.Holder
	if holder == "" {
		holder = "mitra"
	}
	ok, err := r.Store.TakeLease(ctx, l.ID, holder, ttl)
	if err != nil {
		res.Err = err
		return res
	}
	if !ok {
		res.Err = ErrLeaseHeld
		return res
	}
	res.Taken = true
	defer func() {
		// Released on a fresh context: a cancelled run still frees the link.
		_ = r.Store.ReleaseLease(context.WithoutCancel(ctx), l.ID, holder)
	}()
	// Renew the lease while the run lasts, so a long sync keeps it and a
	// dead process loses it after ttl.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				if ok, err := r.Store.TakeLease(runCtx, l.ID, holder, ttl); err != nil || !ok {
					r.log().Warn("peer link lease lost", "peer", p.Name, "link", l.ID, "err", err)
					cancel()
					return
				}
			}
		}
	}()
	start := r.now()
	var synced int64
	switch l.Direction {
	case store.LinkPull:
		res.Pull, res.Back, err = r.pull(runCtx, p, l)
		synced = int64(res.Pull.Added)
	case store.LinkPush:
		res.Push, err = r.push(runCtx, p, l)
		synced = int64(res.Push.Succeeded)
	default:
		err = fmt.Errorf("link %s: unknown direction %q", l.ID, l.Direction)
	}
	cancel()
	wg.Wait()
	res.Err = err
	st := store.LinkStatus{At: r.now().UTC(), Synced: synced, LagObjects: res.Pull.Behind}
	if l.Direction == store.LinkPush {
		// Counted after the run: what is left, and what arrived meanwhile.
		if st.LagObjects, err = PushLag(context.WithoutCancel(ctx), r.Store, p, l); err != nil {
			st.LagObjects = LagUnknown
		}
		err = res.Err
	}
	outcome := "ok"
	if err != nil {
		st.Err, outcome = err.Error(), "error"
		if !l.LastSuccess.IsZero() {
			st.Lag = st.At.Sub(l.LastSuccess)
		}
	}
	if serr := r.Store.SetLinkStatus(context.WithoutCancel(ctx), l.ID, st); serr != nil && res.Err == nil {
		res.Err = serr
	}
	if m := r.Metrics; m != nil {
		m.runs.WithLabelValues(p.Name, l.ID, outcome).Inc()
		m.objects.WithLabelValues(p.Name, l.ID, "added").Add(float64(res.Pull.Added))
		m.objects.WithLabelValues(p.Name, l.ID, "duplicate").Add(float64(res.Pull.Duplicates))
		m.objects.WithLabelValues(p.Name, l.ID, "refused").Add(float64(res.Pull.Refused + res.Push.Failed))
		m.objects.WithLabelValues(p.Name, l.ID, "sent").Add(float64(res.Push.Sent + res.Back.Sent))
		m.objects.WithLabelValues(p.Name, l.ID, "deleted").Add(float64(res.Pull.Deleted + res.Push.Deleted))
		m.resyncs.WithLabelValues(p.Name, l.ID).Add(float64(res.Pull.Resyncs))
		m.lag.WithLabelValues(p.Name, l.ID).Set(st.Lag.Seconds())
		if err == nil {
			m.lastOK.WithLabelValues(p.Name, l.ID).Set(float64(st.At.Unix()))
		}
		if st.LagObjects >= 0 {
			m.lagObj.WithLabelValues(p.Name, l.ID).Set(float64(st.LagObjects))
		} else {
			m.lagObj.DeleteLabelValues(p.Name, l.ID)
		}
	}
	log := r.log().With("peer", p.Name, "link", l.ID, "direction", l.Direction, "took", r.now().Sub(start).Round(time.Millisecond))
	if err != nil {
		log.Error("peer link run failed", "err", err)
	} else {
		log.Info("peer link run", "added", res.Pull.Added, "duplicates", res.Pull.Duplicates, "deleted", res.Pull.Deleted+res.Push.Deleted, "resyncs", res.Pull.Resyncs, "refused", res.Pull.Refused+res.Push.Failed, "sent", res.Push.Sent, "sent_back", res.Back.Sent)
	}
	return res
}

// pull brings the remote collection into the local one: by the remote's
// change feed (deletes and revocations included) when it is a Mitra
// server, else by added_after polling (feed.go).
func (r *Runner) pull(ctx context.Context, p *store.Peer, l *store.Link) (PullStats, BackStats, error) {
	col, err := r.Store.GetCollection(ctx, l.Local)
	if err != nil {
		return PullStats{Behind: LagUnknown}, BackStats{}, err
	}
	cl, err := r.client(ctx, p, l.Remote)
	if err != nil {
		return PullStats{Behind: LagUnknown}, BackStats{}, err
	}
	pr, err := r.principal(ctx, p, access.RoleRelay)
	if err != nil {
		return PullStats{Behind: LagUnknown}, BackStats{}, err
	}
	pl := &Puller{Client: cl, Store: r.Store, Check: r.Check, Principal: pr, Collection: col, Key: CursorKeyOf(l.ID),
		Label: "peer:" + p.Name, Link: l, Now: r.Now}
	st, err := r.pullLink(ctx, pl, r.Store)
	if err != nil {
		return st, BackStats{}, err
	}
	// Sightings and opinions of the peer's objects go back to it
	// (backflow.go), on this link's schedule.
	back, err := r.sendBack(ctx, pl, p)
	return st, back, err
}

// pushPosition is a push link's stored position: the date_added of the
// last local object whose envelope the remote completed.
type pushPosition struct {
	After time.Time `json:"after"`
}

// push sends what the peer's organisation may read of the local
// collection (access.Decide, as over TAXII), leaving out what came from
// the peer itself (no ping-pong), and the deletions of such versions
// (pushDeletes). The position advances, in the store, only after the
// remote status of a page completed: a crash resends at most one page,
// which the remote takes as duplicates.
func (r *Runner) push(ctx context.Context, p *store.Peer, l *store.Link) (PushStats, error) {
	var stats PushStats
	col, err := r.Store.GetCollection(ctx, l.Local)
	if err != nil {
		return stats, err
	}
	pr, err := r.principal(ctx, p, access.RoleReadOnly)
	if err != nil {
		return stats, err
	}
	if read, _ := access.CollectionAccess(pr, col); !read {
		return stats, fmt.Errorf("link %s: organisation %s may not read collection %s", l.ID, p.Organisation, col.ID)
	}
	cl, err := r.client(ctx, p, l.Remote)
	if err != nil {
		return stats, err
	}
	key := CursorKeyOf(l.ID)
	var pos pushPosition
	err = r.Store.Update(ctx, col.ID, func(ctx context.Context, tx store.Tx) error {
		b, err := tx.Cursor(ctx, key)
		if err != nil || len(b) == 0 {
			return err
		}
		return json.Unmarshal(b, &pos)
	})
	if err != nil {
		return stats, fmt.Errorf("link %s: read push position: %w", l.ID, err)
	}
	anonymous, err := anonymousOrganisations(ctx, r.Store)
	if err != nil {
		return stats, err
	}
	fb, err := newFeedback(ctx, r.Store, col.ID)
	if err != nil {
		return stats, err
	}
	// What the peer receives: what its organisation may read, not what it
	// sent, no exercise data.
	sends := func(e *store.Entry) bool {
		return e.Submitter != p.Organisation && !stix.IsExercise(e.Raw) && access.Decide(pr, col, e).Allowed
	}
	// Deletions first (pushdel.go): a version deleted since the last run
	// is then not sent below (it is gone), and one sent earlier is deleted
	// at the peer, feedback under the id the peer knows it by.
	if stats.Deleted, err = r.pushDeletes(ctx, cl, p, l, col, pr, fb, sends, !pos.After.IsZero()); err != nil {
		return stats, err
	}
	var maxBytes int64
	if root, err := cl.APIRoot(ctx); err == nil {
		maxBytes = root.MaxContentLength
	}
	for {
		// Every version, not only the latest: a version added before the
		// push reached it would otherwise never cross.
		page, err := r.Store.QueryObjects(ctx, col.ID, store.Query{AddedAfter: pos.After, Limit: 500, WithBody: true,
			Versions: store.VersionFilter{All: true}, Visible: sends})
		if err != nil {
			return stats, err
		}
		if len(page.Entries) == 0 {
			return stats, nil
		}
		raws, ids, err := fb.outgoingTo(ctx, pr, p.Name, page.Entries, anonymous)
		if err != nil {
			return stats, err
		}
		var remoteFailures []store.StatusDetail
		for len(raws) > 0 {
			n := fit(raws, maxBytes)
			st, err := cl.Push(ctx, raws[:n])
			if err != nil {
				return stats, fmt.Errorf("push %d objects: %w", n, err)
			}
			stats.Envelopes++
			stats.Sent += n
			stats.Succeeded += max(st.SuccessCount, len(st.Successes))
			stats.Failed += max(st.FailureCount, len(st.Failures))
			remoteFailures = append(remoteFailures, st.Failures...)
			if err := r.Store.AppendAudit(ctx, store.AuditRecord{Principal: "peer:" + p.Name, Organisation: pr.Organisation, Action: "objects.push",
				Path: "peer push " + cl.ObjectsURL, Collection: col.ID, Objects: ids[:n],
				Detail: fmt.Sprintf("link %s: status %s: %d succeeded, %d failed", l.ID, st.ID, st.SuccessCount, st.FailureCount)}); err != nil {
				return stats, err
			}
			raws, ids = raws[n:], ids[n:]
		}
		next := pushPosition{After: page.Entries[len(page.Entries)-1].DateAdded}
		b, _ := json.Marshal(next)
		at := r.now().UTC()
		err = r.Store.Update(ctx, col.ID, func(ctx context.Context, tx store.Tx) error {
			if ftx, ok := tx.(store.FederationTx); ok && len(remoteFailures) > 0 {
				rej := make([]store.Rejection, len(remoteFailures))
				for i, f := range remoteFailures {
					rej[i] = store.Rejection{Link: l.ID, Peer: p.Name, Kind: "remote", ObjectID: f.ID, Version: f.Version, Reason: f.Message, At: at}
				}
				if err := ftx.RecordRejections(ctx, rej); err != nil {
					return err
				}
			}
			return tx.SetCursor(ctx, key, b)
		})
		if err != nil {
			return stats, fmt.Errorf("link %s: store push position: %w", l.ID, err)
		}
		for _, f := range remoteFailures {
			if len(stats.Failures) < 20 {
				stats.Failures = append(stats.Failures, f)
			}
		}
		pos = next
		if !page.More {
			return stats, nil
		}
	}
}

// Serve runs every link of every peer on its interval until ctx ends,
// then waits for the runs in progress. It looks at the peers again every
// Rescan, so that peers and links added or removed (mitra peer, the admin
// API) are started or stopped without a restart. Peers whose credentials
// cannot be opened (no key, wrong key) are reported once and left out;
// the server runs without them.
func (r *Runner) Serve(ctx context.Context) error {
	rescan := r.Rescan
	if rescan <= 0 {
		rescan = 30 * time.Second
	}
	type running struct {
		cancel func()
		peer   *store.Peer
	}
	links := map[string]running{}
	reported := map[string]bool{}
	var wg sync.WaitGroup
	defer func() {
		for _, l := range links {
			l.cancel()
		}
		wg.Wait()
	}()
	for {
		seen := map[string]bool{}
		peers, err := r.Store.ListPeers(ctx)
		if err != nil && ctx.Err() == nil {
			r.log().Error("federation: list peers", "err", err)
		}
		for _, p := range peers {
			if _, err := r.Credentials(p); err != nil {
				if !reported[p.Name] {
					r.log().Error("peer left out: its credentials cannot be opened", "peer", p.Name, "err", err)
					reported[p.Name] = true
				}
				continue
			}
			ls, err := r.Store.Links(ctx, p.Name)
			if err != nil {
				r.log().Error("federation: list links", "peer", p.Name, "err", err)
				continue
			}
			for _, l := range ls {
				seen[l.ID] = true
				if cur, ok := links[l.ID]; ok && cur.peer.URL == p.URL && string(cur.peer.Secret) == string(p.Secret) {
					continue
				} else if ok {
					cur.cancel() // the peer changed: restart its link
				}
				lctx, cancel := context.WithCancel(ctx)
				links[l.ID] = running{cancel: cancel, peer: p}
				wg.Add(1)
				go func() {
					defer wg.Done()
					r.loop(lctx, p, l)
				}()
			}
		}
		keep := r.RejectionRetention
		if keep <= 0 {
			keep = 90 * 24 * time.Hour
		}
		if _, err := r.Store.PruneRejections(ctx, r.now().Add(-keep)); err != nil && ctx.Err() == nil {
			r.log().Error("federation: prune rejections", "err", err)
		}
		for id, l := range links {
			if !seen[id] {
				l.cancel()
				delete(links, id)
			}
		}
		t := time.NewTimer(rescan)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// continuousPause is the pause between runs of a continuous link.
const continuousPause = 2 * time.Second

func (r *Runner) loop(ctx context.Context, p *store.Peer, l *store.Link) {
	every := l.Interval
	if every <= 0 {
		every = continuousPause
	}
	for {
		res := r.RunLink(ctx, p, l)
		if res.Err == nil {
			l.LastSuccess = r.now()
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
