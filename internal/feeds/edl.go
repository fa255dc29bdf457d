package feeds

import (
	"bytes"
	"slices"
	"strings"
)

// renderPlain is a plain blocklist: every exportable value, one a line,
// sorted and without duplicates.
func renderPlain(sel *Selection, _ RenderOptions, skip func(string)) ([]File, error) {
	seen := map[string]bool{}
	for _, ind := range sel.Indicators {
		vals, ok := listed(ind, "plain", skip, KindIP, KindDomain, KindURL, KindMD5, KindSHA1, KindSHA256, KindEmail)
		if !ok {
			continue
		}
		for _, v := range vals {
			seen[v.V] = true
		}
	}
	return []File{{Name: "blocklist.txt", ContentType: "text/plain; charset=utf-8", Data: lines(seen)}}, nil
}

// renderEDL is a firewall external dynamic list of one kind (the form
// Palo Alto Networks and Fortinet firewalls fetch): addresses and CIDR
// ranges, domains, or URLs without their scheme, one a line.
func renderEDL(kind Kind) renderer {
	name := "edl-" + kind.String()
	return func(sel *Selection, _ RenderOptions, skip func(string)) ([]File, error) {
		seen := map[string]bool{}
		for _, ind := range sel.Indicators {
			vals, ok := listed(ind, name, skip, kind)
			if !ok {
				continue
			}
			for _, v := range vals {
				s := v.V
				if kind == KindURL {
					s = stripScheme(s)
				}
				seen[s] = true
			}
		}
		return []File{{Name: name + ".txt", ContentType: "text/plain; charset=utf-8", Data: lines(seen)}}, nil
	}
}

// stripScheme drops "scheme://" from a URL: firewall URL lists and Zeek's
// Intel::URL take URLs without it.
func stripScheme(u string) string {
	if i := strings.Index(u, "://"); i > 0 && !strings.ContainsAny(u[:i], "/?#") {
		return u[i+3:]
	}
	return u
}

func lines(set map[string]bool) []byte {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b bytes.Buffer
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('\n')
	}
	return b.Bytes()
}
