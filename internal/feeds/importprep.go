package feeds

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/mitra-cert/mitra/internal/access"
)

// TLPMarkings are the TLP 2.0 marking definitions (OASIS TLP 2.0
// extension), by level: what an import marks objects with.
var TLPMarkings = map[access.TLP]string{
	access.TLPClear:       "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
	access.TLPGreen:       "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
	access.TLPAmber:       "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
	access.TLPAmberStrict: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
	access.TLPRed:         "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}

// scoTypes are the STIX 2.1 cyber-observable types (§6): they have no
// confidence property.
var scoTypes = map[string]bool{
	"artifact": true, "autonomous-system": true, "directory": true, "domain-name": true, "email-addr": true,
	"email-message": true, "file": true, "ipv4-addr": true, "ipv6-addr": true, "mac-addr": true, "mutex": true,
	"network-traffic": true, "process": true, "software": true, "url": true, "user-account": true,
	"windows-registry-key": true, "x509-certificate": true,
}

// preparer adds the chosen marking and confidence to the objects that lack
// them, by inserting the properties at the start of the object so that
// the rest of its bytes stay exactly as the source wrote them.
type preparer struct {
	marking    string
	confidence string
}

func newPreparer(opt Options) (*preparer, error) {
	var p preparer
	if opt.TLP != "" {
		level, err := access.ParseTLP(opt.TLP)
		if err != nil {
			return nil, fmt.Errorf("tlp: %v: %w", err, ErrInvalid)
		}
		p.marking = TLPMarkings[level]
	}
	if opt.Confidence != nil {
		if *opt.Confidence < 0 || *opt.Confidence > 100 {
			// STIX 2.1 §3.2: confidence is an integer from 0 to 100.
			return nil, fmt.Errorf("confidence %d: want 0 to 100: %w", *opt.Confidence, ErrInvalid)
		}
		p.confidence = strconv.Itoa(*opt.Confidence)
	}
	return &p, nil
}

func (p *preparer) prepare(raw json.RawMessage) json.RawMessage {
	if p.marking == "" && p.confidence == "" {
		return raw
	}
	var h struct {
		Type       string          `json:"type"`
		Markings   json.RawMessage `json:"object_marking_refs"`
		Confidence json.RawMessage `json:"confidence"`
	}
	if json.Unmarshal(raw, &h) != nil {
		return raw // the checks report it
	}
	var add bytes.Buffer
	if p.marking != "" && h.Markings == nil && h.Type != "marking-definition" && h.Type != "extension-definition" {
		add.WriteString(`"object_marking_refs":["` + p.marking + `"],`)
	}
	if p.confidence != "" && h.Confidence == nil && !scoTypes[h.Type] && h.Type != "marking-definition" && h.Type != "extension-definition" {
		add.WriteString(`"confidence":` + p.confidence + `,`)
	}
	if add.Len() == 0 {
		return raw
	}
	at := bytes.IndexByte(raw, '{')
	rest := bytes.TrimLeft(raw[at+1:], " \t\r\n")
	if len(rest) > 0 && rest[0] == '}' {
		return raw // an empty object: the checks report it
	}
	out := make([]byte, 0, len(raw)+add.Len())
	out = append(out, raw[:at+1]...)
	out = append(out, add.Bytes()...)
	return append(out, raw[at+1:]...)
}
