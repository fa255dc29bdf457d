package detect

import (
	"bytes"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetricsAndProgress(t *testing.T) {
	reg := prometheus.NewRegistry()
	var progress bytes.Buffer
	d, err := New(Config{Indicators: &StaticIndicators{List: testIndicators}, Sink: newMemSink(t), Identity: testOrg,
		Registerer: reg, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Run(t.Context(), &FileSource{Path: "testdata/zeek/dns.log"}); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			got[mf.GetName()] = c.GetValue()
		} else {
			got[mf.GetName()] = m.GetGauge().GetValue()
		}
	}
	want := map[string]float64{"mitra_detect_events_total": 6, "mitra_detect_matches_total": 5, "mitra_detect_malformed_total": 2,
		"mitra_detect_sightings_written_total": 4, "mitra_detect_indicators": float64(len(testIndicators))}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if !strings.Contains(progress.String(), "detect: 6 events") || !strings.Contains(progress.String(), "2 malformed") {
		t.Errorf("progress line: %q", progress.String())
	}
}
