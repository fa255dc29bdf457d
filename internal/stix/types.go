package stix

import (
	"encoding/json"
	"net/netip"
	"net/url"
	"strings"
)

// class is the kind of STIX object, which decides its common properties (§3.2).
type class uint8

const (
	classCustom class = iota
	classSDO
	classSRO
	classSCO
	classMarking
	classLanguage
	classExtDef
)

// typeSpec describes a spec-defined object type.
type typeSpec struct {
	class class
	obj   *objSpec
	// exts are the predefined extensions of an SCO, by extensions key.
	exts map[string]*objSpec
}

// typeSpecs holds every object type STIX 2.1 defines. It is filled once by
// init (the rules refer back to it, which a variable initialiser cannot) and
// only read afterwards.
var typeSpecs map[string]*typeSpec

func init() {
	typeSpecs = make(map[string]*typeSpec, 40)
	for t, s := range domainAndMetaSpecs() {
		typeSpecs[t] = s
	}
	for t, s := range scoSpecs() {
		typeSpecs[t] = s
	}
}

func domainAndMetaSpecs() map[string]*typeSpec {
	return map[string]*typeSpec{
		// §4 STIX Domain Objects.
		"attack-pattern": sdo(spec("4.1.1",
			pStr("name").req(), pStr("description"), pStrs("aliases"), pKillChains("kill_chain_phases"),
		).with(func(c *checker, _ string, m map[string]any) {
			// §4.1.1: a CAPEC id has source_name "capec" and external_id CAPEC-[id].
			c.sourceIDFormat(m, "capec", capecRe, "CAPEC-[id]", "4.1.1")
		})),
		"campaign": sdo(spec("4.2.1",
			pStr("name").req(), pStr("description"), pStrs("aliases"), pTime("first_seen"), pTime("last_seen"), pStr("objective"),
		).with(firstLastSeen("4.2.1"))),
		"course-of-action": sdo(spec("4.3.1", pStr("name").req(), pStr("description"))),
		"grouping": sdo(spec("4.4.1",
			pStr("name").req(), pStr("description"), pStr("context").req(), pRefs("object_refs").req(),
		)),
		"identity": sdo(spec("4.5.1",
			pStr("name").req(), pStr("description"), pStrs("roles"), pStr("identity_class"), pStrs("sectors"), pStr("contact_information"),
		)),
		"incident": sdo(spec("4.6.1", pStr("name").req(), pStr("description"), pKillChains("kill_chain_phases"))),
		"indicator": sdo(spec("4.7.1",
			pStr("name"), pStr("description"), pStrs("indicator_types"), pStr("pattern").req(), pStr("pattern_type").req(),
			pStr("pattern_version"), pTime("valid_from").req(), pTime("valid_until"), pKillChains("kill_chain_phases"),
		).with(func(c *checker, path string, m map[string]any) {
			c.ordered(path, m, "valid_from", "valid_until", "4.7.1", true)
			// pattern_type is an open vocabulary (§10.19): other languages are
			// allowed, and only STIX patterns can be checked here.
			pt, _ := m["pattern_type"].(string)
			p, ok := m["pattern"].(string)
			if pt == "stix" && ok && c.v.CheckPattern != nil {
				if err := c.v.CheckPattern(p); err != nil {
					c.add(pathKey(path, "pattern"), "9", "pattern is not a valid STIX pattern: %v", err)
				}
			}
		})),
		"infrastructure": sdo(spec("4.8.1",
			pStr("name").req(), pStr("description"), pStrs("infrastructure_types"), pStrs("aliases"),
			pKillChains("kill_chain_phases"), pTime("first_seen"), pTime("last_seen"),
		).with(firstLastSeen("4.8.1"))),
		"intrusion-set": sdo(spec("4.9.1",
			pStr("name").req(), pStr("description"), pStrs("aliases"), pTime("first_seen"), pTime("last_seen"),
			pStrs("goals"), pStr("resource_level"), pStr("primary_motivation"), pStrs("secondary_motivations"),
		).with(firstLastSeen("4.9.1"))),
		"location": sdo(spec("4.10.1",
			pStr("name"), pStr("description"), pFloat("latitude"), pFloat("longitude"), pFloat("precision"),
			pStr("region"), pStr("country"), pStr("administrative_area"), pStr("city"), pStr("street_address"), pStr("postal_code"),
		).with(checkLocation)),
		"malware": sdo(spec("4.11.1",
			pStr("name"), pStr("description"), pStrs("malware_types"), pBool("is_family"), pStrs("aliases"),
			pKillChains("kill_chain_phases"), pTime("first_seen"), pTime("last_seen"),
			pRefs("operating_system_refs", "software"), pStrs("architecture_execution_envs"),
			pStrs("implementation_languages"), pStrs("capabilities"), pRefs("sample_refs", "file", "artifact"),
		).with(func(c *checker, path string, m map[string]any) {
			c.ordered(path, m, "first_seen", "last_seen", "4.11.1", false)
			if fam, _ := m["is_family"].(bool); fam && !has(m, "name") {
				c.add(path, "4.11.1", "a malware family (is_family true) must have a name")
			}
		})),
		"malware-analysis": sdo(spec("4.12.1",
			pStr("product").req(), pStr("version"), pRef("host_vm_ref", "software"), pRef("operating_system_ref", "software"),
			pRefs("installed_software_refs", "software"), pStr("configuration_version"), pStrs("modules"),
			pStr("analysis_engine_version"), pStr("analysis_definition_version"), pTime("submitted"),
			pTime("analysis_started"), pTime("analysis_ended"), pStr("result_name"), pStr("result"),
			pRefs("analysis_sco_refs"), pRef("sample_ref"),
		).with(func(c *checker, path string, m map[string]any) {
			if !hasAny(m, "result", "analysis_sco_refs") {
				c.add(path, "4.12", "one of result or analysis_sco_refs must be present")
			}
			c.ordered(path, m, "analysis_started", "analysis_ended", "4.12.1", false)
		})),
		"note": sdo(spec("4.13.1",
			pStr("abstract"), pStr("content").req(), pStrs("authors"), pRefs("object_refs").req(),
		)),
		"observed-data": sdo(spec("4.14.1",
			pTime("first_observed").req(), pTime("last_observed").req(),
			pIntRange("number_observed", 1, 999999999).req(), pDict("objects"), pRefs("object_refs"),
		).with(checkObservedData)),
		"opinion": sdo(spec("4.15.1",
			pStr("explanation"), pStrs("authors"), pEnum("opinion", opinionEnum).req(), pRefs("object_refs").req(),
		)),
		"report": sdo(spec("4.16.1",
			pStr("name").req(), pStr("description"), pStrs("report_types"), pTime("published").req(), pRefs("object_refs").req(),
		)),
		"threat-actor": sdo(spec("4.17.1",
			pStr("name").req(), pStr("description"), pStrs("threat_actor_types"), pStrs("aliases"),
			pTime("first_seen"), pTime("last_seen"), pStrs("roles"), pStrs("goals"), pStr("sophistication"),
			pStr("resource_level"), pStr("primary_motivation"), pStrs("secondary_motivations"), pStrs("personal_motivations"),
		).with(firstLastSeen("4.17.1"))),
		"tool": sdo(spec("4.18.1",
			pStr("name").req(), pStr("description"), pStrs("tool_types"), pStrs("aliases"),
			pKillChains("kill_chain_phases"), pStr("tool_version"),
		)),
		"vulnerability": sdo(spec("4.19.1", pStr("name").req(), pStr("description")).with(
			func(c *checker, _ string, m map[string]any) {
				// §4.19.1: a CVE id has source_name "cve" and the exact CVE id.
				c.sourceIDFormat(m, "cve", cveRe, "CVE-YYYY-NNNN", "4.19.1")
			})),

		// §5 STIX Relationship Objects.
		"relationship": {class: classSRO, obj: spec("5.1.2",
			pStr("relationship_type").req(), pStr("description"), pRef("source_ref").req(), pRef("target_ref").req(),
			pTime("start_time"), pTime("stop_time"),
		).with(checkRelationship)},
		"sighting": {class: classSRO, obj: spec("5.2.1",
			pStr("description"), pTime("first_seen"), pTime("last_seen"), pIntRange("count", 0, 999999999),
			pRef("sighting_of_ref").req(), pRefs("observed_data_refs", "observed-data"),
			pRefs("where_sighted_refs", "identity", "location"),
			// The §5.2.1 table gives summary the type string, but its
			// description (default false) and §2.2's example make it a boolean.
			pBool("summary"),
		).with(func(c *checker, path string, m map[string]any) {
			c.ordered(path, m, "first_seen", "last_seen", "5.2.1", false)
			if s, ok := m["sighting_of_ref"].(string); ok {
				if t, msg := parseIdentifier(s); msg == "" && !isSDOType(t) {
					c.add(pathKey(path, "sighting_of_ref"), "5.2.1", "sighting_of_ref must refer to an SDO, not %s", t)
				}
			}
		})},

		// §7 STIX Meta Objects.
		"language-content": {class: classLanguage, obj: spec("7.1.1",
			pRef("object_ref").req(), pTime("object_modified"), pDictOf("contents", checkTranslation).req(),
		).with(func(c *checker, path string, m map[string]any) {
			if d, ok := m["contents"].(map[string]any); ok {
				for _, k := range sortedKeys(d) {
					if !langTagRe.MatchString(k) {
						c.add(pathKey(pathKey(path, "contents"), k), "7.1.1", "contents key %q must be an RFC 5646 language code", k)
					}
				}
			}
		})},
		"marking-definition": {class: classMarking, obj: spec("7.2.1",
			pStr("name"), pStr("definition_type"), prop{name: "definition", kind: kObject, sub: spec("7.2.1")},
		).with(checkMarkingDefinition)},
		"extension-definition": {class: classExtDef, obj: spec("7.3.1",
			pStr("name").req(), pStr("description"), pStr("schema").req(), pStr("version").req(),
			prop{name: "extension_types", kind: kStringList, required: true}, pStrs("extension_properties"),
		).with(checkExtensionDefinition)},
	}
}

