package enrich

import "github.com/prometheus/client_golang/prometheus"

// metrics: every load, cycle and failure moves one of them.
type metrics struct {
	geoLoads    *prometheus.CounterVec // kind
	geoErrors   *prometheus.CounterVec // kind
	geoNetworks *prometheus.GaugeVec   // kind: networks of the load in use
	pdnsCycles  prometheus.Counter
	pdnsErrors  prometheus.Counter
	pdnsRows    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns, sub = "packetlake", "enrich"
	m := &metrics{
		geoLoads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "geoip_loads_total", Help: "GeoIP databases loaded into ClickHouse (a changed file counts again)."}, []string{"kind"}),
		geoErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "geoip_load_errors_total", Help: "GeoIP loads that failed (unreadable or corrupt file, ClickHouse error); the previous load stays in use."}, []string{"kind"}),
		geoNetworks: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "geoip_networks", Help: "Networks of the GeoIP load in use."}, []string{"kind"}),
		pdnsCycles: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "passive_dns_cycles_total", Help: "Passive DNS cycles that completed."}),
		pdnsErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "passive_dns_errors_total", Help: "Passive DNS cycles that failed; the next one reads their window again."}),
		pdnsRows: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "passive_dns_rows_total", Help: "Rows the passive DNS cycles inserted into passive_dns (before merges fold repeats)."}),
	}
	for _, k := range geoKinds {
		m.geoLoads.WithLabelValues(k)
		m.geoErrors.WithLabelValues(k)
	}
	if reg != nil {
		reg.MustRegister(m.geoLoads, m.geoErrors, m.geoNetworks, m.pdnsCycles, m.pdnsErrors, m.pdnsRows)
	}
	return m
}
