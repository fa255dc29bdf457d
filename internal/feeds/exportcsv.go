package feeds

import (
	"bytes"
	"encoding/csv"
	"strconv"
	"time"

	"github.com/mitra-cert/mitra/internal/stix"
)

// csvHeader names the CSV export's columns.
var csvHeader = []string{"indicator", "name", "tlp", "confidence", "score", "kind", "value", "valid_from", "valid_until", "collection"}

// renderCSV is one row per value (RFC 4180 quoting); an indicator whose
// pattern is more than a list of values is one row of kind "stix-pattern"
// carrying the pattern, so that CSV leaves nothing out.
func renderCSV(sel *Selection, _ RenderOptions, _ func(string)) ([]File, error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	if err := w.Write(csvHeader); err != nil {
		return nil, err
	}
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return stix.FormatMicro(t)
	}
	for _, ind := range sel.Indicators {
		row := []string{ind.ID, ind.Name, ind.TLP.String(), strconv.Itoa(ind.Confidence),
			strconv.FormatFloat(ind.Score.Value, 'f', 2, 64), "", "", ts(ind.ValidFrom), ts(ind.ValidUntil), ind.Collection}
		if !ind.Expressible {
			row[5], row[6] = "stix-pattern", ind.Pattern
			if err := w.Write(row); err != nil {
				return nil, err
			}
			continue
		}
		for _, v := range ind.Values {
			row[5], row[6] = v.Kind.String(), v.V
			if err := w.Write(row); err != nil {
				return nil, err
			}
		}
	}
	w.Flush()
	return []File{{Name: "indicators.csv", ContentType: "text/csv; charset=utf-8", Data: b.Bytes()}}, w.Error()
}
