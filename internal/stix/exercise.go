package stix

import (
	"bytes"
	"encoding/json"
)

// ExerciseMarkingID is the fixed id of Mitra's exercise marking: every
// object a drill creates refers to it in object_marking_refs, so that drill
// data can never be mistaken for, or mixed into exports and federation
// of, real data.
const ExerciseMarkingID = "marking-definition--df00337e-2708-4d77-996e-e3f651477b4e"

// ExerciseMarking is the exercise marking-definition object (STIX 2.1
// §7.2.1, a statement marking): it is sent with drill objects so that a
// receiver can resolve it.
var ExerciseMarking = json.RawMessage(`{"type":"marking-definition","spec_version":"2.1","id":"` + ExerciseMarkingID + `",` +
	`"created":"2026-01-01T00:00:00.000Z","name":"EXERCISE","definition_type":"statement",` +
	`"definition":{"statement":"EXERCISE: drill data, not a real incident or indicator. Never export or federate it as real data."}}`)

// IsExercise reports whether the object raw is exercise data: it refers to
// the exercise marking (in object_marking_refs or granular_markings) or is
// the exercise marking itself. Objects that cannot be parsed are not
// exercise data (they are refused elsewhere).
func IsExercise(raw []byte) bool {
	// Cheap test first: most objects never mention the id.
	if !bytes.Contains(raw, []byte(ExerciseMarkingID)) {
		return false
	}
	var o struct {
		ID                string   `json:"id"`
		ObjectMarkingRefs []string `json:"object_marking_refs"`
		GranularMarkings  []struct {
			MarkingRef string `json:"marking_ref"`
		} `json:"granular_markings"`
	}
	if json.Unmarshal(raw, &o) != nil {
		return false
	}
	if o.ID == ExerciseMarkingID {
		return true
	}
	for _, r := range o.ObjectMarkingRefs {
		if r == ExerciseMarkingID {
			return true
		}
	}
	for _, g := range o.GranularMarkings {
		if g.MarkingRef == ExerciseMarkingID {
			return true
		}
	}
	return false
}
