package federation_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
)

// TestLinksCarryNoExercise: a peer's pull link refuses exercise objects
// (drill data) and its push link leaves them out, while the real objects
// beside them cross both ways.
func TestLinksCarryNoExercise(t *testing.T) {
	f := newFederated(t)
	mark := `,"object_marking_refs":["` + stix.ExerciseMarkingID + `"]`
	objs := []json.RawMessage{stix.ExerciseMarking}
	for i := 1; i <= 10; i++ {
		extra := ""
		if i > 5 {
			extra = mark
		}
		objs = append(objs, indicator(i, extra))
	}
	if st, err := f.remote.client(t, "author", f.rShared.ID).Push(t.Context(), objs); err != nil || st.SuccessCount != 11 {
		t.Fatalf("seed remote: %+v %v", st, err)
	}
	def, _ := f.local.st.DefaultOrganisation(t.Context())
	for i := 101; i <= 106; i++ {
		extra := ""
		if i > 103 {
			extra = mark
		}
		raw := indicator(i, extra)
		res, err := f.local.st.AddObjects(t.Context(), f.lOut.ID, []store.Object{{ID: fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i), Type: "indicator",
			SpecVersion: "2.1", Version: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), VersionRaw: "2025-01-01T00:00:00.000Z", Raw: raw, Submitter: def.ID}}, nil)
		if err != nil || res[0].Err != nil {
			t.Fatalf("add %d: %v %+v", i, err, res)
		}
	}
	res := f.sync(t, f.runner)
	if res[0].Pull.Added != 5 || res[0].Pull.Refused != 6 || res[1].Push.Sent != 3 || res[1].Push.Succeeded != 3 {
		t.Fatalf("sync: pull %+v push %+v", res[0].Pull, res[1].Push)
	}
	for col, st := range map[string]store.Store{f.lMirror.ID: f.local.st, f.rInbox.ID: f.remote.st} {
		page, err := st.QueryObjects(t.Context(), col, store.Query{WithBody: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Entries {
			if stix.IsExercise(e.Raw) {
				t.Errorf("exercise object %s crossed into %s", e.ID, col)
			}
		}
		if len(page.Entries) == 0 {
			t.Errorf("no real object crossed into %s", col)
		}
	}
	rej, err := f.local.sq.Rejections(t.Context(), "remote", 100)
	if err != nil || len(rej) != 6 || rej[0].Reason != "refused: exercise data does not cross a real federation link" {
		t.Errorf("rejections: %+v, %v", rej, err)
	}
}
