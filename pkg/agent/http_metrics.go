package agent

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics counts the admin API's requests per route and logs the
// writes that failed.
type httpMetrics struct {
	once     sync.Once
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// requestMetrics returns the API's request metrics, made on first use.
func (s *apiServer) requestMetrics() *httpMetrics {
	m := &s.httpMetrics
	m.once.Do(func() {
		m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dstate_http_requests_total",
			Help: "Admin API requests answered, by method, route pattern and status code.",
		}, []string{"method", "route", "code"})
		m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dstate_http_request_duration_seconds",
			Help:    "Time to answer an admin API request, by method and route pattern (a watch stream counts until it ends).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route"})
	})
	return m
}

// Describe and Collect make the request metrics a collector.
func (m *httpMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.requests.Describe(ch)
	m.duration.Describe(ch)
}

// Collect reports the request metrics.
func (m *httpMetrics) Collect(ch chan<- prometheus.Metric) {
	m.requests.Collect(ch)
	m.duration.Collect(ch)
}

// maxLoggedReason bounds how much of a failed write's answer is kept for
// its log line.
const maxLoggedReason = 512

// instrument counts the requests of one route and logs, at warn, a
// state-changing request (PUT, POST, DELETE) answered with an error, with
// the status and the answer's error message.
func (s *apiServer) instrument(pattern string, h http.Handler) http.Handler {
	m := s.requestMetrics()
	method, route, ok := strings.Cut(pattern, " ")
	if !ok {
		method, route = "", pattern
	}
	write := method != http.MethodGet && method != http.MethodHead && method != ""
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &statusWriter{ResponseWriter: w, keep: write}
		h.ServeHTTP(rw, r)
		code := rw.status
		if code == 0 {
			code = http.StatusOK
		}
		m.requests.WithLabelValues(r.Method, route, strconv.Itoa(code)).Inc()
		m.duration.WithLabelValues(r.Method, route).Observe(time.Since(start).Seconds())
		if write && code >= 400 {
			s.log.Warn("API write failed", "method", r.Method, "path", r.URL.Path, "status", code,
				"reason", failureReason(rw.body.Bytes()), "remote", r.RemoteAddr)
		}
	})
}

// failureReason is the error message of an APIError answer, else the
// answer's text.
func failureReason(body []byte) string {
	var e APIError
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	return strings.TrimSpace(string(body))
}

// statusWriter records the status of an answer and, when keep is set and
// the status is an error, the start of its body.
type statusWriter struct {
	http.ResponseWriter
	status int
	keep   bool
	body   bytes.Buffer
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.keep && w.status >= 400 && w.body.Len() < maxLoggedReason {
		w.body.Write(p[:min(len(p), maxLoggedReason-w.body.Len())])
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection's writer (the
// watch stream flushes and extends its deadlines through it).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush flushes the answer, for handlers that assert http.Flusher.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
