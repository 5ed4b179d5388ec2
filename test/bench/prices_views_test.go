package bench

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// Where the views' price goes (issue #18, session 10), as variants of BenchmarkRollupPrices:
//   - views-to-null: every view runs its query and aggregation over each inserted block but
//     writes into an ENGINE = Null copy of its table, so no part is made; the hour views read
//     the Null minute tables, so they still run. Its price over the floor is the views'
//     queries; all-views minus it is their parts. null-only-<family> is one family so.
//   - views-old-analyzer: the INSERT (and so its views' queries) with the old query analyzer.
//   - surrogate-keys: flows, traffic and talkers grouping by 64-bit hashes of their
//     LowCardinality string keys (host, iface, tunnel_type) and carrying the strings with any(),
//     since a plain SELECT with those GROUP BYs over the 1M rows cost 2-7x less CPU without the
//     string keys (BENCHMARKS.md). Not exact in principle (a hash collision): priced only.
//   - views-before-0902: traffic_1m's and talkers_1m's views over every packet, as before
//     migration 0902 rolled them up from flows_1m's rows (-to-null: the same, queries only).
//   - views-before-0903: traffic_1m's view over every packet, as before migration 0903 rolled
//     it up from flows_1m's rows (flows keeps 0903's two extra keys; talkers stays on flows).
//   - no-sparse: the views' tables without sparse serialization. (Packed part storage,
//     min_bytes_for_full_part_storage, was tried too: the parts kept their 13 files on this
//     engine's local disk, so it priced nothing and is not a variant.)
func viewPriceVariants(b *testing.B) []variant {
	all := func(string) bool { return true }
	vs := []variant{
		{name: "views-to-null", keep: all, setup: toNullViews(b)},
		{name: "views-to-null-500k-blocks", keep: all, setup: toNullViews(b), block: 500_000},
		{name: "views-old-analyzer", keep: all, settings: "enable_analyzer = 0", check: rollupChecks()},
		{name: "views-to-null-old-analyzer", keep: all, settings: "enable_analyzer = 0", setup: toNullViews(b)},
		{name: "surrogate-keys", keep: all, setup: execAll(b, surrogateViews), check: rollupChecks()},
		{name: "views-before-0902", keep: all, setup: execAll(b, viewsBefore0902), check: rollupChecks()},
		{name: "views-before-0902-to-null", keep: all, setup: func(db string) { execAll(b, viewsBefore0902)(db); toNullViews(b)(db) }},
		{name: "views-before-0903", keep: all, setup: execAll(b, viewsBefore0903), check: rollupChecks()},
		{name: "no-sparse", keep: all, setup: setOnRollups(b, "ratio_of_defaults_for_sparse_serialization = 1")},
	}
	for _, fam := range []string{"flows", "talkers", "traffic", "dns_names", "tls_sni", "http_hosts", "detect_dst_1s", "detect_recent"} {
		vs = append(vs, variant{name: "null-only-" + fam, keep: func(x string) bool { return strings.HasPrefix(x, fam+"_") }, setup: toNullViews(b)})
	}
	return vs
}

// execAll returns a setup that runs stmts (";\n"-separated, {db} for the database) in db.
func execAll(tb testing.TB, stmts string) func(db string) {
	return func(db string) {
		conn := env.CH(tb)
		for _, stmt := range strings.Split(strings.ReplaceAll(stmts, "{db}", db), ";\n") {
			chExec(tb, conn, stmt)
		}
	}
}

// setOnRollups sets a table setting on every MergeTree table of db but packets.
func setOnRollups(b *testing.B, setting string) func(db string) {
	return func(db string) {
		for _, t := range mergeTreeTables(b, db) {
			if t != "packets" {
				chExec(b, env.CH(b), "ALTER TABLE "+db+"."+t+" MODIFY SETTING "+setting)
			}
		}
	}
}

// toNullViews re-creates every view of db to write into an ENGINE = Null copy of its table
// (and the hour views to read the Null minute tables).
func toNullViews(b *testing.B) func(db string) {
	return func(db string) {
		conn := env.CH(b)
		type mv struct{ name, q string }
		var mvs []mv
		for _, name := range viewNames(b, db) {
			q := queryStrings(b, fmt.Sprintf("SELECT create_table_query FROM system.tables WHERE database = '%s' AND name = '%s'", db, name))[0]
			mvs = append(mvs, mv{name, q})
		}
		targets := map[string]bool{}
		re := regexp.MustCompile(`TO ` + db + `\.(\w+)`)
		for _, m := range mvs {
			targets[re.FindStringSubmatch(m.q)[1]] = true
		}
		for t := range targets {
			chExec(b, conn, fmt.Sprintf("CREATE TABLE %s.%s_null AS %s.%s ENGINE = Null", db, t, db, t))
		}
		for _, m := range mvs {
			chExec(b, conn, "DROP VIEW "+db+"."+m.name+" SYNC")
		}
		for _, m := range mvs {
			q := m.q
			for t := range targets {
				q = strings.ReplaceAll(q, "TO "+db+"."+t+" ", "TO "+db+"."+t+"_null ")
				q = strings.ReplaceAll(q, "FROM "+db+"."+t+" ", "FROM "+db+"."+t+"_null ")
				q = strings.ReplaceAll(q, "FROM "+db+"."+t+"\n", "FROM "+db+"."+t+"_null\n")
			}
			chExec(b, conn, q)
		}
	}
}

