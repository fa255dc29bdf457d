package detect

import (
	"maps"
	"net/netip"
	"strings"

	"github.com/mitra-cert/mitra/internal/pattern"
	"github.com/mitra-cert/mitra/internal/stix"
)

// netTraffic is a network-traffic SCO (§6.12) built by the decoders without
// a property map: its references point at the address objects of the same
// observation, whose keys are "src" and "dst".
type netTraffic struct {
	src, dst         *pattern.SCO
	srcPort, dstPort int64
	hasPorts         bool
	protocols        []string
	ext              map[string]any // extensions, e.g. http-request-ext
}

const (
	keySrc = "src"
	keyDst = "dst"
	keyNT  = "nt"
)

// ID implements pattern.Object.
func (n *netTraffic) ID() string { return keyNT }

// Type implements pattern.Object.
func (n *netTraffic) Type() string { return "network-traffic" }

// Prop implements pattern.Object.
func (n *netTraffic) Prop(name string) (any, bool) {
	switch name {
	case "type":
		return "network-traffic", true
	case "id":
		return keyNT, true
	case "src_ref":
		if n.src != nil {
			return n.src.Key, true
		}
	case "dst_ref":
		if n.dst != nil {
			return n.dst.Key, true
		}
	case "src_port":
		if n.hasPorts {
			return n.srcPort, true
		}
	case "dst_port":
		if n.hasPorts {
			return n.dstPort, true
		}
	case "protocols":
		return n.protocols, true
	case "extensions":
		if n.ext != nil {
			return n.ext, true
		}
	}
	return nil, false
}

// StringProp implements pattern.StringPropObject.
func (n *netTraffic) StringProp(name string) (string, bool) {
	switch name {
	case "type":
		return "network-traffic", true
	case "id":
		return keyNT, true
	case "src_ref":
		if n.src != nil {
			return n.src.Key, true
		}
	case "dst_ref":
		if n.dst != nil {
			return n.dst.Key, true
		}
	}
	return "", false
}

// ipType is the SCO type for an address string, "" when it is none.
func ipType(s string) string {
	if s == "" {
		return ""
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return ""
	}
	if a.Is4() || a.Is4In6() {
		return "ipv4-addr"
	}
	return "ipv6-addr"
}

// fastIPType is ipType for the common case, without parsing IPv4 in full:
// decoders call it for every address of every event.
func fastIPType(s string) string {
	if len(s) < 7 || len(s) > 15 {
		return ipType(s)
	}
	dots := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			dots++
		case c < '0' || c > '9':
			return ipType(s)
		}
	}
	if dots != 3 {
		return ""
	}
	if _, err := netip.ParseAddr(s); err != nil {
		return ""
	}
	return "ipv4-addr"
}

// summaryObject is one SCO of an observed-data summary, as JSON.
type summaryObject struct {
	id string
	m  map[string]any
}

// summarise converts the objects of an observation to STIX JSON objects
// with deterministic ids (§2.9), references rewritten to those ids.
// Objects that cannot be given an id are left out.
func summarise(objs []pattern.Object) []summaryObject {
	out := make([]summaryObject, 0, len(objs))
	idOf := map[string]string{} // observation key -> STIX id
	var later []pattern.Object  // objects with references, after their targets
	for _, o := range objs {
		switch x := o.(type) {
		case *pattern.SCO:
			m := map[string]any{"type": x.T, "spec_version": "2.1"}
			if x.Value != "" {
				m["value"] = x.Value
			}
			if len(x.Hashes) > 0 {
				h := make(map[string]any, len(x.Hashes))
				for k, v := range x.Hashes {
					h[k] = v
				}
				m["hashes"] = h
			}
			for k, v := range x.Props {
				m[k] = v
			}
			if s, ok := withID(m); ok {
				if x.Key != "" {
					idOf[x.Key] = s.id
				}
				out = append(out, s)
			}
		case *pattern.MapObject:
			m := maps.Clone(x.M)
			if id, ok := m["id"].(string); ok && strings.HasPrefix(id, x.Type()+"--") {
				if _, has := m["spec_version"]; !has {
					m["spec_version"] = "2.1"
				}
				out = append(out, summaryObject{id: id, m: m})
				continue
			}
			delete(m, "id")
			if s, ok := withID(m); ok {
				if x.Key != "" {
					idOf[x.Key] = s.id
				}
				out = append(out, s)
			}
		default:
			later = append(later, o)
		}
	}
	for _, o := range later {
		n, ok := o.(*netTraffic)
		if !ok {
			continue
		}
		m := map[string]any{"type": "network-traffic", "spec_version": "2.1", "protocols": nonEmptyProtocols(n)}
		if n.src != nil && idOf[keySrc] != "" {
			m["src_ref"] = idOf[keySrc]
		}
		if n.dst != nil && idOf[keyDst] != "" {
			m["dst_ref"] = idOf[keyDst]
		}
		if m["src_ref"] == nil && m["dst_ref"] == nil {
			continue // §6.12: one of src_ref and dst_ref is required
		}
		if n.hasPorts {
			if validPort(n.srcPort) {
				m["src_port"] = n.srcPort
			}
			if validPort(n.dstPort) {
				m["dst_port"] = n.dstPort
			}
		}
		if n.ext != nil {
			m["extensions"] = n.ext
		}
		if s, ok := withID(m); ok {
			out = append(out, s)
		}
	}
	return out
}

func validPort(p int64) bool { return p >= 0 && p <= 65535 }

func nonEmptyProtocols(n *netTraffic) []any {
	out := make([]any, 0, len(n.protocols)+1)
	for _, p := range n.protocols {
		if p != "" && p != "-" {
			out = append(out, strings.ToLower(p))
		}
	}
	if len(out) == 0 {
		if n.src != nil && n.src.T == "ipv6-addr" || n.dst != nil && n.dst.T == "ipv6-addr" {
			out = append(out, "ipv6")
		} else {
			out = append(out, "ipv4")
		}
	}
	return out
}

func withID(m map[string]any) (summaryObject, bool) {
	id, err := stix.DeterministicID(m)
	if err != nil {
		return summaryObject{}, false
	}
	m["id"] = id
	return summaryObject{id: id, m: m}, true
}
