package pattern

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
)

// regexError locates a rejected MATCHES expression; off is a byte offset
// into the regular expression.
type regexError struct {
	off int
	msg string
}

func (e *regexError) Error() string { return e.msg }

// Translations of PCRE escapes that Go lacks or reads differently. In Go
// \v is only the vertical tab; in PCRE it is the vertical-space class.
var pcreClassEscapes = map[byte]string{
	'h': `\t \x{A0}\x{1680}\x{180E}\x{2000}-\x{200A}\x{202F}\x{205F}\x{3000}`,
	'v': `\n\x0B\f\r\x{85}\x{2028}\x{2029}`,
}

// compileRegex compiles a MATCHES constant. §9.6.1 asks for PCRE syntax
// with the search function and DOTALL; Go's regexp (RE2) covers most of
// PCRE, and the constructs it cannot run are rejected here with a message
// naming them rather than being silently misread. See the package doc for
// the exact subset.
func compileRegex(src string) (*regexp.Regexp, error) {
	tr, err := translatePCRE(src)
	if err != nil {
		return nil, err
	}
	tr, err = pcreAnchors("(?s)" + tr)
	if err != nil {
		return nil, err
	}
	re, err := regexp.Compile(tr)
	if err != nil {
		msg := err.Error()
		msg = strings.TrimPrefix(msg, "error parsing regexp: ")
		if len(msg) > 160 {
			msg = msg[:160] + "…"
		}
		return nil, &regexError{off: 0, msg: msg}
	}
	return re, nil
}

func unsupported(off int, what string) error {
	return &regexError{off: off, msg: fmt.Sprintf("%s at offset %d is a PCRE feature Go's RE2 engine does not support", what, off)}
}

