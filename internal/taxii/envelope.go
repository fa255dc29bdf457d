package taxii

import (
	"encoding/json"
	"errors"
	"fmt"
)

// splitEnvelope returns the members of a TAXII envelope's "objects" list as
// the bytes received (TAXII 2.1 §3.7). The body must be valid JSON and an
// object; "objects", when present, must be a list. Other members ("more",
// "next", custom ones) are ignored.
//
// json.Valid plus one scan is several times cheaper than decoding into
// []json.RawMessage, which validates, then scans and copies again.
func splitEnvelope(body []byte) ([]json.RawMessage, error) {
	if !json.Valid(body) {
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
