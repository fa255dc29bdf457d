package hashmatch

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/contenthash"
	"github.com/mitra-cert/mitra/internal/detect"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
)

// Store is what the service reads: the detector's indicator store (the
// collections, their objects and change logs) and the organisations, for
// anonymity.
type Store interface {
	detect.IndicatorStore
	ListOrganisations(ctx context.Context) ([]*store.Organisation, error)
}

// Defaults of the thresholds.
const (
	DefaultPDQThreshold = 31 // Hamming distance, as Meta's PDQ reference recommends
	DefaultMinQuality   = 50 // PDQ quality below which hashes are too uniform to match
	DefaultTLSHDistance = 40
)

// Config configures a Service.
type Config struct {
	Store  Store
	Logger *slog.Logger
	Now    func() time.Time
	// Defaults for queries that give none.
	PDQThreshold, MinQuality, TLSHDistance int
}

// Service holds every shared content hash of every collection, with the
// metadata access.Decide needs, in a PDQ multi-index-hashing index and
// exact maps, and follows the collections' change logs. It answers each
// caller with only what the caller may read.
type Service struct {
	cfg Config
	log *slog.Logger

	// polling serialises Sync and Poll: two at once would both load a new
	// collection, one dropping what the other loaded. It guards changes.
	polling sync.Mutex
	changes store.Follower

	mu      sync.RWMutex
	colls   map[string]*store.Collection
	recs    map[recKey]*record
	pdq     *contenthash.Index
	slots   []*record                      // by PDQ index slot
	exact   map[string]map[recKey]*record  // md5 or sha256 hex -> records
	tlsh    map[recKey]*record             // records with a TLSH hash
	ops     map[string]map[recKey]*opinion // indicator id -> opinions on it
	opByKey map[recKey]*opinion
	anon    map[string]bool // organisations that asked to stay anonymous
}

// recKey is one object in one collection.
type recKey struct{ id, coll string }

// record is the latest version of a hash indicator in one collection.
type record struct {
	key        recKey
	entry      store.Entry // metadata only: Submitter, TLP, Recipients
	validFrom  time.Time
	validUntil time.Time
	labels     []string
	createdBy  string
	name       string
	hashes     Hashes
	pdq        contenthash.PDQ
	quality    int // -1: unknown
	slot       int // -1: no PDQ
	tlsh       contenthash.TLSH
	hasTLSH    bool
}

type opinion struct {
	key   recKey
	entry store.Entry
	agree bool
	refs  []string
}

// New returns a service; call Sync (or Run) before it answers.
func New(cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PDQThreshold <= 0 {
		cfg.PDQThreshold = DefaultPDQThreshold
	}
	if cfg.MinQuality <= 0 {
		cfg.MinQuality = DefaultMinQuality
	}
	if cfg.TLSHDistance <= 0 {
		cfg.TLSHDistance = DefaultTLSHDistance
	}
	s := &Service{cfg: cfg, log: cfg.Logger}
	s.changes = store.Follower{
		Store: cfg.Store,
		Wants: func(id string) bool {
			return strings.HasPrefix(id, "indicator--") || strings.HasPrefix(id, "opinion--")
		},
		Load: s.load,
		Drop: func(cid string) {
			// What a failed earlier load left is dropped first.
			s.mu.Lock()
			s.dropRecords(cid)
			s.mu.Unlock()
		},
	}
	s.reset()
	return s
}

// reset empties the service. Caller holds s.mu, and s.polling once the
// service is shared.
func (s *Service) reset() {
	s.changes.Reset()
	s.colls, s.recs = map[string]*store.Collection{}, map[recKey]*record{}
	s.pdq, s.slots = contenthash.NewIndex(), nil
	s.exact, s.tlsh = map[string]map[recKey]*record{}, map[recKey]*record{}
	s.ops, s.opByKey, s.anon = map[string]map[recKey]*opinion{}, map[recKey]*opinion{}, map[string]bool{}
}

// Len is the number of hash indicators held (per collection).
func (s *Service) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.recs)
}

// Run loads the hashes, then follows the change logs every interval until
// ctx ends.
// A failed load or poll is logged and tried again at the next tick.
func (s *Service) Run(ctx context.Context, interval time.Duration) error {
	err := s.Sync(ctx)
	if err != nil && ctx.Err() == nil {
		s.log.Warn("hash match: load", "err", err)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if err = s.Poll(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("hash match: poll", "err", err)
			}
		}
	}
}

// Sync reloads everything from the store.
func (s *Service) Sync(ctx context.Context) error {
	s.polling.Lock()
	defer s.polling.Unlock()
	s.mu.Lock()
	s.reset()
	s.mu.Unlock()
	return s.poll(ctx)
}

