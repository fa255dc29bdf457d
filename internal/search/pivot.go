package search

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/store"
)

// Node is one object of a pivot graph.
type Node struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Name string `json:"name,omitempty"`
	// Collections the caller reads it in.
	Collections []string `json:"collections"`
	// TLP is the strictest effective level among those collections'
	// versions.
	TLP string `json:"tlp"`
	// Hop is the distance from the pivot's object (0 for it).
	Hop int `json:"hop"`
}

// Edge links two nodes: a relationship (Kind is its relationship_type,
// Relationship its id) or an embedded reference (Kind is the property,
// "sighting_of_ref", "object_refs", ...), from Source to Target.
type Edge struct {
	Source       string `json:"source"`
	Target       string `json:"target"`
	Kind         string `json:"kind"`
	Relationship string `json:"relationship,omitempty"`
}

// Graph is the neighbourhood of an object. Truncated is true when more
// readable objects were related than MaxPivotNodes.
type Graph struct {
	Nodes     []Node `json:"nodes"`
	Edges     []Edge `json:"edges"`
	Truncated bool   `json:"truncated"`
}

// maxReferencing bounds the objects read per hop that refer to the
// frontier (an identity may be referred to by every object it made).
const maxReferencing = 4 * MaxPivotNodes

// ref is one embedded reference of an object.
type ref struct {
	prop, target string
}

