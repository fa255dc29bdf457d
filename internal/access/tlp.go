package access

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// TLP is a Traffic Light Protocol 2.0 level (FIRST TLP 2.0), ordered from
// the least to the most restrictive so that the strictest of several
// markings is their maximum.
type TLP int

// TLP 2.0 levels. TLP 1.0 WHITE is CLEAR.
const (
	TLPUnmarked TLP = iota // no TLP marking: the collection's default applies
	TLPClear
	TLPGreen
	TLPAmber
	TLPAmberStrict
	TLPRed
	// TLPUnresolved is the level of an object that refers to a marking
	// definition the server cannot resolve: stricter than RED, only the
	// submitting organisation reads it (an unknown marking may mean
	// anything, so it is never shared more widely than its author could
	// have intended).
	TLPUnresolved
)

var tlpNames = [...]string{"", "CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"}

func (t TLP) String() string {
	if t < 0 || t > TLPUnresolved {
		return fmt.Sprintf("TLP(%d)", int(t))
	}
	if t == TLPUnmarked {
		return "unmarked"
	}
	if t == TLPUnresolved {
		return "unresolved marking"
	}
	return "TLP:" + tlpNames[t]
}

// ParseTLP reads a level name: "clear", "TLP:AMBER+STRICT", "white" (TLP
// 1.0, meaning CLEAR), case-insensitively.
func ParseTLP(s string) (TLP, error) {
	n := strings.ToUpper(strings.TrimSpace(s))
	n = strings.TrimSpace(strings.TrimPrefix(n, "TLP:"))
	if n == "WHITE" {
		return TLPClear, nil
	}
	for i, name := range tlpNames {
		if i > 0 && n == name {
			return TLP(i), nil
		}
	}
	return 0, fmt.Errorf("unknown TLP level %q (clear, green, amber, amber+strict, red)", s)
}

// Marking definitions whose level is fixed, whatever a submitter or the
// store says about them: nobody can redefine them to weaken a marking.
var tlpMarkings = map[string]TLP{
	// TLP 1.0, the predefined objects of STIX 2.1 §7.2.1.4; WHITE is CLEAR.
	// OpenCTI marks TLP:CLEAR, GREEN, AMBER and RED with these ids too.
	"marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": TLPClear,
	"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": TLPGreen,
	"marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": TLPAmber,
	"marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": TLPRed,
	// TLP 2.0, the objects published with the OASIS TLP 2.0 extension
	// (extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d).
	"marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487": TLPClear,
	"marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb": TLPGreen,
	"marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421": TLPAmber,
	"marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003": TLPAmberStrict,
	"marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1": TLPRed,
	// OpenCTI's TLP:AMBER+STRICT, which TLP 1.0 lacks (MARKING_TLP_AMBER_STRICT
	// in OpenCTI-Platform/opencti,
	// opencti-platform/opencti-graphql/src/schema/identifier.js).
	"marking-definition--826578e1-40ad-459f-bc73-ede076f81f37": TLPAmberStrict,
}

// TLP2Extension is the OASIS TLP 2.0 extension definition; a marking
// definition using it carries its level in tlp_2_0.
const TLP2Extension = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"

// TLPOfMarking returns the level of one of the well-known TLP marking
// definitions (TLP 1.0, TLP 2.0, OpenCTI's AMBER+STRICT).
func TLPOfMarking(id string) (TLP, bool) {
	t, ok := tlpMarkings[id]
	return t, ok
}

// RecipientsProperty is Mitra's extension property naming the organisations
// (their identity ids) to which an AMBER+STRICT or RED object is released in
// addition to its submitter: a list of "identity--UUID" strings. It follows
// the STIX 2.1 §11.1 rules for custom properties.
const RecipientsProperty = "x_mitra_recipients"

// Classify returns the level that governs an object marked with refs
// (object_marking_refs and granular markings alike: Mitra serves an object
// only to those allowed by its strictest marking, without redaction), when
// only the well-known TLP marking definitions are known: any other marking
// makes it TLPUnresolved. Use a Resolver to know more definitions.
func Classify(refs []string) TLP {
	var r *Resolver
	return r.Classify(refs)
}

