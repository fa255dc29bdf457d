package pattern

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// specExamples are the patterns of STIX 2.1 §9 (9.1, 9.3, 9.5, 9.5.1,
// 9.6.1 and all of 9.8), verbatim. Schematic examples such as "[ a ] AND
// [ b ]" are in specSchematic with their placeholders filled in.
var specExamples = []string{
	// §9.1
	`[ipv4-addr:value = '203.0.113.1' OR ipv4-addr:value = '203.0.113.2']`,
	`([ipv4-addr:value = '198.51.100.5'] FOLLOWEDBY [ipv4-addr:value = '198.51.100.10'])`,
	`([ipv4-addr:value = '198.51.100.5' ] AND [ipv4-addr:value = '198.51.100.10']) WITHIN 300 SECONDS`,
	`[file:name = 'foo.dll'] START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'`,
	`[ipv4-addr:value = '198.51.100.5'] AND [ ipv4-addr:value = '198.51.100.10']`,
	`[file:size = 25536]`,
	// §9.3
	`[ipv4-addr:value = '198.51.100.1/32']`,
	`[ipv4-addr:value = '198.51.100.1/32' OR ipv4-addr:value = '203.0.113.33/32' OR ipv6-addr:value = '2001:0db8:dead:beef:dead:beef:dead:0001/128']`,
	`[ipv4-addr:value = '198.51.100.1/32' OR ipv4-addr:value = '203.0.113.33/32' OR ipv6-addr:value = '2001:0db8:dead:beef:dead:beef:dead:0001/128'] REPEATS 5 TIMES`,
	`([ipv4-addr:value = '198.51.100.1/32' OR ipv4-addr:value = '203.0.113.33/32' OR ipv6-addr:value = '2001:0db8:dead:beef:dead:beef:dead:0001/128'] FOLLOWEDBY [domain-name:value = 'example.com']) WITHIN 600 SECONDS`,
	// §9.5
	`[ network-traffic:src_ref.value = '203.0.113.10' AND network-traffic:dst_ref.value = '198.51.100.58' ]`,
	// §9.5.1
	`([file:hashes.'SHA-256' = '13987239847...'] AND [windows-registry-key:key = 'hkey']) WITHIN 120 SECONDS`,
	// §9.6.1
	`[file:name = 'foo.dll']`,
	`[file:size != 4112]`,
	`[file:size > 256]`,
	`[file:size < 1024]`,
	`[file:size <= 25145]`,
	`[file:size >= 33312]`,
	`[process:name IN ('proccy', 'proximus', 'badproc')]`,
	`[directory:path LIKE 'C:\\Windows\\%\\foo']`,
	`[directory:path MATCHES '^C:\\\\Windows\\w+$']`,
	`[ipv4-addr:value ISSUBSET '198.51.100.0/24']`,
	`[ipv4-addr:value ISSUPERSET '198.51.100.0/24']`,
	`[EXISTS windows-registry-key:values]`,
	// §9.6.4
	`[artifact:payload_bin = 'dGhpcyBpcyBhIHRlc3Q=']`,
	`[artifact:payload_bin = 'this is a test']`,
	`[artifact:payload_bin = b'dGhpcyBpcyBhIHRlc3Q=']`,
	`[artifact:payload_bin = h'7468697320697320612074657374']`,
	// §9.8
	`[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']`,
	`[email-message:from_ref.value MATCHES '.+\\@example\\.com$' AND email-message:body_multipart[*].body_raw_ref.name MATCHES '^Final Report.+\\.exe$']`,
	`[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f' AND file:mime_type = 'application/x-pdf']`,
	"[file:hashes.'SHA-256' = 'bf07a7fbb825fc0aae7bf4a1177b2b31fcf8a3feeaf7092761e18c859ee52a9c' OR file:hashes.MD5 = 'cead3f77f6cda6ec00f57d76c9a6879f']\nAND [file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']",
	`([file:hashes.MD5 = '79054025255fb1a26e4bc422aef54eb4'] FOLLOWEDBY [windows-registry-key:key = 'HKEY_LOCAL_MACHINE\\foo\\bar']) WITHIN 300 SECONDS`,
	`[user-account:account_type = 'unix' AND user-account:user_id = '1007' AND user-account:account_login = 'Peter'] AND [user-account:account_type = 'unix' AND user-account:user_id = '1008' AND user-account:account_login = 'Paul'] AND [user-account:account_type = 'unix' AND user-account:user_id = '1009' AND user-account:account_login = 'Mary']`,
	`[artifact:mime_type = 'application/vnd.tcpdump.pcap' AND artifact:payload_bin MATCHES '\\xd4\\xc3\\xb2\\xa1\\x02\\x00\\x04\\x00']`,
	`[file:name = 'foo.dll' AND file:parent_directory_ref.path = 'C:\\Windows\\System32']`,
	`[file:extensions.'windows-pebinary-ext'.sections[*].entropy > 7.0]`,
	`[file:mime_type = 'image/bmp' AND file:magic_number_hex = h'ffd8']`,
	`[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = '203.0.113.33/32']`,
	`[network-traffic:dst_ref.type = 'domain-name' AND network-traffic:dst_ref.value = 'example.com'] REPEATS 5 TIMES WITHIN 1800 SECONDS`,
	`[domain-name:value = 'www.5z8.info' AND domain-name:resolves_to_refs[*].value = '198.51.100.1/32']`,
	`[url:value = 'http://example.com/foo' OR url:value = 'http://example.com/bar']`,
	`[x509-certificate:issuer = 'CN=WEBMAIL' AND x509-certificate:serial_number = '4c:0b:1d:19:74:86:a7:66:b4:1a:bf:40:27:21:76:28']`,
	`[windows-registry-key:key = 'HKEY_CURRENT_USER\\Software\\CryptoLocker\\Files' OR windows-registry-key:key = 'HKEY_CURRENT_USER\\Software\\Microsoft\\CurrentVersion\\Run\\CryptoLocker_0388']`,
	`[(file:name = 'pdf.exe' OR file:size = 371712) AND file:created = t'2014-01-13T07:03:17Z']`,
	`[email-message:sender_ref.value = 'jdoe@example.com' AND email-message:subject = 'Conference Info']`,
	`[x-usb-device:usbdrive.serial_number = '575833314133343231313937']`,
	`[process:command_line MATCHES '^.+>-add GlobalSign.cer -c -s -r localMachine Root$'] FOLLOWEDBY [process:command_line MATCHES'^.+>-add GlobalSign.cer -c -s -r localMachineTrustedPublisher$'] WITHIN 300 SECONDS`,
	`[network-traffic:dst_ref.value ISSUBSET '2001:0db8:dead:beef:0000:0000:0000:0000/64']`,
	`([file:name = 'foo.dll'] AND [windows-registry-key:key = 'HKEY_LOCAL_MACHINE\\foo\\bar']) OR [process:image_ref.name = 'fooproc' OR process:image_ref.name = 'procfoo']`,
}

