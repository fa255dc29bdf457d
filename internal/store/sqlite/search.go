package sqlite

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"strings"

	"github.com/mitra-cert/mitra/internal/jsonscan"
)

// The search rows of an object version (migration 0011's search_text and
// search_refs) are computed here, in one scan of the body, by the indexer
// that keeps the search file (searchindex.go). They were first kept by an
// AFTER INSERT trigger that parsed every body in SQL several times over
// (about 55 µs of the writer's time per object); then (migration 0013)
// written by the store in the writer's transaction; since migration 0016
// they are written after the commit, in a file of their own.

// searchDoc is what the search indexes hold for one version.
type searchDoc struct {
	name, description, labels, pattern any
}

// searchFields computes, from a body, what migration 0011's trigger
// indexed: json_extract of name, description, pattern (else value), the
// text elements of labels joined by spaces, and the distinct strings
// containing "--" under a key ending in _ref (but marking_ref) or directly
// in a container whose path ends in _refs (outside object_marking_refs),
// the LIKE tests being ASCII case-insensitive. ok is false for a body that
// is not JSON, which the trigger left out.
func searchFields(raw []byte) (d searchDoc, refs []string, ok bool) {
	// jsonscan.Valid answers as json.Valid does, in half the time.
	if !jsonscan.Valid(raw) {
		return d, nil, false
	}
	var sc fieldScan
	if sc.run(raw) {
		return sc.doc, sc.refs, true
	}
	return decodeSearchFields(raw)
}

// decodeSearchFields is searchFields by a generic decode: for the bodies
// fieldScan leaves (not an object, escaped keys).
func decodeSearchFields(raw []byte) (d searchDoc, refs []string, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return d, nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return d, nil, false // trailing content
	}
	if m, isObj := v.(map[string]any); isObj {
		d.name = sqlValue(m["name"])
		d.description = sqlValue(m["description"])
		d.pattern = sqlValue(m["pattern"])
		if d.pattern == nil {
			d.pattern = sqlValue(m["value"])
		}
		d.labels = labelText(m["labels"])
	}
	seen := map[string]bool{}
	walkRefs(v, "$", func(s string) {
		if !seen[s] {
			seen[s] = true
			refs = append(refs, s)
		}
	})
	return d, refs, true
}

// sqlValue is json_extract's value: text for a string, an integer or real
// for a number, 1 or 0 for a boolean, NULL for null or missing, JSON text
// for an object or array.
func sqlValue(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return x
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		if f, err := strconv.ParseFloat(string(x), 64); err == nil {
			return f
		}
		return string(x)
	case bool:
		if x {
			return int64(1)
		}
		return int64(0)
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

// labelText is group_concat(value, ' ') over json_each of labels, text
// values only: an array's string elements, a string itself, an object's
// string members; NULL when there is none.
func labelText(v any) any {
	var parts []string
	switch x := v.(type) {
	case string:
		parts = []string{x}
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok {
				parts = append(parts, s)
			}
		}
	case map[string]any:
		for _, e := range x {
			if s, ok := e.(string); ok {
				parts = append(parts, s)
			}
		}
	}
	if len(parts) == 0 {
		return nil
	}
	return strings.Join(parts, " ")
}

// walkRefs calls ref for each string under v (a container whose json_tree
// path is path) that the trigger's reference test selected.
func walkRefs(v any, path string, ref func(string)) {
	inRefs := (hasSuffixFold(path, "_refs") || hasSuffixFold(path, `_refs"`)) && !containsFold(path, "object_marking_refs")
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			switch e := e.(type) {
			case string:
				if strings.Contains(e, "--") && (inRefs || (hasSuffixFold(k, "_ref") && k != "marking_ref")) {
					ref(e)
				}
			case map[string]any, []any:
				walkRefs(e, path+"."+k, ref)
			}
		}
	case []any:
		for i, e := range x {
			switch e := e.(type) {
			case string:
				if inRefs && strings.Contains(e, "--") {
					ref(e)
				}
			case map[string]any, []any:
				walkRefs(e, path+"["+strconv.Itoa(i)+"]", ref)
			}
		}
	}
}

