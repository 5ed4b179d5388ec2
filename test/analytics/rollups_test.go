package analytics

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// A rollup family is one minute table and its hourly tier. Each value is given three ways: as
// the rollup stores it after merging (read with FINAL), as an aggregate over the rollup's rows
// (what dashboards do), and as the aggregate computed directly over packets: the independent
// definition the rollups must equal.
type rollupValue struct {
	stored string // expression over a FINAL row of the rollup
	merge  string // aggregate over rollup rows
	direct string // aggregate over packets
}

type rollupFamily struct {
	name   string
	keys   [][2]string // rollup column, expression over packets
	minute [][2]string // more keys of the minute table only
	where  string      // filter over packets ("" = every packet)
	values []rollupValue
}

func sumOf(col, direct string) rollupValue {
	return rollupValue{stored: col, merge: "sum(" + col + ")", direct: direct}
}

func uniqOf(col, direct string) rollupValue {
	return rollupValue{stored: "finalizeAggregation(" + col + ")", merge: "uniqMerge(" + col + ")", direct: direct}
}

var rollupFamilies = []rollupFamily{
	{
		name: "flows",
		keys: [][2]string{{"host", "host"}, {"iface", "iface"}, {"src_addr", "src_addr"}, {"dst_addr", "dst_addr"},
			{"ip_proto", "ip_proto"}, {"src_port", "src_port"}, {"dst_port", "dst_port"},
			{"tunnel_type", "tunnel_type"}, {"tunnel_id", "tunnel_id"}},
		// 0903: traffic_1m is rolled up from flows_1m's rows, so flows_1m keeps traffic's keys.
		minute: [][2]string{{"vlan_id", "vlan_id"}, {"ip_version", "ip_version"}},
		values: []rollupValue{
			sumOf("packets", "sum(sample_rate)"),
			sumOf("bytes", "sum(toUInt64(pkt_len) * sample_rate)"),
			sumOf("syn", "sumIf(sample_rate, bitAnd(tcp_flags, 2) = 2)"),
			sumOf("ack", "sumIf(sample_rate, bitAnd(tcp_flags, 16) = 16)"),
			sumOf("fin", "sumIf(sample_rate, bitAnd(tcp_flags, 1) = 1)"),
			sumOf("rst", "sumIf(sample_rate, bitAnd(tcp_flags, 4) = 4)"),
			{stored: "first_seen", merge: "min(first_seen)", direct: "min(ts)"},
			{stored: "last_seen", merge: "max(last_seen)", direct: "max(ts)"},
		},
	},
	{
		name: "traffic",
		keys: [][2]string{{"host", "host"}, {"iface", "iface"}, {"vlan_id", "vlan_id"}, {"ip_version", "ip_version"},
			{"ip_proto", "ip_proto"}, {"dst_port", "dst_port"}, {"tunnel_type", "tunnel_type"}, {"tunnel_id", "tunnel_id"}},
		values: []rollupValue{
			sumOf("packets", "sum(sample_rate)"),
			sumOf("bytes", "sum(toUInt64(pkt_len) * sample_rate)"),
		},
	},
	{
		name: "talkers",
		keys: [][2]string{{"host", "host"}, {"iface", "iface"}, {"src_addr", "src_addr"}},
		values: []rollupValue{
			sumOf("packets", "sum(sample_rate)"),
			sumOf("bytes", "sum(toUInt64(pkt_len) * sample_rate)"),
			uniqOf("dst_ports", "uniqExactIf(dst_port, ip_proto = 6 OR ip_proto = 17)"),
			uniqOf("dst_addrs", "uniqExact(dst_addr)"),
		},
	},
	{
		name:  "dns_names",
		keys:  [][2]string{{"host", "host"}, {"iface", "iface"}, {"qname", "dns_qname"}, {"qtype", "dns_qtype"}},
		where: "dns_qname != ''",
		values: []rollupValue{
			sumOf("queries", "sumIf(sample_rate, dns_is_response = 0)"),
			sumOf("responses", "sumIf(sample_rate, dns_is_response = 1)"),
			sumOf("nxdomain", "sumIf(sample_rate, dns_is_response = 1 AND dns_rcode = 3)"),
		},
	},
	{
		name:  "tls_sni",
		keys:  [][2]string{{"host", "host"}, {"iface", "iface"}, {"sni", "tls_sni"}},
		where: "tls_sni != ''",
		values: []rollupValue{
			sumOf("client_hellos", "sum(sample_rate)"),
			uniqOf("clients", "uniqExact(src_addr)"),
		},
	},
	{
		name:  "http_hosts",
		keys:  [][2]string{{"host", "host"}, {"iface", "iface"}, {"http_host", "http_host"}, {"method", "http_method"}},
		where: "http_method != ''",
		values: []rollupValue{
			sumOf("requests", "sum(sample_rate)"),
			uniqOf("clients", "uniqExact(src_addr)"),
		},
	},
}

