package kafkaconn

import (
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Metrics are the counters a client's connect hook moves; a nil field counts nothing. The
// caller makes them (NewMetrics, or counters of its own) and registers them where it wants:
// this package touches no global registry.
type Metrics struct {
	Connects      prometheus.Counter // broker connections opened
	ConnectErrors prometheus.Counter // broker connections that failed; the client retries by itself
}

// NewMetrics returns <prefix>kafka_connects_total and <prefix>kafka_connect_errors_total with
// the constant labels, unregistered. Metrics is a prometheus.Collector: register it, or collect
// it from the component's own collector.
func NewMetrics(prefix string, labels prometheus.Labels) Metrics {
	return Metrics{
		Connects: prometheus.NewCounter(prometheus.CounterOpts{Name: prefix + "kafka_connects_total",
			Help: "Kafka broker connections opened.", ConstLabels: labels}),
		ConnectErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: prefix + "kafka_connect_errors_total",
			Help: "Kafka broker connections that failed (the client retries by itself).", ConstLabels: labels}),
	}
}

func (m Metrics) counters() []prometheus.Counter {
	var cs []prometheus.Counter
	for _, c := range []prometheus.Counter{m.Connects, m.ConnectErrors} {
		if c != nil {
			cs = append(cs, c)
		}
	}
	return cs
}

// Describe implements prometheus.Collector.
func (m Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.counters() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.counters() {
		c.Collect(ch)
	}
}

// connectHook counts broker connections: with Kafka down the client reconnects by itself, and
// the error counter is how an operator sees it trying. Each failure is also logged, by franz-go
// itself (a warning through kgoLogger), so the hook logs nothing. It runs once per connection
// attempt, never per record.
type connectHook struct{ m Metrics }

func (h connectHook) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	c := h.m.Connects
	if err != nil {
		c = h.m.ConnectErrors
	}
	if c != nil {
		c.Inc()
	}
}