func sdo(s *objSpec) *typeSpec { return &typeSpec{class: classSDO, obj: s} }

func firstLastSeen(sec string) func(*checker, string, map[string]any) {
	return func(c *checker, path string, m map[string]any) {
		c.ordered(path, m, "first_seen", "last_seen", sec, false)
	}
}

// isSDOType reports whether t may name an SDO: a spec-defined SDO or a
// custom type (which may be an SDO, §11.2, §7.3).
func isSDOType(t string) bool {
	s, ok := typeSpecs[t]
	if !ok {
		return t != "bundle"
	}
	return s.class == classSDO
}

// sourceIDFormat checks the external_id format that §4.1.1 and §4.19.1
// require for one source_name.
func (c *checker) sourceIDFormat(m map[string]any, source string, re interface{ MatchString(string) bool }, form, sec string) {
	refs, _ := m["external_references"].([]any)
	for i, r := range refs {
		er, _ := r.(map[string]any)
		if er == nil || er["source_name"] != source {
			continue
		}
		if id, ok := er["external_id"].(string); ok && !re.MatchString(id) {
			c.add(pathIdx("$.external_references", i)+".external_id", sec,
				"external_id %q for source_name %q must be formatted %s", id, source, form)
		}
	}
}

func checkLocation(c *checker, path string, m map[string]any) {
	const sec = "4.10"
	_, lat := m["latitude"]
	_, lon := m["longitude"]
	if lat != lon {
		c.add(path, "4.10.1", "latitude and longitude must be present together")
	}
	if has(m, "precision") && !(lat && lon) {
		c.add(pathKey(path, "precision"), "4.10.1", "precision requires latitude and longitude")
	}
	if !hasAny(m, "region", "country") && !(lat && lon) {
		c.add(path, sec, "a location must have at least one of region, country, or latitude and longitude")
	}
	if f, ok := floatOf(m, "latitude"); ok && (f < -90 || f > 90) {
		c.add(pathKey(path, "latitude"), "4.10.1", "latitude must be between -90.0 and 90.0 inclusive")
	}
	if f, ok := floatOf(m, "longitude"); ok && (f < -180 || f > 180) {
		c.add(pathKey(path, "longitude"), "4.10.1", "longitude must be between -180.0 and 180.0 inclusive")
	}
}

