package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsServer serves /metrics from reg and /healthz, which answers 200 once ready() was
// called (the component started: schema applied, group joined) and 503 before and after stop.
type metricsServer struct {
	srv   *http.Server
	addr  string // the address listened on, with the port chosen for ":0"
	ready atomic.Bool
}

// serveMetrics listens on addr ("" = no server; the returned value is still usable).
func serveMetrics(addr string, reg *prometheus.Registry, log *slog.Logger) (*metricsServer, error) {
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
		if m.ready.Load() {
			fmt.Fprintln(w, "ok")
			return
		}
		http.Error(w, "not running", http.StatusServiceUnavailable)
	})
	m.srv, m.addr = &http.Server{Handler: mux}, ln.Addr().String()
	go m.srv.Serve(ln)
	log.Info("serving /metrics and /healthz", "addr", ln.Addr().String())
	return m, nil
}

func (m *metricsServer) setReady(ok bool) { m.ready.Store(ok) }

func (m *metricsServer) Close() {
	if m.srv != nil {
		m.srv.Close()
	}
}
