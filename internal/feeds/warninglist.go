package feeds

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/gaissmai/bart"
	"github.com/mitra-cert/mitra/internal/store"
)

// Warning list kinds, after MISP's warninglists (cidr, hostname, string,
// substring).
const (
	// KindCIDR lists addresses and ranges: an address or range inside one
	// is on the list.
	KindCIDR = "cidr"
	// KindHostname lists domains: the domain and its subdomains are on it.
	KindHostname = "hostname"
	// KindString lists exact values (case-insensitive): domains, URLs,
	// hashes, e-mail addresses.
	KindString = "string"
	// KindSubstring lists fragments: a value containing one is on it.
	KindSubstring = "substring"
)

// Hit says which list a value is on.
type Hit struct {
	List  string
	Value string
	Entry string
}

// Reason is the hit as a sentence, as the inactive flag records it.
func (h Hit) Reason() string {
	return fmt.Sprintf("%s is on warning list %q (entry %s): kept, never an active indicator", h.Value, h.List, h.Entry)
}

// List is one warning list.
type List struct {
	Name        string   `json:"name"`
	Kind        string   `json:"type"`
	Description string   `json:"description,omitempty"`
	Entries     []string `json:"list"`
	// Builtin lists ship with Mitra (they can be replaced by name, not
	// deleted from the store).
	Builtin bool `json:"builtin,omitempty"`
}

type compiled struct {
	List
	cidr  *bart.Table[string]
	exact map[string]string
}

func compile(l List) (*compiled, error) {
	c := &compiled{List: l}
	switch l.Kind {
	case KindCIDR:
		c.cidr = new(bart.Table[string])
		for _, e := range l.Entries {
			e = strings.TrimSpace(e)
			pfx, err := parsePrefix(e)
			if err != nil {
				return nil, fmt.Errorf("warning list %s: %q: %w", l.Name, e, ErrInvalid)
			}
			c.cidr.Insert(pfx, e)
		}
	case KindHostname, KindString:
		c.exact = make(map[string]string, len(l.Entries))
		for _, e := range l.Entries {
			k := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(e), "."))
			if l.Kind == KindHostname {
				k = strings.TrimPrefix(k, "*.")
				k = strings.TrimPrefix(k, ".")
			}
			if k != "" {
				c.exact[k] = e
			}
		}
	case KindSubstring:
	default:
		return nil, fmt.Errorf("warning list %s: kind %q (want cidr, hostname, string or substring): %w", l.Name, l.Kind, ErrInvalid)
	}
	return c, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (c *compiled) match(kind, v string) (string, bool) {
	switch c.Kind {
	case KindCIDR:
		if kind != "ip" {
			return "", false
		}
		pfx, err := parsePrefix(v)
		if err != nil {
			return "", false
		}
		return c.cidr.LookupPrefix(pfx.Masked())
	case KindHostname:
		if kind != "domain" {
			return "", false
		}
		for d := strings.ToLower(strings.TrimSuffix(v, ".")); d != ""; {
			if e, ok := c.exact[d]; ok {
				return e, true
			}
			_, rest, ok := strings.Cut(d, ".")
			if !ok {
				break
			}
			d = rest
		}
	case KindString:
		e, ok := c.exact[strings.ToLower(v)]
		return e, ok
	case KindSubstring:
		lv := strings.ToLower(v)
		for _, e := range c.Entries {
			if e != "" && strings.Contains(lv, strings.ToLower(e)) {
				return e, true
			}
		}
	}
	return "", false
}

// WarningLists holds the lists an import checks indicators against, and
// answers whether a stored object is flagged inactive. Safe for concurrent
// use; the admin API replaces lists while imports run.
//
// The exporter and the detector use Match (a value) and Inactive (a stored
// object).
type WarningLists struct {
	mu    sync.RWMutex
	lists []*compiled
	flags FlagStore
}

// NewWarningLists returns the built-in lists (BuiltinLists) and asks
// flags, when not nil, for Inactive.
func NewWarningLists(flags FlagStore) *WarningLists {
	w := &WarningLists{flags: flags}
	for _, l := range BuiltinLists() {
		if err := w.Set(l); err != nil {
			panic(err) // the built-in lists are constants
		}
	}
	return w
}

