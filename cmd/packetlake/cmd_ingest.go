package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/packetlake/packetlake/ingester"
)

func init() {
	register(subcommand{
		name:    "ingest",
		summary: "consume packet frames and stats from Kafka into ClickHouse, exactly once",
		setup:   setupIngest,
	})
}

func setupIngest() (*flag.FlagSet, func(context.Context) error) {
	cfg := ingester.DefaultConfig()
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: packetlake ingest --brokers HOST:PORT --clickhouse HOST:PORT [--clickhouse-http HOST:PORT] [flags]\n\n"+
			"Joins the consumer group, applies the schema migrations, and inserts every frame of\n"+
			"the topic into packets (bad frames into dead_letters) and every stats message into\n"+
			"collector_stats, exactly once, until SIGINT/SIGTERM.\n\n")
		fs.PrintDefaults()
	}
	kafka := addKafkaFlags(fs)
	fs.StringVar(&cfg.Group, "group", "packetlake-ingester", "Kafka consumer group")
	fs.StringVar(&cfg.Topic, "topic", cfg.Topic, "topic of the packet frames")
	fs.StringVar(&cfg.StatsTopic, "stats-topic", cfg.StatsTopic, "topic of the collector stats (empty: none)")
	fs.StringVar(&cfg.FlowsTopic, "flows-topic", cfg.FlowsTopic, "topic of the collectors' flow counters (empty: none)")
	fs.StringVar(&cfg.DropsTopic, "drops-topic", cfg.DropsTopic, "topic of the collectors' kernel drop counts (empty: none)")
	ch := &cfg.ClickHouse
	fs.StringVar(&ch.Addr, "clickhouse", "", "ClickHouse native-protocol address (required)")
	fs.StringVar(&ch.HTTPAddr, "clickhouse-http", "", "ClickHouse HTTP address (required by --writer arrow-http)")
	fs.StringVar(&ch.Database, "database", ch.Database, "ClickHouse database (created if missing)")
	ch.User = "default"
	addClickHouseFlags(fs, ch)
	fs.StringVar(&cfg.Writer, "writer", cfg.Writer, "packets writer: arrow-http or native")
	fs.IntVar(&cfg.FlushRows, "flush-rows", cfg.FlushRows, "insert a partition's batch at this many rows")
	flushBytes := bytesFlag(cfg.FlushBytes)
	fs.Var(&flushBytes, "flush-bytes", "insert a partition's batch at this many bytes of frames")
	fs.DurationVar(&cfg.FlushAge, "flush-age", cfg.FlushAge, "insert a partition's batch this long after its first frame was fetched")
	fs.IntVar(&cfg.MaxBatchRows, "max-batch-rows", cfg.MaxBatchRows, "while a partition is behind (a backlog, a high rate), let its batch grow past --flush-rows up to this many rows: fewer INSERTs, each of which costs ClickHouse a part per view table (at or below --flush-rows: never)")
	growBudget := bytesFlag(cfg.GrowBudget)
	fs.Var(&growBudget, "grow-budget", "bytes of frames all partitions' batches may hold past --flush-rows/--flush-bytes together (bounds --max-batch-rows' memory)")
	fs.DurationVar(&cfg.SessionTimeout, "session-timeout", cfg.SessionTimeout, "consumer group session timeout (how long a crashed member holds its partitions)")
	fs.DurationVar(&cfg.RevokeTimeout, "revoke-timeout", cfg.RevokeTimeout, "how long a revoked partition may take to flush its last batch")
	fs.IntVar(&cfg.PoisonRetries, "poison-retries", cfg.PoisonRetries, "times ClickHouse must refuse a batch's data (parse, type, constraint errors) before it is bisected and the refused frames go to dead_letters")
	fs.DurationVar(&cfg.StallTimeout, "stall-timeout", cfg.StallTimeout, "a partition with frames to store and no commit for this long makes /healthz unready")
	noMigrate := fs.Bool("no-migrate", false, "do not apply schema migrations on start")
	fs.StringVar(&cfg.Cluster, "cluster", "", "ClickHouse cluster the database is laid out on (schema apply --cluster): apply no DDL, check the schema is current instead")
	metrics := addMetricsFlags(fs, ":9465")
	logf := addLogFlags(fs)
	return fs, func(ctx context.Context) error {
		if len(kafka.Brokers) == 0 || ch.Addr == "" || fs.NArg() > 0 {
			fs.Usage()
			return errors.New("--brokers and --clickhouse are required and no positional arguments are accepted")
		}
		cfg.FlushBytes, cfg.GrowBudget, cfg.Migrate, cfg.Kafka = int(flushBytes), int(growBudget), !*noMigrate, *kafka
		if ch.HTTPAddr == "" && cfg.Writer == ingester.WriterArrowHTTP {
			return errors.New("--clickhouse-http is required by the arrow-http writer (or use --writer native)")
		}
		logger, err := logf.logger()
		if err != nil {
			return err
		}
		if w := clickHousePasswordWarning(cfg.ClickHouse.Password, cfg.ClickHouse.TLS.Enable, cfg.ClickHouse.Addr, cfg.ClickHouse.HTTPAddr); w != "" {
			logger.Warn(w)
		}

		reg := newRegistry()
		ing, err := ingester.New(cfg, ingester.Dependencies{Logger: logger, Registerer: reg})
		if err != nil {
			return err
		}
		return runDaemon(ctx, ing, nil, "stopping: flushing and committing the batches in hand", *metrics, reg, logger)
	}
}
