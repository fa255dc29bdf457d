package pattern

import (
	"encoding/base64"
	"encoding/hex"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Pattern is a parsed and validated STIX pattern (§9.4). A Pattern is
// immutable after Parse and safe for concurrent use.
type Pattern struct {
	// Root is the top observation expression.
	Root ObservationExpr
	// Source is the pattern text as given to Parse.
	Source string

	// leaves are the [ ... ] observation expressions in source order; each
	// carries the START/STOP windows that enclose it (pushed down at parse
	// time, see windowsFor).
	leaves []*ObsLeaf
	// minUnits is the least number of distinct observations that can
	// satisfy the pattern; used to reject impossible inputs early.
	minUnits int64
	// stateless is true when one observation alone decides a match: the
	// pattern is an OR-tree of leaves qualified at most by START/STOP.
	stateless bool
	// horizon bounds how long the streaming Matcher remembers an
	// observation for this pattern (from the WITHIN qualifiers, §9.5.1);
	// 0 means unbounded. Only multi-observation patterns use it.
	horizon time.Duration
}

// ObservationExpr is a node of the observation-expression tree: *ObsLeaf,
// *ObsBinary, *ObsWithin, *ObsRepeats or *ObsStartStop.
type ObservationExpr interface {
	// String renders the node in canonical pattern syntax.
	String() string
	write(b *strings.Builder)
	obsNode()
}

func render(w interface{ write(*strings.Builder) }) string {
	var b strings.Builder
	w.write(&b)
	return b.String()
}

// ObsOp is an observation operator (§9.5.2).
type ObsOp int

// Observation operators in increasing precedence order (§9.5.3).
const (
	ObsFollowedBy ObsOp = iota
	ObsOr
	ObsAnd
)

// String returns the operator keyword.
func (o ObsOp) String() string {
	switch o {
	case ObsFollowedBy:
		return "FOLLOWEDBY"
	case ObsOr:
		return "OR"
	default:
		return "AND"
	}
}

// ObsLeaf is a bracketed observation expression: "[" comparison "]".
type ObsLeaf struct {
	Pos  int // character offset of '['
	Expr CompExpr

	index   int      // position in Pattern.leaves
	windows []window // enclosing START/STOP qualifiers
	types   []string // object types a root SCO may have to satisfy Expr
}

// ObsBinary joins two observation expressions with AND, OR or FOLLOWEDBY.
type ObsBinary struct {
	Op          ObsOp
	Left, Right ObservationExpr
}

// ObsWithin is "X WITHIN n SECONDS" (§9.5.1).
type ObsWithin struct {
	X ObservationExpr
	// Seconds is the literal as written; Duration is it converted (saturated
	// at the largest time.Duration).
	Seconds  float64
	Duration time.Duration
	text     string
}

// ObsRepeats is "X REPEATS n TIMES" (§9.5.1).
type ObsRepeats struct {
	X     ObservationExpr
	Times int64
}

// ObsStartStop is "X START t'..' STOP t'..'" (§9.5.1).
type ObsStartStop struct {
	X           ObservationExpr
	Start, Stop time.Time
}

func (*ObsLeaf) obsNode()      {}
func (*ObsBinary) obsNode()    {}
func (*ObsWithin) obsNode()    {}
func (*ObsRepeats) obsNode()   {}
func (*ObsStartStop) obsNode() {}

// String renders the leaf as "[expr]".
func (l *ObsLeaf) String() string { return render(l) }

func (l *ObsLeaf) write(b *strings.Builder) {
	b.WriteByte('[')
	l.Expr.write(b)
	b.WriteByte(']')
}

// obsPrec is the binding strength of a node (§9.5.3): qualified
// expressions and leaves bind tightest, then AND, OR, FOLLOWEDBY.
func obsPrec(n ObservationExpr) int {
	if x, ok := n.(*ObsBinary); ok {
		return int(x.Op) + 1
	}
	return 4
}

func writeObs(b *strings.Builder, n ObservationExpr, paren bool) {
	if paren {
		b.WriteByte('(')
	}
	n.write(b)
	if paren {
		b.WriteByte(')')
	}
}

// String renders the node with only the parentheses its structure needs,
// so the rendering parses back to the same tree.
func (x *ObsBinary) String() string { return render(x) }

func (x *ObsBinary) write(b *strings.Builder) {
	p := obsPrec(x)
	// left-associative: a right operand of equal strength needs parentheses
	writeObs(b, x.Left, obsPrec(x.Left) < p)
	b.WriteString(" " + x.Op.String() + " ")
	writeObs(b, x.Right, obsPrec(x.Right) <= p)
}

// qualKind identifies a qualifier type, for the one-of-each rule
// (§9.5.1); 0 for other nodes.
func qualKind(n ObservationExpr) int {
	switch n.(type) {
	case *ObsWithin:
		return 1
	case *ObsRepeats:
		return 2
	case *ObsStartStop:
		return 3
	}
	return 0
}

// writeQualified writes the operand of a qualifier: parenthesised when it
// is a binary expression, or when its own qualifier chain already has a
// qualifier of this kind.
func writeQualified(b *strings.Builder, x ObservationExpr, kind int) {
	paren := obsPrec(x) < 4
	for n := x; !paren; {
		k := qualKind(n)
		if k == 0 {
			break
		}
		if k == kind {
			paren = true
		}
		switch q := n.(type) {
		case *ObsWithin:
			n = q.X
		case *ObsRepeats:
			n = q.X
		case *ObsStartStop:
			n = q.X
		}
	}
	writeObs(b, x, paren)
}

// String renders the qualified expression.
func (w *ObsWithin) String() string { return render(w) }

func (w *ObsWithin) write(b *strings.Builder) {
	writeQualified(b, w.X, 1)
	b.WriteString(" WITHIN " + w.text + " SECONDS")
}

// String renders the qualified expression.
func (r *ObsRepeats) String() string { return render(r) }

func (r *ObsRepeats) write(b *strings.Builder) {
	writeQualified(b, r.X, 2)
	b.WriteString(" REPEATS " + strconv.FormatInt(r.Times, 10) + " TIMES")
}

// String renders the qualified expression.
func (s *ObsStartStop) String() string { return render(s) }

func (s *ObsStartStop) write(b *strings.Builder) {
	writeQualified(b, s.X, 3)
	b.WriteString(" START " + formatTimestampLiteral(s.Start) + " STOP " + formatTimestampLiteral(s.Stop))
}

// CompExpr is a comparison-expression tree node: *Comparison or *CompBinary.
type CompExpr interface {
	// String renders the node in canonical pattern syntax.
	String() string
	write(b *strings.Builder)
	compNode()
}

// CompBinary joins two comparison expressions with a Boolean operator
// (§9.6). And is true for AND, false for OR.
type CompBinary struct {
	And         bool
	Left, Right CompExpr
}

func (*CompBinary) compNode() {}

// String renders the node with only the parentheses its structure needs.
func (x *CompBinary) String() string { return render(x) }

func compPrec(e CompExpr) int {
	if x, ok := e.(*CompBinary); ok {
		if x.And {
			return 2
		}
		return 1
	}
	return 3
}

func writeComp(b *strings.Builder, e CompExpr, paren bool) {
	if paren {
		b.WriteByte('(')
	}
	e.write(b)
	if paren {
		b.WriteByte(')')
	}
}

func (x *CompBinary) write(b *strings.Builder) {
	p := compPrec(x)
	writeComp(b, x.Left, compPrec(x.Left) < p)
	if x.And {
		b.WriteString(" AND ")
	} else {
		b.WriteString(" OR ")
	}
	writeComp(b, x.Right, compPrec(x.Right) <= p)
}

// CompOp is a comparison operator (§9.6.1).
type CompOp int

// Comparison operators.
const (
	OpEq CompOp = iota
	OpNeq
	OpGt
	OpLt
	OpGe
	OpLe
	OpIn
	OpLike
	OpMatches
	OpIsSubset
	OpIsSuperset
	OpExists
)

var compOpNames = [...]string{"=", "!=", ">", "<", ">=", "<=", "IN", "LIKE", "MATCHES", "ISSUBSET", "ISSUPERSET", "EXISTS"}

// String returns the operator as written in patterns.
func (o CompOp) String() string { return compOpNames[o] }

// Comparison is one comparison expression: an object path, an operator
// optionally negated with NOT, and a constant (a list for IN, none for
// EXISTS).
type Comparison struct {
	Pos     int // character offset of the object path
	Path    *ObjectPath
	Op      CompOp
	Negated bool
	Value   Literal   // the constant, unless Op is OpIn or OpExists
	Set     []Literal // the constants of IN

	// Pre-compiled forms of the constant, set by the parser.
	re     *regexp.Regexp // MATCHES
	like   *likePattern   // LIKE
	prefix netip.Prefix   // ISSUBSET / ISSUPERSET, and = / != / IN when the constant is an IP
	setIP  []netip.Prefix // IN: IP forms of the set members (invalid where not an IP)
}

func (*Comparison) compNode() {}

// String renders the comparison in canonical syntax.
func (c *Comparison) String() string { return render(c) }

func (c *Comparison) write(b *strings.Builder) {
	if c.Op == OpExists {
		b.WriteString("EXISTS ")
		b.WriteString(c.Path.String())
		return
	}
	b.WriteString(c.Path.String())
	b.WriteByte(' ')
	if c.Negated {
		b.WriteString("NOT ")
	}
	b.WriteString(c.Op.String())
	b.WriteByte(' ')
	if c.Op == OpIn {
		b.WriteByte('(')
		for i, l := range c.Set {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(l.String())
		}
		b.WriteByte(')')
		return
	}
	b.WriteString(c.Value.String())
}

// StepKind says what one object-path step does (§9.7).
type StepKind int

// Path step kinds.
const (
	StepProp  StepKind = iota // .name or .'quoted name'
	StepIndex                 // [n]
	StepAny                   // [*]
)

// PathStep is one step of an object path after the object type.
type PathStep struct {
	Kind  StepKind
	Name  string // StepProp
	Index int64  // StepIndex; negative indexes are always out of range
}

// ObjectPath is "<object-type>:<property>..." (§9.7).
type ObjectPath struct {
	Type  string
	Steps []PathStep
	key   string // canonical rendering, used as an index key
}

// String renders the path in canonical syntax, quoting names that need it.
func (p *ObjectPath) String() string {
	if p.key != "" {
		return p.key
	}
	return p.render()
}

func (p *ObjectPath) render() string {
	var b strings.Builder
	b.WriteString(p.Type)
	b.WriteByte(':')
	for i, s := range p.Steps {
		switch s.Kind {
		case StepProp:
			if i > 0 {
				b.WriteByte('.')
			}
			if isPlainPropName(s.Name) {
				b.WriteString(s.Name)
			} else {
				b.WriteString(quoteString(s.Name))
			}
		case StepIndex:
			b.WriteByte('[')
			b.WriteString(strconv.FormatInt(s.Index, 10))
			b.WriteByte(']')
		case StepAny:
			b.WriteString("[*]")
		}
	}
	return b.String()
}

func isPlainPropName(s string) bool {
	if s == "" || keywords[s] != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// LitKind is the type of a pattern constant (§9.2).
type LitKind int

// Constant kinds.
const (
	LitString LitKind = iota
	LitInt
	LitFloat
	LitBool
	LitBinary
	LitHex
	LitTimestamp
)

var litKindNames = [...]string{"string", "integer", "float", "boolean", "binary", "hex", "timestamp"}

// String names the constant type as §9.2 does.
func (k LitKind) String() string { return litKindNames[k] }

// Literal is a pattern constant. Exactly the field matching Kind is set;
// Binary and hex constants both carry their octets in Bytes.
type Literal struct {
	Kind  LitKind
	Str   string
	Int   int64
	Float float64
	Bool  bool
	Bytes []byte
	Time  time.Time
}

// String renders the constant in pattern syntax.
func (l Literal) String() string {
	switch l.Kind {
	case LitString:
		return quoteString(l.Str)
	case LitInt:
		return strconv.FormatInt(l.Int, 10)
	case LitFloat:
		s := strconv.FormatFloat(l.Float, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	case LitBool:
		return strconv.FormatBool(l.Bool)
	case LitBinary:
		return "b'" + base64.StdEncoding.EncodeToString(l.Bytes) + "'"
	case LitHex:
		return "h'" + hex.EncodeToString(l.Bytes) + "'"
	default:
		return formatTimestampLiteral(l.Time)
	}
}

func formatTimestampLiteral(t time.Time) string {
	return "t'" + t.UTC().Format("2006-01-02T15:04:05.999999999Z") + "'"
}

// quoteString renders s as a pattern string constant; only ' and \ are
// escaped because they are the only escapes the grammar knows (§9.2).
func quoteString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('\'')
	return b.String()
}

// window is a START/STOP interval [start, stop).
type window struct{ start, stop time.Time }
