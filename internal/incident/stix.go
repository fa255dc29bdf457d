package incident

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/stix"
)

// ExtensionID is the id of the extension-definition (STIX 2.1 §7.3) of
// Mitra's incident properties: an incident carries them under
// extensions[ExtensionID] as a property-extension.
const ExtensionID = "extension-definition--5e3d1a8c-6f2b-4c57-9b0e-7a4f12c9d0e1"

// extensionCreator is the identity that created the extension definition
// (§7.3.1 requires created_by_ref): the Mitra project.
const extensionCreator = "identity--2a1c7b0e-4d7f-4b8a-9c3e-6f5d0b1a2c34"

// ExtensionVersion is the version of the extension's schema.
const ExtensionVersion = "1.0.0"

// Severities of an incident.
var Severities = []string{"low", "medium", "high", "critical"}

// DefaultSectors are the critical-infrastructure sectors offered when the
// server configures none.
var DefaultSectors = []string{"energy", "water", "health", "transport", "finance", "digital-infrastructure", "government"}

// Properties are Mitra's incident properties (the extension's content).
type Properties struct {
	ReportingOrganisation string    `json:"reporting_organisation"`
	CERT                  string    `json:"coordinating_cert"`
	Sector                string    `json:"sector"`
	Service               string    `json:"affected_service,omitempty"`
	Severity              string    `json:"severity"`
	Impact                string    `json:"impact,omitempty"`
	SuspectedCause        string    `json:"suspected_cause,omitempty"`
	CrossBorder           bool      `json:"cross_border"`
	AwareAt               time.Time `json:"aware_at"`
	Regime                string    `json:"regime"`
}