func checkObservedData(c *checker, path string, m map[string]any) {
	const sec = "4.14"
	_, objs := m["objects"]
	refs, hasRefs := m["object_refs"]
	switch {
	case objs && hasRefs:
		c.add(path, sec, "objects and object_refs must not both be present")
	case !objs && !hasRefs:
		c.add(path, sec, "one of object_refs or the deprecated objects must be present")
	}
	c.ordered(path, m, "first_observed", "last_observed", "4.14.1", false)
	if l, ok := refs.([]any); ok && len(l) > 0 {
		// §4.14.1: object_refs MUST contain at least one SCO reference. A
		// custom type may be an SCO, so only spec-defined non-SCOs count
		// against it.
		found := false
		for _, r := range l {
			s, _ := r.(string)
			t, msg := parseIdentifier(s)
			if msg != "" {
				continue
			}
			if ts, known := typeSpecs[t]; !known || ts.class == classSCO {
				found = true
				break
			}
		}
		if !found {
			c.add(pathKey(path, "object_refs"), "4.14.1", "object_refs must contain at least one reference to an SCO")
		}
	}
	if d, ok := m["objects"].(map[string]any); ok {
		// The deprecated observable container (§2.13) holds SCOs keyed by
		// local references; each must at least be an object with a type.
		for _, k := range sortedKeys(d) {
			p := pathKey(pathKey(path, "objects"), k)
			o, ok := d[k].(map[string]any)
			if !ok {
				c.add(p, "2.13", "observable container values must be Cyber-observable Objects")
				continue
			}
			if _, ok := o["type"].(string); !ok {
				c.add(p, "2.13", "a Cyber-observable Object in the container must have a type")
			}
		}
	}
}

