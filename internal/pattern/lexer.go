package pattern

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

type tokKind int

const (
	tEOF tokKind = iota
	tIllegal
	tLBrack
	tRBrack
	tLParen
	tRParen
	tComma
	tColon
	tDot
	tStar
	tEq
	tNeq
	tLt
	tLe
	tGt
	tGe
	tIdent
	tString
	tInt
	tFloat
	tBinary
	tHex
	tTimestamp
	// keywords
	tAnd
	tOr
	tNot
	tFollowedBy
	tLike
	tMatches
	tIsSubset
	tIsSuperset
	tExists
	tIn
	tStart
	tStop
	tSeconds
	tWithin
	tRepeats
	tTimes
	tTrue
	tFalse
	tLast
)

// keywords are case-sensitive, as in the reference grammar; true and false
// are lower case, the operators upper case.
var keywords = map[string]tokKind{
	"AND": tAnd, "OR": tOr, "NOT": tNot, "FOLLOWEDBY": tFollowedBy,
	"LIKE": tLike, "MATCHES": tMatches, "ISSUBSET": tIsSubset,
	"ISSUPERSET": tIsSuperset, "EXISTS": tExists, "IN": tIn,
	"START": tStart, "STOP": tStop, "SECONDS": tSeconds, "WITHIN": tWithin,
	"REPEATS": tRepeats, "TIMES": tTimes, "true": tTrue, "false": tFalse,
	"LAST": tLast,
}

func (k tokKind) String() string {
	switch k {
	case tEOF:
		return "end of pattern"
	case tIllegal:
		return "invalid character"
	case tLBrack:
		return "'['"
	case tRBrack:
		return "']'"
	case tLParen:
		return "'('"
	case tRParen:
		return "')'"
	case tComma:
		return "','"
	case tColon:
		return "':'"
	case tDot:
		return "'.'"
	case tStar:
		return "'*'"
	case tEq:
		return "'='"
	case tNeq:
		return "'!='"
	case tLt:
		return "'<'"
	case tLe:
		return "'<='"
	case tGt:
		return "'>'"
	case tGe:
		return "'>='"
	case tIdent:
		return "identifier"
	case tString:
		return "string"
	case tInt:
		return "integer"
	case tFloat:
		return "float"
	case tBinary:
		return "binary constant"
	case tHex:
		return "hex constant"
	case tTimestamp:
		return "timestamp"
	}
	for s, kk := range keywords {
		if kk == k {
			return s
		}
	}
	return "token"
}

type token struct {
	kind tokKind
	pos  int    // byte offset of the first character
	end  int    // byte offset after the token
	text string // raw text
	val  string // decoded content of quoted tokens
	err  string // for tIllegal, why
}

// lexer turns the pattern into tokens on demand. It never fails: problems
// become tIllegal tokens that the parser reports with their position.
type lexer struct {
	src string
	off int
}

func isWSpace(r rune) bool { return unicode.IsSpace(r) } // WSpace=Y (§9.4)

