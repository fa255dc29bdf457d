package stix

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Validator checks objects. The zero value is usable.
type Validator struct {
	// CheckPattern, when set, validates an indicator's pattern for pattern_type "stix"
	// (the pattern engine lives in another package and is injected by the caller). Its error text goes into the Problem.
	CheckPattern func(pattern string) error
}

// Validate checks one object as JSON against STIX 2.1 (with Errata 01) and
// returns every rule it breaks, or nil when it is valid. Input that is not a
// JSON object, is not valid JSON or repeats a key is reported as Problems too.
//
// Spec-defined types are checked property by property; custom object types
// (§11.2) are checked for their common properties only; properties not
// defined by the specification are allowed when their names follow §3.1 and
// §11.1. A Validator is safe for concurrent use if CheckPattern is.
func (v *Validator) Validate(raw []byte) []Problem {
	_, probs := v.Inspect(raw)
	return probs
}

// Inspect validates raw like Validate and, when it is valid, also returns
// its Header, read from the same decoding (so that callers that store the
// object do not parse it twice).
func (v *Validator) Inspect(raw []byte) (*Header, []Problem) {
	val, dups, err := decodeJSON(raw)
	if err != nil {
		return nil, []Problem{{Path: "$", Rule: "object is not valid JSON: " + err.Error(), Section: "1.2.10"}}
	}
	obj, ok := val.(map[string]any)
	if !ok {
		return nil, []Problem{{Path: "$", Rule: "value is not a JSON object (a STIX object must be one)", Section: "1.2.10"}}
	}
	c := &checker{v: v, obj: obj}
	if id, ok := obj["id"].(string); ok {
		c.id = id
	}
	for _, d := range dups {
		c.add(d, "2.3", "key is repeated: names in a JSON object must be unique (the value cannot be read reliably)")
	}
	c.run()
	if len(c.probs) > 0 {
		return nil, c.probs
	}
	h, err := headerFromMap(obj, raw)
	if err != nil {
		// Unreachable for a valid object; reported rather than hidden.
		return nil, []Problem{{ID: c.id, Path: "$", Rule: err.Error(), Section: "3.2"}}
	}
	return h, nil
}

// checker accumulates the problems of one object.
type checker struct {
	v     *Validator
	obj   map[string]any
	id    string
	typ   string
	spec  *typeSpec
	probs []Problem
}

func (c *checker) add(path, section, format string, args ...any) {
	rule := format
	if len(args) > 0 {
		rule = fmt.Sprintf(format, args...)
	}
	c.probs = append(c.probs, Problem{ID: c.id, Path: path, Rule: rule, Section: section})
}

// run runs every check on c.obj.
func (c *checker) run() {
	o := c.obj
	tv, hasType := o["type"]
	if !hasType {
		c.add("$", "3.2", "required property type is missing")
	} else if t, ok := tv.(string); !ok {
		c.add("$.type", "3.2", "type must be a string")
	} else {
		c.typ = t
		if msg := typeNameProblem(t); msg != "" {
			c.add("$.type", "3.1", "type %q %s", t, msg)
		}
	}
	if c.typ == "bundle" {
		c.add("$", "8", "a bundle is a container, not a STIX Object: submit or validate the objects it holds")
		return
	}
	c.spec = typeSpecs[c.typ]

	// id (§2.9, §3.2): required on every object, of the form type--UUID.
	if iv, ok := o["id"]; !ok {
		c.add("$", "3.2", "required property id is missing")
	} else if s, ok := iv.(string); !ok {
		c.add("$.id", "2.9", "id must be a string of the form <type>--<UUID>")
	} else if prefix, msg := parseIdentifier(s); msg != "" {
		c.add("$.id", "2.9", "id %q %s", s, msg)
	} else if c.typ != "" && prefix != c.typ {
		c.add("$.id", "2.9", "id prefix %q must equal the object's type %q", prefix, c.typ)
	}

	c.topLevelNames()
	extTypes := c.extensions()
	c.common(extTypes)
	if c.spec != nil {
		c.props("$", o, c.spec.obj)
	}
}

// topLevelNames applies the rules on property names and top-level values
// that hold for every object, spec-defined or custom. Problems are
// reported in the order of the names; the names are sorted only when
// there is one (sorting them costs more than checking them).
func (c *checker) topLevelNames() {
	n := len(c.probs)
	for k, v := range c.obj {
		c.topLevelName(k, v)
	}
	if len(c.probs) == n {
		return
	}
	c.probs = c.probs[:n]
	for _, k := range sortedKeys(c.obj) {
		c.topLevelName(k, c.obj[k])
	}
}

