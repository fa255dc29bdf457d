package pattern

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

const t0 = "2020-01-01T00:00:00Z"

// od builds an observed-data SDO with the deprecated objects dictionary.
func od(first, last string, n int, objects string) string {
	return fmt.Sprintf(`{"type":"observed-data","id":"observed-data--%s-%d","first_observed":%q,"last_observed":%q,"number_observed":%d,"objects":%s}`,
		first, n, first, last, n, objects)
}

func mustObs(t testing.TB, sdos ...string) []*Observation {
	t.Helper()
	obs, err := ObservationsFromJSON([]byte("[" + strings.Join(sdos, ",") + "]"))
	if err != nil {
		t.Fatalf("observations: %v", err)
	}
	return obs
}

func at(sec float64) string {
	base, _ := time.Parse(time.RFC3339, t0)
	return base.Add(time.Duration(sec * float64(time.Second))).Format(time.RFC3339Nano)
}

// one is a single observation with one object.
func one(object string) string { return od(t0, t0, 1, `{"0":`+object+`}`) }

var (
	fileObj = `{"type":"file","name":"foo.dll","size":25536,"created":"2014-01-13T07:03:17.000Z",
		"hashes":{"SHA-256":"aec0","MD5":"79054025255fb1a26e4bc422aef54eb4"},
		"magic_number_hex":"ffd8","mime_type":"image/bmp",
		"extensions":{"windows-pebinary-ext":{"sections":[{"entropy":7.5},{"entropy":3}]}},
		"empty":[],"list":["a","b"],"nothing":null,"flag":true,"neg":-3,"big":9007199254740993,"frac":1.5}`
	listObj      = `{"type":"x","s":["abc","xyz"],"n":[1,5],"ip":["10.0.0.1","192.168.0.1"],"e":[]}`
	artifactObj  = `{"type":"artifact","mime_type":"application/vnd.tcpdump.pcap","payload_bin":"1MOyoQIABAA="}`
	testArtifact = `{"type":"artifact","payload_bin":"dGhpcyBpcyBhIHRlc3Q="}`
	trafficObs   = od(t0, t0, 1, `{"0":{"type":"network-traffic","src_ref":"1","dst_ref":"2","protocols":["ipv4","tcp"]},
		"1":{"type":"ipv4-addr","value":"203.0.113.10"},"2":{"type":"ipv4-addr","value":"198.51.100.58"}}`)
	// §9.5's counter-example: the two addresses hang off different
	// network-traffic objects.
	splitTrafficObs = od(t0, t0, 1, `{"0":{"type":"network-traffic","src_ref":"1"},"1":{"type":"ipv4-addr","value":"203.0.113.10"},
		"2":{"type":"network-traffic","dst_ref":"3"},"3":{"type":"ipv4-addr","value":"198.51.100.58"}}`)
	domainObs = od(t0, t0, 1, `{"0":{"type":"domain-name","value":"www.5z8.info","resolves_to_refs":["1","2"]},
		"1":{"type":"ipv4-addr","value":"198.51.100.1"},"2":{"type":"ipv6-addr","value":"2001:db8::1"}}`)
)

type comparisonCase struct {
	pattern string
	obs     string
	want    bool
}

