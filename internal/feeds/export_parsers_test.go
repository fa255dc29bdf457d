package feeds

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/miekg/dns"
)

// The parser tests export parserN (100,000; 10,000 under -race) generated
// indicators (every value kind, every TLP level, patterns no list can
// carry) and read the result back with a real parser, or against the
// format's documentation where none exists in Go, checking every
// indicator that should be there is there and nothing else is.

var parserSel = func() func(testing.TB) *Selection {
	var sel *Selection
	return func(tb testing.TB) *Selection {
		if sel == nil {
			sel = genSelection(tb, parserN)
		}
		return sel
	}
}()

// expected is, for a format taking kinds, the indicators it must carry and
// the values they give; the others must be counted as skipped.
func expected(sel *Selection, kinds ...Kind) (inds map[string][]Value, skipped int) {
	inds = map[string][]Value{}
	for _, ind := range sel.Indicators {
		ok := ind.Expressible
		for _, v := range ind.Values {
			ok = ok && slices.Contains(kinds, v.Kind)
		}
		if !ok {
			skipped++
			continue
		}
		inds[ind.ID] = ind.Values
	}
	return inds, skipped
}

func render(t *testing.T, format string, o RenderOptions) *Export {
	t.Helper()
	ex, err := Render(format, parserSel(t), o)
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

func totalSkipped(ex *Export) int {
	n := 0
	for _, c := range ex.Skipped {
		n += c
	}
	return n
}

// suricataParser is Debian's suricata-update rule parser (run by
// testdata/export/suricata_rules.py); test.sh installs it when missing.
func suricataParser(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("/usr/bin/python3")
	if err == nil {
		err = exec.Command(py, "-c", "import suricata.update.rule").Run()
	}
	if err != nil {
		msg := "suricata-update's rule parser is not installed (apt-get install suricata-update): " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return py
}

type suriRule struct {
	Enabled    bool     `json:"enabled"`
	Action     string   `json:"action"`
	Proto      string   `json:"proto"`
	SourceAddr string   `json:"source_addr"`
	DestAddr   string   `json:"dest_addr"`
	SID        int64    `json:"sid"`
	Msg        string   `json:"msg"`
	Metadata   []string `json:"metadata"`
	Content    string   `json:"content"`
	Dataset    string   `json:"dataset"`
	FileMD5    string   `json:"filemd5"`
	FileSHA1   string   `json:"filesha1"`
	FileSHA256 string   `json:"filesha256"`
}

// TestSuricataExportParses: parserN indicators through suricata-update's
// parser: every line a rule, SIDs unique and stable across renderings,
// every rule with its TLP in metadata, per-value rules with their
// indicator id, lists through datasets or list files (not a rule per
// value), and every exportable value present in a rule or a list.
func TestSuricataExportParses(t *testing.T) {
	py := suricataParser(t)
	sel := parserSel(t)
	ex := render(t, "suricata", RenderOptions{})
	dir := t.TempDir()
	for _, f := range ex.Files {
		if err := os.WriteFile(filepath.Join(dir, f.Name), f.Data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(py, "testdata/export/suricata_rules.py", filepath.Join(dir, "mitra.rules")).Output()
	if err != nil {
		var ee *exec.ExitError
		if errorsAs(err, &ee) {
			t.Fatalf("suricata-update parser: %v: %s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var rules []suriRule
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var r suriRule
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		rules = append(rules, r)
	}
	if n := bytes.Count(ex.Files[0].Data, []byte("\nalert ")); n != len(rules) {
		t.Fatalf("parser read %d rules of %d", len(rules), n)
	}
	want, skipped := expected(sel, KindIP, KindDomain, KindURL, KindMD5, KindSHA1, KindSHA256)
	if got := totalSkipped(ex); got != skipped {
		t.Errorf("skipped %d (%v), want %d", got, ex.Skipped, skipped)
	}
	// Every value the rules carry, directly or through a list file.
	have := map[string]bool{}
	sids := map[int64]bool{}
	listRules := 0
	for _, r := range rules {
		if !r.Enabled || r.Action != "alert" || r.SID <= 0 || r.Msg == "" {
			t.Fatalf("rule %+v", r)
		}
		if sids[r.SID] {
			t.Fatalf("SID %d twice", r.SID)
		}
		sids[r.SID] = true
		if !slices.ContainsFunc(r.Metadata, func(m string) bool { return strings.HasPrefix(m, "tlp ") }) {
			t.Fatalf("rule %d has no TLP in metadata: %v", r.SID, r.Metadata)
		}
		perValue := slices.ContainsFunc(r.Metadata, func(m string) bool { return strings.HasPrefix(m, "mitra_indicator ") })
		switch {
		case r.Dataset != "":
			// dataset:isset,NAME,type string,load FILE
			parts := strings.Split(r.Dataset, ",")
			if len(parts) != 4 || parts[0] != "isset" || parts[2] != "type string" || !strings.HasPrefix(parts[3], "load ") {
				t.Fatalf("dataset %q", r.Dataset)
			}
			f := ex.File(strings.TrimPrefix(parts[3], "load "))
			if f == nil {
				t.Fatalf("dataset file of %q not in the export", r.Dataset)
			}
			for _, line := range strings.Fields(string(f.Data)) {
				d, err := base64.StdEncoding.DecodeString(line)
				if err != nil || !validDomain(string(d)) {
					t.Fatalf("dataset line %q: %v", line, err)
				}
				have["domain "+string(d)] = true
			}
			listRules++
		case r.FileMD5 != "" || r.FileSHA1 != "" || r.FileSHA256 != "":
			name, kind, n := r.FileMD5, "md5", 32
			if r.FileSHA1 != "" {
				name, kind, n = r.FileSHA1, "sha1", 40
			} else if r.FileSHA256 != "" {
				name, kind, n = r.FileSHA256, "sha256", 64
			}
			f := ex.File(name)
			if f == nil {
				t.Fatalf("list file %q not in the export", name)
			}
			for _, h := range strings.Fields(string(f.Data)) {
				if _, err := hex.DecodeString(h); err != nil || len(h) != n {
					t.Fatalf("%s list line %q", kind, h)
				}
				have[kind+" "+h] = true
			}
			listRules++
		case r.Proto == "ip":
			addrs := r.SourceAddr
			if addrs == "any" {
				addrs = r.DestAddr
			}
			for _, a := range strings.Split(strings.Trim(addrs, "[]"), ",") {
				pf, err := netip.ParsePrefix(a)
				if err != nil {
					ad, err2 := netip.ParseAddr(a)
					if err2 != nil {
						t.Fatalf("rule %d address %q: %v", r.SID, a, err)
					}
					pf = netip.PrefixFrom(ad, ad.BitLen())
				}
				have["ip "+prefixValue(pf)] = true
			}
			if !perValue {
				listRules++
			}
		case r.Proto == "http" && r.Content != "":
			have["url-rule "+r.Metadata[0]] = true
		default:
			if !perValue {
				t.Fatalf("rule %d: %+v", r.SID, r)
			}
		}
	}
	for id, vals := range want {
		for _, v := range vals {
			key := v.Kind.String() + " " + v.V
			if v.Kind == KindURL {
				key = "url-rule mitra_indicator " + id
			}
			if !have[key] {
				t.Fatalf("%s of %s is in no rule", key, id)
			}
		}
	}
	if len(rules) > parserN {
		t.Errorf("%d rules for %d indicators: lists are not grouped", len(rules), parserN)
	}
	t.Logf("%d rules (%d over lists), %d files, skipped %v", len(rules), listRules, len(ex.Files), ex.Skipped)

	// The same selection renders the same SIDs; a new indicator leaves the
	// others' SIDs alone.
	again := render(t, "suricata", RenderOptions{})
	if !bytes.Equal(again.Files[0].Data, ex.Files[0].Data) {
		t.Error("two renderings of one selection differ")
	}
}

func prefixValue(pf netip.Prefix) string {
	if pf.Bits() == pf.Addr().BitLen() {
		return pf.Addr().String()
	}
	return pf.String()
}

// TestSuricataSIDsStable: adding an indicator keeps the SIDs of the rules
// for the others.
func TestSuricataSIDsStable(t *testing.T) {
	sel := genSelection(t, 200)
	sidsOf := func(s *Selection) map[string]string {
		ex, err := Render("suricata", s, RenderOptions{DatasetMin: 1000})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		re := regexp.MustCompile(`sid:(\d+);.*mitra_indicator (indicator--[0-9a-f-]+)`)
		for _, line := range strings.Split(string(ex.Files[0].Data), "\n") {
			if m := re.FindStringSubmatch(line); m != nil {
				out[m[2]+" "+line[:strings.Index(line, "(")]] = m[1]
			}
		}
		return out
	}
	before := sidsOf(sel)
	if len(before) < 100 {
		t.Fatalf("only %d per-value rules", len(before))
	}
	more := genSelection(t, 201)
	sel.Indicators = append(sel.Indicators, more.Indicators[200])
	after := sidsOf(sel)
	for k, sid := range before {
		if after[k] != sid {
			t.Errorf("%s: SID %s became %s", k, sid, after[k])
		}
	}
}

// TestRPZExportParses: the zone through miekg/dns's zone-file parser:
// SOA and NS at the apex, then one CNAME-to-root per domain, per
// wildcard subdomain and per address (rpz-ip), all under the origin.
func TestRPZExportParses(t *testing.T) {
	sel := parserSel(t)
	ex := render(t, "rpz", RenderOptions{RPZOrigin: "rpz.cert.example"})
	want, skipped := expected(sel, KindIP, KindDomain)
	if got := totalSkipped(ex); got != skipped {
		t.Errorf("skipped %d, want %d", got, skipped)
	}
	owners := map[string]bool{}
	for _, vals := range want {
		for _, v := range vals {
			if v.Kind == KindDomain {
				owners[v.V+".rpz.cert.example."] = true
				owners["*."+v.V+".rpz.cert.example."] = true
			} else {
				owners[rpzIP(v.Prefix)+".rpz.cert.example."] = true
			}
		}
	}
	zp := dns.NewZoneParser(bytes.NewReader(ex.Files[0].Data), "", "mitra.rpz")
	var soa, ns int
	got := map[string]bool{}
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		switch r := rr.(type) {
		case *dns.SOA:
			soa++
			if r.Hdr.Name != "rpz.cert.example." || r.Serial != uint32(sel.Newest.Unix()) {
				t.Fatalf("SOA %v", r)
			}
		case *dns.NS:
			ns++
		case *dns.CNAME:
			if r.Target != "." {
				t.Fatalf("CNAME %v: want target .", r)
			}
			if got[r.Hdr.Name] {
				t.Fatalf("%s twice", r.Hdr.Name)
			}
			got[r.Hdr.Name] = true
		default:
			t.Fatalf("unexpected record %v", rr)
		}
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	if soa != 1 || ns != 1 || len(got) != len(owners) {
		t.Fatalf("SOA %d NS %d CNAME %d, want 1 1 %d", soa, ns, len(got), len(owners))
	}
	for o := range owners {
		if !got[o] {
			t.Fatalf("%s missing", o)
		}
	}
}

// TestRPZIPNames: rpz-ip trigger names as the RPZ draft writes them.
func TestRPZIPNames(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1/32":             "32.1.2.0.192.rpz-ip",
		"198.51.100.0/24":          "24.0.100.51.198.rpz-ip",
		"2001:db8::1/128":          "128.1.zz.db8.2001.rpz-ip",
		"2001:db8:0:0:1::/80":      "80.zz.1.0.0.db8.2001.rpz-ip",
		"2001:db8:1:2:3:4:5:6/128": "128.6.5.4.3.2.1.db8.2001.rpz-ip",
	} {
		if got := rpzIP(netip.MustParsePrefix(in)); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

// zeekTypes are the Intel::Type values of Zeek's intel framework
// (base/frameworks/intel/main.zeek).
var zeekTypes = map[string]bool{"Intel::ADDR": true, "Intel::SUBNET": true, "Intel::URL": true, "Intel::SOFTWARE": true,
	"Intel::EMAIL": true, "Intel::DOMAIN": true, "Intel::USER_NAME": true, "Intel::CERT_HASH": true,
	"Intel::PUBKEY_HASH": true, "Intel::FILE_HASH": true, "Intel::FILE_NAME": true}

// TestZeekExportFormat checks the Intel file against Zeek's documented
// format (Intel framework, "Loading intelligence"; the input framework's
// ASCII reader): a "#fields" header naming indicator, indicator_type and
// meta.* fields, tab-separated; every line the header's field count, no
// empty field ("-" is unset), the type a known Intel::Type, the value of
// that type's syntax (URLs without scheme).
func TestZeekExportFormat(t *testing.T) {
	sel := parserSel(t)
	ex := render(t, "zeek", RenderOptions{})
	want, skipped := expected(sel, KindIP, KindDomain, KindURL, KindMD5, KindSHA1, KindSHA256, KindEmail)
	if got := totalSkipped(ex); got != skipped {
		t.Errorf("skipped %d, want %d", got, skipped)
	}
	lines := strings.Split(strings.TrimSuffix(string(ex.Files[0].Data), "\n"), "\n")
	header := strings.Split(strings.TrimPrefix(lines[0], "#fields\t"), "\t")
	if !strings.HasPrefix(lines[0], "#fields\t") || header[0] != "indicator" || header[1] != "indicator_type" {
		t.Fatalf("header %q", lines[0])
	}
	for _, h := range header[2:] {
		if !strings.HasPrefix(h, "meta.") {
			t.Fatalf("field %q", h)
		}
	}
	wantLines := 0
	byID := map[string]int{}
	for id, vals := range want {
		wantLines += len(vals)
		byID[id] = len(vals)
	}
	if len(lines)-1 != wantLines {
		t.Fatalf("%d lines, want %d", len(lines)-1, wantLines)
	}
	for _, line := range lines[1:] {
		f := strings.Split(line, "\t")
		if len(f) != len(header) {
			t.Fatalf("%d fields in %q", len(f), line)
		}
		for _, x := range f {
			if x == "" || strings.TrimSpace(x) != x {
				t.Fatalf("empty or padded field in %q", line)
			}
		}
		v, typ := f[0], f[1]
		if !zeekTypes[typ] {
			t.Fatalf("type %q", typ)
		}
		ok := true
		switch typ {
		case "Intel::ADDR":
			_, err := netip.ParseAddr(v)
			ok = err == nil
		case "Intel::SUBNET":
			_, err := netip.ParsePrefix(v)
			ok = err == nil
		case "Intel::DOMAIN":
			ok = validDomain(v)
		case "Intel::URL":
			ok = !strings.Contains(v, "://") && strings.Contains(v, "/")
		case "Intel::FILE_HASH":
			_, err := hex.DecodeString(v)
			ok = err == nil && (len(v) == 32 || len(v) == 40 || len(v) == 64)
		case "Intel::EMAIL":
			ok = strings.Count(v, "@") == 1
		}
		if !ok {
			t.Fatalf("%s value %q", typ, v)
		}
		id, _, _ := strings.Cut(f[3], " ")
		byID[id]--
	}
	for id, n := range byID {
		if n != 0 {
			t.Fatalf("%s: %d lines off", id, n)
		}
	}
}

// mispCategories lists, for the attribute types the export writes, the
// categories MISP's describeTypes (misp-objects/describeTypes.json, MISP
// core format §2.3) allows them in.
var mispCategories = map[string][]string{
	"ip-dst":    {"Network activity", "Payload delivery", "External analysis"},
	"domain":    {"Network activity", "External analysis"},
	"url":       {"Payload delivery", "Network activity", "External analysis"},
	"md5":       {"Payload delivery", "Artifacts dropped", "Payload installation", "External analysis"},
	"sha1":      {"Payload delivery", "Artifacts dropped", "Payload installation", "External analysis"},
	"sha256":    {"Payload delivery", "Artifacts dropped", "Payload installation", "External analysis"},
	"email-src": {"Payload delivery", "Network activity", "Social network"},
}

var digits = regexp.MustCompile(`^[0-9]+$`)

// TestMISPExportFormat checks the feed against the MISP core format
// (draft-dulaunoy-misp-core-format: Event fields, Attribute fields and
// their types; Orgc; Tag) and MISP's feed layout (manifest.json naming
// every <uuid>.json event file).
func TestMISPExportFormat(t *testing.T) {
	sel := parserSel(t)
	ex := render(t, "misp", RenderOptions{Producer: "CERT-X"})
	want, skipped := expected(sel, KindIP, KindDomain, KindURL, KindMD5, KindSHA1, KindSHA256, KindEmail)
	if got := totalSkipped(ex); got != skipped {
		t.Errorf("skipped %d, want %d", got, skipped)
	}
	var manifest map[string]map[string]any
	if err := json.Unmarshal(ex.Files[0].Data, &manifest); err != nil || ex.Files[0].Name != "manifest.json" {
		t.Fatalf("manifest: %v", err)
	}
	if len(manifest) != len(ex.Files)-1 {
		t.Fatalf("%d manifest entries, %d event files", len(manifest), len(ex.Files)-1)
	}
	attrs := map[string]int{}
	for _, f := range ex.Files[1:] {
		var doc struct {
			Event map[string]json.RawMessage `json:"Event"`
		}
		dec := json.NewDecoder(bytes.NewReader(f.Data))
		if err := dec.Decode(&doc); err != nil || doc.Event == nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		str := func(k string) string {
			var s string
			if err := json.Unmarshal(doc.Event[k], &s); err != nil {
				t.Fatalf("%s: Event.%s: want a string: %s", f.Name, k, doc.Event[k])
			}
			return s
		}
		u := str("uuid")
		if _, err := uuid.Parse(u); err != nil || f.Name != u+".json" || manifest[u] == nil {
			t.Fatalf("%s: uuid %q", f.Name, u)
		}
		if str("info") == "" || !regexp.MustCompile(`^\d{4}-\d\d-\d\d$`).MatchString(str("date")) {
			t.Fatalf("%s: info/date", f.Name)
		}
		for k, max := range map[string]int{"threat_level_id": 4, "analysis": 2, "distribution": 5} {
			n, err := strconv.Atoi(str(k))
			if err != nil || n < 0 || n > max || (k == "threat_level_id" && n < 1) {
				t.Fatalf("%s: %s %q", f.Name, k, str(k))
			}
		}
		for _, k := range []string{"timestamp", "publish_timestamp"} {
			if !digits.MatchString(str(k)) {
				t.Fatalf("%s: %s", f.Name, k)
			}
		}
		if manifest[u]["timestamp"] != str("timestamp") || manifest[u]["info"] != str("info") {
			t.Fatalf("manifest entry %v does not match the event", manifest[u])
		}
		var orgc struct{ Name, UUID string }
		if json.Unmarshal(doc.Event["Orgc"], &orgc) != nil || orgc.Name != "CERT-X" || uuid.Validate(orgc.UUID) != nil {
			t.Fatalf("Orgc %s", doc.Event["Orgc"])
		}
		var list []struct {
			UUID, Type, Category, Value, Timestamp, Comment, Distribution string
			ToIDS                                                         *bool `json:"to_ids"`
			Tag                                                           []struct{ Name string }
		}
		if err := json.Unmarshal(doc.Event["Attribute"], &list); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, a := range list {
			if uuid.Validate(a.UUID) != nil || seen[a.UUID] {
				t.Fatalf("attribute uuid %q", a.UUID)
			}
			seen[a.UUID] = true
			if !slices.Contains(mispCategories[a.Type], a.Category) {
				t.Fatalf("attribute type %q in category %q", a.Type, a.Category)
			}
			if a.Value == "" || a.ToIDS == nil || !digits.MatchString(a.Timestamp) || !slices.Contains([]string{"0", "1", "2", "3", "4", "5"}, a.Distribution) {
				t.Fatalf("attribute %+v", a)
			}
			if len(a.Tag) != 1 || !strings.HasPrefix(a.Tag[0].Name, "tlp:") {
				t.Fatalf("attribute tags %+v", a.Tag)
			}
			id, _, _ := strings.Cut(a.Comment, " ")
			attrs[id]++
		}
	}
	for id, vals := range want {
		if attrs[id] != len(vals) {
			t.Fatalf("%s: %d attributes, want %d", id, attrs[id], len(vals))
		}
	}
	if len(attrs) != len(want) {
		t.Fatalf("%d indicators in events, want %d", len(attrs), len(want))
	}
}

// TestSTIXAndCSVExports: the bundle holds every indicator byte for byte;
// the CSV parses back (encoding/csv) to one row per value.
func TestSTIXAndCSVExports(t *testing.T) {
	sel := parserSel(t)
	ex := render(t, "stix", RenderOptions{})
	var b struct {
		Type    string            `json:"type"`
		ID      string            `json:"id"`
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.Unmarshal(ex.Files[0].Data, &b); err != nil || b.Type != "bundle" || !strings.HasPrefix(b.ID, "bundle--") || len(b.Objects) != len(sel.Indicators) {
		t.Fatalf("bundle: %v %s %d", err, b.Type, len(b.Objects))
	}
	for i, o := range b.Objects {
		if !bytes.Equal(o, sel.Indicators[i].Raw) {
			t.Fatalf("object %d differs from the stored one", i)
		}
	}
	if totalSkipped(ex) != 0 {
		t.Errorf("STIX skipped %v", ex.Skipped)
	}
	cx := render(t, "csv", RenderOptions{})
	rows, err := csvRead(cx.Files[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	n := 1
	for _, ind := range sel.Indicators {
		if ind.Expressible {
			n += len(ind.Values)
		} else {
			n++
		}
	}
	if len(rows) != n || !slices.Equal(rows[0], csvHeader) {
		t.Fatalf("%d rows, want %d", len(rows), n)
	}
}

// TestEDLExports: each list holds exactly its kind's values, one a line,
// sorted, each value once.
func TestEDLExports(t *testing.T) {
	sel := parserSel(t)
	for format, kind := range map[string]Kind{"edl-ip": KindIP, "edl-domain": KindDomain, "edl-url": KindURL} {
		ex := render(t, format, RenderOptions{})
		want, skipped := expected(sel, kind)
		if totalSkipped(ex) != skipped {
			t.Errorf("%s: skipped %d, want %d", format, totalSkipped(ex), skipped)
		}
		set := map[string]bool{}
		for _, vals := range want {
			for _, v := range vals {
				s := v.V
				if kind == KindURL {
					s = stripScheme(s)
				}
				set[s] = true
			}
		}
		lines := strings.Split(strings.TrimSuffix(string(ex.Files[0].Data), "\n"), "\n")
		if len(lines) != len(set) || !slices.IsSorted(lines) {
			t.Fatalf("%s: %d lines, want %d sorted", format, len(lines), len(set))
		}
		for _, l := range lines {
			if !set[l] {
				t.Fatalf("%s: %q not expected", format, l)
			}
		}
	}
}

func errorsAs(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}

func csvRead(data []byte) ([][]string, error) {
	return csv.NewReader(bytes.NewReader(data)).ReadAll()
}

// TestMISPEventEncoding: the attribute-by-attribute encoder writes what
// encoding/json writes for the whole event.
func TestMISPEventEncoding(t *testing.T) {
	ex, err := Render("misp", genSelection(t, 300), RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range ex.Files[1:] {
		var doc map[string]*mispEvent
		if err := json.Unmarshal(f.Data, &doc); err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(doc)
		if !bytes.Equal(f.Data, want) {
			t.Fatalf("%s:\n%s\nwant\n%s", f.Name, f.Data, want)
		}
	}
}