func (c *checker) topLevelName(k string, v any) {
	// The path is made only for a problem: most objects have none.
	p := func() string { return pathKey("$", k) }
	if _, reserved := reservedNames[k]; reserved {
		c.add(p(), "3.8", "%q is a reserved property name and must not be used", k)
	} else if !c.isKnownProp(k) {
		if msg := propNameProblem(k); msg != "" {
			c.add(p(), "3.1", "property name %q %s", k, msg)
		}
	}
	switch v := v.(type) {
	case nil:
		c.add(p(), "2", "property must not be null: omit an optional property instead")
	case []any:
		if len(v) == 0 {
			c.add(p(), "2.12", "list must not be empty: omit an optional property instead")
		}
	case map[string]any:
		if len(v) == 0 {
			c.add(p(), "2.3", "dictionary must not be empty: omit an optional property instead")
		}
	}
	// §3.1: an _enc property MUST NOT be present without the property
	// whose encoding it gives.
	if base, ok := strings.CutSuffix(k, "_enc"); ok && base != "" {
		if _, has := c.obj[base]; !has {
			c.add(p(), "3.1", "%s is present without %s, whose encoding it names", k, base)
		}
	}
}

func (c *checker) isKnownProp(k string) bool {
	if _, ok := commonProps[k]; ok {
		return true
	}
	if c.spec != nil {
		if _, ok := c.spec.obj.index[k]; ok {
			return true
		}
	}
	return false
}