var comparisonCases = []comparisonCase{
	// strings: exact, case-sensitive, code point order (§9.6.2)
	{`[file:name = 'foo.dll']`, one(fileObj), true},
	{`[file:name = 'FOO.DLL']`, one(fileObj), false},
	{`[file:name != 'bar']`, one(fileObj), true},
	{`[file:name NOT = 'bar']`, one(fileObj), true},
	{`[file:name NOT != 'foo.dll']`, one(fileObj), true},
	{`[file:name > 'foo']`, one(fileObj), true},
	{`[file:name < 'foo.dlm']`, one(fileObj), true},
	{`[file:name >= 'foo.dll' AND file:name <= 'foo.dll']`, one(fileObj), true},
	{`[x:s < 'oz']`, one(`{"type":"x","s":"o"}`), true},
	{`[x:s > 'oz']`, one(`{"type":"x","s":"o\u0300"}`), true}, // 'oz' < 'ò' (combining)
	{`[x:s < 'z']`, one(`{"type":"x","s":"o\u0300"}`), true},
	{`[x:s > 'z']`, one(`{"type":"x","s":"\u00f2"}`), true},
	{"[x:s = 'o\u0300']", one(`{"type":"x","s":"\u00f2"}`), false}, // no normalization for =
	{`[x:s = 'ünï ✓']`, one(`{"type":"x","s":"ünï ✓"}`), true},
	{`[x:s = 'it\'s \\']`, one(`{"type":"x","s":"it's \\"}`), true},
	{`[x:s = '']`, one(`{"type":"x","s":""}`), true},
	// missing properties are false whatever the operator (§9.6)
	{`[file:missing = 'x']`, one(fileObj), false},
	{`[file:missing != 'x']`, one(fileObj), false},
	{`[file:missing NOT = 'x']`, one(fileObj), false},
	{`[file:nothing != 'x']`, one(fileObj), false},
	{`[file:hashes.SHA1 != 'x']`, one(fileObj), false},
	{`[other:name = 'foo.dll']`, one(fileObj), false},
	// incompatible types: false, except != (§9.6.1)
	{`[file:name = 1]`, one(fileObj), false},
	{`[file:name != 1]`, one(fileObj), true},
	{`[file:name > 1]`, one(fileObj), false},
	{`[file:size = '25536']`, one(fileObj), false},
	{`[file:size != '25536']`, one(fileObj), true},
	{`[file:flag = 'true']`, one(fileObj), false},
	{`[file:list = 'a']`, one(fileObj), false},
	// numbers, exact int/float comparison (§9.2)
	{`[file:size = 25536]`, one(fileObj), true},
	{`[file:size = 25536.0]`, one(fileObj), true},
	{`[file:size = 25536.5]`, one(fileObj), false},
	{`[file:size > 25535.9]`, one(fileObj), true},
	{`[file:frac = 1]`, one(fileObj), false},
	{`[file:frac > 1]`, one(fileObj), true},
	{`[file:frac < 2]`, one(fileObj), true},
	{`[file:neg = -3]`, one(fileObj), true},
	{`[file:neg < -2.5]`, one(fileObj), true},
	// the data may exceed the STIX integer range; constants may not (§2.10)
	{`[file:big > 9007199254740991]`, one(fileObj), true},
	{`[file:big != 9007199254740991]`, one(fileObj), true},
	{`[file:big > -9007199254740991]`, one(fileObj), true},
	{`[file:big > 9007199254740992.0]`, one(fileObj), true},
	// booleans
	{`[file:flag = true]`, one(fileObj), true},
	{`[file:flag != false]`, one(fileObj), true},
	{`[file:flag = false]`, one(fileObj), false},
	// timestamps as instants
	{`[file:created = t'2014-01-13T07:03:17Z']`, one(fileObj), true},
	{`[file:created > t'2014-01-13T07:03:16.999Z']`, one(fileObj), true},
	{`[file:created < t'2014-01-13T07:03:17Z']`, one(fileObj), false},
	{`[file:name = t'2014-01-13T07:03:17Z']`, one(fileObj), false},
	{`[file:name != t'2014-01-13T07:03:17Z']`, one(fileObj), true},
	// binary and hex (§9.6.3, §9.6.4)
	{`[artifact:payload_bin = 'dGhpcyBpcyBhIHRlc3Q=']`, one(testArtifact), false},
	{`[artifact:payload_bin = 'this is a test']`, one(testArtifact), true},
	{`[artifact:payload_bin = b'dGhpcyBpcyBhIHRlc3Q=']`, one(testArtifact), true},
	{`[artifact:payload_bin = h'7468697320697320612074657374']`, one(testArtifact), true},
	{`[artifact:payload_bin > h'74']`, one(testArtifact), true},
	{`[artifact:payload_bin < h'7468697320697320612074657374ff']`, one(testArtifact), true},
	{`[artifact:payload_bin = 'this is a tes✓']`, one(testArtifact), false},
	{`[artifact:payload_bin != 'this is a tes✓']`, one(testArtifact), true},
	{`[file:magic_number_hex = h'ffd8']`, one(fileObj), true},
	{`[file:magic_number_hex = b'/9g=']`, one(fileObj), true},
	{`[file:magic_number_hex = 'ÿØ']`, one(fileObj), true},
	{`[file:magic_number_hex = 'ffd8']`, one(fileObj), false},
	{`[file:magic_number_hex < h'ffd9']`, one(fileObj), true},
	{`[file:magic_number_hex > h'ff']`, one(fileObj), true}, // longer is greater
	{`[file:magic_number_hex > h'00ffffff']`, one(fileObj), true},
	{`[file:name = h'666f6f2e646c6c']`, one(fileObj), true}, // string vs hex constant
	// IN
	{`[file:name IN ('a', 'foo.dll')]`, one(fileObj), true},
	{`[file:name IN ('a', 'b')]`, one(fileObj), false},
	{`[file:name IN ()]`, one(fileObj), false},
	{`[file:name NOT IN ()]`, one(fileObj), true},
	{`[file:name NOT IN ('foo.dll')]`, one(fileObj), false},
	{`[file:size IN (1, 25536.0)]`, one(fileObj), true},
	{`[file:missing NOT IN ('x')]`, one(fileObj), false},
	// LIKE (%, _, NFC §9.6.1)
	{`[file:name LIKE 'foo%']`, one(fileObj), true},
	{`[file:name LIKE '%.dll']`, one(fileObj), true},
	{`[file:name LIKE 'f_o.d_l']`, one(fileObj), true},
	{`[file:name LIKE 'f_.dll']`, one(fileObj), false},
	{`[file:name LIKE '%']`, one(fileObj), true},
	{`[file:name LIKE 'foo.dll']`, one(fileObj), true},
	{`[file:name LIKE 'FOO%']`, one(fileObj), false},
	{`[file:name NOT LIKE 'bar%']`, one(fileObj), true},
	{`[x:s LIKE 'caf_']`, one(`{"type":"x","s":"cafe\u0301"}`), true},
	{"[x:s LIKE 'cafe\u0301']", one(`{"type":"x","s":"caf\u00e9"}`), true},
	{`[x:s LIKE '_✓%']`, one(`{"type":"x","s":"a✓bc"}`), true},
	{`[x:s LIKE '%a%b%c']`, one(`{"type":"x","s":"xxaxxbxxc"}`), true},
	{`[x:s LIKE '%a%b%c']`, one(`{"type":"x","s":"xxaxxbxxcx"}`), false},
	{`[directory:path LIKE 'C:\\Windows\\%\\foo']`, one(`{"type":"directory","path":"C:\\Windows\\x\\y\\foo"}`), true},
	{`[file:size LIKE '2%']`, one(fileObj), false},
	// MATCHES: search, DOTALL, binary as octets (§9.6.1)
	{`[file:name MATCHES '\\.dll$']`, one(fileObj), true},
	{`[file:name MATCHES '^oo']`, one(fileObj), false},
	{`[x:s MATCHES '^a.b$']`, one(`{"type":"x","s":"a\nb"}`), true},
	// §9.6.1 anchors as in PCRE (no MULTILINE): $ matches at the end and
	// before a newline that ends the subject; ^ only at the start.
	{`[x:s MATCHES '^a$']`, one(`{"type":"x","s":"a\n"}`), true},
	{`[x:s MATCHES '^a$']`, one(`{"type":"x","s":"a"}`), true},
	{`[x:s MATCHES '^a$']`, one(`{"type":"x","s":"a\n\n"}`), false},
	{`[x:s MATCHES '^a$']`, one(`{"type":"x","s":"\na"}`), false},
	{`[x:s MATCHES '^$']`, one(`{"type":"x","s":"\n"}`), true},
	{`[x:s MATCHES '^$']`, one(`{"type":"x","s":""}`), true},
	{`[x:s MATCHES '(?i)A$']`, one(`{"type":"x","s":"xa\n"}`), true},
	{`[x:s MATCHES '(?U)a+$']`, one(`{"type":"x","s":"baa\n"}`), true},
	{`[x:s MATCHES 'a$|^q']`, one(`{"type":"x","s":"a\n"}`), true},
	{`[x:s MATCHES 'a$']`, one(`{"type":"x","s":"a\nb"}`), false},
	{`[x:s MATCHES 'a\\z']`, one(`{"type":"x","s":"a\n"}`), false},
	{`[x:s MATCHES '^b']`, one(`{"type":"x","s":"a\nb"}`), false},
	{`[x:s MATCHES '(?m)a$']`, one(`{"type":"x","s":"a\nb"}`), true},
	{`[x:s MATCHES '(?m)^b']`, one(`{"type":"x","s":"a\nb"}`), true},
	{`[x:s MATCHES '(?m)^a$']`, one(`{"type":"x","s":"a\n"}`), true},
	{`[x:s NOT MATCHES '^a$']`, one(`{"type":"x","s":"a\n"}`), false},
	{`[artifact:payload_bin MATCHES 't$']`, one(`{"type":"artifact","payload_bin":"dGVzdAo="}`), true}, // "test\n"
	{"[x:s MATCHES '^caf\u00e9$']", one(`{"type":"x","s":"cafe\u0301"}`), true},
	{`[artifact:mime_type = 'application/vnd.tcpdump.pcap' AND artifact:payload_bin MATCHES '\\xd4\\xc3\\xb2\\xa1\\x02\\x00\\x04\\x00']`, one(artifactObj), true},
	{`[artifact:payload_bin MATCHES '^\\xd4\\xc3']`, one(artifactObj), true},
	{`[artifact:payload_bin MATCHES '^\\xc3']`, one(artifactObj), false},
	{`[directory:path MATCHES '^C:\\\\Windows\\w+$']`, one(`{"type":"directory","path":"C:\\Windows32"}`), true},
	// ISSUBSET / ISSUPERSET (§9.6.1)
	{`[ipv4-addr:value ISSUBSET '198.51.100.0/24']`, one(`{"type":"ipv4-addr","value":"198.51.100.7"}`), true},
	{`[ipv4-addr:value ISSUBSET '198.51.100.0/24']`, one(`{"type":"ipv4-addr","value":"198.51.100.0/27"}`), true},
	{`[ipv4-addr:value ISSUBSET '198.51.100.0/24']`, one(`{"type":"ipv4-addr","value":"198.51.100.0/24"}`), true},
	{`[ipv4-addr:value ISSUBSET '198.51.100.0/24']`, one(`{"type":"ipv4-addr","value":"198.51.0.0/16"}`), false},
	{`[ipv4-addr:value ISSUBSET '198.51.100.0/24']`, one(`{"type":"ipv4-addr","value":"198.51.101.1"}`), false},
	{`[ipv4-addr:value ISSUBSET '198.51.100.7']`, one(`{"type":"ipv4-addr","value":"198.51.100.7"}`), true},
	{`[ipv4-addr:value NOT ISSUBSET '10.0.0.0/8']`, one(`{"type":"ipv4-addr","value":"198.51.100.7"}`), true},
	{`[ipv4-addr:value ISSUPERSET '198.51.100.0/27']`, one(`{"type":"ipv4-addr","value":"198.51.100.0/24"}`), true},
	{`[ipv4-addr:value ISSUPERSET '198.51.100.7']`, one(`{"type":"ipv4-addr","value":"198.51.100.7"}`), true},
	{`[ipv4-addr:value ISSUPERSET '198.51.100.0/24']`, one(`{"type":"ipv4-addr","value":"198.51.100.7"}`), false},
	{`[ipv6-addr:value ISSUBSET '2001:0db8:dead:beef:0000:0000:0000:0000/64']`, one(`{"type":"ipv6-addr","value":"2001:db8:dead:beef::1"}`), true},
	{`[ipv6-addr:value ISSUBSET '::/0']`, one(`{"type":"ipv6-addr","value":"2001:db8::1"}`), true},
	{`[ipv6-addr:value ISSUBSET '::/0']`, one(`{"type":"ipv6-addr","value":"1.2.3.4"}`), false},
	{`[ipv4-addr:value ISSUBSET '0.0.0.0/0']`, one(`{"type":"ipv4-addr","value":"not an ip"}`), false},
	// IP equality on addresses, not spellings (§9.6.4)
	{`[ipv4-addr:value = '198.51.100.1/32']`, one(`{"type":"ipv4-addr","value":"198.51.100.1"}`), true},
	{`[ipv4-addr:value = '198.51.100.1']`, one(`{"type":"ipv4-addr","value":"198.51.100.1/32"}`), true},
	{`[ipv6-addr:value = '2001:0db8:dead:beef:dead:beef:dead:0001/128']`, one(`{"type":"ipv6-addr","value":"2001:db8:dead:beef:dead:beef:dead:1"}`), true},
	{`[ipv4-addr:value != '198.51.100.1/32']`, one(`{"type":"ipv4-addr","value":"198.51.100.1"}`), false},
	{`[ipv4-addr:value IN ('10.0.0.1', '198.51.100.1/32')]`, one(`{"type":"ipv4-addr","value":"198.51.100.1"}`), true},
	{`[x:value = '198.51.100.1/32']`, one(`{"type":"x","value":"198.51.100.1"}`), false},
	// paths: dictionaries, quoted keys, lists, extensions
	{`[file:hashes.'SHA-256' = 'aec0']`, one(fileObj), true},
	{`[file:hashes.MD5 = '79054025255fb1a26e4bc422aef54eb4']`, one(fileObj), true},
	{`[file:hashes.md5 = '79054025255fb1a26e4bc422aef54eb4']`, one(fileObj), false},
	{`[file:extensions.'windows-pebinary-ext'.sections[*].entropy > 7.0]`, one(fileObj), true},
	{`[file:extensions.'windows-pebinary-ext'.sections[1].entropy > 7.0]`, one(fileObj), false},
	{`[file:extensions.'windows-pebinary-ext'.sections[0].entropy > 7.0]`, one(fileObj), true},
	{`[file:extensions.'windows-pebinary-ext'.sections[2].entropy > 0]`, one(fileObj), false},
	{`[file:list[-1] = 'b']`, one(fileObj), false},
	{`[file:list[*] = 'b']`, one(fileObj), true},
	{`[file:list[*] != 'a']`, one(fileObj), true},
	// §9.6.1: NOT negates the whole comparison expression, [*] included:
	// a[*] NOT = 'a' is NOT (a[*] = 'a'), false when any element is 'a'.
	{`[file:list[*] NOT = 'a']`, one(fileObj), false},
	{`[file:list[*] NOT = 'z']`, one(fileObj), true},
	{`[file:list[0] NOT = 'a']`, one(fileObj), false},
	{`[file:empty[*] = 'a']`, one(fileObj), false},
	// §9.6.1 NOT before every operator negates the comparison expression;
	// over a list that is "no element passes", and a path reaching
	// nothing stays false (§9.6).
	{`[x:s[*] NOT = 'abc']`, one(listObj), false},
	{`[x:s[*] NOT = 'q']`, one(listObj), true},
	{`[x:s[*] NOT != 'abc']`, one(listObj), false},
	{`[x:s[*] NOT != 5]`, one(listObj), false}, // != on incompatible types is true
	{`[x:s[*] NOT = 5]`, one(listObj), true},
	{`[x:n[*] NOT > 3]`, one(listObj), false},
	{`[x:n[*] NOT > 9]`, one(listObj), true},
	{`[x:n[*] NOT < 3]`, one(listObj), false},
	{`[x:n[*] NOT < 1]`, one(listObj), true},
	{`[x:n[*] NOT >= 5]`, one(listObj), false},
	{`[x:n[*] NOT <= 1]`, one(listObj), false},
	{`[x:n[*] NOT <= 0.5]`, one(listObj), true},
	{`[x:s[*] NOT IN ('abc', 'q')]`, one(listObj), false},
	{`[x:s[*] NOT IN ('q')]`, one(listObj), true},
	{`[x:s[*] NOT LIKE 'a%']`, one(listObj), false},
	{`[x:s[*] NOT LIKE 'q%']`, one(listObj), true},
	{`[x:s[*] NOT MATCHES '^x']`, one(listObj), false},
	{`[x:s[*] NOT MATCHES '^q']`, one(listObj), true},
	{`[x:ip[*] NOT ISSUBSET '10.0.0.0/8']`, one(listObj), false},
	{`[x:ip[*] NOT ISSUBSET '172.16.0.0/12']`, one(listObj), true},
	{`[x:ip[*] NOT ISSUPERSET '192.168.0.1']`, one(listObj), false},
	{`[x:ip[*] NOT ISSUPERSET '192.168.0.2']`, one(listObj), true},
	{`[x:e[*] NOT = 'a']`, one(listObj), false},
	{`[x:missing[*] NOT = 'a']`, one(listObj), false},
	{`[x:s[0] NOT = 'abc' AND x:s[1] NOT = 'abc']`, one(listObj), false},
	{`[file:empty[*] != 'a']`, one(fileObj), false},
	{`[file:name[0] = 'f']`, one(fileObj), false},
	{`[file:name.x = 'f']`, one(fileObj), false},
	// EXISTS
	{`[EXISTS file:hashes]`, one(fileObj), true},
	{`[EXISTS file:hashes.MD5]`, one(fileObj), true},
	{`[EXISTS file:hashes.SHA1]`, one(fileObj), false},
	{`[EXISTS file:nothing]`, one(fileObj), false},
	{`[EXISTS file:empty]`, one(fileObj), true},
	{`[EXISTS file:empty[*]]`, one(fileObj), false},
	{`[EXISTS file:list[1]]`, one(fileObj), true},
	{`[EXISTS windows-registry-key:values]`, one(`{"type":"windows-registry-key","key":"k","values":[]}`), true},
	// references (§9.7.4)
	{`[network-traffic:src_ref.value = '203.0.113.10' AND network-traffic:dst_ref.value = '198.51.100.58']`, trafficObs, true},
	{`[network-traffic:src_ref.value = '203.0.113.10' AND network-traffic:dst_ref.value = '198.51.100.58']`, splitTrafficObs, false},
	{`[network-traffic:src_ref.value = '203.0.113.10' OR network-traffic:dst_ref.value = '198.51.100.58']`, splitTrafficObs, true},
	{`[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = '198.51.100.58/32']`, trafficObs, true},
	{`[network-traffic:dst_ref.value ISSUBSET '198.51.100.0/24']`, trafficObs, true},
	{`[network-traffic:src_ref = '1']`, trafficObs, true},
	{`[network-traffic:protocols[*] = 'tcp']`, trafficObs, true},
	{`[network-traffic:protocols[0] = 'tcp']`, trafficObs, false},
	{`[domain-name:value = 'www.5z8.info' AND domain-name:resolves_to_refs[*].value = '198.51.100.1/32']`, domainObs, true},
	{`[domain-name:resolves_to_refs[1].value = '2001:db8:0::1']`, domainObs, true},
	{`[domain-name:resolves_to_refs[*].type = 'ipv6-addr']`, domainObs, true},
	{`[domain-name:resolves_to_refs[2].value = '198.51.100.1']`, domainObs, false},
	{`[network-traffic:src_ref.value = '203.0.113.10']`, od(t0, t0, 1, `{"0":{"type":"network-traffic","src_ref":"9"}}`), false},
	{`[network-traffic:src_ref.value = '203.0.113.10']`, od(t0, t0, 1, `{"0":{"type":"network-traffic","src_ref":"0"}}`), false},
	{`[network-traffic:src_ref.src_ref.src_ref.value != 'x']`, od(t0, t0, 1, `{"0":{"type":"network-traffic","src_ref":"0"}}`), false},
	{`[x:name_ref.value = 'v']`, one(`{"type":"x","name_ref":"y"}`), false},
	// AND/OR inside one observation expression (§9.5)
	{`[file:name = 'foo.dll' AND file:size = 25536]`, one(fileObj), true},
	{`[file:name = 'foo.dll' AND file:size = 1]`, one(fileObj), false},
	{`[file:name = 'x' OR file:size = 25536]`, one(fileObj), true},
	{`[(file:name = 'pdf.exe' OR file:size = 25536) AND file:created = t'2014-01-13T07:03:17Z']`, one(fileObj), true},
	{`[file:name = 'x' OR ipv4-addr:value = '1.2.3.4']`, od(t0, t0, 1, `{"0":{"type":"file","name":"y"},"1":{"type":"ipv4-addr","value":"1.2.3.4"}}`), true},
	{`[file:name = 'y' AND file:size = 1]`, od(t0, t0, 1, `{"0":{"type":"file","name":"y"},"1":{"type":"file","size":1}}`), false},
}

