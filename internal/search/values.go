package search

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gaissmai/bart"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/pattern"
	"github.com/mitra-cert/mitra/internal/store"
)

// The value index answers "is this value known?" in memory: exact values
// (IPs, domains, URLs, e-mail addresses, hashes) in a map, IP ranges of
// indicator patterns in a CIDR trie (bart), each with what access.Decide
// needs. Like the hash-match index it is loaded from the store at start
// and follows each collection's change log: it is rebuilt from the store
// after a restart, so nothing committed is missing, and Lookup refuses to
// answer (ErrNotReady) until the first load is done rather than answer
// from a partial index.

// valueTypes are the types whose values the index holds.
var valueTypes = []string{"indicator", "ipv4-addr", "ipv6-addr", "domain-name", "url", "email-addr", "mac-addr", "file"}

// key is one object in one collection.
type key struct{ id, coll string }

// vrec is the latest version of an indicator or observable in one
// collection, with the values it names.
type vrec struct {
	key    key
	entry  store.Entry // metadata only
	name   string
	values []string       // normalised exact values
	nets   []netip.Prefix // IP ranges (indicators)
}

type valueIndex struct {
	st  Store
	log *slog.Logger

	polling sync.Mutex // serialises Sync and Poll; guards changes
	changes store.Follower

	mu    sync.RWMutex
	ready bool
	colls map[string]*store.Collection
	recs  map[key]*vrec
	exact map[string]map[key]*vrec
	cidr  *bart.Table[map[key]*vrec]
}

func newValueIndex(st Store, log *slog.Logger) *valueIndex {
	x := &valueIndex{st: st, log: log}
	x.changes = store.Follower{
		Store: st,
		Wants: func(id string) bool {
			typ, _, _ := strings.Cut(id, "--")
			return slices.Contains(valueTypes, typ)
		},
		Load: x.load,
		Drop: func(cid string) {
			x.mu.Lock()
			x.dropRecords(cid)
			x.mu.Unlock()
		},
	}
	x.reset()
	return x
}

// reset empties the index. Caller holds x.mu, and x.polling once the
// index is shared.
func (x *valueIndex) reset() {
	x.changes.Reset()
	x.colls, x.recs = map[string]*store.Collection{}, map[key]*vrec{}
	x.exact, x.cidr = map[string]map[key]*vrec{}, new(bart.Table[map[key]*vrec])
}

// DefaultPoll is how often the server's value index follows the change
// logs: a value added is found by Lookup within about this long.
const DefaultPoll = time.Second

// Run loads the value index, then follows the change logs every interval
// until ctx ends. Failures are logged and tried again at the next tick.
func (s *Service) Run(ctx context.Context, interval time.Duration) error {
	if err := s.Sync(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("search: load the value index", "err", err)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if err := s.Poll(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("search: follow the change logs", "err", err)
			}
		}
	}
}

// Sync (re)loads the value index from the store.
func (s *Service) Sync(ctx context.Context) error {
	x := s.values
	x.polling.Lock()
	defer x.polling.Unlock()
	x.mu.Lock()
	x.reset()
	x.ready = false
	x.mu.Unlock()
	return x.poll(ctx)
}

// Poll applies what the change logs recorded since the last poll (and
// loads new collections), so that the value index is up to date with
// what the store had committed when Poll started.
func (s *Service) Poll(ctx context.Context) error {
	x := s.values
	x.polling.Lock()
	defer x.polling.Unlock()
	return x.poll(ctx)
}

// Values is the number of (object, collection) records the value index
// holds.
func (s *Service) Values() int {
	s.values.mu.RLock()
	defer s.values.mu.RUnlock()
	return len(s.values.recs)
}

