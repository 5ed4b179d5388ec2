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
		fmt.Fprintf(fs.Output(), "Usage: packetlake schema apply --clickhouse HOST:PORT --database DB [--cluster NAME]\n\n"+
			"Creates the database (Atomic) and applies the migrations it lacks, in order. Refuses a\n"+
			"database whose schema is newer than this binary (latest version %d).\n\n"+
			"With --cluster, lays the schema out on every server of that cluster (as named in the\n"+
			"remote_servers of the server --clickhouse points at), one shard per server and no\n"+
			"replicas: on each server the local tables NAME_local, the Distributed tables NAME over\n"+
			"them and the rollup views, without ON CLUSTER (which needs Keeper). For a cluster with\n"+
			"replicas use the Replicated DDL of `packetlake schema-cluster` (schema/CLUSTER.md).\n\n", schema.LatestVersion())
		fs.PrintDefaults()
	}
	ch := chconn.Config{User: "default"}
	fs.StringVar(&ch.Addr, "clickhouse", "127.0.0.1:9000", "ClickHouse native-protocol address")
	database := fs.String("database", "packetlake", "database to create or upgrade")
	opts := schema.ClusterOptions{}
	fs.StringVar(&opts.Cluster, "cluster", "", "lay the schema out on every shard of this cluster (remote_servers name)")
	fs.StringVar(&opts.PacketsShardingKey, "sharding-key", schema.DefaultPacketsShardingKey, "with --cluster: deterministic expression spreading packets over the shards")
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
		if opts.Cluster != "" {
			opts.Database = *database
			return applySharded(ctx, conn, ch, opts)
		}
		if err := schema.Migrate(ctx, conn, *database); err != nil {
			return err
		}
		fmt.Printf("schema of database %s is at version %d\n", *database, schema.LatestVersion())
		return nil
	}
}

// applySharded finds the cluster's servers in system.clusters and lays the schema out on each.
func applySharded(ctx context.Context, conn schema.Conn, ch chconn.Config, opts schema.ClusterOptions) error {
	nodes, err := schema.ClusterNodes(ctx, conn, opts.Cluster)
	if err != nil {
		return err
	}
	var conns []schema.Conn
	for _, n := range nodes {
		if n.Replica > 1 {
			return fmt.Errorf("cluster %s has replicas (shard %d replica %d at %s): schema apply --cluster lays out shards without replicas; for replication apply the Replicated DDL of `packetlake schema-cluster --cluster %s` (needs Keeper)",
				opts.Cluster, n.Shard, n.Replica, n.Addr(), opts.Cluster)
		}
		nc := ch
		nc.Addr = n.Addr()
		c, err := nc.Open()
		if err != nil {
			return fmt.Errorf("shard %d (%s): %w", n.Shard, n.Addr(), err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	if err := schema.ApplySharded(ctx, conns, opts); err != nil {
		return err
	}
	fmt.Printf("schema of database %s is at version %d on the %d shards of cluster %s\n", opts.Database, schema.LatestVersion(), len(nodes), opts.Cluster)
	return nil
}
