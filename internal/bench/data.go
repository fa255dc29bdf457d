// Package bench measures Mitra on the operator's own machine: TAXII ingest
// and paginated reads through the real server over loopback HTTP, pattern
// matching with the Matcher, and detection with the detector, so that
// hardware can be sized from figures taken on it.
package bench

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Generator makes realistic STIX 2.1 indicators: random UUIDv4 ids,
// creation times spread over two years in no particular order, and
// patterns of the kinds threat feeds carry (addresses and networks,
// domains, URLs, file hashes, e-mail addresses, some compound). It is
// deterministic for a seed, and not safe for concurrent use.
type Generator struct {
	r    *rand.Rand
	base time.Time
	n    uint64
}

// NewGenerator returns a Generator seeded with seed.
func NewGenerator(seed uint64) *Generator {
	return &Generator{r: rand.New(rand.NewPCG(seed, seed^0x9E3779B97F4A7C15)), base: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// TLP marking-definition ids (TLP 2.0) in the proportions the generator
// uses: mostly CLEAR, GREEN and AMBER, a few AMBER+STRICT.
var markings = []string{
	"marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
	"marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
	"marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
	"marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
	"marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
	"marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
	"marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
}

var phases = []string{"initial-access", "execution", "persistence", "command-and-control", "exfiltration", "impact", "lateral-movement"}

// uuid4 returns a random version 4 UUID.
func (g *Generator) uuid4() string {
	var out [36]byte
	g.putUUID4(out[:])
	return string(out[:])
}

// putUUID4 writes a random version 4 UUID into out[:36] (no allocation:
// the benchmark's clients share the CPU with the server they measure).
func (g *Generator) putUUID4(out []byte) {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], g.r.Uint64())
	binary.LittleEndian.PutUint64(b[8:], g.r.Uint64())
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], b[10:16])
}

// Pattern returns the i-th pattern of the mix: the same i gives the same
// pattern, so that observations can be built to match it (Observed).
func Pattern(i uint64) string {
	switch i % 20 {
	case 0, 1, 2, 3, 4, 5:
		return fmt.Sprintf("[ipv4-addr:value = '%s']", ipv4(i))
	case 6:
		return fmt.Sprintf("[ipv4-addr:value ISSUBSET '%s/%d']", ipv4(i), 24+i%8)
	case 7:
		return fmt.Sprintf("[ipv6-addr:value = '%s']", ipv6(i))
	case 8, 9, 10:
		return fmt.Sprintf("[domain-name:value = '%s']", domain(i))
	case 11, 12:
		return fmt.Sprintf("[url:value = 'http://%s/%x/index.php']", domain(i), i)
	case 13, 14:
		return fmt.Sprintf("[file:hashes.MD5 = '%032x']", hash(i, 16))
	case 15, 16:
		return fmt.Sprintf("[file:hashes.'SHA-256' = '%064x']", hash(i, 32))
	case 17:
		return fmt.Sprintf("[email-addr:value = 'user%d@%s']", i, domain(i))
	case 18:
		return fmt.Sprintf("[network-traffic:dst_ref.value = '%s' AND network-traffic:dst_port = %d]", ipv4(i), 1024+i%60000)
	default:
		return fmt.Sprintf("[domain-name:value = '%s'] OR [ipv4-addr:value = '%s']", domain(i), ipv4(i))
	}
}

func ipv4(i uint64) string {
	x := uint32(i)*2654435761 + 0x0a000000
	return fmt.Sprintf("%d.%d.%d.%d", byte(x>>24), byte(x>>16), byte(x>>8), byte(x))
}

func ipv6(i uint64) string {
	x := i * 0x9E3779B97F4A7C15
	return fmt.Sprintf("2001:db8:%x:%x:%x::%x", uint16(x>>48), uint16(x>>32), uint16(x>>16), uint16(x))
}

func domain(i uint64) string { return fmt.Sprintf("h%x.example%d.com", uint32(i)*2246822519, i%97) }

