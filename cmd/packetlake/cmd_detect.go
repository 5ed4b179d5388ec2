package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/packetlake/packetlake/detector"
)

func init() {
	register(subcommand{
		name:    "detect",
		summary: "detect SYN floods, scans, sweeps, ICMP/UDP floods, DNS tunnels, volume spikes and TCP health surges (retransmissions, zero windows) in ClickHouse every few seconds",
		setup:   setupDetect,
	})
}

func setupDetect() (*flag.FlagSet, func(context.Context) error) {
	cfg := detector.DefaultConfig()
	fs := flag.NewFlagSet("detect", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: packetlake detect --clickhouse-http HOST:PORT --database DB [--interval 2s] [--webhook URL] [thresholds]\n\n"+
			"Every --interval, runs each detector (SQL in detector/sql) over the last --window of\n"+
			"packets and writes each new (kind, subject) to the anomalies table, logs it, and POSTs\n"+
			"it to --webhook. A (kind, subject) still detected is not reported again; once it went\n"+
			"undetected for --rearm-after it can be. Detectors: %s.\n"+
			"Run one replica per database: incidents in progress are held in memory.\n\n",
			strings.Join(detector.Kinds, ", "))
		fs.PrintDefaults()
	}
	t := &cfg.Thresholds
	fs.StringVar(&cfg.ClickHouse.HTTPAddr, "clickhouse-http", "127.0.0.1:8123", "ClickHouse HTTP interface, host:port")
	fs.StringVar(&cfg.ClickHouse.Database, "database", cfg.ClickHouse.Database, "database holding packets, migrated by this packetlake (migrations 0200 and 0201)")
	addClickHouseFlags(fs, &cfg.ClickHouse)
	fs.DurationVar(&cfg.Interval, "interval", cfg.Interval, "run the detectors this often")
	fs.DurationVar(&cfg.Window, "window", cfg.Window, "look at the packets captured this long before each cycle; rates are averaged over it")
	fs.DurationVar(&cfg.RearmAfter, "rearm-after", cfg.RearmAfter, "an anomaly undetected this long is over; detected again, it is reported again")
	fs.DurationVar(&cfg.QueryTimeout, "query-timeout", cfg.QueryTimeout, "bound on one detector's query")
	detectors := listFlag{}
	fs.Var(&detectors, "detectors", "detectors to run, comma-separated (default: all)")
	fs.StringVar(&cfg.Host, "host", cfg.Host, "name of this detector in the anomalies' detector_host")
	fs.StringVar(&cfg.Webhook, "webhook", "", "POST each new anomaly as JSON to this https URL (empty: none); redacted in logs and config check (prefer $PACKETLAKE_WEBHOOK)")
	fs.StringVar(&cfg.WebhookSecret, "webhook-secret", "", "HMAC-SHA256 key: each POST carries "+detector.SignatureHeader+": sha256=HEX over the body (prefer $PACKETLAKE_WEBHOOK_SECRET)")
	fs.BoolVar(&cfg.WebhookAllowHTTP, "webhook-allow-http", false, "accept an http:// --webhook (payload and URL in clear)")
	fs.StringVar(&cfg.WebhookCAFile, "webhook-tls-ca", "", "PEM file of the CA that signed the webhook's certificate (default: system roots)")
	fs.DurationVar(&cfg.WebhookTimeout, "webhook-timeout", cfg.WebhookTimeout, "bound on one webhook POST")
	fs.IntVar(&cfg.WebhookRetries, "webhook-retries", cfg.WebhookRetries, "retries of a failed webhook POST, with backoff")
	fs.IntVar(&cfg.WebhookQueue, "webhook-queue", cfg.WebhookQueue, "anomalies waiting for the webhook at most; beyond, dropped and counted")
	fs.Float64Var(&t.SYNFloodMinRate, "syn-flood-min-rate", t.SYNFloodMinRate, "syn_flood: SYNs per second to one address:port")
	fs.Float64Var(&t.SYNFloodMaxCompleted, "syn-flood-max-completed", t.SYNFloodMaxCompleted, "syn_flood: at most this share of the SYNs answered by the client's ACK")
	fs.Float64Var(&t.PortScanMinPorts, "port-scan-min-ports", t.PortScanMinPorts, "port_scan: distinct destination ports one source probed in the window")
	fs.Float64Var(&t.HostSweepMinHosts, "host-sweep-min-hosts", t.HostSweepMinHosts, "host_sweep: distinct destination addresses one source probed in the window")
	fs.Float64Var(&t.ICMPFloodMinRate, "icmp-flood-min-rate", t.ICMPFloodMinRate, "icmp_flood: ICMP packets per second to one address")
	fs.Float64Var(&t.UDPFloodMinRate, "udp-flood-min-rate", t.UDPFloodMinRate, "udp_flood: UDP packets per second to one address")
	fs.Float64Var(&t.DNSTunnelMinNames, "dns-tunnel-min-names", t.DNSTunnelMinNames, "dns_tunnel: distinct subdomains of one parent domain asked by one client in the window")
	fs.Float64Var(&t.DNSTunnelMinLength, "dns-tunnel-min-length", t.DNSTunnelMinLength, "dns_tunnel: their average length, characters")
	fs.Float64Var(&t.DNSTunnelMinEntropy, "dns-tunnel-min-entropy", t.DNSTunnelMinEntropy, "dns_tunnel: their average entropy, bits per character")
	fs.Float64Var(&t.VolumeMinRate, "volume-min-rate", t.VolumeMinRate, "volume_spike: packets per second to one address, whatever its baseline")
	fs.Float64Var(&t.VolumeFactor, "volume-factor", t.VolumeFactor, "volume_spike: and at least this many times its baseline mean")
	fs.Float64Var(&t.VolumeSigmas, "volume-sigmas", t.VolumeSigmas, "volume_spike: and at least this many baseline standard deviations above the mean")
	fs.DurationVar(&t.VolumeBaseline, "volume-baseline", t.VolumeBaseline, "volume_spike: learn the baseline over this long before the window (at most 50m)")
	fs.Float64Var(&t.TCPLateMinRate, "tcp-late-min-rate", t.TCPLateMinRate, "tcp_health: retransmitted or out-of-order data segments per second of one service (both directions)")
	fs.Float64Var(&t.TCPLateMinRatio, "tcp-late-min-ratio", t.TCPLateMinRatio, "tcp_health: and at least this share of its data segments")
	fs.Float64Var(&t.TCPZeroWindowMinRate, "tcp-zero-window-min-rate", t.TCPZeroWindowMinRate, "tcp_health: or zero-window segments per second of one service")
	metrics := addMetricsFlags(fs, ":9466")
	logf := addLogFlags(fs)
	return fs, func(ctx context.Context) error {
		if fs.NArg() > 0 {
			fs.Usage()
			return fmt.Errorf("unexpected arguments %q", fs.Args())
		}
		cfg.Detectors = detectors
		logger, err := logf.logger()
		if err != nil {
			return err
		}
		if w := clickHousePasswordWarning(cfg.ClickHouse.Password, cfg.ClickHouse.TLS.Enable, cfg.ClickHouse.HTTPAddr); w != "" {
			logger.Warn(w)
		}
		reg := newRegistry()
		d, err := detector.New(cfg, detector.Dependencies{Logger: logger, Registerer: reg})
		if err != nil {
			return err
		}
		return runDaemon(ctx, d, nil, "signal received: stopping", *metrics, reg, logger)
	}
}
