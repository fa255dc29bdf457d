package detect

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/mitra-cert/mitra/internal/pattern"
)

// eveRec is the part of a Suricata EVE JSON record that becomes
// observables. Every event type carries the flow's addresses; dns, http,
// tls and fileinfo add their own section (alerts carry them too when the
// app-layer metadata is logged).
type eveRec struct {
	Timestamp string      `json:"timestamp"`
	EventType string      `json:"event_type"`
	SrcIP     string      `json:"src_ip"`
	SrcPort   json.Number `json:"src_port"`
	DestIP    string      `json:"dest_ip"`
	DestPort  json.Number `json:"dest_port"`
	Proto     string      `json:"proto"`
	AppProto  string      `json:"app_proto"`
	DNS       *struct {
		RRName  string `json:"rrname"`
		RRType  string `json:"rrtype"`
		RData   string `json:"rdata"`
		Queries []struct {
			RRName string `json:"rrname"`
		} `json:"queries"`
		Answers []struct {
			RRName string `json:"rrname"`
			RRType string `json:"rrtype"`
			RData  string `json:"rdata"`
		} `json:"answers"`
		Grouped map[string][]any `json:"grouped"`
	} `json:"dns"`
	HTTP *struct {
		Hostname  string `json:"hostname"`
		URL       string `json:"url"`
		UserAgent string `json:"http_user_agent"`
		Method    string `json:"http_method"`
	} `json:"http"`
	TLS *struct {
		SNI         string `json:"sni"`
		Fingerprint string `json:"fingerprint"`
	} `json:"tls"`
	FileInfo *struct {
		Filename string      `json:"filename"`
		Magic    string      `json:"magic"`
		MD5      string      `json:"md5"`
		SHA1     string      `json:"sha1"`
		SHA256   string      `json:"sha256"`
		Size     json.Number `json:"size"`
	} `json:"fileinfo"`
}

// eveTime parses Suricata's "2023-11-14T22:13:20.123456+0000".
func eveTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04:05.999999999-0700", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("timestamp %q is not Suricata's format", s)
}

// eveDecoder decodes Suricata EVE JSON lines.
type eveDecoder struct{}

func (eveDecoder) decode(line string, a *arena) (*pattern.Observation, error) {
	var r eveRec
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		return nil, fmt.Errorf("EVE JSON: %w", err)
	}
	if r.EventType == "" {
		return nil, fmt.Errorf("EVE JSON: no event_type")
	}
	switch r.EventType {
	case "stats", "engine":
		return nil, nil // no traffic
	}
	t, err := eveTime(r.Timestamp)
	if err != nil {
		return nil, err
	}
	sp, ok1 := parsePort(r.SrcPort)
	dp, ok2 := parsePort(r.DestPort)
	app := r.AppProto
	switch {
	case r.DNS != nil:
		app = "dns"
	case r.HTTP != nil:
		app = "http"
	case r.TLS != nil:
		app = "tls"
	}
	if app == "failed" || app == "unknown" {
		app = ""
	}
	a.begin()
	n := a.addFlow(r.SrcIP, r.DestIP, sp, dp, ok1 && ok2, protocols(r.Proto, app))
	if d := r.DNS; d != nil {
		a.addDomain(d.RRName)
		for _, q := range d.Queries {
			a.addDomain(q.RRName)
		}
		addAnswer := func(rrtype, rdata string) {
			switch rrtype {
			case "A", "AAAA":
				a.addIP(rdata, "")
			case "CNAME", "NS", "PTR", "MX":
				a.addDomain(rdata)
			}
		}
		if d.RData != "" {
			addAnswer(d.RRType, d.RData)
		}
		for _, an := range d.Answers {
			a.addDomain(an.RRName)
			addAnswer(an.RRType, an.RData)
		}
		for rrtype, vs := range d.Grouped {
			for _, v := range vs {
				if s, ok := v.(string); ok {
					addAnswer(rrtype, s)
				}
			}
		}
	}
	if h := r.HTTP; h != nil {
		host := stripPort(h.Hostname)
		if host != "" && ipType(host) == "" {
			a.addDomain(host)
		}
		if h.URL != "" {
			u := h.URL
			if !strings.Contains(u, "://") && h.Hostname != "" {
				u = "http://" + h.Hostname + u
			}
			if strings.Contains(u, "://") {
				a.add(a.sco("url", "", u))
			}
		}
		if n != nil {
			n.ext = httpExt(h.Method, h.URL, h.Hostname, h.UserAgent)
		}
	}
	if tl := r.TLS; tl != nil {
		a.addDomain(tl.SNI)
		if fp := strings.ReplaceAll(tl.Fingerprint, ":", ""); isHex(fp, 40) {
			c := a.sco("x509-certificate", "", "")
			c.Hashes = map[string]string{"SHA-1": strings.ToLower(fp)}
			a.add(c)
		}
	}
	if f := r.FileInfo; f != nil {
		addFile(a, f.Filename, "", f.MD5, f.SHA1, f.SHA256, f.Size)
	}
	return a.end(t), nil
}
