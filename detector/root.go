// Package detector finds attacks in the packets table while they happen: every Interval (2 s)
// each detector, a named SQL file of sql/, runs over the last Window (10 s) of packets, and
// every (kind, subject) it reports becomes one row of the anomalies table, one structured log
// line and, optionally, one webhook POST. A (kind, subject) that keeps being detected is not
// reported again until it has gone undetected for RearmAfter (see README.md for the detectors,
// their thresholds, the deduplication and the measured latency).
package detector

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/packetlake/packetlake/internal/lifecycle"
)

// Dependencies are what a Detector uses but does not own.
type Dependencies struct {
	Logger     *slog.Logger          // nil discards
	Registerer prometheus.Registerer // nil registers nowhere
	// Now is the clock of the cycles' windows, of the anomalies' report time and of the
	// incidents restored at Start (nil: time.Now).
	Now func() time.Time
}

// Anomaly is one reported incident: a row of the anomalies table and the webhook's payload.
type Anomaly struct {
	ID              string          `json:"id"`
	TS              time.Time       `json:"ts"` // when the detector reported it
	Kind            string          `json:"kind"`
	Subject         string          `json:"subject"`
	WindowStart     time.Time       `json:"window_start"` // first packet that made it fire
	WindowEnd       time.Time       `json:"window_end"`   // last packet that made it fire
	Score           float64         `json:"score"`        // how many times over its threshold (>= 1)
	Evidence        json.RawMessage `json:"evidence"`
	DetectorVersion string          `json:"detector_version"`
	DetectorHost    string          `json:"detector_host"`
	Database        string          `json:"database"`

	addresses []string // the addresses it involves: a volume spike on one of them is explained
}

// Detector runs the detection cycles.
type Detector struct {
	cfg       Config
	log       *slog.Logger
	now       func() time.Time
	m         *metrics
	ch        *chClient
	detectors []detector
	hook      *webhook // nil without a webhook

	incidents map[string]*incident // by kind + "\x00" + subject; touched by the cycle goroutine only
	held      map[string]bool      // volume spikes found by the last cycle, not reported yet (same key)

	cancel   context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once
	phase    lifecycle.Phase
}

// New checks cfg and loads the detectors' SQL; nothing is contacted before Start.
func New(cfg Config, deps Dependencies) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	dets, err := loadDetectors(cfg.Detectors)
	if err != nil {
		return nil, err
	}
	ch, err := newCHClient(cfg)
	if err != nil {
		return nil, err
	}
	d := &Detector{
		cfg: cfg, log: deps.Logger, now: deps.Now, m: newMetrics(deps.Registerer), ch: ch,
		detectors: dets, incidents: map[string]*incident{}, held: map[string]bool{},
	}
	if cfg.Webhook != "" {
		if d.hook, err = newWebhook(cfg, deps.Logger, d.m); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Start checks that the schema has the detector's tables, restores the incidents reported in
// the last RearmAfter (so a restart does not report an ongoing attack again) and starts the
// cycles. The first cycle runs at once.
func (d *Detector) Start(ctx context.Context) error {
	for _, table := range []string{"packets", "anomalies", "detect_dst_1s", "detect_recent"} {
		ok, err := d.ch.tableExists(ctx, table)
		if err != nil {
			return fmt.Errorf("detector: %w", err)
		}
		if !ok {
			return fmt.Errorf("detector: database %s has no table %s: apply the schema migrations first (packetlake schema apply, or start an ingester)", d.cfg.ClickHouse.Database, table)
		}
	}
	if err := d.restore(ctx, d.now()); err != nil {
		return fmt.Errorf("detector: restore recent anomalies: %w", err)
	}
	if d.hook != nil {
		d.hook.start()
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	d.cancel, d.done = cancel, make(chan struct{})
	go d.loop(loopCtx)
	names := make([]string, len(d.detectors))
	for i, det := range d.detectors {
		names[i] = det.kind
	}
	d.phase.SetRunning()
	d.log.Info("detector started", "clickhouse", d.cfg.ClickHouse.HTTPAddr, "database", d.cfg.ClickHouse.Database,
		"interval", d.cfg.Interval.String(), "window", d.cfg.Window.String(), "rearm_after", d.cfg.RearmAfter.String(),
		"detectors", names, "webhook", d.cfg.Webhook != "", "restored_incidents", len(d.incidents))
	return nil
}

// Ready is nil from a successful Start (the schema has the detector's tables) until Stop, else
// why not.
func (d *Detector) Ready() error { return d.phase.Ready() }

// Stop ends the cycles (a query in flight is cancelled), then gives the webhook up to
// WebhookTimeout to deliver what it has queued. Safe to call more than once, and without Start.
func (d *Detector) Stop() error {
	d.stopOnce.Do(func() {
		d.phase.SetStopping()
		defer d.phase.SetStopped()
		if d.cancel != nil {
			d.cancel()
			<-d.done
		}
		if d.hook != nil && d.hook.done != nil {
			d.hook.stop(d.cfg.WebhookTimeout)
		}
		d.ch.Close()
		d.log.Info("detector stopped")
	})
	return nil
}

// confirmAfter is how soon a held volume spike is looked at again: long enough for the insert
// that showed it to one of the detector's tables to have reached the other (tens of
// milliseconds, even for a large batch), short enough to keep the spike's latency low.
const confirmAfter = 500 * time.Millisecond

func (d *Detector) loop(ctx context.Context) {
	defer close(d.done)
	tick := time.NewTicker(d.cfg.Interval)
	defer tick.Stop()
	for {
		if _, err := d.cycle(ctx, d.now()); err != nil && ctx.Err() == nil {
			d.log.Warn("detection cycle incomplete", "err", err)
		}
		// A cycle longer than Interval delays the next one; missed ticks are not queued up.
		// Held volume spikes get an extra cycle confirmAfter later rather than a whole
		// Interval: the race they wait out lasts milliseconds (worker.go).
		var confirm <-chan time.Time
		if len(d.held) > 0 {
			confirm = time.After(min(confirmAfter, d.cfg.Interval))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-confirm:
		}
	}
}
