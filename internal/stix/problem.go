package stix

import (
	"strconv"
	"strings"
)

// Problem is one rule an object breaks.
type Problem struct {
	ID      string // the object's id, "" if it has none/unreadable
	Path    string // JSON path of the offending value, e.g. "$.external_references[1].source_name" ("$" for the whole object)
	Rule    string // what is wrong, a clear sentence
	Section string // spec section, e.g. "3.2", "4.7.1", "2.9"
}

// String renders the problem on one line:
// "<id> <path>: <rule> (STIX 2.1 §<section>)". An object without a readable id
// is shown as "(no id)" so that the line always has the same shape.
func (p Problem) String() string {
	id := p.ID
	if id == "" {
		id = "(no id)"
	}
	path := p.Path
	if path == "" {
		path = "$"
	}
	var b strings.Builder
	b.Grow(len(id) + len(path) + len(p.Rule) + len(p.Section) + 16)
	b.WriteString(id)
	b.WriteByte(' ')
	b.WriteString(path)
	b.WriteString(": ")
	b.WriteString(p.Rule)
	if p.Section != "" {
		b.WriteString(" (STIX 2.1 §")
		b.WriteString(p.Section)
		b.WriteByte(')')
	}
	return b.String()
}

// pathKey appends a property name to a JSON path. Names that are not plain
// identifiers (hyphens in extension keys, dots, quotes) use bracket notation
// so that the path stays unambiguous.
func pathKey(base, key string) string {
	if isPlainName(key) {
		return base + "." + key
	}
	return base + "[" + strconv.Quote(key) + "]"
}

// pathIdx appends a list index to a JSON path.
func pathIdx(base string, i int) string {
	return base + "[" + strconv.Itoa(i) + "]"
}

func isPlainName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case c >= '0' && c <= '9':
			if i == 0 {
				return false
			}
		default:
			return false
		}
	}
	return true
}
