package feeds

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/stix"
)

// The MISP mapping follows the MISP project's published MISP-to-STIX 2.1
// mapping (MISP/misp-stix, documentation/misp_attributes_to_stix21.md and
// misp_events_to_stix21.md): an event is a report whose object_refs are
// everything converted from it; an attribute with to_ids is an indicator
// (id indicator--<attribute uuid>), one without is observed data (id
// observed-data--<attribute uuid>) with its observables; a MISP object is
// one indicator or observed data whose pattern joins its attributes with
// AND; galaxy clusters are the SDOs of their kind; tags are labels; what
// has no STIX counterpart is kept as x-misp-attribute, x-misp-object and
// x-misp-galaxy-cluster custom objects, as misp-stix does. See README.

// MISPOptions say how MISP sharing groups map onto Mitra.
type MISPOptions struct {
	// SharingGroups maps a MISP sharing group (uuid or name) to a Mitra
	// sharing group (id or name). A sharing group not in the map is looked
	// up as a Mitra group of the same name.
	SharingGroups map[string]string `json:"sharing_groups,omitempty"`
}

// mispNamespace makes the deterministic ids of what the mapping creates
// without a MISP uuid (relationships).
var mispNamespace = uuid.MustParse("0c5b1a9e-5a1e-4b8e-9f3b-6d1f0e6a2c41")

// MISPEvent is the part of MISP's event JSON the mapping reads.
type MISPEvent struct {
	UUID             string          `json:"uuid"`
	Info             string          `json:"info"`
	Date             string          `json:"date"`
	Timestamp        mispString      `json:"timestamp"`
	PublishTimestamp mispString      `json:"publish_timestamp"`
	ThreatLevelID    mispString      `json:"threat_level_id"`
	Analysis         mispString      `json:"analysis"`
	Distribution     mispString      `json:"distribution"`
	SharingGroup     *MISPSharing    `json:"SharingGroup,omitempty"`
	Orgc             *MISPOrg        `json:"Orgc,omitempty"`
	Tag              []MISPTag       `json:"Tag,omitempty"`
	Attribute        []MISPAttribute `json:"Attribute,omitempty"`
	Object           []MISPObject    `json:"Object,omitempty"`
	Galaxy           []MISPGalaxy    `json:"Galaxy,omitempty"`
	// Not converted; reported so that nothing goes unnoticed.
	Sighting    []json.RawMessage `json:"Sighting,omitempty"`
	EventReport []json.RawMessage `json:"EventReport,omitempty"`
}

// mispString reads MISP's numbers, which it writes as strings or numbers.
type mispString string

func (m *mispString) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*m = mispString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		if string(b) == "null" {
			return nil
		}
		return err
	}
	*m = mispString(n.String())
	return nil
}

// MISPOrg is an organisation.
type MISPOrg struct {
	UUID string `json:"uuid"`
	Name string `json:"name"`
}

// MISPSharing is a sharing group.
type MISPSharing struct {
	UUID            string `json:"uuid"`
	Name            string `json:"name"`
	SharingGroupOrg []struct {
		Organisation MISPOrg `json:"Organisation"`
	} `json:"SharingGroupOrg,omitempty"`
}

// MISPTag is a tag.
type MISPTag struct {
	Name string `json:"name"`
}

// MISPAttribute is an attribute (alone or in an object).
type MISPAttribute struct {
	UUID           string            `json:"uuid"`
	Type           string            `json:"type"`
	Category       string            `json:"category"`
	Value          string            `json:"value"`
	ToIDs          mispBool          `json:"to_ids"`
	Timestamp      mispString        `json:"timestamp"`
	FirstSeen      string            `json:"first_seen,omitempty"`
	LastSeen       string            `json:"last_seen,omitempty"`
	Comment        string            `json:"comment,omitempty"`
	Distribution   mispString        `json:"distribution"`
	SharingGroup   *MISPSharing      `json:"SharingGroup,omitempty"`
	ObjectRelation string            `json:"object_relation,omitempty"`
	Deleted        mispBool          `json:"deleted"`
	Sighting       []json.RawMessage `json:"Sighting,omitempty"`
	Tag            []MISPTag         `json:"Tag,omitempty"`
	Galaxy         []MISPGalaxy      `json:"Galaxy,omitempty"`
}

// mispBool reads true, "1", 1 and "true".
type mispBool bool

func (m *mispBool) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	*m = mispBool(s == "true" || s == "1")
	return nil
}