var tiers = []struct{ suffix, bucket, fn string }{{"_1m", "minute", "toStartOfMinute"}, {"_1h", "hour", "toStartOfHour"}}

// queries returns the rollup read three ways and the direct aggregate, each sorted by every column.
func (f rollupFamily) queries(suffix, bucket, fn string) (stored, final, merged, direct string) {
	keys, pkeys := []string{bucket}, []string{fn + "(ts) AS " + bucket}
	fkeys := f.keys
	if suffix == "_1m" {
		fkeys = append(slices.Clone(fkeys), f.minute...)
	}
	for _, k := range fkeys {
		keys, pkeys = append(keys, k[0]), append(pkeys, k[1])
	}
	var st, mg, dr []string
	for _, v := range f.values {
		st, mg, dr = append(st, v.stored), append(mg, v.merge), append(dr, v.direct)
	}
	table := f.name + suffix
	k := strings.Join(keys, ", ")
	stored = fmt.Sprintf("SELECT %s, %s FROM %s ORDER BY ALL", k, strings.Join(st, ", "), table)
	final = fmt.Sprintf("SELECT %s, %s FROM %s FINAL ORDER BY ALL", k, strings.Join(st, ", "), table)
	merged = fmt.Sprintf("SELECT %s, %s FROM %s GROUP BY %s ORDER BY ALL", k, strings.Join(mg, ", "), table, k)
	where := ""
	if f.where != "" {
		where = " WHERE " + f.where
	}
	direct = fmt.Sprintf("SELECT %s, %s FROM packets%s GROUP BY ALL ORDER BY ALL", strings.Join(pkeys, ", "), strings.Join(dr, ", "), where)
	return
}

// sameRows fails the test with the first differences between two sorted result sets.
func sameRows(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") == strings.Join(want, "\n") {
		return
	}
	inGot := map[string]bool{}
	for _, r := range got {
		inGot[r] = true
	}
	inWant := map[string]bool{}
	for _, r := range want {
		inWant[r] = true
	}
	var missing, extra []string
	for _, r := range want {
		if !inGot[r] && len(missing) < 5 {
			missing = append(missing, r)
		}
	}
	for _, r := range got {
		if !inWant[r] && len(extra) < 5 {
			extra = append(extra, r)
		}
	}
	t.Errorf("%s: %d rows, want %d (direct over packets)\nmissing (first 5):\n  %s\nunexpected (first 5):\n  %s",
		what, len(got), len(want), strings.Join(missing, "\n  "), strings.Join(extra, "\n  "))
}

// TestRollupsEqualPackets: every rollup, minute and hour, read with FINAL, read with GROUP BY and
// the merge functions, and read plainly after OPTIMIZE FINAL, equals the same aggregate computed
// directly over packets, row for row: every key, every count scaled by sample_rate, the first and
// last ns, the distinct counts. The data went in as 31 INSERTs of which two were replays with the
// same deduplication token: packets and every rollup must have dropped them.
func TestRollupsEqualPackets(t *testing.T) {
	ch, ds := known(t)
	ctx := testCtx(t)
	n, err := ch.Uint(ctx, "SELECT count() FROM packets")
	if err != nil {
		t.Fatal(err)
	}
	if want := len(ds.Packets()); n != uint64(want) {
		t.Fatalf("packets has %d rows, the dataset %d: the replayed batches were not deduplicated", n, want)
	}
	for _, f := range rollupFamilies {
		for _, tier := range tiers {
			stored, final, merged, direct := f.queries(tier.suffix, tier.bucket, tier.fn)
			want, err := ch.Query(ctx, direct)
			if err != nil {
				t.Fatal(err)
			}
			// The data must exercise the rollup: several buckets, and sampled packets in it.
			buckets, err := ch.Uint(ctx, fmt.Sprintf("SELECT uniqExact(%s) FROM (%s)", tier.bucket, strings.Replace(direct, " ORDER BY ALL", "", 1)))
			if err != nil {
				t.Fatal(err)
			}
			minBuckets := map[string]uint64{"minute": 20, "hour": 2}[tier.bucket]
			if len(want) < 5 || buckets < minBuckets {
				t.Errorf("%s%s: the dataset gives only %d rows in %d %ss: too little to check", f.name, tier.suffix, len(want), buckets, tier.bucket)
			}
			cond := "sample_rate > 1"
			if f.where != "" {
				cond += " AND " + f.where
			}
			if sampled, err := ch.Uint(ctx, "SELECT count() FROM packets WHERE "+cond); err != nil || sampled == 0 {
				t.Errorf("%s: no sampled packets in the dataset (%v)", f.name, err)
			}
			for _, q := range []struct{ how, sql string }{{"FINAL", final}, {"GROUP BY", merged}} {
				got, err := ch.Query(ctx, q.sql)
				if err != nil {
					t.Fatal(err)
				}
				sameRows(t, f.name+tier.suffix+" read with "+q.how, got, want)
			}
			if err := ch.Exec(ctx, "OPTIMIZE TABLE "+f.name+tier.suffix+" FINAL"); err != nil {
				t.Fatal(err)
			}
			got, err := ch.Query(ctx, stored)
			if err != nil {
				t.Fatal(err)
			}
			sameRows(t, f.name+tier.suffix+" after OPTIMIZE FINAL", got, want)
			t.Logf("%s%s: %d rows in %d %ss equal the direct aggregate", f.name, tier.suffix, len(want), buckets, tier.bucket)
		}
	}
}