// translatePCRE scans a PCRE expression, rejects what RE2 cannot do and
// rewrites the few escapes whose meaning differs.
func translatePCRE(src string) (string, error) {
	var b strings.Builder
	b.Grow(len(src))
	inClass := false
	classStart := 0
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c == '\\' {
			if i+1 >= len(src) {
				return "", &regexError{off: i, msg: fmt.Sprintf("trailing backslash at offset %d", i)}
			}
			e := src[i+1]
			switch {
			case e >= '1' && e <= '9':
				return "", unsupported(i, fmt.Sprintf(`backreference \%c`, e))
			case e == 'g' || e == 'k':
				return "", unsupported(i, fmt.Sprintf(`backreference \%c`, e))
			case e == 'G' || e == 'K' || e == 'R' || e == 'X' || e == 'C' || e == 'N' || e == 'Z' || e == 'c' || e == 'o':
				return "", unsupported(i, fmt.Sprintf(`escape \%c`, e))
			case e == 'h' || e == 'v':
				if inClass {
					b.WriteString(pcreClassEscapes[e])
				} else {
					b.WriteString("[" + pcreClassEscapes[e] + "]")
				}
				i++
				continue
			case e == 'H' || e == 'V':
				if inClass {
					return "", unsupported(i, fmt.Sprintf(`escape \%c inside a character class`, e))
				}
				b.WriteString("[^" + pcreClassEscapes[e+'a'-'A'] + "]")
				i++
				continue
			case e == 'e':
				b.WriteString(`\x1B`)
				i++
				continue
			case e == 'Q':
				end := strings.Index(src[i+2:], `\E`)
				lit := src[i+2:]
				if end >= 0 {
					lit = src[i+2 : i+2+end]
					i = i + 2 + end + 1
				} else {
					i = len(src)
				}
				b.WriteString(regexp.QuoteMeta(lit))
				continue
			}
			if (e == 'p' || e == 'P' || e == 'x') && i+2 < len(src) && src[i+2] == '{' {
				// \p{Name}, \x{HHHH}: copy the braces verbatim
				if end := strings.IndexByte(src[i+2:], '}'); end > 0 {
					b.WriteString(src[i : i+3+end])
					i += 2 + end
					continue
				}
			}
			b.WriteByte(c)
			b.WriteByte(e)
			i++
			continue
		}
		if inClass {
			if c == '[' && i+1 < len(src) && src[i+1] == ':' {
				if end := strings.Index(src[i:], ":]"); end > 0 {
					b.WriteString(src[i : i+end+2])
					i += end + 1
					continue
				}
			}
			if c == ']' && i > classStart {
				inClass = false
			}
			b.WriteByte(c)
			continue
		}
		switch c {
		case '[':
			inClass = true
			b.WriteByte(c)
			j := i + 1
			if j < len(src) && src[j] == '^' {
				b.WriteByte('^')
				j++
			}
			if j < len(src) && src[j] == ']' {
				// a ']' first in a class is a literal
				b.WriteString(`\]`)
				j++
			}
			classStart = j
			i = j - 1
			continue
		case '(':
			if i+1 < len(src) && src[i+1] == '*' {
				return "", unsupported(i, "backtracking verb or option setting (*...)")
			}
			if i+1 < len(src) && src[i+1] == '?' {
				rest := src[i+2:]
				switch {
				case strings.HasPrefix(rest, "="), strings.HasPrefix(rest, "!"):
					return "", unsupported(i, "lookahead (?"+rest[:1])
				case strings.HasPrefix(rest, "<="), strings.HasPrefix(rest, "<!"):
					return "", unsupported(i, "lookbehind (?"+rest[:2])
				case strings.HasPrefix(rest, ">"):
					return "", unsupported(i, "atomic group (?>")
				case strings.HasPrefix(rest, "|"):
					return "", unsupported(i, "branch reset group (?|")
				case strings.HasPrefix(rest, "#"):
					return "", unsupported(i, "comment group (?#")
				case strings.HasPrefix(rest, "("):
					return "", unsupported(i, "conditional group (?(")
				case strings.HasPrefix(rest, "P="), strings.HasPrefix(rest, "P>"), strings.HasPrefix(rest, "&"):
					return "", unsupported(i, "backreference or subroutine call")
				case strings.HasPrefix(rest, "'"):
					return "", unsupported(i, "named group (?'name'; write (?P<name>...)")
				case strings.HasPrefix(rest, "C"):
					return "", unsupported(i, "callout (?C")
				case rest != "" && (rest[0] == 'R' || rest[0] == '+' || rest[0] >= '0' && rest[0] <= '9' || rest[0] == '-' && len(rest) > 1 && rest[1] >= '0' && rest[1] <= '9'):
					return "", unsupported(i, "recursion or subroutine call")
				}
				// inline flags: RE2 knows i, m, s and U; x (extended) is
				// PCRE-only.
				j := 0
				for j < len(rest) && rest[j] != ')' && rest[j] != ':' {
					if f := rest[j]; f != '-' && f != 'i' && f != 'm' && f != 's' && f != 'U' && f != '<' && f != 'P' {
						return "", unsupported(i, fmt.Sprintf("inline option %q", string(f)))
					}
					if rest[j] == '<' || rest[j] == 'P' {
						break
					}
					j++
				}
			}
		case '*', '+', '?':
			if i+1 < len(src) && src[i+1] == '+' && i > 0 {
				return "", unsupported(i, "possessive quantifier "+src[i:i+2])
			}
		case '{':
			if end, ok := repeatSpec(src[i:]); ok {
				b.WriteString(src[i : i+end])
				i += end - 1
				if i+1 < len(src) && src[i+1] == '+' {
					return "", unsupported(i, "possessive quantifier }+")
				}
				continue
			}
			// PCRE reads a '{' that starts no quantifier literally; so
			// does RE2, but spell it out to be safe.
			b.WriteString(`\{`)
			continue
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}

// repeatSpec recognises {n}, {n,} and {n,m} at the start of s and returns
// its length.
func repeatSpec(s string) (int, bool) {
	i := 1
	digits := func() int {
		st := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		return i - st
	}
	if digits() == 0 {
		return 0, false
	}
	if i < len(s) && s[i] == ',' {
		i++
		digits()
	}
	if i < len(s) && s[i] == '}' {
		return i + 1, true
	}
	return 0, false
}

// pcreAnchors gives ^ and $ their PCRE meaning (§9.6.1: MATCHES uses PCRE
// syntax with the search function and DOTALL, and "the standard beginning
// and end anchors may be used"). Two of them differ in RE2:
//
//   - $ without the m flag: PCRE matches at the very end and also before a
//     newline that ends the subject; RE2 only at the very end. A $ that
//     nothing follows is rewritten to \n?\z, which is exact for a search
//     (the match may take the final newline). A $ that more pattern
//     follows would need a lookahead RE2 lacks, so it is refused.
//   - ^ with the m flag: PCRE does not match after a newline that ends the
//     subject; RE2 does. That only changes the result when what follows
//     the ^ can match the empty string (as in (?m)^$), which is refused.
//
// expr is already in RE2 syntax (translatePCRE's output); the result is
// too. It is re-rendered from the parse tree only when a $ was rewritten.
func pcreAnchors(expr string) (string, error) {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return expr, nil // regexp.Compile reports it
	}
	a := anchorFix{}
	out := a.fix(re, true, true)
	if a.err != nil {
		return "", a.err
	}
	if !a.changed {
		return expr, nil
	}
	return out.String(), nil
}

