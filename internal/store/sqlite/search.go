package sqlite

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"strings"

	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlstore"
)

// The search indexes of migration 0011 (search_text, search_refs) were
// kept by an AFTER INSERT trigger that parsed every body in SQL several
// times over (json_valid, four json_extract, json_each and a json_tree with
// LIKE tests): about 55 µs of the writer's time per object, more than the
// rest of the insert. Migration 0013 drops that trigger; InsertVersions,
// through which every object row is written (TAXII add, group commit,
// federation, import), queues the same rows, computed here in one scan of
// the body, in the same transaction. The delete trigger stays: a delete
// costs little.

// The rows go as one JSON array parameter each, read by json_each: one
// prepared statement whatever the number of rows, and, for search_text, one
// statement per batch. That matters: FTS5 writes its pending terms out as
// a new segment at every statement savepoint, so a statement per chunk of
// rows made a segment per chunk, and merging those cost more than the
// inserts. Rows find their version's rid by (cid, id, version), through
// objects_version: CROSS JOIN keeps json_each the outer loop (the planner
// would otherwise scan the collection's part of the index).
const (
	insertSearchText = `INSERT INTO search_text (rowid, name, description, labels, pattern)
		SELECT o.rid, j.value ->> 2, j.value ->> 3, j.value ->> 4, j.value ->> 5
		FROM json_each(?) j CROSS JOIN objects o ON o.cid = ? AND o.id = j.value ->> 0 AND o.version = j.value ->> 1`
	insertSearchRefs = `INSERT OR IGNORE INTO search_refs (target, rid)
		SELECT j.value ->> 2, o.rid
		FROM json_each(?) j CROSS JOIN objects o ON o.cid = ? AND o.id = j.value ->> 0 AND o.version = j.value ->> 1`
)

// searchDoc is what the search indexes hold for one version.
type searchDoc struct {
	name, description, labels, pattern any
}

// insertSearch queues the search rows of rows (just queued for insertion
// in collection cid). Send runs them after the batch's other statements
// (lastInBatch), so that the text of a batch makes one FTS5 segment.
func insertSearch(b *sqlstore.Batch, cid int64, rows []store.NewVersion) {
	docs := make([][6]any, 0, len(rows))
	var refs [][3]string
	for _, r := range rows {
		d, targets, ok := searchFields(r.Obj.Raw)
		if !ok {
			continue
		}
		docs = append(docs, [6]any{r.Obj.ID, r.Version, d.name, d.description, d.labels, d.pattern})
		for _, t := range targets {
			refs = append(refs, [3]string{r.Obj.ID, r.Version, t})
		}
	}
	if len(refs) > 0 {
		j, _ := json.Marshal(refs)
		b.Queue(insertSearchRefs, string(j), cid)
	}
	if len(docs) > 0 {
		j, _ := json.Marshal(docs)
		b.Queue(insertSearchText, string(j), cid)
	}
}

// lastInBatch says which statements Send runs after the others of their
// batch: those writing to FTS5 tables.
func lastInBatch(q string) bool { return q == insertSearchText }

// searchFields computes, from a body, what migration 0011's trigger
// indexed: json_extract of name, description, pattern (else value), the
// text elements of labels joined by spaces, and the distinct strings
// containing "--" under a key ending in _ref (but marking_ref) or directly
// in a container whose path ends in _refs (outside object_marking_refs),
// the LIKE tests being ASCII case-insensitive. ok is false for a body that
// is not JSON, which the trigger left out.
func searchFields(raw []byte) (d searchDoc, refs []string, ok bool) {
	if !json.Valid(raw) {
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
func hasSuffixFold(s, suffix string) bool {
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

func asciiEqualFold(a, b string) bool {
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
		switch k {
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
func (s *fieldScan) key() string {
	start := s.i + 1
	end := bytes.IndexByte(s.b[start:], '"') + start
	if bytes.IndexByte(s.b[start:end], '\\') >= 0 {
		s.bad = true
	}
	s.i = end + 1
	return string(s.b[start:end])
}

// str reads a string value (at its opening quote).
func (s *fieldScan) str() string {
	start := s.i
	j := start + 1
	escaped := false
	for s.b[j] != '"' {
		if s.b[j] == '\\' {
			escaped = true
			j++
		}
		j++
	}
	s.i = j + 1
	if !escaped {
		return string(s.b[start+1 : j])
	}
	var v string
	if err := json.Unmarshal(s.b[start:s.i], &v); err != nil {
		s.bad = true
	}
	return v
}

// member reads the value of key k in the object at path, noting
// references.
func (s *fieldScan) member(k, path string) {
	switch s.b[s.i] {
	case '"':
		v := s.str()
		if strings.Contains(v, "--") && ((hasSuffixFold(k, "_ref") && k != "marking_ref") || refsPath(path)) {
			s.ref(v)
		}
	case '{', '[':
		s.container(path + "." + k)
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
			if v := s.str(); inRefs && strings.Contains(v, "--") {
				s.ref(v)
			}
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
