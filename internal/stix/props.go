package stix

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Package-level patterns, compiled once and only read.
var (
	// RFC 5646 language tags, checked for shape: a primary subtag of 1–8
	// letters and further alphanumeric subtags of 1–8 characters. This
	// accepts every well-formed tag (and grandfathered ones like i-klingon)
	// without carrying the IANA registry.
	langTagRe = regexp.MustCompile(`^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$`)
	// §6.10: a colon-delimited, lowercase MAC-48 address with leading zeros.
	macRe = regexp.MustCompile(`^[0-9a-f]{2}(:[0-9a-f]{2}){5}$`)
	// §4.1: a CAPEC id is formatted CAPEC-[id].
	capecRe = regexp.MustCompile(`^CAPEC-[0-9]+$`)
	// §4.19: a CVE id, CVE-YYYY-NNNN or longer.
	cveRe = regexp.MustCompile(`^CVE-[0-9]{4}-[0-9]{4,}$`)
)

// maxInt is the largest magnitude of a STIX integer (§2.10: signed 54-bit).
const maxInt = 1<<53 - 1

// kind is the STIX data type of a property (§2).
type kind uint8

const (
	kString kind = iota + 1
	kBool
	kInt
	kFloat
	kTimestamp
	kRef
	kRefList
	kStringList
	kEnum
	kDict
	kHashes
	kKillChains
	kHex
	kBinary
	kObject
	kObjectList
	kLang
	kLangList
)

// prop describes one property of an object or nested type.
type prop struct {
	name     string
	kind     kind
	required bool
	refs     []string // kRef, kRefList: permitted target types; nil for any
	enum     *enumSet // kEnum
	bounded  bool     // kInt: lo..hi applies
	lo, hi   int64
	sub      *objSpec                            // kObject, kObjectList
	dictVal  func(*checker, string, any, string) // kDict: check each value
}

func (p prop) req() prop { p.required = true; return p }

func pStr(n string) prop  { return prop{name: n, kind: kString} }
func pBool(n string) prop { return prop{name: n, kind: kBool} }
func pInt(n string) prop  { return prop{name: n, kind: kInt} }
func pIntRange(n string, lo, hi int64) prop {
	return prop{name: n, kind: kInt, bounded: true, lo: lo, hi: hi}
}
func pNonNeg(n string) prop               { return pIntRange(n, 0, maxInt) }
func pFloat(n string) prop                { return prop{name: n, kind: kFloat} }
func pTime(n string) prop                 { return prop{name: n, kind: kTimestamp} }
func pRef(n string, types ...string) prop { return prop{name: n, kind: kRef, refs: types} }
func pRefs(n string, types ...string) prop {
	return prop{name: n, kind: kRefList, refs: types}
}
func pStrs(n string) prop             { return prop{name: n, kind: kStringList} }
func pEnum(n string, e *enumSet) prop { return prop{name: n, kind: kEnum, enum: e} }
func pDict(n string) prop             { return prop{name: n, kind: kDict} }
func pHashes(n string) prop           { return prop{name: n, kind: kHashes} }
func pKillChains(n string) prop       { return prop{name: n, kind: kKillChains} }
func pHex(n string) prop              { return prop{name: n, kind: kHex} }
func pBin(n string) prop              { return prop{name: n, kind: kBinary} }
func pObj(n string, s *objSpec) prop  { return prop{name: n, kind: kObject, sub: s} }
func pObjs(n string, s *objSpec) prop { return prop{name: n, kind: kObjectList, sub: s} }
func pLangs(n string) prop            { return prop{name: n, kind: kLangList} }
func pDictOf(n string, f func(*checker, string, any, string)) prop {
	return prop{name: n, kind: kDict, dictVal: f}
}

// objSpec describes the properties of an object or nested type.
type objSpec struct {
	section string // where the properties are defined, e.g. "4.7.1"
	props   []prop
	index   map[string]int
	// topPaths are the paths of props in an object checked at the top
	// level ("$"), made once rather than for every object checked.
	topPaths []string
	// atLeastOne: the spec says an instance MUST contain at least one of
	// the listed properties (extensions and types whose properties are all
	// optional).
	atLeastOne bool
	// check runs cross-property rules after the properties are checked.
	check func(c *checker, path string, m map[string]any)
}

func spec(section string, props ...prop) *objSpec {
	s := &objSpec{section: section, props: props, index: make(map[string]int, len(props)), topPaths: make([]string, len(props))}
	for i, p := range props {
		s.index[p.name] = i
		s.topPaths[i] = pathKey("$", p.name)
	}
	return s
}

