package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/packetlake/packetlake/internal/demo"
)

func init() {
	register(subcommand{
		name:    "demo",
		summary: "run the whole pipeline on this machine against real traffic in a throwaway lab (root)",
		setup:   setupDemo,
	})
}

func setupDemo() (*flag.FlagSet, func(context.Context) error) {
	cfg := demo.Config{}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: packetlake demo [--duration 60s] [--data .demo] [--keep=false] [-v]\n\n"+
			"Starts ClickHouse and kfake (a Kafka-protocol test broker) with their data under --data,\n"+
			"makes two network namespaces joined by a veth pair (pl-demo-srv-PID, pl-demo-cli-PID),\n"+
			"runs nginx and dnsmasq in the server one, attaches the collector to its veth end, runs an\n"+
			"ingester, and drives curl, dig, openssl, nping and one nmap scan from the client one for\n"+
			"--duration. Prints progress, then the reports. Ctrl-C at any point stops and removes\n"+
			"everything it started; a crashed earlier demo's namespaces are removed at start.\n"+
			"Needs root. The data stays in --data for querying afterwards unless --keep=false.\n\n")
		fs.PrintDefaults()
	}
	fs.DurationVar(&cfg.Duration, "duration", time.Minute, "how long to drive traffic (at least 5s)")
	fs.StringVar(&cfg.DataDir, "data", ".demo", "data directory: ClickHouse, kfake, and the lab's configs and logs")
	fs.BoolVar(&cfg.Keep, "keep", true, "keep the data directory afterwards (--keep=false deletes what the demo put there after a successful run)")
	fs.BoolVar(&cfg.Verbose, "v", false, "also log the components' info and the demo's debug lines")
	fs.StringVar(&cfg.ConsoleListen, "console-listen", "127.0.0.1:8080", "serve the web console here while the demo runs (off: no console)")
	return fs, func(ctx context.Context) error {
		if fs.NArg() > 0 {
			fs.Usage()
			return fmt.Errorf("unexpected arguments %q", fs.Args())
		}
		level := slog.LevelInfo
		if cfg.Verbose {
			level = slog.LevelDebug
		}
		// Logs on stderr, progress and reports on stdout.
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
		cfg.Out = os.Stdout
		_, err := demo.Run(ctx, cfg)
		return err
	}
}
