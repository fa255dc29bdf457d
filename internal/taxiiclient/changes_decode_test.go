package taxiiclient

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

var pageCases = []string{
	`{"changes":[{"seq":1,"op":"add","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","version":"2024-06-03T10:11:12.345Z","date_added":"2024-06-03T10:11:12.345678Z","object":{"type":"indicator","a":[1,{"b":null}]}},{"seq":2,"op":"delete","id":"x--1","version":"v"}],"more":true,"next":2,"oldest":1,"latest":9}`,
	`{"changes":[],"more":false,"next":0,"oldest":0,"latest":0}`,
	` { "changes" : [ { "seq" : 5 , "object" : [ ] } ] , "x-future" : {"a":[1,2]} } `,
	`{"Changes":[{"seq":1}]}`, `{"changes":[{"SEQ":1,"Op":"add"}]}`, `{"changes":[{"ſeq":1}]}`, `{"mоre":true}`,
	`{"changes":[{"seq":1}],"changes":[{"op":"add"}]}`, `{"changes":null}`, `{"changes":[null,{"seq":1}]}`,
	`{"changes":[{"seq":"1"}]}`, `{"changes":[{"seq":1.5}]}`, `{"changes":[{"seq":1e3}]}`, `{"changes":[{"seq":-0}]}`,
	`{"changes":[{"seq":99999999999999999999}]}`, `{"changes":[{"id":"a\"b","version":"\u00e9","op":"\ud800"}]}`,
	`{"changes":[{"id":"é","date_added":"\xff"}]}`, `{"changes":[{"object":null}]}`, `{"changes":[{"id":null}]}`,
	`{"more":null,"next":null}`, `{"more":1}`, `{"more":"true"}`, `{"next":true}`, `{"changes":{}}`, `{"changes":[1]}`,
	`{"ch\u0061nges":[{"seq":1}]}`, `null`, `[]`, `{}`, `{"changes":[}`, `{"changes":[{"seq":1},]}`, `{"changes":[{"seq":1}]} x`,
	`{"changes":[{"seq":1,"seq":2,"id":"a","id":"b"}]}`, `{"more":true,"more":false}`, ``, `{"changes":[{"object":{"a":1}}]`,
}

// TestChangesPageDecodesAsEncodingJSON checks that a change-feed page
// decodes, or fails, as json.Unmarshal would decode it.
func TestChangesPageDecodesAsEncodingJSON(t *testing.T) {
	in := append([]string(nil), pageCases...)
	in = append(in, `{"changes":[{"object":`+strings.Repeat("[", 9997)+strings.Repeat("]", 9997)+`}]}`,
		`{"changes":[{"object":`+strings.Repeat("[", 9998)+strings.Repeat("]", 9998)+`}]}`)
	for _, s := range in {
		checkPageDecode(t, []byte(s))
	}
}

func FuzzChangesPageDecode(f *testing.F) {
	for _, s := range pageCases {
		f.Add([]byte(s))
	}
	f.Fuzz(checkPageDecode)
}

func checkPageDecode(t *testing.T, b []byte) {
	var got, want ChangesPage
	gerr := got.decodeAnswer(b)
	werr := json.Unmarshal(b, &want)
	if (gerr == nil) != (werr == nil) {
		t.Fatalf("%.200q: error %v, encoding/json %v", b, gerr, werr)
	}
	if werr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%.200q: decoded %+v, encoding/json %+v", b, got, want)
	}
}