func (s *objSpec) oneOrMore() *objSpec { s.atLeastOne = true; return s }

func (s *objSpec) with(f func(c *checker, path string, m map[string]any)) *objSpec {
	s.check = f
	return s
}

// props checks m against s. Properties not in s are left to the caller's
// rules for custom properties.
func (c *checker) props(path string, m map[string]any, s *objSpec) {
	present := 0
	for i := range s.props {
		p := &s.props[i]
		v, ok := m[p.name]
		if !ok {
			if p.required {
				c.add(path, s.section, "required property %s is missing", p.name)
			}
			continue
		}
		present++
		pp := s.topPaths[i]
		if path != "$" {
			pp = pathKey(path, p.name)
		}
		c.value(pp, v, p, s.section)
	}
	if s.atLeastOne && present == 0 {
		c.add(path, s.section, "at least one of the properties defined for this type must be present")
	}
	if s.check != nil {
		s.check(c, path, m)
	}
}

// value checks one property value against its definition.
func (c *checker) value(path string, v any, p *prop, sec string) {
	switch p.kind {
	case kString:
		c.str(path, v, sec)
	case kBool:
		c.boolean(path, v, sec)
	case kInt:
		if p.bounded {
			c.integer(path, v, sec, p.lo, p.hi)
		} else {
			c.integer(path, v, sec, -maxInt, maxInt)
		}
	case kFloat:
		c.float(path, v, sec)
	case kTimestamp:
		c.timestamp(path, v, sec)
	case kRef:
		c.ref(path, v, sec, p.refs...)
	case kRefList:
		c.refList(path, v, sec, p.refs...)
	case kStringList:
		c.stringList(path, v, sec)
	case kEnum:
		if s, ok := c.str(path, v, sec); ok && !p.enum.has(s) {
			c.add(path, p.enum.section, "%q is not a value of %s", s, p.enum.name)
		}
	case kDict:
		if d, ok := c.dict(path, v, sec); ok && p.dictVal != nil {
			for _, k := range sortedKeys(d) {
				p.dictVal(c, pathKey(path, k), d[k], sec)
			}
		}
	case kHashes:
		c.hashes(path, v, sec)
	case kKillChains:
		c.killChainPhases(path, v)
	case kHex:
		if s, ok := c.str(path, v, sec); ok && !isHex(s) {
			c.add(path, "2.8", "value must be hexadecimal: an even number of characters 0–9 and a–f")
		}
	case kBinary:
		if s, ok := c.str(path, v, sec); ok {
			if _, err := base64.StdEncoding.DecodeString(s); err != nil {
				c.add(path, "2.1", "value must be base64-encoded binary (RFC 4648)")
			}
		}
	case kObject:
		if m, ok := c.object(path, v, sec); ok {
			c.props(path, m, p.sub)
		}
	case kObjectList:
		if l, ok := c.list(path, v, sec); ok {
			for i, it := range l {
				ip := pathIdx(path, i)
				if m, ok := c.object(ip, it, sec); ok {
					c.props(ip, m, p.sub)
				}
			}
		}
	case kLang:
		c.langTag(path, v, sec)
	case kLangList:
		if l, ok := c.list(path, v, sec); ok {
			for i, it := range l {
				c.langTag(pathIdx(path, i), it, sec)
			}
		}
	}
}

// typeName describes a JSON value for messages.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return "an unknown value"
}

func (c *checker) str(path string, v any, sec string) (string, bool) {
	s, ok := v.(string)
	if !ok {
		c.add(path, sec, "value must be a string, not %s", typeName(v))
	}
	return s, ok
}

func (c *checker) boolean(path string, v any, sec string) (bool, bool) {
	b, ok := v.(bool)
	if !ok {
		c.add(path, "2.2", "value must be a boolean (true or false), not %s", typeName(v))
	}
	return b, ok
}

// integer checks §2.10: a whole number written without fraction or
// exponent, within ±(2^53-1), and within [lo, hi].
func (c *checker) integer(path string, v any, sec string, lo, hi int64) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		c.add(path, "2.10", "value must be an integer, not %s", typeName(v))
		return 0, false
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		if strings.ContainsAny(string(n), ".eE") {
			c.add(path, "2.10", "value %s must be an integer (no fraction or exponent)", n)
		} else {
			c.add(path, "2.10", "integer %s is out of the range of STIX integers (±(2^53-1))", n)
		}
		return 0, false
	}
	if i > maxInt || i < -maxInt {
		c.add(path, "2.10", "integer %d is out of the range of STIX integers (±(2^53-1))", i)
		return 0, false
	}
	if i < lo || i > hi {
		c.add(path, sec, "integer %d must be between %d and %d inclusive", i, lo, hi)
		return i, false
	}
	return i, true
}