// Set adds a list, or replaces the list of the same name.
func (w *WarningLists) Set(l List) error {
	c, err := compile(l)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	i := slices.IndexFunc(w.lists, func(x *compiled) bool { return x.Name == l.Name })
	if i >= 0 {
		w.lists[i] = c
	} else {
		w.lists = append(w.lists, c)
	}
	return nil
}

// Remove drops a list; false when there was none by that name.
func (w *WarningLists) Remove(name string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(w.lists)
	w.lists = slices.DeleteFunc(w.lists, func(x *compiled) bool { return x.Name == name })
	return len(w.lists) < n
}

// Lists returns the lists, in the order they are checked.
func (w *WarningLists) Lists() []List {
	w.mu.RLock()
	defer w.mu.RUnlock()
	out := make([]List, len(w.lists))
	for i, c := range w.lists {
		out[i] = c.List
	}
	return out
}

// Load adds the lists kept in the store (replacing built-in lists of the
// same name).
func (w *WarningLists) Load(ctx context.Context, st ListStore) error {
	ls, err := st.ListWarningLists(ctx)
	if err != nil {
		return err
	}
	for _, l := range ls {
		if err := w.Set(List{Name: l.Name, Kind: l.Kind, Description: l.Description, Entries: l.Entries}); err != nil {
			return err
		}
	}
	return nil
}

