package sqlite

import (
	"compress/gzip"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unicode/utf8"
)

// The SQL of migration 0011's search_add trigger, over one body (?1).
const (
	triggerText = `SELECT json_extract(j, '$.name'), json_extract(j, '$.description'),
        (SELECT group_concat(value, ' ') FROM json_each(j, '$.labels') WHERE type = 'text'),
        coalesce(json_extract(j, '$.pattern'), json_extract(j, '$.value'))
    FROM (SELECT CAST(?1 AS TEXT) AS j) WHERE json_valid(j)`
	triggerRefs = `SELECT DISTINCT t.value
    FROM (SELECT CASE WHEN json_valid(CAST(?1 AS TEXT)) THEN CAST(?1 AS TEXT) ELSE '{}' END AS j) s, json_tree(s.j) t
    WHERE t.type = 'text' AND t.value LIKE '%--%'
      AND ((t.key LIKE '%\_ref' ESCAPE '\' AND t.key <> 'marking_ref')
        OR ((t.path LIKE '%\_refs' ESCAPE '\' OR t.path LIKE '%\_refs"' ESCAPE '\') AND t.path NOT LIKE '%object\_marking\_refs%' ESCAPE '\'))`
)

// TestSearchFieldsMatchTrigger checks that the search rows the store
// computes are the ones the trigger they replace computed, on edge cases
// and on every object of the shared ATT&CK bundle.
func TestSearchFieldsMatchTrigger(t *testing.T) {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	bodies := []string{
		`{"type":"indicator","id":"indicator--1","name":"Evil","description":"d--x","pattern":"[a:b = 'c']","labels":["a","b",3,null]}`,
		`{"type":"report","id":"report--1","object_refs":["indicator--1","x--2","plain"],"created_by_ref":"identity--9","object_marking_refs":["marking-definition--1"]}`,
		`{"type":"x","id":"x--1","value":"1.2.3.4","labels":"one","name":12,"description":true,"X_REFS":["a--b"],"Source_Ref":"s--1"}`,
		`{"type":"x","id":"x--1","pattern":null,"value":"v","labels":{"k":"l"},"name":1.5,"description":{"a":1}}`,
		`{"type":"x","granular_markings":[{"marking_ref":"marking-definition--2","selectors":["name"]}],"nested":{"deep_refs":["d--1",["e--2"]],"o":{"target_ref":"t--3"}}}`,
		`{"type":"x","x_refs":{"a":"m--1","b_ref":"m--2"},"object_marking_refs_extra":["q--1"],"y":{"object_marking_refs":{"z_ref":"q--2"}}}`,
		`{"type":"x","name":"a"} trailing`,
		`not json`,
		`["top--1",{"a_ref":"top--2"}]`,
		`"s--1"`,
		`{"type":"x","name":"\u00e9t\u00e9","dup_ref":"d--1","dup2_ref":"d--1"}`,
		` { "type" : "x" , "name" : "a\"b--c" , "labels" : { "p" : "one", "q" : 2, "r" : "two" } , "a_ref" : "e\u002d-1" , "deep" : [ { "x_refs" : [ "f--1" , [ "g--1" ] , { "h_ref" : "h--1" } ] } ] , "n" : -1.5e3 , "t" : true } `,
		`{"type":"x","name":null,"description":[1,{"b":2}],"pattern":false,"value":"v","labels":["a","b"],"x\"_ref":"k--1"}`,
		`{"type":"x","name":"first","name":"second"}`,
		`{"type":"x","name":123456789012345678901234567890,"description":-0.0,"labels":[]}`,
	}
	if f, err := os.Open("../../../../shared/data/ics-attack-18.1.json.gz"); err == nil {
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		var bundle struct{ Objects []json.RawMessage }
		if err := json.NewDecoder(zr).Decode(&bundle); err != nil {
			t.Fatal(err)
		}
		f.Close()
		for _, o := range bundle.Objects {
			bodies = append(bodies, string(o))
		}
	} else if os.Getenv("CI") == "true" {
		t.Fatalf("ATT&CK data: %v", err)
	} else {
		t.Logf("shared ATT&CK bundle beside the repository not read (%v): edge cases only", err)
	}
	fast := 0
	for i, body := range bodies {
		d, refs, ok := searchFields([]byte(body))
		var sc fieldScan
		if ok && sc.run([]byte(body)) {
			fast++
		}
		var want [4]any
		err := db.QueryRow(triggerText, []byte(body)).Scan(&want[0], &want[1], &want[2], &want[3])
		if (err == nil) != ok {
			t.Errorf("body %d: indexed %v, trigger: %v", i, ok, err)
			continue
		}
		if ok {
			got := [4]any{d.name, d.description, d.labels, d.pattern}
			for k := range got {
				if fmt.Sprint(normal(got[k])) != fmt.Sprint(normal(want[k])) {
					t.Errorf("body %d column %d: %#v, trigger %#v", i, k, got[k], want[k])
				}
			}
		}
		rows, err := db.Query(triggerRefs, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		var wantRefs []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			wantRefs = append(wantRefs, s)
		}
		rows.Close()
		slices.Sort(refs)
		slices.Sort(wantRefs)
		if !slices.Equal(refs, wantRefs) {
			t.Errorf("body %d refs %q, trigger %q", i, refs, wantRefs)
		}
	}
	// Every body of the bundle takes the scan, not the decoder.
	if fast < len(bodies)-10 {
		t.Errorf("%d of %d bodies scanned", fast, len(bodies))
	}
}

// normal makes the driver's text (string or []byte) comparable.
func normal(v any) any {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return v
}

// TestSearchReadPlan checks that the indexer reads a collection's new
// objects, and its greatest date_added, through objects_added: a scan of
// the collection would grow with the store.
func TestSearchReadPlan(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(t.Context(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	db, err := sql.Open("sqlite", filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, c := range []struct {
		q    string
		args []any
		want []string
	}{
		{objectsAfter, []any{1, 0, 100}, []string{"SEARCH objects USING INDEX objects_added (cid=? AND date_added>?)"}},
		{collectionMarks, nil, []string{"SCAN c", "CORRELATED SCALAR SUBQUERY 1", "SEARCH o USING COVERING INDEX objects_added (cid=?)"}},
	} {
		rows, err := db.Query("EXPLAIN QUERY PLAN "+c.q, c.args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if !slices.Equal(plan, c.want) {
			t.Errorf("plan of %s:\n%q, want %q", c.q, plan, c.want)
		}
	}
}

// FuzzSearchFields checks that the scan never fails on valid JSON and
// finds the references the decoder finds.
func FuzzSearchFields(f *testing.F) {
	f.Add(`{"type":"report","object_refs":["a--1","b--2"],"name":"x","labels":["l"]}`)
	f.Add(`{"a":{"b_refs":[["c--1"],{"d_ref":"e--2"}]},"name":{"x":[1,2]},"value":-1e5}`)
	f.Add(` {"s\u00e9":"t--1" , "k_ref" : "v\"--1" } `)
	f.Fuzz(func(t *testing.T, body string) {
		// The decoder replaces bytes that are not UTF-8; the scan keeps
		// them, as SQLite does.
		if !json.Valid([]byte(body)) || !utf8.ValidString(body) {
			return
		}
		var sc fieldScan
		if !sc.run([]byte(body)) {
			return
		}
		_, want, _ := decodeSearchFields([]byte(body))
		got := slices.Clone(sc.refs)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("refs %q, decoder %q", got, want)
		}
	})
}
