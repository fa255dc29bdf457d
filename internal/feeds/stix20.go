package feeds

import (
	"encoding/json"
	"fmt"
)

// typesOfLabels are the STIX 2.0 objects whose required labels became an
// open-vocabulary "_types" property in STIX 2.1 (STIX 2.1 §4: indicator,
// malware, report, threat-actor, tool); labels stays for other objects.
var typesOfLabels = map[string]string{
	"indicator":    "indicator_types",
	"malware":      "malware_types",
	"report":       "report_types",
	"threat-actor": "threat_actor_types",
	"tool":         "tool_types",
}

// isSTIX20 tells a STIX 2.0 object from a 2.1 one: every 2.1 SDO, SRO and
// meta object carries spec_version (STIX 2.1 §3.2, required), 2.0 objects
// never do, and 2.0 had no top-level cyber-observables.
func isSTIX20(obj map[string]any) bool {
	t, _ := obj["type"].(string)
	_, has := obj["spec_version"]
	return !has && !scoTypes[t]
}

// UpgradeSTIX20 rewrites a STIX 2.0 object as STIX 2.1, as the
// specifications' differences require and nothing more:
//   - spec_version "2.1" is added (STIX 2.1 §3.2: required for SDOs, SROs
//     and marking definitions; 2.0 put it on the bundle only);
//   - an indicator gets pattern_type "stix" (§4.7, required in 2.1; 2.0
//     patterns were STIX patterns);
//   - the labels of indicator, malware, report, threat-actor and tool
//     (required in 2.0, from the type's vocabulary) move to
//     indicator_types, malware_types, report_types, threat_actor_types
//     and tool_types (§4.7, §4.11, §4.14, §4.17, §4.18);
//   - a malware without is_family gets is_family true: a 2.0 malware
//     always had a name and described a family or its instance, and 2.1
//     wants a family to be named (§4.11).
//
// Observed data keeps its (deprecated, still valid) objects container
// (§2.13). The id, created and modified stay, so that the upgraded object
// is the same version of the same object; the result is deterministic
// (keys sorted) so that importing the same 2.0 bundle again stores
// nothing new.
func UpgradeSTIX20(raw json.RawMessage) (json.RawMessage, error) {
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("STIX 2.0 object: %w", err)
	}
	if !isSTIX20(obj) {
		return raw, nil
	}
	obj["spec_version"] = "2.1"
	t, _ := obj["type"].(string)
	if t == "indicator" {
		if _, ok := obj["pattern_type"]; !ok {
			obj["pattern_type"] = "stix"
		}
	}
	if prop, ok := typesOfLabels[t]; ok {
		if labels, ok := obj["labels"]; ok {
			if _, has := obj[prop]; !has {
				obj[prop] = labels
			}
			delete(obj, "labels")
		}
	}
	if t == "malware" {
		if _, ok := obj["is_family"]; !ok {
			obj["is_family"] = true
		}
	}
	return json.Marshal(obj)
}
