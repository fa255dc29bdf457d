package detect

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mitra-cert/mitra/internal/pattern"
)

// zkind is the Zeek log a record comes from.
type zkind uint8

const (
	zUnknown zkind = iota
	zConn
	zDNS
	zHTTP
	zSSL
	zFiles
)

// zeekKindOf maps a log path ("dns", "conn"...) to its kind.
func zeekKindOf(path string) zkind {
	switch path {
	case "conn":
		return zConn
	case "dns":
		return zDNS
	case "http":
		return zHTTP
	case "ssl":
		return zSSL
	case "files":
		return zFiles
	}
	return zUnknown
}

// zeekRec holds the fields of the five supported logs that become
// observables. JSON logs decode into it; TSV columns are copied into it.
type zeekRec struct {
	Path         string          `json:"_path"`
	TS           json.RawMessage `json:"ts"`
	OrigH        string          `json:"id.orig_h"`
	OrigP        json.Number     `json:"id.orig_p"`
	RespH        string          `json:"id.resp_h"`
	RespP        json.Number     `json:"id.resp_p"`
	Proto        string          `json:"proto"`
	Service      string          `json:"service"`
	Query        string          `json:"query"`
	Answers      []string        `json:"answers"`
	Host         string          `json:"host"`
	URI          string          `json:"uri"`
	Method       string          `json:"method"`
	UserAgent    string          `json:"user_agent"`
	ServerName   string          `json:"server_name"`
	CertChainFps []string        `json:"cert_chain_fps"`
	FUID         string          `json:"fuid"`
	TxHosts      []string        `json:"tx_hosts"`
	RxHosts      []string        `json:"rx_hosts"`
	MimeType     string          `json:"mime_type"`
	Filename     string          `json:"filename"`
	TotalBytes   json.Number     `json:"total_bytes"`
	MD5          string          `json:"md5"`
	SHA1         string          `json:"sha1"`
	SHA256       string          `json:"sha256"`

	ts string // TSV: the ts column as written
}

// guessKind infers the log of a JSON record without _path.
func (r *zeekRec) guessKind() zkind {
	switch {
	case r.Query != "":
		return zDNS
	case r.FUID != "" && (r.MD5 != "" || r.SHA1 != "" || r.SHA256 != "" || r.MimeType != "" || r.Filename != "" || r.TxHosts != nil):
		return zFiles
	case r.Method != "" || r.URI != "" || r.UserAgent != "":
		return zHTTP
	case r.ServerName != "" || r.CertChainFps != nil:
		return zSSL
	}
	return zConn
}

// time reads ts: seconds since the epoch with a fraction, or (JSON logs
// written with JSON::TS_ISO8601) an RFC 3339 string.
func (r *zeekRec) time() (time.Time, error) {
	s := r.ts
	if r.TS != nil {
		s = string(r.TS)
		if strings.HasPrefix(s, `"`) {
			var v string
			if err := json.Unmarshal(r.TS, &v); err != nil {
				return time.Time{}, fmt.Errorf("ts: %w", err)
			}
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return time.Time{}, fmt.Errorf("ts: %w", err)
			}
			return t, nil
		}
	}
	return parseEpoch(s)
}

var errNoTS = errors.New("ts: missing")

// parseEpoch reads "1700000000.123456" exactly (no float rounding).
func parseEpoch(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errNoTS
	}
	sec, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || n < 0 {
		if f, ferr := strconv.ParseFloat(s, 64); ferr == nil && f >= 0 && f < 1e11 {
			return time.Unix(0, int64(f*1e9)).UTC(), nil
		}
		return time.Time{}, fmt.Errorf("ts: %q is not seconds since the epoch", s)
	}
	var ns int64
	if frac != "" {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		f, err := strconv.ParseInt(frac, 10, 64)
		if err != nil || f < 0 {
			return time.Time{}, fmt.Errorf("ts: %q is not seconds since the epoch", s)
		}
		for i := len(frac); i < 9; i++ {
			f *= 10
		}
		ns = f
	}
	return time.Unix(n, ns).UTC(), nil
}

// Shared, read-only protocol lists (network-traffic protocols, §6.12).
var (
	protoTCP    = []string{"tcp"}
	protoUDP    = []string{"udp"}
	protoICMP   = []string{"icmp"}
	protoUDPDNS = []string{"udp", "dns"}
	protoTCPDNS = []string{"tcp", "dns"}
	protoHTTP   = []string{"tcp", "http"}
	protoTLS    = []string{"tcp", "tls"}
)

