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
// federation, import), queues the same rows, computed here in one Go
// parse, as multi-row statements in the same transaction. The delete
// trigger stays: a delete costs little.

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
	id, version                        string
	name, description, labels, pattern any
}

type searchRef struct{ id, version, target string }

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
