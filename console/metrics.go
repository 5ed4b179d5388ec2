package console

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics count the console's API calls by endpoint and status, and time them by the table
// that answered (traffic) or the endpoint: what a console user costs ClickHouse.
type metrics struct {
	requests *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "packetlake_console_requests_total",
			Help: "API requests by endpoint and HTTP status"}, []string{"endpoint", "code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "packetlake_console_request_seconds",
			Help:    "API request duration by endpoint and the table that answered (traffic) or the endpoint's tables",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"endpoint", "table"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.seconds)
	}
	return m
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	code  int
	table string
}

func (w *statusWriter) WriteHeader(code int) { w.code = code; w.ResponseWriter.WriteHeader(code) }

func (m *metrics) wrap(endpoint string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK, table: endpoint}
		h(sw, r)
		m.requests.WithLabelValues(endpoint, strconv.Itoa(sw.code)).Inc()
		if table := w.Header().Get("X-Packetlake-Table"); table != "" {
			sw.table = table
		}
		m.seconds.WithLabelValues(endpoint, sw.table).Observe(time.Since(start).Seconds())
	}
}

func metricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
