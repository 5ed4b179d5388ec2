package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/packetlake/packetlake/schema"
)

func init() {
	register(subcommand{
		name:    "schema-cluster",
		summary: "print the ON CLUSTER DDL (Replicated and Distributed tables) of the schema, for a ClickHouse cluster",
		setup:   setupSchemaCluster,
	})
}

// setupSchemaCluster prints, from the same migrations `schema apply` runs, the statements that
// lay the schema out on a cluster (schema.ClusterDDL; schema/CLUSTER.md). It only prints: an
// operator reviews the output and runs it with clickhouse-client --multiquery on one node.
func setupSchemaCluster() (*flag.FlagSet, func(context.Context) error) {
	fs := flag.NewFlagSet("schema-cluster", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: packetlake schema-cluster --cluster NAME [flags] > cluster.sql\n\n"+
			"Prints the schema (version %d) as ON CLUSTER statements: Replicated*MergeTree tables\n"+
			"NAME_local on every node, Distributed tables NAME over them, the rollup views on every\n"+
			"node, and the schema_migrations rows that tell the ingester the schema is current.\n"+
			"Run it once on any node: clickhouse-client --multiquery < cluster.sql\n"+
			"To upgrade, print only the new migrations: --after <the cluster's schema version>.\n\n", schema.LatestVersion())
		fs.PrintDefaults()
	}
	var opts schema.ClusterOptions
	fs.StringVar(&opts.Cluster, "cluster", "", "cluster name, as in the servers' remote_servers (required)")
	fs.StringVar(&opts.Database, "database", "packetlake", "database to create on every node")
	fs.StringVar(&opts.ZooKeeperPrefix, "zk-prefix", "/clickhouse/tables/{shard}", "Keeper path prefix of the replicated tables ({shard} is the servers' macro)")
	fs.StringVar(&opts.PacketsShardingKey, "sharding-key", schema.DefaultPacketsShardingKey, "deterministic expression spreading packets over the shards")
	after := fs.Uint("after", 0, "print only the migrations after this version: for an upgrade, the cluster's SELECT max(version) FROM <database>.schema_migrations (re-running them all would shrink a sorting key a later migration grew)")
	return fs, func(_ context.Context) error {
		if fs.NArg() > 0 {
			fs.Usage()
			return errors.New("no positional arguments are accepted")
		}
		if opts.Cluster == "" {
			fs.Usage()
			return errors.New("--cluster is required")
		}
		opts.After = uint32(*after)
		stmts, err := schema.ClusterDDL(opts)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(os.Stdout, "-- packetlake schema version %d on cluster %s, database %s (packetlake schema-cluster)\n\n%s;\n",
			schema.LatestVersion(), opts.Cluster, opts.Database, strings.Join(stmts, ";\n\n"))
		return err
	}
}
