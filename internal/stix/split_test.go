package stix

import (
	"strings"
	"testing"
)

func TestSplitInput(t *testing.T) {
	const a = `{"type":"ipv4-addr","id":"ipv4-addr--28bb3599-77cd-5a82-a950-b5bc3caf07c4","value":"198.51.100.3"}`
	// b keeps odd spacing to prove the bytes are returned as received.
	const b = "{ \"type\" : \"mutex\",\n  \"id\":\"mutex--f93fe911-e545-5239-b9b0-597840d0c871\", \"name\":\"__CLEANSWEEP__\" }"
	// observed-data with the deprecated objects container is one object.
	const od = `{"type":"observed-data","objects":{"0":{"type":"ipv4-addr","value":"198.51.100.3"}}}`
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"bundle", `{"type":"bundle","id":"bundle--e4f0febd-b8cf-4272-b892-71049d272c40","objects":[` + a + `,` + b + `]}`, []string{a, b}},
		{"bundle pretty", "{\n  \"type\": \"bundle\",\n  \"id\": \"bundle--e4f0febd-b8cf-4272-b892-71049d272c40\",\n  \"objects\": [\n    " + b + ",\n    " + a + "\n  ]\n}\n", []string{b, a}},
		{"bundle without objects", `{"type":"bundle","id":"bundle--e4f0febd-b8cf-4272-b892-71049d272c40"}`, nil},
		{"taxii envelope", `{"more":false,"objects":[` + a + `]}`, []string{a}},
		{"single object", "\n" + b + "\n", []string{b}},
		{"observed-data keeps objects", od, []string{od}},
		{"array", `[` + a + `, ` + b + `]`, []string{a, b}},
		{"json lines", a + "\n" + b + "\r\n\n" + `{"objects":[` + a + `]}` + "\n" + `[` + b + `]` + "\n", []string{a, b, a, b}},
		{"non-object element kept for Validate", `[1,` + a + `]`, []string{"1", a}},
		{"object without type", `{"id":"x"}`, []string{`{"id":"x"}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SplitInput([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d objects, want %d: %q", len(got), len(tt.want), got)
			}
			for i := range got {
				if string(got[i]) != tt.want[i] {
					t.Errorf("object %d:\n got %s\nwant %s", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestSplitInputErrors(t *testing.T) {
	for _, in := range []string{
		"",
		"  \n",
		`{"type":"bundle","objects":[{"type":"x"}`,
		`{"type":"bundle","objects":{"a":1}}`,
		"{\"type\":\"mutex\"}\n{oops}\n",
	} {
		if got, err := SplitInput([]byte(in)); err == nil {
			t.Errorf("%q: want an error, got %q", in, got)
		}
	}
	_, err := SplitInput([]byte("{\"type\":\"mutex\"}\n{oops}\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("error should name line 2: %v", err)
	}
}