// protocols is the protocol list for a transport and an application
// protocol, shared for the common pairs.
func protocols(proto, app string) []string {
	proto = strings.ToLower(proto)
	switch app {
	case "":
		switch proto {
		case "tcp":
			return protoTCP
		case "udp":
			return protoUDP
		case "icmp":
			return protoICMP
		case "":
			return nil
		}
		return []string{proto}
	case "dns":
		switch proto {
		case "udp", "":
			return protoUDPDNS
		case "tcp":
			return protoTCPDNS
		}
	case "http":
		if proto == "tcp" || proto == "" {
			return protoHTTP
		}
	case "tls", "ssl":
		if proto == "tcp" || proto == "" {
			return protoTLS
		}
	}
	out := []string{}
	if proto != "" {
		out = append(out, proto)
	}
	for _, s := range strings.Split(strings.ToLower(app), ",") {
		if s == "ssl" {
			s = "tls"
		}
		if s != "" && s != "-" {
			out = append(out, s)
		}
	}
	return out
}

func parsePort(n json.Number) (int64, bool) {
	if n == "" {
		return 0, false
	}
	v, err := strconv.ParseInt(string(n), 10, 64)
	return v, err == nil && v >= 0 && v <= 65535
}

// buildZeek turns a record into an observation.
func buildZeek(kind zkind, r *zeekRec, a *arena) (*pattern.Observation, error) {
	t, err := r.time()
	if err != nil {
		return nil, err
	}
	sp, ok1 := parsePort(r.OrigP)
	dp, ok2 := parsePort(r.RespP)
	a.begin()
	switch kind {
	case zDNS:
		a.addFlow(r.OrigH, r.RespH, sp, dp, ok1 && ok2, protocols(r.Proto, "dns"))
		a.addDomain(r.Query)
		for _, ans := range r.Answers {
			if a.addIP(ans, "") == nil {
				a.addDomain(ans)
			}
		}
	case zHTTP:
		n := a.addFlow(r.OrigH, r.RespH, sp, dp, ok1 && ok2, protoHTTP)
		host := r.Host
		if host != "" && ipType(stripPort(host)) == "" {
			a.addDomain(stripPort(host))
		}
		if host != "" && r.URI != "" {
			u := r.URI
			if !strings.Contains(u, "://") {
				u = "http://" + host + u
			}
			a.add(a.sco("url", "", u))
		}
		if n != nil && (r.Method != "" || r.URI != "" || r.UserAgent != "") {
			n.ext = httpExt(r.Method, r.URI, host, r.UserAgent)
		}
	case zSSL:
		a.addFlow(r.OrigH, r.RespH, sp, dp, ok1 && ok2, protoTLS)
		a.addDomain(r.ServerName)
		if len(r.CertChainFps) > 0 && isHex(r.CertChainFps[0], 64) {
			c := a.sco("x509-certificate", "", "")
			c.Hashes = map[string]string{"SHA-256": strings.ToLower(r.CertChainFps[0])}
			a.add(c)
		}
	case zFiles:
		if r.OrigH != "" || r.RespH != "" {
			a.addFlow(r.OrigH, r.RespH, sp, dp, ok1 && ok2, nil)
		}
		for _, h := range r.TxHosts {
			a.addIP(h, "")
		}
		for _, h := range r.RxHosts {
			a.addIP(h, "")
		}
		addFile(a, r.Filename, r.MimeType, r.MD5, r.SHA1, r.SHA256, r.TotalBytes)
	default:
		a.addFlow(r.OrigH, r.RespH, sp, dp, ok1 && ok2, protocols(r.Proto, r.Service))
	}
	return a.end(t), nil
}

// addFile adds a file SCO when the record names or hashes one.
func addFile(a *arena, name, mime, md5, sha1, sha256 string, size json.Number) {
	h := map[string]string{}
	if isHex(md5, 32) {
		h["MD5"] = strings.ToLower(md5)
	}
	if isHex(sha1, 40) {
		h["SHA-1"] = strings.ToLower(sha1)
	}
	if isHex(sha256, 64) {
		h["SHA-256"] = strings.ToLower(sha256)
	}
	if len(h) == 0 && name == "" {
		return
	}
	f := a.sco("file", "", "")
	if len(h) > 0 {
		f.Hashes = h
	}
	props := map[string]any{}
	if name != "" {
		props["name"] = name
	}
	if mime != "" {
		props["mime_type"] = mime
	}
	if n, err := strconv.ParseInt(string(size), 10, 64); err == nil && n >= 0 {
		props["size"] = n
	}
	if len(props) > 0 {
		f.Props = props
	}
	a.add(f)
}

