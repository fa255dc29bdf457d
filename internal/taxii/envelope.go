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
// object; "objects", when present, must be a list. Other members ("more",
// "next", custom ones) are ignored.
//
// jsonscan.Valid (json.Valid's answer, faster) plus one scan is several
// times cheaper than decoding into []json.RawMessage, which validates,
// then scans and copies again.
func splitEnvelope(body []byte) ([]json.RawMessage, error) {
	if !jsonscan.Valid(body) {
		var v any
		err := json.Unmarshal(body, &v) // for its precise message
		return nil, fmt.Errorf("the body is not valid JSON: %v", err)
	}
	i := skipSpace(body, 0)
	if body[i] != '{' {
		return nil, errors.New("the body is not a JSON object (a TAXII envelope)")
	}
	i++
	var objects []json.RawMessage
	for {
		i = skipSpace(body, i)
		if body[i] == '}' {
			return objects, nil
		}
		if body[i] == ',' {
			i = skipSpace(body, i+1)
		}
		kstart := i
		i = skipValue(body, i) // the key, a string
		key := body[kstart:i]
		i = skipSpace(body, i) + 1 // ':'
		i = skipSpace(body, i)
		vstart := i
		i = skipValue(body, i)
		if string(key) != `"objects"` {
			continue
		}
		if body[vstart] != '[' {
			return nil, errors.New(`"objects" must be a list`)
		}
		objects = []json.RawMessage{}
		j := skipSpace(body, vstart+1)
		for body[j] != ']' {
			if body[j] == ',' {
				j = skipSpace(body, j+1)
			}
			start := j
			j = skipValue(body, j)
			objects = append(objects, json.RawMessage(body[start:j]))
			j = skipSpace(body, j)
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index just after the JSON value starting at b[i].
// b is known to be valid JSON.
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		for i++; b[i] != '"'; i++ {
			if b[i] == '\\' {
				i++
			}
		}
		return i + 1
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch b[i] {
			case '"':
				i = skipValue(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
	default: // number, true, false, null
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
			i++
		}
		return i
	}
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