// hasSuffixFold and containsFold are LIKE's tests: ASCII letters match
// either case.
func hasSuffixFold[T string | []byte](s T, suffix string) bool {
	return len(s) >= len(suffix) && asciiEqualFold(s[len(s)-len(suffix):], suffix)
}

func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if asciiEqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

func asciiEqualFold[T string | []byte](a T, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// fieldScan computes searchFields in one pass over a valid JSON object,
// without building it: the writer runs it for every object it stores.
// run reports false for what it leaves to decodeSearchFields.
type fieldScan struct {
	b    []byte
	i    int
	doc  searchDoc
	refs []string
	seen map[string]bool
	bad  bool // a case left to decodeSearchFields
}

func (s *fieldScan) run(b []byte) bool {
	s.b = b
	s.ws()
	if s.i >= len(b) || b[s.i] != '{' {
		return false
	}
	var spans [5][]byte // name, description, pattern, value, labels
	s.i++
	for !s.bad {
		s.ws()
		if s.b[s.i] == '}' {
			break
		}
		if s.b[s.i] == ',' {
			s.i++
			s.ws()
		}
		k := s.key()
		if s.bad {
			return false
		}
		s.ws()
		s.i++ // ':'
		s.ws()
		start := s.i
		s.member(k, "$")
		f := -1
		switch string(k) {
		case "name":
			f = 0
		case "description":
			f = 1
		case "pattern":
			f = 2
		case "value":
			f = 3
		case "labels":
			f = 4
		}
		if f >= 0 && spans[f] == nil { // json_extract reads the first
			spans[f] = s.b[start:s.i]
		}
	}
	if s.bad {
		return false
	}
	s.doc.name = s.sqlValue(spans[0])
	s.doc.description = s.sqlValue(spans[1])
	s.doc.pattern = s.sqlValue(spans[2])
	if s.doc.pattern == nil {
		s.doc.pattern = s.sqlValue(spans[3])
	}
	s.doc.labels = s.labels(spans[4])
	return !s.bad
}

func (s *fieldScan) ws() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

// key reads an object key; escaped keys are left to the decoder.
func (s *fieldScan) key() []byte {
	start := s.i + 1
	end := bytes.IndexByte(s.b[start:], '"') + start
	if bytes.IndexByte(s.b[start:end], '\\') >= 0 {
		s.bad = true
	}
	s.i = end + 1
	return s.b[start:end]
}

// span reads a string value (at its opening quote) and returns the text
// between its quotes, and whether that has escapes.
func (s *fieldScan) span() ([]byte, bool) {
	start := s.i + 1
	escaped := false
	for j := start; ; {
		k := bytes.IndexByte(s.b[j:], '"')
		if k < 0 { // not JSON: run's caller checked it is
			s.bad, s.i = true, len(s.b)-1
			return nil, false
		}
		end := j + k
		bs := bytes.IndexByte(s.b[j:end], '\\')
		if bs < 0 {
			s.i = end + 1
			return s.b[start:end], escaped
		}
		escaped = true
		j += bs + 2 // past the escaped character, a quote maybe
	}
}

// text is the string value whose text between quotes is v, as span read
// it (the quotes are around it in s.b).
func (s *fieldScan) text(v []byte, escaped bool) string {
	if !escaped {
		return string(v)
	}
	var out string
	if err := json.Unmarshal(s.b[s.i-len(v)-2:s.i], &out); err != nil {
		s.bad = true
	}
	return out
}

// str reads a string value (at its opening quote).
func (s *fieldScan) str() string {
	return s.text(s.span())
}

// strRef reads a string value (at its opening quote) and notes it as a
// reference when it is one of the kind isRef says: only those become Go
// strings.
func (s *fieldScan) strRef(isRef bool) {
	v, escaped := s.span()
	if !isRef {
		return
	}
	if escaped {
		if t := s.text(v, true); strings.Contains(t, "--") {
			s.ref(t)
		}
	} else if bytes.Contains(v, dashes) {
		s.ref(string(v))
	}
}

var dashes = []byte("--")

// member reads the value of key k in the object at path, noting
// references.
func (s *fieldScan) member(k []byte, path string) {
	switch s.b[s.i] {
	case '"':
		s.strRef((hasSuffixFold(k, "_ref") && string(k) != "marking_ref") || refsPath(path))
	case '{', '[':
		s.container(path + "." + string(k))
	default:
		s.scalar()
	}
}

func refsPath(path string) bool {
	return (hasSuffixFold(path, "_refs") || hasSuffixFold(path, `_refs"`)) && !containsFold(path, "object_marking_refs")
}

func (s *fieldScan) ref(v string) {
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	if !s.seen[v] {
		s.seen[v] = true
		s.refs = append(s.refs, v)
	}
}

// container reads the object or array at s.i, whose path is path.
func (s *fieldScan) container(path string) {
	if s.b[s.i] == '{' {
		s.i++
		for !s.bad {
			s.ws()
			if s.b[s.i] == '}' {
				s.i++
				return
			}
			if s.b[s.i] == ',' {
				s.i++
				s.ws()
			}
			k := s.key()
			if s.bad {
				return
			}
			s.ws()
			s.i++
			s.ws()
			s.member(k, path)
		}
		return
	}
	s.i++
	inRefs := refsPath(path)
	for n := 0; !s.bad; n++ {
		s.ws()
		if s.b[s.i] == ']' {
			s.i++
			return
		}
		if s.b[s.i] == ',' {
			s.i++
			s.ws()
		}
		switch s.b[s.i] {
		case '"':
			s.strRef(inRefs)
		case '{', '[':
			s.container(path + "[" + strconv.Itoa(n) + "]")
		default:
			s.scalar()
		}
	}
}

// scalar skips a number, true, false or null.
func (s *fieldScan) scalar() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return
		}
		s.i++
	}
}

