package jsonscan

import (
	"encoding/json"
	"strings"
	"testing"
)

var cases = []string{
	``, ` `, `{}`, `[]`, `""`, `0`, `-0`, `-`, `01`, `1.`, `1.5`, `1e`, `1e+`, `1E-7`, `-0.0e0`, `.5`, `+1`,
	`true`, `tru`, `false`, `null`, `nul`, `nulll`, `{"a":1}`, `{"a":1,}`, `{"a" 1}`, `{a:1}`, `{"a":1 "b":2}`,
	`[1,2,]`, `[,1]`, `[1 2]`, `{"a":[{"b":{}}]}`, ` {"a" : [ 1 , 2 ] } `, `{} {}`, `{}x`,
	`"\u00e9"`, `"\u00g9"`, `"\u00e"`, `"\x"`, `"\/\b\f\n\r\t\"\\"`, "\"a\tb\"", "\"a\x7fb\"", "\"\xff\xfe\"",
	`"abc`, `"abc\`, `{"a":"b`, `[`, `{`, `{"a"`, `{"a":`, "\x00", "{}\x00", "\u00a0{}",
}

// TestValidAgreesWithEncodingJSON checks Valid against encoding/json.Valid on
// edge cases, nesting limit included.
func TestValidAgreesWithEncodingJSON(t *testing.T) {
	in := append([]string(nil), cases...)
	for _, n := range []int{9999, 10000, 10001} {
		in = append(in, strings.Repeat("[", n)+strings.Repeat("]", n), strings.Repeat(`{"a":`, n)+"1"+strings.Repeat("}", n))
	}
	for _, s := range in {
		if got, want := Valid([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("Valid(%.40q) = %v, encoding/json says %v", s, got, want)
		}
	}
}

func FuzzValid(f *testing.F) {
	for _, s := range cases {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Valid(b), json.Valid(b); got != want {
			t.Fatalf("Valid(%q) = %v, encoding/json says %v", b, got, want)
		}
	})
}

func BenchmarkValid(b *testing.B) {
	obj := `{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2024-06-03T10:11:12.345Z","modified":"2024-07-01T08:00:00.000Z","name":"Malicious activity 4242","description":"Observed in campaign 12 by sensor 7; block and hunt for related activity.","indicator_types":["malicious-activity"],"pattern":"[domain-name:value = 'h1a2b3c.example7.com'] OR [ipv4-addr:value = '10.1.2.3']","pattern_type":"stix","valid_from":"2024-06-03T10:11:12.345Z","kill_chain_phases":[{"kill_chain_name":"mitre-attack","phase_name":"execution"}],"labels":["c2","campaign-17"],"confidence":80,"object_marking_refs":["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]}`
	env := []byte(`{"objects":[` + strings.Repeat(obj+",", 499) + obj + `]}`)
	for _, impl := range []struct {
		name  string
		valid func([]byte) bool
	}{{"jsonscan", Valid}, {"encoding-json", json.Valid}} {
		b.Run(impl.name, func(b *testing.B) {
			b.SetBytes(int64(len(env)))
			for b.Loop() {
				if !impl.valid(env) {
					b.Fatal("invalid")
				}
			}
		})
	}
}
