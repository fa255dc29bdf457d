package taxii

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mitra-cert/mitra/internal/store"
)

func TestSplitEnvelope(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string // nil: error
		none bool     // no objects member
	}{
		{in: `{}`, none: true},
		{in: ` { "more" : false , "objects" : [ ] } `, want: []string{}},
		{in: `{"objects":[{"a":"}]\"{"},  {"b":[1,{"c":[]}]} ,{}],"next":"x"}`, want: []string{`{"a":"}]\"{"}`, `{"b":[1,{"c":[]}]}`, `{}`}},
		{in: `{"x":{"objects":[1]},"objects":[1, "s", null, true]}`, want: []string{`1`, `"s"`, `null`, `true`}},
		{in: "{\"objects\":[\n{\"k\":\"\u00e9\\u00e9\"}\n]}", want: []string{"{\"k\":\"\u00e9\\u00e9\"}"}},
		{in: `{"objects":{}}`},
		{in: `[]`},
		{in: `{"objects":[}`},
		{in: ``},
		{in: `{"objects":[]} x`},
	} {
		got, err := splitEnvelope([]byte(tc.in))
		if tc.want == nil && !tc.none {
			if err == nil {
				t.Errorf("%q: no error", tc.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if tc.none {
			if got != nil {
				t.Errorf("%q: got %q, want no objects", tc.in, got)
			}
			continue
		}
		var gs []string
		for _, g := range got {
			gs = append(gs, string(g))
		}
		if strings.Join(gs, "|") != strings.Join(tc.want, "|") || len(gs) != len(tc.want) {
			t.Errorf("%q: got %q, want %q", tc.in, gs, tc.want)
		}
		// The spans agree with encoding/json.
		var env struct{ Objects []json.RawMessage }
		if err := json.Unmarshal([]byte(tc.in), &env); err != nil || len(env.Objects) != len(got) {
			t.Errorf("%q: encoding/json sees %d objects (%v)", tc.in, len(env.Objects), err)
		}
	}
}

func FuzzSplitEnvelope(f *testing.F) {
	f.Add([]byte(`{"objects":[{"a":1},{"b":"\"]"}]}`))
	f.Add([]byte(`{"more":true,"objects":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := splitEnvelope(b)
		if err != nil {
			return
		}
		// Property names are case-sensitive (TAXII 2.1 §3.8), so the oracle
		// is a map, not a struct (encoding/json matches fields without case).
		var env map[string]json.RawMessage
		if jerr := json.Unmarshal(b, &env); jerr != nil {
			t.Fatalf("accepted %q that encoding/json rejects: %v", b, jerr)
		}
		raw, ok := env["objects"]
		if !ok {
			if got != nil {
				t.Fatalf("%q: objects without an objects member", b)
			}
			return
		}
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			t.Fatalf("%q: accepted objects that are not a list", b)
		}
		if len(list) != len(got) {
			t.Fatalf("%q: %d objects, encoding/json %d", b, len(got), len(list))
		}
		for i := range got {
			if !json.Valid(got[i]) {
				t.Fatalf("%q: span %q is not JSON", b, got[i])
			}
		}
	})
}

// TestEncodeChangesMatchesMarshal checks that the feed writes each change
// as encoding/json would, escapes included.
func TestEncodeChangesMatchesMarshal(t *testing.T) {
	for _, it := range []changeItem{
		{Seq: 1, Op: store.OpAdd, ID: "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", Version: "2024-06-03T10:11:12.345Z", DateAdded: "2024-06-03T10:11:12.345678Z"},
		{Seq: 1 << 40, Op: store.OpDelete, ID: "x--1", Version: "v"},
		{Seq: -3, Op: "", ID: "", Version: ""},
		{Seq: 7, Op: "a\"b", ID: "<script>&amp;", Version: "tab\there\x00\x1f", DateAdded: "é\u2028\xff"},
		{Seq: 0, Op: "add", ID: `back\slash`, Version: "\u007f"},
	} {
		want, err := json.Marshal(it)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendChangeItem(nil, it)
		if err != nil || string(got) != string(want) {
			t.Errorf("%+v: wrote %s (%v), json.Marshal %s", it, got, err, want)
		}
	}
}