// surrogateViews: see viewPriceVariants, surrogate-keys.
const surrogateViews = `
DROP VIEW {db}.flows_1m_mv SYNC;
CREATE MATERIALIZED VIEW {db}.flows_1m_mv TO {db}.flows_1m AS
SELECT toStartOfMinute(ts) AS minute, any(host) AS host, any(iface) AS iface, src_addr, dst_addr, ip_proto, src_port, dst_port, any(tunnel_type) AS tunnel_type, tunnel_id,
    sum(sample_rate) AS packets, sum(pkt_len * sample_rate) AS bytes,
    sumIf(sample_rate, bitAnd(tcp_flags, 0x02) != 0) AS syn, sumIf(sample_rate, bitAnd(tcp_flags, 0x10) != 0) AS ack,
    sumIf(sample_rate, bitAnd(tcp_flags, 0x01) != 0) AS fin, sumIf(sample_rate, bitAnd(tcp_flags, 0x04) != 0) AS rst,
    min(ts) AS first_seen, max(ts) AS last_seen
FROM {db}.packets
GROUP BY minute, cityHash64(host), cityHash64(iface), src_addr, dst_addr, ip_proto, src_port, dst_port, cityHash64(tunnel_type), tunnel_id SETTINGS prefer_column_name_to_alias = 1;
DROP VIEW {db}.traffic_1m_mv SYNC;
CREATE MATERIALIZED VIEW {db}.traffic_1m_mv TO {db}.traffic_1m AS
SELECT toStartOfMinute(ts) AS minute, any(host) AS host, any(iface) AS iface, vlan_id, ip_version, ip_proto, dst_port, any(tunnel_type) AS tunnel_type, tunnel_id,
    sum(sample_rate) AS packets, sum(pkt_len * sample_rate) AS bytes
FROM {db}.packets
GROUP BY minute, cityHash64(host), cityHash64(iface), vlan_id, ip_version, ip_proto, dst_port, cityHash64(tunnel_type), tunnel_id SETTINGS prefer_column_name_to_alias = 1;
DROP VIEW {db}.talkers_1m_mv SYNC;
CREATE MATERIALIZED VIEW {db}.talkers_1m_mv TO {db}.talkers_1m AS
SELECT toStartOfMinute(ts) AS minute, any(host) AS host, any(iface) AS iface, src_addr,
    sum(sample_rate) AS packets, sum(pkt_len * sample_rate) AS bytes,
    uniqStateIf(dst_port, ip_proto IN (6, 17)) AS dst_ports, uniqState(dst_addr) AS dst_addrs
FROM {db}.packets
GROUP BY minute, cityHash64(host), cityHash64(iface), src_addr SETTINGS prefer_column_name_to_alias = 1`

// viewsBefore0902 are traffic_1m's and talkers_1m's views as before migration 0902, over every
// packet instead of flows_1m's rows (flows keeps 0902's two extra keys, vlan_id and ip_version).
const viewsBefore0902 = `
DROP VIEW {db}.talkers_1m_mv SYNC;
CREATE MATERIALIZED VIEW {db}.talkers_1m_mv TO {db}.talkers_1m AS
SELECT toStartOfMinute(ts) AS minute, host, iface, src_addr, sum(sample_rate) AS packets, sum(pkt_len * sample_rate) AS bytes,
    uniqStateIf(dst_port, ip_proto IN (6, 17)) AS dst_ports, uniqState(dst_addr) AS dst_addrs
FROM {db}.packets
GROUP BY minute, host, iface, src_addr`

// viewsBefore0903 is traffic_1m's view as before migration 0903 (0600's), over every packet
// instead of flows_1m's rows (flows_1m keeps 0903's keys vlan_id and ip_version).
const viewsBefore0903 = `
DROP VIEW {db}.traffic_1m_mv SYNC;
CREATE MATERIALIZED VIEW {db}.traffic_1m_mv TO {db}.traffic_1m AS
SELECT toStartOfMinute(ts) AS minute, host, iface, vlan_id, ip_version, ip_proto, dst_port, tunnel_type, tunnel_id,
    sum(sample_rate) AS packets, sum(pkt_len * sample_rate) AS bytes
FROM {db}.packets
GROUP BY minute, host, iface, vlan_id, ip_version, ip_proto, dst_port, tunnel_type, tunnel_id`
