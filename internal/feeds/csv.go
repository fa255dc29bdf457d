package feeds

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/stix"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// CSVOptions say how to read a CSV or plain-text indicator list.
type CSVOptions struct {
	// Delimiter is ",", ";", "\t" or "|"; empty: detected from the first
	// lines.
	Delimiter string `json:"delimiter,omitempty"`
	// Columns maps fields to columns: "value", "type", "description",
	// "first_seen", "last_seen", "labels" (separated by | or ,),
	// "confidence", "name". A column is a 1-based number or a header
	// name. Without a value column the first column is the value.
	Columns map[string]string `json:"columns,omitempty"`
	// Header says the first row names the columns; nil: detected (the
	// first row's value is not an indicator value).
	Header *bool `json:"header,omitempty"`
	// Encoding is utf-8, utf-16, latin-1 (ISO 8859-1) or windows-1252;
	// empty: a byte order mark decides, else UTF-8 when the input is
	// valid UTF-8, else Windows-1252 (which Latin-1 text reads as).
	Encoding string `json:"encoding,omitempty"`
	// Type is the type of every value when no column gives one (ipv4,
	// ipv6, domain, url, email, md5, sha1, sha256, sha512); empty: each
	// value's type is inferred.
	Type string `json:"type,omitempty"`
	// Source names the list for the deterministic ids of its indicators
	// (a feed's URL, a file's base name): the same value from the same
	// source is the same indicator.
	Source string `json:"source,omitempty"`
	// Text reads one value per line (# starts a comment), no columns.
	Text bool `json:"text,omitempty"`

	// organisation is the importing organisation, part of the ids.
	organisation string
}

// csvNamespace makes indicator ids: UUIDv5(csvNamespace, organisation NUL
// source NUL type NUL value).
var csvNamespace = uuid.MustParse("4c1d5a0e-2f3b-5d6e-8a9b-1c2d3e4f5a6b")

// decode turns r into UTF-8 by opt.Encoding (or by detection).
func decode(r io.Reader, enc string) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	switch strings.ToLower(strings.ReplaceAll(enc, "_", "-")) {
	case "utf-8", "utf8":
		return skipBOM(br), nil
	case "utf-16", "utf16":
		return transform.NewReader(br, unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewDecoder()), nil
	case "latin-1", "latin1", "iso-8859-1", "iso8859-1":
		return transform.NewReader(br, charmap.ISO8859_1.NewDecoder()), nil
	case "windows-1252", "cp1252":
		return transform.NewReader(br, charmap.Windows1252.NewDecoder()), nil
	case "":
	default:
		return nil, fmt.Errorf("encoding %q: want utf-8, utf-16, latin-1 or windows-1252: %w", enc, ErrInvalid)
	}
	head, _ := br.Peek(64 << 10)
	switch {
	case bytes.HasPrefix(head, []byte{0xef, 0xbb, 0xbf}):
		return skipBOM(br), nil
	case bytes.HasPrefix(head, []byte{0xff, 0xfe}), bytes.HasPrefix(head, []byte{0xfe, 0xff}):
		return transform.NewReader(br, unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewDecoder()), nil
	}
	// A cut multi-byte sequence at the end of the peek is not an error.
	valid := head
	for i := 0; i < 3 && len(valid) > 0 && !utf8.Valid(valid); i++ {
		valid = valid[:len(valid)-1]
	}
	if utf8.Valid(valid) {
		return br, nil
	}
	return transform.NewReader(br, charmap.Windows1252.NewDecoder()), nil
}

func skipBOM(br *bufio.Reader) io.Reader {
	if b, _ := br.Peek(3); bytes.Equal(b, []byte{0xef, 0xbb, 0xbf}) {
		_, _ = br.Discard(3)
	}
	return br
}

