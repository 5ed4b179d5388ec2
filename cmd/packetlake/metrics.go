package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"
)

// newRegistry is the registry a daemon's metrics go to, with the Go runtime's and the process's.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// metricsFlags are where and how a daemon serves /metrics and /healthz.
type metricsFlags struct {
	Addr string // host:port; ":9464" is every interface (Prometheus scrapes from elsewhere); "" = off
	// WebConfig is a web configuration file in the format of prometheus/exporter-toolkit
	// (tls_server_config, basic_auth_users with bcrypt hashes, http_server_config): the same
	// file Prometheus and its exporters take with --web.config.file. "" = plain HTTP, no auth.
	WebConfig string
}

// addMetricsFlags defines --metrics-addr (default def) and --web-config.
func addMetricsFlags(fs *flag.FlagSet, def string) *metricsFlags {
	m := &metricsFlags{}
	fs.StringVar(&m.Addr, "metrics-addr", def, "serve /metrics and /healthz here, host:port (\":PORT\" is every interface, 127.0.0.1:PORT loopback only; empty: off)")
	fs.StringVar(&m.WebConfig, "web-config", "", "exporter-toolkit web configuration file (as Prometheus' --web.config.file) for TLS and basic auth on /metrics and /healthz (empty: plain HTTP)")
	return m
}

// Server timeouts of the metrics endpoint: a client that trickles its headers (slowloris) or
// never reads is cut off; a scrape of a big registry still has a minute.
const (
	metricsReadHeaderTimeout = 5 * time.Second
	metricsReadTimeout       = 15 * time.Second
	metricsWriteTimeout      = 60 * time.Second
	metricsIdleTimeout       = 2 * time.Minute
	metricsMaxHeaderBytes    = 16 << 10
)

// metricsServer serves /metrics from a registry, /healthz from a daemon's readiness (200 when
// ready() is nil, 503 with its reason otherwise: not started, stopping, the source failed, a
// partition stalled) and /livez (200 while the process answers).
type metricsServer struct {
	srv  *http.Server
	addr string // the address listened on, with the port chosen for ":0"
}

// serveMetrics validates the web configuration and listens before returning, so that a bad
// file or a taken port fails the command ("" address = no server; the returned value is still
// usable).
func serveMetrics(mf metricsFlags, reg *prometheus.Registry, ready func() error, log *slog.Logger) (*metricsServer, error) {
	m := &metricsServer{}
	if mf.Addr == "" {
		if mf.WebConfig != "" {
			return nil, errors.New("--web-config is set but --metrics-addr is empty: nothing to serve")
		}
		return m, nil
	}
	if mf.WebConfig != "" {
		if err := web.Validate(mf.WebConfig); err != nil {
			return nil, fmt.Errorf("--web-config %s: %w", mf.WebConfig, err)
		}
	}
	ln, err := net.Listen("tcp", mf.Addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener %s: %w", mf.Addr, err)
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
	m.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: metricsReadHeaderTimeout,
		ReadTimeout:       metricsReadTimeout,
		WriteTimeout:      metricsWriteTimeout,
		IdleTimeout:       metricsIdleTimeout,
		MaxHeaderBytes:    metricsMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	m.addr = ln.Addr().String()
	cfgPath := mf.WebConfig
	go func() {
		if err := web.Serve(ln, m.srv, &web.FlagConfig{WebConfigFile: &cfgPath}, log); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "addr", m.addr, "err", err)
		}
	}()
	scheme := "http"
	if mf.WebConfig != "" {
		scheme = "as configured in " + mf.WebConfig
	}
	log.Info("serving /metrics and /healthz", "addr", m.addr, "scheme", scheme)
	return m, nil
}

func (m *metricsServer) Close() {
	if m.srv != nil {
		m.srv.Close()
	}
}
