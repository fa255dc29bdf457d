package bench

import (
	"encoding/json"
	"testing"

	"github.com/mitra-cert/mitra/internal/pattern"
	"github.com/mitra-cert/mitra/internal/stix"
)

func TestScanEnvelope(t *testing.T) {
	for _, tc := range []struct {
		in   string
		more bool
		next string
		n    int
	}{
		{`{}`, false, "", 0},
		{`{"more":true,"next":"abc","objects":[{"a":"}"},{"b":[1,{"c":2}]},{}]}`, true, "abc", 3},
		{`{"objects":[{"x":"\"]"}]}`, false, "", 1},
	} {
		more, next, n, err := ScanEnvelope([]byte(tc.in))
		if err != nil || more != tc.more || next != tc.next || n != tc.n {
			t.Errorf("%s: got %v %q %d %v", tc.in, more, next, n, err)
		}
	}
}

// TestEnvelopeSource checks that every envelope holds n valid indicators
// with ids never seen before.
func TestEnvelopeSource(t *testing.T) {
	v := &stix.Validator{CheckPattern: pattern.Check}
	src := NewEnvelopeSource(NewGenerator(3), 50)
	seen := map[string]bool{}
	for range 20 {
		var env struct{ Objects []json.RawMessage }
		if err := json.Unmarshal(src.Next(), &env); err != nil {
			t.Fatal(err)
		}
		if len(env.Objects) != 50 {
			t.Fatalf("%d objects", len(env.Objects))
		}
		for _, raw := range env.Objects {
			h, probs := v.Inspect(raw)
			if len(probs) > 0 {
				t.Fatalf("%s: %v", raw, probs)
			}
			if seen[h.ID] {
				t.Fatalf("id %s repeated", h.ID)
			}
			seen[h.ID] = true
		}
	}
}
