package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// newRegistry is the registry a daemon's metrics go to, with the Go runtime's and the process's.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// metricsServer serves /metrics from a registry, /healthz from a daemon's readiness (200 when
// ready() is nil, 503 with its reason otherwise: not started, stopping, the source failed, a
// partition stalled) and /livez (200 while the process answers).
type metricsServer struct {
	srv  *http.Server
	addr string // the address listened on, with the port chosen for ":0"
}

// serveMetrics listens on addr before returning, so that a taken port fails the command ("" =
// no server; the returned value is still usable).
func serveMetrics(addr string, reg *prometheus.Registry, ready func() error, log *slog.Logger) (*metricsServer, error) {
	m := &metricsServer{}
	if addr == "" {
		return m, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	// /livez is 200 whenever the process answers, ready or not: a liveness probe on /healthz
	// would restart an ingester that is only waiting for ClickHouse, and lose its place in the
	// group for nothing (deployments/kubernetes).
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "alive") })
	m.srv, m.addr = &http.Server{Handler: mux}, ln.Addr().String()
	go m.srv.Serve(ln)
	log.Info("serving /metrics and /healthz", "addr", ln.Addr().String())
	return m, nil
}

func (m *metricsServer) Close() {
	if m.srv != nil {
		m.srv.Close()
	}
}