func httpExt(method, uri, host, ua string) map[string]any {
	req := map[string]any{}
	if method != "" {
		req["request_method"] = strings.ToLower(method)
	}
	if uri != "" {
		req["request_value"] = uri
	}
	hdr := map[string]any{}
	// Header values are lists (§6.12.2: a dictionary of string lists).
	if host != "" {
		hdr["Host"] = []string{host}
	}
	if ua != "" {
		hdr["User-Agent"] = []string{ua}
	}
	if len(hdr) > 0 {
		req["request_header"] = hdr
	}
	if req["request_method"] == nil || req["request_value"] == nil {
		return nil // both are required by §6.12.2
	}
	return map[string]any{"http-request-ext": req}
}

func stripPort(host string) string {
	if i := strings.LastIndexByte(host, ':'); i > 0 && !strings.Contains(host[:i], ":") {
		return host[:i]
	}
	return host
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ---- TSV --------------------------------------------------------------------

// zeekHeader is the state of a Zeek TSV log after its '#' lines.
type zeekHeader struct {
	sep, setSep  string
	empty, unset string
	path         string
	fields       []string
}

func newZeekHeader() *zeekHeader {
	return &zeekHeader{sep: "\t", setSep: ",", empty: "(empty)", unset: "-"}
}

// directive applies one '#' line; it reports whether a new #fields line
// was read (the decoder must be rebuilt).
func (h *zeekHeader) directive(line string) (bool, error) {
	if strings.HasPrefix(line, "#separator ") {
		s, err := unescapeZeek(strings.TrimPrefix(line, "#separator "))
		if err != nil || s == "" {
			return false, fmt.Errorf("bad #separator line")
		}
		h.sep = s
		return false, nil
	}
	name, rest, _ := strings.Cut(line[1:], h.sep)
	switch name {
	case "set_separator":
		h.setSep = rest
	case "empty_field":
		h.empty = rest
	case "unset_field":
		h.unset = rest
	case "path":
		h.path = rest
	case "fields":
		h.fields = strings.Split(rest, h.sep)
		return true, nil
	}
	return false, nil
}

// tsvDecoder decodes the lines of one Zeek TSV log section.
type tsvDecoder struct {
	h    zeekHeader
	kind zkind
	col  [zfCount]int // column of each field, -1 when absent
	last int          // greatest column needed
}

type zfield uint8

const (
	zfTS zfield = iota
	zfOrigH
	zfOrigP
	zfRespH
	zfRespP
	zfProto
	zfService
	zfQuery
	zfAnswers
	zfHost
	zfURI
	zfMethod
	zfUserAgent
	zfServerName
	zfCertChainFps
	zfFUID
	zfTxHosts
	zfRxHosts
	zfMimeType
	zfFilename
	zfTotalBytes
	zfMD5
	zfSHA1
	zfSHA256
	zfCount
)

var zeekFieldNames = [zfCount]string{
	"ts", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service", "query", "answers",
	"host", "uri", "method", "user_agent", "server_name", "cert_chain_fps", "fuid", "tx_hosts", "rx_hosts",
	"mime_type", "filename", "total_bytes", "md5", "sha1", "sha256",
}

func newTSVDecoder(h *zeekHeader, hint zkind) (*tsvDecoder, error) {
	d := &tsvDecoder{h: *h, kind: zeekKindOf(h.path), last: -1}
	if d.kind == zUnknown {
		d.kind = hint
	}
	for i := range d.col {
		d.col[i] = -1
	}
	for c, name := range h.fields {
		for f, fn := range zeekFieldNames {
			if fn == name {
				d.col[f] = c
				d.last = max(d.last, c)
			}
		}
	}
	if d.col[zfTS] < 0 {
		return nil, errors.New("#fields has no ts column")
	}
	if d.kind == zUnknown {
		switch {
		case d.col[zfQuery] >= 0:
			d.kind = zDNS
		case d.col[zfFUID] >= 0:
			d.kind = zFiles
		case d.col[zfURI] >= 0:
			d.kind = zHTTP
		case d.col[zfServerName] >= 0:
			d.kind = zSSL
		default:
			d.kind = zConn
		}
	}
	return d, nil
}

func (d *tsvDecoder) decode(line string, a *arena) (*pattern.Observation, error) {
	if line == "" {
		return nil, nil
	}
	f := a.fields[:0]
	sep := d.h.sep
	for len(f) <= d.last {
		i := strings.Index(line, sep)
		if i < 0 {
			f = append(f, line)
			break
		}
		f = append(f, line[:i])
		line = line[i+len(sep):]
	}
	a.fields = f
	if len(f) <= d.last {
		return nil, fmt.Errorf("%d fields, the #fields header names %d", len(f), len(d.h.fields))
	}
	r := &a.zeek
	*r = zeekRec{}
	var err error
	get := func(z zfield) string {
		c := d.col[z]
		if c < 0 {
			return ""
		}
		v := f[c]
		if v == d.h.unset || v == d.h.empty {
			return ""
		}
		if strings.IndexByte(v, '\\') >= 0 {
			u, e := unescapeZeek(v)
			if e != nil && err == nil {
				err = fmt.Errorf("%s: %w", zeekFieldNames[z], e)
			}
			return u
		}
		return v
	}
	set := func(z zfield) []string {
		c := d.col[z]
		if c < 0 {
			return nil
		}
		v := f[c]
		if v == d.h.unset || v == d.h.empty || v == "" {
			return nil
		}
		out := a.strs[len(a.strs):]
		for _, e := range strings.Split(v, d.h.setSep) {
			if strings.IndexByte(e, '\\') >= 0 {
				u, ue := unescapeZeek(e)
				if ue != nil && err == nil {
					err = fmt.Errorf("%s: %w", zeekFieldNames[z], ue)
				}
				e = u
			}
			out = append(out, e)
		}
		a.strs = out[len(out):]
		return out
	}
	a.strs = a.strs[:0]
	r.ts = get(zfTS)
	r.OrigH, r.RespH = get(zfOrigH), get(zfRespH)
	r.OrigP, r.RespP = json.Number(get(zfOrigP)), json.Number(get(zfRespP))
	r.Proto = get(zfProto)
	switch d.kind {
	case zConn:
		r.Service = get(zfService)
	case zDNS:
		r.Query = get(zfQuery)
		r.Answers = set(zfAnswers)
	case zHTTP:
		r.Host, r.URI, r.Method, r.UserAgent = get(zfHost), get(zfURI), get(zfMethod), get(zfUserAgent)
	case zSSL:
		r.ServerName = get(zfServerName)
		r.CertChainFps = set(zfCertChainFps)
	case zFiles:
		r.FUID = get(zfFUID)
		r.TxHosts, r.RxHosts = set(zfTxHosts), set(zfRxHosts)
		r.MimeType, r.Filename = get(zfMimeType), get(zfFilename)
		r.TotalBytes = json.Number(get(zfTotalBytes))
		r.MD5, r.SHA1, r.SHA256 = get(zfMD5), get(zfSHA1), get(zfSHA256)
	}
	if err != nil {
		return nil, err
	}
	return buildZeek(d.kind, r, a)
}

// unescapeZeek decodes the \xHH escapes of Zeek's ASCII writer.
func unescapeZeek(s string) (string, error) {
	if !strings.Contains(s, `\x`) {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			v, err := strconv.ParseUint(s[i+2:i+4], 16, 8)
			if err != nil {
				return s, fmt.Errorf("bad escape %q", s[i:i+4])
			}
			b.WriteByte(byte(v))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String(), nil
}

// ---- JSON -------------------------------------------------------------------

// zeekJSONDecoder decodes Zeek JSON logs (LogAscii::use_json). The log is
// read from _path, else the file name, else guessed from the fields.
type zeekJSONDecoder struct{ hint zkind }

func (d zeekJSONDecoder) decode(line string, a *arena) (*pattern.Observation, error) {
	r := &a.zeek
	*r = zeekRec{}
	if err := json.Unmarshal([]byte(line), r); err != nil {
		return nil, fmt.Errorf("zeek JSON: %w", err)
	}
	kind := zeekKindOf(r.Path)
	if kind == zUnknown {
		kind = d.hint
	}
	if kind == zUnknown {
		kind = r.guessKind()
	}
	return buildZeek(kind, r, a)
}