var (
	md5RE    = regexp.MustCompile(`^[0-9a-fA-F]{32}$`)
	sha1RE   = regexp.MustCompile(`^[0-9a-fA-F]{40}$`)
	sha256RE = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
	sha512RE = regexp.MustCompile(`^[0-9a-fA-F]{128}$`)
	domainRE = regexp.MustCompile(`^(?i)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}\.?$`)
)

// refang undoes the usual defanging: hxxp, [.], (.), [:]//, [@].
func refang(v string) string {
	r := strings.NewReplacer("[.]", ".", "(.)", ".", "{.}", ".", "[dot]", ".", "[:]", ":", "[@]", "@", "[at]", "@")
	v = r.Replace(strings.TrimSpace(v))
	lv := strings.ToLower(v)
	if strings.HasPrefix(lv, "hxxp") {
		v = "http" + v[4:]
	}
	return v
}

// csvTypes are the value types a list can hold, with the pattern each
// makes (STIX 2.1 §9 object paths).
var csvTypes = map[string]func(string) string{
	"ipv4": func(v string) string { return "[ipv4-addr:value = " + quote(v) + "]" },
	"ipv6": func(v string) string { return "[ipv6-addr:value = " + quote(v) + "]" },
	"domain": func(v string) string {
		return "[domain-name:value = " + quote(strings.ToLower(strings.TrimSuffix(v, "."))) + "]"
	},
	"url":    func(v string) string { return "[url:value = " + quote(v) + "]" },
	"email":  func(v string) string { return "[email-addr:value = " + quote(strings.ToLower(v)) + "]" },
	"md5":    func(v string) string { return "[file:hashes.MD5 = " + quote(strings.ToLower(v)) + "]" },
	"sha1":   func(v string) string { return "[file:hashes.'SHA-1' = " + quote(strings.ToLower(v)) + "]" },
	"sha256": func(v string) string { return "[file:hashes.'SHA-256' = " + quote(strings.ToLower(v)) + "]" },
	"sha512": func(v string) string { return "[file:hashes.'SHA-512' = " + quote(strings.ToLower(v)) + "]" },
}

// typeAliases are type names lists use.
var typeAliases = map[string]string{
	"ip": "", "ip-dst": "", "ip-src": "", "ipv4-addr": "ipv4", "ipv6-addr": "ipv6", "hostname": "domain", "fqdn": "domain",
	"domain-name": "domain", "uri": "url", "link": "url", "email-addr": "email", "email-src": "email", "sha-1": "sha1",
	"sha-256": "sha256", "sha-512": "sha512", "hash": "", "": "",
}

// inferType says what a value is ("" when nothing).
func inferType(v string) string {
	if p, err := parsePrefix(v); err == nil {
		if p.Addr().Is4() {
			return "ipv4"
		}
		return "ipv6"
	}
	switch {
	case md5RE.MatchString(v):
		return "md5"
	case sha1RE.MatchString(v):
		return "sha1"
	case sha256RE.MatchString(v):
		return "sha256"
	case sha512RE.MatchString(v):
		return "sha512"
	case strings.Contains(v, "://"):
		if u, err := url.Parse(v); err == nil && u.Host != "" {
			return "url"
		}
	case strings.Contains(v, "@"):
		if a, err := mail.ParseAddress(v); err == nil && a.Address == v {
			return "email"
		}
	case domainRE.MatchString(v):
		return "domain"
	}
	return ""
}

// valueType checks v against the type a column or the options give.
func valueType(v, given string) (string, error) {
	t := strings.ToLower(strings.TrimSpace(given))
	if a, ok := typeAliases[t]; ok {
		t = a
	}
	inferred := inferType(v)
	if t == "" {
		if inferred == "" {
			return "", fmt.Errorf("%q is not an address, domain, URL, e-mail address or hash", v)
		}
		return inferred, nil
	}
	if _, ok := csvTypes[t]; !ok {
		return "", fmt.Errorf("type %q: want ipv4, ipv6, domain, url, email, md5, sha1, sha256 or sha512", given)
	}
	if inferred != t {
		return "", fmt.Errorf("%q is not a valid %s", v, t)
	}
	return t, nil
}