func TestEvaluateComparisons(t *testing.T) {
	tests := comparisonCases
	for _, tt := range tests {
		obs := mustObs(t, tt.obs)
		got, _, err := Evaluate(tt.pattern, obs)
		if err != nil {
			t.Errorf("Evaluate(%s): %v", tt.pattern, err)
			continue
		}
		if got != tt.want {
			t.Errorf("Evaluate(%s) on %.80s… = %v, want %v", tt.pattern, tt.obs, got, tt.want)
		}
	}
}

// obsAt is a single-SCO observation of x:v = val at time sec (relative to
// t0), optionally spanning to lastSec and repeated n times.
func obsAt(val string, sec, lastSec float64, n int) string {
	return od(at(sec), at(lastSec), n, `{"0":{"type":"x","v":"`+val+`"}}`)
}

type obsExprCase struct {
	name    string
	pattern string
	obs     []string
	want    bool
	nUsed   int
}

var obsExprCases = []obsExprCase{
	{"and needs two", `[x:v = 'a'] AND [x:v = 'a']`, []string{obsAt("a", 0, 0, 1)}, false, 0},
	{"and two obs", `[x:v = 'a'] AND [x:v = 'a']`, []string{obsAt("a", 0, 0, 1), obsAt("a", 5, 5, 1)}, true, 2},
	{"and number_observed", `[x:v = 'a'] AND [x:v = 'a']`, []string{obsAt("a", 0, 0, 2)}, true, 1},
	{"and different", `[x:v = 'a'] AND [x:v = 'b']`, []string{obsAt("b", 0, 0, 1), obsAt("a", 5, 5, 1)}, true, 2},
	{"or", `[x:v = 'a'] OR [x:v = 'b']`, []string{obsAt("b", 0, 0, 1)}, true, 1},
	{"or none", `[x:v = 'a'] OR [x:v = 'b']`, []string{obsAt("c", 0, 0, 1)}, false, 0},
	{"no observations", `[x:v = 'a']`, nil, false, 0},
	{"followedby ordered", `[x:v = 'a'] FOLLOWEDBY [x:v = 'b']`, []string{obsAt("a", 0, 0, 1), obsAt("b", 5, 5, 1)}, true, 2},
	{"followedby reversed", `[x:v = 'a'] FOLLOWEDBY [x:v = 'b']`, []string{obsAt("b", 0, 0, 1), obsAt("a", 5, 5, 1)}, false, 0},
	{"followedby same instant", `[x:v = 'a'] FOLLOWEDBY [x:v = 'b']`, []string{obsAt("b", 5, 5, 1), obsAt("a", 5, 5, 1)}, true, 2},
	{"followedby overlapping intervals", `[x:v = 'a'] FOLLOWEDBY [x:v = 'b']`, []string{obsAt("b", 0, 10, 1), obsAt("a", 5, 20, 1)}, true, 2},
	{"followedby chain", `[x:v = 'a'] FOLLOWEDBY [x:v = 'b'] FOLLOWEDBY [x:v = 'c']`, []string{obsAt("c", 9, 9, 1), obsAt("a", 1, 1, 1), obsAt("b", 5, 5, 1)}, true, 3},
	{"followedby chain broken", `[x:v = 'a'] FOLLOWEDBY [x:v = 'b'] FOLLOWEDBY [x:v = 'c']`, []string{obsAt("c", 4, 4, 1), obsAt("a", 1, 1, 1), obsAt("b", 5, 5, 1)}, false, 0},
	// WITHIN: the latest MUST be before earliest + window (§9.5.1)
	{"within inside", `([x:v = 'a'] AND [x:v = 'b']) WITHIN 300 SECONDS`, []string{obsAt("a", 0, 0, 1), obsAt("b", 299.999, 299.999, 1)}, true, 2},
	{"within exact bound", `([x:v = 'a'] AND [x:v = 'b']) WITHIN 300 SECONDS`, []string{obsAt("a", 0, 0, 1), obsAt("b", 300, 300, 1)}, false, 0},
	{"within float", `([x:v = 'a'] AND [x:v = 'b']) WITHIN 0.5 SECONDS`, []string{obsAt("a", 0, 0, 1), obsAt("b", 0.4, 0.4, 1)}, true, 2},
	{"within intervals", `([x:v = 'a'] AND [x:v = 'b']) WITHIN 10 SECONDS`, []string{obsAt("a", 0, 100, 1), obsAt("b", 105, 200, 1)}, true, 2},
	{"within intervals apart", `([x:v = 'a'] AND [x:v = 'b']) WITHIN 10 SECONDS`, []string{obsAt("a", 0, 100, 1), obsAt("b", 110, 200, 1)}, false, 0},
	{"within picks pair", `([x:v = 'a'] FOLLOWEDBY [x:v = 'b']) WITHIN 10 SECONDS`, []string{obsAt("a", 0, 0, 1), obsAt("b", 50, 50, 1), obsAt("a", 45, 45, 1)}, true, 2},
	// REPEATS
	{"repeats", `[x:v = 'a'] REPEATS 3 TIMES`, []string{obsAt("a", 0, 0, 1), obsAt("a", 1, 1, 1), obsAt("a", 2, 2, 1)}, true, 3},
	{"repeats short", `[x:v = 'a'] REPEATS 3 TIMES`, []string{obsAt("a", 0, 0, 1), obsAt("a", 1, 1, 1)}, false, 0},
	{"repeats number_observed", `[x:v = 'a'] REPEATS 5 TIMES`, []string{obsAt("a", 0, 0, 5)}, true, 1},
	{"repeats mixed", `[x:v = 'a'] REPEATS 5 TIMES`, []string{obsAt("a", 0, 0, 3), obsAt("a", 5, 5, 2)}, true, 2},
	{"repeats huge", `[x:v = 'a'] REPEATS 1000000000 TIMES`, []string{obsAt("a", 0, 0, 5)}, false, 0},
	{"repeats within", `[x:v = 'a'] REPEATS 3 TIMES WITHIN 10 SECONDS`, []string{obsAt("a", 0, 0, 1), obsAt("a", 5, 5, 1), obsAt("a", 12, 12, 1), obsAt("a", 14, 14, 1)}, true, 3},
	{"repeats within apart", `[x:v = 'a'] REPEATS 3 TIMES WITHIN 10 SECONDS`, []string{obsAt("a", 0, 0, 1), obsAt("a", 10, 10, 1), obsAt("a", 20, 20, 1)}, false, 0},
	{"followedby repeats", `[x:v = 'b'] FOLLOWEDBY [x:v = 'c'] REPEATS 2 TIMES`, []string{obsAt("c", 0, 0, 1), obsAt("b", 1, 1, 1), obsAt("c", 2, 2, 1), obsAt("c", 3, 3, 1)}, true, 3},
	{"followedby repeats early c", `[x:v = 'b'] FOLLOWEDBY [x:v = 'c'] REPEATS 2 TIMES`, []string{obsAt("c", 0, 0, 1), obsAt("b", 1, 1, 1), obsAt("c", 2, 2, 1)}, false, 0},
	{"grouped repeats", `([x:v = 'b'] FOLLOWEDBY [x:v = 'c']) REPEATS 2 TIMES`, []string{obsAt("b", 0, 0, 1), obsAt("c", 1, 1, 1), obsAt("b", 2, 2, 1), obsAt("c", 3, 3, 1)}, true, 4},
	{"grouped repeats short", `([x:v = 'b'] FOLLOWEDBY [x:v = 'c']) REPEATS 2 TIMES`, []string{obsAt("b", 0, 0, 1), obsAt("c", 1, 1, 1), obsAt("c", 3, 3, 1)}, false, 0},
	{"and repeats within", `([x:v = 'a'] AND [x:v = 'b'] REPEATS 2 TIMES) WITHIN 60 SECONDS`, []string{obsAt("a", 0, 0, 1), obsAt("b", 10, 10, 1), obsAt("b", 59, 59, 1)}, true, 3},
	{"and repeats within late", `([x:v = 'a'] AND [x:v = 'b'] REPEATS 2 TIMES) WITHIN 60 SECONDS`, []string{obsAt("a", 0, 0, 1), obsAt("b", 10, 10, 1), obsAt("b", 60, 60, 1)}, false, 0},
	// START/STOP: >= start and < stop (§9.5.1)
	{"start bound", `[x:v = 'a'] START t'2020-01-01T00:00:00Z' STOP t'2020-01-01T00:01:00Z'`, []string{obsAt("a", 0, 0, 1)}, true, 1},
	{"stop bound", `[x:v = 'a'] START t'2020-01-01T00:00:00Z' STOP t'2020-01-01T00:01:00Z'`, []string{obsAt("a", 60, 60, 1)}, false, 0},
	{"before start", `[x:v = 'a'] START t'2020-01-01T00:00:00Z' STOP t'2020-01-01T00:01:00Z'`, []string{obsAt("a", -1, -1, 1)}, false, 0},
	{"interval into window", `[x:v = 'a'] START t'2020-01-01T00:00:00Z' STOP t'2020-01-01T00:01:00Z'`, []string{obsAt("a", -10, 0, 1)}, true, 1},
	{"empty window", `[x:v = 'a'] START t'2020-01-01T00:00:00Z' STOP t'2020-01-01T00:00:00Z'`, []string{obsAt("a", 0, 0, 1)}, false, 0},
	{"window on group", `([x:v = 'a'] AND [x:v = 'b']) START t'2020-01-01T00:00:00Z' STOP t'2020-01-01T00:01:00Z'`, []string{obsAt("a", 0, 0, 1), obsAt("b", 61, 61, 1)}, false, 0},
	{"window on one side", `[x:v = 'a'] START t'2020-01-01T00:00:00Z' STOP t'2020-01-01T00:01:00Z' AND [x:v = 'b']`, []string{obsAt("a", 0, 0, 1), obsAt("b", 61, 61, 1)}, true, 2},
	// spec §9.8 combination
	{"spec or/and", `([x:v = 'a'] AND [x:v = 'b']) OR [x:v = 'c' OR x:v = 'd']`, []string{obsAt("a", 0, 0, 1), obsAt("d", 1, 1, 1)}, true, 1},
}

