package stix

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/google/uuid"
)

// scoNamespace is the UUIDv5 namespace STIX 2.1 §2.9 defines for SCO ids.
var scoNamespace = uuid.MustParse("00abedb4-aa42-466c-9c01-fed23315a9b7")

// idContrib lists each SCO's "ID Contributing Properties" (§6.x.1 tables)
// and whether one of them is required by the object (then its absence makes
// the object invalid rather than calling for a random id).
type idContrib struct {
	props    []string
	required bool
}

var idContributing = map[string]idContrib{
	"artifact":             {props: []string{"hashes", "payload_bin"}},
	"autonomous-system":    {props: []string{"number"}, required: true},
	"directory":            {props: []string{"path"}, required: true},
	"domain-name":          {props: []string{"value"}, required: true},
	"email-addr":           {props: []string{"value"}, required: true},
	"email-message":        {props: []string{"from_ref", "subject", "body"}},
	"file":                 {props: []string{"hashes", "name", "extensions", "parent_directory_ref"}},
	"ipv4-addr":            {props: []string{"value"}, required: true},
	"ipv6-addr":            {props: []string{"value"}, required: true},
	"mac-addr":             {props: []string{"value"}, required: true},
	"mutex":                {props: []string{"name"}, required: true},
	"network-traffic":      {props: []string{"start", "end", "src_ref", "dst_ref", "src_port", "dst_port", "protocols", "extensions"}, required: true},
	"process":              {}, // §6.13.1: all properties optional, "please use a UUIDv4".
	"software":             {props: []string{"name", "cpe", "swid", "vendor", "version"}, required: true},
	"url":                  {props: []string{"value"}, required: true},
	"user-account":         {props: []string{"account_type", "user_id", "account_login"}},
	"windows-registry-key": {props: []string{"key", "values"}},
	"x509-certificate":     {props: []string{"hashes", "serial_number"}},
}

// hashPreference is the order §6.1.1, §6.7.1 and §6.18.1 give for choosing
// the single hash that contributes to an id.
var hashPreference = []string{"MD5", "SHA-1", "SHA-256", "SHA-512"}

// DeterministicID computes the SCO id (STIX 2.1 §2.9 and each SCO's "ID Contributing Properties"): UUIDv5 in namespace 00abedb4-aa42-466c-9c01-fed23315a9b7 over the canonical JSON (RFC 8785 JCS) of the ID-contributing properties present; falls back to UUIDv4 only where the spec says (no contributing property present).
//
// obj is the object as decoded JSON (map[string]any; numbers may be float64,
// json.Number or Go integers). A hashes property contributes one hash: the
// first of MD5, SHA-1, SHA-256, SHA-512 present, else the alphabetically
// first key (a Go map has no order to keep). Process objects have no
// contributing properties and always get a UUIDv4 (§6.13.1). It is an error
// if obj is not a spec-defined SCO or lacks a required contributing property.
func DeterministicID(obj map[string]any) (string, error) {
	typ, _ := obj["type"].(string)
	ic, ok := idContributing[typ]
	if !ok {
		if typ == "" {
			return "", errors.New("deterministic id: object has no type")
		}
		return "", fmt.Errorf("deterministic id: %q is not a STIX 2.1 Cyber-observable Object type", typ)
	}
	name := make(map[string]any, len(ic.props))
	for _, p := range ic.props {
		v, present := obj[p]
		if !present {
			continue
		}
		if p == "hashes" {
			h, ok := v.(map[string]any)
			if !ok {
				return "", fmt.Errorf("deterministic id: %s hashes must be a dictionary", typ)
			}
			if one := chooseHash(h); one != nil {
				name[p] = one
			}
			continue
		}
		name[p] = v
	}
	if len(name) == 0 {
		if ic.required {
			return "", fmt.Errorf("deterministic id: %s lacks its required ID contributing properties %v", typ, ic.props)
		}
		// §2.9: all contributing properties optional and none present.
		u, err := uuid.NewRandom()
		if err != nil {
			return "", fmt.Errorf("deterministic id: %w", err)
		}
		return typ + "--" + u.String(), nil
	}
	canon, err := canonicalJSON(name)
	if err != nil {
		return "", fmt.Errorf("deterministic id: %w", err)
	}
	return typ + "--" + uuid.NewSHA1(scoNamespace, canon).String(), nil
}