// MISPObject is a MISP object: attributes that describe one thing.
type MISPObject struct {
	UUID         string          `json:"uuid"`
	Name         string          `json:"name"`
	MetaCategory string          `json:"meta-category"`
	Timestamp    mispString      `json:"timestamp"`
	Comment      string          `json:"comment,omitempty"`
	Distribution mispString      `json:"distribution"`
	SharingGroup *MISPSharing    `json:"SharingGroup,omitempty"`
	Attribute    []MISPAttribute `json:"Attribute"`
	// ObjectReference relates the object to another object or attribute
	// of the event.
	ObjectReference []MISPReference `json:"ObjectReference,omitempty"`
}

// MISPReference is an object reference.
type MISPReference struct {
	UUID             string     `json:"uuid"`
	ReferencedUUID   string     `json:"referenced_uuid"`
	RelationshipType string     `json:"relationship_type"`
	Comment          string     `json:"comment,omitempty"`
	Timestamp        mispString `json:"timestamp"`
}

// MISPGalaxy is a galaxy with its clusters.
type MISPGalaxy struct {
	UUID          string        `json:"uuid"`
	Name          string        `json:"name"`
	Type          string        `json:"type"`
	GalaxyCluster []MISPCluster `json:"GalaxyCluster"`
}

// MISPCluster is a galaxy cluster.
type MISPCluster struct {
	UUID        string                     `json:"uuid"`
	Value       string                     `json:"value"`
	Description string                     `json:"description,omitempty"`
	Type        string                     `json:"type"`
	TagName     string                     `json:"tag_name"`
	Meta        map[string]json.RawMessage `json:"meta,omitempty"`
}

// galaxyTypes maps MISP galaxy types to STIX 2.1 SDO types (misp-stix's
// galaxies mapping); others become x-misp-galaxy-cluster.
var galaxyTypes = map[string]string{
	"threat-actor": "threat-actor", "mitre-threat-actor": "threat-actor",
	"mitre-intrusion-set": "intrusion-set", "mitre-enterprise-attack-intrusion-set": "intrusion-set", "intrusion-set": "intrusion-set",
	"mitre-attack-pattern": "attack-pattern", "mitre-enterprise-attack-attack-pattern": "attack-pattern", "attack-pattern": "attack-pattern",
	"mitre-malware": "malware", "mitre-enterprise-attack-malware": "malware", "malpedia": "malware", "ransomware": "malware",
	"banker": "malware", "android": "malware", "rat": "malware", "botnet": "malware", "stealer": "malware", "backdoor": "malware",
	"mitre-tool": "tool", "mitre-enterprise-attack-tool": "tool", "tool": "tool",
	"mitre-course-of-action": "course-of-action", "mitre-enterprise-attack-course-of-action": "course-of-action",
	"branded-vulnerability": "vulnerability", "sector": "identity",
}

// mispConverter converts one event.
type mispConverter struct {
	// recipients resolves a MISP sharing group to the organisations
	// (identity ids) of the Mitra group it maps to.
	recipients func(sg *MISPSharing) []string
	floor      access.TLP
	// seen keeps objects shared by events (organisations, clusters) from
	// being emitted twice in one import.
	seen    map[string]bool
	out     []json.RawMessage
	skipped []Rejection
	ev      *MISPEvent
	// byUUID maps the event's MISP uuids to the STIX ids made of them
	// (object references point at either).
	byUUID map[string]string
	// levels are the markings given to the event's objects, for the
	// relationships between them.
	levels  map[string]level
	evTLP   access.TLP
	evRcpts []string
	orgRef  string
	evTime  string
}

func newMISPConverter(floor access.TLP, recipients func(*MISPSharing) []string) *mispConverter {
	if recipients == nil {
		recipients = func(*MISPSharing) []string { return nil }
	}
	return &mispConverter{recipients: recipients, floor: floor, seen: map[string]bool{}}
}

// ParseMISPEvent reads one event in MISP's JSON format ({"Event": {...}},
// or the event itself, or {"response": [{"Event": ...}]} as MISP's REST
// API returns it).
func ParseMISPEvent(data []byte) ([]MISPEvent, error) {
	var wrap struct {
		Event    *MISPEvent `json:"Event"`
		Response []struct {
			Event *MISPEvent `json:"Event"`
		} `json:"response"`
	}
	if err := json.Unmarshal(data, &wrap); err != nil {
		return nil, fmt.Errorf("MISP event: %v: %w", err, ErrInvalid)
	}
	switch {
	case wrap.Event != nil:
		return []MISPEvent{*wrap.Event}, nil
	case len(wrap.Response) > 0:
		var out []MISPEvent
		for _, r := range wrap.Response {
			if r.Event != nil {
				out = append(out, *r.Event)
			}
		}
		return out, nil
	}
	var ev MISPEvent
	if err := json.Unmarshal(data, &ev); err != nil || ev.UUID == "" {
		return nil, fmt.Errorf("MISP event: no Event with a uuid: %w", ErrInvalid)
	}
	return []MISPEvent{ev}, nil
}

