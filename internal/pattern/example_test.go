package pattern_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/mitra-cert/mitra/internal/pattern"
)

func ExampleCheck() {
	fmt.Println(pattern.Check(`[file:hashes.'SHA-256' = 'aec0']`))
	fmt.Println(pattern.Check(`[file:name = 'a' AND file:size = 1`))
	// Output:
	// <nil>
	// position 34: expected ']' to close the observation expression opened at position 0, or AND/OR, found end of pattern
}

func ExampleEvaluate() {
	obs, _ := pattern.ObservationsFromJSON([]byte(`[
	  {"type":"observed-data","id":"observed-data--1","first_observed":"2020-01-01T00:00:00Z",
	   "last_observed":"2020-01-01T00:00:00Z","number_observed":1,"object_refs":["network-traffic--1","ipv4-addr--1"]},
	  {"type":"network-traffic","id":"network-traffic--1","dst_ref":"ipv4-addr--1","dst_port":443},
	  {"type":"ipv4-addr","id":"ipv4-addr--1","value":"198.51.100.7"}]`))
	matched, used, err := pattern.Evaluate(`[network-traffic:dst_ref.value ISSUBSET '198.51.100.0/24' AND network-traffic:dst_port = 443]`, obs)
	fmt.Println(matched, len(used), err)
	// Output: true 1 <nil>
}

func ExampleMatcher() {
	m := pattern.NewMatcher(pattern.MatcherOptions{})
	_ = m.AddAll([]pattern.Indicator{
		{ID: "indicator--1", Pattern: `[ipv4-addr:value ISSUBSET '203.0.113.0/24']`},
		{ID: "indicator--2", Pattern: `[domain-name:value = 'example.com'] REPEATS 2 TIMES WITHIN 60 SECONDS`},
	})
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, sco := range []*pattern.SCO{
		{T: "ipv4-addr", Value: "203.0.113.9"},
		{T: "domain-name", Value: "example.com"},
		{T: "domain-name", Value: "example.com"},
	} {
		ts := t0.Add(time.Duration(i) * time.Second)
		o, _ := pattern.NewObservation(ts, ts, 1, sco)
		for _, match := range m.Match(o) {
			fmt.Println(i, match.ID, len(match.Observations))
		}
	}
	// Output:
	// 0 indicator--1 0
	// 2 indicator--2 2
}

func ExampleMatchJSONL() {
	in := `{"pattern": "[url:value LIKE 'http://%.example/%']", "observed": [{"type":"observed-data","first_observed":"2020-01-01T00:00:00Z","last_observed":"2020-01-01T00:00:00Z","number_observed":1,"objects":{"0":{"type":"url","value":"http://a.example/x"}}}]}
{"pattern": "[url:value LIKE", "observed": []}
`
	_ = pattern.MatchJSONL(context.Background(), strings.NewReader(in), os.Stdout)
	// Output:
	// {"valid":true,"matched":true,"error":null}
	// {"valid":false,"matched":false,"error":"position 15: expected a string constant after LIKE, found end of pattern"}
}
