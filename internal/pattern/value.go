package pattern

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// item is one value an object path resolved to, with what the comparison
// needs to know about where it came from.
type item struct {
	v      any
	s      string // the value when sv is set: strings travel unboxed
	sv     bool
	holder Object // the object that owns the property (after dereferencing)
	prop   string // the last property name on the path
}

// str returns the value if it is a string.
func (it item) str() (string, bool) {
	if it.sv {
		return it.s, true
	}
	s, ok := it.v.(string)
	return s, ok
}

// strItem makes a string-valued item without boxing the string.
func strItem(s string, holder Object, prop string) item {
	return item{s: s, sv: true, holder: holder, prop: prop}
}

// valItem makes an item from a JSON-like value, keeping strings unboxed.
func valItem(v any, holder Object, prop string) item {
	if s, ok := v.(string); ok {
		return strItem(s, holder, prop)
	}
	return item{v: v, holder: holder, prop: prop}
}

// isBinaryProp reports whether a property holds binary data: §9.6.4 names
// the _bin (base64) and _hex suffixes.
func isBinaryProp(name string) bool {
	return strings.HasSuffix(name, "_bin") || strings.HasSuffix(name, "_hex")
}

// itemBytes decodes a binary property to its octets (§9.6.4: native format).
func itemBytes(it item) ([]byte, bool) {
	s, ok := it.str()
	if !ok {
		return nil, false
	}
	if strings.HasSuffix(it.prop, "_hex") {
		b, err := hex.DecodeString(s)
		return b, err == nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		// be lenient with unpadded data, common in the wild
		b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
	}
	return b, err == nil
}

// latin1 maps a string whose code points are all below U+0100 to octets
// (§9.2 string constant, §9.6.4); ok is false otherwise.
func latin1(s string) ([]byte, bool) {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return nil, false
		}
		out = append(out, byte(r))
	}
	return out, true
}

// latin1String is the inverse of latin1: each octet becomes the code point
// of the same value, so a regular expression like \xd4 matches byte 0xd4.
func latin1String(b []byte) string {
	ascii := true
	for _, c := range b {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return string(b)
	}
	var sb strings.Builder
	sb.Grow(len(b) * 2)
	for _, c := range b {
		sb.WriteRune(rune(c))
	}
	return sb.String()
}

// ipHolder reports whether the item is the value of an ipv4-addr or
// ipv6-addr object, for which equality is on addresses, not spellings
// (§9.6.4 native format): '198.51.100.1/32' equals "198.51.100.1".
func ipHolder(it item) bool {
	if it.prop != "value" || it.holder == nil {
		return false
	}
	t := it.holder.Type()
	return t == "ipv4-addr" || t == "ipv6-addr"
}

// parseIPPrefix reads an address or CIDR block; an address is the
// single-address block (/32 or /128). Host bits are masked off.
func parseIPPrefix(s string) (netip.Prefix, bool) {
	if strings.IndexByte(s, '/') >= 0 {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Zone() != "" {
			return netip.Prefix{}, false
		}
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, a.BitLen()), true
}

func ipConstant(l Literal) netip.Prefix {
	if l.Kind != LitString {
		return netip.Prefix{}
	}
	p, _ := parseIPPrefix(l.Str)
	return p
}

// compare orders an item against a constant. ok is false when the types
// are incompatible (§9.6.1), which makes every operator false except !=.
func compare(it item, l Literal) (c int, ok bool) {
	if isBinaryProp(it.prop) {
		b, ok := itemBytes(it)
		if !ok {
			return 0, false
		}
		return compareBytes(b, l)
	}
	if v, ok := it.str(); ok {
		switch l.Kind {
		case LitString:
			// §9.6.2: code point order; UTF-8 byte order is code point order.
			return strings.Compare(v, l.Str), true
		case LitBinary, LitHex:
			b, ok := latin1(v)
			if !ok {
				return 0, false
			}
			return bytes.Compare(b, l.Bytes), true
		case LitTimestamp:
			t, err := parseValueTimestamp(v)
			if err != nil {
				return 0, false
			}
			return t.Compare(l.Time), true
		}
		return 0, false
	}
	switch v := it.v.(type) {
	case bool:
		if l.Kind != LitBool {
			return 0, false
		}
		if v == l.Bool {
			return 0, true
		}
		if v {
			return 1, true
		}
		return -1, true
	}
	if n, isInt, ok := number(it.v); ok {
		switch l.Kind {
		case LitInt:
			if isInt {
				return cmp.Compare(n.i, l.Int), true
			}
			return -cmpIntFloat(l.Int, n.f), !math.IsNaN(n.f)
		case LitFloat:
			if isInt {
				return cmpIntFloat(n.i, l.Float), !math.IsNaN(l.Float)
			}
			if math.IsNaN(n.f) {
				return 0, false
			}
			return cmpFloat(n.f, l.Float), true
		}
	}
	return 0, false
}

