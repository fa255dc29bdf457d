package feeds

import (
	"encoding/hex"
	"net/netip"
	"strings"

	"github.com/mitra-cert/mitra/internal/pattern"
)

// Kind is the kind of an exportable value.
type Kind uint8

// Exportable value kinds.
const (
	KindIP     Kind = iota + 1 // an IPv4 or IPv6 address or CIDR prefix (netip.Prefix form)
	KindDomain                 // a domain name, lower case, no trailing dot
	KindURL                    // a URL as written
	KindMD5                    // lower-case hex
	KindSHA1
	KindSHA256
	KindEmail
)

var kindNames = [...]string{"", "ip", "domain", "url", "md5", "sha1", "sha256", "email"}

// String names the kind (as in CSV exports).
func (k Kind) String() string { return kindNames[k] }

// Value is one value an indicator's pattern matches exactly.
type Value struct {
	Kind Kind
	V    string
	// Prefix is the parsed form of a KindIP value.
	Prefix netip.Prefix
}

// IsHost reports whether an IP value is a single address.
func (v Value) IsHost() bool { return v.Prefix.Bits() == v.Prefix.Addr().BitLen() }

// valuesOf extracts the values a pattern matches on its own: an OR of
// observations, each an OR of equalities (or IN, or ISSUBSET for IP
// ranges) on an address, domain, URL, e-mail or file hash. A pattern with
// anything else (AND, FOLLOWEDBY, qualifiers, other operators, other
// paths) needs more than a list of values to express: ok is false and the
// indicator is skipped, never exported as a broader or narrower list.
func valuesOf(p *pattern.Pattern) (vals []Value, ok bool) {
	var obs func(n pattern.ObservationExpr) bool
	var comp func(e pattern.CompExpr) bool
	comp = func(e pattern.CompExpr) bool {
		switch x := e.(type) {
		case *pattern.CompBinary:
			return !x.And && comp(x.Left) && comp(x.Right)
		case *pattern.Comparison:
			if x.Negated {
				return false
			}
			switch x.Op {
			case pattern.OpEq:
				v, ok := valueOf(x.Path, x.Value, false)
				vals = append(vals, v)
				return ok
			case pattern.OpIn:
				for _, l := range x.Set {
					v, ok := valueOf(x.Path, l, false)
					if !ok {
						return false
					}
					vals = append(vals, v)
				}
				return len(x.Set) > 0
			case pattern.OpIsSubset:
				v, ok := valueOf(x.Path, x.Value, true)
				vals = append(vals, v)
				return ok
			}
		}
		return false
	}
	obs = func(n pattern.ObservationExpr) bool {
		switch x := n.(type) {
		case *pattern.ObsLeaf:
			return comp(x.Expr)
		case *pattern.ObsBinary:
			return x.Op == pattern.ObsOr && obs(x.Left) && obs(x.Right)
		}
		return false
	}
	if !obs(p.Root) {
		return nil, false
	}
	return vals, true
}

// valueOf reads one comparison constant on a supported path.
func valueOf(path *pattern.ObjectPath, l pattern.Literal, subset bool) (Value, bool) {
	if l.Kind != pattern.LitString || len(path.Steps) == 0 || path.Steps[0].Kind != pattern.StepProp {
		return Value{}, false
	}
	s := l.Str
	if strings.ContainsAny(s, "\x00\r\n\t") || s == "" {
		return Value{}, false
	}
	prop := path.Steps[0].Name
	switch path.Type {
	case "ipv4-addr", "ipv6-addr":
		if prop != "value" || len(path.Steps) != 1 {
			return Value{}, false
		}
		pf, err := netip.ParsePrefix(s)
		if err != nil {
			if subset {
				return Value{}, false
			}
			a, err := netip.ParseAddr(s)
			if err != nil {
				return Value{}, false
			}
			pf = netip.PrefixFrom(a, a.BitLen())
		}
		if (path.Type == "ipv4-addr") != pf.Addr().Is4() || pf.Addr().Zone() != "" {
			return Value{}, false
		}
		pf = pf.Masked()
		v := pf.Addr().String()
		if pf.Bits() != pf.Addr().BitLen() {
			v = pf.String()
		}
		return Value{Kind: KindIP, V: v, Prefix: pf}, true
	case "domain-name":
		if subset || prop != "value" || len(path.Steps) != 1 {
			return Value{}, false
		}
		d := strings.TrimSuffix(strings.ToLower(s), ".")
		if !validDomain(d) {
			return Value{}, false
		}
		return Value{Kind: KindDomain, V: d}, true
	case "url":
		if subset || prop != "value" || len(path.Steps) != 1 || strings.ContainsAny(s, " \"") {
			return Value{}, false
		}
		return Value{Kind: KindURL, V: s}, true
	case "email-addr":
		if subset || prop != "value" || len(path.Steps) != 1 || !strings.Contains(s, "@") || strings.ContainsAny(s, " \",;") {
			return Value{}, false
		}
		return Value{Kind: KindEmail, V: strings.ToLower(s)}, true
	case "file":
		if subset || prop != "hashes" || len(path.Steps) != 2 || path.Steps[1].Kind != pattern.StepProp {
			return Value{}, false
		}
		var k Kind
		var n int
		switch strings.ToUpper(strings.ReplaceAll(path.Steps[1].Name, "-", "")) {
		case "MD5":
			k, n = KindMD5, 32
		case "SHA1":
			k, n = KindSHA1, 40
		case "SHA256":
			k, n = KindSHA256, 64
		default:
			return Value{}, false
		}
		h := strings.ToLower(s)
		if len(h) != n {
			return Value{}, false
		}
		if _, err := hex.DecodeString(h); err != nil {
			return Value{}, false
		}
		return Value{Kind: k, V: h}, true
	}
	return Value{}, false
}

// validDomain: LDH labels of 1 to 63 octets (RFC 1035 §2.3.1, with
// underscores, which real names use), at most 253 octets in all.
func validDomain(d string) bool {
	if d == "" || len(d) > 253 {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
