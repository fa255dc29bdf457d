package stix

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const (
	uuidA   = "6b616fc1-1505-48e3-8b2c-0d19337bff38"
	ts      = "2016-04-06T20:03:00.000Z"
	tsLater = "2017-01-01T00:00:00.000Z"
)

func idOf(t string) string { return t + "--" + uuidA }

// sdoBase holds the common properties required of SDOs and SROs (§3.2).
var sdoBase = `"spec_version":"2.1","created":"` + ts + `","modified":"` + ts + `"`

// validObjects has one minimal valid instance of every spec-defined type
// plus a custom one; the table tests break them one rule at a time.
var validObjects = map[string]string{
	"attack-pattern":   `{"name":"Spear Phishing","kill_chain_phases":[{"kill_chain_name":"lockheed-martin-cyber-kill-chain","phase_name":"reconnaissance"}],"external_references":[{"source_name":"capec","external_id":"CAPEC-163"}]}`,
	"campaign":         `{"name":"Green Group Attacks","first_seen":"` + ts + `","last_seen":"` + tsLater + `"}`,
	"course-of-action": `{"name":"Add TCP port 80 Filter Rule"}`,
	"grouping":         `{"name":"Suspicious","context":"suspicious-activity","object_refs":["` + idOf("indicator") + `"]}`,
	"identity":         `{"name":"ACME","identity_class":"organization","sectors":["technology"]}`,
	"incident":         `{"name":"Breach"}`,
	"indicator":        `{"pattern":"[ipv4-addr:value = '198.51.100.1']","pattern_type":"stix","valid_from":"` + ts + `","valid_until":"` + tsLater + `"}`,
	"infrastructure":   `{"name":"Poison Ivy C2","infrastructure_types":["command-and-control"]}`,
	"intrusion-set":    `{"name":"Bobcat Breakin"}`,
	"location":         `{"region":"europe","latitude":48.8566,"longitude":2.3522,"precision":1000}`,
	"malware":          `{"name":"Cryptolocker","is_family":true,"malware_types":["ransomware"],"sample_refs":["` + idOf("file") + `"]}`,
	"malware-analysis": `{"product":"microsoft-msrc","result":"malicious","host_vm_ref":"` + idOf("software") + `"}`,
	"note":             `{"content":"Looks like a phishing attempt","object_refs":["` + idOf("campaign") + `"]}`,
	"observed-data":    `{"first_observed":"` + ts + `","last_observed":"` + tsLater + `","number_observed":50,"object_refs":["` + idOf("ipv4-addr") + `"]}`,
	"opinion":          `{"opinion":"strongly-disagree","object_refs":["` + idOf("relationship") + `"]}`,
	"report":           `{"name":"The Black Vine Cyberespionage Group","published":"` + ts + `","object_refs":["` + idOf("indicator") + `"]}`,
	"threat-actor":     `{"name":"Evil Org","threat_actor_types":["crime-syndicate"]}`,
	"tool":             `{"name":"VNC"}`,
	"vulnerability":    `{"name":"CVE-2016-1234","external_references":[{"source_name":"cve","external_id":"CVE-2016-1234"}]}`,
	"relationship":     `{"relationship_type":"uses","source_ref":"` + idOf("intrusion-set") + `","target_ref":"` + idOf("x-mitre-asset") + `","start_time":"` + ts + `","stop_time":"` + tsLater + `"}`,
	"sighting":         `{"sighting_of_ref":"` + idOf("indicator") + `","count":0,"where_sighted_refs":["` + idOf("identity") + `"],"summary":false}`,
	"language-content": `{"object_ref":"` + idOf("campaign") + `","object_modified":"` + ts + `","contents":{"de":{"name":"Bank Angriff"},"zh-Hans":{"name":"x"}}}`,
	"marking-definition": `{"spec_version":"2.1","id":"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da","created":"2017-01-20T00:00:00.000Z",` +
		`"definition_type":"tlp","name":"TLP:GREEN","definition":{"tlp":"green"}}`,
	"extension-definition": `{"created_by_ref":"` + idOf("identity") + `","name":"Extension Foo","schema":"https://www.example.com/schema-foo-1/v1/","version":"1.2.1","extension_types":["property-extension"]}`,
	// SCOs carry no created/modified (§3.2); spec_version is optional.
	"artifact":             `{"mime_type":"image/jpeg","payload_bin":"aGVsbG8gd29ybGQ="}`,
	"autonomous-system":    `{"number":15139}`,
	"directory":            `{"path":"C:\\Windows\\System32"}`,
	"domain-name":          `{"value":"example.com","resolves_to_refs":["` + idOf("ipv4-addr") + `"]}`,
	"email-addr":           `{"value":"john@example.com","display_name":"John Doe"}`,
	"email-message":        `{"is_multipart":true,"from_ref":"` + idOf("email-addr") + `","body_multipart":[{"content_type":"text/plain","body":"hi"}],"additional_header_fields":{"X-Mailer":["Mutt"]}}`,
	"file":                 `{"name":"foo.dll","hashes":{"SHA-256":"fe90a7e910cb3a4739bed9180e807e93fa70c90f25a8915476f5e4bfbac681db"},"size":25536,"extensions":{"ntfs-ext":{"sid":"1234567"}}}`,
	"ipv4-addr":            `{"value":"10.2.4.5/24"}`,
	"ipv6-addr":            `{"value":"2001:0db8::/96"}`,
	"mac-addr":             `{"value":"d2:fb:49:24:37:18"}`,
	"mutex":                `{"name":"__CLEANSWEEP__"}`,
	"network-traffic":      `{"protocols":["ipv4","tcp"],"src_ref":"` + idOf("ipv4-addr") + `","src_port":2487,"dst_port":1723,"extensions":{"tcp-ext":{"src_flags_hex":"00000002"}}}`,
	"process":              `{"pid":1221,"command_line":"./gedit-bin --new-window","extensions":{"windows-process-ext":{"aslr_enabled":true}}}`,
	"software":             `{"name":"Word","cpe":"cpe:2.3:a:microsoft:word:2000:*:*:*:*:*:*:*","languages":["en"]}`,
	"url":                  `{"value":"https://example.com/research/index.html"}`,
	"user-account":         `{"user_id":"1001","account_login":"jdoe","account_type":"unix","extensions":{"unix-account-ext":{"gid":1001}}}`,
	"windows-registry-key": `{"key":"HKEY_LOCAL_MACHINE\\System\\Foo\\Bar","values":[{"name":"Foo","data":"qwerty","data_type":"REG_SZ"}]}`,
	"x509-certificate":     `{"issuer":"C=ZA, ST=Western Cape, L=Cape Town","serial_number":"36:f7:d4:32:f4:ab:70:ea:d3:ce:98:6e:ea:99:93:49:32:0a:b7:06","x509_v3_extensions":{"basic_constraints":"critical,CA:TRUE"}}`,
	// A custom object (§11.2) is checked for its common properties only.
	"x-acme-widget": `{"spec_version":"2.1","created":"` + ts + `","modified":"` + ts + `","x_acme_size":3,"anything_goes":{"nested":[]}}`,
}

