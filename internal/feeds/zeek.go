package feeds

import (
	"bytes"
	"strings"
)

// zeekType is the Intel framework's type of a value (Zeek's
// base/frameworks/intel/main.zeek, Intel::Type).
func zeekType(v Value) string {
	switch v.Kind {
	case KindIP:
		if v.IsHost() {
			return "Intel::ADDR"
		}
		return "Intel::SUBNET"
	case KindDomain:
		return "Intel::DOMAIN"
	case KindURL:
		return "Intel::URL"
	case KindEmail:
		return "Intel::EMAIL"
	default:
		return "Intel::FILE_HASH"
	}
}

// zeekHeader is the Intel file header: the input framework's ASCII reader
// takes the field names from the "#fields" line, tab-separated.
const zeekHeader = "#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\tmeta.url\n"

// renderZeek is a Zeek Intel framework file (loaded through
// Intel::read_files): one line per value, tab-separated, "-" for an unset
// field. meta.desc carries the indicator id, its TLP and its name; URLs
// lose their scheme, as Intel::URL wants.
func renderZeek(sel *Selection, _ RenderOptions, skip func(string)) ([]File, error) {
	var b bytes.Buffer
	b.WriteString(zeekHeader)
	for _, ind := range sel.Indicators {
		vals, ok := listed(ind, "zeek", skip, KindIP, KindDomain, KindURL, KindMD5, KindSHA1, KindSHA256, KindEmail)
		if !ok {
			continue
		}
		desc := ind.ID + " " + ind.TLP.String()
		if ind.Name != "" {
			desc += " " + zeekField(ind.Name)
		}
		for _, v := range vals {
			s := v.V
			if v.Kind == KindURL {
				s = stripScheme(s)
			}
			b.WriteString(s)
			b.WriteByte('\t')
			b.WriteString(zeekType(v))
			b.WriteString("\tmitra\t")
			b.WriteString(desc)
			b.WriteString("\t-\n")
		}
	}
	return []File{{Name: "mitra.intel", ContentType: "text/plain; charset=utf-8", Data: b.Bytes()}}, nil
}

// zeekField makes free text safe inside a field: no tabs or line breaks,
// and not one of the reader's markers for unset or empty fields.
func zeekField(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}