func unixTime(s mispString) (time.Time, bool) {
	n, err := strconv.ParseInt(string(s), 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, false
	}
	return time.Unix(n, 0).UTC(), true
}

func (c *mispConverter) emit(obj map[string]any) string {
	id, _ := obj["id"].(string)
	b, err := json.Marshal(obj)
	if err != nil {
		c.skipped = append(c.skipped, Rejection{ID: id, Reason: err.Error()})
		return ""
	}
	c.out = append(c.out, b)
	return id
}

// tlpOfTags finds a tlp:* tag.
func tlpOfTags(tags []MISPTag) access.TLP {
	var t access.TLP
	for _, tag := range tags {
		if n, ok := strings.CutPrefix(strings.ToLower(tag.Name), "tlp:"); ok {
			if l, err := access.ParseTLP(n); err == nil {
				t = max(t, l)
			}
		}
	}
	return t
}

// level maps a MISP distribution to a TLP level and recipients:
// 0 your organisation only: RED (only the importing organisation reads it);
// 1 this community only: AMBER; 2 connected communities: GREEN; 3 all
// communities: CLEAR; 4 sharing group: AMBER+STRICT with the
// organisations of the Mitra group the sharing group maps to as
// recipients; 5 inherit: the event's.
func (c *mispConverter) level(dist mispString, sg *MISPSharing, tags []MISPTag, parent access.TLP, parentRcpts []string) (access.TLP, []string) {
	var l access.TLP
	var rcpts []string
	switch string(dist) {
	case "0":
		l = access.TLPRed
	case "1":
		l = access.TLPAmber
	case "2":
		l = access.TLPGreen
	case "3":
		l = access.TLPClear
	case "4":
		l, rcpts = access.TLPAmberStrict, c.recipients(sg)
	default: // 5 (inherit) or absent
		l, rcpts = parent, parentRcpts
	}
	// The narrowest of the event's, the element's own, its TLP tag and the
	// importer's floor: never wider than MISP allowed.
	if parent > l {
		l, rcpts = parent, parentRcpts
	}
	l = max(l, tlpOfTags(tags), c.floor)
	if l == access.TLPUnmarked {
		l = access.TLPAmber
	}
	if l != access.TLPAmberStrict && l != access.TLPRed {
		rcpts = nil
	}
	return l, rcpts
}

func mark(obj map[string]any, l access.TLP, rcpts []string) {
	if id, ok := TLPMarkings[l]; ok {
		obj["object_marking_refs"] = []string{id}
	}
	if len(rcpts) > 0 {
		obj[access.RecipientsProperty] = rcpts
	}
}

func labelsOf(tags []MISPTag) []string {
	var out []string
	for _, t := range tags {
		if !strings.HasPrefix(strings.ToLower(t.Name), "tlp:") {
			out = append(out, t.Name)
		}
	}
	return out
}

type level struct {
	tlp   access.TLP
	rcpts []string
}

// between is the marking of a relationship between a and b: the stricter
// of the two (with the recipients both name when they are equally strict),
// so that a relationship never tells who reads what about a hidden object.
func between(a, b level) level {
	switch {
	case a.tlp > b.tlp:
		return a
	case b.tlp > a.tlp:
		return b
	}
	var both []string
	for _, r := range a.rcpts {
		if slices.Contains(b.rcpts, r) {
			both = append(both, r)
		}
	}
	return level{a.tlp, both}
}

