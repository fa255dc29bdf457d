package taxiiclient

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// readAnswer reads the whole body whether its length is known, unknown or
// wrong, as io.ReadAll did, and fails on a body shorter than announced.
func TestReadAnswer(t *testing.T) {
	body := strings.Repeat("0123456789", 1000)
	for _, tc := range []struct {
		name   string
		length int64
		want   string
		err    bool
	}{
		{"known", int64(len(body)), body, false},
		{"unknown", -1, body, false},
		{"announced short", 10, body, false}, // the rest is read as before
		{"announced long", int64(len(body)) + 5, "", true},
	} {
		resp := &http.Response{ContentLength: tc.length, Body: io.NopCloser(strings.NewReader(body))}
		got, err := readAnswer(resp)
		if (err != nil) != tc.err || (!tc.err && !bytes.Equal(got, []byte(tc.want))) {
			t.Errorf("%s: %d bytes, %v", tc.name, len(got), err)
		}
		if tc.err && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: error %v", tc.name, err)
		}
	}
}
