package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"

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
	configFile := fs.String("config-file", "", "ClickHouse server configuration (XML) to read, e.g. remote_servers and macros")
	shards := fs.Int("shards", 0, "run a sharded cluster of this many servers (child processes; data in DIR/shard-N, ports from --tcp-port/--http-port upwards) instead of one server")
	cluster := fs.String("cluster", chlocal.DefaultClusterName, "with --shards: the cluster's name in remote_servers")
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

		if *shards > 0 {
			if *configFile != "" {
				return errors.New("--config-file and --shards exclude each other: --shards writes each server's configuration")
			}
			return runClickhouseCluster(ctx, *data, *shards, *cluster, *tcpPort, *httpPort, *cacheDir, log)
		}
		srv, err := chlocal.New(chlocal.Config{
			DataDir: *data, TCPPort: *tcpPort, HTTPPort: *httpPort, CacheDir: *cacheDir, Logger: log, ConfigFile: *configFile,
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

// runClickhouseCluster runs a sharded cluster of this binary's clickhouse-local children until
// SIGINT/SIGTERM (libchdb runs one engine per process). It prints one line per shard and one
// naming the cluster, for `schema apply --cluster`.
func runClickhouseCluster(ctx context.Context, data string, shards int, name string, tcpPort, httpPort int, cacheDir string, log *slog.Logger) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cfg := chlocal.ClusterConfig{Binary: self, DataDir: data, Shards: shards, Name: name, CacheDir: cacheDir,
		OnUnexpectedExit: func(shard, pid int, err error, tail string) {
			log.Error("clickhouse shard exited unexpectedly", "shard", shard, "pid", pid, "err", err, "stderr", tail)
		}}
	for i := range shards {
		if tcpPort != 0 {
			cfg.TCPPorts = append(cfg.TCPPorts, tcpPort+i)
		}
		if httpPort != 0 {
			cfg.HTTPPorts = append(cfg.HTTPPorts, httpPort+i)
		}
	}
	c, err := chlocal.StartCluster(ctx, cfg)
	if err != nil {
		return err
	}
	for i, tcp := range c.TCPAddrs() {
		fmt.Printf("clickhouse-local shard %d ready tcp=%s http=%s config=%s pid=%d\n", i+1, tcp, c.HTTPAddrs()[i], c.ConfigFile(i+1), c.Server(i+1).Pid())
	}
	fmt.Printf("clickhouse-local cluster %s ready with %d shards: packetlake schema apply --cluster %s --clickhouse %s\n",
		c.Name(), shards, c.Name(), c.TCPAddrs()[0])
	<-ctx.Done()
	log.Info("stopping clickhouse cluster", "reason", context.Cause(ctx))
	return c.Stop()
}