func (x *valueIndex) poll(ctx context.Context) error {
	all, err := x.st.ListCollections(ctx)
	if err != nil {
		return fmt.Errorf("collections: %w", err)
	}
	x.mu.Lock()
	current := map[string]bool{}
	ids := make([]string, 0, len(all))
	for _, c := range all {
		current[c.ID] = true
		ids = append(ids, c.ID)
		x.colls[c.ID] = c
	}
	for id := range x.colls {
		if !current[id] {
			x.dropRecords(id)
			delete(x.colls, id)
			x.changes.Forget(id)
		}
	}
	x.mu.Unlock()
	if err := x.changes.Poll(ctx, ids); err != nil {
		return err
	}
	x.mu.Lock()
	x.ready = true
	x.mu.Unlock()
	return nil
}

// load reads the latest versions of the value-bearing objects of a
// collection, all (ids nil) or those named, and replaces what the index
// held for them; an id no longer found (deleted) is dropped.
func (x *valueIndex) load(ctx context.Context, cid string, ids []string) error {
	q := store.Query{Types: valueTypes, IDs: ids, WithBody: true, Limit: 2000}
	seen := map[string]bool{}
	for {
		page, err := x.st.QueryObjects(ctx, cid, q)
		if err != nil {
			return fmt.Errorf("collection %s: %w", cid, err)
		}
		recs := make([]*vrec, 0, len(page.Entries))
		for i := range page.Entries {
			e := &page.Entries[i]
			seen[e.ID] = true
			recs = append(recs, recordOf(cid, e))
		}
		x.mu.Lock()
		for i, r := range recs {
			x.drop(key{page.Entries[i].ID, cid})
			if r != nil {
				x.put(r)
			}
		}
		x.mu.Unlock()
		if !page.More || len(page.Entries) == 0 {
			break
		}
		q.AddedAfter = page.Entries[len(page.Entries)-1].DateAdded
	}
	if ids != nil {
		x.mu.Lock()
		for _, id := range ids {
			if !seen[id] {
				x.drop(key{id, cid})
			}
		}
		x.mu.Unlock()
	}
	return nil
}

// valueDoc is the part of an indicator or observable the index reads.
type valueDoc struct {
	Name        string            `json:"name"`
	Pattern     string            `json:"pattern"`
	PatternType string            `json:"pattern_type"`
	Revoked     bool              `json:"revoked"`
	Value       string            `json:"value"`
	Hashes      map[string]string `json:"hashes"`
}

// recordOf reads what the index keeps of e; nil when it names no value.
func recordOf(cid string, e *store.Entry) *vrec {
	var d valueDoc
	if json.Unmarshal(e.Raw, &d) != nil || d.Revoked {
		return nil
	}
	r := &vrec{key: key{e.ID, cid}, name: d.Name,
		entry: store.Entry{ID: e.ID, Type: e.Type, Submitter: e.Submitter, TLP: e.TLP, Recipients: e.Recipients}}
	switch e.Type {
	case "indicator":
		if d.PatternType != "" && d.PatternType != "stix" {
			return nil
		}
		p, err := pattern.Parse(d.Pattern)
		if err != nil {
			return nil
		}
		walkObs(p.Root, func(c *pattern.Comparison) { r.addComparison(c) })
		if r.name == "" {
			r.name = d.Pattern
		}
	case "file":
		for _, h := range d.Hashes {
			r.add(normalise(h))
		}
		if r.name == "" {
			r.name = d.Name
		}
	default:
		r.add(normalise(d.Value))
		r.name = d.Value
	}
	if len(r.values) == 0 && len(r.nets) == 0 {
		return nil
	}
	return r
}

func (r *vrec) add(v string) {
	if v != "" && !slices.Contains(r.values, v) {
		r.values = append(r.values, v)
	}
}

