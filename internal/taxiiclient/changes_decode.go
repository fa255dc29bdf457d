package taxiiclient

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/mitra-cert/mitra/internal/jsonscan"
)

// answerDecoder is implemented by answers that read themselves faster than
// encoding/json would.
type answerDecoder interface {
	decodeAnswer(b []byte) error
}

// decodeAnswer reads a change-feed page as json.Unmarshal would, in one
// pass with no reflection: a mirror reads every object it stores through
// it. Each Object is the object's bytes within b, not a copy. Anything
// but the shape Mitra writes (a key that differs from a field's name only
// by case, a key with escapes, a string with escapes, a value of an
// unexpected type, a repeated "changes", invalid JSON) is left to
// json.Unmarshal, so that every page decodes, or fails, as it would.
func (p *ChangesPage) decodeAnswer(b []byte) error {
	*p = ChangesPage{}
	if p.fastDecode(b) {
		return nil
	}
	*p = ChangesPage{}
	return json.Unmarshal(b, p)
}

func (p *ChangesPage) fastDecode(b []byte) bool {
	var sawChanges bool
	i, ok := jsonscan.Object(b, jsonscan.SkipSpace(b, 0), func(key []byte, v int) (int, bool) {
		switch string(key) {
		case "changes":
			if sawChanges {
				return v, false
			}
			sawChanges = true
			return p.decodeChanges(b, v)
		case "more":
			switch {
			case bytes.HasPrefix(b[v:], []byte("true")):
				p.More = true
			case bytes.HasPrefix(b[v:], []byte("false")):
				p.More = false
			default:
				return v, false
			}
			return jsonscan.Value(b, v, 1)
		case "next":
			return intMember(b, v, &p.Next)
		case "oldest":
			return intMember(b, v, &p.Oldest)
		case "latest":
			return intMember(b, v, &p.Latest)
		}
		if foldsTo(key, "changes", "more", "next", "oldest", "latest") {
			return v, false
		}
		return jsonscan.Value(b, v, 1) // an unknown member, ignored
	})
	return ok && jsonscan.SkipSpace(b, i) == len(b)
}

func (p *ChangesPage) decodeChanges(b []byte, v int) (int, bool) {
	if v < len(b) && b[v] == '[' {
		p.Changes = make([]Change, 0, 64) // non-nil even when empty, as encoding/json makes it
	}
	return jsonscan.Array(b, v, func(v int) (int, bool) {
		var c Change
		end, ok := jsonscan.Object(b, v, func(key []byte, v int) (int, bool) {
			switch string(key) {
			case "seq":
				return intMember(b, v, &c.Seq)
			case "op":
				return stringMember(b, v, &c.Op)
			case "id":
				return stringMember(b, v, &c.ID)
			case "version":
				return stringMember(b, v, &c.Version)
			case "date_added":
				return stringMember(b, v, &c.DateAdded)
			case "object":
				end, ok := jsonscan.Value(b, v, 3)
				c.Object = json.RawMessage(b[v:end:end])
				return end, ok
			}
			if foldsTo(key, "seq", "op", "id", "version", "date_added", "object") {
				return v, false
			}
			return jsonscan.Value(b, v, 3)
		})
		if ok {
			p.Changes = append(p.Changes, c)
		}
		return end, ok
	})
}

// foldsTo reports whether key might match one of names the way
// encoding/json matches a struct field (case-insensitively, with Unicode
// folding): any key with an escape or a non-ASCII byte might.
func foldsTo(key []byte, names ...string) bool {
	for _, c := range key {
		if c == '\\' || c >= 0x80 {
			return true
		}
	}
	for _, n := range names {
		if strings.EqualFold(string(key), n) {
			return true
		}
	}
	return false
}

// intMember reads the integer at b[v:] into dst, as encoding/json reads an
// int64 (strconv.ParseInt of the literal); anything else is not read.
func intMember(b []byte, v int, dst *int64) (int, bool) {
	end, ok := jsonscan.Value(b, v, 1)
	if !ok || b[v] != '-' && (b[v] < '0' || b[v] > '9') {
		return v, false
	}
	n, err := strconv.ParseInt(string(b[v:end]), 10, 64)
	if err != nil {
		return v, false
	}
	*dst = n
	return end, true
}

// stringMember reads the string at b[v:], which must have no escape and
// only ASCII (encoding/json replaces invalid UTF-8), into dst.
func stringMember(b []byte, v int, dst *string) (int, bool) {
	if v >= len(b) || b[v] != '"' {
		return v, false
	}
	end, ok := jsonscan.Value(b, v, 3)
	if !ok {
		return v, false
	}
	for _, c := range b[v+1 : end-1] {
		if c == '\\' || c >= 0x80 {
			return v, false
		}
	}
	*dst = string(b[v+1 : end-1])
	return end, true
}