// specSchematic fills in the placeholders of §9.5's schematic examples;
// "WITHIN 5 MINUTES" becomes 300 SECONDS because SECONDS is the only unit
// the qualifier table (§9.5.1) defines.
var specSchematic = []string{
	`[type-a:property_j = 'W' AND type-a:property_k = 'X'] OR [type-b:property_m = 'Y' AND type-b:property_n = 'Z']`,
	`[(type-a:property_j = 'W' AND type-a:property_k = 'X') OR (type-b:property_m = 'Y' AND type-b:property_n = 'Z')]`,
	`[type-a:property_j = 'W' AND type-a:property_k = 'X' OR type-a:property_l = 'Z']`,
	`([x:a = 1] AND [x:b = 1] REPEATS 5 TIMES) WITHIN 300 SECONDS`,
	`([x:a = 1] AND [x:b = 1]) REPEATS 5 TIMES WITHIN 300 SECONDS`,
	`[x:b = 1] FOLLOWEDBY [x:c = 1] REPEATS 5 TIMES`,
	`[x:a = 'b'] FOLLOWEDBY [x:c = 'd'] REPEATS 5 TIMES`,
	`([x:a = 'b'] FOLLOWEDBY [x:c = 'd']) REPEATS 5 TIMES`,
	`[file:extensions.'raster-image-ext'.image_height > 1]`,
	`[file:hashes.ssdeep = 'x']`,
	`[network-traffic:protocols[0] = 'tcp']`,
	`[directory:contains_refs[*].name = 'x']`,
	`[email-message:from_ref.value = 'a@b.c']`,
}