func detectDelimiter(lines []string) rune {
	best, score := ',', -1
	for _, d := range []rune{',', ';', '\t', '|'} {
		n := 0
		for _, l := range lines {
			n += strings.Count(l, string(d))
		}
		if n > score {
			best, score = d, n
		}
	}
	return best
}

// CSVSource converts a CSV or plain-text list to indicators. Each row
// makes one indicator whose id is UUIDv5 of the source, the type and the
// value, so that the same list imported again is the same indicators; the
// columns not mapped are kept, by header name, in x_mitra_csv.
func CSVSource(r io.Reader, opt CSVOptions, now time.Time) (Source, error) {
	text, err := decode(r, opt.Encoding)
	if err != nil {
		return Source{}, err
	}
	if opt.Text {
		one := "1"
		opt.Columns = map[string]string{"value": one}
		f := false
		opt.Header = &f
	}
	volatile := []string{"created", "modified"}
	if opt.Columns["first_seen"] == "" {
		volatile = append(volatile, "valid_from")
	}
	var skipped []Rejection
	src := Source{Volatile: volatile, Skipped: func() []Rejection { return skipped }}
	src.Objects = func(yield func(json.RawMessage, error) bool) {
		br := bufio.NewReader(text)
		var records func() ([]string, int, error)
		if opt.Text {
			n := 0
			records = func() ([]string, int, error) {
				for {
					line, err := br.ReadString('\n')
					if line == "" && err != nil {
						return nil, n, err
					}
					n++
					if i := strings.IndexByte(line, '#'); i >= 0 {
						line = line[:i]
					}
					if line = strings.TrimSpace(line); line != "" {
						return []string{line}, n, nil
					}
				}
			}
		} else {
			head, _ := br.Peek(16 << 10)
			delim := detectDelimiter(strings.SplitN(string(head), "\n", 6))
			if opt.Delimiter != "" {
				delim, _ = utf8.DecodeRuneInString(strings.ReplaceAll(opt.Delimiter, `\t`, "\t"))
			}
			cr := csv.NewReader(br)
			cr.Comma, cr.Comment, cr.FieldsPerRecord, cr.LazyQuotes, cr.TrimLeadingSpace = delim, '#', -1, true, true
			cr.ReuseRecord = false
			records = func() ([]string, int, error) {
				rec, err := cr.Read()
				line, _ := cr.FieldPos(0)
				return rec, line, err
			}
		}
		var header []string
		cols := map[string]int{}
		first := true
		for {
			rec, line, err := records()
			if err == io.EOF {
				return
			}
			if err != nil {
				if pe, ok := err.(*csv.ParseError); ok {
					skipped = append(skipped, Rejection{ID: fmt.Sprintf("line %d", pe.Line), Reason: pe.Err.Error()})
					continue
				}
				yield(nil, err)
				return
			}
			if first {
				first = false
				isHeader := opt.Header != nil && *opt.Header
				if opt.Header == nil {
					v := rec[0]
					if c, ok := opt.Columns["value"]; ok {
						if n, err := strconv.Atoi(c); err == nil && n >= 1 && n <= len(rec) {
							v = rec[n-1]
						} else if err != nil {
							isHeader = true // a named column needs a header
						}
					}
					isHeader = isHeader || inferType(refang(v)) == ""
				}
				if isHeader {
					header = make([]string, len(rec))
					for i, h := range rec {
						header[i] = strings.TrimSpace(h)
					}
				}
				for f, c := range opt.Columns {
					n, err := strconv.Atoi(c)
					if err != nil {
						n = 0
						for i, h := range header {
							if strings.EqualFold(h, c) {
								n = i + 1
							}
						}
					}
					if n < 1 {
						yield(nil, fmt.Errorf("column %q for %s: not a column number nor a header name: %w", c, f, ErrInvalid))
						return
					}
					if n > len(rec) {
						yield(nil, fmt.Errorf("column %d for %s: the list's first row has %d columns: %w", n, f, len(rec), ErrInvalid))
						return
					}
					cols[f] = n - 1
				}
				if _, ok := cols["value"]; !ok {
					cols["value"] = 0
				}
				if isHeader {
					continue
				}
			}
			obj, err := csvIndicator(rec, cols, header, opt, now)
			if err != nil {
				skipped = append(skipped, Rejection{ID: fmt.Sprintf("line %d", line), Reason: err.Error()})
				continue
			}
			if !yield(obj, nil) {
				return
			}
		}
	}
	return src, nil
}