func (c *checker) float(path string, v any, sec string) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		c.add(path, "2.6", "value must be a number, not %s", typeName(v))
		return 0, false
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsInf(f, 0) {
		c.add(path, "2.6", "number %s is not a finite double-precision value", n)
		return 0, false
	}
	return f, true
}

func (c *checker) timestamp(path string, v any, sec string) (time.Time, bool) {
	s, ok := v.(string)
	if !ok {
		c.add(path, "2.16", "value must be a timestamp string, not %s", typeName(v))
		return time.Time{}, false
	}
	t, err := ParseTimestamp(s)
	if err != nil {
		c.add(path, "2.16", "%s", strings.TrimSuffix(err.Error(), " (STIX 2.1 §2.16)"))
		return time.Time{}, false
	}
	return t, true
}

// ref checks an identifier (§2.9) and, when types are given, that it
// refers to one of them. It returns the target type.
func (c *checker) ref(path string, v any, sec string, types ...string) (string, bool) {
	s, ok := v.(string)
	if !ok {
		c.add(path, "2.9", "value must be an identifier string, not %s", typeName(v))
		return "", false
	}
	typ, msg := parseIdentifier(s)
	if msg != "" {
		c.add(path, "2.9", "identifier %q %s", s, msg)
		return "", false
	}
	if len(types) == 0 {
		return typ, true
	}
	for _, t := range types {
		if t == typ {
			return typ, true
		}
	}
	c.add(path, sec, "must refer to an object of type %s, not %s", strings.Join(types, " or "), typ)
	return typ, false
}

func (c *checker) refList(path string, v any, sec string, types ...string) ([]string, bool) {
	l, ok := c.list(path, v, sec)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(l))
	all := true
	for i, it := range l {
		if _, ok := c.ref(pathIdx(path, i), it, sec, types...); ok {
			out = append(out, it.(string))
		} else {
			all = false
		}
	}
	return out, all
}

// list checks a non-empty JSON array (§2.12: empty lists are prohibited).
func (c *checker) list(path string, v any, sec string) ([]any, bool) {
	l, ok := v.([]any)
	if !ok {
		c.add(path, "2.12", "value must be a list, not %s", typeName(v))
		return nil, false
	}
	if len(l) == 0 {
		// The top-level pass already reported empty top-level lists.
		if strings.Count(path, ".") > 1 || strings.Contains(path, "[") {
			c.add(path, "2.12", "list must not be empty: omit an optional property instead")
		}
		return nil, false
	}
	return l, true
}

func (c *checker) object(path string, v any, sec string) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		c.add(path, sec, "value must be an object, not %s", typeName(v))
	}
	return m, ok
}

// dict checks a §2.3 dictionary: non-empty, keys ASCII letters, digits,
// hyphen and underscore, at most 250 characters.
func (c *checker) dict(path string, v any, sec string) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		c.add(path, "2.3", "value must be a dictionary (JSON object), not %s", typeName(v))
		return nil, false
	}
	if len(m) == 0 {
		if strings.Count(path, ".") > 1 || strings.Contains(path, "[") {
			c.add(path, "2.3", "dictionary must not be empty: omit an optional property instead")
		}
		return nil, false
	}
	for _, k := range sortedKeys(m) {
		if msg := dictKeyProblem(k, 1); msg != "" {
			c.add(pathKey(path, k), "2.3", "dictionary key %q %s", k, msg)
		}
		if m[k] == nil {
			c.add(pathKey(path, k), "2", "dictionary value must not be null")
		}
	}
	return m, true
}

func dictKeyProblem(k string, minLen int) string {
	if len(k) < minLen || len(k) > 250 {
		if minLen > 1 {
			return "must be between " + strconv.Itoa(minLen) + " and 250 characters long"
		}
		return "must be between 1 and 250 characters long"
	}
	for i := 0; i < len(k); i++ {
		ch := k[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
			return "must contain only ASCII letters, digits, hyphen and underscore"
		}
	}
	return ""
}

func (c *checker) stringList(path string, v any, sec string) {
	l, ok := c.list(path, v, sec)
	if !ok {
		return
	}
	for i, it := range l {
		if _, ok := it.(string); !ok {
			c.add(pathIdx(path, i), sec, "list item must be a string, not %s", typeName(it))
		}
	}
}

