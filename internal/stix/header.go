package stix

import (
	"encoding/json"
	"fmt"
	"time"
)

// Header is what Mitra needs to know of any object to store and serve it:
// its identity and version. The object itself stays as received in Raw.
type Header struct {
	ID          string
	Type        string
	SpecVersion string
	// Created and Modified are the zero time when the object lacks them
	// (SCOs, some custom objects).
	Created  time.Time
	Modified time.Time
	// ModifiedRaw and CreatedRaw keep the timestamps as written, for echoing
	// them back (TAXII manifest "version").
	CreatedRaw  string
	ModifiedRaw string
	Raw         json.RawMessage
	// CreatedByRef is the created_by_ref property ("" when absent).
	CreatedByRef string
	// MarkingRefs are the marking definitions the object refers to, in
	// object_marking_refs and in granular_markings, in that order.
	MarkingRefs []string
	// Recipients is Mitra's x_mitra_recipients extension property: the
	// organisations an AMBER+STRICT or RED object is released to.
	Recipients []string
}

// Version is the timestamp that identifies this version of the object:
// modified, else created (STIX 2.1 §3.6). ok is false for unversioned objects.
func (h *Header) Version() (t time.Time, raw string, ok bool) {
	if h.ModifiedRaw != "" {
		return h.Modified, h.ModifiedRaw, true
	}
	if h.CreatedRaw != "" {
		return h.Created, h.CreatedRaw, true
	}
	return time.Time{}, "", false
}

type headerJSON struct {
	ID                *string  `json:"id"`
	Type              *string  `json:"type"`
	SpecVersion       *string  `json:"spec_version"`
	Created           *string  `json:"created"`
	Modified          *string  `json:"modified"`
	CreatedByRef      string   `json:"created_by_ref"`
	ObjectMarkingRefs []string `json:"object_marking_refs"`
	GranularMarkings  []struct {
		MarkingRef string `json:"marking_ref"`
	} `json:"granular_markings"`
	Recipients []string `json:"x_mitra_recipients"`
}

// ParseHeader reads the identifying properties of one JSON object. It checks
// only what it reads; use a Validator for the rest of the specification.
func ParseHeader(raw []byte) (*Header, error) {
	var hj headerJSON
	if err := json.Unmarshal(raw, &hj); err != nil {
		return nil, fmt.Errorf("object is not a JSON object: %w", err)
	}
	return newHeader(hj, raw)
}

func newHeader(hj headerJSON, raw []byte) (*Header, error) {
	h := &Header{Raw: raw, CreatedByRef: hj.CreatedByRef, Recipients: hj.Recipients}
	h.MarkingRefs = append(h.MarkingRefs, hj.ObjectMarkingRefs...)
	for _, g := range hj.GranularMarkings {
		if g.MarkingRef != "" {
			h.MarkingRefs = append(h.MarkingRefs, g.MarkingRef)
		}
	}
	if hj.Type == nil || *hj.Type == "" {
		return nil, fmt.Errorf("object has no type (STIX 2.1 §3.2)")
	}
	h.Type = *hj.Type
	if hj.ID == nil || *hj.ID == "" {
		return nil, fmt.Errorf("object has no id (STIX 2.1 §3.2)")
	}
	h.ID = *hj.ID
	if hj.SpecVersion != nil {
		h.SpecVersion = *hj.SpecVersion
	}
	var err error
	if hj.Created != nil {
		h.CreatedRaw = *hj.Created
		if h.Created, err = ParseTimestamp(*hj.Created); err != nil {
			return nil, fmt.Errorf("created: %w", err)
		}
	}
	if hj.Modified != nil {
		h.ModifiedRaw = *hj.Modified
		if h.Modified, err = ParseTimestamp(*hj.Modified); err != nil {
			return nil, fmt.Errorf("modified: %w", err)
		}
	}
	return h, nil
}

// headerFromMap builds a Header from an already decoded object, as
// newHeader does from headerJSON (without its pointers, which cost an
// allocation each on the ingest path).
func headerFromMap(obj map[string]any, raw []byte) (*Header, error) {
	strs := func(v any) []string {
		l, _ := v.([]any)
		var out []string
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	h := &Header{Raw: raw, Recipients: strs(obj["x_mitra_recipients"]), MarkingRefs: strs(obj["object_marking_refs"])}
	h.CreatedByRef, _ = obj["created_by_ref"].(string)
	gms, _ := obj["granular_markings"].([]any)
	for _, g := range gms {
		if m, ok := g.(map[string]any); ok {
			if ref, ok := m["marking_ref"].(string); ok && ref != "" {
				h.MarkingRefs = append(h.MarkingRefs, ref)
			}
		}
	}
	if h.Type, _ = obj["type"].(string); h.Type == "" {
		return nil, fmt.Errorf("object has no type (STIX 2.1 §3.2)")
	}
	if h.ID, _ = obj["id"].(string); h.ID == "" {
		return nil, fmt.Errorf("object has no id (STIX 2.1 §3.2)")
	}
	h.SpecVersion, _ = obj["spec_version"].(string)
	var err error
	if s, ok := obj["created"].(string); ok {
		h.CreatedRaw = s
		if h.Created, err = ParseTimestamp(s); err != nil {
			return nil, fmt.Errorf("created: %w", err)
		}
	}
	if s, ok := obj["modified"].(string); ok {
		h.ModifiedRaw = s
		if h.Modified, err = ParseTimestamp(s); err != nil {
			return nil, fmt.Errorf("modified: %w", err)
		}
	}
	return h, nil
}
