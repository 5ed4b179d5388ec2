package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/packetlake/packetlake/console"
	"github.com/packetlake/packetlake/internal/chconn"
	"github.com/packetlake/packetlake/internal/local/chlocal"
)

func init() {
	register(subcommand{
		name:    "console",
		summary: "serve the web console (traffic, packets, anomalies, pipeline) and its JSON API over ClickHouse",
		setup:   setupConsole,
	})
}

func setupConsole() (*flag.FlagSet, func(context.Context) error) {
	fs := flag.NewFlagSet("console", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: packetlake console --clickhouse-http HOST:PORT --database DB [--listen 127.0.0.1:8080]\n\n"+
			"Serves a web UI and a JSON API (/api/v1/) over the packetlake database: traffic by any\n"+
			"dimension, packet lists, anomalies and the pipeline's loss budget. Queries run read-only,\n"+
			"bounded by the --max-* flags; give it a read-only ClickHouse user (README, Console).\n\n")
		fs.PrintDefaults()
	}
	var (
		ch     chconn.Config
		listen console.Listen
		limits = console.DefaultLimits
	)
	fs.StringVar(&ch.HTTPAddr, "clickhouse-http", "127.0.0.1:8123", "ClickHouse HTTP interface, host:port")
	fs.StringVar(&ch.Database, "database", "packetlake", "database holding the packets table")
	addClickHouseFlags(fs, &ch)
	fs.StringVar(&listen.Addr, "listen", console.DefaultListen, "serve the console on this host:port (loopback unless you open it)")
	fs.StringVar(&listen.WebConfigFile, "web-config-file", "", "TLS and basic auth for the console: a Prometheus exporter-toolkit web config file")
	fs.DurationVar(&limits.MaxExecutionTime, "max-execution-time", limits.MaxExecutionTime, "ClickHouse max_execution_time of each console query")
	fs.IntVar(&limits.MaxResultRows, "max-result-rows", limits.MaxResultRows, "ClickHouse max_result_rows of each console query")
	fs.Int64Var(&limits.MaxMemoryUsage, "max-memory-usage", limits.MaxMemoryUsage, "ClickHouse max_memory_usage of each console query, bytes")
	var chData string
	fs.StringVar(&chData, "clickhouse-data", "", "instead of --clickhouse-http, start packetlake's own ClickHouse over this data directory (e.g. .demo/clickhouse) on free loopback ports")
	logf := addLogFlags(fs)
	return fs, func(ctx context.Context) error {
		if fs.NArg() > 0 {
			fs.Usage()
			return fmt.Errorf("unexpected arguments %q", fs.Args())
		}
		logger, err := logf.logger()
		if err != nil {
			return err
		}
		if chData != "" {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			logger.Info("starting ClickHouse over the data directory", "data", chData)
			local, err := chlocal.Spawn(ctx, chlocal.SpawnConfig{Binary: exe, DataDir: chData, LogPath: filepath.Join(filepath.Dir(chData), "clickhouse.log")})
			if err != nil {
				return fmt.Errorf("--clickhouse-data %s: %w", chData, err)
			}
			defer local.Stop()
			ch.HTTPAddr = local.HTTPAddr()
		}
		q, err := ch.Client(chconn.Timeout(limits.MaxExecutionTime + 15*time.Second))
		if err != nil {
			return err
		}
		defer q.Close()
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		srv := console.New(console.Config{Querier: q, Limits: limits, Logger: logger, Metrics: reg})
		return console.Serve(ctx, listen, srv, logger, func(url string) {
			logger.Info("console ready", "url", url, "clickhouse", ch.HTTPAddr, "database", ch.Database)
			fmt.Printf("packetlake console: %s\n", url)
		})
	}
}
