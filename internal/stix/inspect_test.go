package stix

import (
	"reflect"
	"testing"
)

func TestInspectReturnsHeaderOfValidObjects(t *testing.T) {
	v := &Validator{}
	raw := []byte(`{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2016-04-06T20:03:48.000Z","modified":"2016-04-06T20:03:48.123456Z","pattern":"[x:y = 'z']","pattern_type":"stix","valid_from":"2016-01-01T00:00:00Z"}`)
	h, probs := v.Inspect(raw)
	if len(probs) != 0 || h == nil {
		t.Fatalf("Inspect = %v, %v", h, probs)
	}
	want, err := ParseHeader(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("Inspect header %+v, ParseHeader %+v", h, want)
	}
	h, probs = v.Inspect([]byte(`{"type":"indicator","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"}`))
	if h != nil || len(probs) == 0 {
		t.Errorf("invalid object: header %v, problems %v", h, probs)
	}
}