// Schema is the JSON schema (draft 2020-12) of the extension's content.
const Schema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "https://mitra-cert.github.io/schemas/x-mitra-incident-1.0.0.json",
  "title": "Mitra incident properties",
  "description": "Properties of a reported incident (national CERT coordination), a STIX 2.1 property-extension of the incident object.",
  "type": "object",
  "properties": {
    "extension_type": {"const": "property-extension"},
    "reporting_organisation": {"type": "string", "pattern": "^identity--", "description": "The operator that reports the incident."},
    "coordinating_cert": {"type": "string", "pattern": "^identity--", "description": "The CERT the incident is reported to."},
    "sector": {"type": "string", "description": "Critical-infrastructure sector (energy, water, health, transport, finance, digital-infrastructure, government, or one the server configures)."},
    "affected_service": {"type": "string"},
    "severity": {"enum": ["low", "medium", "high", "critical"]},
    "impact": {"type": "string"},
    "suspected_cause": {"type": "string"},
    "cross_border": {"type": "boolean"},
    "aware_at": {"type": "string", "format": "date-time", "description": "When the operator became aware of the incident: the reporting clocks start here."},
    "regime": {"type": "string", "description": "The reporting regime (nis2, gossopka, gossopka-significant, or one the server loads)."}
  },
  "required": ["extension_type", "reporting_organisation", "coordinating_cert", "sector", "severity", "cross_border", "aware_at", "regime"],
  "additionalProperties": false
}`

// ExtensionDefinition returns the extension-definition object. The API
// serves it; it is not added to the collections an incident goes to,
// where its date_added would tell readers of the collection that someone
// reported an incident there, and when, however hidden the incident.
func ExtensionDefinition() json.RawMessage {
	ts := "2026-12-01T00:00:00.000Z"
	b, _ := json.Marshal(map[string]any{
		"type": "extension-definition", "spec_version": "2.1", "id": ExtensionID,
		"created_by_ref": extensionCreator, "created": ts, "modified": ts,
		"name":            "Mitra incident properties",
		"description":     "Reporting organisation, coordinating CERT, sector, service, severity, impact, suspected cause, cross-border flag, awareness time and reporting regime of an incident.",
		"schema":          "https://mitra-cert.github.io/schemas/x-mitra-incident-1.0.0.json",
		"version":         ExtensionVersion,
		"extension_types": []string{"property-extension"},
	})
	return b
}

// tlpMarkings are the TLP 2.0 marking definitions, by level.
var tlpMarkings = map[access.TLP]string{
	access.TLPClear:       "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
	access.TLPGreen:       "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
	access.TLPAmber:       "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
	access.TLPAmberStrict: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
	access.TLPRed:         "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}

// marking returns the marking definition of a TLP level name; empty means
// TLP:AMBER+STRICT, the usual level of an incident between an operator and
// its CERT.
func marking(tlp string) (string, error) {
	if tlp == "" {
		tlp = "amber+strict"
	}
	level, err := access.ParseTLP(tlp)
	if err != nil {
		return "", fmt.Errorf("tlp: %v: %w", err, ErrInvalid)
	}
	id, ok := tlpMarkings[level]
	if !ok {
		return "", fmt.Errorf("tlp %q: %w", tlp, ErrInvalid)
	}
	return id, nil
}

// sharing is how every object of one incident is marked and released.
type sharing struct {
	marking    string
	recipients []string
	createdBy  string
	// exercise adds the exercise marking (drills).
	exercise bool
}

func (s sharing) apply(o map[string]any) {
	marks := []string{s.marking}
	if s.exercise {
		marks = append(marks, stix.ExerciseMarkingID)
	}
	o["object_marking_refs"] = marks
	if len(s.recipients) > 0 {
		o[access.RecipientsProperty] = s.recipients
	}
	if s.createdBy != "" {
		o["created_by_ref"] = s.createdBy
	}
}

// incidentObjects returns the STIX incident (first) and its relationships
// to the related objects.
// The relationships' ids are derived from the incident's and the
// target's, so that a retried report (Report.IdempotencyKey) makes the
// same objects.
func incidentObjects(id string, r *Report, props Properties, sh sharing, now time.Time) ([]json.RawMessage, error) {
	ts := stix.FormatMicro(now)
	ext := map[string]any{"extension_type": "property-extension"}
	pb, err := json.Marshal(props)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(pb, &ext); err != nil {
		return nil, err
	}
	ext["aware_at"] = stix.FormatMicro(props.AwareAt)
	inc := map[string]any{"type": "incident", "spec_version": "2.1", "id": id, "created": ts, "modified": ts,
		"name": r.Name, "extensions": map[string]any{ExtensionID: ext}}
	if r.Description != "" {
		inc["description"] = r.Description
	}
	sh.apply(inc)
	objs := []map[string]any{inc}
	for _, ref := range r.Related {
		rel := map[string]any{"type": "relationship", "spec_version": "2.1", "id": "relationship--" + uuid.NewSHA1(idNamespace, []byte(id+"\x00"+ref)).String(),
			"created": ts, "modified": ts, "relationship_type": "related-to", "source_ref": id, "target_ref": ref}
		sh.apply(rel)
		objs = append(objs, rel)
	}
	out := make([]json.RawMessage, len(objs))
	for i, o := range objs {
		if out[i], err = json.Marshal(o); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// idNamespace is the UUIDv5 namespace of the ids Mitra derives for
// incidents reported with an idempotency key and for their relationships.
var idNamespace = uuid.MustParse("0f3c6f7e-2b1d-4e8a-9a54-5d8e1c7b2f60")

// incidentID derives the id of the incident an organisation reports with
// an idempotency key: the same organisation and key always give the same
// id; another organisation's key never gives it.
func incidentID(organisation, key string) string {
	return "incident--" + uuid.NewSHA1(idNamespace, []byte(organisation+"\x00"+key)).String()
}

// followUpObject returns a STIX report (§4.16) referring to the incident.
func followUpObject(incidentID, kind, name, text string, refs []string, sh sharing, now time.Time) (string, json.RawMessage, error) {
	ts := stix.FormatMicro(now)
	id := "report--" + uuid.NewString()
	if name == "" {
		name = strings.ToUpper(kind[:1]) + kind[1:] + " report on " + incidentID
	}
	objRefs := append([]string{incidentID}, refs...)
	slices.Sort(objRefs[1:])
	rep := map[string]any{"type": "report", "spec_version": "2.1", "id": id, "created": ts, "modified": ts,
		"name": name, "published": ts, "report_types": []string{"threat-report"},
		"object_refs": slices.Compact(objRefs), "labels": []string{"x-mitra-incident-" + kind}}
	if text != "" {
		rep["description"] = text
	}
	sh.apply(rep)
	b, err := json.Marshal(rep)
	return id, b, err
}

// validRef reports whether ref looks like a STIX identifier.
func validRef(ref string) bool {
	typ, id, ok := strings.Cut(ref, "--")
	return ok && typ != "" && uuid.Validate(id) == nil
}
