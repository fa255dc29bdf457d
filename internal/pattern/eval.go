package pattern

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrBudget is returned when matching needs more search steps than its
// budget. Combinatorial patterns (large REPEATS, many AND-ed observation
// expressions) over many observations are exponential in the worst case;
// the budget makes every call end in bounded time instead.
var ErrBudget = errors.New("pattern: evaluation exceeded its step budget")

// DefaultBudget is the search-step budget Evaluate uses.
const DefaultBudget = 2_000_000

// maxSearchDepth bounds the nesting of REPEATS continuations; deeper
// searches end with ErrBudget.
const maxSearchDepth = 100_000

// finish runs the checks and derivations that need the whole tree.
func (p *Pattern) finish() error {
	var err error
	var walk func(n ObservationExpr, wins []window)
	walk = func(n ObservationExpr, wins []window) {
		if err != nil {
			return
		}
		switch x := n.(type) {
		case *ObsLeaf:
			x.index = len(p.leaves)
			x.windows = slices.Clone(wins)
			p.leaves = append(p.leaves, x)
			x.types, err = rootTypes(x.Expr)
			if err != nil {
				err = &SyntaxError{Pos: x.Pos, Msg: err.Error()}
			}
		case *ObsBinary:
			walk(x.Left, wins)
			walk(x.Right, wins)
		case *ObsWithin:
			walk(x.X, wins)
		case *ObsRepeats:
			walk(x.X, wins)
		case *ObsStartStop:
			// §9.5.1: every observation matched under START/STOP must lie
			// in the window, so the window travels down to each leaf.
			walk(x.X, append(slices.Clip(wins), window{x.Start, x.Stop}))
		}
	}
	walk(p.Root, nil)
	if err != nil {
		return err
	}
	p.minUnits = minUnits(p.Root)
	p.stateless = stateless(p.Root)
	if h, ok := horizon(p.Root, true); ok {
		p.horizon = h
	}
	return nil
}

// rootTypes returns the object types a root SCO may have to satisfy e. It
// rejects an AND whose sides can never start from the same object: §9.5
// says all operands of AND MUST be satisfiable with the same object.
func rootTypes(e CompExpr) ([]string, error) {
	set, err := rootTypeSet(e)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	slices.Sort(out)
	return out, nil
}