// Event converts one MISP event.
func (c *mispConverter) Event(ev *MISPEvent) {
	c.ev = ev
	if _, err := uuid.Parse(ev.UUID); err != nil {
		c.skipped = append(c.skipped, Rejection{ID: "misp-event:" + ev.UUID, Reason: "event without a valid uuid"})
		return
	}
	t, ok := unixTime(ev.Timestamp)
	if !ok {
		if d, err := time.Parse("2006-01-02", ev.Date); err == nil {
			t = d
		} else {
			t = time.Unix(0, 0).UTC()
		}
	}
	c.evTime = stix.FormatMicro(t)
	c.evTLP, c.evRcpts = c.level(ev.Distribution, ev.SharingGroup, ev.Tag, access.TLPUnmarked, nil)
	c.orgRef = ""
	if ev.Orgc != nil && ev.Orgc.UUID != "" {
		if _, err := uuid.Parse(ev.Orgc.UUID); err == nil {
			c.orgRef = "identity--" + ev.Orgc.UUID
			if !c.seen[c.orgRef] {
				c.seen[c.orgRef] = true
				org := map[string]any{"type": "identity", "spec_version": "2.1", "id": c.orgRef, "created": c.evTime, "modified": c.evTime,
					"name": ev.Orgc.Name, "identity_class": "organization"}
				mark(org, c.evTLP, c.evRcpts)
				c.emit(org)
			}
		}
	}
	var refs []string
	if c.orgRef != "" {
		refs = append(refs, c.orgRef)
	}
	c.byUUID, c.levels = map[string]string{}, map[string]level{}
	for i := range ev.Attribute {
		ids := c.attribute(&ev.Attribute[i], c.evTLP, c.evRcpts)
		if len(ids) > 0 {
			c.byUUID[ev.Attribute[i].UUID] = ids[0]
		}
		refs = append(refs, ids...)
	}
	for i := range ev.Object {
		ids := c.object(&ev.Object[i])
		if len(ids) > 0 {
			c.byUUID[ev.Object[i].UUID] = ids[0]
		}
		refs = append(refs, ids...)
	}
	for i := range ev.Object {
		refs = append(refs, c.references(&ev.Object[i])...)
	}
	for _, g := range ev.Galaxy {
		for _, cl := range g.GalaxyCluster {
			if id := c.cluster(g, cl); id != "" {
				refs = append(refs, id)
			}
		}
	}
	// Sightings and event reports have no mapping here: counted as
	// rejected, with the reason, never dropped unnoticed.
	sightings := len(ev.Sighting)
	for _, a := range ev.Attribute {
		sightings += len(a.Sighting)
	}
	for _, o := range ev.Object {
		for _, a := range o.Attribute {
			sightings += len(a.Sighting)
		}
	}
	if sightings > 0 {
		c.skipped = append(c.skipped, Rejection{ID: "misp-event:" + ev.UUID, Reason: fmt.Sprintf("%d MISP sightings not imported (no mapping)", sightings)})
	}
	if n := len(ev.EventReport); n > 0 {
		c.skipped = append(c.skipped, Rejection{ID: "misp-event:" + ev.UUID, Reason: fmt.Sprintf("%d MISP event reports not imported (no mapping)", n)})
	}
	published := c.evTime
	if p, ok := unixTime(ev.PublishTimestamp); ok {
		published = stix.FormatMicro(p)
	}
	// A cluster on the event and on an attribute is referred to once.
	seen := map[string]bool{}
	refs = slices.DeleteFunc(refs, func(id string) bool {
		dup := seen[id] || id == ""
		seen[id] = true
		return dup
	})
	if len(refs) == 0 {
		c.skipped = append(c.skipped, Rejection{ID: "report--" + ev.UUID, Reason: "event with nothing to convert"})
		return
	}
	rep := map[string]any{"type": "report", "spec_version": "2.1", "id": "report--" + ev.UUID, "created": c.evTime, "modified": c.evTime,
		"name": ev.Info, "published": published, "report_types": []string{"threat-report"}, "object_refs": refs}
	if l := labelsOf(ev.Tag); len(l) > 0 {
		rep["labels"] = l
	}
	if c.orgRef != "" {
		rep["created_by_ref"] = c.orgRef
	}
	for k, v := range map[string]mispString{"x_misp_threat_level_id": ev.ThreatLevelID, "x_misp_analysis": ev.Analysis, "x_misp_distribution": ev.Distribution} {
		if v != "" {
			rep[k] = string(v)
		}
	}
	if ev.Date != "" {
		rep["x_misp_date"] = ev.Date
	}
	if ev.SharingGroup != nil {
		rep["x_misp_sharing_group"] = ev.SharingGroup.Name
	}
	mark(rep, c.evTLP, c.evRcpts)
	c.emit(rep)
}

// term is one comparison of a pattern, with the observable it describes.
type term struct {
	comparisons []string
	sco         []map[string]any
}

func quote(v string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), `'`, `\'`) + "'"
}

var hashNames = map[string]string{"md5": "MD5", "sha1": "SHA-1", "sha224": "SHA-224", "sha256": "SHA-256", "sha384": "SHA-384",
	"sha512": "SHA-512", "sha3-256": "SHA3-256", "sha3-512": "SHA3-512", "ssdeep": "SSDEEP", "tlsh": "TLSH", "imphash": "x_misp_imphash"}

func hashPath(name string) string {
	if strings.ContainsAny(name, "-_") {
		return "file:hashes.'" + name + "'"
	}
	return "file:hashes." + name
}

func ipType(v string) string {
	if p, err := parsePrefix(v); err == nil && p.Addr().Is6() && !p.Addr().Is4In6() {
		return "ipv6-addr"
	}
	return "ipv4-addr"
}

