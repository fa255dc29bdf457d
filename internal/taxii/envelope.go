package taxii

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mitra-cert/mitra/internal/jsonscan"
)

// splitEnvelope returns the members of a TAXII envelope's "objects" list as
// the bytes received (TAXII 2.1 §3.7). The body must be valid JSON and an
// object; "objects", when present, must be a list (the last one counts when
// it is repeated). Other members ("more", "next", custom ones) are ignored.
//
// One pass of jsonscan checks the body as json.Valid would and splits it:
// several times cheaper than decoding into []json.RawMessage, which
// validates, then scans and copies again.
func splitEnvelope(body []byte) ([]json.RawMessage, error) {
	if i := jsonscan.SkipSpace(body, 0); i < len(body) && body[i] == '{' {
		var objects []json.RawMessage
		notList := false
		end, ok := jsonscan.Object(body, i, func(key []byte, v int) (int, bool) {
			if string(key) != "objects" {
				return jsonscan.Value(body, v, 1)
			}
			if v >= len(body) || body[v] != '[' {
				notList = true
				return jsonscan.Value(body, v, 1)
			}
			objects = []json.RawMessage{}
			return jsonscan.Array(body, v, func(v int) (int, bool) {
				end, ok := jsonscan.Value(body, v, 2)
				if ok {
					objects = append(objects, json.RawMessage(body[v:end]))
				}
				return end, ok
			})
		})
		if ok && jsonscan.SkipSpace(body, end) == len(body) {
			if notList {
				return nil, errors.New(`"objects" must be a list`)
			}
			return objects, nil
		}
	}
	if !jsonscan.Valid(body) {
		var v any
		err := json.Unmarshal(body, &v) // for its precise message
		return nil, fmt.Errorf("the body is not valid JSON: %v", err)
	}
	return nil, errors.New("the body is not a JSON object (a TAXII envelope)")
}

// bareObject refuses a body that is one STIX object rather than a TAXII
// envelope (TAXII 2.1 §3.7): a JSON object with a "type" member and no
// "objects". Read as an envelope it would have no objects, and storing
// nothing would look like success to the client. Bodies that are not JSON
// pass, for splitEnvelope to report.
func bareObject(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	typ := ""
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil
		}
		if k == "objects" {
			return nil // an envelope (or a bundle, which splitEnvelope reads alike)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil
		}
		if k == "type" {
			if json.Unmarshal(v, &typ) != nil {
				typ = "?"
			}
		}
	}
	if typ == "" {
		return nil
	}
	return badRequest(fmt.Sprintf(`the body is a single STIX object (type %q), not a TAXII envelope: send {"objects": [ ... ]} (TAXII 2.1 §3.7)`, typ))
}