// rootTypeSet works on sets, merging the smaller into the larger, so long
// chains of OR stay near linear.
func rootTypeSet(e CompExpr) (map[string]struct{}, error) {
	switch x := e.(type) {
	case *Comparison:
		return map[string]struct{}{x.Path.Type: {}}, nil
	case *CompBinary:
		l, err := rootTypeSet(x.Left)
		if err != nil {
			return nil, err
		}
		r, err := rootTypeSet(x.Right)
		if err != nil {
			return nil, err
		}
		left, right := l, r
		if len(l) < len(r) {
			l, r = r, l
		}
		if !x.And {
			for t := range r {
				l[t] = struct{}{}
			}
			return l, nil
		}
		out := map[string]struct{}{}
		for t := range r {
			if _, ok := l[t]; ok {
				out[t] = struct{}{}
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("AND joins comparisons on object types %s and %s, which one object can never satisfy; use OR or separate observation expressions (§9.5)",
				typeList(left), typeList(right))
		}
		return out, nil
	}
	return nil, nil
}

// typeList renders a type set for an error message, shortened if long.
func typeList(set map[string]struct{}) string {
	ts := make([]string, 0, len(set))
	for t := range set {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	if len(ts) > 4 {
		return strings.Join(ts[:4], "/") + "/…"
	}
	return strings.Join(ts, "/")
}

func minUnits(n ObservationExpr) int64 {
	switch x := n.(type) {
	case *ObsLeaf:
		return 1
	case *ObsBinary:
		l, r := minUnits(x.Left), minUnits(x.Right)
		if x.Op == ObsOr {
			return min(l, r)
		}
		return satAdd(l, r)
	case *ObsWithin:
		return minUnits(x.X)
	case *ObsStartStop:
		return minUnits(x.X)
	case *ObsRepeats:
		return satMul(minUnits(x.X), x.Times)
	}
	return 1
}

func satAdd(a, b int64) int64 {
	if a > (1<<62)-b {
		return 1 << 62
	}
	return a + b
}

func satMul(a, b int64) int64 {
	if b != 0 && a > (1<<62)/b {
		return 1 << 62
	}
	return a * b
}

// stateless reports whether each binding of n is a single observation, so a
// streaming matcher needs no memory for it.
func stateless(n ObservationExpr) bool {
	switch x := n.(type) {
	case *ObsLeaf:
		return true
	case *ObsBinary:
		return x.Op == ObsOr && stateless(x.Left) && stateless(x.Right)
	case *ObsWithin:
		// one observation is always within any window of itself
		return stateless(x.X)
	case *ObsStartStop:
		return stateless(x.X)
	case *ObsRepeats:
		return x.Times == 1 && stateless(x.X)
	}
	return false
}

// horizon is how long the streaming Matcher must remember an observation
// that matched one of n's leaves; bounded is false when no WITHIN limits
// it. top says a binding of n is a whole match: then a part that one
// observation decides needs no memory at all, as it matches the moment
// its observation arrives (and the match consumes the state).
func horizon(n ObservationExpr, top bool) (d time.Duration, bounded bool) {
	if top && stateless(n) {
		return 0, true
	}
	switch x := n.(type) {
	case *ObsWithin:
		if !top {
			// A WITHIN below AND, FOLLOWEDBY or REPEATS bounds only its
			// own part; the rest of the binding may come any time later.
			return horizon(x.X, false)
		}
		if h, ok := horizon(x.X, top); ok && h > 0 && h < x.Duration {
			return h, true
		}
		return x.Duration, true
	case *ObsRepeats:
		return horizon(x.X, top && x.Times == 1)
	case *ObsStartStop:
		return horizon(x.X, top)
	case *ObsBinary:
		if x.Op == ObsOr {
			l, lok := horizon(x.Left, top)
			r, rok := horizon(x.Right, top)
			return max(l, r), lok && rok
		}
	}
	return 0, false
}

// ---- comparison expressions -------------------------------------------

// matchComp evaluates a comparison-expression tree with root as the SCO
// every object path starts from (§9.5).
func matchComp(e CompExpr, obs *Observation, root Object, w *walker) bool {
	switch x := e.(type) {
	case *CompBinary:
		if x.And {
			return matchComp(x.Left, obs, root, w) && matchComp(x.Right, obs, root, w)
		}
		return matchComp(x.Left, obs, root, w) || matchComp(x.Right, obs, root, w)
	case *Comparison:
		return x.match(obs, root, w)
	}
	return false
}

// match evaluates one comparison on one root object. A path that resolves
// to nothing makes the comparison false whatever the operator, NOT
// included (§9.6). With [*] the comparison without NOT is true if any
// value passes (§9.7.2); NOT then negates that result, the whole
// comparison expression (§9.6.1: "the resultant Comparison Expression is
// logically negated"), so a[*] NOT = 'x' holds when no element is 'x'.
func (c *Comparison) match(obs *Observation, root Object, w *walker) bool {
	if root.Type() != c.Path.Type {
		return false
	}
	reached, found := false, false
	w.walk(obs, root, c.Path.Steps, func(it item) bool {
		reached = true
		if c.testItem(it) {
			found = true
			return false
		}
		return true
	})
	return reached && found != c.Negated
}

// matchLeaf reports whether some object of obs is a root that satisfies
// the leaf's comparison expression.
func matchLeaf(l *ObsLeaf, obs *Observation, w *walker) bool {
	for _, obj := range obs.Objects {
		if matchComp(l.Expr, obs, obj, w) {
			return true
		}
	}
	return false
}

func inWindows(wins []window, first, last time.Time) bool {
	for _, w := range wins {
		// §9.5.1 START/STOP: observation time >= start and < stop. The
		// observation may have happened anywhere in [first, last], so it
		// qualifies when that interval can reach into [start, stop).
		if last.Before(w.start) || !first.Before(w.stop) {
			return false
		}
	}
	return true
}

// walker resolves object paths. It holds no state between calls beyond a
// recursion guard, and exists so the hot path can reuse it.
type walker struct {
	depth int
}

// maxRefDepth bounds dereferencing chains (a _ref cycle in hostile data
// would otherwise recurse forever).
const maxRefDepth = 32

// walk calls yield for each value the path reaches from root; yield
// returns false to stop.
func (w *walker) walk(obs *Observation, root Object, steps []PathStep, yield func(item) bool) {
	if len(steps) == 0 || steps[0].Kind != StepProp {
		return
	}
	it, ok := prop(root, steps[0].Name)
	if !ok {
		return
	}
	w.depth = 0
	w.step(obs, it, steps[1:], yield)
}

func (w *walker) step(obs *Observation, it item, steps []PathStep, yield func(item) bool) bool {
	if !it.sv && it.v == nil {
		return true // JSON null is no value
	}
	if len(steps) == 0 {
		return yield(it)
	}
	s := steps[0]
	switch s.Kind {
	case StepProp:
		if it.sv {
			return w.deref(obs, it, steps, yield)
		}
		switch m := it.v.(type) {
		case map[string]any:
			v, ok := m[s.Name]
			if !ok {
				return true
			}
			return w.step(obs, valItem(v, it.holder, s.Name), steps[1:], yield)
		case map[string]string:
			v, ok := m[s.Name]
			if !ok {
				return true
			}
			return w.step(obs, strItem(v, it.holder, s.Name), steps[1:], yield)
		case string:
			return w.deref(obs, valItem(m, it.holder, it.prop), steps, yield)
		}
		return true
	case StepIndex:
		if s.Index < 0 {
			return true // out of range: §9.7.2 makes the comparison false
		}
		switch l := it.v.(type) {
		case []any:
			if s.Index >= int64(len(l)) {
				return true
			}
			return w.step(obs, valItem(l[s.Index], it.holder, it.prop), steps[1:], yield)
		case []string:
			if s.Index >= int64(len(l)) {
				return true
			}
			return w.step(obs, strItem(l[s.Index], it.holder, it.prop), steps[1:], yield)
		}
		return true
	case StepAny:
		switch l := it.v.(type) {
		case []any:
			for _, e := range l {
				if !w.step(obs, valItem(e, it.holder, it.prop), steps[1:], yield) {
					return false
				}
			}
		case []string:
			for _, e := range l {
				if !w.step(obs, strItem(e, it.holder, it.prop), steps[1:], yield) {
					return false
				}
			}
		}
		return true
	}
	return true
}

// deref follows a reference: §9.7.4 says a _ref (or an element of _refs)
// followed by more path is dereferenced to the object it names within the
// same observation.
func (w *walker) deref(obs *Observation, it item, steps []PathStep, yield func(item) bool) bool {
	if !strings.HasSuffix(it.prop, "_ref") && !strings.HasSuffix(it.prop, "_refs") {
		return true
	}
	if w.depth >= maxRefDepth {
		return true
	}
	obj, ok := obs.Resolve(it.s)
	if !ok {
		return true
	}
	next, ok := prop(obj, steps[0].Name)
	if !ok {
		return true
	}
	w.depth++
	r := w.step(obs, next, steps[1:], yield)
	w.depth--
	return r
}

// prop reads a top-level property, unboxed when the object allows it.
func prop(obj Object, name string) (item, bool) {
	if sp, ok := obj.(StringPropObject); ok {
		if s, ok := sp.StringProp(name); ok {
			return strItem(s, obj, name), true
		}
	}
	v, ok := obj.Prop(name)
	if !ok {
		return item{}, false
	}
	return valItem(v, obj, name), true
}

// ---- observation expressions ------------------------------------------

// unit is one observed-data in a search: NumberObserved observations that
// share an interval, any of which may be bound to a leaf once (§9.5.2:
// operands match different observations).
type unit struct {
	first, last time.Time
	count       int64
}

// summary is what the temporal operators need to know about a partial
// binding. Each observation's own time may be chosen anywhere in its
// interval, so FOLLOWEDBY and WITHIN test the most favourable choice.
type summary struct {
	maxFirst, minLast time.Time
	empty             bool
}

func merge(a, b summary) summary {
	if a.empty {
		return b
	}
	if b.empty {
		return a
	}
	s := a
	if b.maxFirst.After(s.maxFirst) {
		s.maxFirst = b.maxFirst
	}
	if b.minLast.Before(s.minLast) {
		s.minLast = b.minLast
	}
	return s
}

// searcher finds one binding of observations to the leaves of a pattern
// by depth-first search with continuations: each node enumerates its own
// bindings and hands every one to the rest of the search, so constraints
// of enclosing nodes see complete sub-bindings and backtracking is exact.
type searcher struct {
	units    []unit
	used     []int64
	cands    [][]int32 // per leaf: units that satisfy it (and its windows)
	stack    []int32   // units bound so far
	steps    int
	budget   int
	depth    int
	overrun  bool
	feasible map[ObservationExpr]bool
}

func (s *searcher) tick() bool {
	s.steps++
	if s.steps > s.budget {
		s.overrun = true
	}
	return !s.overrun
}

func (s *searcher) feasibleNode(n ObservationExpr) bool {
	if f, ok := s.feasible[n]; ok {
		return f
	}
	var f bool
	switch x := n.(type) {
	case *ObsLeaf:
		f = len(s.cands[x.index]) > 0
	case *ObsBinary:
		l, r := s.feasibleNode(x.Left), s.feasibleNode(x.Right)
		if x.Op == ObsOr {
			f = l || r
		} else {
			f = l && r
		}
	case *ObsWithin:
		f = s.feasibleNode(x.X)
	case *ObsStartStop:
		f = s.feasibleNode(x.X)
	case *ObsRepeats:
		f = s.feasibleNode(x.X)
	}
	s.feasible[n] = f
	return f
}

func (s *searcher) solve(n ObservationExpr, k func(summary) bool) bool {
	if s.overrun || !s.feasibleNode(n) {
		return false
	}
	switch x := n.(type) {
	case *ObsLeaf:
		for _, u := range s.cands[x.index] {
			if !s.tick() {
				return false
			}
			if s.used[u] >= s.units[u].count {
				continue
			}
			s.used[u]++
			s.stack = append(s.stack, u)
			ok := k(summary{maxFirst: s.units[u].first, minLast: s.units[u].last})
			s.stack = s.stack[:len(s.stack)-1]
			s.used[u]--
			if ok {
				return true
			}
		}
		return false
	case *ObsBinary:
		switch x.Op {
		case ObsOr:
			// §9.5: if the first operand matches, evaluation terminates.
			return s.solve(x.Left, k) || s.solve(x.Right, k)
		case ObsAnd:
			return s.solve(x.Left, func(a summary) bool {
				return s.solve(x.Right, func(b summary) bool { return k(merge(a, b)) })
			})
		default:
			// §9.5.2 FOLLOWEDBY: b's time >= a's time. Choose the earliest
			// time for each left observation and the latest for each
			// right one; possible iff max(first of a) <= min(last of b).
			return s.solve(x.Left, func(a summary) bool {
				return s.solve(x.Right, func(b summary) bool {
					if a.maxFirst.After(b.minLast) {
						return false
					}
					return k(merge(a, b))
				})
			})
		}
	case *ObsWithin:
		// §9.5.1 WITHIN: the latest observation time MUST be earlier than
		// the earliest plus the window. With intervals, the best choice
		// puts every time as close as possible: possible iff
		// max(first) - min(last) < window.
		return s.solve(x.X, func(a summary) bool {
			if a.maxFirst.Sub(a.minLast) >= x.Duration {
				return false
			}
			return k(a)
		})
	case *ObsStartStop:
		// windows were pushed down to the leaves' candidate lists
		return s.solve(x.X, k)
	case *ObsRepeats:
		return s.repeat(x, x.Times, -1, summary{empty: true}, k)
	}
	return false
}

// repeat binds x.X `left` more times. The repetitions are interchangeable,
// so only bindings in non-decreasing order of their unit lists are tried;
// that removes the n! orderings of every combination without losing any.
func (s *searcher) repeat(x *ObsRepeats, left int64, prevStart int, acc summary, k func(summary) bool) bool {
	if left == 0 {
		return k(acc)
	}
	// Each repetition nests one level of continuations; bound the stack
	// that a huge count over a huge number_observed could build.
	if s.depth >= maxSearchDepth {
		s.overrun = true
		return false
	}
	s.depth++
	defer func() { s.depth-- }()
	start := len(s.stack)
	return s.solve(x.X, func(b summary) bool {
		if prevStart >= 0 && slices.Compare(s.stack[prevStart:start], s.stack[start:]) > 0 {
			return false
		}
		return s.repeat(x, left-1, start, merge(acc, b), k)
	})
}

// Result is the outcome of Evaluate.
type Result struct {
	// Matched reports whether the pattern matched.
	Matched bool
	// Observations are the observations bound in the first match found,
	// in input order, each once.
	Observations []*Observation
}

// Evaluate matches the pattern against a set of observations with the
// reference semantics of §9: it is the oracle the streaming Matcher is
// tested against. It returns ErrBudget (and no match) when the search
// would need more than DefaultBudget steps.
func (p *Pattern) Evaluate(observations []*Observation) (Result, error) {
	return p.EvaluateBudget(observations, DefaultBudget)
}

// EvaluateBudget is Evaluate with an explicit search-step budget.
func (p *Pattern) EvaluateBudget(observations []*Observation, budget int) (Result, error) {
	units := make([]unit, len(observations))
	var total int64
	for i, o := range observations {
		if err := o.validate(); err != nil {
			return Result{}, fmt.Errorf("observation %d: %w", i, err)
		}
		units[i] = unit{first: o.FirstObserved, last: o.LastObserved, count: o.NumberObserved}
		total = satAdd(total, o.NumberObserved)
	}
	if total < p.minUnits {
		return Result{}, nil
	}
	var w walker
	cands := make([][]int32, len(p.leaves))
	for li, l := range p.leaves {
		for i, o := range observations {
			if inWindows(l.windows, o.FirstObserved, o.LastObserved) && matchLeaf(l, o, &w) {
				cands[li] = append(cands[li], int32(i))
			}
		}
	}
	bound, ok, err := p.search(units, cands, budget)
	if err != nil || !ok {
		return Result{}, err
	}
	res := Result{Matched: true}
	slices.Sort(bound)
	bound = slices.Compact(bound)
	for _, i := range bound {
		res.Observations = append(res.Observations, observations[i])
	}
	return res, nil
}

// search runs the binding search over units with per-leaf candidates and
// returns the units of the first binding found.
func (p *Pattern) search(units []unit, cands [][]int32, budget int) ([]int32, bool, error) {
	s := &searcher{
		units:    units,
		used:     make([]int64, len(units)),
		cands:    cands,
		budget:   budget,
		feasible: make(map[ObservationExpr]bool),
	}
	var bound []int32
	ok := s.solve(p.Root, func(summary) bool {
		bound = slices.Clone(s.stack)
		return true
	})
	if s.overrun {
		return nil, false, ErrBudget
	}
	return bound, ok, nil
}

// Evaluate parses pattern and evaluates it against observations; see
// (*Pattern).Evaluate. The error is a *SyntaxError for an invalid pattern
// (which matches nothing, §9.4) or ErrBudget.
func Evaluate(pattern string, observations []*Observation) (bool, []*Observation, error) {
	p, err := Parse(pattern)
	if err != nil {
		return false, nil, err
	}
	r, err := p.Evaluate(observations)
	return r.Matched, r.Observations, err
}
