// Package jsonscan checks and walks JSON text without decoding it, for the
// hot paths that store bytes as received (TAXII envelopes, change-feed
// pages): Valid accepts exactly what encoding/json.Valid accepts, several
// times faster.
package jsonscan

// maxDepth is encoding/json's nesting limit (its scanner's
// maxNestingDepth): deeper text is not valid for it either.
const maxDepth = 10000

// Valid reports whether data is one valid JSON value, surrounded by
// optional whitespace: the answer of encoding/json.Valid (RFC 8259
// grammar, at most 10,000 levels of nesting; like encoding/json it does
// not check that strings are UTF-8).
func Valid(data []byte) bool {
	i := skipSpace(data, 0)
	i, ok := value(data, i, 0)
	return ok && skipSpace(data, i) == len(data)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// value checks the value at b[i:] and returns the index after it.
func value(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; {
	case c == '"':
		return str(b, i)
	case c == '{':
		return object(b, i, depth+1)
	case c == '[':
		return array(b, i, depth+1)
	case c == '-' || c >= '0' && c <= '9':
		return number(b, i)
	case c == 't':
		return literal(b, i, "true")
	case c == 'f':
		return literal(b, i, "false")
	case c == 'n':
		return literal(b, i, "null")
	}
	return i, false
}

func literal(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

func object(b []byte, i, depth int) (int, bool) {
	if depth > maxDepth {
		return i, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, false
		}
		var ok bool
		if i, ok = str(b, i); !ok {
			return i, false
		}
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != ':' {
			return i, false
		}
		if i, ok = value(b, skipSpace(b, i+1), depth); !ok {
			return i, false
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return i, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return i + 1, true
		default:
			return i, false
		}
	}
}

func array(b []byte, i, depth int) (int, bool) {
	if depth > maxDepth {
		return i, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for {
		var ok bool
		if i, ok = value(b, i, depth); !ok {
			return i, false
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return i, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// str checks the string starting at b[i] ('"').
func str(b []byte, i int) (int, bool) {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c == '\\':
			i++
			if i >= len(b) {
				return i, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-i < 5 || !isHex(b[i+1]) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) {
					return i, false
				}
				i += 4
			default:
				return i, false
			}
		case c < 0x20:
			return i, false
		}
	}
	return i, false
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func digits(b []byte, i int) (int, int) {
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i, i - start
}

func number(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	var n int
	if i < len(b) && b[i] == '0' {
		i++
	} else if i, n = digits(b, i); n == 0 {
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		if i, n = digits(b, i+1); n == 0 {
			return i, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i, n = digits(b, i); n == 0 {
			return i, false
		}
	}
	return i, true
}

// SkipSpace returns the index of the first byte of b[i:] that is not JSON
// whitespace (len(b) when there is none).
func SkipSpace(b []byte, i int) int { return skipSpace(b, i) }

// Value checks the JSON value starting at b[i], inside depth levels of
// objects and arrays, and returns the index just after it; ok is false
// when b[i:] does not start with a valid value (or nests too deep).
func Value(b []byte, i, depth int) (end int, ok bool) { return value(b, i, depth) }

// Object checks the JSON object starting at b[i] and returns the index
// just after it. For each member it calls member with the key as written
// (without its quotes, escapes kept) and the index of the value's first
// byte; member returns the index just after the value, or ok false to
// stop (Object then returns false too). Values nested in the members are
// as deep as member checks them: Value checks one fully.
func Object(b []byte, i int, member func(key []byte, v int) (end int, ok bool)) (end int, ok bool) {
	if i >= len(b) || b[i] != '{' {
		return i, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, false
		}
		k := i
		if i, ok = str(b, i); !ok {
			return i, false
		}
		key := b[k+1 : i-1]
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != ':' {
			return i, false
		}
		if i, ok = member(key, skipSpace(b, i+1)); !ok {
			return i, false
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return i, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// Array checks the JSON array starting at b[i] as Object checks an object,
// calling item with the index of each item's first byte.
func Array(b []byte, i int, item func(v int) (end int, ok bool)) (end int, ok bool) {
	if i >= len(b) || b[i] != '[' {
		return i, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for {
		if i, ok = item(i); !ok {
			return i, false
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return i, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return i + 1, true
		default:
			return i, false
		}
	}
}