// refsOf lists the embedded references of l (every *_ref and *_refs but
// markings, at any depth), as p may read them: a sighting's references to
// organisations that asked to stay anonymous are redacted first.
func refsOf(v *view, l *store.Located) []ref {
	raw := l.Raw
	if l.Type == "sighting" {
		raw = access.RedactSighting(v.p, &l.Entry, v.anonymous())
	}
	var m any
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	var out []ref
	var walk func(x any)
	walk = func(x any) {
		switch x := x.(type) {
		case map[string]any:
			for k, val := range x {
				switch {
				case k == "object_marking_refs" || k == "marking_ref":
				case strings.HasSuffix(k, "_ref"):
					if s, ok := val.(string); ok && strings.Contains(s, "--") {
						out = append(out, ref{k, s})
					}
				case strings.HasSuffix(k, "_refs"):
					if l, ok := val.([]any); ok {
						for _, e := range l {
							if s, ok := e.(string); ok && strings.Contains(s, "--") {
								out = append(out, ref{k, s})
							}
						}
					}
				default:
					walk(val)
				}
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(m)
	slices.SortFunc(out, func(a, b ref) int {
		if c := strings.Compare(a.prop, b.prop); c != 0 {
			return c
		}
		return strings.Compare(a.target, b.target)
	})
	return slices.Compact(out)
}

// relEnds are a relationship's ends.
type relEnds struct {
	Type   string `json:"relationship_type"`
	Source string `json:"source_ref"`
	Target string `json:"target_ref"`
}

// Pivot returns the objects p may read related to object id, within hops
// (1 or 2) in both directions: relationships (drawn as edges, not counted
// as a hop), sightings and embedded references. An object p may not read
// is ErrNotFound, as a missing one; hidden neighbours are left out as if
// they did not exist.
func (s *Service) Pivot(ctx context.Context, p *access.Principal, id string, hops int) (Graph, error) {
	g := Graph{Nodes: []Node{}, Edges: []Edge{}}
	if hops == 0 {
		hops = 1
	}
	if hops < 1 || hops > 2 {
		return g, fmt.Errorf("hops must be 1 or 2: %w", ErrInvalid)
	}
	v, err := s.view(ctx, p)
	if err != nil {
		return g, err
	}
	nodes := map[string]*Node{}
	bodies := map[string][]*store.Located{} // visible versions, by id
	// admit adds the visible rows among ls as nodes at hop h; it returns
	// the ids that were new.
	admit := func(ls []store.Located, h int) []string {
		var fresh []string
		for i := range ls {
			l := &ls[i]
			if !v.visible(l) {
				continue
			}
			n := nodes[l.ID]
			if n == nil {
				if len(nodes) >= MaxPivotNodes {
					g.Truncated = true
					continue
				}
				n = &Node{ID: l.ID, Type: l.Type, Name: parseDoc(l.Raw).displayName(), Hop: h, TLP: tlpName(v.colls[l.Collection], &l.Entry)}
				nodes[l.ID] = n
				fresh = append(fresh, l.ID)
			}
			if !slices.Contains(n.Collections, l.Collection) {
				n.Collections = append(n.Collections, l.Collection)
				if t := tlpName(v.colls[l.Collection], &l.Entry); tlpRank(t) > tlpRank(n.TLP) {
					n.TLP = t
				}
			}
			bodies[l.ID] = append(bodies[l.ID], l)
		}
		return fresh
	}
	start, err := s.cfg.Store.LatestByID(ctx, v.reader, []string{id})
	if err != nil {
		return g, err
	}
	frontier := admit(start, 0)
	if len(frontier) == 0 {
		return g, fmt.Errorf("object %s: %w", id, store.ErrNotFound)
	}
	edges := map[Edge]bool{}
	// pending edges wait for both ends to be known visible.
	var pending []Edge
	for h := 1; h <= hops && len(frontier) > 0; h++ {
		want := map[string]bool{}
		// Outgoing: the frontier's own references.
		for _, fid := range frontier {
			for _, l := range bodies[fid] {
				for _, r := range refsOf(v, l) {
					pending = append(pending, Edge{Source: fid, Target: r.target, Kind: r.prop})
					want[r.target] = true
				}
			}
		}
		// Incoming: objects referring to the frontier. Relationships
		// become edges between their ends.
		in, err := s.cfg.Store.Referencing(ctx, v.reader, frontier, nil, maxReferencing)
		if err != nil {
			return g, err
		}
		if len(in) == maxReferencing {
			// The store counted only rows the caller reads.
			g.Truncated = true
		}
		inFrontier := map[string]bool{}
		for _, f := range frontier {
			inFrontier[f] = true
		}
		var others []store.Located
		for i := range in {
			l := &in[i]
			if !v.visible(l) {
				continue
			}
			refs := refsOf(v, l)
			// After redaction the row must still refer to the frontier.
			if !slices.ContainsFunc(refs, func(r ref) bool { return inFrontier[r.target] }) {
				continue
			}
			if l.Type == "relationship" {
				var re relEnds
				if json.Unmarshal(l.Raw, &re) == nil && re.Source != "" && re.Target != "" {
					pending = append(pending, Edge{Source: re.Source, Target: re.Target, Kind: re.Type, Relationship: l.ID})
					want[re.Source], want[re.Target] = true, true
				}
				continue
			}
			others = append(others, *l)
			for _, r := range refs {
				if inFrontier[r.target] {
					pending = append(pending, Edge{Source: l.ID, Target: r.target, Kind: r.prop})
				}
			}
		}
		next := admit(others, h)
		var ids []string
		for w := range want {
			if nodes[w] == nil {
				ids = append(ids, w)
			}
		}
		slices.Sort(ids)
		// Relationships whose ends are both in the graph already, and
		// the objects the frontier refers to.
		got, err := s.cfg.Store.LatestByID(ctx, v.reader, ids)
		if err != nil {
			return g, err
		}
		next = append(next, admit(got, h)...)
		frontier = next
	}
	// Relationships among the nodes the frontier did not reach from both
	// sides are kept when both ends are nodes.
	for _, e := range pending {
		if nodes[e.Source] != nil && nodes[e.Target] != nil && e.Source != e.Target {
			edges[e] = true
		}
	}
	for _, n := range nodes {
		slices.Sort(n.Collections)
		g.Nodes = append(g.Nodes, *n)
	}
	slices.SortFunc(g.Nodes, func(a, b Node) int {
		if a.Hop != b.Hop {
			return a.Hop - b.Hop
		}
		return strings.Compare(a.ID, b.ID)
	})
	for e := range edges {
		g.Edges = append(g.Edges, e)
	}
	slices.SortFunc(g.Edges, func(a, b Edge) int {
		return strings.Compare(a.Source+" "+a.Target+" "+a.Kind+" "+a.Relationship, b.Source+" "+b.Target+" "+b.Kind+" "+b.Relationship)
	})
	return g, nil
}

func tlpRank(name string) int {
	t, err := access.ParseTLP(name)
	if err != nil {
		return int(access.TLPUnresolved)
	}
	return int(t)
}
