package stix

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// The expected ids below are printed in the STIX 2.1 specification's SCO
// examples. §3.4 warns that some example ids are not deterministic; each one
// asserted here was also recomputed independently (UUIDv5 over the JCS form)
// and agrees. The §6.7 example "qwerty.dll" (file--39643577-...) matches no
// combination of its contributing properties and is therefore not asserted.
func TestDeterministicIDSpecExamples(t *testing.T) {
	tests := []struct {
		obj  string
		want string
	}{
		{`{"type":"ipv4-addr","value":"198.51.100.3"}`, "ipv4-addr--28bb3599-77cd-5a82-a950-b5bc3caf07c4"},
		{`{"type":"ipv6-addr","value":"2001:0db8::/96"}`, "ipv6-addr--084d3b4c-7785-568a-a569-0c61c95754ab"},
		{`{"type":"domain-name","value":"example.com","resolves_to_refs":["ipv4-addr--28bb3599-77cd-5a82-a950-b5bc3caf07c4"]}`, "domain-name--bedb4899-d24b-5401-bc86-8f6b4cc18ec7"},
		{`{"type":"url","value":"https://example.com/research/index.html"}`, "url--47c3cf9a-5027-5bf0-997a-017c7edc7c55"},
		{`{"type":"email-addr","value":"john@example.com","display_name":"John Doe"}`, "email-addr--7165e2a9-671f-585d-b1e1-ca59c671d934"},
		{`{"type":"email-addr","value":"jdoe@example.com","display_name":"John Doe"}`, "email-addr--6deb37bd-12b7-54ae-805f-5f7146f3d171"},
		{`{"type":"autonomous-system","number":15139,"name":"Slime Industries","rir":"ARIN"}`, "autonomous-system--3aa27478-50b5-5ab8-9da9-cdc12b657fff"},
		{`{"type":"directory","path":"C:\\Windows\\System32"}`, "directory--0a58d0c1-59e6-5afd-8252-dcd3f13e5622"},
		{`{"type":"mac-addr","value":"d2:fb:49:24:37:18"}`, "mac-addr--757b1725-9903-54f5-a855-1240691d7659"},
		{`{"type":"mutex","name":"__CLEANSWEEP__"}`, "mutex--f93fe911-e545-5239-b9b0-597840d0c871"},
		{`{"type":"file","hashes":{"SHA-256":"fe90a7e910cb3a4739bed9180e807e93fa70c90f25a8915476f5e4bfbac681db"},"size":25536,"name":"foo.dll"}`, "file--949eb97a-da1e-5292-8959-03c4249dc9f3"},
		{`{"type":"file","name":"tabby_pics.zip","magic_number_hex":"504B0304","hashes":{"SHA-256":"fe90a7e910cb3a4739bed9180e807e93fa70c90f25a8915476f5e4bfbac681db"}}`, "file--cfebcece-2336-51b0-baf1-d94daae5e1d1"},
		// Non-ASCII name: JCS keeps it as UTF-8, unescaped.
		{`{"type":"file","hashes":{"SHA-256":"841a8921140aba50671ebb0770fecc4ee308c4952cfeff8de154ab14eeef4649"},"name":"quêry.dll","name_enc":"windows-1252"}`, "file--7d1e3a18-89e7-5bc5-be36-9879f5b7f5c8"},
		{`{"type":"file","hashes":{"SHA-256":"ceafbfd424be2ca4a5f0402cae090dda2fb0526cf521b60b60077c0f622b285a"}}`, "file--70221dbf-52fd-5377-9619-c0ce6b3ffc8c"},
	}
	for _, tt := range tests {
		var m map[string]any
		if err := json.Unmarshal([]byte(tt.obj), &m); err != nil {
			t.Fatal(err)
		}
		got, err := DeterministicID(m)
		if err != nil {
			t.Errorf("%s: %v", tt.obj, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.obj, got, tt.want)
		}
	}
}

func TestDeterministicIDHashChoice(t *testing.T) {
	// §6.7.1: only one hash contributes, MD5 first; other hashes and
	// non-contributing properties do not change the id.
	a := map[string]any{"type": "file", "hashes": map[string]any{"MD5": "3773a88f65a5e780c8dff9cdc3a056f3"}}
	b := map[string]any{"type": "file", "size": 5, "hashes": map[string]any{
		"MD5": "3773a88f65a5e780c8dff9cdc3a056f3", "SHA-256": "fe90a7e910cb3a4739bed9180e807e93fa70c90f25a8915476f5e4bfbac681db"}}
	ia, _ := DeterministicID(a)
	ib, _ := DeterministicID(b)
	if ia != ib || ia == "" {
		t.Errorf("ids differ: %s %s", ia, ib)
	}
	// Numbers from encoding/json (float64), json.Number and Go ints agree.
	for _, n := range []any{float64(15139), json.Number("15139"), 15139} {
		id, err := DeterministicID(map[string]any{"type": "autonomous-system", "number": n})
		if err != nil || id != "autonomous-system--3aa27478-50b5-5ab8-9da9-cdc12b657fff" {
			t.Errorf("number %T: %s %v", n, id, err)
		}
	}
}

func TestDeterministicIDFallbackAndErrors(t *testing.T) {
	for _, obj := range []map[string]any{
		{"type": "process", "pid": 1},
		{"type": "user-account", "display_name": "x"}, // no contributing property present
		{"type": "artifact", "mime_type": "image/png"},
	} {
		id, err := DeterministicID(obj)
		if err != nil {
			t.Errorf("%v: %v", obj, err)
			continue
		}
		u, err := uuid.Parse(id[strings.Index(id, "--")+2:])
		if err != nil || u.Version() != 4 || !strings.HasPrefix(id, obj["type"].(string)+"--") {
			t.Errorf("%v: want a UUIDv4 id, got %s", obj, id)
		}
	}
	for _, obj := range []map[string]any{
		{"type": "ipv4-addr"},           // required value missing
		{"type": "indicator"},           // not an SCO
		{"value": "198.51.100.3"},       // no type
		{"type": "x-custom-observable"}, // custom: no contributing properties known
	} {
		if id, err := DeterministicID(obj); err == nil {
			t.Errorf("%v: want an error, got %s", obj, id)
		}
	}
}

func TestCanonicalJSON(t *testing.T) {
	// RFC 8785 §3.2.2 and appendix B samples.
	tests := []struct {
		in   string
		want string
	}{
		{`{"b":1,"a":[true,null,"x"]}`, `{"a":[true,null,"x"],"b":1}`},
		{`[1e30, 4.50, 2e-3, 0.000001, 1e-7, -0, 100, 1E21, 333333333.33333329]`, `[1e+30,4.5,0.002,0.000001,1e-7,0,100,1e+21,333333333.3333333]`},
		{`"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/"`, "\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\""},
		// Keys sort by UTF-16 code units: U+1F600 (surrogates D83D..) sorts before U+FB33.
		{`{"\ufb33":1,"\ud83d\ude00":2,"\r":3,"1":4,"\u00e9":5}`, "{\"\\r\":3,\"1\":4,\"é\":5,\"😀\":2,\"דּ\":1}"},
	}
	for _, tt := range tests {
		v, _, err := decodeJSON([]byte(tt.in))
		if err != nil {
			t.Fatal(err)
		}
		got, err := canonicalJSON(v)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.in, got, tt.want)
		}
	}
}