// validObject returns the valid instance of typ, with type and id, and the
// common SDO properties where the type needs them.
func validObject(t *testing.T, typ string) map[string]any {
	t.Helper()
	src, ok := validObjects[typ]
	if !ok {
		t.Fatalf("no valid %s", typ)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(src), &m); err != nil {
		t.Fatalf("%s: %v", typ, err)
	}
	m["type"] = typ
	if _, ok := m["id"]; !ok {
		m["id"] = idOf(typ)
	}
	if s := typeSpecs[typ]; s != nil && (s.class == classSDO || s.class == classSRO || s.class == classLanguage || s.class == classExtDef) {
		var common map[string]any
		_ = json.Unmarshal([]byte("{"+sdoBase+"}"), &common)
		for k, v := range common {
			m[k] = v
		}
	}
	return m
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestValidObjectsHaveNoProblems(t *testing.T) {
	if len(typeSpecs) != 19+2+18+3 {
		t.Fatalf("typeSpecs has %d types, want 42", len(typeSpecs))
	}
	for typ := range typeSpecs {
		if _, ok := validObjects[typ]; !ok {
			t.Errorf("no valid example for %s", typ)
		}
	}
	var v Validator
	for typ := range validObjects {
		if ps := v.Validate(mustJSON(t, validObject(t, typ))); ps != nil {
			t.Errorf("%s: unexpected problems:\n%v", typ, ps)
		}
	}
}

// del marks a property to remove in a patch.
var del = struct{}{}

// The cases break one rule each: type, patch (del removes a property; a
// string starting with "{" or "[" is JSON), and the path and section of the
// Problem expected.
var invalidCases = []struct {
	typ     string
	patch   map[string]any
	path    string
	section string
}{
	// §3.2 common properties, §3.1 names, §2.9 identifiers.
	{"tool", map[string]any{"type": "Tool"}, "$.type", "3.1"},
	{"tool", map[string]any{"type": "x--double", "id": "x--double--" + uuidA}, "$.type", "3.1"},
	{"tool", map[string]any{"type": "xy"}, "$.type", "3.1"},
	{"tool", map[string]any{"type": "x-trailing-"}, "$.type", "3.1"},
	{"tool", map[string]any{"type": del}, "$", "3.2"},
	{"tool", map[string]any{"id": del}, "$", "3.2"},
	{"tool", map[string]any{"id": "tool--not-a-uuid"}, "$.id", "2.9"},
	{"tool", map[string]any{"id": "malware--" + uuidA}, "$.id", "2.9"},
	{"tool", map[string]any{"id": "tool--6b616fc1-1505-48e3-8b2c-0d19337bff3"}, "$.id", "2.9"},
	{"tool", map[string]any{"id": "tool--6b616fc1-1505-48e3-cb2c-0d19337bff38"}, "$.id", "2.9"}, // variant not RFC 4122
	{"tool", map[string]any{"spec_version": "2.0"}, "$.spec_version", "3.2"},
	{"tool", map[string]any{"spec_version": del}, "$", "3.2"},
	{"tool", map[string]any{"created": del}, "$", "3.2"},
	{"tool", map[string]any{"modified": del}, "$", "3.2"},
	{"tool", map[string]any{"created": "2016-04-06T20:03:00Z", "modified": "2016-04-06T20:03:00Z"}, "$.created", "3.2"},
	{"tool", map[string]any{"created": "2016-04-06 20:03:00.000Z"}, "$.created", "2.16"},
	{"tool", map[string]any{"modified": "2015-01-01T00:00:00.000Z"}, "$.modified", "3.2"},
	{"tool", map[string]any{"created_by_ref": idOf("malware")}, "$.created_by_ref", "3.2"},
	{"tool", map[string]any{"revoked": "false"}, "$.revoked", "2.2"},
	{"tool", map[string]any{"labels": "[]"}, "$.labels", "2.12"},
	{"tool", map[string]any{"labels": `[1]`}, "$.labels[0]", "3.2"},
	{"tool", map[string]any{"confidence": json.Number("101")}, "$.confidence", "3.2"},
	{"tool", map[string]any{"confidence": json.Number("50.5")}, "$.confidence", "2.10"},
	{"tool", map[string]any{"lang": "not a tag"}, "$.lang", "3.2"},
	{"tool", map[string]any{"external_references": `[{"source_name":"x"}]`}, "$.external_references[0]", "2.5.2"},
	{"tool", map[string]any{"external_references": `[{"url":"https://x"}]`}, "$.external_references[0]", "2.5.1"},
	{"tool", map[string]any{"external_references": `[{"source_name":"x","url":"https://x","hashes":{"SHA-256":"abc"}}]`}, `$.external_references[0].hashes["SHA-256"]`, "2.7"},
	{"tool", map[string]any{"external_references": `[{"source_name":"x","url":"https://x","hashes":{"ab":"00"}}]`}, "$.external_references[0].hashes.ab", "2.7"},
	{"tool", map[string]any{"object_marking_refs": `["` + idOf("identity") + `"]`}, "$.object_marking_refs[0]", "3.2"},
	{"tool", map[string]any{"granular_markings": `[{"selectors":["name"]}]`}, "$.granular_markings[0]", "7.2.3"},
	{"tool", map[string]any{"granular_markings": `[{"selectors":["name"],"lang":"en","marking_ref":"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"}]`}, "$.granular_markings[0]", "7.2.3"},
	{"tool", map[string]any{"granular_markings": `[{"selectors":[],"lang":"en"}]`}, "$.granular_markings[0].selectors", "2.12"},
	{"tool", map[string]any{"granular_markings": `[{"selectors":["description"],"lang":"en"}]`}, "$.granular_markings[0].selectors[0]", "7.2.3"},
	{"tool", map[string]any{"granular_markings": `[{"selectors":["name.[0]"],"lang":"en"}]`}, "$.granular_markings[0].selectors[0]", "7.2.3"},
	{"tool", map[string]any{"defanged": true}, "$.defanged", "3.2"},
	{"tool", map[string]any{"severity": "high"}, "$.severity", "3.8"},
	{"tool", map[string]any{"x-bad-name": 1}, `$["x-bad-name"]`, "3.1"},
	{"tool", map[string]any{"X_Upper": 1}, "$.X_Upper", "3.1"},
	{"tool", map[string]any{"x_": 1}, "$.x_", "3.1"},
	{"tool", map[string]any{"x_acme_empty": "[]"}, "$.x_acme_empty", "2.12"},
	{"tool", map[string]any{"x_acme_empty": "{}"}, "$.x_acme_empty", "2.3"},
	{"tool", map[string]any{"x_acme_null": nil}, "$.x_acme_null", "2"},
	{"tool", map[string]any{"description": nil}, "$.description", "2"},
	{"tool", map[string]any{"name_enc": "utf-8", "name": del}, "$.name_enc", "3.1"},
	// §3.2/§7.3 extensions.
	{"tool", map[string]any{"extensions": `{"extension-definition--d83fce45-ef58-4c6c-a3f4-1fbc32e98c6e":{"rank":5}}`}, `$.extensions["extension-definition--d83fce45-ef58-4c6c-a3f4-1fbc32e98c6e"]`, "7.3"},
	{"tool", map[string]any{"extensions": `{"extension-definition--d83fce45-ef58-4c6c-a3f4-1fbc32e98c6e":{"extension_type":"bogus"}}`}, `$.extensions["extension-definition--d83fce45-ef58-4c6c-a3f4-1fbc32e98c6e"].extension_type`, "10.5"},
	{"tool", map[string]any{"extensions": `{"extension-definition--d83fce45-ef58-4c6c-a3f4-1fbc32e98c6e":{"extension_type":"property-extension","Rank":5}}`}, `$.extensions["extension-definition--d83fce45-ef58-4c6c-a3f4-1fbc32e98c6e"].Rank`, "7.3.2"},
	{"tool", map[string]any{"extensions": `{"x-acme-ext":{"rank":5}}`}, `$.extensions["x-acme-ext"]`, "7.3"},
	{"tool", map[string]any{"extensions": `{"extension-definition--d83fce45-ef58-4c6c-a3f4-1fbc32e98c6e":"x"}`}, `$.extensions["extension-definition--d83fce45-ef58-4c6c-a3f4-1fbc32e98c6e"]`, "3.2"},

	// §4 SDOs.
	{"attack-pattern", map[string]any{"name": del}, "$", "4.1.1"},
	{"attack-pattern", map[string]any{"external_references": `[{"source_name":"capec","external_id":"163"}]`}, "$.external_references[0].external_id", "4.1.1"},
	{"attack-pattern", map[string]any{"kill_chain_phases": `[{"kill_chain_name":"x"}]`}, "$.kill_chain_phases[0]", "2.11"},
	{"campaign", map[string]any{"last_seen": "2010-01-01T00:00:00Z"}, "$.last_seen", "4.2.1"},
	{"course-of-action", map[string]any{"action": "x"}, "$.action", "3.8"},
	{"grouping", map[string]any{"context": del}, "$", "4.4.1"},
	{"grouping", map[string]any{"object_refs": "[]"}, "$.object_refs", "2.12"},
	{"identity", map[string]any{"name": del}, "$", "4.5.1"},
	{"identity", map[string]any{"sectors": "technology"}, "$.sectors", "2.12"},
	{"incident", map[string]any{"name": json.Number("5")}, "$.name", "4.6.1"},
	{"indicator", map[string]any{"pattern": del}, "$", "4.7.1"},
	{"indicator", map[string]any{"pattern_type": del}, "$", "4.7.1"},
	{"indicator", map[string]any{"valid_from": del}, "$", "4.7.1"},
	{"indicator", map[string]any{"valid_until": ts}, "$.valid_until", "4.7.1"},
	{"infrastructure", map[string]any{"first_seen": tsLater, "last_seen": ts}, "$.last_seen", "4.8.1"},
	{"intrusion-set", map[string]any{"goals": `["a",2]`}, "$.goals[1]", "4.9.1"},
	{"location", map[string]any{"region": del, "latitude": del, "longitude": del, "precision": del, "city": "Paris"}, "$", "4.10"},
	{"location", map[string]any{"latitude": json.Number("91")}, "$.latitude", "4.10.1"},
	{"location", map[string]any{"longitude": json.Number("-181")}, "$.longitude", "4.10.1"},
	{"location", map[string]any{"longitude": del}, "$", "4.10.1"},
	{"location", map[string]any{"latitude": "48.8"}, "$.latitude", "2.6"},
	{"malware", map[string]any{"name": del}, "$", "4.11.1"},
	{"malware", map[string]any{"sample_refs": `["` + idOf("url") + `"]`}, "$.sample_refs[0]", "4.11.1"},
	{"malware", map[string]any{"is_family": "yes"}, "$.is_family", "2.2"},
	{"malware-analysis", map[string]any{"result": del}, "$", "4.12"},
	{"malware-analysis", map[string]any{"host_vm_ref": idOf("file")}, "$.host_vm_ref", "4.12.1"},
	{"note", map[string]any{"content": del}, "$", "4.13.1"},
	{"observed-data", map[string]any{"number_observed": json.Number("0")}, "$.number_observed", "4.14.1"},
	{"observed-data", map[string]any{"number_observed": json.Number("1000000000")}, "$.number_observed", "4.14.1"},
	{"observed-data", map[string]any{"object_refs": del}, "$", "4.14"},
	{"observed-data", map[string]any{"objects": `{"0":{"type":"ipv4-addr","value":"198.51.100.3"}}`}, "$", "4.14"},
	{"observed-data", map[string]any{"last_observed": "2010-01-01T00:00:00Z"}, "$.last_observed", "4.14.1"},
	{"observed-data", map[string]any{"object_refs": `["` + idOf("malware") + `"]`}, "$.object_refs", "4.14.1"},
	{"opinion", map[string]any{"opinion": "maybe"}, "$.opinion", "10.18"},
	{"report", map[string]any{"published": del}, "$", "4.16.1"},
	{"threat-actor", map[string]any{"first_seen": tsLater, "last_seen": ts}, "$.last_seen", "4.17.1"},
	{"tool", map[string]any{"name": del}, "$", "4.18.1"},
	{"vulnerability", map[string]any{"external_references": `[{"source_name":"cve","external_id":"cve-2016-1234"}]`}, "$.external_references[0].external_id", "4.19.1"},

	// §5 SROs.
	{"relationship", map[string]any{"relationship_type": "Uses"}, "$.relationship_type", "5.1.2"},
	{"relationship", map[string]any{"source_ref": del}, "$", "5.1.2"},
	{"relationship", map[string]any{"target_ref": idOf("marking-definition")}, "$.target_ref", "5.1.2"},
	{"relationship", map[string]any{"source_ref": idOf("sighting")}, "$.source_ref", "5.1.2"},
	{"relationship", map[string]any{"stop_time": ts}, "$.stop_time", "5.1.2"},
	{"sighting", map[string]any{"sighting_of_ref": del}, "$", "5.2.1"},
	{"sighting", map[string]any{"sighting_of_ref": idOf("file")}, "$.sighting_of_ref", "5.2.1"},
	{"sighting", map[string]any{"count": json.Number("1000000000")}, "$.count", "5.2.1"},
	{"sighting", map[string]any{"count": json.Number("-1")}, "$.count", "5.2.1"},
	{"sighting", map[string]any{"first_seen": tsLater, "last_seen": ts}, "$.last_seen", "5.2.1"},
	{"sighting", map[string]any{"where_sighted_refs": `["` + idOf("malware") + `"]`}, "$.where_sighted_refs[0]", "5.2.1"},
	{"sighting", map[string]any{"observed_data_refs": `["` + idOf("report") + `"]`}, "$.observed_data_refs[0]", "5.2.1"},

	// §6 SCOs.
	{"artifact", map[string]any{"payload_bin": del}, "$", "6.1"},
	{"artifact", map[string]any{"url": "https://example.com/a.bin", "hashes": `{"MD5":"3773a88f65a5e780c8dff9cdc3a056f3"}`}, "$", "6.1"},
	{"artifact", map[string]any{"payload_bin": del, "url": "https://example.com/a.bin"}, "$", "6.1.1"},
	{"artifact", map[string]any{"payload_bin": "not base64!"}, "$.payload_bin", "2.1"},
	{"artifact", map[string]any{"encryption_algorithm": "rot13"}, "$.encryption_algorithm", "10.4"},
	{"artifact", map[string]any{"decryption_key": "secret"}, "$.decryption_key", "6.1.1"},
	{"autonomous-system", map[string]any{"number": "15139"}, "$.number", "2.10"},
	{"directory", map[string]any{"path": del}, "$", "6.3.1"},
	{"directory", map[string]any{"contains_refs": `["` + idOf("url") + `"]`}, "$.contains_refs[0]", "6.3.1"},
	{"domain-name", map[string]any{"resolves_to_refs": `["` + idOf("url") + `"]`}, "$.resolves_to_refs[0]", "6.4.1"},
	{"email-addr", map[string]any{"value": "John Doe <john@example.com>"}, "$.value", "6.5.1"},
	{"email-addr", map[string]any{"belongs_to_ref": idOf("identity")}, "$.belongs_to_ref", "6.5.1"},
	{"email-message", map[string]any{"is_multipart": del}, "$", "6.6.1"},
	{"email-message", map[string]any{"body": "hi"}, "$.body", "6.6.1"},
	{"email-message", map[string]any{"is_multipart": false}, "$.body_multipart", "6.6.1"},
	{"email-message", map[string]any{"body_multipart": `[{"content_type":"text/plain"}]`}, "$.body_multipart[0]", "6.6.2"},
	{"email-message", map[string]any{"from_ref": idOf("user-account")}, "$.from_ref", "6.6.1"},
	{"email-message", map[string]any{"additional_header_fields": `{"X-Mailer":"Mutt"}`}, `$.additional_header_fields["X-Mailer"]`, "2.12"},
	{"file", map[string]any{"name": del, "hashes": del}, "$", "6.7"},
	{"file", map[string]any{"size": json.Number("-1")}, "$.size", "6.7.1"},
	{"file", map[string]any{"magic_number_hex": "504B03"}, "$.magic_number_hex", "2.8"},
	{"file", map[string]any{"hashes": `{"MD5":"zz"}`}, "$.hashes.MD5", "2.7"},
	{"file", map[string]any{"parent_directory_ref": idOf("file")}, "$.parent_directory_ref", "6.7.1"},
	{"file", map[string]any{"extensions": `{"ntfs-ext":{}}`}, `$.extensions["ntfs-ext"]`, "2.3"},
	{"file", map[string]any{"extensions": `{"archive-ext":{"comment":"x"}}`}, `$.extensions["archive-ext"]`, "6.7.2"},
	{"file", map[string]any{"extensions": `{"windows-pebinary-ext":{"pe_type":"exe"}}`}, `$.extensions["windows-pebinary-ext"]`, "6.7.6"},
	{"file", map[string]any{"extensions": `{"raster-image-ext":{"exif_tags":{"Make":true}}}`}, `$.extensions["raster-image-ext"].exif_tags.Make`, "2.10"},
	{"file", map[string]any{"extensions": `{"x-acme":{"foo":"bar"}}`}, `$.extensions["x-acme"]`, "11.3.1"},
	{"ipv4-addr", map[string]any{"value": "300.1.1.1"}, "$.value", "6.8.1"},
	{"ipv4-addr", map[string]any{"value": "2001:db8::1"}, "$.value", "6.8.1"},
	{"ipv4-addr", map[string]any{"resolves_to_refs": `["` + idOf("domain-name") + `"]`}, "$.resolves_to_refs[0]", "6.8.1"},
	{"ipv6-addr", map[string]any{"value": "10.0.0.1"}, "$.value", "6.9.1"},
	{"mac-addr", map[string]any{"value": "D2:FB:49:24:37:18"}, "$.value", "6.10.1"},
	{"mutex", map[string]any{"name": del}, "$", "6.11.1"},
	{"network-traffic", map[string]any{"protocols": del}, "$", "6.12.1"},
	{"network-traffic", map[string]any{"src_ref": del}, "$", "6.12"},
	{"network-traffic", map[string]any{"src_port": json.Number("65536")}, "$.src_port", "6.12.1"},
	{"network-traffic", map[string]any{"is_active": true, "end": ts}, "$.end", "6.12.1"},
	{"network-traffic", map[string]any{"start": tsLater, "end": ts}, "$.end", "6.12.1"},
	{"network-traffic", map[string]any{"src_ref": idOf("url")}, "$.src_ref", "6.12.1"},
	{"network-traffic", map[string]any{"extensions": `{"socket-ext":{"address_family":"AF_FOO"}}`}, `$.extensions["socket-ext"].address_family`, "10.16"},
	{"network-traffic", map[string]any{"extensions": `{"http-request-ext":{"request_method":"get"}}`}, `$.extensions["http-request-ext"]`, "6.12.2"},
	{"network-traffic", map[string]any{"extensions": `{"icmp-ext":{"icmp_type_hex":"8","icmp_code_hex":"00"}}`}, `$.extensions["icmp-ext"].icmp_type_hex`, "2.8"},
	{"process", map[string]any{"pid": del, "command_line": del, "extensions": del}, "$", "6.13"},
	{"process", map[string]any{"parent_ref": idOf("file")}, "$.parent_ref", "6.13.1"},
	{"process", map[string]any{"extensions": `{"windows-service-ext":{"start_type":"SOMETIMES"}}`}, `$.extensions["windows-service-ext"].start_type`, "10.30"},
	{"software", map[string]any{"name": del}, "$", "6.14.1"},
	{"software", map[string]any{"cpe": "microsoft word"}, "$.cpe", "6.14.1"},
	{"url", map[string]any{"value": "example.com/no-scheme"}, "$.value", "6.15.1"},
	{"user-account", map[string]any{"user_id": del, "account_login": del, "account_type": del, "extensions": del}, "$", "6.16"},
	{"user-account", map[string]any{"is_disabled": "no"}, "$.is_disabled", "2.2"},
	{"windows-registry-key", map[string]any{"key": del, "values": del}, "$", "6.17.1"},
	{"windows-registry-key", map[string]any{"key": `HKLM\Software`}, "$.key", "6.17.1"},
	{"windows-registry-key", map[string]any{"values": `[{"data_type":"REG_FOO"}]`}, "$.values[0].data_type", "10.29"},
	{"x509-certificate", map[string]any{"issuer": del, "serial_number": del, "x509_v3_extensions": del}, "$", "6.18.1"},
	{"x509-certificate", map[string]any{"validity_not_before": "yesterday"}, "$.validity_not_before", "2.16"},

	// §7 meta objects.
	{"language-content", map[string]any{"contents": del}, "$", "7.1.1"},
	{"language-content", map[string]any{"contents": `{"not a tag":{"name":"x"}}`}, `$.contents["not a tag"]`, "7.1.1"},
	{"marking-definition", map[string]any{"id": "marking-definition--" + uuidA}, "$.id", "7.2.1.4"},
	{"marking-definition", map[string]any{"definition": `{"tlp":"red"}`}, "$.definition.tlp", "7.2.1.4"},
	{"marking-definition", map[string]any{"definition_type": "statement", "definition": `{"text":"x"}`}, "$.definition", "7.2.1.3"},
	{"marking-definition", map[string]any{"definition": del}, "$", "7.2.1"},
	{"marking-definition", map[string]any{"created": del}, "$", "3.2"},
	{"marking-definition", map[string]any{"object_marking_refs": `["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"]`}, "$.object_marking_refs[0]", "3.2"},
	{"extension-definition", map[string]any{"created_by_ref": del}, "$", "3.2"},
	{"extension-definition", map[string]any{"schema": del}, "$", "7.3.1"},
	{"extension-definition", map[string]any{"extension_types": `["new-thing"]`}, "$.extension_types[0]", "10.5"},
	{"extension-definition", map[string]any{"extension_properties": `["rank"]`}, "$.extension_properties", "7.3.1"},

	// §11 custom objects: common properties only.
	{"x-acme-widget", map[string]any{"created": "2016-04-06"}, "$.created", "2.16"},
	{"x-acme-widget", map[string]any{"x_acme_size": del, "Bad": 1}, "$.Bad", "3.1"},
	{"x-acme-widget", map[string]any{"spec_version": del, "extensions": `{"extension-definition--9c59fd79-4215-4ba2-920d-3e4f320e1e62":{"extension_type":"new-sdo"}}`}, "$", "3.2"},
}

func TestInvalidObjects(t *testing.T) {
	var v Validator
	for i, tc := range invalidCases {
		obj := validObject(t, tc.typ)
		for k, val := range tc.patch {
			switch x := val.(type) {
			case struct{}:
				delete(obj, k)
			case string:
				if strings.HasPrefix(x, "{") || strings.HasPrefix(x, "[") {
					var j any
					if err := json.Unmarshal([]byte(x), &j); err != nil {
						t.Fatalf("case %d: %v", i, err)
					}
					obj[k] = j
				} else {
					obj[k] = x
				}
			default:
				obj[k] = x
			}
		}
		raw := mustJSON(t, obj)
		ps := v.Validate(raw)
		found := false
		for _, p := range ps {
			if p.Path == tc.path && p.Section == tc.section {
				found = true
			}
		}
		if !found {
			t.Errorf("case %d (%s %v): want a problem at %s §%s, got:\n%v\n%s", i, tc.typ, tc.patch, tc.path, tc.section, ps, raw)
		}
	}
}

func TestValidateMalformedInput(t *testing.T) {
	var v Validator
	tests := []struct {
		in      string
		path    string
		section string
	}{
		{`{"type":"tool"`, "$", "1.2.10"},
		{`[1,2]`, "$", "1.2.10"},
		{`"tool"`, "$", "1.2.10"},
		{``, "$", "1.2.10"},
		{`{"type":"tool"} x`, "$", "1.2.10"},
		{"{\"type\":\"tool\",\"name\":\"\xff\"}", "$", "1.2.10"},
		{`{"type":"tool","id":"tool--` + uuidA + `","name":"a","name":"b"}`, "$.name", "2.3"},
		{`{"type":"file","id":"file--` + uuidA + `","hashes":{"MD5":"3773a88f65a5e780c8dff9cdc3a056f3","MD5":"3773a88f65a5e780c8dff9cdc3a056f3"}}`, "$.hashes.MD5", "2.3"},
		{`{"type":"bundle","id":"bundle--` + uuidA + `","objects":[]}`, "$", "8"},
	}
	for _, tt := range tests {
		ps := v.Validate([]byte(tt.in))
		found := false
		for _, p := range ps {
			if p.Path == tt.path && p.Section == tt.section {
				found = true
			}
		}
		if !found {
			t.Errorf("%q: want a problem at %s §%s, got %v", tt.in, tt.path, tt.section, ps)
		}
	}
}

func TestCheckPattern(t *testing.T) {
	obj := validObject(t, "indicator")
	calls := 0
	v := Validator{CheckPattern: func(p string) error {
		calls++
		if strings.Contains(p, "198.51.100.1") {
			return errors.New("unexpected token at 3")
		}
		return nil
	}}
	ps := v.Validate(mustJSON(t, obj))
	if len(ps) != 1 || ps[0].Path != "$.pattern" || !strings.Contains(ps[0].Rule, "unexpected token at 3") {
		t.Errorf("want one pattern problem carrying the engine's error, got %v", ps)
	}
	// Other pattern languages are an open vocabulary (§10.19): accepted and
	// not given to the STIX pattern engine.
	obj["pattern_type"] = "snort"
	if ps := v.Validate(mustJSON(t, obj)); ps != nil {
		t.Errorf("custom pattern_type: %v", ps)
	}
	obj["pattern_type"] = "x-acme-lang"
	if ps := v.Validate(mustJSON(t, obj)); ps != nil {
		t.Errorf("custom pattern_type: %v", ps)
	}
	if calls != 1 {
		t.Errorf("CheckPattern called %d times, want 1", calls)
	}
}

func TestSpecExamplesValidate(t *testing.T) {
	// Objects copied from the specification text.
	examples := []string{
		// §7.2.1.3 statement marking.
		`{"type":"marking-definition","spec_version":"2.1","id":"marking-definition--4a0042fe-8b88-40fe-9600-dfa128ce6fbd","created":"2016-08-01T00:00:00.000Z","definition_type":"statement","definition":{"statement":"Copyright 2019, Example Corp"}}`,
		// §7.2.3 granular language marking.
		`{"type":"campaign","spec_version":"2.1","id":"campaign--12a111f0-b824-4baf-a224-83b80237a094","lang":"en","created":"2017-02-08T21:31:22.007Z","modified":"2017-02-08T21:31:22.007Z","name":"Bank Attack","description":"Weitere Informationen über Banküberfall","granular_markings":[{"selectors":["description"],"lang":"de"}]}`,
		// §7.3 new SDO through an extension definition, and a property extension.
		`{"type":"my-favorite-sdo","spec_version":"2.1","id":"my-favorite-sdo--ac97aae4-83f1-46ca-a351-7aeb76678189","created":"2014-02-20T09:16:08.989000Z","modified":"2014-02-20T09:16:08.989000Z","name":"This is the name of my favorite","some_property_name1":"value1","some_property_name2":"value2","extensions":{"extension-definition--9c59fd79-4215-4ba2-920d-3e4f320e1e62":{"extension_type":"new-sdo"}}}`,
		`{"type":"indicator","spec_version":"2.1","id":"indicator--e97bfccf-8970-4a3c-9cd1-5b5b97ed5d0c","created":"2014-02-20T09:16:08.989000Z","modified":"2014-02-20T09:16:08.989000Z","name":"File hash for Poison Ivy variant","description":"This file hash indicates that a sample of Poison Ivy is present.","labels":["malicious-activity"],"pattern":"[file:hashes.'SHA-256' = 'ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c']","pattern_type":"stix","valid_from":"2014-02-20T09:00:00.000000Z","extensions":{"extension-definition--d83fce45-ef58-4c6c-a3f4-1fbc32e98c6e":{"extension_type":"property-extension","rank":5,"toxicity":8}}}`,
		// §3.10 file with the NTFS extension.
		`{"type":"file","spec_version":"2.1","id":"file--1b40e321-ae73-5637-bd97-33c35a86b80d","hashes":{"MD5":"3773a88f65a5e780c8dff9cdc3a056f3"},"size":25537,"extensions":{"ntfs-ext":{"sid":"1234567"}}}`,
		// §11.2 custom object (without spec_version, as in the example).
		`{"type":"x-example-com-customobject","id":"x-example-com-customobject--4527e5de-8572-446a-a57a-706f15467461","created":"2016-08-01T00:00:00.000Z","modified":"2016-08-01T00:00:00.000Z","some_custom_stuff":14,"other_custom_stuff":"hello"}`,
		// §11.3 custom SCO extension, with a name ending in -ext as §11.3.1 requires.
		`{"type":"file","id":"file--1b40e321-ae73-5637-bd97-33c35a86b80d","hashes":{"SHA-256":"effb46bba03f6c8aea5c653f9cf984f170dcdd3bbbe2ff6843c3e5da0e698766"},"extensions":{"x-example-com-foo-ext":{"foo_val":"foo","bar_val":"bar"}}}`,
		// Defanged SCO values are not held to their usual syntax.
		`{"type":"url","id":"url--47c3cf9a-5027-5bf0-997a-017c7edc7c55","value":"hxxps://example[.]com","defanged":true}`,
	}
	var v Validator
	for _, e := range examples {
		if ps := v.Validate([]byte(e)); ps != nil {
			t.Errorf("%s\n%v", e, ps)
		}
	}
}

func TestProblemString(t *testing.T) {
	p := Problem{ID: "tool--" + uuidA, Path: "$.name", Rule: "required property name is missing", Section: "4.18.1"}
	want := "tool--" + uuidA + " $.name: required property name is missing (STIX 2.1 §4.18.1)"
	if p.String() != want {
		t.Errorf("got %q\nwant %q", p.String(), want)
	}
	if got := (Problem{Rule: "x", Section: "1.2.10"}).String(); got != "(no id) $: x (STIX 2.1 §1.2.10)" {
		t.Errorf("got %q", got)
	}
	var v Validator
	ps := v.Validate([]byte(`{"type":"tool","id":"tool--` + uuidA + `","spec_version":"2.1","created":"` + ts + `","modified":"` + ts + `"}`))
	if len(ps) != 1 || ps[0].ID != "tool--"+uuidA {
		t.Errorf("problems should carry the object id: %v", ps)
	}
}
