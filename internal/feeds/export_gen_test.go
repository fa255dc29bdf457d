package feeds

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/pattern"
)

// genPattern is the i-th of a realistic mix of indicator patterns:
// addresses and ranges (v4 and v6), domains, URLs, MD5, SHA-1 and SHA-256
// hashes, e-mail addresses, IN lists, and some patterns no list carries
// (AND, FOLLOWEDBY).
func genPattern(r *rand.Rand, i int) string {
	hexs := func(n int) string {
		b := make([]byte, n)
		for j := range b {
			b[j] = "0123456789abcdef"[r.IntN(16)]
		}
		return string(b)
	}
	switch i % 20 {
	case 0, 1, 2, 3, 4:
		return fmt.Sprintf("[ipv4-addr:value = '%d.%d.%d.%d']", 1+r.IntN(222), r.IntN(256), r.IntN(256), 1+r.IntN(254))
	case 5:
		return fmt.Sprintf("[ipv4-addr:value ISSUBSET '%d.%d.%d.0/24']", 1+r.IntN(222), r.IntN(256), r.IntN(256))
	case 6:
		return fmt.Sprintf("[ipv6-addr:value = '2001:db8:%x::%x']", r.IntN(65536), 1+r.IntN(65535))
	case 7, 8, 9, 10, 11:
		return fmt.Sprintf("[domain-name:value = 'h%d-%s.example']", i, hexs(6))
	case 12, 13:
		return fmt.Sprintf("[url:value = 'http://u%d.example/p/%s?q=%d&x=a:b']", i, hexs(8), i)
	case 14:
		return fmt.Sprintf("[file:hashes.MD5 = '%s']", hexs(32))
	case 15:
		return fmt.Sprintf("[file:hashes.'SHA-1' = '%s']", hexs(40))
	case 16:
		return fmt.Sprintf("[file:hashes.'SHA-256' = '%s'] OR [file:hashes.MD5 = '%s']", hexs(64), hexs(32))
	case 17:
		return fmt.Sprintf("[domain-name:value IN ('a%d.example', 'b%d.example')] OR [ipv4-addr:value = '10.%d.%d.1']", i, i, r.IntN(256), r.IntN(256))
	case 18:
		return fmt.Sprintf("[email-addr:value = 'x%d@mail.example']", i)
	default:
		return fmt.Sprintf("[network-traffic:dst_port = %d AND network-traffic:dst_ref.value = '192.0.2.%d']", 1+r.IntN(65535), 1+r.IntN(254))
	}
}

// genSelection is n active indicators across two collections and every
// TLP level, as Select would hand them to the renderers.
func genSelection(tb testing.TB, n int) *Selection {
	tb.Helper()
	r := rand.New(rand.NewPCG(uint64(n), 7))
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	sel := &Selection{Skipped: map[string]int{}}
	levels := []access.TLP{access.TLPClear, access.TLPGreen, access.TLPAmber, access.TLPAmberStrict, access.TLPRed}
	for i := range n {
		pat := genPattern(r, i)
		p, err := pattern.Parse(pat)
		if err != nil {
			tb.Fatalf("%s: %v", pat, err)
		}
		id := fmt.Sprintf("indicator--%08x-0000-4000-8000-%012x", i, i)
		mod := t0.Add(time.Duration(i) * time.Second)
		raw, _ := json.Marshal(map[string]any{"type": "indicator", "spec_version": "2.1", "id": id,
			"created": mod.Format(time.RFC3339Nano), "modified": mod.Format(time.RFC3339Nano), "valid_from": mod.Format(time.RFC3339Nano),
			"pattern": pat, "pattern_type": "stix", "name": fmt.Sprintf("indicator %d; \"quoted\"\tname", i), "confidence": 80})
		ind := &Indicator{ID: id, Name: fmt.Sprintf("indicator %d; \"quoted\"\tname", i), Collection: fmt.Sprintf("collection-%d", i%2),
			Raw: raw, TLP: levels[i%len(levels)], Confidence: 80, Modified: mod, Created: mod, ValidFrom: mod,
			PatternType: "stix", Pattern: pat}
		ind.Values, ind.Expressible = valuesOf(p)
		ind.Score = Score{Indicator: id, Value: 80, Active: true}
		sel.Indicators = append(sel.Indicators, ind)
		if mod.After(sel.Newest) {
			sel.Newest = mod
		}
	}
	return sel
}