// Poll brings the service in line with the store: new and removed
// collections, and what each collection's change log recorded since the
// last poll (new, revoked and deleted indicators, opinions).
func (s *Service) Poll(ctx context.Context) error {
	s.polling.Lock()
	defer s.polling.Unlock()
	return s.poll(ctx)
}

func (s *Service) poll(ctx context.Context) error {
	orgs, err := s.cfg.Store.ListOrganisations(ctx)
	if err != nil {
		return fmt.Errorf("organisations: %w", err)
	}
	anon := map[string]bool{}
	for _, o := range orgs {
		if o.AnonymiseSightings {
			anon[o.ID] = true
		}
	}
	all, err := s.cfg.Store.ListCollections(ctx)
	if err != nil {
		return fmt.Errorf("collections: %w", err)
	}
	s.mu.Lock()
	s.anon = anon
	current := map[string]bool{}
	ids := make([]string, 0, len(all))
	for _, c := range all {
		current[c.ID] = true
		ids = append(ids, c.ID)
		s.colls[c.ID] = c // grants may have changed
	}
	for id := range s.colls {
		if !current[id] {
			s.dropCollection(id)
		}
	}
	s.mu.Unlock()
	return s.changes.Poll(ctx, ids)
}

// load reads the latest versions of the indicators and opinions of a
// collection, all (ids nil) or those named, and replaces what the service
// held for them: an id no longer found (deleted) is dropped.
func (s *Service) load(ctx context.Context, cid string, ids []string) error {
	q := store.Query{Types: []string{"indicator", "opinion"}, IDs: ids, WithBody: true, Limit: 1000}
	seen := map[string]bool{}
	for {
		page, err := s.cfg.Store.QueryObjects(ctx, cid, q)
		if err != nil {
			return fmt.Errorf("collection %s: %w", cid, err)
		}
		s.mu.Lock()
		for i := range page.Entries {
			e := &page.Entries[i]
			seen[e.ID] = true
			s.put(cid, e)
		}
		s.mu.Unlock()
		if !page.More || len(page.Entries) == 0 {
			break
		}
		q.AddedAfter = page.Entries[len(page.Entries)-1].DateAdded
	}
	if ids != nil {
		s.mu.Lock()
		for _, id := range ids {
			if !seen[id] {
				s.drop(recKey{id, cid})
			}
		}
		s.mu.Unlock()
	}
	return nil
}

// indicatorDoc is the part of an indicator the service reads.
type indicatorDoc struct {
	Name         string   `json:"name"`
	Pattern      string   `json:"pattern"`
	PatternType  string   `json:"pattern_type"`
	ValidFrom    string   `json:"valid_from"`
	ValidUntil   string   `json:"valid_until"`
	Revoked      bool     `json:"revoked"`
	Labels       []string `json:"labels"`
	CreatedByRef string   `json:"created_by_ref"`
	Quality      *int     `json:"x_mitra_pdq_quality"`
	// Opinion fields (§4.11).
	Opinion    string   `json:"opinion"`
	ObjectRefs []string `json:"object_refs"`
}

// put replaces what is held for e in collection cid. Caller holds s.mu.
func (s *Service) put(cid string, e *store.Entry) {
	k := recKey{e.ID, cid}
	s.drop(k)
	var d indicatorDoc
	if err := json.Unmarshal(e.Raw, &d); err != nil {
		s.log.Warn("hash match: object skipped", "id", e.ID, "collection", cid, "err", err)
		return
	}
	meta := store.Entry{ID: e.ID, Type: e.Type, Submitter: e.Submitter, TLP: e.TLP, Recipients: e.Recipients}
	if e.Type == "opinion" {
		if d.Revoked {
			return
		}
		op := &opinion{key: k, entry: meta, refs: d.ObjectRefs}
		switch d.Opinion {
		case "agree", "strongly-agree":
			op.agree = true
		case "disagree", "strongly-disagree":
		default:
			return // neutral: neither verdict
		}
		s.opByKey[k] = op
		for _, ref := range d.ObjectRefs {
			if s.ops[ref] == nil {
				s.ops[ref] = map[recKey]*opinion{}
			}
			s.ops[ref][k] = op
		}
		return
	}
	// A revoked indicator (§3.6) stops matching: the owner's way to
	// deactivate a disputed hash.
	if d.Revoked || d.PatternType != "stix" {
		return
	}
	h := hashesOfPattern(d.Pattern)
	r := &record{key: k, entry: meta, labels: d.Labels, createdBy: d.CreatedByRef, name: d.Name, hashes: h, quality: -1, slot: -1}
	if d.Quality != nil {
		r.quality = *d.Quality
	}
	if d.ValidFrom != "" {
		r.validFrom, _ = stix.ParseTimestamp(d.ValidFrom)
	}
	if d.ValidUntil != "" {
		r.validUntil, _ = stix.ParseTimestamp(d.ValidUntil)
	}
	held := false
	if h.PDQ != "" {
		if p, err := contenthash.ParsePDQ(h.PDQ); err == nil {
			slot, err := s.pdq.Add(p)
			if err != nil {
				s.log.Warn("hash match: PDQ index", "id", e.ID, "err", err)
			} else {
				r.pdq, r.slot = p, int(slot)
				for len(s.slots) <= r.slot {
					s.slots = append(s.slots, nil)
				}
				s.slots[r.slot] = r
				held = true
			}
		}
	}
	if h.TLSH != "" {
		if t, err := contenthash.ParseTLSH(h.TLSH); err == nil {
			r.tlsh, r.hasTLSH = t, true
			s.tlsh[k] = r
			held = true
		}
	}
	for _, x := range []string{h.MD5, h.SHA256} {
		if x != "" {
			if s.exact[x] == nil {
				s.exact[x] = map[recKey]*record{}
			}
			s.exact[x][k] = r
			held = true
		}
	}
	if held {
		s.recs[k] = r
	}
}

