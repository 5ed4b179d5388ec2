package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// daemon is the lifecycle the collector, the ingester and the detector share: each is made by
// New(cfg, Dependencies) from a DefaultConfig, then started and stopped.
type daemon interface {
	Start(context.Context) error
	Stop() error
	Ready() error // nil while it does its job, else why not: /healthz
}

// runDaemon serves /metrics from reg and /healthz from d.Ready as metrics says (Addr "": neither),
// starts d and runs it until ctx ends (SIGINT or SIGTERM: onSignal is logged) or done is closed
// (d ended by itself; nil: never), then stops it. d is stopped whatever fails: Stop also
// releases what New opened.
func runDaemon(ctx context.Context, d daemon, done <-chan struct{}, onSignal string, metrics metricsFlags,
	reg *prometheus.Registry, log *slog.Logger) error {
	ms, err := serveMetrics(metrics, reg, d.Ready, log)
	if err != nil {
		return errors.Join(err, d.Stop())
	}
	defer ms.Close()
	if err := d.Start(ctx); err != nil {
		return errors.Join(err, d.Stop())
	}
	select {
	case <-ctx.Done():
		log.Info(onSignal)
	case <-done:
	}
	return d.Stop()
}
