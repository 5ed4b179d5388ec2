package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/packetlake/packetlake/internal/local/cache"
	"github.com/packetlake/packetlake/internal/local/chlocal"
	"github.com/packetlake/packetlake/internal/local/kafkalocal"
)

func init() {
	register(subcommand{
		name:    "install",
		summary: "fetch the ClickHouse engine (npm) and Apache Kafka jars (Maven Central) into the cache",
		setup:   setupInstall,
	})
}

func setupInstall() (*flag.FlagSet, func(context.Context) error) {
	fs := flag.NewFlagSet("install", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: packetlake install [--cache DIR] [--kafka=false]\n\n"+
			"Fetches the ClickHouse engine (npm) and the Apache Kafka jars (Maven Central) into the\n"+
			"cache, so tests and the demo start without downloading.\n\n")
		fs.PrintDefaults()
	}
	cache := fs.String("cache", "", "cache directory (default $PACKETLAKE_CACHE, else ~/.cache/packetlake)")
	withKafka := fs.Bool("kafka", true, "also fetch Apache Kafka (needed by the tests, not by the demo)")
	return fs, func(ctx context.Context) error { return runInstall(ctx, *cache, *withKafka) }
}

func runInstall(ctx context.Context, cacheDir string, withKafka bool) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	dir := cacheDir
	if dir == "" {
		var err error
		if dir, err = cache.Dir(); err != nil {
			return err
		}
	}
	lib, err := chlocal.EnsureLib(ctx, dir, log)
	if err != nil {
		return err
	}
	fmt.Printf("clickhouse engine: %s\n", lib)
	if withKafka {
		libs, err := kafkalocal.EnsureKafka(ctx, dir, log)
		if err != nil {
			return err
		}
		fmt.Printf("apache kafka %s: %s\n", kafkalocal.KafkaVersion, libs)
	}
	return nil
}
