package demo

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/packetlake/packetlake/detector"

	"github.com/packetlake/packetlake/collector"
	"github.com/packetlake/packetlake/ingester"
	"github.com/packetlake/packetlake/internal/local/chlocal"
	"github.com/packetlake/packetlake/internal/local/kafkalocal"
)

const (
	// Database is where the demo's ingester writes (the ingester's and `packetlake query`'s default).
	Database = "packetlake"
	// packetPartitions: more than one, so the ingester runs several partition workers as in
	// production; the collector keys its frames, so one collector fills one partition.
	packetPartitions = 3
	ingesterGroup    = "packetlake-demo"
)

// startStores starts ClickHouse (a `packetlake clickhouse-local` child) and kfake (in process),
// each on free loopback ports with its data under the data dir, and creates the topics.
func (r *runner) startStores(ctx context.Context) error {
	dir := r.cfg.DataDir
	r.log.Info("starting ClickHouse (the first run on a machine fetches the engine, ~180 MB, once)")
	ch, err := chlocal.Spawn(ctx, chlocal.SpawnConfig{
		Binary:  r.cfg.Binary,
		DataDir: filepath.Join(dir, "clickhouse"),
		LogPath: filepath.Join(dir, "clickhouse.log"),
	})
	if err != nil {
		return fmt.Errorf("start ClickHouse: %w", err)
	}
	r.procs.record(filepath.Base(r.cfg.Binary), ch.Pid())
	r.cleanup.push("stop ClickHouse", ch.Stop)
	r.ch = ch
	r.log.Info("ClickHouse ready", "tcp", ch.TCPAddr(), "http", ch.HTTPAddr(), "data", filepath.Join(dir, "clickhouse"))

	k, err := kafkalocal.StartEmbedded(kafkalocal.EmbeddedConfig{DataDir: filepath.Join(dir, "kafka"), Logger: r.componentLog})
	if err != nil {
		return err
	}
	r.cleanup.push("stop kfake", func() error { k.Stop(); return nil })
	r.kafka = k
	r.log.Info("kfake (Kafka-protocol test broker) ready", "addr", k.Addr(), "data", filepath.Join(dir, "kafka"))
	cfg := ingester.DefaultConfig()
	for topic, parts := range map[string]int32{cfg.Topic: packetPartitions, cfg.StatsTopic: 1, cfg.FlowsTopic: 1, cfg.DropsTopic: 1} {
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := kafkalocal.CreateTopic(tctx, k.Addr(), topic, parts)
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

// startIngester runs one consumer-group member in process, writing into Database. Short batch
// ages keep the progress lines' row counts close behind Kafka.
func (r *runner) startIngester(ctx context.Context) error {
	cfg := ingester.DefaultConfig()
	cfg.Kafka.Brokers = []string{r.kafka.Addr()}
	cfg.Group = ingesterGroup
	cfg.ClickHouse = r.clickhouse()
	cfg.FlushAge = 500 * time.Millisecond
	cfg.SessionTimeout = 10 * time.Second
	// Bounds the stop after a terminal's Ctrl-C, which also reaches the ClickHouse child: the last
	// batch cannot be inserted then and is left uncommitted (the next demo replays it).
	cfg.RevokeTimeout = 5 * time.Second
	ing, err := ingester.New(cfg, ingester.Dependencies{Logger: r.componentLog.With("component", "ingester")})
	if err != nil {
		return err
	}
	// Pushed before Start: Stop also closes what New opened.
	r.cleanup.push("stop ingester", ing.Stop)
	if err := ing.Start(ctx); err != nil {
		return err
	}
	r.ing = ing
	r.log.Info("ingester running", "group", cfg.Group, "database", cfg.ClickHouse.Database)
	return nil
}

// startCollector attaches the collector to the server's veth end, inside the server namespace,
// while it produces to kfake from this (the root) namespace.
func (r *runner) startCollector(ctx context.Context) error {
	cfg := collector.DefaultConfig()
	cfg.Iface, cfg.NetNS = r.lab.srvIf, r.lab.srvNS
	cfg.Kafka.Brokers = []string{r.kafka.Addr()}
	cfg.Receivers = true // top_receivers names nginx and dnsmasq
	c, err := collector.New(cfg, collector.Dependencies{Logger: r.componentLog.With("component", "collector"), Registerer: r.collectorRegistry()})
	if err != nil {
		return err
	}
	// Pushed before Start: Stop detaches, flushes and releases whatever Start got to.
	r.cleanup.push("stop collector", c.Stop)
	if err := c.Start(ctx); err != nil {
		return err
	}
	r.col = c
	r.log.Info("collector attached", "netns", cfg.NetNS, "iface", cfg.Iface, "hook", cfg.Hook, "collector_id", c.ID())
	return nil
}

// startDetector runs the anomaly detector in process over the demo's database, so the nmap scan
// the traffic includes shows up as a port_scan anomaly within seconds.
func (r *runner) startDetector(ctx context.Context) error {
	cfg := detector.DefaultConfig()
	cfg.ClickHouse = r.clickhouse()
	d, err := detector.New(cfg, detector.Dependencies{Logger: r.componentLog.With("component", "detector")})
	if err != nil {
		return err
	}
	r.cleanup.push("stop detector", d.Stop)
	if err := d.Start(ctx); err != nil {
		return err
	}
	r.det = d
	return nil
}
