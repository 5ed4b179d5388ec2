package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/packetlake/packetlake/internal/local/chlocal"
)

func init() {
	register(subcommand{
		name:    "clickhouse-local",
		summary: "run a real ClickHouse server in the foreground (engine fetched from npm once)",
		setup:   setupClickhouseLocal,
	})
}

// runClickhouseLocal serves ClickHouse in this process until SIGINT/SIGTERM. The engine is
// fetched from npm on first use and cached (see cache.Dir).
func setupClickhouseLocal() (*flag.FlagSet, func(context.Context) error) {
	fs := flag.NewFlagSet("clickhouse-local", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: packetlake clickhouse-local --data DIR [--tcp-port 9000] [--http-port 8123]\n\n"+
			"Runs a real ClickHouse server (npm's chDB engine) on 127.0.0.1 until SIGINT/SIGTERM.\n"+
			"Its user default has no password: it never listens beyond loopback.\n\n")
		fs.PrintDefaults()
	}
	data := fs.String("data", "", "data directory (required); locked while the server runs")
	tcpPort := fs.Int("tcp-port", 9000, "native protocol port on 127.0.0.1 (0 = pick a free one)")
	httpPort := fs.Int("http-port", 8123, "HTTP port on 127.0.0.1 (0 = pick a free one)")
	cacheDir := fs.String("cache", "", "engine cache directory (default $PACKETLAKE_CACHE, $XDG_CACHE_HOME/packetlake or ~/.cache/packetlake)")
	logf := addLogFlags(fs)
	return fs, func(ctx context.Context) error {
		if *data == "" || fs.NArg() > 0 {
			fs.Usage()
			return errors.New("--data DIR is required and no positional arguments are accepted")
		}
		log, err := logf.logger()
		if err != nil {
			return err
		}

		srv, err := chlocal.New(chlocal.Config{
			DataDir: *data, TCPPort: *tcpPort, HTTPPort: *httpPort, CacheDir: *cacheDir, Logger: log,
		})
		if err != nil {
			return err
		}
		if err := srv.Start(ctx); err != nil {
			return err
		}
		// The one line on stdout: a parent (chlocal.Spawn, scripts) waits for it; logs go to stderr.
		fmt.Println(chlocal.ReadyLine(srv.TCPAddr(), srv.HTTPAddr(), srv.DataDir()))
		select {
		case <-ctx.Done():
			log.Info("stopping clickhouse", "reason", context.Cause(ctx))
			if err := srv.Stop(); err != nil {
				return fmt.Errorf("stop: %w", err)
			}
			log.Info("clickhouse stopped")
			return nil
		case <-srv.Done():
			if err := srv.Err(); err != nil {
				return fmt.Errorf("clickhouse exited: %w", err)
			}
			return errors.New("clickhouse exited unexpectedly")
		}
	}
}