func hash(i uint64, n int) []byte {
	b := make([]byte, n)
	x := i*0x9E3779B97F4A7C15 + 1
	for j := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[j] = byte(x)
	}
	return b
}

// stamp formats t as a STIX timestamp with millisecond precision.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// Indicator appends one indicator, as JSON, to sb: about 800 bytes.
func (g *Generator) Indicator(sb *strings.Builder) {
	i := g.r.Uint64N(1 << 40)
	g.n++
	created := g.base.Add(time.Duration(g.r.Int64N(int64(2 * 365 * 24 * time.Hour))))
	modified := created
	if g.r.IntN(3) == 0 {
		modified = created.Add(time.Duration(g.r.Int64N(int64(90 * 24 * time.Hour))))
	}
	pat := Pattern(i)
	fmt.Fprintf(sb, `{"type":"indicator","spec_version":"2.1","id":"indicator--%s","created":"%s","modified":"%s",`,
		g.uuid4(), stamp(created), stamp(modified))
	fmt.Fprintf(sb, `"name":"Malicious activity %d","description":"Observed in campaign %d by sensor %d; block and hunt for related activity.",`,
		i, g.r.IntN(5000), g.r.IntN(300))
	fmt.Fprintf(sb, `"indicator_types":["malicious-activity"],"pattern":%q,"pattern_type":"stix","valid_from":"%s",`, pat, stamp(created))
	if g.r.IntN(4) == 0 {
		fmt.Fprintf(sb, `"valid_until":"%s",`, stamp(created.Add(365*24*time.Hour)))
	}
	fmt.Fprintf(sb, `"kill_chain_phases":[{"kill_chain_name":"mitre-attack","phase_name":"%s"}],`, phases[g.r.IntN(len(phases))])
	fmt.Fprintf(sb, `"labels":["c2","campaign-%d"],"confidence":%d,"object_marking_refs":["%s"],`, g.r.IntN(100), 50+g.r.IntN(50), markings[g.r.IntN(len(markings))])
	fmt.Fprintf(sb, `"external_references":[{"source_name":"cert","external_id":"CERT-%d","url":"https://cert.example/advisories/%d"}]}`, i, i)
}

// Envelope returns a TAXII envelope of n indicators.
func (g *Generator) Envelope(n int) []byte {
	var sb strings.Builder
	sb.Grow(n * 900)
	sb.WriteString(`{"objects":[`)
	for k := range n {
		if k > 0 {
			sb.WriteByte(',')
		}
		g.Indicator(&sb)
	}
	sb.WriteString(`]}`)
	return []byte(sb.String())
}

// EnvelopeSource hands out envelopes of n new indicators cheaply: it
// generates a few envelopes once and then copies one with a fresh random
// id in every object, so that the benchmark's own clients, which share the
// machine with the server, spend little CPU.
type EnvelopeSource struct {
	g         *Generator
	templates [][]byte
	offsets   [][]int // of the UUID in each object's id
	next      int
}

// NewEnvelopeSource returns a source of envelopes of n indicators built
// from g.
func NewEnvelopeSource(g *Generator, n int) *EnvelopeSource {
	const variants = 8
	s := &EnvelopeSource{g: g}
	const prefix = `"id":"indicator--`
	for range variants {
		t := g.Envelope(n)
		var offs []int
		for i := 0; ; {
			k := strings.Index(string(t[i:]), prefix)
			if k < 0 {
				break
			}
			offs = append(offs, i+k+len(prefix))
			i += k + len(prefix)
		}
		s.templates = append(s.templates, t)
		s.offsets = append(s.offsets, offs)
	}
	return s
}

// Next returns a new envelope.
func (s *EnvelopeSource) Next() []byte {
	k := s.next % len(s.templates)
	s.next++
	b := append([]byte(nil), s.templates[k]...)
	for _, off := range s.offsets[k] {
		s.g.putUUID4(b[off : off+36])
	}
	return b
}