// notRelatable are the spec types a relationship cannot point to: SROs,
// bundles and meta objects (§5.1.2).
var notRelatable = map[string]struct{}{
	"relationship": {}, "sighting": {}, "bundle": {}, "language-content": {},
	"marking-definition": {}, "extension-definition": {},
}

func checkRelationship(c *checker, path string, m map[string]any) {
	const sec = "5.1.2"
	if rt, ok := m["relationship_type"].(string); ok && (rt == "" || !isLowerAlnumHyphen(rt)) {
		c.add(pathKey(path, "relationship_type"), sec, "relationship_type must be ASCII a–z, 0–9 and hyphen")
	}
	for _, n := range []string{"source_ref", "target_ref"} {
		s, ok := m[n].(string)
		if !ok {
			continue
		}
		if t, msg := parseIdentifier(s); msg == "" {
			if _, bad := notRelatable[t]; bad {
				c.add(pathKey(path, n), sec, "%s must refer to an SDO or SCO, not %s", n, t)
			}
		}
	}
	c.ordered(path, m, "start_time", "stop_time", sec, true)
}

// checkTranslation checks one language's contents in a language-content
// object: a dictionary mirroring the target's properties (§7.1.1).
func checkTranslation(c *checker, path string, v any, sec string) {
	if _, ok := v.(map[string]any); !ok {
		c.add(path, sec, "each contents value must be a dictionary of translated properties, not %s", typeName(v))
	}
}

func checkMarkingDefinition(c *checker, path string, m map[string]any) {
	const sec = "7.2.1"
	if !has(m, "extensions") {
		if !has(m, "definition_type") {
			c.add(path, sec, "definition_type is required when extensions is absent")
		}
		if !has(m, "definition") {
			c.add(path, sec, "definition is required when extensions is absent")
		}
	}
	dt, _ := m["definition_type"].(string)
	def, _ := m["definition"].(map[string]any)
	switch dt {
	case "statement":
		if def != nil {
			c.props(pathKey(path, "definition"), def, statementSpec)
		}
	case "tlp":
		if def != nil {
			c.props(pathKey(path, "definition"), def, tlpSpec)
		}
		// §7.2.1.4: only the four standard TLP marking definitions exist.
		want, known := tlpMarkings[c.id]
		if !known {
			c.add(pathKey(path, "id"), "7.2.1.4", "a TLP marking definition must be one of the four defined by the specification; %q is not", c.id)
		} else if got, _ := def["tlp"].(string); def != nil && got != "" && got != want {
			c.add(pathKey(pathKey(path, "definition"), "tlp"), "7.2.1.4", "%s is the TLP:%s marking definition, not %s", c.id, strings.ToUpper(want), got)
		}
	}
}

var (
	statementSpec = spec("7.2.1.3", pStr("statement").req())
	tlpSpec       = spec("7.2.1.4", pStr("tlp").req())
)

func checkExtensionDefinition(c *checker, path string, m map[string]any) {
	const sec = "7.3.1"
	l, _ := m["extension_types"].([]any)
	toplevel := false
	for i, it := range l {
		s, ok := it.(string)
		if !ok {
			continue
		}
		if !extensionTypeEnum.has(s) {
			c.add(pathIdx(pathKey(path, "extension_types"), i), "10.5", "%q is not a value of extension-type-enum", s)
		}
		toplevel = toplevel || s == "toplevel-property-extension"
	}
	if has(m, "extension_properties") && !toplevel {
		c.add(pathKey(path, "extension_properties"), sec, "extension_properties may only be used when extension_types includes toplevel-property-extension")
	}
}

func floatOf(m map[string]any, name string) (float64, bool) {
	n, ok := m[name].(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}

// The helpers below check SCO value syntax.

func validIPv4(s string) bool {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return err == nil && p.Addr().Is4()
	}
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is4()
}

func validIPv6(s string) bool {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return err == nil && p.Addr().Is6() && p.Addr().Zone() == ""
	}
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is6() && a.Zone() == ""
}

func validURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != ""
}
