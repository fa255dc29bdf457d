package pattern

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Object is one STIX Cyber-observable Object (SCO) inside an Observation.
//
// Prop returns a top-level property as a JSON-like value: string, bool,
// int64, float64 (other Go integer and float types and json.Number are
// accepted too), []any, []string, map[string]any, map[string]string, or
// nil for JSON null. Nested properties are reached through those maps and
// lists; "type" and "id" are properties like any other.
type Object interface {
	// ID is the key that _ref properties use for this object: the STIX id
	// with object_refs, or the dictionary key with the deprecated objects
	// property. It may be empty when nothing references the object.
	ID() string
	// Type is the SCO type, e.g. "ipv4-addr".
	Type() string
	// Prop returns a top-level property.
	Prop(name string) (any, bool)
}

// StringPropObject is implemented by Objects that can hand out string
// properties without boxing them into an interface; the Matcher uses it on
// its hot path so that detector-built observations need not allocate.
type StringPropObject interface {
	StringProp(name string) (string, bool)
}

// MapObject is an Object backed by a decoded JSON object.
type MapObject struct {
	Key string         // the id or dictionary key that references use
	M   map[string]any // the SCO's properties, including "type"
}

// ID implements Object.
func (o *MapObject) ID() string { return o.Key }

// Type implements Object.
func (o *MapObject) Type() string { s, _ := o.M["type"].(string); return s }

// Prop implements Object.
func (o *MapObject) Prop(name string) (any, bool) { v, ok := o.M[name]; return v, ok }

// StringProp implements StringPropObject.
func (o *MapObject) StringProp(name string) (string, bool) {
	s, ok := o.M[name].(string)
	return s, ok
}

// SCO is a small, allocation-friendly Object for observations built by
// detectors (e.g. from Zeek or Suricata events): a type, the "value"
// property most single-value SCOs use (ipv4-addr, ipv6-addr, domain-name,
// url, email-addr, mac-addr), hashes for file SCOs, and any other
// properties in Props. Empty Value, nil Hashes and nil Props mean absent.
type SCO struct {
	Key    string
	T      string
	Value  string
	Hashes map[string]string
	Props  map[string]any
}

// ID implements Object.
func (o *SCO) ID() string { return o.Key }

// Type implements Object.
func (o *SCO) Type() string { return o.T }

// Prop implements Object.
func (o *SCO) Prop(name string) (any, bool) {
	switch name {
	case "type":
		return o.T, true
	case "id":
		if o.Key != "" {
			return o.Key, true
		}
	case "value":
		if o.Value != "" {
			return o.Value, true
		}
	case "hashes":
		if o.Hashes != nil {
			return o.Hashes, true
		}
	}
	v, ok := o.Props[name]
	return v, ok
}

// StringProp implements StringPropObject.
func (o *SCO) StringProp(name string) (string, bool) {
	switch name {
	case "type":
		return o.T, true
	case "value":
		if o.Value != "" {
			return o.Value, true
		}
	case "id":
		if o.Key != "" {
			return o.Key, true
		}
	}
	s, ok := o.Props[name].(string)
	return s, ok
}

// Observation is one observed-data SDO (§4.14): NumberObserved
// observations made between FirstObserved and LastObserved, over the SCOs
// in Objects. Every object is a possible root for an observation
// expression (§9.5); _ref properties resolve only to objects of the same
// Observation (§9.7.4).
type Observation struct {
	ID             string
	FirstObserved  time.Time
	LastObserved   time.Time
	NumberObserved int64
	Objects        []Object

	byID map[string]Object // built for observations with many objects
}

// NewObservation builds an Observation from objects that are already in
// memory. It is the entry point for detectors: with *SCO objects and no
// references it allocates only the Observation itself.
func NewObservation(first, last time.Time, number int64, objects ...Object) (*Observation, error) {
	o := &Observation{FirstObserved: first, LastObserved: last, NumberObserved: number, Objects: objects}
	if err := o.validate(); err != nil {
		return nil, err
	}
	o.index()
	return o, nil
}

func (o *Observation) validate() error {
	if o.NumberObserved < 1 {
		return fmt.Errorf("number_observed must be at least 1, got %d", o.NumberObserved)
	}
	if o.LastObserved.Before(o.FirstObserved) {
		return errors.New("last_observed is before first_observed")
	}
	return nil
}

func (o *Observation) index() {
	if len(o.Objects) <= 8 {
		return // a linear scan beats a map for few objects
	}
	o.byID = make(map[string]Object, len(o.Objects))
	for _, obj := range o.Objects {
		if id := obj.ID(); id != "" {
			o.byID[id] = obj
		}
	}
}

// Resolve returns the object a _ref property value points to.
func (o *Observation) Resolve(ref string) (Object, bool) {
	if o.byID != nil {
		obj, ok := o.byID[ref]
		return obj, ok
	}
	for _, obj := range o.Objects {
		if obj.ID() == ref {
			return obj, true
		}
	}
	return nil, false
}

