package collector

import (
	"fmt"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// serveMetrics listens on MetricsAddr before returning, so a taken port fails Start instead of
// leaving a collector nobody can scrape.
func (c *Collector) serveMetrics() error {
	ln, err := net.Listen("tcp", c.cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("metrics listener: %w", err)
	}
	g, ok := c.reg.(prometheus.Gatherer)
	if !ok {
		g = prometheus.DefaultGatherer
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", c.healthz)
	c.http = &http.Server{Handler: mux}
	c.httpAddr = ln.Addr().String()
	go c.http.Serve(ln)
	c.log.Info("serving metrics", "addr", ln.Addr().String())
	return nil
}

// healthz is 200 while the source is draining and 503 once it has stopped or failed, so an
// orchestrator restarts a collector whose drain died.
func (c *Collector) healthz(w http.ResponseWriter, _ *http.Request) {
	select {
	case <-c.done:
		w.WriteHeader(http.StatusServiceUnavailable)
		if c.err != nil {
			fmt.Fprintf(w, "source stopped: %v\n", c.err)
			return
		}
		fmt.Fprintln(w, "source ended")
		return
	default:
	}
	if c.stopping.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "stopping")
		return
	}
	fmt.Fprintln(w, "ok")
}

// metricsAddr is the address /metrics is served on (MetricsAddr with the port resolved).
func (c *Collector) metricsAddr() string { return c.httpAddr }