func TestEvaluateObservationExpressions(t *testing.T) {
	tests := obsExprCases
	for _, tt := range tests {
		obs := mustObs(t, tt.obs...)
		p := MustParse(tt.pattern)
		res, err := p.Evaluate(obs)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if res.Matched != tt.want || len(res.Observations) != tt.nUsed {
			t.Errorf("%s: %s = %v with %d observations, want %v with %d", tt.name, tt.pattern, res.Matched, len(res.Observations), tt.want, tt.nUsed)
		}
	}
}

func TestEvaluateBudget(t *testing.T) {
	var sdos []string
	for i := range 40 {
		sdos = append(sdos, obsAt("a", float64(i*100), float64(i*100), 1))
	}
	obs := mustObs(t, sdos...)
	// 40 candidates, REPEATS 20 within a window none of them fits: the
	// search space is C(40,20); the budget must cut it off.
	p := MustParse(`([x:v = 'a'] REPEATS 20 TIMES WITHIN 1 SECONDS) AND [x:v = 'zzz' OR x:v = 'a']`)
	_, err := p.EvaluateBudget(obs, 10000)
	if !errors.Is(err, ErrBudget) {
		t.Fatalf("err = %v, want ErrBudget", err)
	}
	// number_observed multiplies observations without copying them
	many := mustObs(t, obsAt("a", 0, 0, 1_000_000))
	res, err := MustParse(`[x:v = 'a'] REPEATS 5000 TIMES`).Evaluate(many)
	if err != nil || !res.Matched {
		t.Fatalf("REPEATS 5000 over number_observed 1e6: %v, %v", res.Matched, err)
	}
	if _, err := MustParse(`[x:v = 'a'] REPEATS 500000 TIMES`).Evaluate(many); !errors.Is(err, ErrBudget) {
		t.Fatalf("REPEATS 500000: err = %v, want ErrBudget", err)
	}
}

