package incident_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/incident"
)

const goodRegimes = `# A national CERT's own rules.
regimes:
  - name: ncsc-xx
    title: National rules of XX
    stages:
      - name: notification
        party: operator
        within: 6h
        after: awareness
        on: report
      - name: acknowledgement
        party: cert
        within: 2h
        after: notification
        on: acknowledge
        warn: 30m
      - name: final-report
        party: operator
        within: 20d
        after: reported
        on: final
        basis: Order 12, item 3
`

func TestParseRegimes(t *testing.T) {
	rs, err := incident.ParseRegimes("regimes.yaml", []byte(goodRegimes))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Name != "ncsc-xx" || len(rs[0].Stages) != 3 {
		t.Fatalf("regimes = %+v", rs)
	}
	s := rs[0].Stages
	if time.Duration(s[0].Within) != 6*time.Hour || time.Duration(s[1].Warn) != 30*time.Minute || time.Duration(s[2].Within) != 20*24*time.Hour || s[2].Basis != "Order 12, item 3" {
		t.Fatalf("stages = %+v", s)
	}
	all, err := incident.NewRegimes(rs...)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range all.List() {
		names = append(names, r.Name)
	}
	if strings.Join(names, ",") != "nis2,gossopka,gossopka-significant,ncsc-xx" {
		t.Fatalf("regimes = %v", names)
	}
}

func TestBadRegimeFilesNameLineAndField(t *testing.T) {
	cases := []struct {
		name, edit, from string
		line             int
		field, msg       string
	}{
		{"bad duration", "within: 2h", "within: 2x", 13, "regimes[0].stages[1].within", `"2x" is not a duration`},
		{"unknown field", "warn: 30m", "wran: 30m", 16, "regimes[0].stages[1].wran", "unknown field"},
		{"bad party", "party: cert", "party: csirt", 12, "regimes[0].stages[1].party", `"csirt"`},
		{"later stage as base", "after: notification", "after: final-report", 14, "regimes[0].stages[1].after", "earlier stage"},
		{"bad event", "on: final", "on: done", 21, "regimes[0].stages[2].on", `"done"`},
		{"missing within", "        within: 20d\n", "", 17, "regimes[0].stages[2].within", "missing"},
		{"bad name", "name: ncsc-xx", "name: NCSC XX", 3, "regimes[0].name", "lower-case"},
		{"string list", "title: National rules of XX", "title: [a, b]", 4, "regimes[0].title", "want a string"},
		{"yaml syntax", "    stages:\n", "    stages: [\n", 5, "", "did not find expected"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := strings.Replace(goodRegimes, c.edit, c.from, 1)
			if doc == goodRegimes {
				t.Fatalf("edit %q not applied", c.edit)
			}
			_, err := incident.ParseRegimes("regimes.yaml", []byte(doc))
			var fe *incident.FileError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a *FileError", err)
			}
			if fe.File != "regimes.yaml" || fe.Line != c.line || fe.Field != c.field || !strings.Contains(fe.Msg, c.msg) {
				t.Fatalf("err = %q (line %d, field %q), want line %d, field %q, message with %q", err, fe.Line, fe.Field, c.line, c.field, c.msg)
			}
		})
	}
}

func TestRegimeValidation(t *testing.T) {
	r := incident.Builtin()[0]
	r.Stages = append(r.Stages, incident.Stage{Name: "extra", Party: "operator", After: "nowhere", Within: incident.Duration(time.Hour)})
	if err := r.Validate(); err == nil || !strings.Contains(err.Error(), "stages[5].after") {
		t.Fatalf("Validate = %v", err)
	}
	for _, r := range incident.Builtin() {
		if err := r.Validate(); err != nil {
			t.Errorf("built-in %s: %v", r.Name, err)
		}
	}
}

// TestREADMERegimeExample parses the example of the README (flow style).
func TestREADMERegimeExample(t *testing.T) {
	doc := `regimes:
  - name: ncsc-xx
    title: National rules of XX
    stages:
      - {name: notification, party: operator, within: 6h, after: awareness, on: report}
      - {name: acknowledgement, party: cert, within: 2h, after: notification, on: acknowledge, warn: 30m}
      - {name: final-report, party: operator, within: 20d, after: notification, on: final, basis: "Order 12, item 3"}
`
	rs, err := incident.ParseRegimes("regimes.yaml", []byte(doc))
	if err != nil || len(rs) != 1 || len(rs[0].Stages) != 3 || rs[0].Stages[2].Basis != "Order 12, item 3" {
		t.Fatalf("ParseRegimes = %+v, %v", rs, err)
	}
}
