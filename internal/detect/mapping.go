package detect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mitra-cert/mitra/internal/pattern"
)

// Mapping says how generic JSON lines become observations: which field
// holds the time and which fields become which STIX object property. It is
// read from a JSON file:
//
//	{
//	  "time": {"field": "@timestamp", "format": "rfc3339"},
//	  "fields": [
//	    {"field": "source.ip", "path": "ipv4-addr:value"},
//	    {"field": "destination.ip", "path": "ipv4-addr:value"},
//	    {"field": "dns.question.name", "path": "domain-name:value"},
//	    {"field": "file.hash.sha256", "path": "file:hashes.'SHA-256'"},
//	    {"field": "file.name", "path": "file:name"}
//	  ]
//	}
//
// A field name is a key of the record, or a dotted path into nested
// objects. Time formats: rfc3339 (the default), unix (seconds, with a
// fraction), unix_ms; without a time field an event takes the time it was
// read. Address, domain-name, url, email-addr and mac-addr paths on
// "value" make one object per field (an ipv4-addr path receiving an IPv6
// address makes an ipv6-addr); the properties of other types go into one
// object per type, or per "object" label when a field gives one. A field
// holding a list makes one object per element for single-value types.
type Mapping struct {
	Time struct {
		Field  string `json:"field"`
		Format string `json:"format"`
	} `json:"time"`
	Fields []MappedField `json:"fields"`
}

// MappedField maps one JSON field to a STIX object path.
type MappedField struct {
	Field  string `json:"field"`
	Path   string `json:"path"`
	Object string `json:"object,omitempty"`

	typ   string
	props []string // property path below the object
	group string
}

// LoadMapping reads and checks a mapping file.
func LoadMapping(file string) (*Mapping, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return ParseMapping(b)
}

// ParseMapping checks a mapping given as JSON.
func ParseMapping(b []byte) (*Mapping, error) {
	var m Mapping
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("mapping: %w", err)
	}
	switch m.Time.Format {
	case "", "rfc3339", "unix", "unix_ms":
	default:
		return nil, fmt.Errorf("mapping: time format %q (want rfc3339, unix or unix_ms)", m.Time.Format)
	}
	if len(m.Fields) == 0 {
		return nil, errors.New("mapping: no fields")
	}
	for i := range m.Fields {
		f := &m.Fields[i]
		if f.Field == "" {
			return nil, fmt.Errorf("mapping: fields[%d] has no field", i)
		}
		typ, rest, ok := strings.Cut(f.Path, ":")
		if !ok || typ == "" || rest == "" {
			return nil, fmt.Errorf("mapping: fields[%d]: path %q is not TYPE:PROPERTY", i, f.Path)
		}
		props, err := splitPropPath(rest)
		if err != nil {
			return nil, fmt.Errorf("mapping: fields[%d]: path %q: %v", i, f.Path, err)
		}
		f.typ, f.props = typ, props
		switch {
		case f.Object != "":
			f.group = "label:" + f.Object
		case singleValueType(typ) && len(props) == 1 && props[0] == "value":
			f.group = "field:" + strconv.Itoa(i)
		default:
			f.group = "type:" + typ
		}
	}
	return &m, nil
}

func singleValueType(t string) bool {
	switch t {
	case "ipv4-addr", "ipv6-addr", "domain-name", "url", "email-addr", "mac-addr":
		return true
	}
	return false
}

