package schema

import (
	"context"
	"fmt"
	"strings"
)

// A sharded cluster without Keeper (one server per shard, nothing replicated) cannot run ON
// CLUSTER DDL: ClickHouse sends it through Keeper. ApplySharded lays the schema out by running,
// on every node in turn, what ClusterDDL would have sent everywhere: local tables with their
// single-server engines, Distributed tables over them, views reading and writing local tables,
// and a schema_migrations table on each node, so ingesters pointed at any node find the schema
// current. See schema/CLUSTER.md.

// Node is one server of a cluster, as the cluster's system.clusters names it.
type Node struct {
	Shard, Replica uint32
	Host           string
	Port           uint16 // native protocol
}

// Addr is host:port of the node's native protocol.
func (n Node) Addr() string { return fmt.Sprintf("%s:%d", n.Host, n.Port) }

// ClusterNodes lists the servers of cluster from system.clusters of the server conn talks to.
func ClusterNodes(ctx context.Context, conn Conn, cluster string) ([]Node, error) {
	var rows []struct {
		Shard   uint32 `ch:"shard_num"`
		Replica uint32 `ch:"replica_num"`
		Host    string `ch:"host_address"`
		Port    uint16 `ch:"port"`
	}
	if err := conn.Select(ctx, &rows, "SELECT shard_num, replica_num, host_address, port FROM system.clusters WHERE cluster = ? ORDER BY shard_num, replica_num", cluster); err != nil {
		return nil, fmt.Errorf("read cluster %s from system.clusters: %w", cluster, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("cluster %s is not in this server's remote_servers", cluster)
	}
	out := make([]Node, len(rows))
	for i, r := range rows {
		out[i] = Node{Shard: r.Shard, Replica: r.Replica, Host: r.Host, Port: r.Port}
	}
	return out, nil
}

// ApplySharded brings every node of an unreplicated sharded cluster to LatestVersion: on each
// node it creates the database and schema_migrations and runs, for each migration the node has
// not recorded, its cluster statements (ClusterOptions.Unreplicated), then records it. conns
// are the nodes' connections (no database in the handshake), one per shard. A node that already
// has a migration is not touched by it, so applying twice, or after a node was added, is safe.
func ApplySharded(ctx context.Context, conns []Conn, opts ClusterOptions) error {
	opts.Unreplicated = true
	head, steps, err := clusterSteps(opts)
	if err != nil {
		return err
	}
	db := "`" + opts.Database + "`"
	for i, conn := range conns {
		for _, stmt := range head {
			if err := conn.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("node %d of cluster %s: %w", i+1, opts.Cluster, err)
			}
		}
		applied, err := appliedMigrations(ctx, conn, db)
		if err != nil {
			return fmt.Errorf("node %d of cluster %s: %w", i+1, opts.Cluster, err)
		}
		if err := checkApplied(opts.Database, applied); err != nil {
			return fmt.Errorf("node %d of cluster %s: %w", i+1, opts.Cluster, err)
		}
		for _, st := range steps {
			if _, done := applied[st.Version]; done {
				continue
			}
			for _, stmt := range st.Statements {
				if err := execMigration(ctx, conn, stmt); err != nil {
					return fmt.Errorf("node %d of cluster %s: %04d_%s: %w", i+1, opts.Cluster, st.Version, st.Name, err)
				}
			}
			if err := conn.Exec(ctx, recordMigrations(opts.Database, st)); err != nil {
				return fmt.Errorf("node %d of cluster %s: record %04d_%s: %w", i+1, opts.Cluster, st.Version, st.Name, err)
			}
		}
	}
	return nil
}

// CheckCluster is what an ingester started against a cluster does instead of migrating: it
// applies nothing, and fails unless database's packets table on this node is a Distributed
// table over cluster and every migration this binary knows is recorded here.
func CheckCluster(ctx context.Context, conn Conn, database, cluster string) error {
	if !identifier.MatchString(database) || !identifier.MatchString(cluster) {
		return fmt.Errorf("check cluster schema: database %q or cluster %q is not a plain identifier", database, cluster)
	}
	dist, err := distributedOver(ctx, conn, database)
	if err != nil {
		return err
	}
	if dist != cluster {
		what := "is not a Distributed table"
		if dist != "" {
			what = "is Distributed over cluster " + dist
		}
		return fmt.Errorf("check cluster schema: %s.packets %s: lay the schema out with `packetlake schema apply --cluster %s` (or schema-cluster's DDL) first", database, what, cluster)
	}
	applied, err := appliedMigrations(ctx, conn, "`"+database+"`")
	if err != nil {
		return err
	}
	if err := checkApplied(database, applied); err != nil {
		return err
	}
	ms, err := Migrations()
	if err != nil {
		return err
	}
	var missing []string
	for _, m := range ms {
		if _, ok := applied[m.Version]; !ok {
			missing = append(missing, fmt.Sprintf("%04d_%s", m.Version, m.Name))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("check cluster schema: %s on cluster %s lacks migrations %s: run `packetlake schema apply --cluster %s` from this binary first",
			database, cluster, strings.Join(missing, ", "), cluster)
	}
	return nil
}

// distributedOver returns the cluster database.packets is a Distributed table over, "" if it
// is another engine or missing.
func distributedOver(ctx context.Context, conn Conn, database string) (string, error) {
	var rows []struct {
		Engine string `ch:"engine"`
		Full   string `ch:"engine_full"`
	}
	if err := conn.Select(ctx, &rows, "SELECT engine, engine_full FROM system.tables WHERE database = ? AND name = 'packets'", database); err != nil {
		return "", fmt.Errorf("read engine of %s.packets: %w", database, err)
	}
	if len(rows) == 0 || rows[0].Engine != "Distributed" {
		return "", nil
	}
	// engine_full: Distributed('cluster', 'db', 'packets_local', key)
	full := strings.TrimPrefix(rows[0].Full, "Distributed(")
	name, _, _ := strings.Cut(full, ",")
	return strings.Trim(strings.TrimSpace(name), "'`\""), nil
}