func (lx *lexer) skipSpace() {
	for lx.off < len(lx.src) {
		c := lx.src[lx.off]
		if c < utf8.RuneSelf {
			if c == ' ' || c >= '\t' && c <= '\r' {
				lx.off++
				continue
			}
			return
		}
		r, n := utf8.DecodeRuneInString(lx.src[lx.off:])
		if !isWSpace(r) {
			return
		}
		lx.off += n
	}
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdentChar(c byte) bool {
	return isIdentStart(c) || c >= '0' && c <= '9' || c == '-'
}

func (lx *lexer) next() token {
	lx.skipSpace()
	start := lx.off
	if lx.off >= len(lx.src) {
		return token{kind: tEOF, pos: start, end: start}
	}
	c := lx.src[lx.off]
	one := func(k tokKind) token {
		lx.off++
		return token{kind: k, pos: start, end: lx.off, text: lx.src[start:lx.off]}
	}
	switch c {
	case '[':
		return one(tLBrack)
	case ']':
		return one(tRBrack)
	case '(':
		return one(tLParen)
	case ')':
		return one(tRParen)
	case ',':
		return one(tComma)
	case ':':
		return one(tColon)
	case '*':
		return one(tStar)
	case '=':
		if strings.HasPrefix(lx.src[lx.off:], "==") {
			lx.off++
		}
		return one(tEq)
	case '!':
		if strings.HasPrefix(lx.src[lx.off:], "!=") {
			lx.off++
			return one(tNeq)
		}
		lx.off++
		return token{kind: tIllegal, pos: start, end: lx.off, text: "!", err: "'!' must be followed by '='"}
	case '<':
		if strings.HasPrefix(lx.src[lx.off:], "<=") {
			lx.off++
			return one(tLe)
		}
		if strings.HasPrefix(lx.src[lx.off:], "<>") {
			lx.off++
			return one(tNeq)
		}
		return one(tLt)
	case '>':
		if strings.HasPrefix(lx.src[lx.off:], ">=") {
			lx.off++
			return one(tGe)
		}
		return one(tGt)
	case '\'':
		return lx.quoted(tString, start, start)
	case '.':
		if lx.off+1 < len(lx.src) && isDigit(lx.src[lx.off+1]) {
			return lx.number(start)
		}
		return one(tDot)
	case '-', '+':
		return lx.number(start)
	}
	if isDigit(c) {
		return lx.number(start)
	}
	if isIdentStart(c) {
		end := lx.off + 1
		for end < len(lx.src) && isIdentChar(lx.src[end]) {
			end++
		}
		word := lx.src[start:end]
		if end < len(lx.src) && lx.src[end] == '\'' && len(word) == 1 {
			switch word {
			case "b":
				return lx.quoted(tBinary, start, end)
			case "h":
				return lx.quoted(tHex, start, end)
			case "t":
				return lx.quoted(tTimestamp, start, end)
			}
		}
		lx.off = end
		if k, ok := keywords[word]; ok {
			return token{kind: k, pos: start, end: end, text: word}
		}
		return token{kind: tIdent, pos: start, end: end, text: word}
	}
	r, n := utf8.DecodeRuneInString(lx.src[lx.off:])
	lx.off += n
	msg := fmt.Sprintf("unexpected character %q", r)
	if r == '"' {
		msg = "unexpected '\"': string constants use apostrophes (')"
	}
	return token{kind: tIllegal, pos: start, end: lx.off, text: string(r), err: msg}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// quoted scans a '...' body starting at quote (the apostrophe). Only \' and
// \\ are escapes (§9.2); any other backslash sequence is an error.
func (lx *lexer) quoted(kind tokKind, start, quote int) token {
	i := quote + 1
	var b strings.Builder
	plain := true // no escapes seen: val can share the source string
	segStart := i
	for i < len(lx.src) {
		c := lx.src[i]
		switch c {
		case '\'':
			val := lx.src[segStart:i]
			if !plain {
				b.WriteString(val)
				val = b.String()
			}
			lx.off = i + 1
			return token{kind: kind, pos: start, end: lx.off, text: lx.src[start:lx.off], val: val}
		case '\\':
			if i+1 >= len(lx.src) {
				lx.off = len(lx.src)
				return token{kind: tIllegal, pos: start, end: lx.off, err: "unterminated string constant"}
			}
			n := lx.src[i+1]
			if n != '\'' && n != '\\' {
				lx.off = i + 2
				return token{kind: tIllegal, pos: i, end: lx.off, err: fmt.Sprintf("invalid escape '\\%c' in string constant: only \\' and \\\\ are allowed", n)}
			}
			plain = false
			b.WriteString(lx.src[segStart:i])
			b.WriteByte(n)
			i += 2
			segStart = i
		default:
			i++
		}
	}
	lx.off = len(lx.src)
	return token{kind: tIllegal, pos: start, end: lx.off, err: "unterminated string constant: expected closing '"}
}

// number scans an integer or float constant, following the reference
// grammar: -?(0|[1-9][0-9]*) and -?[0-9]*\.[0-9]+. A leading '+' is
// rejected because §9.2 says positive numbers MUST omit it.
func (lx *lexer) number(start int) token {
	i := start
	if lx.src[i] == '+' {
		lx.off = i + 1
		return token{kind: tIllegal, pos: start, end: lx.off, err: "numbers must not have a '+' sign (§9.2)"}
	}
	if lx.src[i] == '-' {
		i++
	}
	digStart := i
	for i < len(lx.src) && isDigit(lx.src[i]) {
		i++
	}
	intDigits := i - digStart
	kind := tInt
	if i < len(lx.src) && lx.src[i] == '.' {
		j := i + 1
		for j < len(lx.src) && isDigit(lx.src[j]) {
			j++
		}
		if j == i+1 {
			lx.off = j
			return token{kind: tIllegal, pos: start, end: j, err: "expected digits after '.' in float constant"}
		}
		i = j
		kind = tFloat
	} else if intDigits == 0 {
		lx.off = i
		return token{kind: tIllegal, pos: start, end: i, err: "expected digits after '-'"}
	}
	if i < len(lx.src) && (isIdentStart(lx.src[i]) || lx.src[i] == '.') {
		lx.off = i + 1
		return token{kind: tIllegal, pos: start, end: i + 1, err: "malformed number"}
	}
	if kind == tInt && intDigits > 1 && lx.src[digStart] == '0' {
		lx.off = i
		return token{kind: tIllegal, pos: start, end: i, err: "integers must not have leading zeros"}
	}
	lx.off = i
	return token{kind: kind, pos: start, end: i, text: lx.src[start:i]}
}
