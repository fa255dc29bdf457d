package pattern

import (
	"unicode/utf8"
)

// likePattern is a compiled LIKE constant (§9.6.1): '%' matches any run of
// characters, '_' exactly one character; everything else matches itself.
// The SQL LIKE the spec cites has no default escape character, so neither
// does this.
type likePattern struct {
	src   string
	elems []rune // runeAny for '%', runeOne for '_'
	ascii bool   // every literal is ASCII: match bytes without decoding
	// literals are the maximal runs of plain characters, used by the
	// Matcher to pre-filter with a multi-string automaton.
	literals []string
	// exact is set when there is no wildcard at all.
	exact bool
}

const (
	runeAny rune = -1
	runeOne rune = -2
)

func compileLike(s string) *likePattern {
	lp := &likePattern{src: s, ascii: true, exact: true}
	start := -1
	for i, r := range s {
		switch r {
		case '%', '_':
			if start >= 0 {
				lp.literals = append(lp.literals, s[start:i])
				start = -1
			}
			lp.exact = false
			if r == '%' {
				// collapse runs of % — they mean the same as one
				if n := len(lp.elems); n > 0 && lp.elems[n-1] == runeAny {
					continue
				}
				lp.elems = append(lp.elems, runeAny)
			} else {
				lp.elems = append(lp.elems, runeOne)
			}
		default:
			if start < 0 {
				start = i
			}
			if r >= utf8.RuneSelf {
				lp.ascii = false
			}
			lp.elems = append(lp.elems, r)
		}
	}
	if start >= 0 {
		lp.literals = append(lp.literals, s[start:])
	}
	return lp
}

// longestLiteral is the literal run the Matcher indexes: any value the
// pattern matches contains it.
func (lp *likePattern) longestLiteral() string {
	best := ""
	for _, l := range lp.literals {
		if len(l) > len(best) {
			best = l
		}
	}
	return best
}

// match runs the classic wildcard algorithm that backtracks only to the
// last '%': O(len(s)·len(pattern)) worst case, no recursion.
func (lp *likePattern) match(s string) bool {
	if lp.exact {
		return s == lp.src
	}
	if lp.ascii && isASCII(s) {
		return matchLikeBytes(lp.elems, s)
	}
	return matchLikeRunes(lp.elems, []rune(s))
}

func matchLikeBytes(p []rune, s string) bool {
	pi, si, starP, starS := 0, 0, -1, 0
	for si < len(s) {
		if pi < len(p) && (p[pi] == runeOne || p[pi] == rune(s[si])) {
			pi++
			si++
		} else if pi < len(p) && p[pi] == runeAny {
			starP, starS = pi, si
			pi++
		} else if starP >= 0 {
			starS++
			pi, si = starP+1, starS
		} else {
			return false
		}
	}
	for pi < len(p) && p[pi] == runeAny {
		pi++
	}
	return pi == len(p)
}

func matchLikeRunes(p []rune, s []rune) bool {
	pi, si, starP, starS := 0, 0, -1, 0
	for si < len(s) {
		if pi < len(p) && (p[pi] == runeOne || p[pi] == s[si]) {
			pi++
			si++
		} else if pi < len(p) && p[pi] == runeAny {
			starP, starS = pi, si
			pi++
		} else if starP >= 0 {
			starS++
			pi, si = starP+1, starS
		} else {
			return false
		}
	}
	for pi < len(p) && p[pi] == runeAny {
		pi++
	}
	return pi == len(p)
}
