package pattern

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// SyntaxError reports an invalid pattern. Pos is the 0-based offset, in
// characters (Unicode code points), of the place the problem was found.
type SyntaxError struct {
	Pos int
	Msg string
}

// Error renders the error as "position N: message".
func (e *SyntaxError) Error() string { return fmt.Sprintf("position %d: %s", e.Pos, e.Msg) }

// Limits that keep parsing and evaluation bounded on hostile input.
const (
	// MaxPatternLen is the longest pattern Parse accepts, in bytes.
	MaxPatternLen = 1 << 20
	// maxDepth bounds parenthesis and bracket nesting.
	maxDepth = 200
	// maxRepeats bounds REPEATS n TIMES.
	maxRepeats = 1 << 31
)

// Check reports whether pattern is a valid STIX 2.1 pattern. It returns nil
// or a *SyntaxError whose text starts with "position N: ".
func Check(pattern string) error {
	_, err := Parse(pattern)
	return err
}

// MustParse is like Parse but panics on error; for tests and constants.
func MustParse(pattern string) *Pattern {
	p, err := Parse(pattern)
	if err != nil {
		panic(err)
	}
	return p
}

// Parse parses and validates a STIX pattern. The error, if any, is a
// *SyntaxError.
func Parse(src string) (*Pattern, error) {
	if len(src) > MaxPatternLen {
		return nil, &SyntaxError{Pos: 0, Msg: fmt.Sprintf("pattern longer than %d bytes", MaxPatternLen)}
	}
	if !utf8.ValidString(src) {
		i := 0
		for i < len(src) {
			r, n := utf8.DecodeRuneInString(src[i:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			i += n
		}
		// §9.4: patterns MUST be Unicode strings.
		return nil, &SyntaxError{Pos: utf8.RuneCountInString(src[:i]), Msg: "pattern is not valid UTF-8"}
	}
	p := &parser{lx: lexer{src: src}, ascii: isASCII(src)}
	p.advance()
	root, err := p.parse()
	if err != nil {
		return nil, err
	}
	pat := &Pattern{Root: root, Source: src}
	if err := pat.finish(); err != nil {
		return nil, err
	}
	return pat, nil
}

type parser struct {
	lx    lexer
	tok   token
	depth int
	// charPos cache
	ascii            bool
	posByte, posChar int
}

type parseError struct{ err *SyntaxError }

func (p *parser) advance() { p.tok = p.lx.next() }

// charPos converts a byte offset to a character offset. Offsets are
// asked for mostly in increasing order, so it counts on from the last one
// instead of from the start, keeping parsing linear.
func (p *parser) charPos(byteOff int) int {
	byteOff = min(max(byteOff, 0), len(p.lx.src))
	if p.ascii {
		return byteOff
	}
	if byteOff < p.posByte {
		p.posByte, p.posChar = 0, 0
	}
	p.posChar += utf8.RuneCountInString(p.lx.src[p.posByte:byteOff])
	p.posByte = byteOff
	return p.posChar
}

// fail aborts parsing; parse recovers it into the returned error so the
// recursive-descent code stays linear.
func (p *parser) fail(byteOff int, format string, args ...any) {
	panic(parseError{&SyntaxError{Pos: p.charPos(byteOff), Msg: fmt.Sprintf(format, args...)}})
}

func (p *parser) found() string {
	switch p.tok.kind {
	case tEOF:
		return "end of pattern"
	case tIllegal:
		return p.tok.err
	case tIdent:
		return "identifier " + strconv.Quote(p.tok.text)
	default:
		if len(p.tok.text) > 40 {
			return p.tok.kind.String()
		}
		return strconv.Quote(p.tok.text)
	}
}

func (p *parser) expected(what string) {
	if p.tok.kind == tIllegal {
		p.fail(p.tok.pos, "%s", p.tok.err)
	}
	p.fail(p.tok.pos, "expected %s, found %s", what, p.found())
}

func (p *parser) expect(k tokKind, what string) token {
	if p.tok.kind != k {
		p.expected(what)
	}
	t := p.tok
	p.advance()
	return t
}

func (p *parser) enter() {
	p.depth++
	if p.depth > maxDepth {
		p.fail(p.tok.pos, "nesting deeper than %d levels", maxDepth)
	}
}

func (p *parser) leave() { p.depth-- }

func (p *parser) parse() (root ObservationExpr, err error) {
	defer func() {
		if r := recover(); r != nil {
			pe, ok := r.(parseError)
			if !ok {
				panic(r)
			}
			err = pe.err
		}
	}()
	if p.tok.kind == tEOF {
		p.expected("'[' or '(' to start an observation expression")
	}
	root = p.obsFollowedBy()
	if p.tok.kind != tEOF {
		p.expected("AND, OR, FOLLOWEDBY, a qualifier or end of pattern")
	}
	return root, nil
}

// Precedence from §9.5.3: AND binds tighter than OR, OR tighter than
// FOLLOWEDBY; all are left-associative.
func (p *parser) obsFollowedBy() ObservationExpr {
	x := p.obsOr()
	for p.tok.kind == tFollowedBy {
		p.advance()
		x = &ObsBinary{Op: ObsFollowedBy, Left: x, Right: p.obsOr()}
	}
	return x
}

func (p *parser) obsOr() ObservationExpr {
	x := p.obsAnd()
	for p.tok.kind == tOr {
		p.advance()
		x = &ObsBinary{Op: ObsOr, Left: x, Right: p.obsAnd()}
	}
	return x
}

func (p *parser) obsAnd() ObservationExpr {
	x := p.obsQualified()
	for p.tok.kind == tAnd {
		p.advance()
		x = &ObsBinary{Op: ObsAnd, Left: x, Right: p.obsQualified()}
	}
	return x
}

// obsQualified parses a primary followed by any qualifiers. Qualifiers are
// not greedy (§9.5.2): they bind to the primary just before them.
func (p *parser) obsQualified() ObservationExpr {
	x := p.obsPrimary()
	var seenWithin, seenRepeats, seenStart bool
	for {
		switch p.tok.kind {
		case tWithin:
			pos := p.tok.pos
			if seenWithin {
				// §9.5.1: no more than one qualifier of a type.
				p.fail(pos, "duplicate WITHIN qualifier on one observation expression (§9.5.1)")
			}
			seenWithin = true
			p.advance()
			t := p.tok
			if t.kind != tInt && t.kind != tFloat {
				p.expected("a positive number of seconds after WITHIN")
			}
			if t.kind == tInt {
				p.integer(t) // §9.5.1: an integer value, so in the STIX range
			}
			secs, err := strconv.ParseFloat(t.text, 64)
			if err != nil || !(secs > 0) || math.IsInf(secs, 0) {
				p.fail(t.pos, "WITHIN needs a positive number of seconds, found %s", t.text)
			}
			p.advance()
			p.expect(tSeconds, "SECONDS after the WITHIN value")
			d := time.Duration(math.MaxInt64)
			if secs < float64(math.MaxInt64)/1e9 {
				d = time.Duration(math.Round(secs * 1e9))
			}
			if d <= 0 {
				p.fail(t.pos, "WITHIN value %s is below the nanosecond resolution", t.text)
			}
			x = &ObsWithin{X: x, Seconds: secs, Duration: d, text: t.text}
		case tRepeats:
			pos := p.tok.pos
			if seenRepeats {
				p.fail(pos, "duplicate REPEATS qualifier on one observation expression (§9.5.1)")
			}
			seenRepeats = true
			p.advance()
			t := p.tok
			if t.kind != tInt {
				p.expected("a positive integer after REPEATS")
			}
			n, err := strconv.ParseInt(t.text, 10, 64)
			if err != nil || n < 1 || n > maxRepeats {
				p.fail(t.pos, "REPEATS needs a positive integer up to %d, found %s", int64(maxRepeats), t.text)
			}
			p.advance()
			p.expect(tTimes, "TIMES after the REPEATS count")
			x = &ObsRepeats{X: x, Times: n}
		case tStart:
			pos := p.tok.pos
			if seenStart {
				p.fail(pos, "duplicate START/STOP qualifier on one observation expression (§9.5.1)")
			}
			seenStart = true
			p.advance()
			if p.tok.kind != tTimestamp {
				p.expected("a timestamp t'...' after START")
			}
			start := p.timestamp(p.tok)
			p.advance()
			p.expect(tStop, "STOP after the START timestamp")
			if p.tok.kind != tTimestamp {
				p.expected("a timestamp t'...' after STOP")
			}
			stop := p.timestamp(p.tok)
			p.advance()
			x = &ObsStartStop{X: x, Start: start, Stop: stop}
		default:
			return x
		}
	}
}

func (p *parser) obsPrimary() ObservationExpr {
	switch p.tok.kind {
	case tLBrack:
		pos := p.tok.pos
		cpos := p.charPos(pos) // now, while the position cache is behind it
		p.enter()
		p.advance()
		e := p.compOr()
		if p.tok.kind != tRBrack {
			p.expected("']' to close the observation expression opened at position " + strconv.Itoa(cpos) + ", or AND/OR")
		}
		p.advance()
		p.leave()
		return &ObsLeaf{Pos: cpos, Expr: e}
	case tLParen:
		pos := p.tok.pos
		p.enter()
		p.advance()
		x := p.obsFollowedBy()
		if p.tok.kind != tRParen {
			p.expected("')' to close the parenthesis opened at position " + strconv.Itoa(p.charPos(pos)) + ", or AND/OR/FOLLOWEDBY/a qualifier")
		}
		p.advance()
		p.leave()
		return x
	default:
		p.expected("'[' or '(' to start an observation expression")
		return nil
	}
}

func (p *parser) compOr() CompExpr {
	x := p.compAnd()
	for p.tok.kind == tOr {
		p.advance()
		x = &CompBinary{And: false, Left: x, Right: p.compAnd()}
	}
	return x
}

func (p *parser) compAnd() CompExpr {
	x := p.compPrimary()
	for p.tok.kind == tAnd {
		p.advance()
		x = &CompBinary{And: true, Left: x, Right: p.compPrimary()}
	}
	return x
}

func (p *parser) compPrimary() CompExpr {
	switch p.tok.kind {
	case tLParen:
		pos := p.tok.pos
		p.enter()
		p.advance()
		x := p.compOr()
		if p.tok.kind != tRParen {
			p.expected("')' to close the parenthesis opened at position " + strconv.Itoa(p.charPos(pos)) + ", or AND/OR")
		}
		p.advance()
		p.leave()
		return x
	case tExists:
		pos := p.tok.pos
		p.advance()
		path := p.objectPath()
		return &Comparison{Pos: p.charPos(pos), Path: path, Op: OpExists}
	case tIdent:
		return p.comparison()
	case tNot:
		p.fail(p.tok.pos, "NOT must follow the object path and precede the operator (e.g. a:b NOT = 'c')")
	}
	p.expected("an object path, EXISTS or '('")
	return nil
}

func (p *parser) comparison() CompExpr {
	pos := p.tok.pos
	path := p.objectPath()
	c := &Comparison{Pos: p.charPos(pos), Path: path}
	if p.tok.kind == tNot {
		c.Negated = true
		p.advance()
	}
	opTok := p.tok
	switch opTok.kind {
	case tEq, tNeq, tGt, tLt, tGe, tLe:
		c.Op = map[tokKind]CompOp{tEq: OpEq, tNeq: OpNeq, tGt: OpGt, tLt: OpLt, tGe: OpGe, tLe: OpLe}[opTok.kind]
		p.advance()
		c.Value = p.literal()
		if c.Value.Kind == LitBool && c.Op != OpEq && c.Op != OpNeq {
			p.fail(opTok.pos, "booleans can only be compared with = or !=")
		}
		if c.Op == OpEq || c.Op == OpNeq {
			c.prefix = ipConstant(c.Value)
		}
	case tIn:
		c.Op = OpIn
		p.advance()
		c.Set = p.set()
		c.setIP = make([]netip.Prefix, len(c.Set))
		for i, l := range c.Set {
			c.setIP[i] = ipConstant(l)
		}
	case tLike:
		c.Op = OpLike
		p.advance()
		s := p.stringConstant("LIKE")
		c.Value = Literal{Kind: LitString, Str: s}
		// §9.6.1: the LIKE constant MUST be NFC normalized before evaluation.
		c.like = compileLike(norm.NFC.String(s))
	case tMatches:
		c.Op = OpMatches
		p.advance()
		t := p.tok
		s := p.stringConstant("MATCHES")
		re, err := compileRegex(s)
		if err != nil {
			var re2 *regexError
			off := 0
			if errors.As(err, &re2) {
				off = re2.off
			}
			p.failAtConstant(t, off, "invalid MATCHES regular expression: %v", err)
		}
		c.Value = Literal{Kind: LitString, Str: s}
		c.re = re
	case tIsSubset, tIsSuperset:
		c.Op = OpIsSubset
		if opTok.kind == tIsSuperset {
			c.Op = OpIsSuperset
		}
		p.advance()
		t := p.tok
		s := p.stringConstant(opTok.text)
		pf, ok := parseIPPrefix(s)
		if !ok {
			// §9.6.1: b MUST be a valid ipv4-addr or ipv6-addr value.
			p.fail(t.pos, "%s needs an IPv4 or IPv6 address or CIDR block, found %s", opTok.text, quoteString(s))
		}
		c.Value = Literal{Kind: LitString, Str: s}
		c.prefix = pf
	case tExists:
		p.fail(opTok.pos, "EXISTS goes before the object path (EXISTS a:b)")
	default:
		p.expected("a comparison operator (=, !=, <, <=, >, >=, IN, LIKE, MATCHES, ISSUBSET, ISSUPERSET)")
	}
	return c
}

// failAtConstant reports an error inside a string constant, at the
// character off bytes into its decoded value when that maps cleanly.
func (p *parser) failAtConstant(t token, off int, format string, args ...any) {
	pos := t.pos
	if off > 0 && !strings.Contains(t.text, "\\") && 1+off < len(t.text) {
		pos = t.pos + 1 + off
	}
	p.fail(pos, format, args...)
}

func (p *parser) stringConstant(op string) string {
	if p.tok.kind != tString {
		p.expected("a string constant after " + op)
	}
	s := p.tok.val
	p.advance()
	return s
}

func (p *parser) set() []Literal {
	open := p.expect(tLParen, "'(' to start the IN list")
	p.enter()
	var out []Literal
	if p.tok.kind == tRParen {
		p.advance()
		p.leave()
		return out
	}
	for {
		pos := p.tok.pos
		l := p.literal()
		if len(out) > 0 && !sameSetKind(out[0].Kind, l.Kind) {
			// §9.6.1: IN set values MUST be of homogeneous type.
			p.fail(pos, "IN list mixes %s and %s constants; the values must be of one type", out[0].Kind, l.Kind)
		}
		out = append(out, l)
		if p.tok.kind == tComma {
			p.advance()
			continue
		}
		if p.tok.kind != tRParen {
			p.expected("',' or ')' in the IN list opened at position " + strconv.Itoa(p.charPos(open.pos)))
		}
		p.advance()
		p.leave()
		return out
	}
}

func sameSetKind(a, b LitKind) bool {
	num := func(k LitKind) bool { return k == LitInt || k == LitFloat }
	bin := func(k LitKind) bool { return k == LitBinary || k == LitHex }
	return a == b || num(a) && num(b) || bin(a) && bin(b)
}

func (p *parser) literal() Literal {
	t := p.tok
	var l Literal
	switch t.kind {
	case tString:
		l = Literal{Kind: LitString, Str: t.val}
	case tInt:
		l = Literal{Kind: LitInt, Int: p.integer(t)}
	case tFloat:
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil || math.IsInf(f, 0) {
			p.fail(t.pos, "float %s out of range", t.text)
		}
		l = Literal{Kind: LitFloat, Float: f}
	case tTrue, tFalse:
		l = Literal{Kind: LitBool, Bool: t.kind == tTrue}
	case tBinary:
		// §9.2: line feeds in base64 data MUST be supported and ignored.
		// Nothing else outside the base64 alphabet is: RFC 4648 §3.3 has
		// the decoder reject it unless the referring specification says
		// otherwise, and §9.2 names line feeds only. Go's decoder would
		// skip carriage returns too, so they are refused here.
		if i := strings.IndexByte(t.val, '\r'); i >= 0 {
			p.fail(t.pos, "invalid binary constant: carriage return at offset %d; only line feeds may break base64 data (§9.2)", i)
		}
		s := strings.ReplaceAll(t.val, "\n", "")
		b, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil {
			p.fail(t.pos, "invalid base64 in binary constant: %v", err)
		}
		l = Literal{Kind: LitBinary, Bytes: b}
	case tHex:
		if len(t.val)%2 != 0 {
			p.fail(t.pos, "hex constant needs an even number of hex digits (§9.2)")
		}
		// §9.2 (and §2.8): the digits '0' through '9' and the letters 'a'
		// through 'f'; hex.DecodeString alone would also take A-F.
		for i := 0; i < len(t.val); i++ {
			if c := t.val[i]; !isDigit(c) && (c < 'a' || c > 'f') {
				p.fail(t.pos, "invalid hex constant: only 0-9 and lower-case a-f are allowed, found %q (§9.2, §2.8)", rune(c))
			}
		}
		b, err := hex.DecodeString(t.val)
		if err != nil {
			p.fail(t.pos, "invalid hex constant: %v (§9.2)", err)
		}
		l = Literal{Kind: LitHex, Bytes: b}
	case tTimestamp:
		l = Literal{Kind: LitTimestamp, Time: p.timestamp(t)}
	default:
		p.expected("a constant (string, number, boolean, b'..', h'..' or t'..')")
	}
	p.advance()
	return l
}

// maxSTIXInt is the largest magnitude of a STIX integer: §2.10 bounds
// integers to [-(2**53)+1, (2**53)-1], and §9.2 says the valid range of
// integer constants is the one of section 2.
const maxSTIXInt = 1<<53 - 1

// integer converts an integer constant, refusing values outside the STIX
// integer range (§2.10, §9.2) rather than the wider int64 range.
func (p *parser) integer(t token) int64 {
	n, err := strconv.ParseInt(t.text, 10, 64)
	if err != nil || n > maxSTIXInt || n < -maxSTIXInt {
		p.fail(t.pos, "integer %s out of range: STIX integers lie in [-(2^53)+1, (2^53)-1] (§2.10, §9.2)", t.text)
	}
	return n
}

func (p *parser) timestamp(t token) time.Time {
	ts, err := parseTimestampLiteral(t.val)
	if err != nil {
		p.fail(t.pos, "invalid timestamp %s: %v", t.text, err)
	}
	return ts
}

// objectPath parses "<object-type>:<property>{.<prop>|[n]|[*]}" (§9.7).
func (p *parser) objectPath() *ObjectPath {
	t := p.tok
	if t.kind != tIdent {
		p.expected("an object type (e.g. file) to start the object path")
	}
	path := &ObjectPath{Type: t.text}
	p.advance()
	if p.tok.kind != tColon {
		p.expected("':' after the object type " + strconv.Quote(t.text))
	}
	p.advance()
	// first property: identifier without hyphen, or quoted
	path.Steps = append(path.Steps, PathStep{Kind: StepProp, Name: p.propName()})
	for {
		switch p.tok.kind {
		case tDot:
			p.advance()
			path.Steps = append(path.Steps, PathStep{Kind: StepProp, Name: p.propName()})
		case tFloat:
			// ".5" lexes as a float; a numeric key after a dot is a
			// property name only if quoted.
			p.fail(p.tok.pos, "expected a property name after '.', found %s (quote keys that are not identifiers)", strconv.Quote(p.tok.text))
		case tLBrack:
			p.advance()
			switch p.tok.kind {
			case tStar:
				path.Steps = append(path.Steps, PathStep{Kind: StepAny})
			case tInt:
				n, err := strconv.ParseInt(p.tok.text, 10, 64)
				if err != nil {
					p.fail(p.tok.pos, "list index %s out of range", p.tok.text)
				}
				path.Steps = append(path.Steps, PathStep{Kind: StepIndex, Index: n})
			default:
				p.expected("a list index (integer or *)")
			}
			p.advance()
			p.expect(tRBrack, "']' after the list index")
		default:
			path.key = path.render()
			return path
		}
	}
}

func (p *parser) propName() string {
	t := p.tok
	switch t.kind {
	case tIdent:
		if strings.Contains(t.text, "-") {
			// §9.7: names containing '-' or '.' MUST be quoted.
			p.fail(t.pos, "property name %s contains '-' and must be quoted: '%s' (§9.7)", strconv.Quote(t.text), t.text)
		}
		p.advance()
		return t.text
	case tString:
		p.advance()
		return t.val
	case tIllegal:
		p.expected("a property name")
	}
	if _, ok := keywords[t.text]; ok && t.text != "" {
		p.fail(t.pos, "property name %s is a keyword and must be quoted: '%s'", strconv.Quote(t.text), t.text)
	}
	p.expected("a property name")
	return ""
}

// parseTimestampLiteral parses the body of t'...': a STIX timestamp
// (§2.16, RFC 3339 in UTC with "Z", optional fractional seconds). The
// upper-case T and Z are required, as in the reference grammar; a leap
// second :60 is accepted and counted as the next second.
func parseTimestampLiteral(s string) (time.Time, error) {
	const layout = "YYYY-MM-DDTHH:MM:SS"
	if len(s) < len(layout)+1 || s[len(s)-1] != 'Z' {
		return time.Time{}, errors.New("want YYYY-MM-DDTHH:MM:SS[.s+]Z")
	}
	for i := 0; i < len(layout); i++ {
		c := s[i]
		switch layout[i] {
		case '-', 'T', ':':
			if c != layout[i] {
				return time.Time{}, errors.New("want YYYY-MM-DDTHH:MM:SS[.s+]Z")
			}
		default:
			if !isDigit(c) {
				return time.Time{}, errors.New("want YYYY-MM-DDTHH:MM:SS[.s+]Z")
			}
		}
	}
	num := func(a, b int) int { n, _ := strconv.Atoi(s[a:b]); return n }
	year, mon, day := num(0, 4), num(5, 7), num(8, 10)
	hh, mm, ss := num(11, 13), num(14, 16), num(17, 19)
	var nsec int
	frac := s[19 : len(s)-1]
	if frac != "" {
		if frac[0] != '.' || len(frac) == 1 {
			return time.Time{}, errors.New("want fractional seconds as .digits")
		}
		digits := frac[1:]
		for i := 0; i < len(digits); i++ {
			if !isDigit(digits[i]) {
				return time.Time{}, errors.New("want fractional seconds as .digits")
			}
		}
		if len(digits) > 9 {
			digits = digits[:9] // below time.Time resolution
		}
		nsec = num(20, 20+len(digits))
		for i := len(digits); i < 9; i++ {
			nsec *= 10
		}
	}
	if mon < 1 || mon > 12 || day < 1 || hh > 23 || mm > 59 || ss > 60 {
		return time.Time{}, errors.New("field out of range")
	}
	if day > daysIn(time.Month(mon), year) {
		return time.Time{}, fmt.Errorf("day %d does not exist in %04d-%02d", day, year, mon)
	}
	return time.Date(year, time.Month(mon), day, hh, mm, ss, nsec, time.UTC), nil
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