func (c *checker) langTag(path string, v any, sec string) {
	s, ok := c.str(path, v, sec)
	if ok && !langTagRe.MatchString(s) {
		c.add(path, sec, "%q is not an RFC 5646 language code", s)
	}
}

// hashes checks §2.7: keys 3–250 ASCII letters, digits, hyphen and
// underscore; values strings in the format of the named algorithm.
func (c *checker) hashes(path string, v any, sec string) {
	m, ok := v.(map[string]any)
	if !ok {
		c.add(path, "2.7", "hashes must be a dictionary (JSON object), not %s", typeName(v))
		return
	}
	if len(m) == 0 {
		if strings.Count(path, ".") > 1 || strings.Contains(path, "[") {
			c.add(path, "2.7", "hashes must not be empty: omit the property instead")
		}
		return
	}
	for _, k := range sortedKeys(m) {
		kp := pathKey(path, k)
		if msg := dictKeyProblem(k, 3); msg != "" {
			c.add(kp, "2.7", "hash algorithm name %q %s", k, msg)
		}
		s, ok := m[k].(string)
		if !ok {
			c.add(kp, "2.7", "hash value must be a string, not %s", typeName(m[k]))
			continue
		}
		if n, known := hashLengths[k]; known && (len(s) != n || !isHexAnyCase(s)) {
			c.add(kp, "2.7", "%s hash must be %d hexadecimal digits", k, n)
		}
	}
}

// killChainPhases checks a list of kill-chain-phase (§2.11).
func (c *checker) killChainPhases(path string, v any) {
	l, ok := c.list(path, v, "2.11")
	if !ok {
		return
	}
	for i, it := range l {
		ip := pathIdx(path, i)
		m, ok := c.object(ip, it, "2.11")
		if !ok {
			continue
		}
		c.props(ip, m, killChainPhaseSpec)
	}
}

var killChainPhaseSpec = spec("2.11", pStr("kill_chain_name").req(), pStr("phase_name").req())

// externalReferences checks §2.5.
func (c *checker) externalReferences(path string, v any) {
	l, ok := c.list(path, v, "2.5")
	if !ok {
		return
	}
	for i, it := range l {
		ip := pathIdx(path, i)
		m, ok := c.object(ip, it, "2.5")
		if !ok {
			continue
		}
		c.props(ip, m, externalReferenceSpec)
	}
}

var externalReferenceSpec = spec("2.5.1",
	pStr("source_name").req(), pStr("description"), pStr("url"), pHashes("hashes"), pStr("external_id"),
).with(func(c *checker, path string, m map[string]any) {
	_, d := m["description"]
	_, u := m["url"]
	_, e := m["external_id"]
	if !d && !u && !e {
		c.add(path, "2.5.2", "an external reference must have at least one of description, url and external_id besides source_name")
	}
})

func isHex(s string) bool {
	if len(s)%2 != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !(ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'f') {
			return false
		}
	}
	return true
}

func isHexAnyCase(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHexDigit(s[i]) {
			return false
		}
	}
	return true
}

// timeOf returns the parsed timestamp of m[name] when it is a valid one;
// rules comparing timestamps use it after the values were checked.
func timeOf(m map[string]any, name string) (time.Time, bool) {
	s, ok := m[name].(string)
	if !ok {
		return time.Time{}, false
	}
	t, err := ParseTimestamp(s)
	return t, err == nil
}

// ordered reports when m[later] is before m[earlier] (or not after it, when
// strict), both being valid timestamps.
func (c *checker) ordered(path string, m map[string]any, earlier, later, sec string, strict bool) {
	a, ok1 := timeOf(m, earlier)
	b, ok2 := timeOf(m, later)
	if !ok1 || !ok2 {
		return
	}
	if strict && !b.After(a) {
		c.add(pathKey(path, later), sec, "%s must be later than %s", later, earlier)
	} else if !strict && b.Before(a) {
		c.add(pathKey(path, later), sec, "%s must be later than or equal to %s", later, earlier)
	}
}

// has reports whether m has every named property.
func has(m map[string]any, names ...string) bool {
	for _, n := range names {
		if _, ok := m[n]; !ok {
			return false
		}
	}
	return true
}

// hasAny reports whether m has at least one of the named properties.
func hasAny(m map[string]any, names ...string) bool {
	for _, n := range names {
		if _, ok := m[n]; ok {
			return true
		}
	}
	return false
}