// splitPropPath splits "hashes.'SHA-256'" into ["hashes", "SHA-256"].
func splitPropPath(s string) ([]string, error) {
	var out []string
	for s != "" {
		if s[0] == '\'' {
			end := strings.IndexByte(s[1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated quote")
			}
			out = append(out, s[1:1+end])
			s = s[2+end:]
		} else {
			i := strings.IndexByte(s, '.')
			if i < 0 {
				i = len(s)
			}
			if i == 0 {
				return nil, errors.New("empty property name")
			}
			out = append(out, s[:i])
			s = s[i:]
		}
		if s != "" {
			if s[0] != '.' {
				return nil, errors.New("expected '.' between properties")
			}
			s = s[1:]
			if s == "" {
				return nil, errors.New("trailing '.'")
			}
		}
	}
	return out, nil
}

// lookup finds a field by exact key, else as a dotted path.
func lookup(rec map[string]any, field string) (any, bool) {
	if v, ok := rec[field]; ok {
		return v, true
	}
	cur := any(rec)
	for part := range strings.SplitSeq(field, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func (m *Mapping) decode(line string, a *arena) (*pattern.Observation, error) {
	d := json.NewDecoder(strings.NewReader(line))
	d.UseNumber()
	var rec map[string]any
	if err := d.Decode(&rec); err != nil {
		return nil, fmt.Errorf("JSON: %w", err)
	}
	t := time.Now().UTC()
	if m.Time.Field != "" {
		v, ok := lookup(rec, m.Time.Field)
		if !ok {
			return nil, fmt.Errorf("time field %q missing", m.Time.Field)
		}
		var err error
		if t, err = mappedTime(v, m.Time.Format); err != nil {
			return nil, fmt.Errorf("time field %q: %w", m.Time.Field, err)
		}
	}
	a.begin()
	groups := map[string]*pattern.SCO{}
	for i := range m.Fields {
		f := &m.Fields[i]
		v, ok := lookup(rec, f.Field)
		if !ok || v == nil {
			continue
		}
		if list, isList := v.([]any); isList && singleValueType(f.typ) && f.props[0] == "value" {
			for _, e := range list {
				addValue(a, f.typ, e)
			}
			continue
		}
		if singleValueType(f.typ) && len(f.props) == 1 && f.props[0] == "value" {
			addValue(a, f.typ, v)
			continue
		}
		o := groups[f.group]
		if o == nil {
			o = a.sco(f.typ, "", "")
			o.Props = map[string]any{}
			groups[f.group] = o
			a.add(o)
		}
		setProp(o, f.props, normalise(v))
	}
	return a.end(t), nil
}

func addValue(a *arena, typ string, v any) {
	s, ok := v.(string)
	if !ok || s == "" {
		return
	}
	if typ == "ipv4-addr" || typ == "ipv6-addr" {
		if t := ipType(s); t != "" {
			typ = t
		} else if p, err := netip.ParsePrefix(s); err == nil {
			typ = ipType(p.Addr().String())
		} else {
			return
		}
	}
	a.add(a.sco(typ, "", s))
}

// setProp sets a nested property; hashes go into the SCO's Hashes.
func setProp(o *pattern.SCO, path []string, v any) {
	if len(path) == 2 && path[0] == "hashes" {
		if s, ok := v.(string); ok {
			if o.Hashes == nil {
				o.Hashes = map[string]string{}
			}
			o.Hashes[path[1]] = s
		}
		return
	}
	if len(path) == 1 && path[0] == "value" {
		if s, ok := v.(string); ok {
			o.Value = s
			return
		}
	}
	cur := o.Props
	for _, p := range path[:len(path)-1] {
		next, ok := cur[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[p] = next
		}
		cur = next
	}
	cur[path[len(path)-1]] = v
}

// normalise turns json.Number into int64 or float64, as the Matcher wants.
func normalise(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = normalise(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalise(e)
		}
	}
	return v
}

func mappedTime(v any, format string) (time.Time, error) {
	switch format {
	case "", "rfc3339":
		s, ok := v.(string)
		if !ok {
			return time.Time{}, errors.New("not a string")
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		return t.UTC(), err
	case "unix":
		n, ok := v.(json.Number)
		if !ok {
			if s, isStr := v.(string); isStr {
				return parseEpoch(s)
			}
			return time.Time{}, errors.New("not a number")
		}
		return parseEpoch(n.String())
	default: // unix_ms
		n, ok := v.(json.Number)
		if !ok {
			return time.Time{}, errors.New("not a number")
		}
		ms, err := n.Int64()
		if err != nil {
			return time.Time{}, err
		}
		return time.UnixMilli(ms).UTC(), nil
	}
}
