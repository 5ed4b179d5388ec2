package schema

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// ClusterOptions says how to lay the schema out on a ClickHouse cluster (see schema/CLUSTER.md).
type ClusterOptions struct {
	// Cluster is the cluster's name in the servers' remote_servers configuration.
	Cluster string
	// Database is the database on every node (the --database of the ingester).
	Database string
	// ZooKeeperPrefix starts the Keeper path of every sharded table; the table's database and
	// name follow. The default "/clickhouse/tables/{shard}" uses the servers' {shard} macro.
	ZooKeeperPrefix string
	// PacketsShardingKey spreads packets (and so the rollups their views fill) over the shards.
	// It must be deterministic: a replayed batch must split the same way for its deduplication
	// token to drop it on every shard. The default keeps a conversation's direction on one shard.
	PacketsShardingKey string
	// Unreplicated lays the schema out for a cluster without Keeper, one node per shard: the
	// statements run on every node in turn (no ON CLUSTER), the local tables keep their
	// single-server engines and non_replicated_deduplication_window, and schema_migrations is a
	// plain table on each node. ApplySharded runs them.
	Unreplicated bool
	// After leaves out of ClusterDDL the migrations up to this version: an upgrade prints only
	// what the cluster lacks (its SELECT max(version) FROM schema_migrations). Re-running every
	// migration is not safe on a cluster: see ClusterDDL.
	After uint32
}

// DefaultPacketsShardingKey is ClusterOptions.PacketsShardingKey when none is given.
const DefaultPacketsShardingKey = "cityHash64(src_addr, dst_addr)"

// shardingKeys are the Distributed tables' keys for the tables the ingester inserts into, other
// than packets. Tables a materialized view writes (the rollups) have none: only their views write
// them, on each shard, and reading through the Distributed table needs no key. Other tables (an
// application inserts into them) are sharded by a hash of their ORDER BY key, deterministic like
// the insert tokens need.
var shardingKeys = map[string]string{
	"dead_letters":    "cityHash64(topic, `partition`)",
	"collector_stats": "collector_id",
	// Rows of one Kafka partition on one shard, so FINAL through the Distributed table folds them.
	"ingest_batches": "cityHash64(topic, `partition`)",
}

// LocalSuffix names the replicated table behind each Distributed one: packets -> packets_local.
const LocalSuffix = "_local"

var (
	reCreateTable = regexp.MustCompile(`(?is)^CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+\{database\}\.(\w+)\s*(\(.*)$`)
	reCreateMV    = regexp.MustCompile(`(?is)^CREATE\s+MATERIALIZED\s+VIEW\s+IF\s+NOT\s+EXISTS\s+\{database\}\.(\w+)\s+(.*)$`)
	reCreateOther = regexp.MustCompile(`(?is)^CREATE\s+(VIEW|DICTIONARY|FUNCTION)\s+IF\s+NOT\s+EXISTS\s+\{database\}\.(\w+)\s+(.*)$`)
	reAlter       = regexp.MustCompile(`(?is)^ALTER\s+TABLE\s+\{database\}\.(\w+)\s+(.*)$`)
	reDrop        = regexp.MustCompile(`(?is)^DROP\s+(TABLE|VIEW|DICTIONARY)\s+IF\s+EXISTS\s+\{database\}\.(\w+)\s*(.*)$`)
	reMVTarget    = regexp.MustCompile(`(?is)^\s*CREATE\s+MATERIALIZED\s+VIEW\s.*?\sTO\s+\{database\}\.(\w+)`)
	reOrderBy     = regexp.MustCompile(`(?is)\bORDER\s+BY\s+`)
	reEngine      = regexp.MustCompile(`(?is)\)\s*ENGINE\s*=\s*(\w+)`)
	reRef         = regexp.MustCompile(`\{database\}\.(\w+)`)
	reDedupWindow = regexp.MustCompile(`\bnon_replicated_deduplication_window\b`)
	reQuerySets   = regexp.MustCompile(`(?is)^(.*?)\s+SETTINGS\s+(\w+\s*=.*)$`)
	reModifyCol   = regexp.MustCompile(`(?is)^MODIFY\s+COLUMN\s+(?:IF\s+EXISTS\s+)?` + "`?\\w+`?" + `\s+(\w+)`)
	reColumnCmd   = regexp.MustCompile(`(?is)^(ADD|DROP|RENAME|COMMENT|CLEAR)\s+COLUMN\b`)
)