// TestRollupRetention: each rollup has the documented default TTL (schema/STORAGE.md), and a
// deployment can change it with ALTER TABLE ... MODIFY TTL.
func TestRollupRetention(t *testing.T) {
	ch := migrated(t)
	ctx := testCtx(t)
	for _, f := range rollupFamilies {
		for _, tier := range tiers {
			want := map[string]string{
				"_1m": "TTL toDate(minute) + toIntervalDay(30)",
				"_1h": "TTL toDate(hour) + toIntervalDay(365)",
			}[tier.suffix]
			rows, err := ch.Query(ctx, "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = '"+f.name+tier.suffix+"'")
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 1 || !strings.Contains(rows[0], want) || !strings.Contains(rows[0], "ttl_only_drop_parts = 1") {
				t.Errorf("%s%s: engine %q, want %q and ttl_only_drop_parts", f.name, tier.suffix, rows, want)
			}
		}
	}
	if err := ch.Exec(ctx, "ALTER TABLE flows_1m MODIFY TTL toDate(minute) + INTERVAL 90 DAY"); err != nil {
		t.Fatal(err)
	}
	if err := ch.Exec(ctx, "ALTER TABLE packets MODIFY TTL toDate(ts) + INTERVAL 7 DAY"); err != nil {
		t.Fatalf("the documented packets retention statement: %v", err)
	}
	rows, err := ch.Query(ctx, "SELECT name, engine_full LIKE '%TTL toDate(%) + toIntervalDay(%' FROM system.tables WHERE database = currentDatabase() AND name IN ('flows_1m', 'packets') ORDER BY name")
	if err != nil || strings.Join(rows, ",") != "flows_1m\t1,packets\t1" {
		t.Fatalf("after the documented ALTERs: %v %v", rows, err)
	}
}

// TestRollupsByTunnel (issue #17): the flow and traffic rollups split traffic by the tunnel its
// innermost packet came in (migration 0600): per tunnel_type and tunnel_id, every tier counts
// exactly the packets and bytes of packets, and the shared captures' tunnels are all there.
func TestRollupsByTunnel(t *testing.T) {
	ch, _ := known(t)
	ctx := testCtx(t)
	want, err := ch.Query(ctx, "SELECT tunnel_type, tunnel_id, sum(sample_rate), sum(toUInt64(pkt_len) * sample_rate) FROM packets GROUP BY ALL ORDER BY ALL")
	if err != nil {
		t.Fatal(err)
	}
	kinds, err := ch.Uint(ctx, "SELECT uniqExact(tunnel_type) FROM packets WHERE tunnel_type != ''")
	if err != nil {
		t.Fatal(err)
	}
	// vxlan.pcap, tcpdump-geneve.pcap and gre-sample.pcap at least (README, "Tunnels").
	if kinds < 3 {
		t.Fatalf("the dataset has %d tunnel types: too few to check the tunnel keys", kinds)
	}
	for _, table := range []string{"flows_1m", "flows_1h", "traffic_1m", "traffic_1h"} {
		got, err := ch.Query(ctx, "SELECT tunnel_type, tunnel_id, sum(packets), sum(bytes) FROM "+table+" GROUP BY ALL ORDER BY ALL")
		if err != nil {
			t.Fatal(err)
		}
		sameRows(t, table+" by tunnel", got, want)
	}
	t.Logf("%d (tunnel_type, tunnel_id) keys of %d tunnel types equal in every flow and traffic rollup", len(want), kinds)
}
