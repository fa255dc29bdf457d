package feeds

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// renderRPZ is a DNS response policy zone (draft-vixie-dnsop-dns-rpz):
// each domain and its subdomains answer NXDOMAIN (CNAME to the root), and
// answers carrying a listed address are rewritten the same way (rpz-ip
// triggers). The serial is the newest indicator modification, so an
// unchanged selection gives a byte-identical zone.
func renderRPZ(sel *Selection, o RenderOptions, skip func(string)) ([]File, error) {
	origin := o.RPZOrigin
	if origin == "" {
		origin = "rpz.mitra."
	}
	if !strings.HasSuffix(origin, ".") {
		origin += "."
	}
	owners := map[string]string{} // owner name (relative) -> comment
	for _, ind := range sel.Indicators {
		vals, ok := listed(ind, "rpz", skip, KindIP, KindDomain)
		if !ok {
			continue
		}
		note := ind.ID + " " + ind.TLP.String()
		for _, v := range vals {
			var names []string
			if v.Kind == KindDomain {
				names = []string{v.V, "*." + v.V}
			} else {
				names = []string{rpzIP(v.Prefix)}
			}
			for _, n := range names {
				if _, dup := owners[n]; !dup {
					owners[n] = note
				}
			}
		}
	}
	keys := make([]string, 0, len(owners))
	for k := range owners {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	serial := uint32(1)
	if s := sel.Newest.Unix(); s > 1 && s < 1<<32 {
		serial = uint32(s)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "$ORIGIN %s\n$TTL 300\n", origin)
	fmt.Fprintf(&b, "@ IN SOA localhost. hostmaster.localhost. %d 3600 600 86400 300\n@ IN NS localhost.\n", serial)
	for _, k := range keys {
		b.WriteString(k)
		b.WriteString(" IN CNAME . ; ")
		b.WriteString(owners[k])
		b.WriteByte('\n')
	}
	return []File{{Name: "mitra.rpz", ContentType: "text/dns; charset=utf-8", Data: b.Bytes()}}, nil
}

// rpzIP is the rpz-ip trigger name of a prefix: the prefix length, then
// the address's labels in reverse order (IPv4 octets; IPv6 16-bit groups
// in hex with the longest run of zero groups written "zz").
func rpzIP(p netip.Prefix) string {
	a := p.Addr()
	var labels []string
	if a.Is4() {
		b := a.As4()
		for i := 3; i >= 0; i-- {
			labels = append(labels, strconv.Itoa(int(b[i])))
		}
	} else {
		b := a.As16()
		groups := make([]int, 8)
		for i := range groups {
			groups[i] = int(b[2*i])<<8 | int(b[2*i+1])
		}
		// Longest run of zero groups (the first when tied), at least two.
		bestAt, bestLen := -1, 1
		for i := 0; i < 8; {
			if groups[i] != 0 {
				i++
				continue
			}
			j := i
			for j < 8 && groups[j] == 0 {
				j++
			}
			if j-i > bestLen {
				bestAt, bestLen = i, j-i
			}
			i = j
		}
		for i := 7; i >= 0; i-- {
			if bestAt >= 0 && i >= bestAt && i < bestAt+bestLen {
				if i == bestAt {
					labels = append(labels, "zz")
				}
				continue
			}
			labels = append(labels, strconv.FormatInt(int64(groups[i]), 16))
		}
	}
	return strconv.Itoa(p.Bits()) + "." + strings.Join(labels, ".") + ".rpz-ip"
}