// ClusterDDL turns the migrations into the statements that create the same schema on a cluster:
// every MergeTree table becomes a Replicated* table NAME_local on every node (ON CLUSTER) and a
// Distributed table NAME over it, so the ingester, the reports and the dashboards keep using the
// names they use on one server; materialized views are created on every node and read and write
// the local tables, so each shard rolls up the packets it holds. The last statements record the
// migrations in a schema_migrations table replicated to every node, so an ingester started
// against the cluster finds the schema current and applies nothing. Statements come with the
// database name in place and without a trailing semicolon.
//
// Printed DDL cannot look at the tables it alters, so it cannot do what Migrate and
// ApplySharded do before a MODIFY ORDER BY (sortkey.go: leave it out when the table's key
// already equals or extends it). Applied again in full over a cluster that has 0903, the whole
// output would run 0600's MODIFY ORDER BY on flows_1m_local, which ClickHouse accepts silently
// as a SHORTER key (merges would then fold rows that differ only in vlan_id or ip_version), and
// 0903's ALTER would then be refused ("Existing column vlan_id is used in the expression that
// was added to the sorting key"). So an upgrade prints only the new migrations (opts.After, the
// cluster's recorded version; schema-cluster --after).
func ClusterDDL(opts ClusterOptions) ([]string, error) {
	head, steps, err := clusterSteps(opts)
	if err != nil {
		return nil, err
	}
	out := head
	var printed []Migration
	for _, st := range steps {
		if st.Version > opts.After {
			out = append(out, st.Statements...)
			printed = append(printed, st)
		}
	}
	if len(printed) == 0 {
		return out, nil
	}
	return append(out, recordMigrations(opts.Database, printed...)), nil
}

// recordMigrations is the INSERT that records steps in schema_migrations.
func recordMigrations(database string, steps ...Migration) string {
	var values []string
	now := time.Now().UTC().Format(time.DateTime)
	for _, m := range steps {
		values = append(values, fmt.Sprintf("(%d, '%s', '%s')", m.Version, m.Name, now))
	}
	return fmt.Sprintf("INSERT INTO `%s`.schema_migrations (version, name, applied_at) VALUES %s", database, strings.Join(values, ", "))
}

