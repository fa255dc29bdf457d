package feeds

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"net/url"
	"slices"
	"strings"

	"github.com/mitra-cert/mitra/internal/access"
)

// Suricata export: one rules file and, for large lists, dataset and list
// files beside it (loaded from Suricata's data directory). Values of one
// kind and TLP are grouped:
//   - domains: below RenderOptions.DatasetMin, rules per value on dns.query and
//     tls.sni; from it, three rules (dns.query, tls.sni, http.host) that
//     look the name up in a string dataset (dataset:isset);
//   - addresses and ranges: below DatasetMin, rules per value; from it,
//     address-group rules of at most 500 entries, each value always in
//     the same bucket (by hash) while the bucket count stays;
//   - file hashes: one filemd5/filesha1/filesha256 rule per list file
//     (Suricata's file-hash keywords take lists only);
//   - URLs: one rule per value (http.host and http.uri.raw).
//
// SIDs are stable: a per-value rule's SID is derived from the indicator id
// and the value; a list rule's from its kind, TLP, slot and bucket. Rule
// metadata carries the indicator id (per-value rules, and hash lists of
// fewer than DatasetMin indicators) or the list name, and the TLP.

const (
	sidList     = 1_900_000_000 // list rules: + tlp*100000 + slot*10000 + bucket
	sidValue    = 2_000_000_000 // per-value rules: + hash mod sidValueSpan
	sidValueSpn = 1_000_000_000
	ipBucket    = 500
)

// list rule slots.
const (
	slotDNS = iota
	slotTLS
	slotHTTP
	slotIPSrc
	slotIPDst
	slotMD5
	slotSHA1
	slotSHA256
)

type suriGroup struct {
	kind   Kind
	tlp    access.TLP
	values []string
	inds   []*Indicator // parallel to values
}

type suriWriter struct {
	b    bytes.Buffer
	used map[uint32]bool
}

// valueSID is the per-value SID: a hash of the indicator, rule slot and
// value, probing forward past a SID already used in this export.
func (w *suriWriter) valueSID(id string, slot int, value string) uint32 {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s|%d|%s", id, slot, value)
	sid := uint32(sidValue) + h.Sum32()%sidValueSpn
	for w.used[sid] {
		sid++
		if sid >= sidValue+sidValueSpn {
			sid = sidValue
		}
	}
	w.used[sid] = true
	return sid
}

// tlpMeta is the TLP level as one metadata word: "clear", "green", "amber", "amber_strict", "red".
func tlpMeta(t access.TLP) string {
	return strings.ReplaceAll(strings.TrimPrefix(strings.ToLower(t.String()), "tlp:"), "+", "_")
}

// suriText makes free text safe in msg: no quotes, semicolons or
// backslashes.
func suriText(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '"', ';', '\\', '\n', '\r', '\t':
			return ' '
		}
		return r
	}, s)
}

