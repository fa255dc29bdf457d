package store

import (
	"bytes"
	"encoding/json"
	"reflect"
)

// SameJSON reports whether a and b are the same JSON value: byte-equal, or
// equal after decoding (whitespace and key order do not matter). TAXII asks
// that re-sending an object already present is not an error (TAXII 2.1 §5.5),
// and a client may re-serialise it on the way.
func SameJSON(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var va, vb any
	da := json.NewDecoder(bytes.NewReader(a))
	da.UseNumber()
	db := json.NewDecoder(bytes.NewReader(b))
	db.UseNumber()
	if da.Decode(&va) != nil || db.Decode(&vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}