func TestSpecExamplesParse(t *testing.T) {
	for _, src := range append(append([]string{}, specExamples...), specSchematic...) {
		p, err := Parse(src)
		if err != nil {
			t.Errorf("Parse(%q): %v", src, err)
			continue
		}
		// the canonical rendering must parse to the same rendering
		again, err := Parse(p.Root.String())
		if err != nil {
			t.Errorf("re-parse of %q (%q): %v", p.Root.String(), src, err)
			continue
		}
		if again.Root.String() != p.Root.String() {
			t.Errorf("round trip changed %q to %q", p.Root.String(), again.Root.String())
		}
	}
}

// tree renders a pattern fully parenthesised, to check its structure.
func tree(n ObservationExpr) string {
	switch x := n.(type) {
	case *ObsLeaf:
		return "[" + ctree(x.Expr) + "]"
	case *ObsBinary:
		return "(" + tree(x.Left) + " " + x.Op.String() + " " + tree(x.Right) + ")"
	case *ObsWithin:
		return "(" + tree(x.X) + " WITHIN " + x.text + " SECONDS)"
	case *ObsRepeats:
		return "(" + tree(x.X) + " REPEATS " + fmt.Sprint(x.Times) + " TIMES)"
	case *ObsStartStop:
		return "(" + tree(x.X) + " START " + formatTimestampLiteral(x.Start) + " STOP " + formatTimestampLiteral(x.Stop) + ")"
	}
	return "?"
}

func ctree(e CompExpr) string {
	if x, ok := e.(*CompBinary); ok {
		op := " OR "
		if x.And {
			op = " AND "
		}
		return "(" + ctree(x.Left) + op + ctree(x.Right) + ")"
	}
	return e.String()
}

