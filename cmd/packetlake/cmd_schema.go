package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/packetlake/packetlake/internal/chconn"
	"github.com/packetlake/packetlake/schema"
)

func init() {
	register(subcommand{
		name:    "schema",
		summary: "manage the ClickHouse schema: schema apply creates or upgrades the tables",
		setup:   setupSchema,
	})
}

// runSchema dispatches `packetlake schema apply`. The ingester applies the same migrations on
// start; this lets an operator do it ahead of a deployment, with its own credentials.
func setupSchema() (*flag.FlagSet, func(context.Context) error) {
	fs := flag.NewFlagSet("schema", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: packetlake schema apply --clickhouse HOST:PORT --database DB\n\n"+
			"Creates the database (Atomic) and applies the migrations it lacks, in order. Refuses a\n"+
			"database whose schema is newer than this binary (latest version %d).\n\n", schema.LatestVersion())
		fs.PrintDefaults()
	}
	ch := chconn.Config{User: "default"}
	fs.StringVar(&ch.Addr, "clickhouse", "127.0.0.1:9000", "ClickHouse native-protocol address")
	database := fs.String("database", "packetlake", "database to create or upgrade")
	addClickHouseFlags(fs, &ch)
	return fs, func(ctx context.Context) error {
		if fs.NArg() != 1 || fs.Arg(0) != "apply" {
			fs.Usage()
			return errors.New("unknown or missing schema command: want `schema apply`")
		}
		if w := clickHousePasswordWarning(ch.Password, ch.TLS.Enable, ch.Addr); w != "" {
			fmt.Fprintln(fs.Output(), "packetlake schema: warning: "+w)
		}
		// No database in the handshake: it may not exist yet.
		conn, err := ch.Open()
		if err != nil {
			return err
		}
		defer conn.Close()
		if err := schema.Migrate(ctx, conn, *database); err != nil {
			return err
		}
		fmt.Printf("schema of database %s is at version %d\n", *database, schema.LatestVersion())
		return nil
	}
}
