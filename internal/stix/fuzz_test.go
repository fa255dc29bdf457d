package stix

import "testing"

// FuzzValidate checks that no input makes Validate or SplitInput panic, and
// that every Problem is complete. Plain `go test` runs the seeds.
func FuzzValidate(f *testing.F) {
	for _, s := range validObjects {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"type":"tool","id":"tool--` + uuidA + `","granular_markings":[{"selectors":["a.[99999999999999999999]"],"lang":"en"}]}`))
	f.Add([]byte(`{"a":"\ud83d\ude00\ud800x\u00"}`))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[`))
	f.Add([]byte(`{"type":"observed-data","objects":{"0":null},"number_observed":1e400}`))
	var v Validator
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, p := range v.Validate(data) {
			if p.Path == "" || p.Rule == "" || p.Section == "" {
				t.Fatalf("incomplete problem %+v", p)
			}
		}
		objs, err := SplitInput(data)
		if err == nil {
			for _, o := range objs {
				v.Validate(o)
			}
		}
	})
}
