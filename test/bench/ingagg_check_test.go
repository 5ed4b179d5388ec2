package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/packetlake/packetlake/test/analytics"
)

// rollupCheck is one rollup table read as dashboards read it (GROUP BY with the merge
// functions) and the same aggregate computed directly over packets: the independent answer a
// rollup, however it was filled, must equal row for row.
type rollupCheck struct{ table, merged, direct string }

// rollupChecks are the checks of test/analytics/rollups_test.go (minute and hour) plus the
// detector's two tables; detect_recent is compared by count and a hash of every row.
func rollupChecks() []rollupCheck {
	type fam struct {
		name, where  string
		keys, direct []string // rollup key columns and their expressions over packets
		minuteKeys   []string // key columns of the minute table only, the same over packets
		vals, dvals  []string // merged values and their direct aggregates
	}
	fams := []fam{
		{name: "flows",
			keys:   []string{"host", "iface", "src_addr", "dst_addr", "ip_proto", "src_port", "dst_port", "tunnel_type", "tunnel_id"},
			direct: []string{"host", "iface", "src_addr", "dst_addr", "ip_proto", "src_port", "dst_port", "tunnel_type", "tunnel_id"},
			// 0903: traffic_1m is rolled up from flows_1m, so flows_1m keeps traffic's keys too.
			minuteKeys: []string{"vlan_id", "ip_version"},
			vals:       []string{"sum(packets)", "sum(bytes)", "sum(syn)", "sum(ack)", "sum(fin)", "sum(rst)", "min(first_seen)", "max(last_seen)"},
			dvals: []string{"sum(sample_rate)", "sum(toUInt64(pkt_len) * sample_rate)", "sumIf(sample_rate, bitAnd(tcp_flags, 2) = 2)",
				"sumIf(sample_rate, bitAnd(tcp_flags, 16) = 16)", "sumIf(sample_rate, bitAnd(tcp_flags, 1) = 1)", "sumIf(sample_rate, bitAnd(tcp_flags, 4) = 4)", "min(ts)", "max(ts)"}},
		{name: "traffic",
			keys:   []string{"host", "iface", "vlan_id", "ip_version", "ip_proto", "dst_port", "tunnel_type", "tunnel_id"},
			direct: []string{"host", "iface", "vlan_id", "ip_version", "ip_proto", "dst_port", "tunnel_type", "tunnel_id"},
			vals:   []string{"sum(packets)", "sum(bytes)"}, dvals: []string{"sum(sample_rate)", "sum(toUInt64(pkt_len) * sample_rate)"}},
		{name: "talkers", keys: []string{"host", "iface", "src_addr"}, direct: []string{"host", "iface", "src_addr"},
			vals: []string{"sum(packets)", "sum(bytes)", "uniqMerge(dst_ports)", "uniqMerge(dst_addrs)"},
			dvals: []string{"sum(sample_rate)", "sum(toUInt64(pkt_len) * sample_rate)",
				"uniqExactIf(dst_port, ip_proto = 6 OR ip_proto = 17)", "uniqExact(dst_addr)"}},
		{name: "dns_names", where: "dns_qname != ''", keys: []string{"host", "iface", "qname", "qtype"},
			direct: []string{"host", "iface", "dns_qname", "dns_qtype"},
			vals:   []string{"sum(queries)", "sum(responses)", "sum(nxdomain)"},
			dvals: []string{"sumIf(sample_rate, dns_is_response = 0)", "sumIf(sample_rate, dns_is_response = 1)",
				"sumIf(sample_rate, dns_is_response = 1 AND dns_rcode = 3)"}},
		{name: "tls_sni", where: "tls_sni != ''", keys: []string{"host", "iface", "sni"}, direct: []string{"host", "iface", "tls_sni"},
			vals: []string{"sum(client_hellos)", "uniqMerge(clients)"}, dvals: []string{"sum(sample_rate)", "uniqExact(src_addr)"}},
		{name: "http_hosts", where: "http_method != ''", keys: []string{"host", "iface", "http_host", "method"},
			direct: []string{"host", "iface", "http_host", "http_method"},
			vals:   []string{"sum(requests)", "uniqMerge(clients)"}, dvals: []string{"sum(sample_rate)", "uniqExact(src_addr)"}},
	}
	var out []rollupCheck
	for _, f := range fams {
		where := ""
		if f.where != "" {
			where = " WHERE " + f.where
		}
		for _, tier := range []struct{ suffix, bucket, fn string }{{"_1m", "minute", "toStartOfMinute"}, {"_1h", "hour", "toStartOfHour"}} {
			t := f.name + tier.suffix
			keys, direct := f.keys, f.direct
			if tier.suffix == "_1m" {
				keys, direct = append(slices.Clone(keys), f.minuteKeys...), append(slices.Clone(direct), f.minuteKeys...)
			}
			out = append(out, rollupCheck{table: t,
				merged: fmt.Sprintf("SELECT %s, %s, %s FROM %s GROUP BY ALL ORDER BY ALL", tier.bucket, strings.Join(keys, ", "), strings.Join(f.vals, ", "), t),
				direct: fmt.Sprintf("SELECT %s(ts) AS b, %s, %s FROM packets%s GROUP BY ALL ORDER BY ALL", tier.fn, strings.Join(direct, ", "), strings.Join(f.dvals, ", "), where)})
		}
	}
	recent := "count(), sum(cityHash64(ts, src_addr, dst_addr, ip_proto, src_port, dst_port, tcp_flags, icmp_type, dns_is_response, dns_qname, sample_rate, pkt_len))"
	return append(out,
		rollupCheck{table: "detect_dst_1s",
			merged: "SELECT ts, dst_addr, ip_proto, sum(packets), sum(bytes) FROM detect_dst_1s GROUP BY ALL ORDER BY ALL",
			direct: "SELECT toDateTime(ts) AS s, dst_addr, ip_proto, sum(sample_rate), sum(toUInt64(pkt_len) * sample_rate) FROM packets GROUP BY ALL ORDER BY ALL"},
		rollupCheck{table: "detect_recent", merged: "SELECT " + recent + " FROM detect_recent", direct: "SELECT " + recent + " FROM packets"})
}

// checksExcept is rollupChecks without the tables for which skip is true.
func checksExcept(skip func(table string) bool) []rollupCheck {
	out := rollupChecks()
	return slices.DeleteFunc(out, func(c rollupCheck) bool { return skip(c.table) })
}

// checkRollups runs checks in db: each rollup read back must equal the direct aggregate over
// db's packets. It fails tb on any difference and returns how many rows each check had.
func checkRollups(tb testing.TB, db string, checks []rollupCheck) map[string]int {
	tb.Helper()
	ch, err := analytics.NewCH(env.CHConfig(db))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rows := map[string]int{}
	for _, c := range checks {
		got, err := ch.Query(ctx, c.merged)
		if err != nil {
			tb.Fatal(err)
		}
		want, err := ch.Query(ctx, c.direct)
		if err != nil {
			tb.Fatal(err)
		}
		rows[c.table] = len(want)
		if d := firstDiff(got, want); d != "" {
			tb.Errorf("%s.%s differs from the aggregate over packets (%d rows, want %d): %s", db, c.table, len(got), len(want), d)
		}
	}
	return rows
}

// firstDiff describes the first differing row of two sorted result sets ("" when equal).
func firstDiff(got, want []string) string {
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			return fmt.Sprintf("row %d: got %q, want %q", i, g, w)
		}
	}
	return ""
}