// clusterSteps returns the statements that create the database and schema_migrations, and each
// migration's statements for the cluster (database name in place).
func clusterSteps(opts ClusterOptions) (head []string, steps []Migration, err error) {
	if !identifier.MatchString(opts.Cluster) {
		return nil, nil, fmt.Errorf("cluster name %q is not a plain identifier", opts.Cluster)
	}
	if !identifier.MatchString(opts.Database) {
		return nil, nil, fmt.Errorf("database name %q is not a plain identifier", opts.Database)
	}
	if opts.ZooKeeperPrefix == "" {
		opts.ZooKeeperPrefix = "/clickhouse/tables/{shard}"
	}
	if strings.ContainsAny(opts.ZooKeeperPrefix, `'\`) {
		return nil, nil, fmt.Errorf("ZooKeeper prefix %q must not contain quotes or backslashes", opts.ZooKeeperPrefix)
	}
	if opts.PacketsShardingKey == "" {
		opts.PacketsShardingKey = DefaultPacketsShardingKey
	}
	ms, err := Migrations()
	if err != nil {
		return nil, nil, err
	}
	g := &clusterGen{opts: opts, db: "`" + opts.Database + "`", sharded: map[string]bool{}, viewFed: map[string]bool{}}
	for _, m := range ms {
		for _, stmt := range m.Statements {
			if v := reMVTarget.FindStringSubmatch(stmt); v != nil {
				g.viewFed[v[1]] = true
			}
		}
	}
	head = []string{fmt.Sprintf("CREATE DATABASE IF NOT EXISTS %s%s ENGINE = Atomic", g.db, g.onCluster())}
	if opts.Unreplicated {
		head = append(head, "CREATE TABLE IF NOT EXISTS "+g.db+".schema_migrations "+
			"(version UInt32, name String, applied_at DateTime) "+
			"ENGINE = ReplacingMergeTree(applied_at) ORDER BY version")
	} else {
		// One copy on every node of every shard: the path has no {shard}.
		head = append(head, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.schema_migrations ON CLUSTER %s "+
			"(version UInt32, name String, applied_at DateTime) "+
			"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/%s/schema_migrations', '{replica}', applied_at) ORDER BY version",
			g.db, opts.Cluster, opts.Database))
	}
	for _, m := range ms {
		st := Migration{Version: m.Version, Name: m.Name}
		for i, stmt := range m.Statements {
			s, err := g.statement(stmt)
			if err != nil {
				return nil, nil, fmt.Errorf("cluster DDL of %04d_%s statement %d: %w", m.Version, m.Name, i+1, err)
			}
			st.Statements = append(st.Statements, s...)
		}
		steps = append(steps, st)
	}
	return head, steps, nil
}

type clusterGen struct {
	opts    ClusterOptions
	db      string          // quoted
	sharded map[string]bool // tables that became NAME_local + Distributed NAME
	viewFed map[string]bool // tables a materialized view writes
}

// refs replaces {database}.NAME with the database, and with NAME_local for sharded tables when
// local is set (what a view on each node must read or write).
func (g *clusterGen) refs(s string, local bool) string {
	return reRef.ReplaceAllStringFunc(s, func(m string) string {
		name := reRef.FindStringSubmatch(m)[1]
		if local && g.sharded[name] {
			name += LocalSuffix
		}
		return g.db + "." + name
	})
}

func (g *clusterGen) onCluster() string {
	if g.opts.Unreplicated {
		return ""
	}
	return " ON CLUSTER " + g.opts.Cluster
}

func (g *clusterGen) statement(stmt string) ([]string, error) {
	stmt = strings.TrimSpace(stmt)
	switch {
	case reCreateTable.MatchString(stmt):
		m := reCreateTable.FindStringSubmatch(stmt)
		return g.createTable(m[1], m[2])
	case reCreateMV.MatchString(stmt):
		m := reCreateMV.FindStringSubmatch(stmt)
		body := m[2]
		if !regexp.MustCompile(`(?is)^TO\s+\{database\}\.\w+`).MatchString(body) {
			return nil, fmt.Errorf("materialized view %s has no TO table: on a cluster its inner table would be neither replicated nor distributed; give it a TO table", m[1])
		}
		if regexp.MustCompile(`(?i)\bREFRESH\b`).MatchString(body) {
			return nil, fmt.Errorf("refreshable materialized view %s: every node would run the refresh; cluster DDL for it is not defined (see schema/CLUSTER.md)", m[1])
		}
		return []string{"CREATE MATERIALIZED VIEW IF NOT EXISTS " + g.db + "." + m[1] + g.onCluster() + " " + g.refs(body, true)}, nil
	case reCreateOther.MatchString(stmt):
		// Plain views and dictionaries read through the Distributed tables: the whole data set.
		m := reCreateOther.FindStringSubmatch(stmt)
		return []string{"CREATE " + strings.ToUpper(m[1]) + " IF NOT EXISTS " + g.db + "." + m[2] + g.onCluster() + " " + g.refs(m[3], false)}, nil
	case reAlter.MatchString(stmt):
		m := reAlter.FindStringSubmatch(stmt)
		return g.alter(m[1], m[2])
	case reDrop.MatchString(stmt):
		m := reDrop.FindStringSubmatch(stmt)
		kind, name, rest := strings.ToUpper(m[1]), m[2], m[3]
		out := []string{"DROP " + kind + " IF EXISTS " + g.db + "." + name + g.onCluster() + suffix(rest)}
		if g.sharded[name] {
			out = append(out, "DROP TABLE IF EXISTS "+g.db+"."+name+LocalSuffix+g.onCluster()+suffix(rest))
			delete(g.sharded, name)
		}
		return out, nil
	}
	return nil, fmt.Errorf("statement not understood (CREATE TABLE/MATERIALIZED VIEW/VIEW/DICTIONARY IF NOT EXISTS, ALTER TABLE, DROP ... IF EXISTS, each naming {database}.): %.100s", stmt)
}

func suffix(s string) string {
	if s = strings.TrimSpace(s); s == "" {
		return ""
	}
	return " " + s
}

// createTable makes NAME_local (Replicated engine) and NAME (Distributed) from a CREATE TABLE.
// rest starts at the column list.
func (g *clusterGen) createTable(name, rest string) ([]string, error) {
	loc := reEngine.FindStringSubmatchIndex(rest)
	if loc == nil {
		return nil, fmt.Errorf("table %s: no ENGINE after the column list", name)
	}
	columns := rest[:loc[0]+1]
	engine := rest[loc[2]:loc[3]]
	after := rest[loc[3]:]
	if !strings.HasSuffix(engine, "MergeTree") || strings.HasPrefix(engine, "Replicated") {
		return nil, fmt.Errorf("table %s: engine %s: only the (non-replicated) MergeTree family can be made replicated and distributed", name, engine)
	}
	var args string
	if strings.HasPrefix(after, "(") {
		end, err := closingParen(after)
		if err != nil {
			return nil, fmt.Errorf("table %s: engine arguments: %w", name, err)
		}
		args, after = strings.TrimSpace(after[1:end]), after[end+1:]
	}
	local := g.db + "." + name + LocalSuffix
	var localEngine string
	if g.opts.Unreplicated {
		// Each node's own table, deduplicating tokens by itself as on a single server.
		localEngine = engine
		if args != "" {
			localEngine += "(" + args + ")"
		}
	} else {
		path := fmt.Sprintf("'%s/%s/%s%s', '{replica}'", g.opts.ZooKeeperPrefix, g.opts.Database, name, LocalSuffix)
		if args != "" {
			path += ", " + args
		}
		// Deduplication by insert token works the same on a replicated table, through Keeper.
		after = reDedupWindow.ReplaceAllString(after, "replicated_deduplication_window")
		localEngine = "Replicated" + engine + "(" + path + ")"
	}
	out := []string{
		"CREATE TABLE IF NOT EXISTS " + local + g.onCluster() + "\n" + g.refs(columns, false) +
			"\nENGINE = " + localEngine + g.refs(after, false),
	}
	key, ok := shardingKeys[name]
	switch {
	case name == "packets":
		key = g.opts.PacketsShardingKey
	case !ok && !g.viewFed[name]:
		var err error
		if key, err = orderByHash(after); err != nil {
			return nil, fmt.Errorf("table %s: %w", name, err)
		}
	}
	dist := fmt.Sprintf("Distributed(%s, %s, %s%s", g.opts.Cluster, g.opts.Database, name, LocalSuffix)
	if key != "" {
		dist += ", " + key
	}
	out = append(out, "CREATE TABLE IF NOT EXISTS "+g.db+"."+name+g.onCluster()+" AS "+local+"\nENGINE = "+dist+")")
	g.sharded[name] = true
	return out, nil
}

// alter applies an ALTER to the local tables, and also to the Distributed one for the commands
// that change its columns (codecs, TTLs, settings, indexes and mutations concern storage only).
func (g *clusterGen) alter(name, cmds string) ([]string, error) {
	if !g.sharded[name] {
		// A view (MODIFY QUERY) or another object created on every node.
		return []string{"ALTER TABLE " + g.db + "." + name + g.onCluster() + " " + g.refs(cmds, true)}, nil
	}
	settings := ""
	if m := reQuerySets.FindStringSubmatch(cmds); m != nil && !strings.Contains(strings.ToUpper(m[1]), "MODIFY SETTING") {
		cmds, settings = m[1], "\nSETTINGS "+m[2]
	}
	parts, err := splitTopLevel(cmds)
	if err != nil {
		return nil, fmt.Errorf("ALTER TABLE %s: %w", name, err)
	}
	var columns []string
	for _, p := range parts {
		if reColumnCmd.MatchString(p) {
			columns = append(columns, p)
		} else if m := reModifyCol.FindStringSubmatch(p); m != nil {
			switch strings.ToUpper(m[1]) {
			case "CODEC", "COMMENT", "TTL", "REMOVE", "MODIFY", "RESET":
			default: // a type: the Distributed table must follow
				columns = append(columns, p)
			}
		}
	}
	out := []string{"ALTER TABLE " + g.db + "." + name + LocalSuffix + g.onCluster() + "\n    " + g.refs(strings.Join(parts, ",\n    "), true) + settings}
	if len(columns) > 0 {
		out = append(out, "ALTER TABLE "+g.db+"."+name+g.onCluster()+"\n    "+g.refs(strings.Join(columns, ",\n    "), false))
	}
	return out, nil
}

// orderByHash returns cityHash64 of a table's ORDER BY key, from the clauses after ENGINE.
func orderByHash(clauses string) (string, error) {
	loc := reOrderBy.FindStringIndex(clauses)
	if loc == nil {
		return "", fmt.Errorf("no ORDER BY to derive a sharding key from")
	}
	expr := clauses[loc[1]:]
	if strings.HasPrefix(expr, "(") {
		end, err := closingParen(expr)
		if err != nil {
			return "", err
		}
		expr = expr[1:end]
	} else if i := strings.IndexAny(expr, "\n"); i >= 0 {
		expr = expr[:i]
	}
	expr = strings.TrimSpace(expr)
	if expr == "" || strings.EqualFold(expr, "tuple()") {
		return "", fmt.Errorf("ORDER BY %q gives no sharding key: add the table to schema.shardingKeys", expr)
	}
	return "cityHash64(" + expr + ")", nil
}