// Match reports whether value is on a list. kind is what the value is:
// "ip" (an address or CIDR range), "domain", or "" (anything else: URLs,
// hashes, e-mail addresses), which only string and substring lists
// match. A URL's host is also checked as a domain or an address.
func (w *WarningLists) Match(kind, value string) (Hit, bool) {
	if w == nil || value == "" {
		return Hit{}, false
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	for _, c := range w.lists {
		if e, ok := c.match(kind, value); ok {
			return Hit{List: c.Name, Value: value, Entry: e}, true
		}
	}
	if kind == "url" {
		if u, err := url.Parse(value); err == nil && u.Hostname() != "" {
			host := u.Hostname()
			k := "domain"
			if _, err := netip.ParseAddr(host); err == nil {
				k = "ip"
			}
			for _, c := range w.lists {
				if e, ok := c.match(k, host); ok {
					return Hit{List: c.Name, Value: value, Entry: e}, true
				}
			}
		}
	}
	return Hit{}, false
}

// comparison finds the positive comparisons of a STIX pattern with a
// string constant (§9): object path, operator, value.
var comparison = regexp.MustCompile(`([a-z0-9-]+):([A-Za-z0-9_.'\-\[\]*]+)\s*(=|ISSUBSET|IN|LIKE|MATCHES|!=)\s*'((?:[^'\\]|\\.)*)'`)

// kindOfPath says how a pattern's object path compares.
func kindOfPath(typ, prop string) string {
	switch {
	case (typ == "ipv4-addr" || typ == "ipv6-addr") && prop == "value",
		typ == "network-traffic" && (strings.HasPrefix(prop, "dst_ref.value") || strings.HasPrefix(prop, "src_ref.value")):
		return "ip"
	case typ == "domain-name" && prop == "value":
		return "domain"
	case typ == "url" && prop == "value":
		return "url"
	}
	return ""
}

// CheckIndicator checks the values an indicator's STIX pattern compares
// with for equality (and, for addresses, ISSUBSET). Nil-safe.
func (w *WarningLists) CheckIndicator(raw []byte) (Hit, bool) {
	if w == nil {
		return Hit{}, false
	}
	var ind struct {
		Pattern     string `json:"pattern"`
		PatternType string `json:"pattern_type"`
	}
	if json.Unmarshal(raw, &ind) != nil || (ind.PatternType != "" && ind.PatternType != "stix") {
		return Hit{}, false
	}
	for _, m := range comparison.FindAllStringSubmatch(ind.Pattern, -1) {
		op := m[3]
		if op != "=" && op != "ISSUBSET" {
			continue
		}
		v := strings.ReplaceAll(strings.ReplaceAll(m[4], `\'`, `'`), `\\`, `\`)
		if hit, ok := w.Match(kindOfPath(m[1], m[2]), v); ok {
			return hit, true
		}
	}
	return Hit{}, false
}

// Inactive says whether the stored object is flagged inactive, and why
// (the exporter and the detector leave such objects out).
func (w *WarningLists) Inactive(ctx context.Context, objectID string) (reason string, inactive bool, err error) {
	if w == nil || w.flags == nil {
		return "", false, nil
	}
	return w.flags.Inactive(ctx, objectID)
}

// ParseList reads a warning list file: MISP's warninglist JSON format
// ({"name", "type", "description", "list": [...]}), or plain text with one
// entry per line (# comments), whose kind is given (cidr when empty and
// every entry is an address or range, else hostname).
func ParseList(name, kind string, r io.Reader) (List, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return List{}, err
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
		var l List
		if err := json.Unmarshal(t, &l); err != nil {
			return List{}, fmt.Errorf("warning list %s: %v: %w", name, err, ErrInvalid)
		}
		if l.Name == "" {
			l.Name = name
		}
		if kind != "" {
			l.Kind = kind
		}
		if l.Kind == "regex" {
			return List{}, fmt.Errorf("warning list %s: regex lists are not supported: %w", l.Name, ErrInvalid)
		}
		_, err := compile(l)
		return l, err
	}
	l := List{Name: name, Kind: kind}
	sc := bufio.NewScanner(bytes.NewReader(data))
	allIP := true
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		if _, err := parsePrefix(line); err != nil {
			allIP = false
		}
		l.Entries = append(l.Entries, line)
	}
	if l.Kind == "" {
		l.Kind = KindHostname
		if allIP {
			l.Kind = KindCIDR
		}
	}
	_, err = compile(l)
	return l, err
}

// StoredList is l as the store keeps it.
func (l List) StoredList() *store.WarningList {
	return &store.WarningList{Name: l.Name, Kind: l.Kind, Description: l.Description, Entries: l.Entries}
}

// BuiltinLists are the lists every Mitra has.
func BuiltinLists() []List {
	return []List{
		{Name: "special-purpose-addresses", Kind: KindCIDR, Builtin: true,
			Description: "IANA IPv4 and IPv6 special-purpose address registries (RFC 6890): private, loopback, link-local, shared, documentation, benchmarking, multicast and reserved ranges",
			Entries: []string{"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
				"192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
				"203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
				"::/128", "::1/128", "::ffff:0:0/96", "64:ff9b::/96", "100::/64", "2001:db8::/32", "fc00::/7", "fe80::/10", "ff00::/8"}},
		{Name: "special-use-domains", Kind: KindHostname, Builtin: true,
			Description: "Special-use and example domain names (RFC 2606, RFC 6761, RFC 6762, RFC 8375) and their subdomains",
			Entries:     []string{"example", "example.com", "example.net", "example.org", "invalid", "localhost", "test", "local", "home.arpa"}},
		{Name: "well-known-domains", Kind: KindString, Builtin: true,
			Description: "Well-known benign domains and public resolvers, exactly (their subdomains are not listed: they can host abuse)",
			Entries: []string{"google.com", "www.google.com", "youtube.com", "www.youtube.com", "facebook.com", "www.facebook.com",
				"microsoft.com", "www.microsoft.com", "windowsupdate.com", "update.microsoft.com", "office.com", "live.com",
				"apple.com", "www.apple.com", "icloud.com", "amazon.com", "www.amazon.com", "amazonaws.com", "cloudflare.com",
				"akamai.net", "akamaiedge.net", "github.com", "wikipedia.org", "www.wikipedia.org", "twitter.com", "x.com",
				"linkedin.com", "yahoo.com", "bing.com", "mozilla.org", "digicert.com", "letsencrypt.org",
				"8.8.8.8", "8.8.4.4", "1.1.1.1", "1.0.0.1", "9.9.9.9", "149.112.112.112", "208.67.222.222", "208.67.220.220",
				"2001:4860:4860::8888", "2001:4860:4860::8844", "2606:4700:4700::1111", "2606:4700:4700::1001"}},
	}
}
