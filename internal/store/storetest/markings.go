package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/store"
)

func markingDef(id string, created time.Time, tlp string) []byte {
	return fmt.Appendf(nil, `{"type":"marking-definition","spec_version":"2.1","id":%q,"created":%q,"definition_type":"tlp","name":"TLP:%s","definition":{"tlp":%q}}`,
		id, created.Format("2006-01-02T15:04:05.000Z"), tlp, tlp)
}

// testMarkings: MarkingDefinitions finds the latest stored version of
// marking definitions in any collection, and nothing else.
func testMarkings(t *testing.T, s store.Store) {
	ctx := context.Background()
	c1, c2 := newCollection(t, s), newCollection(t, s)
	m1, m2 := "marking-definition--"+uuid.NewString(), "marking-definition--"+uuid.NewString()
	ind := "indicator--" + uuid.NewString()
	t1, t2 := base, base.Add(time.Hour)
	addOne(t, s, c1, from(t, markingDef(m1, t1, "green"), "identity--a"))
	addOne(t, s, c2, from(t, markingDef(m1, t2, "amber"), "identity--a"))
	addOne(t, s, c2, from(t, markingDef(m2, t1, "red"), "identity--a"))
	addOne(t, s, c1, from(t, Indicator(ind, t1, t1), "identity--a"))
	got, err := s.MarkingDefinitions(ctx, []string{m1, m2, ind, "marking-definition--" + uuid.NewString()})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || string(got[m1]) != string(markingDef(m1, t2, "amber")) || string(got[m2]) != string(markingDef(m2, t1, "red")) {
		t.Errorf("marking definitions = %q", got)
	}
	if got, err := s.MarkingDefinitions(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("no ids: %v, %v", got, err)
	}
	// A deleted definition is no longer found.
	if _, err := s.DeleteObject(ctx, c2, m2, store.Query{}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.MarkingDefinitions(ctx, []string{m2}); err != nil || len(got) != 0 {
		t.Errorf("after delete: %q, %v", got, err)
	}
}