// sqlValue is sqlValue of the value whose text is v (nil: missing).
func (s *fieldScan) sqlValue(v []byte) any {
	if v == nil {
		return nil
	}
	switch v[0] {
	case '"':
		sub := fieldScan{b: v}
		str := sub.str()
		s.bad = s.bad || sub.bad
		return str
	case '{', '[':
		var c bytes.Buffer
		if err := json.Compact(&c, v); err != nil {
			s.bad = true
		}
		return c.String()
	case 't':
		return int64(1)
	case 'f':
		return int64(0)
	case 'n':
		return nil
	default:
		return sqlValue(json.Number(v))
	}
}

// labels is labelText of the value whose text is v, in document order.
func (s *fieldScan) labels(v []byte) any {
	if v == nil {
		return nil
	}
	var parts []string
	sub := fieldScan{b: v}
	switch v[0] {
	case '"':
		parts = append(parts, sub.str())
	case '[', '{':
		obj := v[0] == '{'
		sub.i = 1
		for !sub.bad {
			sub.ws()
			if sub.b[sub.i] == ']' || sub.b[sub.i] == '}' {
				break
			}
			if sub.b[sub.i] == ',' {
				sub.i++
				sub.ws()
			}
			if obj {
				if sub.key(); sub.bad {
					break
				}
				sub.ws()
				sub.i++
				sub.ws()
			}
			switch sub.b[sub.i] {
			case '"':
				parts = append(parts, sub.str())
			case '{', '[':
				sub.container("")
			default:
				sub.scalar()
			}
		}
	}
	s.bad = s.bad || sub.bad
	if len(parts) == 0 {
		return nil
	}
	return strings.Join(parts, " ")
}