// mapAttribute maps an attribute type and value to pattern comparisons and
// observables; ok is false for types with no STIX observable.
func mapAttribute(typ, value string) (term, bool) {
	v := strings.TrimSpace(value)
	switch typ {
	case "ip-src", "ip-dst":
		it := ipType(v)
		side := "dst_ref"
		if typ == "ip-src" {
			side = "src_ref"
		}
		if _, err := parsePrefix(v); err != nil {
			return term{}, false
		}
		return term{[]string{"network-traffic:" + side + ".type = '" + it + "'", "network-traffic:" + side + ".value = " + quote(v)},
			[]map[string]any{{"type": it, "value": v}}}, true
	case "domain", "hostname":
		return term{[]string{"domain-name:value = " + quote(v)}, []map[string]any{{"type": "domain-name", "value": v}}}, true
	case "url", "uri", "link":
		return term{[]string{"url:value = " + quote(v)}, []map[string]any{{"type": "url", "value": v}}}, true
	case "email", "email-src", "email-dst", "target-email", "whois-registrant-email":
		return term{[]string{"email-addr:value = " + quote(v)}, []map[string]any{{"type": "email-addr", "value": v}}}, true
	case "filename":
		return term{[]string{"file:name = " + quote(v)}, []map[string]any{{"type": "file", "name": v}}}, true
	case "mutex":
		return term{[]string{"mutex:name = " + quote(v)}, []map[string]any{{"type": "mutex", "name": v}}}, true
	case "mac-address":
		return term{[]string{"mac-addr:value = " + quote(strings.ToLower(v))}, []map[string]any{{"type": "mac-addr", "value": strings.ToLower(v)}}}, true
	case "regkey":
		return term{[]string{"windows-registry-key:key = " + quote(v)}, []map[string]any{{"type": "windows-registry-key", "key": v}}}, true
	case "AS":
		n, err := strconv.ParseInt(strings.TrimPrefix(strings.ToUpper(v), "AS"), 10, 64)
		if err != nil {
			return term{}, false
		}
		return term{[]string{"autonomous-system:number = " + strconv.FormatInt(n, 10)}, []map[string]any{{"type": "autonomous-system", "number": n}}}, true
	case "user-agent":
		return term{[]string{"network-traffic:extensions.'http-request-ext'.request_header.'User-Agent' = " + quote(v)}, nil}, true
	case "domain|ip":
		d, ip, ok := strings.Cut(v, "|")
		if !ok {
			return term{}, false
		}
		it := ipType(ip)
		return term{[]string{"domain-name:value = " + quote(d), "domain-name:resolves_to_refs[*].value = " + quote(ip)},
			[]map[string]any{{"type": "domain-name", "value": d}, {"type": it, "value": ip}}}, true
	case "ip-dst|port", "ip-src|port":
		ip, port, ok := strings.Cut(v, "|")
		if !ok {
			return term{}, false
		}
		side, ps := "dst", "dst_port"
		if typ == "ip-src|port" {
			side, ps = "src", "src_port"
		}
		if _, err := strconv.Atoi(port); err != nil {
			return term{}, false
		}
		return term{[]string{"network-traffic:" + side + "_ref.type = '" + ipType(ip) + "'", "network-traffic:" + side + "_ref.value = " + quote(ip), "network-traffic:" + ps + " = " + port},
			[]map[string]any{{"type": ipType(ip), "value": ip}}}, true
	}
	if h, ok := hashNames[typ]; ok {
		return term{[]string{hashPath(h) + " = " + quote(v)}, []map[string]any{{"type": "file", "hashes": map[string]any{h: v}}}}, true
	}
	if name, hash, ok := strings.Cut(typ, "|"); ok && name == "filename" {
		if h, ok := hashNames[hash]; ok {
			fn, hv, ok := strings.Cut(v, "|")
			if !ok {
				return term{}, false
			}
			return term{[]string{"file:name = " + quote(fn), hashPath(h) + " = " + quote(hv)},
				[]map[string]any{{"type": "file", "name": fn, "hashes": map[string]any{h: hv}}}}, true
		}
	}
	return term{}, false
}

// patternLanguages are attribute types whose value is a pattern in another
// language (STIX 2.1 §10.14 pattern-type-ov).
var patternLanguages = map[string]string{"yara": "yara", "snort": "snort", "sigma": "sigma", "pcre": "pcre", "suricata": "suricata"}