func chooseHash(h map[string]any) map[string]any {
	for _, k := range hashPreference {
		if v, ok := h[k]; ok {
			return map[string]any{k: v}
		}
	}
	if len(h) == 0 {
		return nil
	}
	keys := sortedKeys(h)
	return map[string]any{keys[0]: h[keys[0]]}
}

// canonicalJSON serialises v per RFC 8785 (JSON Canonicalization Scheme):
// no whitespace, object members sorted by the UTF-16 code units of their
// names, strings with the minimal ECMAScript escaping, numbers in
// ECMAScript Number-to-String form.
func canonicalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := writeCanonical(&b, v, 0); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeCanonical(b *bytes.Buffer, v any, depth int) error {
	if depth > maxDepth {
		return errors.New("value nests too deeply")
	}
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if v {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case string:
		writeCanonicalString(b, v)
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return fmt.Errorf("number %s: %w", v, err)
		}
		return writeCanonicalNumber(b, f)
	case float64:
		return writeCanonicalNumber(b, v)
	case float32:
		return writeCanonicalNumber(b, float64(v))
	case int:
		return writeCanonicalNumber(b, float64(v))
	case int64:
		return writeCanonicalNumber(b, float64(v))
	case int32:
		return writeCanonicalNumber(b, float64(v))
	case uint:
		return writeCanonicalNumber(b, float64(v))
	case uint64:
		return writeCanonicalNumber(b, float64(v))
	case uint32:
		return writeCanonicalNumber(b, float64(v))
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeCanonical(b, e, depth+1); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return lessUTF16(keys[i], keys[j]) })
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCanonicalString(b, k)
			b.WriteByte(':')
			if err := writeCanonical(b, v[k], depth+1); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		// Other Go values (typed slices and maps built by a caller) are
		// brought to the generic form through encoding/json first.
		raw, err := json.Marshal(v)
		if err != nil {
			return err
		}
		g, _, err := decodeJSON(raw)
		if err != nil {
			return err
		}
		return writeCanonical(b, g, depth+1)
	}
	return nil
}

// writeCanonicalNumber writes f as ECMAScript's Number.prototype.toString
// does (RFC 8785 §3.2.2.3), the same algorithm encoding/json uses.
func writeCanonicalNumber(b *bytes.Buffer, f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return errors.New("NaN and infinity cannot be serialised")
	}
	if f == 0 {
		b.WriteByte('0') // Also for -0.
		return nil
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs < 1e-6 || abs >= 1e21 {
		format = 'e'
	}
	s := strconv.AppendFloat(nil, f, format, -1, 64)
	if format == 'e' {
		// Go writes e-07 where ECMAScript writes e-7.
		n := len(s)
		if n >= 4 && s[n-4] == 'e' && s[n-3] == '-' && s[n-2] == '0' {
			s[n-2] = s[n-1]
			s = s[:n-1]
		}
	}
	b.Write(s)
	return nil
}

func writeCanonicalString(b *bytes.Buffer, s string) {
	const hexDigits = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			b.WriteRune(r) // Invalid UTF-8 becomes U+FFFD, as in encoding/json.
			i += size
			continue
		}
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte(hexDigits[c>>4])
				b.WriteByte(hexDigits[c&0xf])
			} else {
				b.WriteByte(c)
			}
		}
		i++
	}
	b.WriteByte('"')
}

// lessUTF16 orders strings by their UTF-16 code units (RFC 8785 §3.2.3).
func lessUTF16(a, b string) bool {
	ua := utf16.Encode([]rune(a))
	ub := utf16.Encode([]rune(b))
	for i := 0; i < len(ua) && i < len(ub); i++ {
		if ua[i] != ub[i] {
			return ua[i] < ub[i]
		}
	}
	return len(ua) < len(ub)
}
