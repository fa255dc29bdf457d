package feeds

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"iter"

	"github.com/mitra-cert/mitra/internal/stix"
)

// peekSize is how much of a STIX input is looked at to tell a bundle or
// envelope (streamed) from other forms (read whole).
const peekSize = 64 << 10

// STIXSource reads STIX objects from r: a bundle or TAXII envelope is
// streamed object by object (memory bounded by the largest object, not
// the input), other forms (one object, an array, JSON lines) are read
// whole. Each object is yielded exactly as the input wrote it; STIX 2.0
// objects are upgraded to 2.1 (UpgradeSTIX20).
func STIXSource(r io.Reader) Source {
	return Source{Objects: func(yield func(json.RawMessage, error) bool) {
		br := bufio.NewReaderSize(r, peekSize)
		head, _ := br.Peek(peekSize)
		t := bytes.TrimLeft(bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")), " \t\r\n")
		if len(t) > 0 && t[0] == '{' && bytes.Contains(head, []byte(`"objects"`)) {
			for raw, err := range streamObjects(br) {
				if err == nil {
					raw, err = upgrade(raw)
				}
				if !yield(raw, err) || err != nil {
					return
				}
			}
			return
		}
		data, err := io.ReadAll(br)
		if err != nil {
			yield(nil, err)
			return
		}
		raws, err := stix.SplitInput(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")))
		if err != nil {
			yield(nil, fmt.Errorf("%v: %w", err, ErrInvalid))
			return
		}
		for _, raw := range raws {
			raw, err := upgrade(raw)
			if !yield(raw, err) || err != nil {
				return
			}
		}
	}}
}

func upgrade(raw json.RawMessage) (json.RawMessage, error) {
	// Only objects without spec_version can be 2.0 ones: decoding every
	// 2.1 object again would double the import's work.
	if bytes.Contains(raw, []byte(`"spec_version"`)) {
		return raw, nil
	}
	return UpgradeSTIX20(raw)
}

// streamObjects yields the elements of the top-level object's "objects"
// array, skipping its other members.
func streamObjects(r io.Reader) iter.Seq2[json.RawMessage, error] {
	return func(yield func(json.RawMessage, error) bool) {
		dec := json.NewDecoder(r)
		bad := func(err error) {
			yield(nil, fmt.Errorf("STIX bundle at byte %d: %v: %w", dec.InputOffset(), err, ErrInvalid))
		}
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			bad(fmt.Errorf("want a JSON object (%v)", err))
			return
		}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				bad(err)
				return
			}
			if key, _ := tok.(string); key != "objects" {
				var skip json.RawMessage
				if err := dec.Decode(&skip); err != nil {
					bad(err)
					return
				}
				continue
			}
			if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
				bad(fmt.Errorf("objects: want an array (%v)", err))
				return
			}
			for dec.More() {
				var raw json.RawMessage
				if err := dec.Decode(&raw); err != nil {
					bad(err)
					return
				}
				if !yield(raw, nil) {
					return
				}
			}
			if _, err := dec.Token(); err != nil {
				bad(err)
				return
			}
		}
	}
}