// scos emits observables, marked as what refers to them: their values
// are as sensitive as the attribute.
func (c *mispConverter) scos(objs []map[string]any, l access.TLP, rcpts []string) []string {
	var ids []string
	for _, o := range objs {
		o["spec_version"] = "2.1"
		id, err := stix.DeterministicID(o)
		if err != nil {
			continue
		}
		o["id"] = id
		mark(o, l, rcpts)
		ids = append(ids, id)
		if !c.seen[id] {
			c.seen[id] = true
			c.emit(o)
		}
	}
	return ids
}

func (c *mispConverter) attrTime(a *MISPAttribute, fallback string) string {
	if t, ok := unixTime(a.Timestamp); ok {
		return stix.FormatMicro(t)
	}
	return fallback
}

func (c *mispConverter) common(obj map[string]any, created string, l access.TLP, rcpts []string, tags []MISPTag, extra ...string) {
	obj["spec_version"], obj["created"], obj["modified"] = "2.1", created, created
	if c.orgRef != "" {
		obj["created_by_ref"] = c.orgRef
	}
	labels := append(extra, labelsOf(tags)...)
	if len(labels) > 0 {
		obj["labels"] = labels
	}
	mark(obj, l, rcpts)
	if id, ok := obj["id"].(string); ok && c.levels != nil {
		c.levels[id] = level{l, rcpts}
	}
}

// attribute converts a lone attribute; it returns the ids for the report.
func (c *mispConverter) attribute(a *MISPAttribute, parent access.TLP, parentRcpts []string) []string {
	if _, err := uuid.Parse(a.UUID); err != nil {
		c.skipped = append(c.skipped, Rejection{ID: "misp-attribute:" + a.UUID, Reason: "attribute without a valid uuid"})
		return nil
	}
	if a.Deleted {
		// Soft-deleted in MISP: withdrawn intelligence, reported, not stored.
		c.skipped = append(c.skipped, Rejection{ID: "misp-attribute:" + a.UUID, Reason: "deleted in MISP (soft delete)"})
		return nil
	}
	l, rcpts := c.level(a.Distribution, a.SharingGroup, a.Tag, parent, parentRcpts)
	ts := c.attrTime(a, c.evTime)
	labels := []string{`misp:type="` + a.Type + `"`, `misp:category="` + a.Category + `"`}
	var id string
	switch {
	case a.Type == "vulnerability":
		obj := map[string]any{"type": "vulnerability", "id": "vulnerability--" + a.UUID, "name": a.Value,
			"external_references": []map[string]any{{"source_name": "cve", "external_id": a.Value}}}
		c.describe(obj, a.Comment)
		c.common(obj, ts, l, rcpts, a.Tag, labels...)
		id = c.emit(obj)
	case patternLanguages[a.Type] != "":
		obj := map[string]any{"type": "indicator", "id": "indicator--" + a.UUID, "pattern": a.Value,
			"pattern_type": patternLanguages[a.Type], "valid_from": ts}
		c.describe(obj, a.Comment)
		c.common(obj, ts, l, rcpts, a.Tag, labels...)
		id = c.emit(obj)
	default:
		tm, ok := mapAttribute(a.Type, a.Value)
		if !ok {
			obj := map[string]any{"type": "x-misp-attribute", "id": "x-misp-attribute--" + a.UUID,
				"x_misp_type": a.Type, "x_misp_category": a.Category, "x_misp_value": a.Value, "x_misp_to_ids": bool(a.ToIDs)}
			if a.Comment != "" {
				obj["x_misp_comment"] = a.Comment
			}
			c.common(obj, ts, l, rcpts, a.Tag, labels...)
			id = c.emit(obj)
			break
		}
		id = c.observable(a.UUID, a.ToIDs, tm, ts, a.FirstSeen, a.LastSeen, a.Category, a.Comment, l, rcpts, a.Tag, labels)
	}
	if id == "" {
		return nil
	}
	ids := []string{id}
	// Clusters attached to the attribute: the SDO and what the indicator
	// indicates (or the observed data is related to).
	for _, g := range a.Galaxy {
		for _, cl := range g.GalaxyCluster {
			cid := c.cluster(g, cl)
			if cid == "" {
				continue
			}
			ids = append(ids, cid)
			rt := "related-to"
			if strings.HasPrefix(id, "indicator--") && slices.Contains([]string{"malware", "threat-actor", "intrusion-set", "attack-pattern", "tool"}, strings.Split(cid, "--")[0]) {
				rt = "indicates"
			}
			rid := "relationship--" + uuid.NewSHA1(mispNamespace, []byte(id+"|"+rt+"|"+cid)).String()
			rel := map[string]any{"type": "relationship", "id": rid, "relationship_type": rt, "source_ref": id, "target_ref": cid}
			c.common(rel, ts, l, rcpts, nil)
			ids = append(ids, c.emit(rel))
		}
	}
	return ids
}

