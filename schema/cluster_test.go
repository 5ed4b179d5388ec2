package schema_test

import (
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/packetlake/packetlake/schema"
)

var spaces = regexp.MustCompile(`\s+`)

// TestClusterDDL: every statement of the cluster DDL parses on the real ClickHouse (formatQuery,
// no cluster needed), and together they cover every table and view the single-node migrations
// create: a MergeTree table as a Replicated* table NAME_local with the same engine family plus a
// Distributed NAME over it, a materialized view ON CLUSTER reading and writing only local tables,
// schema_migrations replicated with every version recorded.
func TestClusterDDL(t *testing.T) {
	const cluster, db = "pl_cluster", "clu"
	stmts, err := schema.ClusterDDL(schema.ClusterOptions{Cluster: cluster, Database: db})
	if err != nil {
		t.Fatal(err)
	}
	conn := connect(t)
	var formatted []string
	for i, s := range stmts {
		var f string
		if err := conn.QueryRow(ctx(t), "SELECT formatQuery(?)", s).Scan(&f); err != nil {
			t.Errorf("statement %d does not parse: %v\n%s", i+1, err, s)
			continue
		}
		f = spaces.ReplaceAllString(f, " ")
		if !strings.HasPrefix(f, "INSERT") && !strings.Contains(f, " ON CLUSTER "+cluster) {
			t.Errorf("statement %d is not ON CLUSTER: %.120s", i+1, f)
		}
		formatted = append(formatted, f)
	}
	has := func(prefix string) string {
		for _, f := range formatted {
			if strings.HasPrefix(f, prefix) {
				return f
			}
		}
		return ""
	}

	if err := schema.Migrate(ctx(t), conn, "clu_single"); err != nil {
		t.Fatal(err)
	}
	var tables []struct {
		Name   string `ch:"name"`
		Engine string `ch:"engine"`
	}
	if err := conn.Select(ctx(t), &tables, "SELECT name, engine FROM system.tables WHERE database = 'clu_single' ORDER BY name"); err != nil {
		t.Fatal(err)
	}
	creates := 0
	for _, f := range formatted {
		if strings.HasPrefix(f, "CREATE TABLE") || strings.HasPrefix(f, "CREATE MATERIALIZED VIEW") {
			creates++
		}
		if strings.HasPrefix(f, "DROP TABLE") || strings.HasPrefix(f, "DROP VIEW") { // re-created later (0600 re-creates views)
			creates--
		}
	}
	want := 0
	for _, tb := range tables {
		switch {
		case tb.Name == "schema_migrations":
			want++
			if s := has(fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.schema_migrations ON CLUSTER %s", db, cluster)); !strings.Contains(s, "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/") {
				t.Errorf("schema_migrations: %q, want one replicated copy on every node", s)
			}
		case strings.HasSuffix(tb.Engine, "MergeTree"):
			want += 2
			local := has(fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s_local ON CLUSTER %s (", db, tb.Name, cluster))
			if !strings.Contains(local, fmt.Sprintf("ENGINE = Replicated%s('/clickhouse/tables/{shard}/%s/%s_local', '{replica}'", tb.Engine, db, tb.Name)) {
				t.Errorf("%s (%s): local table %q, want Replicated%s with a per-shard Keeper path", tb.Name, tb.Engine, local, tb.Engine)
			}
			if strings.Contains(local, "non_replicated_deduplication_window") {
				t.Errorf("%s: the local table keeps non_replicated_deduplication_window", tb.Name)
			}
			dist := has(fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s ON CLUSTER %s AS %s.%s_local ENGINE = Distributed(%s, %s, %s_local", db, tb.Name, cluster, db, tb.Name, cluster, db, tb.Name))
			if dist == "" {
				t.Errorf("%s: no Distributed table over %s_local", tb.Name, tb.Name)
			}
		case tb.Engine == "MaterializedView":
			want++
			mv := has(fmt.Sprintf("CREATE MATERIALIZED VIEW IF NOT EXISTS %s.%s ON CLUSTER %s TO %s.", db, tb.Name, cluster, db))
			if mv == "" {
				t.Errorf("view %s: no CREATE MATERIALIZED VIEW ON CLUSTER", tb.Name)
				continue
			}
			for _, ref := range regexp.MustCompile(db+`\.(\w+)`).FindAllStringSubmatch(mv, -1)[1:] {
				if !strings.HasSuffix(ref[1], "_local") {
					t.Errorf("view %s reads or writes %s, not a local table: each node must roll up its own shard", tb.Name, ref[1])
				}
			}
		case tb.Engine == "Dictionary":
			// Created on every node, reading the whole data set through the Distributed tables.
			d := has(fmt.Sprintf("CREATE DICTIONARY IF NOT EXISTS %s.%s ON CLUSTER %s", db, tb.Name, cluster))
			if d == "" {
				t.Errorf("dictionary %s: no CREATE DICTIONARY ON CLUSTER", tb.Name)
			} else if strings.Contains(d, "_local") {
				t.Errorf("dictionary %s reads a local table, so one shard's part only: %.200s", tb.Name, d)
			}
		default:
			t.Errorf("table %s: engine %s has no cluster form in this test", tb.Name, tb.Engine)
		}
	}
	if creates != want {
		t.Errorf("the cluster DDL creates %d tables and views, the single-node schema implies %d", creates, want)
	}
	ins := has(fmt.Sprintf("INSERT INTO %s.schema_migrations", db))
	ms, _ := schema.Migrations()
	for _, m := range ms {
		if !strings.Contains(stmts[len(stmts)-1], fmt.Sprintf("(%d, '%s', ", m.Version, m.Name)) {
			t.Errorf("migration %04d_%s not recorded by the cluster DDL", m.Version, m.Name)
		}
	}
	if ins == "" {
		t.Error("no INSERT INTO schema_migrations")
	}
	t.Logf("%d statements parse; %d tables and views of the single-node schema covered", len(stmts), len(tables))

	// The command prints the same statements.
	out, err := exec.Command(plBinary, "schema-cluster", "--cluster", cluster, "--database", db).CombinedOutput()
	if err != nil {
		t.Fatalf("schema-cluster: %v\n%s", err, out)
	}
	stamp := regexp.MustCompile(`'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d'`)
	if got, want := stamp.ReplaceAllString(string(out), "T"), stamp.ReplaceAllString(strings.Join(stmts, ";\n\n")+";\n", "T"); !strings.HasSuffix(got, want) {
		t.Errorf("packetlake schema-cluster printed something else than schema.ClusterDDL:\n%.400s", got)
	}
}

func TestClusterDDLRejects(t *testing.T) {
	for _, o := range []schema.ClusterOptions{
		{Cluster: "", Database: "packetlake"},
		{Cluster: "c; DROP", Database: "packetlake"},
		{Cluster: "c", Database: "a.b"},
		{Cluster: "c", Database: "packetlake", ZooKeeperPrefix: "/x'"},
	} {
		if _, err := schema.ClusterDDL(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

// TestClusterDDLAfter: an upgrade's DDL holds only the migrations after the cluster's version
// and records only them; no 0600 statement re-runs over a flows_1m_local that 0903 re-keyed.
func TestClusterDDLAfter(t *testing.T) {
	stmts, err := schema.ClusterDDL(schema.ClusterOptions{Cluster: "pl_cluster", Database: "clu", After: 902})
	if err != nil {
		t.Fatal(err)
	}
	record := stmts[len(stmts)-1]
	if !strings.HasPrefix(record, "INSERT INTO `clu`.schema_migrations") || !strings.Contains(record, "(903, 'traffic_from_flows'") || strings.Contains(record, "(902,") {
		t.Errorf("the upgrade records %q, want 0903 and nothing before it", record)
	}
	for _, s := range stmts {
		if strings.Contains(s, "tunnel_type, tunnel_id)") || strings.Contains(s, "talkers_1m_mv") {
			t.Errorf("a statement of a migration before 0903 is in the upgrade: %.120s", s)
		}
	}
	if stmts, _ := schema.ClusterDDL(schema.ClusterOptions{Cluster: "pl_cluster", Database: "clu", After: schema.LatestVersion()}); len(stmts) != 2 {
		t.Errorf("an upgrade of a current cluster prints %d statements, want the 2 that create the database and schema_migrations", len(stmts))
	}
}
