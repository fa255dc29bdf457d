package taxii

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"
)

// metrics are the server's HTTP and ingest metrics.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	ingested *prometheus.CounterVec
	uploads  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, log *slog.Logger) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "mitra", Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests by endpoint (route pattern), method and status code."}, []string{"endpoint", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "mitra", Subsystem: "http", Name: "request_duration_seconds",
			Help: "Time to answer HTTP requests, by endpoint and method.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 9)}, []string{"endpoint", "method"}),
		ingested: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "mitra", Subsystem: "ingest", Name: "objects_total",
			Help: "Objects POSTed to collections, by collection id and outcome (accepted, refused)."}, []string{"collection", "outcome"}),
		uploads: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "mitra", Subsystem: "http", Name: "uploads_refused_total",
			Help: "POSTs answered 503 because concurrent uploads held the memory cap."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.latency, m.ingested, m.uploads} {
			if err := reg.Register(c); err != nil {
				log.Error("register HTTP metrics", "err", err)
			}
		}
	}
	return m
}

// ingest counts the outcome of one POST to a collection.
func (m *metrics) ingest(collection string, accepted, refused int) {
	m.ingested.WithLabelValues(collection, "accepted").Add(float64(accepted))
	m.ingested.WithLabelValues(collection, "refused").Add(float64(refused))
}

// methodLabel bounds the method label to the methods the server knows.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// statusRecorder remembers the status code a handler sends.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe serves r with next and records its metrics under the route
// pattern that serves it (a bounded set, unlike paths).
func (s *Server) observe(w http.ResponseWriter, r *http.Request, next http.Handler) {
	start := time.Now()
	_, pattern := s.mux.Handler(r)
	if pattern == "/" || pattern == "" {
		pattern = "other"
	}
	pattern = strings.TrimSuffix(pattern, "{$}")
	rec := &statusRecorder{ResponseWriter: w}
	next.ServeHTTP(rec, r)
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	method := methodLabel(r.Method)
	s.metrics.requests.WithLabelValues(pattern, method, strconv.Itoa(rec.code)).Inc()
	s.metrics.latency.WithLabelValues(pattern, method).Observe(time.Since(start).Seconds())
}

// uploadCap bounds the bytes of request bodies being received and
// processed at once: each POST reserves its Content-Length (the largest
// accepted body when unknown) before its body is read.
type uploadCap struct {
	sem  *semaphore.Weighted
	size int64
	wait time.Duration
}

func newUploadCap(size int64, wait time.Duration) *uploadCap {
	return &uploadCap{sem: semaphore.NewWeighted(size), size: size, wait: wait}
}

// errUploadsBusy: the cap stayed full for the whole wait.
var errUploadsBusy = errorf(http.StatusServiceUnavailable, "Server busy", "too many uploads are being processed; retry later")

// reserve waits up to the cap's wait for room for r's body and returns the
// function that gives it back.
func (s *Server) reserveUpload(r *http.Request) (release func(), err error) {
	n := r.ContentLength
	if n > s.cfg.MaxContentLength {
		return func() {}, nil // refused with 413 before anything is read
	}
	if n < 0 {
		n = s.cfg.MaxContentLength
	}
	n = min(max(n, 1), s.uploads.size)
	ctx, cancel := context.WithTimeout(r.Context(), s.uploads.wait)
	defer cancel()
	if err := s.uploads.sem.Acquire(ctx, n); err != nil {
		if r.Context().Err() != nil {
			return nil, r.Context().Err()
		}
		s.metrics.uploads.Inc()
		return nil, errUploadsBusy
	}
	return func() { s.uploads.sem.Release(n) }, nil
}

// healthz answers that the process is up (no authentication: for load
// balancers and orchestrators).
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte("ok\n"))
}

// readyz answers whether the server can serve: the store answers and its
// schema is current. The reason of a failure is logged, not sent, since
// the endpoint needs no authentication.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	err := s.ping(ctx)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		s.log.WarnContext(ctx, "not ready", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("store unavailable\n"))
		return
	}
	w.Write([]byte("ready\n"))
}

// ping checks that the store answers and its schema is current.
func (s *Server) ping(ctx context.Context) error { return s.cfg.Store.Ping(ctx) }