// Resolver resolves marking-definition ids to TLP levels: the well-known
// ones, then the definitions it was told about (sent with the objects, or
// stored on the server). The zero value (and nil) knows only the
// well-known ones.
type Resolver struct {
	defs map[string]TLP
}

// Learn records that marking definition id stands for level (TLPUnmarked:
// it is not a TLP marking). When several bodies are learnt for one id (one
// sent with the objects, one stored earlier), the strictest counts, so that
// nobody can weaken a marking by defining its id first or again. The
// well-known ids keep their level whatever is learnt.
func (r *Resolver) Learn(id string, level TLP) {
	if r.defs == nil {
		r.defs = map[string]TLP{}
	}
	if old, ok := r.defs[id]; !ok || level > old {
		r.defs[id] = level
	}
}

// Level returns the level marking definition id stands for; ok is false
// when r cannot resolve it.
func (r *Resolver) Level(id string) (level TLP, ok bool) {
	if t, ok := tlpMarkings[id]; ok {
		return t, true
	}
	if r == nil {
		return 0, false
	}
	level, ok = r.defs[id]
	return level, ok
}

// Classify returns the strictest level among the markings refs:
// TLPUnmarked when none is a TLP marking, TLPUnresolved when r cannot
// resolve one of them.
func (r *Resolver) Classify(refs []string) TLP {
	level := TLPUnmarked
	for _, ref := range refs {
		t, ok := r.Level(ref)
		if !ok {
			return TLPUnresolved
		}
		level = max(level, t)
	}
	return level
}

// Unknown returns the refs r cannot resolve, each once.
func (r *Resolver) Unknown(refs []string) []string {
	var out []string
	for _, ref := range refs {
		if _, ok := r.Level(ref); !ok && !slices.Contains(out, ref) {
			out = append(out, ref)
		}
	}
	return out
}

// MarkingLevel reads a marking-definition object (STIX 2.1 §7.2.1) and
// returns the TLP level it stands for (not checking that it is otherwise
// valid):
//   - the TLP 2.0 extension's tlp_2_0 value;
//   - definition_type "tlp" (any case, as OpenCTI writes "TLP"): the
//     definition's tlp value, else the name ("TLP:AMBER+STRICT");
//   - any definition named "TLP:<level>", whatever its type;
//   - TLPUnmarked for other markings (statements, PAP...): they do not
//     change the TLP.
//
// Where several of these are present the strictest counts. A definition
// that claims to be TLP but whose level cannot be read is TLPUnresolved.
func MarkingLevel(raw []byte) (TLP, error) {
	var m struct {
		Type           string                     `json:"type"`
		Name           string                     `json:"name"`
		DefinitionType string                     `json:"definition_type"`
		Definition     map[string]json.RawMessage `json:"definition"`
		Extensions     map[string]json.RawMessage `json:"extensions"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return 0, fmt.Errorf("marking definition: %w", err)
	}
	if m.Type != "marking-definition" {
		return 0, fmt.Errorf("a %q is not a marking definition", m.Type)
	}
	level, claimed, readable := TLPUnmarked, false, false
	take := func(s string) {
		claimed = true
		if t, err := ParseTLP(s); err == nil {
			level, readable = max(level, t), true
		}
	}
	if ext, ok := m.Extensions[TLP2Extension]; ok {
		var e struct {
			TLP string `json:"tlp_2_0"`
		}
		_ = json.Unmarshal(ext, &e) // not an object: unreadable, hence unresolved
		take(e.TLP)
	}
	if strings.EqualFold(m.DefinitionType, "tlp") {
		claimed = true
		for k, v := range m.Definition {
			var s string
			if strings.EqualFold(k, "tlp") && json.Unmarshal(v, &s) == nil {
				take(s)
			}
		}
		if !readable {
			take(m.Name)
		}
	}
	if len(m.Name) > 4 && strings.EqualFold(m.Name[:4], "TLP:") {
		take(m.Name)
	}
	if claimed && !readable {
		return TLPUnresolved, nil
	}
	return level, nil
}
