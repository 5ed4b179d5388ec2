package collector

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/packetlake/packetlake/internal/testkit/logbuf"
)

// TestKafkaConnectErrorsLoggedAndCounted: with no broker listening, the collector's Kafka
// clients say so in its log (with its host and iface) and count each failed connection in
// /metrics; before kafkaconn their connection errors went nowhere.
func TestKafkaConnectErrorsLoggedAndCounted(t *testing.T) {
	cfg := testConfig(deadPort(t))
	var logs logbuf.Buffer
	reg := prometheus.NewRegistry()
	startLiveWith(t, cfg, slog.New(slog.NewTextHandler(&logs, nil)), reg)
	const want = "unable to open connection to broker"
	if !waitFor(10*time.Second, func() bool { return connectErrors(t, reg) > 0 && strings.Contains(logs.String(), want) }) {
		t.Fatalf("within 10 s: %v connect errors counted, log:\n%s", connectErrors(t, reg), logs.String())
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, want) && (!strings.Contains(line, "host=test-host") || !strings.Contains(line, "component=kafka")) {
			t.Errorf("connection error logged without the collector's attributes: %s", line)
		}
	}
}

// connectErrors is packetlake_collector_kafka_connect_errors_total as reg serves it.
func connectErrors(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == metricPrefix+"kafka_connect_errors_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}
