package cluster

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/packetlake/packetlake/schema"
)

// schemaApply runs `packetlake schema apply --cluster` against shard 1 and returns its output.
func schemaApply(t *testing.T, ctx context.Context, db string) string {
	t.Helper()
	out, err := exec.CommandContext(ctx, env.Bin, "schema", "apply", "--cluster", env.CHCluster.Name(),
		"--clickhouse", env.CHCluster.TCPAddrs()[0], "--database", db).CombinedOutput()
	if err != nil {
		t.Fatalf("schema apply --cluster: %v\n%s", err, out)
	}
	return string(out)
}

// TestClusterSchemaApply: `schema apply --cluster` lays the schema out on both shards (local
// MergeTree tables, Distributed tables over them, views on the local tables, every migration
// recorded on each node), twice without harm; `ingest --cluster` accepts it; a node that lacks
// a migration is refused by both `ingest --cluster` and a plain ingester's Migrate, which would
// otherwise put single-server DDL on that one node.
func TestClusterSchemaApply(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	const db = "pl_schema_apply"
	out := schemaApply(t, ctx, db)
	if !strings.Contains(out, "on the 2 shards of cluster "+env.CHCluster.Name()) {
		t.Errorf("schema apply --cluster said: %s", out)
	}
	schemaApply(t, ctx, db) // again: nothing to do, no error

	ms, err := schema.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for shard, addr := range env.CHCluster.HTTPAddrs() {
		ch := chHTTP(t, addr, db)
		rows, err := ch.Query(ctx, "SELECT name, engine FROM system.tables WHERE database = '"+db+"' ORDER BY name")
		if err != nil {
			t.Fatal(err)
		}
		engines := map[string]string{}
		for _, r := range rows {
			name, engine, _ := strings.Cut(r, "\t")
			engines[name] = engine
		}
		for _, tbl := range []string{"packets", "flows", "collector_stats", "dead_letters", "ingest_batches", "anomalies", "detect_recent"} {
			if engines[tbl] != "Distributed" || !strings.HasSuffix(engines[tbl+"_local"], "MergeTree") || strings.HasPrefix(engines[tbl+"_local"], "Replicated") {
				t.Errorf("shard %d: %s is %q and %s_local %q; want Distributed over a (non-replicated) MergeTree", shard+1, tbl, engines[tbl], tbl, engines[tbl+"_local"])
			}
		}
		deps, err := ch.Query(ctx, "SELECT name, arrayStringConcat(arrayMap(x -> toString(x), dependencies_table), ',') FROM system.tables WHERE database = '"+db+"' AND engine = 'MaterializedView'")
		if err != nil || len(deps) == 0 {
			t.Fatalf("shard %d: materialized views: %v %v", shard+1, deps, err)
		}
		n, err := ch.Uint(ctx, "SELECT count() FROM (SELECT DISTINCT version FROM schema_migrations)")
		if err != nil || n != uint64(len(ms)) {
			t.Errorf("shard %d: %d migrations recorded (%v), want %d", shard+1, n, err, len(ms))
		}
	}

	ingest := func(extra ...string) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		// --brokers to a closed port: the schema step comes first and decides the exit.
		args := append([]string{"ingest", "--brokers", "127.0.0.1:1", "--clickhouse", env.CHCluster.TCPAddrs()[1],
			"--clickhouse-http", env.CHCluster.HTTPAddrs()[1], "--database", db, "--metrics-addr", ""}, extra...)
		b, err := exec.CommandContext(ctx, env.Bin, args...).CombinedOutput()
		return string(b), err
	}
	// A current schema: the ingester starts (and runs until the context ends it).
	if out, _ := ingest("--cluster", env.CHCluster.Name()); strings.Contains(out, "check cluster schema") {
		t.Errorf("ingest --cluster refused a current schema: %s", out)
	}
	if out, err := ingest("--cluster", "other_cluster"); err == nil || !strings.Contains(out, "is Distributed over cluster "+env.CHCluster.Name()) {
		t.Errorf("ingest --cluster other_cluster: %v\n%s", err, tail(out, 1000))
	}
	// Shard 2 forgets the last migration, as if the cluster had been applied by an older binary,
	// and 0600, as if its bookkeeping row had been lost: re-applied over 0903, 0600's shorter
	// MODIFY ORDER BY must leave flows_1m_local's key alone (schema/sortkey.go).
	last := ms[len(ms)-1]
	ch2 := chHTTP(t, env.CHCluster.HTTPAddrs()[1], db)
	if err := ch2.Exec(ctx, "DELETE FROM schema_migrations WHERE version IN (600, "+fmt.Sprint(last.Version)+")"); err != nil {
		t.Fatal(err)
	}
	if out, err := ingest("--cluster", env.CHCluster.Name()); err == nil || !strings.Contains(out, "lacks migrations") {
		t.Errorf("ingest --cluster with a migration missing: %v\n%s", err, tail(out, 1000))
	}
	if out, err := ingest(); err == nil || !strings.Contains(out, "schema apply --cluster") {
		t.Errorf("plain ingest with a migration missing on a cluster node: %v\n%s", err, tail(out, 1000))
	}
	schemaApply(t, ctx, db) // applies the missing migration to shard 2 only, and records it
	if n, err := ch2.Uint(ctx, "SELECT count() FROM schema_migrations FINAL WHERE version = "+fmt.Sprint(last.Version)); err != nil || n != 1 {
		t.Errorf("after schema apply: version %d recorded %d times on shard 2 (%v)", last.Version, n, err)
	}
	if key, err := ch2.Query(ctx, "SELECT sorting_key FROM system.tables WHERE database = '"+db+"' AND name = 'flows_1m_local'"); err != nil || len(key) != 1 || !strings.HasSuffix(key[0], "tunnel_id, vlan_id, ip_version") {
		t.Errorf("shard 2's flows_1m_local key after 0600 and %04d re-applied: %q (%v), want 0903's", last.Version, key, err)
	}
}
