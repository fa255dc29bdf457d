package bench

import "testing"

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