func TestObservationsFromJSON(t *testing.T) {
	// object_refs form: SCOs beside the SDO, refs by STIX id; objects not
	// in object_refs are not found (§9.7.4).
	data := `[
	 {"type":"observed-data","id":"observed-data--1","first_observed":"2020-01-01T00:00:00Z","last_observed":"2020-01-01T00:00:00Z","number_observed":1,
	  "object_refs":["network-traffic--1","ipv4-addr--1"]},
	 {"type":"network-traffic","id":"network-traffic--1","src_ref":"ipv4-addr--1","dst_ref":"ipv4-addr--2"},
	 {"type":"ipv4-addr","id":"ipv4-addr--1","value":"10.0.0.1"},
	 {"type":"ipv4-addr","id":"ipv4-addr--2","value":"10.0.0.2"},
	 {"type":"indicator","id":"indicator--1"}
	]`
	obs, err := ObservationsFromJSON([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(obs) != 1 || len(obs[0].Objects) != 2 {
		t.Fatalf("got %d observations", len(obs))
	}
	for _, tt := range []struct {
		p    string
		want bool
	}{
		{`[network-traffic:src_ref.value = '10.0.0.1']`, true},
		{`[network-traffic:dst_ref.value = '10.0.0.2']`, false},
		{`[EXISTS network-traffic:dst_ref]`, true},
		{`[ipv4-addr:value = '10.0.0.2']`, false},
	} {
		got, _, err := Evaluate(tt.p, obs)
		if err != nil || got != tt.want {
			t.Errorf("%s = %v, %v; want %v", tt.p, got, err, tt.want)
		}
	}
	bad := []string{
		`{}`,
		`[{"type":"observed-data","first_observed":"x","last_observed":"2020-01-01T00:00:00Z","number_observed":1,"objects":{}}]`,
		`[{"type":"observed-data","first_observed":"2020-01-02T00:00:00Z","last_observed":"2020-01-01T00:00:00Z","number_observed":1,"objects":{}}]`,
		`[{"type":"observed-data","first_observed":"2020-01-01T00:00:00Z","last_observed":"2020-01-01T00:00:00Z","number_observed":0,"objects":{}}]`,
		`[{"type":"observed-data","first_observed":"2020-01-01T00:00:00Z","last_observed":"2020-01-01T00:00:00Z","number_observed":1}]`,
		`[{"type":"observed-data","first_observed":"2020-01-01T00:00:00Z","last_observed":"2020-01-01T00:00:00Z","number_observed":1,"objects":{"0":{"value":"x"}}}]`,
		`[{"type":"observed-data","first_observed":"2020-01-01T00:00:00Z","last_observed":"2020-01-01T00:00:00Z","number_observed":1,"object_refs":[1]}]`,
	}
	for _, b := range bad {
		if _, err := ObservationsFromJSON([]byte(b)); err == nil {
			t.Errorf("ObservationsFromJSON(%s) = nil error", b)
		}
	}
}

func TestNewObservationSCO(t *testing.T) {
	now := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	o, err := NewObservation(now, now, 1,
		&SCO{Key: "0", T: "network-traffic", Props: map[string]any{"dst_ref": "1", "dst_port": 443}},
		&SCO{Key: "1", T: "ipv4-addr", Value: "192.0.2.1"},
		&SCO{Key: "2", T: "file", Hashes: map[string]string{"SHA-256": "abc"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		p    string
		want bool
	}{
		{`[network-traffic:dst_ref.value ISSUBSET '192.0.2.0/24' AND network-traffic:dst_port = 443]`, true},
		{`[file:hashes.'SHA-256' = 'abc']`, true},
		{`[ipv4-addr:type = 'ipv4-addr']`, true},
		{`[EXISTS ipv4-addr:id]`, true},
	} {
		got, _, err := Evaluate(tt.p, []*Observation{o})
		if err != nil || got != tt.want {
			t.Errorf("%s = %v, %v; want %v", tt.p, got, err, tt.want)
		}
	}
	if _, err := NewObservation(now, now.Add(-time.Second), 1); err == nil {
		t.Error("last before first accepted")
	}
	if _, err := NewObservation(now, now, 0); err == nil {
		t.Error("number_observed 0 accepted")
	}
	_ = json.Valid
}
