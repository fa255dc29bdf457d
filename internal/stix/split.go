package stix

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// SplitInput turns a file's content into its objects: a STIX bundle ({"type":"bundle","objects":[...]}), a TAXII envelope ({"objects":[...]} without type), a single object, a JSON array of objects, or JSON lines (one of any of these per line). It returns the raw bytes of each object exactly as they appear in the input (no re-serialisation).
//
// Top-level values are read as a stream, so JSON lines and concatenated
// (pretty-printed) values both work. An element that is not a JSON object is
// still returned, for Validate to report; syntax errors are returned as an
// error naming the line.
func SplitInput(data []byte) ([]json.RawMessage, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("input is empty: expected a STIX bundle, TAXII envelope, object, array of objects or JSON lines")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var out []json.RawMessage
	for n := 1; ; n++ {
		// The line of a value is where it starts, past the whitespace
		// after the previous one.
		start := dec.InputOffset()
		for start < int64(len(data)) && isSpace(data[start]) {
			start++
		}
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("value %d (line %d): %w", n, lineOf(data, start), err)
		}
		objs, err := splitValue(raw)
		if err != nil {
			return nil, fmt.Errorf("value %d (line %d): %w", n, lineOf(data, start), err)
		}
		out = append(out, objs...)
	}
}

// splitValue classifies one top-level JSON value.
func splitValue(raw json.RawMessage) ([]json.RawMessage, error) {
	t := bytes.TrimLeft(raw, " \t\r\n")
	switch t[0] {
	case '[':
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			return nil, err
		}
		return elems, nil
	case '{':
		// A map, not a struct: encoding/json matches struct fields without
		// regard to case, and "Type" is not "type".
		var top map[string]json.RawMessage
		if err := json.Unmarshal(raw, &top); err != nil {
			return nil, err
		}
		typ, hasType := top["type"]
		objs, hasObjs := top["objects"]
		// An object with a type other than bundle is a single STIX object,
		// even if it has an "objects" property (observed-data, §4.14).
		if hasType && !bytes.Equal(bytes.TrimSpace(typ), []byte(`"bundle"`)) {
			return []json.RawMessage{raw}, nil
		}
		if !hasType && !hasObjs {
			return []json.RawMessage{raw}, nil
		}
		if !hasObjs || bytes.Equal(bytes.TrimSpace(objs), []byte("null")) {
			return nil, nil // A bundle or envelope without objects holds none (§8.1 objects is optional).
		}
		var elems []json.RawMessage
		if err := json.Unmarshal(objs, &elems); err != nil {
			return nil, fmt.Errorf("\"objects\" must be a JSON array of objects: %w", err)
		}
		return elems, nil
	default:
		return []json.RawMessage{raw}, nil
	}
}

func lineOf(data []byte, off int64) int {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	return bytes.Count(data[:off], []byte{'\n'}) + 1
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
