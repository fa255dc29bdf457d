package stix

import (
	"encoding/json"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds nesting so that hostile input cannot exhaust the stack of
// the TAXII server; real STIX content nests a handful of levels.
const maxDepth = 200

// decoder is a strict JSON reader for one object. encoding/json silently keeps
// the last of duplicate keys and turns every number into float64; STIX needs
// both noticed (RFC 8259 §4 says names SHOULD be unique, STIX §2.3 says
// dictionary keys MUST be), and an integer property must be told from a
// float one by its literal, so this reader keeps numbers as json.Number and
// records every duplicate key with its path. It decodes each object once, with
// the same value shapes as encoding/json (map[string]any, []any, string,
// json.Number, bool, nil).
//
// Allocations are most of the cost of validation on the ingest path, so
// the input is copied into one string once and every string and number
// without escapes is a substring of it rather than an allocation of its
// own, and path segments are kept unboxed.
type decoder struct {
	data []byte
	// s is data as a string: the backing of decoded strings and numbers.
	s     string
	pos   int
	depth int
	// stack holds the path segments (string keys or int indexes) of the
	// value being read; it is turned into a string only for a duplicate.
	stack []pathSegment
	dups  []string
}

// pathSegment is an object key, or a list index when isIndex is set.
type pathSegment struct {
	key     string
	index   int
	isIndex bool
}

// topLevelKeys is the room made in the outermost object's map: STIX
// objects carry about 10 to 20 properties, and growing a map rehashes it.
const topLevelKeys = 16

// syntaxError is a JSON syntax error with its byte offset.
type syntaxError struct {
	msg string
	off int
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.off, e.msg)
}

// decodeJSON reads exactly one JSON value from data (surrounded by optional
// whitespace). It returns the value and the JSON paths of duplicated keys.
func decodeJSON(data []byte) (any, []string, error) {
	d := decoder{data: data, s: string(data), stack: make([]pathSegment, 0, 8)}
	d.skipSpace()
	v, err := d.value()
	if err != nil {
		return nil, nil, err
	}
	d.skipSpace()
	if d.pos != len(d.data) {
		return nil, nil, d.errf("unexpected data after the JSON value")
	}
	return v, d.dups, nil
}

func (d *decoder) errf(format string, args ...any) error {
	return &syntaxError{msg: fmt.Sprintf(format, args...), off: d.pos}
}

func (d *decoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *decoder) value() (any, error) {
	if d.pos >= len(d.data) {
		return nil, d.errf("unexpected end of input")
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		return d.object()
	case c == '[':
		return d.array()
	case c == '"':
		return d.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	default:
		return nil, d.errf("unexpected character %q", c)
	}
}

func (d *decoder) literal(lit string) error {
	if len(d.data)-d.pos < len(lit) || string(d.data[d.pos:d.pos+len(lit)]) != lit {
		return d.errf("invalid literal")
	}
	d.pos += len(lit)
	return nil
}

func (d *decoder) enter() error {
	d.depth++
	if d.depth > maxDepth {
		return d.errf("nesting deeper than %d levels", maxDepth)
	}
	return nil
}

func (d *decoder) object() (any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	d.pos++ // '{'
	var m map[string]any
	if d.depth == 1 {
		m = make(map[string]any, topLevelKeys)
	} else {
		m = make(map[string]any)
	}
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		d.depth--
		return m, nil
	}
	for {
		d.skipSpace()
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return nil, d.errf("expected a string as object key")
		}
		k, err := d.str()
		if err != nil {
			return nil, err
		}
		d.skipSpace()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return nil, d.errf("expected ':' after object key")
		}
		d.pos++
		d.skipSpace()
		d.stack = append(d.stack, pathSegment{key: k})
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		if _, dup := m[k]; dup {
			d.dups = append(d.dups, d.path())
		}
		d.stack = d.stack[:len(d.stack)-1]
		m[k] = v
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, d.errf("unexpected end of input in object")
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case '}':
			d.pos++
			d.depth--
			return m, nil
		default:
			return nil, d.errf("expected ',' or '}' in object")
		}
	}
}

