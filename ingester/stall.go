package ingester

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// A stalled partition has records to store but has not committed any for StallTimeout:
// ClickHouse down or refusing every batch for a reason no bisection can help (schema, grants),
// or an error nobody classified. The ingester then reports itself unready (/healthz 503) naming
// the partition and its last error, so an alert fires; it keeps retrying, and is ready again
// once the partition moves. A partition with nothing to do is never stalled: a Kafka outage
// shows in the consumer lag, not here.

// stallClock is one partition's last progress: a commit, a part of a bisection stored, or
// being caught up (nothing fetched and no batch open).
type stallClock struct {
	mu      sync.Mutex
	last    time.Time
	lastErr error // the last failure since then
}

func newStallClock() *stallClock { return &stallClock{last: time.Now()} }

func (c *stallClock) progressed() {
	c.mu.Lock()
	c.last, c.lastErr = time.Now(), nil
	c.mu.Unlock()
}

func (c *stallClock) failed(err error) {
	c.mu.Lock()
	c.lastErr = err
	c.mu.Unlock()
}

// since is how long ago the partition last moved, and the last error since.
func (c *stallClock) since(now time.Time) (time.Duration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return now.Sub(c.last), c.lastErr
}

// stall is one partition's standing, for readiness, the log and the metrics.
type stall struct {
	tp      topicPartition
	for_    time.Duration
	lastErr error
}

func (s stall) String() string {
	why := "no error yet"
	if s.lastErr != nil {
		why = "last error: " + s.lastErr.Error()
	}
	return fmt.Sprintf("partition %s/%d made no progress for %s (%s)", s.tp.topic, s.tp.partition, s.for_.Round(time.Second), why)
}

// standings returns every partition's time without progress, in topic and partition order.
func (ing *Ingester) standings() []stall {
	now := time.Now()
	ing.mu.Lock()
	out := make([]stall, 0, len(ing.workers))
	for tp, w := range ing.workers {
		d, err := w.stall.since(now)
		out = append(out, stall{tp: tp, for_: d, lastErr: err})
	}
	ing.mu.Unlock()
	slices.SortFunc(out, func(a, b stall) int {
		return cmp.Or(cmp.Compare(a.tp.topic, b.tp.topic), cmp.Compare(a.tp.partition, b.tp.partition))
	})
	return out
}

// stalled returns an error naming the stalled partitions, or nil.
func (ing *Ingester) stalled() error {
	var bad []string
	for _, s := range ing.standings() {
		if s.for_ > ing.cfg.StallTimeout {
			bad = append(bad, s.String())
		}
	}
	switch {
	case len(bad) == 0:
		return nil
	case len(bad) > 3:
		bad = append(bad[:3], fmt.Sprintf("and %d more", len(bad)-3))
	}
	return fmt.Errorf("stalled: %s", strings.Join(bad, "; "))
}

// watchStalls logs each partition that stalls, once, and once more when it moves again.
func (ing *Ingester) watchStalls(ctx context.Context) {
	tick := time.NewTicker(min(max(ing.cfg.StallTimeout/4, 50*time.Millisecond), 10*time.Second))
	defer tick.Stop()
	stalled := map[topicPartition]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := map[topicPartition]bool{}
		for _, s := range ing.standings() {
			if s.for_ <= ing.cfg.StallTimeout {
				if stalled[s.tp] {
					ing.log.Info("partition moves again", "topic", s.tp.topic, "partition", s.tp.partition)
				}
				continue
			}
			now[s.tp] = true
			if !stalled[s.tp] {
				ing.log.Error("partition stalled: not ready", "topic", s.tp.topic, "partition", s.tp.partition,
					"without_progress", s.for_.Round(time.Second), "err", s.lastErr)
			}
		}
		stalled = now
	}
}

// stallCollector exports each partition's time without progress on every scrape.
type stallCollector struct {
	ing            *Ingester
	seconds, count *prometheus.Desc
}

func newStallCollector(ing *Ingester) *stallCollector {
	return &stallCollector{ing: ing,
		seconds: prometheus.NewDesc("packetlake_ingester_partition_stalled_seconds",
			"Seconds since the partition last made progress (a commit, a bisection part stored, or being caught up); "+
				"over the stall timeout the ingester is not ready.", []string{"topic", "partition"}, nil),
		count: prometheus.NewDesc("packetlake_ingester_stalled_partitions",
			"Partitions without progress for longer than the stall timeout.", nil, nil),
	}
}

func (c *stallCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.seconds
	ch <- c.count
}

func (c *stallCollector) Collect(ch chan<- prometheus.Metric) {
	n := 0
	for _, s := range c.ing.standings() {
		ch <- prometheus.MustNewConstMetric(c.seconds, prometheus.GaugeValue, s.for_.Seconds(), s.tp.topic, strconv.Itoa(int(s.tp.partition)))
		if s.for_ > c.ing.cfg.StallTimeout {
			n++
		}
	}
	ch <- prometheus.MustNewConstMetric(c.count, prometheus.GaugeValue, float64(n))
}