// addComparison keeps the values a comparison of a pattern asks for: an
// equality (or IN) on an observable's value or a file hash, or an IP range
// (ISSUBSET, or a CIDR given to =).
func (r *vrec) addComparison(c *pattern.Comparison) {
	if c.Negated || c.Path == nil || len(c.Path.Steps) == 0 || c.Path.Steps[0].Kind != pattern.StepProp {
		return
	}
	prop := c.Path.Steps[0].Name
	var ok bool
	switch c.Path.Type {
	case "ipv4-addr", "ipv6-addr":
		ok = prop == "value" && len(c.Path.Steps) == 1
	case "domain-name", "url", "email-addr", "mac-addr":
		ok = prop == "value" && len(c.Path.Steps) == 1
	case "file", "artifact", "x509-certificate":
		ok = prop == "hashes" && len(c.Path.Steps) == 2
	}
	if !ok {
		return
	}
	var lits []pattern.Literal
	switch c.Op {
	case pattern.OpEq, pattern.OpIsSubset:
		lits = []pattern.Literal{c.Value}
	case pattern.OpIn:
		lits = c.Set
	default:
		return
	}
	for _, l := range lits {
		if l.Kind != pattern.LitString {
			continue
		}
		if c.Path.Type == "ipv4-addr" || c.Path.Type == "ipv6-addr" {
			if pfx, err := netip.ParsePrefix(l.Str); err == nil {
				pfx = pfx.Masked()
				if pfx.IsSingleIP() {
					r.add(pfx.Addr().String())
				} else if !slices.Contains(r.nets, pfx) {
					r.nets = append(r.nets, pfx)
				}
				continue
			}
		}
		r.add(normalise(l.Str))
	}
}

// walkObs calls fn on every comparison of an observation expression.
func walkObs(e pattern.ObservationExpr, fn func(*pattern.Comparison)) {
	switch x := e.(type) {
	case *pattern.ObsLeaf:
		walkComp(x.Expr, fn)
	case *pattern.ObsBinary:
		walkObs(x.Left, fn)
		walkObs(x.Right, fn)
	case *pattern.ObsWithin:
		walkObs(x.X, fn)
	case *pattern.ObsRepeats:
		walkObs(x.X, fn)
	case *pattern.ObsStartStop:
		walkObs(x.X, fn)
	}
}

func walkComp(e pattern.CompExpr, fn func(*pattern.Comparison)) {
	switch x := e.(type) {
	case *pattern.CompBinary:
		walkComp(x.Left, fn)
		walkComp(x.Right, fn)
	case *pattern.Comparison:
		fn(x)
	}
}

// normalise is the form values are indexed and looked up in: IPs in
// canonical form, hashes, domains and e-mail addresses in lower case
// (a domain without its final dot); URLs as written.
func normalise(v string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return ""
	}
	if a, err := netip.ParseAddr(v); err == nil {
		return a.Unmap().String()
	}
	if pfx, err := netip.ParsePrefix(v); err == nil {
		pfx = pfx.Masked()
		if pfx.IsSingleIP() {
			return pfx.Addr().String()
		}
		return pfx.String()
	}
	if strings.Contains(v, "://") {
		return v
	}
	return strings.TrimSuffix(strings.ToLower(v), ".")
}

// put indexes r. Caller holds x.mu.
func (x *valueIndex) put(r *vrec) {
	x.recs[r.key] = r
	for _, v := range r.values {
		m := x.exact[v]
		if m == nil {
			m = map[key]*vrec{}
			x.exact[v] = m
		}
		m[r.key] = r
	}
	for _, pfx := range r.nets {
		k := r.key
		x.cidr.Modify(pfx, func(m map[key]*vrec, ok bool) (map[key]*vrec, bool) {
			if !ok {
				m = map[key]*vrec{}
			}
			m[k] = r
			return m, false
		})
	}
}