func (c *mispConverter) describe(obj map[string]any, comment string) {
	if comment != "" {
		obj["description"] = comment
	}
}

// observable emits an indicator (to_ids) or observed data for terms.
func (c *mispConverter) observable(id string, toIDs mispBool, tm term, ts, first, last, category, comment string, l access.TLP, rcpts []string, tags []MISPTag, labels []string) string {
	if toIDs {
		obj := map[string]any{"type": "indicator", "id": "indicator--" + id, "pattern": "[" + strings.Join(tm.comparisons, " AND ") + "]",
			"pattern_type": "stix", "valid_from": ts}
		if t, err := time.Parse(time.RFC3339Nano, first); err == nil {
			obj["valid_from"] = stix.FormatMicro(t)
		}
		if t, err := time.Parse(time.RFC3339Nano, last); err == nil {
			obj["valid_until"] = stix.FormatMicro(t)
		}
		if category != "" {
			obj["kill_chain_phases"] = []map[string]any{{"kill_chain_name": "misp-category", "phase_name": category}}
		}
		c.describe(obj, comment)
		c.common(obj, ts, l, rcpts, tags, labels...)
		return c.emit(obj)
	}
	refs := c.scos(tm.sco, l, rcpts)
	if len(refs) == 0 {
		// Nothing observable to point at (a user agent alone): keep it as
		// an indicator-less custom object rather than drop it.
		obj := map[string]any{"type": "x-misp-attribute", "id": "x-misp-attribute--" + id, "x_misp_pattern": "[" + strings.Join(tm.comparisons, " AND ") + "]"}
		c.common(obj, ts, l, rcpts, tags, labels...)
		return c.emit(obj)
	}
	obj := map[string]any{"type": "observed-data", "id": "observed-data--" + id, "first_observed": ts, "last_observed": ts,
		"number_observed": 1, "object_refs": refs}
	if comment != "" {
		obj["x_misp_comment"] = comment
	}
	c.common(obj, ts, l, rcpts, tags, labels...)
	return c.emit(obj)
}

// object converts a MISP object: its mappable attributes joined with AND
// into one indicator (when any is to_ids) or observed data; the others
// kept in x_misp_attributes; an object with none mappable is an
// x-misp-object.
func (c *mispConverter) object(o *MISPObject) []string {
	if _, err := uuid.Parse(o.UUID); err != nil {
		c.skipped = append(c.skipped, Rejection{ID: "misp-object:" + o.UUID, Reason: "object without a valid uuid"})
		return nil
	}
	l, rcpts := c.level(o.Distribution, o.SharingGroup, nil, c.evTLP, c.evRcpts)
	ts := c.evTime
	if t, ok := unixTime(o.Timestamp); ok {
		ts = stix.FormatMicro(t)
	}
	var all term
	var toIDs mispBool
	var rest []map[string]any
	var tags []MISPTag
	file := map[string]any{}
	for _, a := range o.Attribute {
		if a.Deleted {
			c.skipped = append(c.skipped, Rejection{ID: "misp-attribute:" + a.UUID, Reason: "deleted in MISP (soft delete)"})
			continue
		}
		tags = append(tags, a.Tag...)
		tm, ok := mapAttribute(a.Type, a.Value)
		if !ok {
			rest = append(rest, map[string]any{"object_relation": a.ObjectRelation, "type": a.Type, "value": a.Value})
			continue
		}
		toIDs = toIDs || a.ToIDs
		all.comparisons = append(all.comparisons, tm.comparisons...)
		// The attributes of a file object describe one file.
		for _, s := range tm.sco {
			if s["type"] == "file" {
				for k, v := range s {
					if k == "hashes" {
						h, _ := file["hashes"].(map[string]any)
						if h == nil {
							h = map[string]any{}
						}
						for hk, hv := range v.(map[string]any) {
							h[hk] = hv
						}
						file["hashes"] = h
					} else {
						file[k] = v
					}
				}
				continue
			}
			all.sco = append(all.sco, s)
		}
	}
	if len(file) > 0 {
		all.sco = append(all.sco, file)
	}
	labels := []string{`misp:name="` + o.Name + `"`, `misp:meta-category="` + o.MetaCategory + `"`}
	if len(all.comparisons) == 0 {
		obj := map[string]any{"type": "x-misp-object", "id": "x-misp-object--" + o.UUID, "x_misp_name": o.Name,
			"x_misp_meta_category": o.MetaCategory, "x_misp_attributes": rest}
		if o.Comment != "" {
			obj["x_misp_comment"] = o.Comment
		}
		c.common(obj, ts, l, rcpts, tags, labels...)
		return []string{c.emit(obj)}
	}
	id := c.observable(o.UUID, toIDs, all, ts, "", "", o.MetaCategory, o.Comment, l, rcpts, tags, labels)
	if len(rest) > 0 && id != "" {
		// Re-emit with the unmapped attributes as a custom property.
		last := c.out[len(c.out)-1]
		var m map[string]any
		if json.Unmarshal(last, &m) == nil {
			m["x_misp_attributes"] = rest
			if b, err := json.Marshal(m); err == nil {
				c.out[len(c.out)-1] = b
			}
		}
	}
	return []string{id}
}

