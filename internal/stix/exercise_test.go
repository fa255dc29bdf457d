package stix

import "testing"

func TestIsExercise(t *testing.T) {
	cases := []struct {
		raw  string
		want bool
	}{
		{string(ExerciseMarking), true},
		{`{"type":"indicator","id":"indicator--1","object_marking_refs":["` + ExerciseMarkingID + `"]}`, true},
		{`{"type":"indicator","id":"indicator--1","granular_markings":[{"marking_ref":"` + ExerciseMarkingID + `","selectors":["name"]}]}`, true},
		// Mentioning the id elsewhere (a description, a reference) is not a marking.
		{`{"type":"note","id":"note--1","content":"see ` + ExerciseMarkingID + `","object_refs":["` + ExerciseMarkingID + `"]}`, false},
		{`{"type":"indicator","id":"indicator--1","object_marking_refs":["marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"]}`, false},
		{`not json ` + ExerciseMarkingID, false},
	}
	for _, c := range cases {
		if got := IsExercise([]byte(c.raw)); got != c.want {
			t.Errorf("IsExercise(%s) = %v, want %v", c.raw, got, c.want)
		}
	}
	v := &Validator{}
	if _, probs := v.Inspect(ExerciseMarking); len(probs) > 0 {
		t.Errorf("exercise marking is not valid STIX: %v", probs)
	}
}