type anchorFix struct {
	changed bool
	err     error
}

// fix rewrites re; terminal says nothing can follow re in the match, and
// restNullable that what follows can match the empty string.
func (a *anchorFix) fix(re *syntax.Regexp, terminal, restNullable bool) *syntax.Regexp {
	if a.err != nil {
		return re
	}
	switch re.Op {
	case syntax.OpEndText:
		if re.Flags&syntax.WasDollar == 0 {
			return re // \z
		}
		if !terminal {
			a.err = &regexError{msg: "'$' followed by more of the expression: PCRE's $ (end, or before a final newline) cannot be run by Go's RE2 engine there; write \\z for the very end or (?m)$ for any line end"}
			return re
		}
		a.changed = true
		// \n?\z, built from the tree so flags do not matter
		nl := &syntax.Regexp{Op: syntax.OpLiteral, Rune: []rune{'\n'}}
		return &syntax.Regexp{Op: syntax.OpConcat, Sub: []*syntax.Regexp{
			{Op: syntax.OpQuest, Sub: []*syntax.Regexp{nl}},
			{Op: syntax.OpEndText},
		}}
	case syntax.OpBeginLine:
		if restNullable {
			a.err = &regexError{msg: "'^' in multi-line mode followed by a part that can match nothing (as in (?m)^$): PCRE does not match it after a final newline, Go's RE2 engine does; make the rest of the line non-empty"}
		}
		return re
	case syntax.OpConcat:
		for i := len(re.Sub) - 1; i >= 0; i-- {
			re.Sub[i] = a.fix(re.Sub[i], terminal, restNullable)
			// the part before i is followed by re.Sub[i] as well
			terminal = terminal && re.Sub[i].Op == syntax.OpEmptyMatch
			restNullable = restNullable && nullable(re.Sub[i])
		}
		return re
	case syntax.OpAlternate, syntax.OpCapture:
		for i := range re.Sub {
			re.Sub[i] = a.fix(re.Sub[i], terminal, restNullable)
		}
		return re
	case syntax.OpQuest:
		re.Sub[0] = a.fix(re.Sub[0], terminal, restNullable)
		return re
	case syntax.OpRepeat:
		if re.Max == 0 {
			return re // the body never runs
		}
		if re.Max == 1 {
			re.Sub[0] = a.fix(re.Sub[0], terminal, restNullable)
			return re
		}
		fallthrough
	case syntax.OpStar, syntax.OpPlus:
		// Another round of the body may follow, so nothing in it is
		// terminal; the rounds are optional, so what follows can be empty
		// exactly when what follows the loop can.
		re.Sub[0] = a.fix(re.Sub[0], false, restNullable)
		return re
	}
	return re
}

// nullable reports whether re can match the empty string (assertions
// count as possibly empty).
func nullable(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpLiteral:
		return len(re.Rune) == 0
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL, syntax.OpNoMatch:
		return false
	case syntax.OpCapture, syntax.OpPlus:
		return nullable(re.Sub[0])
	case syntax.OpStar, syntax.OpQuest:
		return true
	case syntax.OpRepeat:
		return re.Min == 0 || nullable(re.Sub[0])
	case syntax.OpConcat:
		for _, s := range re.Sub {
			if !nullable(s) {
				return false
			}
		}
		return true
	case syntax.OpAlternate:
		for _, s := range re.Sub {
			if nullable(s) {
				return true
			}
		}
		return false
	}
	return true // empty match, anchors, word boundaries
}