// drop forgets k. Caller holds x.mu.
func (x *valueIndex) drop(k key) {
	r := x.recs[k]
	if r == nil {
		return
	}
	delete(x.recs, k)
	for _, v := range r.values {
		if m := x.exact[v]; m != nil {
			delete(m, k)
			if len(m) == 0 {
				delete(x.exact, v)
			}
		}
	}
	for _, pfx := range r.nets {
		x.cidr.Modify(pfx, func(m map[key]*vrec, ok bool) (map[key]*vrec, bool) {
			if !ok {
				return m, true
			}
			delete(m, k)
			return m, len(m) == 0
		})
	}
}

// dropRecords forgets what collection cid held. Caller holds x.mu.
func (x *valueIndex) dropRecords(cid string) {
	for k := range x.recs {
		if k.coll == cid {
			x.drop(k)
		}
	}
}

// Ref is one object a lookup found, with the collections the caller
// reads it in.
type Ref struct {
	ID          string   `json:"id"`
	Type        string   `json:"type"`
	Name        string   `json:"name,omitempty"`
	Collections []string `json:"collections"`
	// Match says how an indicator or observable matched: "exact", or the
	// CIDR range that contains the value.
	Match string `json:"match,omitempty"`
}

// LookupResult answers one value: what the caller may read that names it.
type LookupResult struct {
	Value string `json:"value"`
	// Known is true when anything was found.
	Known       bool  `json:"known"`
	Indicators  []Ref `json:"indicators"`
	Observables []Ref `json:"observables"`
	// Sightings of those indicators or of observed data holding those
	// observables; Reports (and groupings) that refer to any of them.
	Sightings []Ref `json:"sightings"`
	Reports   []Ref `json:"reports"`
}