// suriContent escapes a content match: bytes Suricata's content syntax
// reserves (";", "\"", "\\", "|") and non-printable bytes in |hex| form.
func suriContent(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == ';' || c == '"' || c == '\\' || c == '|' || c == ':' {
			fmt.Fprintf(&b, "|%02x|", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func (w *suriWriter) rule(header, msg, body string, sid uint32, meta ...string) {
	fmt.Fprintf(&w.b, "alert %s (msg:\"%s\"; %ssid:%d; rev:1; metadata: %s;)\n", header, suriText(msg), body, sid, strings.Join(meta, ", "))
}

func renderSuricata(sel *Selection, o RenderOptions, skip func(string)) ([]File, error) {
	dsMin := o.DatasetMin
	if dsMin <= 0 {
		dsMin = 20
	}
	groups := map[[2]int]*suriGroup{}
	var urls []*Indicator
	for _, ind := range sel.Indicators {
		vals, ok := listed(ind, "suricata", skip, KindIP, KindDomain, KindURL, KindMD5, KindSHA1, KindSHA256)
		if !ok {
			continue
		}
		if slices.ContainsFunc(vals, func(v Value) bool {
			_, _, ok := splitHTTPURL(v.V)
			return v.Kind == KindURL && !ok
		}) {
			skip("non-HTTP URL values not expressible in suricata")
			continue
		}
		for _, v := range vals {
			if v.Kind == KindURL {
				continue
			}
			k := [2]int{int(v.Kind), int(ind.TLP)}
			g := groups[k]
			if g == nil {
				g = &suriGroup{kind: v.Kind, tlp: ind.TLP}
				groups[k] = g
			}
			g.values = append(g.values, v.V)
			g.inds = append(g.inds, ind)
		}
		if slices.ContainsFunc(vals, func(v Value) bool { return v.Kind == KindURL }) {
			urls = append(urls, ind)
		}
	}
	w := &suriWriter{used: map[uint32]bool{}}
	w.b.WriteString("# Mitra indicators for Suricata. Dataset files (dataset load) go in Suricata's data directory, file-hash lists (filemd5, filesha1, filesha256) beside the rules.\n")
	var files []File
	keys := make([][2]int, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]int) int {
		if a[0] != b[0] {
			return a[0] - b[0]
		}
		return a[1] - b[1]
	})
	for _, k := range keys {
		g := groups[k]
		tlp := tlpMeta(g.tlp)
		listBase := uint32(sidList + int(g.tlp)*100000)
		name := "mitra-" + g.kind.String() + "-" + tlp
		switch g.kind {
		case KindDomain:
			if len(g.values) < dsMin {
				for i, d := range g.values {
					ind := g.inds[i]
					c := suriContent(d)
					w.rule("dns any any -> any any", "Mitra "+tlp+" domain "+ind.ID, "dns.query; content:\""+c+"\"; nocase; startswith; endswith; ",
						w.valueSID(ind.ID, slotDNS, d), "mitra_indicator "+ind.ID, "tlp "+tlp)
					w.rule("tls any any -> any any", "Mitra "+tlp+" domain "+ind.ID, "tls.sni; content:\""+c+"\"; nocase; startswith; endswith; ",
						w.valueSID(ind.ID, slotTLS, d), "mitra_indicator "+ind.ID, "tlp "+tlp)
				}
				continue
			}
			var data bytes.Buffer
			for _, d := range dedupSorted(g.values) {
				// String datasets are loaded base64-encoded, one a line.
				data.WriteString(base64.StdEncoding.EncodeToString([]byte(d)))
				data.WriteByte('\n')
			}
			files = append(files, File{Name: name + ".lst", ContentType: "text/plain; charset=utf-8", Data: data.Bytes()})
			ds := "dataset:isset," + name + ",type string,load " + name + ".lst; "
			for _, r := range []struct {
				slot   int
				header string
				buf    string
			}{{slotDNS, "dns any any -> any any", "dns.query"}, {slotTLS, "tls any any -> any any", "tls.sni"}, {slotHTTP, "http any any -> any any", "http.host"}} {
				w.rule(r.header, fmt.Sprintf("Mitra %s domain list (%d)", tlp, len(g.values)), r.buf+"; "+ds,
					listBase+uint32(r.slot*10000), "mitra_list "+name, "tlp "+tlp)
			}
		case KindIP:
			if len(g.values) < dsMin {
				for i, a := range g.values {
					ind := g.inds[i]
					w.rule("ip ["+a+"] any -> any any", "Mitra "+tlp+" address "+ind.ID, "", w.valueSID(ind.ID, slotIPSrc, a), "mitra_indicator "+ind.ID, "tlp "+tlp)
					w.rule("ip any any -> ["+a+"] any", "Mitra "+tlp+" address "+ind.ID, "", w.valueSID(ind.ID, slotIPDst, a), "mitra_indicator "+ind.ID, "tlp "+tlp)
				}
				continue
			}
			vals := dedupSorted(g.values)
			nb := 1
			for nb*ipBucket < len(vals) {
				nb *= 2
			}
			buckets := make([][]string, nb)
			for _, a := range vals {
				h := fnv.New32a()
				h.Write([]byte(a))
				i := int(h.Sum32() % uint32(nb))
				buckets[i] = append(buckets[i], a)
			}
			for i, bk := range buckets {
				if len(bk) == 0 {
					continue
				}
				list := "[" + strings.Join(bk, ",") + "]"
				msg := fmt.Sprintf("Mitra %s address list %d/%d", tlp, i+1, nb)
				w.rule("ip "+list+" any -> any any", msg, "", listBase+uint32(slotIPSrc*10000+i), "mitra_list "+name, "tlp "+tlp)
				w.rule("ip any any -> "+list+" any", msg, "", listBase+uint32(slotIPDst*10000+i), "mitra_list "+name, "tlp "+tlp)
			}
		default: // file hashes
			kw, slot := "filemd5", slotMD5
			switch g.kind {
			case KindSHA1:
				kw, slot = "filesha1", slotSHA1
			case KindSHA256:
				kw, slot = "filesha256", slotSHA256
			}
			files = append(files, File{Name: name + ".lst", ContentType: "text/plain; charset=utf-8", Data: []byte(strings.Join(dedupSorted(g.values), "\n") + "\n")})
			meta := []string{"mitra_list " + name, "tlp " + tlp}
			if len(g.values) < dsMin {
				for _, id := range dedupSorted(indIDs(g.inds)) {
					meta = append(meta, "mitra_indicator "+id)
				}
			}
			w.rule("ip any any -> any any", fmt.Sprintf("Mitra %s %s list (%d)", tlp, g.kind, len(g.values)), kw+":"+name+".lst; ",
				listBase+uint32(slot*10000), meta...)
		}
	}
	for _, ind := range urls {
		tlp := tlpMeta(ind.TLP)
		for _, v := range ind.Values {
			host, uri, _ := splitHTTPURL(v.V)
			w.rule("http any any -> any any", "Mitra "+tlp+" URL "+ind.ID,
				"http.host; content:\""+suriContent(host)+"\"; nocase; startswith; endswith; http.uri.raw; content:\""+suriContent(uri)+"\"; startswith; endswith; ",
				w.valueSID(ind.ID, slotHTTP, v.V), "mitra_indicator "+ind.ID, "tlp "+tlp)
		}
	}
	return append([]File{{Name: "mitra.rules", ContentType: "text/plain; charset=utf-8", Data: w.b.Bytes()}}, files...), nil
}

// splitHTTPURL is the host (without port) and raw request URI of an
// http(s) URL.
func splitHTTPURL(s string) (host, uri string, ok bool) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil {
		return "", "", false
	}
	uri = u.EscapedPath()
	if uri == "" {
		uri = "/"
	}
	if u.RawQuery != "" {
		uri += "?" + u.RawQuery
	}
	return strings.ToLower(u.Hostname()), uri, true
}

func dedupSorted(v []string) []string {
	out := slices.Clone(v)
	slices.Sort(out)
	return slices.Compact(out)
}

func indIDs(inds []*Indicator) []string {
	out := make([]string, len(inds))
	for i, ind := range inds {
		out[i] = ind.ID
	}
	return out
}