func TestParseStructure(t *testing.T) {
	tests := []struct {
		src, want string
	}{
		// §9.5.3: AND over OR over FOLLOWEDBY, left to right
		{`[a:b = 1] OR [a:b = 2] AND [a:b = 3]`, `([a:b = 1] OR ([a:b = 2] AND [a:b = 3]))`},
		{`[a:b = 1] FOLLOWEDBY [a:b = 2] OR [a:b = 3]`, `([a:b = 1] FOLLOWEDBY ([a:b = 2] OR [a:b = 3]))`},
		{`[a:b = 1] AND [a:b = 2] AND [a:b = 3]`, `(([a:b = 1] AND [a:b = 2]) AND [a:b = 3])`},
		{`[a:b = 1] FOLLOWEDBY [a:b = 2] FOLLOWEDBY [a:b = 3]`, `(([a:b = 1] FOLLOWEDBY [a:b = 2]) FOLLOWEDBY [a:b = 3])`},
		{`([a:b = 1] OR [a:b = 2]) AND [a:b = 3]`, `(([a:b = 1] OR [a:b = 2]) AND [a:b = 3])`},
		// qualifiers bind to the nearest expression (§9.5.2)
		{`[a:b = 1] FOLLOWEDBY [a:c = 2] REPEATS 5 TIMES`, `([a:b = 1] FOLLOWEDBY ([a:c = 2] REPEATS 5 TIMES))`},
		{`([a:b = 1] FOLLOWEDBY [a:c = 2]) REPEATS 5 TIMES`, `(([a:b = 1] FOLLOWEDBY [a:c = 2]) REPEATS 5 TIMES)`},
		{`[a:b = 1] REPEATS 2 TIMES WITHIN 1.5 SECONDS`, `(([a:b = 1] REPEATS 2 TIMES) WITHIN 1.5 SECONDS)`},
		{`[a:b = 1] START t'2016-01-01T00:00:00Z' STOP t'2016-01-02T00:00:00.5Z'`, `([a:b = 1] START t'2016-01-01T00:00:00Z' STOP t'2016-01-02T00:00:00.5Z')`},
		{`[a:b = 1] OR ([a:b = 2] OR [a:b = 3])`, `([a:b = 1] OR ([a:b = 2] OR [a:b = 3]))`},
		{`([a:b = 1] WITHIN 1 SECONDS) WITHIN 2 SECONDS`, `(([a:b = 1] WITHIN 1 SECONDS) WITHIN 2 SECONDS)`},
		{`([a:b = 1] WITHIN 1 SECONDS REPEATS 2 TIMES) WITHIN 2 SECONDS`, `((([a:b = 1] WITHIN 1 SECONDS) REPEATS 2 TIMES) WITHIN 2 SECONDS)`},
		{`[a:b = 1] AND ([a:b = 2] FOLLOWEDBY [a:b = 3]) REPEATS 2 TIMES`, `([a:b = 1] AND (([a:b = 2] FOLLOWEDBY [a:b = 3]) REPEATS 2 TIMES))`},
		{`[a:b = 1 OR (a:c = 2 OR a:d = 3)]`, `[(a:b = 1 OR (a:c = 2 OR a:d = 3))]`},
		// comparison precedence: AND over OR
		{`[a:b = 1 OR a:c = 2 AND a:d = 3]`, `[(a:b = 1 OR (a:c = 2 AND a:d = 3))]`},
		{`[(a:b = 1 OR a:c = 2) AND a:d = 3]`, `[((a:b = 1 OR a:c = 2) AND a:d = 3)]`},
		// every operator and NOT
		{`[a:b NOT = 1]`, `[a:b NOT = 1]`},
		{`[a:b == 1]`, `[a:b = 1]`},
		{`[a:b <> 1]`, `[a:b != 1]`},
		{`[a:b NOT IN ('x', 'y')]`, `[a:b NOT IN ('x', 'y')]`},
		{`[a:b IN ()]`, `[a:b IN ()]`},
		{`[a:b IN (1, 2.5)]`, `[a:b IN (1, 2.5)]`},
		{`[a:b NOT LIKE 'x%']`, `[a:b NOT LIKE 'x%']`},
		{`[a:b NOT MATCHES '^x']`, `[a:b NOT MATCHES '^x']`},
		{`[a:b NOT ISSUBSET '10.0.0.0/8']`, `[a:b NOT ISSUBSET '10.0.0.0/8']`},
		{`[a:b ISSUPERSET '::1']`, `[a:b ISSUPERSET '::1']`},
		// §9.6.1: NOT MAY precede every comparison operator
		{`[a:b NOT != 1]`, `[a:b NOT != 1]`},
		{`[a:b NOT > 1]`, `[a:b NOT > 1]`},
		{`[a:b NOT < 1]`, `[a:b NOT < 1]`},
		{`[a:b NOT >= 'x']`, `[a:b NOT >= 'x']`},
		{`[a:b NOT <= t'2016-01-01T00:00:00Z']`, `[a:b NOT <= t'2016-01-01T00:00:00Z']`},
		{`[a:b NOT ISSUPERSET '10.0.0.0/8']`, `[a:b NOT ISSUPERSET '10.0.0.0/8']`},
		{`[a:b NOT == 1]`, `[a:b NOT = 1]`},
		{`[a:b NOT <> 1]`, `[a:b NOT != 1]`},
		// §2.10 bounds, inclusive
		{`[a:b = 9007199254740991]`, `[a:b = 9007199254740991]`},
		{`[a:b = -9007199254740991]`, `[a:b = -9007199254740991]`},
		{`[a:b = 9007199254740993.0]`, `[a:b = 9007199254740992.0]`}, // a float, §2.6
		{`[EXISTS a:b.c]`, `[EXISTS a:b.c]`},
		// literals
		{`[a:b = 'it\'s \\ here']`, `[a:b = 'it\'s \\ here']`},
		{`[a:b = '']`, `[a:b = '']`},
		{`[a:b = 'ünïcødé ✓']`, `[a:b = 'ünïcødé ✓']`},
		{`[a:b = -5]`, `[a:b = -5]`},
		{`[a:b = 0]`, `[a:b = 0]`},
		{`[a:b = -0.5]`, `[a:b = -0.5]`},
		{`[a:b = .5]`, `[a:b = 0.5]`},
		{`[a:b = true]`, `[a:b = true]`},
		{`[a:b != false]`, `[a:b != false]`},
		{`[a:b = b'AAEC']`, `[a:b = b'AAEC']`},
		{"[a:b = b'AA\nEC']", `[a:b = b'AAEC']`},
		{`[a:b = b'']`, `[a:b = b'']`},
		{`[a:b = h'00ffab']`, `[a:b = h'00ffab']`},
		{`[a:b = h'']`, `[a:b = h'']`},
		{`[a:b > t'2014-01-13T07:03:17.123456Z']`, `[a:b > t'2014-01-13T07:03:17.123456Z']`},
		{`[a:b = t'2016-12-31T23:59:60Z']`, `[a:b = t'2017-01-01T00:00:00Z']`},
		// paths
		{`[file:hashes.'SHA-256' = 'x']`, `[file:hashes.'SHA-256' = 'x']`},
		{`[file:'hashes'.MD5 = 'x']`, `[file:hashes.MD5 = 'x']`},
		{`[a:b[0].c[*].d = 1]`, `[a:b[0].c[*].d = 1]`},
		{`[a:b[-1] = 1]`, `[a:b[-1] = 1]`},
		{`[a:b.'a.b' = 1]`, `[a:b.'a.b' = 1]`},
		{`[a:b.'AND' = 1]`, `[a:b.'AND' = 1]`},
		{`[x_custom-type:x_prop = 1]`, `[x_custom-type:x_prop = 1]`},
		// whitespace of every kind (§9.4), none where not needed
		{"[a:b='x'AND a:c=1]", `[(a:b = 'x' AND a:c = 1)]`},
		{"\u00a0[\ta:b\r\n=\u2003'x'\u3000]\u2028", `[a:b = 'x']`},
	}
	for _, tt := range tests {
		p, err := Parse(tt.src)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.src, err)
			continue
		}
		if got := tree(p.Root); got != tt.want {
			t.Errorf("Parse(%q) = %s, want %s", tt.src, got, tt.want)
		}
		// the minimal rendering keeps the structure
		q, err := Parse(p.Root.String())
		if err != nil || tree(q.Root) != tt.want {
			t.Errorf("rendering %q of %q: %v, %v", p.Root.String(), tt.src, err, q)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		src  string
		pos  int
		want string
	}{
		{``, 0, "expected '[' or '('"},
		{`   `, 3, "expected '[' or '('"},
		{`[file:name = 'a'`, 16, "expected ']'"},
		{`[file:name = 'a' OR]`, 19, "expected an object path"},
		{`[file:name = 'a'] AND`, 21, "expected '[' or '('"},
		{`[file:name = 'a']]`, 17, "expected AND, OR, FOLLOWEDBY"},
		{`[file:name 'a']`, 11, "expected a comparison operator"},
		{`[file:name = ]`, 13, "expected a constant"},
		{`[file = 'a']`, 6, "expected ':' after the object type"},
		{`[file: = 'a']`, 7, "expected a property name"},
		{`[:name = 'a']`, 1, "expected an object path"},
		{`[file:hashes.SHA-256 = 'a']`, 13, "must be quoted"},
		{`[file:name = 'a\n']`, 15, "invalid escape"},
		{`[file:name = 'abc]`, 13, "unterminated string"},
		{`[file:name = "a"]`, 13, "apostrophes"},
		{`[file:size = 01]`, 13, "leading zeros"},
		{`[file:size = +1]`, 13, "'+' sign"},
		{`[file:size = 1.]`, 13, "digits after '.'"},
		{`[file:size = 99999999999999999999]`, 13, "out of range"},
		// §9.2: the valid range of integer constants is §2.10's
		// [-(2**53)+1, (2**53)-1], not int64's.
		{`[file:size = 9007199254740992]`, 13, "out of range"},
		{`[file:size = -9007199254740992]`, 13, "out of range"},
		{`[file:size IN (1, 9223372036854775807)]`, 18, "out of range"},
		{`[a:b = 1] WITHIN 9007199254740992 SECONDS`, 17, "out of range"},
		// §9.2, §2.8: hex digits are 0-9 and the letters a-f
		{`[file:x = h'FFD8']`, 10, "lower-case a-f"},
		{`[file:x = h'ffD8']`, 10, "lower-case a-f"},
		{`[file:x = h'0x12']`, 10, "lower-case a-f"},
		// §9.2: line feeds are ignored in base64, nothing else (RFC 4648 §3.3)
		{"[file:x = b'AA\r\nEC']", 10, "carriage return"},
		{`[file:x = b'AA EC']`, 10, "base64"},
		{`[file:x = b'AAE']`, 10, "base64"},
		// §9.6.1 MATCHES: PCRE's $ and (?m)^ where RE2 cannot follow them
		{`[file:x MATCHES '(a$|b)c']`, 16, "'$' followed by more"},
		{`[file:x MATCHES 'a$\\n']`, 16, "'$' followed by more"},
		{`[file:x MATCHES '(ab$)+']`, 16, "'$' followed by more"},
		{`[file:x MATCHES '(?m)^$']`, 16, "multi-line mode"},
		{`[file:x MATCHES '(?m)^\\s*$']`, 16, "multi-line mode"},
		{`[file:x = h'abc']`, 10, "even number"},
		{`[file:x = h'zz']`, 10, "invalid hex"},
		{`[file:x = b'a']`, 10, "base64"},
		{`[file:x = t'2016-02-30T00:00:00Z']`, 10, "does not exist"},
		{`[file:x = t'2016-01-01 00:00:00Z']`, 10, "invalid timestamp"},
		{`[file:x = t'2016-01-01T00:00:00+01:00']`, 10, "invalid timestamp"},
		{`[file:x = t'2016-01-01t00:00:00z']`, 10, "invalid timestamp"},
		{`[file:x > true]`, 8, "booleans"},
		{`[file:x IN ('a', 1)]`, 17, "mixes string and integer"},
		{`[file:x IN ('a' 'b')]`, 16, "expected ',' or ')'"},
		{`[file:x IN 'a']`, 11, "expected '('"},
		{`[file:x LIKE 5]`, 13, "string constant after LIKE"},
		{`[file:x MATCHES '(a)\\1']`, 16, "backreference"},
		{`[file:x MATCHES 'a(?=b)']`, 18, "lookahead"},
		{`[file:x MATCHES '(?<!a)b']`, 16, "lookbehind"},
		{`[file:x MATCHES 'a++']`, 18, "possessive"},
		{`[file:x MATCHES 'a{2}+']`, 20, "possessive"},
		{`[file:x MATCHES '(?>a)']`, 16, "atomic group"},
		{`[file:x MATCHES '(?x)a b']`, 16, "inline option"},
		{`[file:x MATCHES '(?R)']`, 16, "recursion"},
		{`[file:x MATCHES 'a\\Z']`, 16, `escape \Z`},
		{`[file:x MATCHES '(']`, 16, "missing closing )"},
		{`[ipv4-addr:value ISSUBSET 'example.com']`, 26, "IPv4 or IPv6"},
		{`[ipv4-addr:value ISSUBSET '10.0.0.0/33']`, 26, "IPv4 or IPv6"},
		{`[a:b = 1] WITHIN 0 SECONDS`, 17, "positive"},
		{`[a:b = 1] WITHIN -1 SECONDS`, 17, "positive"},
		{`[a:b = 1] WITHIN 5`, 18, "SECONDS"},
		{`[a:b = 1] WITHIN 5 MINUTES`, 19, "SECONDS"},
		{`[a:b = 1] REPEATS 0 TIMES`, 18, "positive integer"},
		{`[a:b = 1] REPEATS 1.5 TIMES`, 18, "positive integer"},
		{`[a:b = 1] REPEATS 2 TIMES REPEATS 3 TIMES`, 26, "duplicate REPEATS"},
		{`[a:b = 1] WITHIN 2 SECONDS WITHIN 3 SECONDS`, 27, "duplicate WITHIN"},
		{`[a:b = 1] START '2016-01-01T00:00:00Z' STOP '2017-01-01T00:00:00Z'`, 16, "timestamp"},
		{`[a:b = 1] START t'2016-01-01T00:00:00Z'`, 39, "STOP"},
		{`[a:b = 1 AND c:d = 2]`, 0, "AND joins comparisons on object types a and c"},
		{`[(a:b = 1 OR c:d = 2) AND e:f = 3]`, 0, "object types a/c and e"},
		{`[a:b = 1] and [a:b = 2]`, 10, "identifier \"and\""},
		{`[a:b = 1 and a:c = 2]`, 9, "expected ']'"},
		{`[a:b = TRUE]`, 7, "expected a constant"},
		{`[NOT a:b = 1]`, 1, "NOT must follow"},
		{`[a:b EXISTS]`, 5, "EXISTS goes before"},
		{`[a:b[x] = 1]`, 5, "list index"},
		{`[a:b[1 = 1]`, 7, "expected ']' after the list index"},
		{`[a:b = 1] FOLLOWEDBY`, 20, "expected '[' or '('"},
		{`([a:b = 1]`, 10, "expected ')'"},
		{`[a:b = 'é' ! 1]`, 11, "'!' must be followed by '='"},
		{`[a:b = 1] #`, 10, "unexpected character"},
		{strings.Repeat("(", 300) + "[a:b = 1]" + strings.Repeat(")", 300), 200, "nesting deeper"},
		{"[a:b = '\xff']", 8, "not valid UTF-8"},
	}
	for _, tt := range tests {
		err := Check(tt.src)
		if err == nil {
			t.Errorf("Check(%q) = nil, want error containing %q", tt.src, tt.want)
			continue
		}
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Check(%q) error %T is not *SyntaxError", tt.src, err)
			continue
		}
		if se.Pos != tt.pos || !strings.Contains(se.Msg, tt.want) {
			t.Errorf("Check(%q) = %q (pos %d), want pos %d and %q", tt.src, err, se.Pos, tt.pos, tt.want)
		}
		if !strings.HasPrefix(err.Error(), "position ") {
			t.Errorf("Check(%q) error text %q lacks the position prefix", tt.src, err)
		}
	}
}