// Lookup answers, for each value (an IP, CIDR, domain, URL, e-mail
// address or hash; at most MaxLookupValues), which indicators and
// observables p may read name it (an IP inside an indicator's range
// counts), and which sightings and reports p may read mention those.
func (s *Service) Lookup(ctx context.Context, p *access.Principal, values []string) ([]LookupResult, error) {
	if len(values) > MaxLookupValues {
		return nil, fmt.Errorf("at most %d values per lookup, not %d: %w", MaxLookupValues, len(values), ErrInvalid)
	}
	v, err := s.view(ctx, p)
	if err != nil {
		return nil, err
	}
	x := s.values
	out := make([]LookupResult, len(values))
	// byValue[i] are the matched objects of values[i], by id.
	byValue := make([]map[string]*Ref, len(values))
	x.mu.RLock()
	if !x.ready {
		x.mu.RUnlock()
		return nil, ErrNotReady
	}
	visible := func(r *vrec) bool {
		c := v.colls[r.key.coll]
		return c != nil && access.Decide(p, c, &r.entry).Allowed
	}
	for i, raw := range values {
		out[i] = LookupResult{Value: raw, Indicators: []Ref{}, Observables: []Ref{}, Sightings: []Ref{}, Reports: []Ref{}}
		found := map[string]*Ref{}
		hit := func(r *vrec, how string) {
			if !visible(r) {
				return
			}
			ref := found[r.key.id]
			if ref == nil {
				ref = &Ref{ID: r.key.id, Type: r.entry.Type, Name: r.name, Match: how}
				found[r.key.id] = ref
			}
			if !slices.Contains(ref.Collections, r.key.coll) {
				ref.Collections = append(ref.Collections, r.key.coll)
			}
		}
		n := normalise(raw)
		for _, r := range x.exact[n] {
			hit(r, "exact")
		}
		// An address (or a range) inside an indicator's range.
		var pfx netip.Prefix
		if a, err := netip.ParseAddr(n); err == nil {
			pfx = netip.PrefixFrom(a, a.BitLen())
		} else if p, err := netip.ParsePrefix(n); err == nil {
			pfx = p
		}
		if pfx.IsValid() {
			for net, m := range x.cidr.Supernets(pfx) {
				for _, r := range m {
					hit(r, net.String())
				}
			}
		}
		byValue[i] = found
	}
	x.mu.RUnlock()

	// The sightings and reports that mention what was found: objects
	// referring to it, and sightings and reports of observed data that
	// hold a found observable.
	var ids []string
	for _, f := range byValue {
		for id := range f {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	mentions, err := s.mentions(ctx, v, ids)
	if err != nil {
		return nil, err
	}
	for i, f := range byValue {
		sightings, reports := map[string]*Ref{}, map[string]*Ref{}
		for id, ref := range f {
			slices.Sort(ref.Collections)
			if ref.Type == "indicator" {
				out[i].Indicators = append(out[i].Indicators, *ref)
			} else {
				out[i].Observables = append(out[i].Observables, *ref)
			}
			for _, m := range mentions[id] {
				into := reports
				if m.Type == "sighting" {
					into = sightings
				}
				r := into[m.ID]
				if r == nil {
					r = &Ref{ID: m.ID, Type: m.Type, Name: m.Name}
					into[m.ID] = r
				}
				for _, c := range m.Collections {
					if !slices.Contains(r.Collections, c) {
						r.Collections = append(r.Collections, c)
					}
				}
			}
		}
		out[i].Sightings, out[i].Reports = sortedRefs(sightings), sortedRefs(reports)
		slices.SortFunc(out[i].Indicators, byID)
		slices.SortFunc(out[i].Observables, byID)
		out[i].Known = len(f) > 0
	}
	return out, nil
}

func byID(a, b Ref) int { return strings.Compare(a.ID, b.ID) }

func sortedRefs(m map[string]*Ref) []Ref {
	out := make([]Ref, 0, len(m))
	for _, r := range m {
		slices.Sort(r.Collections)
		out = append(out, *r)
	}
	slices.SortFunc(out, byID)
	return out
}

// mentionTypes are the types a lookup lists as sightings and reports.
var mentionTypes = []string{"sighting", "report", "grouping"}

// mentions returns, per id, the sightings and reports p may read that
// refer to it, directly or through observed data.
func (s *Service) mentions(ctx context.Context, v *view, ids []string) (map[string][]Ref, error) {
	out := map[string][]Ref{}
	if len(ids) == 0 {
		return out, nil
	}
	direct, err := s.cfg.Store.Referencing(ctx, v.reader, ids, append(slices.Clone(mentionTypes), "observed-data"), maxMentions)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	// via[od] are the found ids an observed-data object holds.
	via := map[string][]string{}
	add := func(l *store.Located, targets []string) {
		d := parseDoc(l.Raw)
		for _, t := range targets {
			refs := out[t]
			i := slices.IndexFunc(refs, func(r Ref) bool { return r.ID == l.ID })
			if i < 0 {
				refs = append(refs, Ref{ID: l.ID, Type: l.Type, Name: d.displayName()})
				i = len(refs) - 1
			}
			if !slices.Contains(refs[i].Collections, l.Collection) {
				refs[i].Collections = append(refs[i].Collections, l.Collection)
			}
			out[t] = refs
		}
	}
	for i := range direct {
		l := &direct[i]
		if !v.visible(l) {
			continue
		}
		var targets []string
		for _, r := range refsOf(v, l) {
			if want[r.target] {
				targets = append(targets, r.target)
			}
		}
		if l.Type == "observed-data" {
			via[l.ID] = append(via[l.ID], targets...)
			continue
		}
		add(l, targets)
	}
	if len(via) > 0 {
		ods := make([]string, 0, len(via))
		for id := range via {
			ods = append(ods, id)
		}
		slices.Sort(ods)
		second, err := s.cfg.Store.Referencing(ctx, v.reader, ods, mentionTypes, maxMentions)
		if err != nil {
			return nil, err
		}
		for i := range second {
			l := &second[i]
			if !v.visible(l) {
				continue
			}
			var targets []string
			for _, r := range refsOf(v, l) {
				targets = append(targets, via[r.target]...)
			}
			slices.Sort(targets)
			add(l, slices.Compact(targets))
		}
	}
	return out, nil
}
