package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/packetlake/packetlake/query"
	"github.com/packetlake/packetlake/schema"
)

func init() {
	register(subcommand{
		name:    "query",
		summary: "run a named report (top talkers, DNS names, SYNs without handshake, ...) against ClickHouse",
		run:     runQuery,
	})
}

func runQuery(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: packetlake query [flags] REPORT\n\nReports:\n")
		for _, r := range schema.Reports() {
			fmt.Fprintf(fs.Output(), "  %-24s %s\n", r.Name, r.Title)
		}
		fmt.Fprintf(fs.Output(), "\nFlags:\n")
		fs.PrintDefaults()
	}
	addr := fs.String("clickhouse-http", "127.0.0.1:8123", "ClickHouse HTTP interface, host:port")
	db := fs.String("database", "packetlake", "database holding the packets table")
	user := fs.String("user", "", "ClickHouse user (default: the server's default user)")
	since := fs.Duration("since", time.Hour, "report on the last DURATION (ignored if --from is set)")
	from := fs.String("from", "", "start time, RFC 3339 (overrides --since)")
	until := fs.String("until", "", "end time, RFC 3339 (default: now)")
	limit := fs.Int("limit", 20, "rows at most")
	format := fs.String("format", "table", "output: table, json or csv")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("want exactly one report name")
	}
	p := query.Params{Until: time.Now(), Limit: *limit}
	var err error
	if *until != "" {
		if p.Until, err = time.Parse(time.RFC3339, *until); err != nil {
			return fmt.Errorf("--until: %w", err)
		}
	}
	p.Since = p.Until.Add(-*since)
	if *from != "" {
		if p.Since, err = time.Parse(time.RFC3339, *from); err != nil {
			return fmt.Errorf("--from: %w", err)
		}
	}
	cfg := query.Config{HTTPAddr: *addr, Database: *db, User: *user, Password: os.Getenv("PACKETLAKE_CLICKHOUSE_PASSWORD")}
	return query.Run(ctx, cfg, fs.Arg(0), p, *format, os.Stdout)
}