// relationshipType makes a MISP relationship name a STIX relationship
// type (§5.1.1: lowercase ASCII letters, digits and hyphens).
func relationshipType(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(s)) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	if b.Len() == 0 {
		return "related-to"
	}
	return b.String()
}

// references converts an object's references to relationships (as
// misp-stix does); a reference to something outside the event, or to
// what was not converted, is reported.
func (c *mispConverter) references(o *MISPObject) []string {
	src := c.byUUID[o.UUID]
	if src == "" {
		return nil
	}
	var ids []string
	for _, r := range o.ObjectReference {
		dst := c.byUUID[r.ReferencedUUID]
		if dst == "" {
			c.skipped = append(c.skipped, Rejection{ID: "misp-object-reference:" + r.UUID,
				Reason: "reference from object " + o.UUID + " to " + r.ReferencedUUID + ", which is not in the event"})
			continue
		}
		rt := relationshipType(r.RelationshipType)
		id := r.UUID
		if _, err := uuid.Parse(id); err != nil {
			id = uuid.NewSHA1(mispNamespace, []byte(src+"|"+rt+"|"+dst)).String()
		}
		ts := c.evTime
		if t, ok := unixTime(r.Timestamp); ok {
			ts = stix.FormatMicro(t)
		}
		rel := map[string]any{"type": "relationship", "id": "relationship--" + id, "relationship_type": rt, "source_ref": src, "target_ref": dst}
		c.describe(rel, r.Comment)
		lv := between(c.levels[src], c.levels[dst])
		c.common(rel, ts, lv.tlp, lv.rcpts, nil)
		ids = append(ids, c.emit(rel))
	}
	return ids
}

// cluster converts a galaxy cluster to its SDO (once per import).
func (c *mispConverter) cluster(g MISPGalaxy, cl MISPCluster) string {
	if _, err := uuid.Parse(cl.UUID); err != nil {
		c.skipped = append(c.skipped, Rejection{ID: "misp-galaxy-cluster:" + cl.UUID, Reason: "galaxy cluster without a valid uuid"})
		return ""
	}
	typ := galaxyTypes[g.Type]
	if typ == "" {
		typ = galaxyTypes[cl.Type]
	}
	if typ == "" {
		typ = "x-misp-galaxy-cluster"
	}
	id := typ + "--" + cl.UUID
	if c.seen[id] {
		return id
	}
	c.seen[id] = true
	obj := map[string]any{"type": typ, "id": id, "name": cl.Value}
	c.describe(obj, cl.Description)
	switch typ {
	case "malware":
		obj["is_family"] = true
	case "identity":
		obj["identity_class"] = "class"
		obj["sectors"] = []string{strings.ToLower(strings.ReplaceAll(cl.Value, " ", "-"))}
	case "x-misp-galaxy-cluster":
		obj["x_misp_galaxy_type"] = g.Type
	}
	if cl.TagName != "" {
		obj["labels"] = []string{cl.TagName}
	}
	if len(cl.Meta) > 0 {
		obj["x_misp_meta"] = cl.Meta
	}
	// Clusters are shared knowledge: marked as the event is, created at
	// the event's time (a later import of another event finds it
	// unchanged).
	obj["spec_version"], obj["created"], obj["modified"] = "2.1", c.evTime, c.evTime
	mark(obj, c.evTLP, c.evRcpts)
	return c.emit(obj)
}

// MISPSource converts MISP events read by events (each call yields the
// events of one file) into a Source.
func MISPSource(events func(yield func([]MISPEvent, error) bool), floor access.TLP, recipients func(*MISPSharing) []string) Source {
	conv := newMISPConverter(floor, recipients)
	return Source{Volatile: []string{"created", "modified"}, Skipped: func() []Rejection { return conv.skipped }, Objects: func(yield func(json.RawMessage, error) bool) {
		for evs, err := range events {
			if err != nil {
				yield(nil, err)
				return
			}
			for i := range evs {
				conv.out = conv.out[:0]
				conv.Event(&evs[i])
				for _, raw := range conv.out {
					if !yield(raw, nil) {
						return
					}
				}
			}
		}
	}}
}