func (d *decoder) array() (any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	d.pos++ // '['
	a := []any{}
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		d.depth--
		return a, nil
	}
	for {
		d.skipSpace()
		d.stack = append(d.stack, pathSegment{index: len(a), isIndex: true})
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		d.stack = d.stack[:len(d.stack)-1]
		a = append(a, v)
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, d.errf("unexpected end of input in array")
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case ']':
			d.pos++
			d.depth--
			return a, nil
		default:
			return nil, d.errf("expected ',' or ']' in array")
		}
	}
}

func (d *decoder) path() string {
	p := "$"
	for _, s := range d.stack {
		if s.isIndex {
			p = pathIdx(p, s.index)
		} else {
			p = pathKey(p, s.key)
		}
	}
	return p
}

func (d *decoder) str() (string, error) {
	d.pos++ // opening quote
	start := d.pos
	escaped := false
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			raw := d.data[start:d.pos]
			d.pos++
			if !escaped {
				// RFC 8259 §8.1: JSON text exchanged between systems MUST be UTF-8.
				if !utf8.Valid(raw) {
					return "", &syntaxError{msg: "string is not valid UTF-8", off: start}
				}
				return d.s[start : d.pos-1], nil
			}
			return unescape(raw, start)
		case c == '\\':
			escaped = true
			d.pos += 2
		case c < 0x20:
			return "", d.errf("control character in string")
		default:
			d.pos++
		}
	}
	return "", d.errf("unterminated string")
}

func unescape(raw []byte, off int) (string, error) {
	if !utf8.Valid(raw) {
		return "", &syntaxError{msg: "string is not valid UTF-8", off: off}
	}
	b := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			b = append(b, c)
			continue
		}
		i++
		if i >= len(raw) {
			return "", &syntaxError{msg: "bad escape", off: off + i}
		}
		switch raw[i] {
		case '"', '\\', '/':
			b = append(b, raw[i])
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := hex4(raw, i+1)
			if !ok {
				return "", &syntaxError{msg: "bad \\u escape", off: off + i}
			}
			i += 4
			if utf16.IsSurrogate(r) {
				// A pair is two escapes; a lone surrogate becomes U+FFFD, as
				// encoding/json does.
				if i+2 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					if r2, ok := hex4(raw, i+3); ok {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							b = utf8.AppendRune(b, dec)
							i += 6
							continue
						}
					}
				}
				r = utf8.RuneError
			}
			b = utf8.AppendRune(b, r)
		default:
			return "", &syntaxError{msg: "bad escape", off: off + i}
		}
	}
	return string(b), nil
}

func hex4(raw []byte, i int) (rune, bool) {
	if i+4 > len(raw) {
		return 0, false
	}
	var r rune
	for _, c := range raw[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

func (d *decoder) number() (any, error) {
	start := d.pos
	if d.data[d.pos] == '-' {
		d.pos++
	}
	digits := func() int {
		n := 0
		for d.pos < len(d.data) && d.data[d.pos] >= '0' && d.data[d.pos] <= '9' {
			d.pos++
			n++
		}
		return n
	}
	if d.pos < len(d.data) && d.data[d.pos] == '0' {
		d.pos++
	} else if digits() == 0 {
		return nil, d.errf("invalid number")
	}
	if d.pos < len(d.data) && d.data[d.pos] == '.' {
		d.pos++
		if digits() == 0 {
			return nil, d.errf("invalid number")
		}
	}
	if d.pos < len(d.data) && (d.data[d.pos] == 'e' || d.data[d.pos] == 'E') {
		d.pos++
		if d.pos < len(d.data) && (d.data[d.pos] == '+' || d.data[d.pos] == '-') {
			d.pos++
		}
		if digits() == 0 {
			return nil, d.errf("invalid number")
		}
	}
	return json.Number(d.s[start:d.pos]), nil
}