func TestRegexTranslation(t *testing.T) {
	tests := []struct {
		re, in string
		want   bool
	}{
		{`^a.b$`, "a\nb", true}, // DOTALL (§9.6.1)
		{`b`, "abc", true},      // search, not full match
		{`\h+x`, "\t x", true},
		{`\v`, "\r", true},
		{`\V`, "a", true},
		{`\Qa.b\E`, "a.b", true},
		{`\Qa.b\E`, "axb", false},
		{`[]a]`, "]", true},
		{`[^]a]`, "b", true},
		{`[[:digit:]]+`, "42", true},
		{`a{2,3}`, "aa", true},
		{`x{abc`, "x{abc", true},
		{`(?i)ABC`, "abc", true},
		{`(?P<n>a)b`, "ab", true},
		{`\e`, "\x1b", true},
		{`\xd4`, "\u00d4", true},
		{`a\012b`, "a\nb", true},
		{`\Aab\z`, "ab", true},
		{`(?<n>a)b`, "ab", true},
		{`\p{Greek}`, "λ", true},
		{`[\p{Greek}x]`, "λ", true},
		{`\x{3bb}{2}`, "λλ", true},
		{`a*?b`, "aab", true},
	}
	for _, tt := range tests {
		re, err := compileRegex(tt.re)
		if err != nil {
			t.Errorf("compileRegex(%q): %v", tt.re, err)
			continue
		}
		if got := re.MatchString(tt.in); got != tt.want {
			t.Errorf("%q on %q = %v, want %v", tt.re, tt.in, got, tt.want)
		}
	}
}
