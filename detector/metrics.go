package detector

import "github.com/prometheus/client_golang/prometheus"

// metrics are the detector's counters: every cycle, query, anomaly and webhook delivery moves
// one of them.
type metrics struct {
	cycles         prometheus.Counter
	cycleDuration  prometheus.Histogram
	queryDuration  *prometheus.HistogramVec // detector
	errors         *prometheus.CounterVec   // detector (a kind, or "insert")
	anomalies      *prometheus.CounterVec   // kind: new anomalies written
	active         *prometheus.GaugeVec     // kind: incidents still being detected
	suppressed     *prometheus.CounterVec   // kind: detections explained by another kind's incident
	held           prometheus.Gauge         // volume spikes found once, waiting one cycle to be confirmed
	webhook        *prometheus.CounterVec   // result: delivered, failed, dropped
	webhookRetries prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns, sub = "packetlake", "detector"
	m := &metrics{
		cycles: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "cycles_total", Help: "Detection cycles run (every detector once)."}),
		cycleDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "cycle_duration_seconds", Help: "Duration of a detection cycle: the queries, the insert of new anomalies.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}),
		queryDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "query_duration_seconds", Help: "Duration of one detector's query.",
			Buckets: prometheus.ExponentialBuckets(0.002, 2, 13)}, []string{"detector"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "errors_total", Help: "Failed detector queries (by detector) and failed inserts of anomalies (detector=\"insert\")."}, []string{"detector"}),
		anomalies: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "anomalies_total", Help: "New anomalies written (a continuing incident counts once)."}, []string{"kind"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "active_anomalies", Help: "Incidents still detected within rearm-after."}, []string{"kind"}),
		suppressed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "suppressed_total", Help: "Volume spikes not reported because a more specific incident explains them."}, []string{"kind"}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "held_volume_spikes", Help: "Volume spikes found by the last cycle and held for one more before they are reported (a flood's own detector may see it a cycle later)."}),
		webhook: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "webhook_deliveries_total", Help: "Anomalies POSTed to the webhook, by result: delivered, failed (after the retries), dropped (queue full or shutdown)."}, []string{"result"}),
		webhookRetries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "webhook_retries_total", Help: "Webhook POSTs retried after a failure."}),
	}
	for _, k := range Kinds {
		m.anomalies.WithLabelValues(k)
		m.active.WithLabelValues(k)
	}
	for _, r := range []string{"delivered", "failed", "dropped"} {
		m.webhook.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.cycles, m.cycleDuration, m.queryDuration, m.errors, m.anomalies, m.active,
			m.suppressed, m.held, m.webhook, m.webhookRetries)
	}
	return m
}
