package pattern

import (
	"errors"
	"testing"
)

// Fuzz inputs are size-capped so each execution stays fast; the caps are
// well above any real pattern. Inputs are truncated rather than skipped:
// an early return would be new coverage, and the fuzzer would then spend
// its time minimising a huge input down to the cap.
const (
	fuzzMaxPattern = 2048
	fuzzMaxObs     = 8192
)

func FuzzParse(f *testing.F) {
	for _, s := range specExamples {
		f.Add(s)
	}
	for _, s := range specSchematic {
		f.Add(s)
	}
	f.Add(`[a:b MATCHES '(?i)^x[]a]\\Q.\\E{2,3}']`)
	f.Add(`[a:b = t'2016-12-31T23:59:60.123Z'] START t'2016-01-01T00:00:00Z' STOP t'2017-01-01T00:00:00Z'`)
	f.Add(`[a:b IN (b'AAEC', h'0001')] REPEATS 2147483648 TIMES WITHIN 0.000000001 SECONDS`)
	f.Fuzz(func(t *testing.T, src string) {
		src = src[:min(len(src), fuzzMaxPattern)]
		p, err := Parse(src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %T is not a *SyntaxError", err)
			}
			return
		}
		// The canonical form must parse back to itself.
		canon := p.Root.String()
		q, err := Parse(canon)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", canon, src, err)
		}
		if q.Root.String() != canon {
			t.Fatalf("canonical form not stable: %q -> %q", canon, q.Root.String())
		}
		if tree(q.Root) != tree(p.Root) {
			t.Fatalf("canonical form %q changes the structure of %q", canon, src)
		}
	})
}

// FuzzEvaluate evaluates a pattern against observations with both the
// reference evaluator and the streaming Matcher; neither may panic or
// hang, and when neither runs out of budget they must agree.
func FuzzEvaluate(f *testing.F) {
	f.Add(`[x:v = 'a'] AND [x:v = 'a']`, "["+obsAt("a", 0, 0, 2)+"]")
	f.Add(`([x:v = 'a'] FOLLOWEDBY [x:v = 'b']) WITHIN 10 SECONDS`, "["+obsAt("a", 0, 0, 1)+","+obsAt("b", 5, 5, 1)+"]")
	f.Add(`[x:v = 'a'] REPEATS 3 TIMES`, "["+obsAt("a", 0, 0, 2)+","+obsAt("a", 1, 3, 1)+"]")
	f.Add(`[network-traffic:src_ref.value ISSUBSET '10.0.0.0/8']`, "["+trafficObs+"]")
	f.Add(`[domain-name:resolves_to_refs[*].value = '198.51.100.1']`, "["+domainObs+"]")
	f.Add(`[file:hashes.'SHA-256' LIKE 'ae%' AND file:size > 1]`, "["+one(fileObj)+"]")
	f.Add(`[artifact:payload_bin MATCHES '^\\xd4']`, "["+one(artifactObj)+"]")
	f.Fuzz(func(t *testing.T, src string, observed string) {
		src = src[:min(len(src), fuzzMaxPattern)]
		observed = observed[:min(len(observed), fuzzMaxObs)]
		p, err := Parse(src)
		if err != nil {
			return
		}
		obs, err := ObservationsFromJSON([]byte(observed))
		if err != nil {
			return
		}
		obs = obs[:min(len(obs), 64)]
		res, err := p.EvaluateBudget(obs, 20_000)
		if err != nil {
			return
		}
		m := NewMatcher(MatcherOptions{SearchBudget: 20_000})
		if err := m.Add("p", src); err != nil {
			t.Fatalf("Matcher rejects a pattern Parse accepts: %v", err)
		}
		got := feedAll(m, obs)["p"]
		if m.BudgetExceeded() > 0 {
			return
		}
		if got != res.Matched {
			t.Fatalf("Matcher %v, Evaluate %v for %s on %s", got, res.Matched, src, observed)
		}
	})
}