// commonProps are the names of §3.2; they are never custom properties.
var commonProps = map[string]struct{}{
	"type": {}, "spec_version": {}, "id": {}, "created_by_ref": {}, "created": {}, "modified": {},
	"revoked": {}, "labels": {}, "confidence": {}, "lang": {}, "external_references": {},
	"object_marking_refs": {}, "granular_markings": {}, "defanged": {}, "extensions": {},
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// common checks the §3.2 common properties: presence by object class and
// the value of each one present.
func (c *checker) common(extTypes map[string]bool) {
	o := c.obj
	cls := classCustom
	if c.spec != nil {
		cls = c.spec.class
	} else if extTypes["new-sdo"] || extTypes["new-sro"] {
		// §7.3: an object type created by an extension MUST meet every
		// requirement of its kind, common properties included.
		cls = classSDO
	}
	need := func(names ...string) {
		for _, n := range names {
			if _, ok := o[n]; !ok {
				c.add("$", "3.2", "required common property %s is missing", n)
			}
		}
	}
	switch cls {
	case classSDO, classSRO, classLanguage:
		need("spec_version", "created", "modified")
	case classMarking:
		need("spec_version", "created")
	case classExtDef:
		need("spec_version", "created", "modified", "created_by_ref")
	}

	if v, ok := o["spec_version"]; ok {
		if s, ok := v.(string); !ok || s != "2.1" {
			c.add("$.spec_version", "3.2", "spec_version must be \"2.1\" for objects of this specification")
		}
	}
	if v, ok := o["created_by_ref"]; ok {
		c.ref("$.created_by_ref", v, "3.2", "identity")
	}
	created, hasCreated := c.versionTimestamp("created", "$.created")
	modified, hasModified := c.versionTimestamp("modified", "$.modified")
	if hasCreated && hasModified && modified.Before(created) {
		c.add("$.modified", "3.2", "modified must be later than or equal to created")
	}
	if v, ok := o["revoked"]; ok {
		c.boolean("$.revoked", v, "3.2")
	}
	if v, ok := o["labels"]; ok {
		c.stringList("$.labels", v, "3.2")
	}
	if v, ok := o["confidence"]; ok {
		c.integer("$.confidence", v, "3.2", 0, 100)
	}
	if v, ok := o["lang"]; ok {
		c.langTag("$.lang", v, "3.2")
	}
	if v, ok := o["external_references"]; ok {
		c.externalReferences("$.external_references", v)
	}
	if v, ok := o["object_marking_refs"]; ok {
		if refs, ok := c.refList("$.object_marking_refs", v, "3.2", "marking-definition"); ok && c.typ == "marking-definition" {
			for i, r := range refs {
				if r == c.id {
					c.add(pathIdx("$.object_marking_refs", i), "3.2", "a marking definition must not mark itself (circular reference)")
				}
			}
		}
	}
	if v, ok := o["granular_markings"]; ok {
		c.granularMarkings(v)
	}
	if v, ok := o["defanged"]; ok {
		c.boolean("$.defanged", v, "3.2")
		if cls != classSCO && cls != classCustom {
			c.add("$.defanged", "3.2", "defanged must not be used on objects other than SCOs")
		}
	}
}

// versionTimestamp checks created or modified: a timestamp whose precision
// MUST be at least milliseconds (§3.2). p is its path, pathKey("$", name).
func (c *checker) versionTimestamp(name, p string) (t time.Time, ok bool) {
	v, present := c.obj[name]
	if !present {
		return time.Time{}, false
	}
	tm, ok := c.timestamp(p, v, "3.2")
	if !ok {
		return time.Time{}, false
	}
	s := v.(string)
	if dot := strings.LastIndexByte(s, '.'); dot < 0 || len(s)-dot-2 < 3 {
		c.add(p, "3.2", "%s must have at least millisecond precision (three digits after the decimal point)", name)
	}
	return tm, true
}

// granularMarkings checks §7.2.3.
func (c *checker) granularMarkings(v any) {
	const sec = "7.2.3"
	list, ok := c.list("$.granular_markings", v, sec)
	if !ok {
		return
	}
	for i, item := range list {
		p := pathIdx("$.granular_markings", i)
		m, ok := c.object(p, item, sec)
		if !ok {
			continue
		}
		_, hasLang := m["lang"]
		mr, hasRef := m["marking_ref"]
		switch {
		case hasLang && hasRef:
			c.add(p, sec, "a granular marking must have exactly one of lang and marking_ref, not both")
		case !hasLang && !hasRef:
			c.add(p, sec, "a granular marking must have exactly one of lang and marking_ref")
		case hasLang:
			c.langTag(p+".lang", m["lang"], sec)
		default:
			c.ref(p+".marking_ref", mr, sec, "marking-definition")
		}
		sv, ok := m["selectors"]
		if !ok {
			c.add(p, sec, "required property selectors is missing")
			continue
		}
		sels, ok := c.list(p+".selectors", sv, sec)
		if !ok {
			continue
		}
		for j, s := range sels {
			sp := pathIdx(p+".selectors", j)
			str, ok := s.(string)
			if !ok {
				c.add(sp, sec, "selector must be a string")
				continue
			}
			if msg := resolveSelector(c.obj, str); msg != "" {
				c.add(sp, sec, "selector %q %s", str, msg)
			}
		}
	}
}

// resolveSelector follows a §7.2.3 selector through obj; selectors MUST
// use "." separated property names and [n] list indexes, and MUST refer to
// content present on the object.
func resolveSelector(obj map[string]any, sel string) string {
	if sel == "" {
		return "is empty"
	}
	var cur any = obj
	for _, part := range strings.Split(sel, ".") {
		if part == "" {
			return "has an empty component"
		}
		if part[0] == '[' {
			if len(part) < 3 || part[len(part)-1] != ']' {
				return "has a malformed list index " + part
			}
			n := 0
			for _, ch := range part[1 : len(part)-1] {
				if ch < '0' || ch > '9' || n > 1<<40 {
					return "has a malformed list index " + part
				}
				n = n*10 + int(ch-'0')
			}
			l, ok := cur.([]any)
			if !ok {
				return "indexes " + part + " into a value that is not a list"
			}
			if n >= len(l) {
				return "refers to list item " + part + ", which is not present"
			}
			cur = l[n]
			continue
		}
		m, ok := cur.(map[string]any)
		if !ok {
			return "selects property " + part + " of a value that is not an object"
		}
		v, ok := m[part]
		if !ok {
			return "refers to property " + part + ", which is not present"
		}
		cur = v
	}
	return ""
}

// extensions checks the extensions dictionary (§3.2, §7.3, §11.3) and
// returns the extension_type values it declares.
func (c *checker) extensions() map[string]bool {
	v, ok := c.obj["extensions"]
	if !ok {
		return nil
	}
	const path = "$.extensions"
	m, ok := c.dict(path, v, "3.2")
	if !ok {
		return nil
	}
	types := map[string]bool{}
	isSCO := c.spec != nil && c.spec.class == classSCO
	for _, k := range sortedKeys(m) {
		p := pathKey(path, k)
		ext, ok := c.object(p, m[k], "3.2")
		if !ok {
			continue
		}
		if len(ext) == 0 {
			// §3.2: the value MUST contain the extension instance; §2.3:
			// empty dictionaries are prohibited.
			c.add(p, "2.3", "an extension must not be an empty dictionary")
			continue
		}
		et, hasET := ext["extension_type"]
		if strings.HasPrefix(k, "extension-definition--") {
			if _, msg := parseIdentifier(k); msg != "" {
				c.add(p, "7.3", "extension key %q %s", k, msg)
			}
			// §7.3: with the extension facility, extension_type MUST be present.
			if !hasET {
				c.add(p, "7.3", "an extension defined by an extension-definition must have extension_type")
			}
		}
		if hasET {
			s, ok := et.(string)
			if !ok || !extensionTypeEnum.has(s) {
				c.add(p+".extension_type", "10.5", "extension_type must be one of new-sdo, new-sco, new-sro, property-extension, toplevel-property-extension")
			} else {
				types[s] = true
			}
		}
		if strings.HasPrefix(k, "extension-definition--") {
			// §7.3.2: extension property names follow the custom name rules.
			for _, pk := range sortedKeys(ext) {
				if pk == "extension_type" {
					continue
				}
				if msg := propNameProblem(pk); msg != "" {
					c.add(pathKey(p, pk), "7.3.2", "extension property name %q %s", pk, msg)
				}
			}
			continue
		}
		if c.spec != nil {
			if es, ok := c.spec.exts[k]; ok {
				c.props(p, ext, es)
				continue
			}
		}
		// Custom (deprecated) extensions exist only on SCOs (§11.3); an
		// unknown object type may be a custom SCO, so it is given the benefit.
		if !isSCO && c.spec != nil {
			c.add(p, "7.3", "extension key %q must be the id of an extension-definition (predefined and custom extensions exist only on SCOs)", k)
			continue
		}
		if isSCO || c.spec == nil {
			c.customExtension(p, k, ext)
		}
	}
	return types
}

// customExtension checks a deprecated custom SCO extension (§11.3.1).
func (c *checker) customExtension(p, k string, ext map[string]any) {
	const sec = "11.3.1"
	if len(k) < 3 || len(k) > 250 || !isLowerAlnumHyphen(k) {
		c.add(p, sec, "custom extension name %q must be 3–250 characters of a–z, 0–9 and hyphen", k)
	}
	if !strings.HasSuffix(k, "-ext") {
		c.add(p, sec, "custom extension name %q must end with \"-ext\" (or be the id of an extension-definition)", k)
	}
	for _, pk := range sortedKeys(ext) {
		if msg := propNameProblem(pk); msg != "" && pk != "extension_type" {
			c.add(pathKey(p, pk), sec, "custom extension property name %q %s", pk, msg)
		}
	}
}

func isLowerAlnumHyphen(s string) bool {
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-') {
			return false
		}
	}
	return true
}