// drop forgets object k. Caller holds s.mu.
func (s *Service) drop(k recKey) {
	if op := s.opByKey[k]; op != nil {
		delete(s.opByKey, k)
		for _, ref := range op.refs {
			delete(s.ops[ref], k)
			if len(s.ops[ref]) == 0 {
				delete(s.ops, ref)
			}
		}
	}
	r := s.recs[k]
	if r == nil {
		return
	}
	delete(s.recs, k)
	if r.slot >= 0 {
		s.pdq.Remove(uint32(r.slot))
		s.slots[r.slot] = nil
	}
	delete(s.tlsh, k)
	for _, x := range []string{r.hashes.MD5, r.hashes.SHA256} {
		if m := s.exact[x]; m != nil {
			delete(m, k)
			if len(m) == 0 {
				delete(s.exact, x)
			}
		}
	}
}

func (s *Service) dropCollection(cid string) {
	s.dropRecords(cid)
	delete(s.colls, cid)
	s.changes.Forget(cid)
}

// dropRecords forgets what collection cid held. Caller holds s.mu.
func (s *Service) dropRecords(cid string) {
	for k := range s.recs {
		if k.coll == cid {
			s.drop(k)
		}
	}
	for k := range s.opByKey {
		if k.coll == cid {
			s.drop(k)
		}
	}
}

// Query is one match request.
type Query struct {
	Hashes Hashes
	// Thresholds; zero takes the service's defaults.
	PDQThreshold, MinQuality, TLSHDistance int
}

// Match is one shared indicator that matches.
type Match struct {
	Indicator string `json:"indicator"`
	Name      string `json:"name,omitempty"`
	// Collections the caller reads it in.
	Collections []string `json:"collections"`
	Labels      []string `json:"labels,omitempty"`
	// Contributor is the indicator's created_by_ref (else the submitting
	// organisation), or access.AnonymousIdentity for an organisation that
	// asked to stay anonymous.
	Contributor string `json:"contributor"`
	// Algorithm is the closest kind of match: "sha256", "md5", "pdq", "tlsh".
	Algorithm string `json:"algorithm"`
	// Distance is the PDQ Hamming or TLSH distance (0 for exact matches).
	Distance int `json:"distance"`
	// Verdicts are the opinions on the indicator the caller may read.
	Verdicts Verdicts `json:"verdicts"`
}

// Verdicts count partners' opinions.
type Verdicts struct {
	TruePositive  int `json:"true_positive"`
	FalsePositive int `json:"false_positive"`
}

// Result answers a query. It says nothing of what the caller may not read.
type Result struct {
	Query   Hashes  `json:"query"`
	Matches []Match `json:"matches"`
	// Notes explain hashes of the query that were not searched.
	Notes []string `json:"notes,omitempty"`
}

