package pattern

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// feedAll runs observations through a Matcher in first_observed order (a
// stream) and returns the IDs that matched at any point.
func feedAll(m *Matcher, obs []*Observation) map[string]bool {
	sorted := slices.Clone(obs)
	slices.SortStableFunc(sorted, func(a, b *Observation) int { return a.FirstObserved.Compare(b.FirstObserved) })
	fired := map[string]bool{}
	for _, o := range sorted {
		for _, mt := range m.Match(o) {
			fired[mt.ID] = true
		}
	}
	return fired
}

// TestMatcherAgreesWithEvaluateTables runs every evaluator table case
// through the Matcher as well.
func TestMatcherAgreesWithEvaluateTables(t *testing.T) {
	type tc struct {
		pattern string
		obs     []string
	}
	var cases []tc
	for _, c := range comparisonCases {
		cases = append(cases, tc{c.pattern, []string{c.obs}})
	}
	for _, c := range obsExprCases {
		cases = append(cases, tc{c.pattern, c.obs})
	}
	for _, c := range cases {
		obs := mustObs(t, c.obs...)
		want, _, err := Evaluate(c.pattern, obs)
		if err != nil {
			t.Fatalf("%s: %v", c.pattern, err)
		}
		m := NewMatcher(MatcherOptions{})
		if err := m.Add("p", c.pattern); err != nil {
			t.Fatal(err)
		}
		if got := feedAll(m, obs)["p"]; got != want {
			t.Errorf("%s: Matcher %v, Evaluate %v", c.pattern, got, want)
		}
	}
}

// genPattern writes a random pattern over a small vocabulary so that
// random observations hit it often.
type gen struct{ r *rand.Rand }

func (g gen) pick(s ...string) string { return s[g.r.IntN(len(s))] }

func (g gen) comparison() string {
	t := g.pick("x", "y")
	switch g.r.IntN(15) {
	case 0:
		return fmt.Sprintf("%s:v = '%s'", t, g.pick("a", "b", "c"))
	case 1:
		return fmt.Sprintf("%s:v != '%s'", t, g.pick("a", "b"))
	case 2:
		return fmt.Sprintf("%s:v IN ('%s', '%s')", t, g.pick("a", "b", "c"), g.pick("d", "e"))
	case 3:
		return fmt.Sprintf("%s:v LIKE '%s'", t, g.pick("a%", "%b", "_", "%", "c"))
	case 4:
		return fmt.Sprintf("%s:n %s %d", t, g.pick("=", "<", ">=", "!="), g.r.IntN(4))
	case 5:
		return fmt.Sprintf("%s:n = %s", t, g.pick("1.0", "2", "1.5"))
	case 6:
		return fmt.Sprintf("%s:ip ISSUBSET '10.0.0.%s'", t, g.pick("0/30", "4/30", "1", "0/29"))
	case 7:
		return fmt.Sprintf("%s:tags[*] = '%s'", t, g.pick("p", "q"))
	case 8:
		return fmt.Sprintf("EXISTS %s:%s", t, g.pick("tags", "n", "zz"))
	case 9:
		return fmt.Sprintf("%s:v NOT = '%s'", t, g.pick("a", "b"))
	case 10:
		if g.r.IntN(2) == 0 {
			return fmt.Sprintf("%s:ref.value %s '10.0.0.%s'", t, g.pick("=", "!=", "ISSUBSET"), g.pick("1", "1/32", "0/30"))
		}
		return fmt.Sprintf("%s:ref.v = '%s'", t, g.pick("a", "b"))
	case 11:
		return fmt.Sprintf("ipv4-addr:value %s", g.pick("= '10.0.0.1'", "= '10.0.0.1/32'", "IN ('10.0.0.2', 'x')", "ISSUBSET '10.0.0.0/30'", "ISSUPERSET '10.0.0.1'", "!= '10.0.0.1'", "LIKE '10.%'", "= '010.0.0.1'"))
	case 13:
		// §9.6.1 NOT before each operator, on lists and single values
		return fmt.Sprintf("%s:%s NOT %s", t, g.pick("tags[*]", "v", "n", "ip"), g.pick("= 'p'", "!= 'q'", "IN ('p', 'a')", "LIKE 'a%'", "MATCHES 'q$'", "> 1", "<= 2", "< 'b'", ">= 'p'", "ISSUBSET '10.0.0.0/30'", "ISSUPERSET '10.0.0.1'"))
	case 14:
		// PCRE anchors against values with a final newline
		return fmt.Sprintf("%s:%s MATCHES '%s'", t, g.pick("v", "tags[*]"), g.pick("^a$", "b$", "^$", "^q", "(?m)^b", "(?m)a$", "a\\\\z"))
	default:
		return fmt.Sprintf("%s:v MATCHES '%s'", t, g.pick("^a", "b|c", "."))
	}
}