// typeNameProblem checks a type name against §3.1 and §11.2.1/§7.3.2:
// 3–250 characters, ASCII a–z, 0–9 and hyphen, starting with a letter,
// words separated by single hyphens (so no "--", which also keeps ids
// type--UUID unambiguous, and no trailing hyphen).
func typeNameProblem(t string) string {
	if len(t) < 3 || len(t) > 250 {
		return "must be between 3 and 250 characters long"
	}
	if t[0] < 'a' || t[0] > 'z' {
		return "must start with a lowercase letter a–z"
	}
	for i := 0; i < len(t); i++ {
		ch := t[i]
		switch {
		case ch >= 'a' && ch <= 'z', ch >= '0' && ch <= '9':
		case ch == '-':
			if i == len(t)-1 {
				return "must not end with a hyphen"
			}
			if t[i+1] == '-' {
				return "must not contain two hyphens in a row"
			}
		default:
			return "must contain only lowercase a–z, 0–9 and hyphen"
		}
	}
	return ""
}

// propNameProblem checks a property name not defined by the specification
// (§3.1, §11.1.1, §7.3.2): 3–250 characters of ASCII a–z, 0–9 and
// underscore, starting with a letter.
func propNameProblem(k string) string {
	if len(k) < 3 || len(k) > 250 {
		return "must be between 3 and 250 characters long"
	}
	if k[0] < 'a' || k[0] > 'z' {
		return "must start with a lowercase letter a–z"
	}
	for i := 0; i < len(k); i++ {
		ch := k[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '_') {
			return "must contain only lowercase a–z, 0–9 and underscore"
		}
	}
	return ""
}

// parseIdentifier checks "<type>--<UUID>" (§2.9) and returns the type. The
// UUID MUST be RFC 4122-compliant: 8-4-4-4-12 hex digits with the RFC 4122
// variant bits (10xx). Hex digits are case-insensitive on input (RFC 4122 §3).
func parseIdentifier(s string) (typ, msg string) {
	i := strings.Index(s, "--")
	if i < 0 || len(s)-i-2 != 36 {
		return "", "must be of the form <type>--<UUID>"
	}
	typ, u := s[:i], s[i+2:]
	if m := typeNameProblem(typ); m != "" {
		return typ, "has a type part that " + m
	}
	for j := 0; j < 36; j++ {
		ch := u[j]
		switch j {
		case 8, 13, 18, 23:
			if ch != '-' {
				return typ, "has a malformed UUID (must be 8-4-4-4-12 hexadecimal digits)"
			}
		default:
			if !isHexDigit(ch) {
				return typ, "has a malformed UUID (must be 8-4-4-4-12 hexadecimal digits)"
			}
		}
	}
	switch u[19] {
	case '8', '9', 'a', 'b', 'A', 'B':
	default:
		return typ, "has a UUID that is not RFC 4122-compliant (its variant must be RFC 4122)"
	}
	return typ, ""
}

func isHexDigit(ch byte) bool {
	return ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'f' || ch >= 'A' && ch <= 'F'
}