func field(rec []string, cols map[string]int, name string) string {
	i, ok := cols[name]
	if !ok || i >= len(rec) {
		return ""
	}
	return strings.TrimSpace(rec[i])
}

func csvIndicator(rec []string, cols map[string]int, header []string, opt CSVOptions, now time.Time) (json.RawMessage, error) {
	v := refang(field(rec, cols, "value"))
	if v == "" {
		return nil, fmt.Errorf("no value")
	}
	given := opt.Type
	if t := field(rec, cols, "type"); t != "" {
		given = t
	}
	typ, err := valueType(v, given)
	if err != nil {
		return nil, err
	}
	pattern := csvTypes[typ](v)
	id := "indicator--" + uuid.NewSHA1(csvNamespace, []byte(opt.organisation+"\x00"+opt.Source+"\x00"+typ+"\x00"+strings.ToLower(v))).String()
	ts := stix.FormatMicro(now)
	obj := map[string]any{"type": "indicator", "spec_version": "2.1", "id": id, "created": ts, "modified": ts, "valid_from": ts,
		"pattern": pattern, "pattern_type": "stix", "name": v}
	if fs := field(rec, cols, "first_seen"); fs != "" {
		t, err := parseDate(fs)
		if err != nil {
			return nil, fmt.Errorf("first_seen %q: %v", fs, err)
		}
		obj["valid_from"] = stix.FormatMicro(t)
	}
	if ls := field(rec, cols, "last_seen"); ls != "" {
		t, err := parseDate(ls)
		if err != nil {
			return nil, fmt.Errorf("last_seen %q: %v", ls, err)
		}
		obj["valid_until"] = stix.FormatMicro(t)
	}
	if d := field(rec, cols, "description"); d != "" {
		obj["description"] = d
	}
	if n := field(rec, cols, "name"); n != "" {
		obj["name"] = n
	}
	if l := field(rec, cols, "labels"); l != "" {
		var labels []string
		for _, x := range strings.FieldsFunc(l, func(r rune) bool { return r == '|' || r == ',' }) {
			if x = strings.TrimSpace(x); x != "" {
				labels = append(labels, x)
			}
		}
		obj["labels"] = labels
	}
	if c := field(rec, cols, "confidence"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n < 0 || n > 100 {
			return nil, fmt.Errorf("confidence %q: want 0 to 100", c)
		}
		obj["confidence"] = n
	}
	// Unmapped columns are kept, never dropped.
	mapped := map[int]bool{}
	for _, i := range cols {
		mapped[i] = true
	}
	extra := map[string]string{}
	for i, x := range rec {
		if mapped[i] || strings.TrimSpace(x) == "" {
			continue
		}
		name := "column_" + strconv.Itoa(i+1)
		if i < len(header) && header[i] != "" {
			name = header[i]
		}
		extra[name] = x
	}
	if len(extra) > 0 {
		obj["x_mitra_csv"] = extra
	}
	return json.Marshal(obj)
}

func parseDate(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02", "02/01/2006", "02.01.2006"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("not a date (RFC 3339, YYYY-MM-DD, DD/MM/YYYY, DD.MM.YYYY or Unix seconds)")
}
