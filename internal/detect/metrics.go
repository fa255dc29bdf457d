package detect

import (
	"github.com/prometheus/client_golang/prometheus"
)

// register adds the detector's metrics to reg. They read the detector's
// counters when scraped, so matching pays nothing for them.
func (d *Detector) register(reg prometheus.Registerer) error {
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "mitra", Subsystem: "detect", Name: name, Help: help}, f)
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "mitra", Subsystem: "detect", Name: name, Help: help}, f)
	}
	cs := []prometheus.Collector{
		counter("events_total", "Telemetry records decoded.", func() float64 { return float64(d.events.Load()) }),
		counter("matches_total", "Indicator matches.", func() float64 { return float64(d.matches.Load()) }),
		counter("sightings_written_total", "Sighting versions written to the sink.", func() float64 { return float64(d.sightings.Load()) }),
		counter("malformed_total", "Input lines skipped as malformed.", func() float64 { return float64(d.malformed.Load()) }),
		counter("sink_errors_total", "Failed writes to the sink (retried).", func() float64 { return float64(d.sinkErrors.Load()) }),
		counter("redelivered_total", "Stream messages delivered again.", func() float64 { return float64(d.redelivered.Load()) }),
		counter("duplicates_total", "Stream messages delivered again that were already counted (acknowledged only).", func() float64 { return float64(d.duplicates.Load()) }),
		gauge("indicators", "Indicators loaded in the matcher.", func() float64 { return float64(d.cfg.Indicators.Len()) }),
		gauge("lag_seconds", "Clock minus the newest event time seen.", func() float64 { return d.Stats().Lag.Seconds() }),
		gauge("stream_pending", "Messages waiting in the NATS stream for the consumer.", func() float64 { return float64(d.pending.Load()) }),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