func compareBytes(b []byte, l Literal) (int, bool) {
	switch l.Kind {
	case LitBinary, LitHex:
		return bytes.Compare(b, l.Bytes), true // §9.6.3 unsigned octets
	case LitString:
		s, ok := latin1(l.Str)
		if !ok {
			return 0, false // §9.6.4: not convertible, so false (!= true)
		}
		return bytes.Compare(b, s), true
	}
	return 0, false
}

type num struct {
	i int64
	f float64
}

func number(v any) (n num, isInt, ok bool) {
	switch x := v.(type) {
	case int64:
		return num{i: x}, true, true
	case int:
		return num{i: int64(x)}, true, true
	case int32:
		return num{i: int64(x)}, true, true
	case uint32:
		return num{i: int64(x)}, true, true
	case uint16:
		return num{i: int64(x)}, true, true
	case uint64:
		if x <= math.MaxInt64 {
			return num{i: int64(x)}, true, true
		}
		return num{f: float64(x)}, false, true
	case float64:
		return num{f: x}, false, true
	case float32:
		return num{f: float64(x)}, false, true
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return num{i: i}, true, true
		}
		if f, err := strconv.ParseFloat(string(x), 64); err == nil {
			return num{f: f}, false, true
		}
	}
	return num{}, false, false
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// cmpIntFloat compares exactly, without rounding i to a float: §9.2 says an
// integer compared with a float MUST NOT be truncated (1 != 1.5).
func cmpIntFloat(i int64, f float64) int {
	if f >= 9223372036854775808.0 {
		return -1
	}
	if f < -9223372036854775808.0 {
		return 1
	}
	t := math.Trunc(f)
	ti := int64(t)
	if c := cmp.Compare(i, ti); c != 0 {
		return c
	}
	return cmpFloat(0, f-t)
}

// testItem applies a comparison operator (without NOT) to one value.
func (c *Comparison) testItem(it item) bool {
	switch c.Op {
	case OpEq, OpNeq:
		eq, ok := c.equal(it, c.Value, c.prefix)
		if c.Op == OpEq {
			return ok && eq
		}
		return !ok || !eq // §9.6.1: incompatible types make != true
	case OpGt, OpLt, OpGe, OpLe:
		r, ok := compare(it, c.Value)
		if !ok {
			return false
		}
		switch c.Op {
		case OpGt:
			return r > 0
		case OpLt:
			return r < 0
		case OpGe:
			return r >= 0
		default:
			return r <= 0
		}
	case OpIn:
		for i, l := range c.Set {
			if eq, ok := c.equal(it, l, c.setIP[i]); ok && eq {
				return true
			}
		}
		return false
	case OpLike:
		s, ok := textOf(it, true)
		return ok && c.like.match(s)
	case OpMatches:
		s, ok := textOf(it, true)
		return ok && c.re.MatchString(s)
	case OpIsSubset, OpIsSuperset:
		s, ok := it.str()
		if !ok {
			return false
		}
		p, ok := parseIPPrefix(s)
		if !ok {
			return false
		}
		if c.Op == OpIsSubset {
			return prefixContains(c.prefix, p)
		}
		return prefixContains(p, c.prefix)
	case OpExists:
		return true
	}
	return false
}

// prefixContains reports whether block outer wholly contains inner; equal
// blocks contain each other (§9.6.1 ISSUBSET/ISSUPERSET).
func prefixContains(outer, inner netip.Prefix) bool {
	return outer.Addr().Is4() == inner.Addr().Is4() &&
		outer.Bits() <= inner.Bits() && outer.Contains(inner.Addr())
}

func (c *Comparison) equal(it item, l Literal, ip netip.Prefix) (eq, ok bool) {
	if ip.IsValid() && ipHolder(it) {
		if s, isStr := it.str(); isStr {
			if p, ok := parseIPPrefix(s); ok {
				return p == ip, true
			}
		}
	}
	r, ok := compare(it, l)
	return r == 0, ok
}

// textOf gives the text LIKE and MATCHES work on: string properties NFC
// normalized (§9.6.1), binary properties as one code point per octet with
// no normalization (the UNICODE flag MUST NOT apply to them).
func textOf(it item, nfc bool) (string, bool) {
	if isBinaryProp(it.prop) {
		b, ok := itemBytes(it)
		if !ok {
			return "", false
		}
		return latin1String(b), true
	}
	s, ok := it.str()
	if !ok {
		return "", false
	}
	if nfc && !isASCII(s) && !norm.NFC.IsNormalString(s) {
		s = norm.NFC.String(s)
	}
	return s, true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
