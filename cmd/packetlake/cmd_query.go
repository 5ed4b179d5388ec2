package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/packetlake/packetlake/query"
)

func init() {
	register(subcommand{
		name:    "query",
		summary: "run a named report (top talkers, DNS names, SYNs without handshake, ...) against ClickHouse",
		setup:   setupQuery,
	})
}

type queryFlags struct {
	cfg         query.Config
	since       time.Duration
	from, until string
	limit       int
	format      string
}

func setupQuery() (*flag.FlagSet, func(context.Context) error) {
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: packetlake query [flags] REPORT\n\nReports (SQL in query/reports):\n")
		for _, r := range query.Reports() {
			fmt.Fprintf(fs.Output(), "  %-24s %s\n", r.Name, r.Title)
		}
		fmt.Fprintf(fs.Output(), "\nFlags:\n")
		fs.PrintDefaults()
	}
	var q queryFlags
	ch := &q.cfg.ClickHouse
	fs.StringVar(&ch.HTTPAddr, "clickhouse-http", "127.0.0.1:8123", "ClickHouse HTTP interface, host:port")
	fs.StringVar(&ch.Database, "database", "packetlake", "database holding the packets table")
	addClickHouseFlags(fs, ch)
	fs.DurationVar(&q.since, "since", time.Hour, "report on the last DURATION (ignored if --from is set)")
	fs.StringVar(&q.from, "from", "", "start time, RFC 3339 (overrides --since)")
	fs.StringVar(&q.until, "until", "", "end time, RFC 3339 (default: now)")
	fs.IntVar(&q.limit, "limit", 20, "rows at most")
	fs.StringVar(&q.format, "format", "table", "output: table, json or csv")
	return fs, func(ctx context.Context) error {
		if w := clickHousePasswordWarning(q.cfg.ClickHouse.Password, q.cfg.ClickHouse.TLS.Enable, q.cfg.ClickHouse.HTTPAddr); w != "" {
			fmt.Fprintln(fs.Output(), "packetlake query: warning: "+w)
		}
		return runQuery(ctx, fs, q)
	}
}

func runQuery(ctx context.Context, fs *flag.FlagSet, q queryFlags) error {
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("want exactly one report name")
	}
	p := query.Params{Until: time.Now(), Limit: q.limit}
	var err error
	if q.until != "" {
		if p.Until, err = time.Parse(time.RFC3339, q.until); err != nil {
			return fmt.Errorf("--until: %w", err)
		}
	}
	p.Since = p.Until.Add(-q.since)
	if q.from != "" {
		if p.Since, err = time.Parse(time.RFC3339, q.from); err != nil {
			return fmt.Errorf("--from: %w", err)
		}
	}
	return query.Run(ctx, q.cfg, fs.Arg(0), p, q.format, os.Stdout)
}