// Match returns every shared hash within the thresholds that p may read.
func (s *Service) Match(p *access.Principal, q Query) (*Result, error) {
	h := q.Hashes
	if err := h.Normalise(); err != nil {
		return nil, err
	}
	pdqT, minQ, tlshD := cmpOr(q.PDQThreshold, s.cfg.PDQThreshold), cmpOr(q.MinQuality, s.cfg.MinQuality), cmpOr(q.TLSHDistance, s.cfg.TLSHDistance)
	if pdqT > 128 || tlshD > 2000 || minQ > 100 {
		return nil, fmt.Errorf("thresholds out of range (PDQ distance ≤ 128, TLSH distance ≤ 2000, quality ≤ 100): %w", ErrInvalid)
	}
	now := s.cfg.Now()
	res := &Result{Query: h, Matches: []Match{}}
	s.mu.RLock()
	defer s.mu.RUnlock()
	// visible decides, per (indicator, collection), with p's principal.
	visible := func(r *record) bool {
		if r == nil || now.Before(r.validFrom) || (!r.validUntil.IsZero() && !now.Before(r.validUntil)) {
			return false
		}
		c := s.colls[r.key.coll]
		return c != nil && access.Decide(p, c, &r.entry).Allowed
	}
	byID := map[string]*Match{}
	hit := func(r *record, alg string, dist int) {
		m := byID[r.key.id]
		if m == nil {
			m = &Match{Indicator: r.key.id, Name: r.name, Labels: r.labels, Algorithm: alg, Distance: dist,
				Contributor: s.contributor(p, r)}
			byID[r.key.id] = m
		} else if rank(alg, dist) < rank(m.Algorithm, m.Distance) {
			m.Algorithm, m.Distance = alg, dist
		}
		if !slices.Contains(m.Collections, r.key.coll) {
			m.Collections = append(m.Collections, r.key.coll)
		}
	}
	for alg, x := range map[string]string{"sha256": h.SHA256, "md5": h.MD5} {
		if x == "" {
			continue
		}
		for _, r := range s.exact[x] {
			if visible(r) && (alg == "sha256" && r.hashes.SHA256 == x || alg == "md5" && r.hashes.MD5 == x) {
				hit(r, alg, 0)
			}
		}
	}
	if h.PDQ != "" {
		qp, _ := contenthash.ParsePDQ(h.PDQ)
		if h.PDQQuality != nil && *h.PDQQuality < minQ {
			res.Notes = append(res.Notes, fmt.Sprintf("pdq not searched: quality %d is below the minimum %d", *h.PDQQuality, minQ))
		} else {
			for _, m := range s.pdq.Query(qp, pdqT, func(id uint32) bool {
				r := s.slots[id]
				return r != nil && (r.quality < 0 || r.quality >= minQ) && visible(r)
			}) {
				hit(s.slots[m.ID], "pdq", m.Distance)
			}
		}
	}
	if h.TLSH != "" {
		qt, _ := contenthash.ParseTLSH(h.TLSH)
		// TLSH distance is not a metric an index can prune by: a scan of
		// the TLSH hashes (far fewer than PDQ in hash sharing).
		for _, r := range s.tlsh {
			if d := qt.Distance(r.tlsh); d <= tlshD && visible(r) {
				hit(r, "tlsh", d)
			}
		}
	}
	for _, m := range byID {
		m.Verdicts = s.verdicts(p, m.Indicator)
		slices.Sort(m.Collections)
		res.Matches = append(res.Matches, *m)
	}
	slices.SortFunc(res.Matches, func(a, b Match) int {
		if d := rank(a.Algorithm, a.Distance) - rank(b.Algorithm, b.Distance); d != 0 {
			return d
		}
		return strings.Compare(a.Indicator, b.Indicator)
	})
	return res, nil
}

// rank orders matches: exact first, then by distance.
func rank(alg string, dist int) int {
	// Exact matches first, SHA-256 before MD5 (the stronger digest), so
	// that a file matching both is always reported the same way.
	switch alg {
	case "sha256":
		return 0
	case "md5":
		return 1
	case "pdq":
		return 2 + dist
	}
	return 1000 + dist
}

func cmpOr(a, b int) int {
	if a > 0 {
		return a
	}
	return b
}

// contributor names who shared r as policy allows p to see.
func (s *Service) contributor(p *access.Principal, r *record) string {
	who := r.createdBy
	if who == "" {
		who = r.entry.Submitter
	}
	if (s.anon[who] || s.anon[r.entry.Submitter]) && who != p.Organisation {
		return access.AnonymousIdentity
	}
	return who
}

// verdicts counts the opinions on indicator id that p may read (each once,
// whatever the number of collections it is in).
func (s *Service) verdicts(p *access.Principal, id string) Verdicts {
	var v Verdicts
	counted := map[string]bool{}
	for k, op := range s.ops[id] {
		if counted[k.id] {
			continue
		}
		c := s.colls[k.coll]
		if c == nil || !access.Decide(p, c, &op.entry).Allowed {
			continue
		}
		counted[k.id] = true
		if op.agree {
			v.TruePositive++
		} else {
			v.FalsePositive++
		}
	}
	return v
}
