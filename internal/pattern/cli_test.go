package pattern

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	if err := Check(`[file:name = 'a']`); err != nil {
		t.Fatalf("valid pattern: %v", err)
	}
	err := Check(`[file:name = 'a' AND file:size = 1`)
	var se *SyntaxError
	if !errors.As(err, &se) || se.Pos != 34 || !strings.HasPrefix(err.Error(), "position 34: expected ']'") {
		t.Fatalf("got %v", err)
	}
}

func TestMatchJSONL(t *testing.T) {
	sdo := `{"type":"observed-data","id":"observed-data--1","first_observed":"2020-01-01T00:00:00Z","last_observed":"2020-01-01T00:00:00Z","number_observed":1,"object_refs":["ipv4-addr--1"]}`
	sco := `{"type":"ipv4-addr","id":"ipv4-addr--1","value":"10.0.0.1"}`
	embedded := `{"type":"observed-data","first_observed":"2020-01-01T00:00:00Z","last_observed":"2020-01-01T00:00:00Z","number_observed":1,"objects":{"0":{"type":"ipv4-addr","value":"10.0.0.1"}}}`
	in := strings.Join([]string{
		`{"pattern": "[ipv4-addr:value = '10.0.0.1']", "observed": [` + sdo + `,` + sco + `]}`,
		`{"pattern": "[ipv4-addr:value ISSUBSET '10.0.0.0/8']", "observed": [` + embedded + `]}`,
		`{"pattern": "[ipv4-addr:value = '10.0.0.2']", "observed": [` + sco + `,` + sdo + `]}`,
		``,
		`{"pattern": "[ipv4-addr:value = ", "observed": []}`,
		`not json`,
		`{"observed": []}`,
		`{"pattern": "[ipv4-addr:value = '10.0.0.1']", "observed": [{"type":"observed-data"}]}`,
		`{"pattern": "[ipv4-addr:value = '10.0.0.1']"}`,
		`{"pattern": "[ipv4-addr:value = '10.0.0.1']", "observed": []} {}`,
	}, "\n")
	var out bytes.Buffer
	if err := MatchJSONL(context.Background(), strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	type res struct {
		Valid   bool    `json:"valid"`
		Matched bool    `json:"matched"`
		Error   *string `json:"error"`
	}
	want := []struct {
		valid, matched bool
		err            string
	}{
		{true, true, ""},
		{true, true, ""},
		{true, false, ""},
		{false, false, "position 19: expected a constant"},
		{false, false, "line 5: invalid JSON"},
		{false, false, "missing \"pattern\""},
		{false, false, "first_observed"},
		{true, false, ""},
		{false, false, "trailing data"},
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i, l := range lines {
		var r res
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		w := want[i]
		gotErr := ""
		if r.Error != nil {
			gotErr = *r.Error
		}
		if r.Valid != w.valid || r.Matched != w.matched || (w.err == "") != (r.Error == nil) || !strings.Contains(gotErr, w.err) {
			t.Errorf("line %d = %s, want %+v", i+1, l, w)
		}
	}
	if !strings.Contains(lines[2], `"error":null`) {
		t.Errorf("error must be null, got %s", lines[2])
	}
}

func TestMatchJSONLCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out bytes.Buffer
	err := MatchJSONL(ctx, strings.NewReader(`{"pattern":"[a:b = 1]","observed":[]}`+"\n"), &out)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}