func (g gen) compExpr(depth int) string {
	if depth == 0 || g.r.IntN(3) == 0 {
		return g.comparison()
	}
	a, b := g.compExpr(depth-1), g.compExpr(depth-1)
	// keep AND within one type (§9.5); OR may mix
	if g.r.IntN(2) == 0 {
		b = strings.ReplaceAll(strings.ReplaceAll(b, "y:", "x:"), "EXISTS x:", "EXISTS x:")
		a = strings.ReplaceAll(a, "y:", "x:")
		return "(" + a + " AND " + b + ")"
	}
	return "(" + a + " OR " + b + ")"
}

func (g gen) obsExpr(depth int) string {
	var s string
	if depth == 0 || g.r.IntN(3) == 0 {
		s = "[" + g.compExpr(2) + "]"
	} else {
		s = "(" + g.obsExpr(depth-1) + " " + g.pick("AND", "OR", "FOLLOWEDBY") + " " + g.obsExpr(depth-1) + ")"
	}
	switch g.r.IntN(6) {
	case 0:
		s += fmt.Sprintf(" WITHIN %d SECONDS", 5+g.r.IntN(40))
	case 1:
		s += fmt.Sprintf(" REPEATS %d TIMES", 2+g.r.IntN(2))
	case 2:
		s += fmt.Sprintf(" START t'2020-01-01T00:00:%02dZ' STOP t'2020-01-01T00:01:%02dZ'", g.r.IntN(30), g.r.IntN(30))
	}
	return s
}

func (g gen) observation(sec int) string {
	obj := func(key string) string {
		var parts []string
		parts = append(parts, fmt.Sprintf(`"type":%q`, g.pick("x", "y")))
		if g.r.IntN(4) > 0 {
			parts = append(parts, fmt.Sprintf(`"v":%q`, g.pick("a", "b", "c", "ab", "cb", "a\n", "b\n\n", "\n")))
		}
		if g.r.IntN(2) == 0 {
			parts = append(parts, fmt.Sprintf(`"n":%s`, g.pick("0", "1", "2", "1.5", "3")))
		}
		if g.r.IntN(2) == 0 {
			parts = append(parts, fmt.Sprintf(`"ip":"10.0.0.%d"`, g.r.IntN(8)))
		}
		if g.r.IntN(3) == 0 {
			parts = append(parts, fmt.Sprintf(`"tags":[%s]`, g.pick(``, `"p"`, `"p","q"`, `"q","a\n"`)))
		}
		if key == "0" && g.r.IntN(3) == 0 {
			parts = append(parts, `"ref":"1"`)
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	objs := `{"0":` + obj("0")
	switch g.r.IntN(3) {
	case 0:
		objs += `,"1":` + obj("1")
	case 1:
		objs += fmt.Sprintf(`,"1":{"type":"ipv4-addr","value":%q}`, g.pick("10.0.0.1", "10.0.0.1/32", "10.0.0.2", "10.0.0.0/30", "010.0.0.1", "x"))
	}
	objs += "}"
	return od(at(float64(sec)), at(float64(sec+g.r.IntN(8))), 1+g.r.IntN(2), objs)
}

// TestMatcherAgreesWithEvaluateRandom loads a few hundred random patterns
// into one Matcher, streams random observations through it, and checks
// that exactly the patterns Evaluate matches on the whole set fired.
func TestMatcherAgreesWithEvaluateRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	g := gen{r}
	rounds := 30
	if testing.Short() {
		rounds = 5
	}
	checked, positives := 0, 0
	for round := range rounds {
		var inds []Indicator
		for i := range 150 {
			src := g.obsExpr(2)
			if err := Check(src); err != nil {
				continue // e.g. an AND across types slipped through
			}
			inds = append(inds, Indicator{ID: fmt.Sprint(i), Pattern: src})
		}
		m := NewMatcher(MatcherOptions{})
		if err := m.AddAll(inds); err != nil {
			t.Fatal(err)
		}
		var sdos []string
		sec := 0
		for range 3 + r.IntN(6) {
			sdos = append(sdos, g.observation(sec))
			sec += r.IntN(15)
		}
		obs := mustObs(t, sdos...)
		fired := feedAll(m, obs)
		for _, ind := range inds {
			want, _, err := Evaluate(ind.Pattern, obs)
			if err != nil {
				t.Fatalf("%s: %v", ind.Pattern, err)
			}
			checked++
			if want {
				positives++
			}
			if fired[ind.ID] != want {
				t.Errorf("round %d: %s: Matcher %v, Evaluate %v\nobservations: %s", round, ind.Pattern, fired[ind.ID], want, strings.Join(sdos, "\n"))
			}
		}
		if m.BudgetExceeded() > 0 {
			t.Errorf("round %d: search budget exceeded", round)
		}
	}
	if positives == 0 || positives == checked {
		t.Fatalf("degenerate corpus: %d of %d matched", positives, checked)
	}
	t.Logf("%d pattern/stream pairs, %d matched", checked, positives)
}
