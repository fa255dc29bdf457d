package access

import (
	"fmt"
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
)

var tlpNames = [...]string{"", "CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"}

func (t TLP) String() string {
	if t < 0 || int(t) >= len(tlpNames) {
		return fmt.Sprintf("TLP(%d)", int(t))
	}
	if t == TLPUnmarked {
		return "unmarked"
	}
	return "TLP:" + tlpNames[t]
}

// ParseTLP reads a level name: "clear", "TLP:AMBER+STRICT", "white" (TLP
// 1.0, meaning CLEAR), case-insensitively.
func ParseTLP(s string) (TLP, error) {
	n := strings.ToUpper(strings.TrimPrefix(strings.TrimPrefix(s, "TLP:"), "tlp:"))
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

// tlpMarkings are the marking definitions that carry a TLP level: the
// predefined TLP 1.0 objects of STIX 2.1 §7.2.1.4 and the TLP 2.0 objects
// published with the OASIS TLP 2.0 extension
// (extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d).
var tlpMarkings = map[string]TLP{
	// TLP 1.0 (STIX 2.1 §7.2.1.4); WHITE maps to CLEAR.
	"marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": TLPClear,
	"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": TLPGreen,
	"marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": TLPAmber,
	"marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": TLPRed,
	// TLP 2.0.
	"marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487": TLPClear,
	"marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb": TLPGreen,
	"marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421": TLPAmber,
	"marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003": TLPAmberStrict,
	"marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1": TLPRed,
}

// TLPOfMarking returns the level a marking-definition id stands for.
func TLPOfMarking(id string) (TLP, bool) {
	t, ok := tlpMarkings[id]
	return t, ok
}

// RecipientsProperty is Mitra's extension property naming the organisations
// (their identity ids) to which an AMBER+STRICT or RED object is released in
// addition to its submitter: a list of "identity--UUID" strings. It follows
// the STIX 2.1 §11.1 rules for custom properties.
const RecipientsProperty = "x_mitra_recipients"

// Classify returns the strictest TLP level among the marking definitions
// refs (object_marking_refs and granular markings alike: Mitra serves an
// object only to those allowed by its strictest marking, without
// redaction), TLPUnmarked when none is a TLP marking.
func Classify(refs []string) TLP {
	level := TLPUnmarked
	for _, ref := range refs {
		if t, ok := tlpMarkings[ref]; ok && t > level {
			level = t
		}
	}
	return level
}