// ObservationsFromJSON builds observations from a JSON array of STIX
// objects: observed-data SDOs plus the SCOs their object_refs name (any
// order, e.g. the objects of a bundle), or observed-data with the
// deprecated embedded "objects" dictionary. Other SDOs and SROs are
// ignored. An object_refs entry that names no object in the array is not
// an error: per §9.7.4 that object is simply not found.
func ObservationsFromJSON(data []byte) ([]*Observation, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("observed: want a JSON array of STIX objects: %w", err)
	}
	objs := make([]map[string]any, 0, len(raw))
	for i, r := range raw {
		m, err := decodeObject(r)
		if err != nil {
			return nil, fmt.Errorf("observed[%d]: %w", i, err)
		}
		objs = append(objs, m)
	}
	return ObservationsFromObjects(objs)
}

// ObservationsFromObjects is ObservationsFromJSON on decoded objects.
// Numbers may be float64, int64 or json.Number.
func ObservationsFromObjects(objs []map[string]any) ([]*Observation, error) {
	byID := make(map[string]map[string]any)
	for _, m := range objs {
		if id, ok := m["id"].(string); ok {
			byID[id] = m
		}
	}
	var out []*Observation
	for i, m := range objs {
		if t, _ := m["type"].(string); t != "observed-data" {
			continue
		}
		o, err := observationFromSDO(m, byID)
		if err != nil {
			id, _ := m["id"].(string)
			if id == "" {
				id = "#" + strconv.Itoa(i)
			}
			return nil, fmt.Errorf("observed-data %s: %w", id, err)
		}
		out = append(out, o)
	}
	return out, nil
}

func decodeObject(r []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(r))
	d.UseNumber() // keep integers exact (§9.2: no truncation)
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	m, ok := normalizeJSON(v).(map[string]any)
	if !ok {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}

// normalizeJSON turns json.Number into int64 when it is an integer that
// fits, float64 otherwise, so comparisons see native numbers.
func normalizeJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		f, _ := strconv.ParseFloat(string(x), 64)
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeJSON(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalizeJSON(e)
		}
	}
	return v
}

func observationFromSDO(m map[string]any, byID map[string]map[string]any) (*Observation, error) {
	o := &Observation{}
	o.ID, _ = m["id"].(string)
	var err error
	if o.FirstObserved, err = sdoTime(m, "first_observed"); err != nil {
		return nil, err
	}
	if o.LastObserved, err = sdoTime(m, "last_observed"); err != nil {
		return nil, err
	}
	n, ok := toInt64(m["number_observed"])
	if !ok {
		return nil, errors.New("number_observed missing or not an integer")
	}
	o.NumberObserved = n
	if err := o.validate(); err != nil {
		return nil, err
	}
	refs, hasRefs := m["object_refs"]
	embedded, hasObjects := m["objects"]
	switch {
	case hasRefs:
		list, ok := refs.([]any)
		if !ok {
			return nil, errors.New("object_refs is not a list")
		}
		for _, r := range list {
			id, ok := r.(string)
			if !ok {
				return nil, errors.New("object_refs holds a non-string")
			}
			if sco, ok := byID[id]; ok {
				o.Objects = append(o.Objects, &MapObject{Key: id, M: sco})
			}
		}
	case hasObjects:
		dict, ok := embedded.(map[string]any)
		if !ok {
			return nil, errors.New("objects is not a dictionary")
		}
		keys := make([]string, 0, len(dict))
		for k := range dict {
			keys = append(keys, k)
		}
		sortKeys(keys)
		for _, k := range keys {
			sco, ok := dict[k].(map[string]any)
			if !ok {
				return nil, fmt.Errorf("objects[%q] is not an object", k)
			}
			o.Objects = append(o.Objects, &MapObject{Key: k, M: sco})
		}
	default:
		return nil, errors.New("neither object_refs nor objects is present")
	}
	for _, obj := range o.Objects {
		if obj.Type() == "" {
			return nil, fmt.Errorf("object %q has no type", obj.ID())
		}
	}
	o.index()
	return o, nil
}

// sortKeys orders dictionary keys numerically when they are numbers ("0",
// "1", "10") so results are deterministic and read naturally.
func sortKeys(keys []string) {
	numeric := func(s string) bool { return s != "" && strings.TrimLeft(s, "0123456789") == "" }
	slices.SortFunc(keys, func(a, b string) int {
		if numeric(a) && numeric(b) && len(a) != len(b) {
			return len(a) - len(b)
		}
		return strings.Compare(a, b)
	})
}

func sdoTime(m map[string]any, name string) (time.Time, error) {
	s, ok := m[name].(string)
	if !ok {
		return time.Time{}, fmt.Errorf("%s missing or not a string", name)
	}
	t, err := parseValueTimestamp(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", name, err)
	}
	return t, nil
}

// parseValueTimestamp parses a timestamp found in data. It is more lenient
// than the t'...' constant: any RFC 3339 offset is accepted.
func parseValueTimestamp(s string) (time.Time, error) {
	if t, err := parseTimestampLiteral(s); err == nil {
		return t, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

func toInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case float64:
		if x == float64(int64(x)) {
			return int64(x), true
		}
	case json.Number:
		i, err := x.Int64()
		return i, err == nil
	}
	return 0, false
}
