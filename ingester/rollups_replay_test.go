package ingester

import (
	"fmt"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// rollupChecks: the flow and traffic rollups (minute and hour, with 0600's tunnel keys and
// flows_1m's VLAN and IP version of 0903, from which traffic_1m is rolled up), each as
// its keys over packets, the same keys over its own rows, and the aggregates that fill it over
// packets and over its rows. (The detector's detect_dst_1s is not here: its 1-hour TTL on capture
// time empties it of the tests' dated packets at once, by design.)
var rollupChecks = []struct{ table, directKeys, rolledKeys, direct, rolled string }{
	{"flows_1m", "toStartOfMinute(ts), host, iface, src_addr, dst_addr, ip_proto, src_port, dst_port, tunnel_type, tunnel_id, vlan_id, ip_version",
		"minute, host, iface, src_addr, dst_addr, ip_proto, src_port, dst_port, tunnel_type, tunnel_id, vlan_id, ip_version",
		"sum(sample_rate), sum(toUInt64(pkt_len) * sample_rate), min(ts), max(ts)", "sum(packets), sum(bytes), min(first_seen), max(last_seen)"},
	{"flows_1h", "toStartOfHour(ts), host, iface, src_addr, dst_addr, ip_proto, src_port, dst_port, tunnel_type, tunnel_id",
		"hour, host, iface, src_addr, dst_addr, ip_proto, src_port, dst_port, tunnel_type, tunnel_id",
		"sum(sample_rate), sum(toUInt64(pkt_len) * sample_rate), min(ts), max(ts)", "sum(packets), sum(bytes), min(first_seen), max(last_seen)"},
	{"traffic_1m", "toStartOfMinute(ts), host, iface, vlan_id, ip_version, ip_proto, dst_port, tunnel_type, tunnel_id",
		"minute, host, iface, vlan_id, ip_version, ip_proto, dst_port, tunnel_type, tunnel_id",
		"sum(sample_rate), sum(toUInt64(pkt_len) * sample_rate)", "sum(packets), sum(bytes)"},
	{"traffic_1h", "toStartOfHour(ts), host, iface, vlan_id, ip_version, ip_proto, dst_port, tunnel_type, tunnel_id",
		"hour, host, iface, vlan_id, ip_version, ip_proto, dst_port, tunnel_type, tunnel_id",
		"sum(sample_rate), sum(toUInt64(pkt_len) * sample_rate)", "sum(packets), sum(bytes)"},
}

// checkRollupsEqualPackets: after replays, every rollup counts each stored packet once: its rows
// grouped by key equal the same aggregate over packets, key for key. ClickHouse computes both
// sides; EXCEPT both ways, so a doubled, missing or extra key fails.
func checkRollupsEqualPackets(t *testing.T, conn driver.Conn, db string) {
	t.Helper()
	for _, c := range rollupChecks {
		direct := fmt.Sprintf("SELECT %s, %s FROM %s.packets GROUP BY %s", c.directKeys, c.direct, db, c.directKeys)
		rolled := fmt.Sprintf("SELECT %s, %s FROM %s.%s GROUP BY %s", c.rolledKeys, c.rolled, db, c.table, c.rolledKeys)
		for _, q := range []string{
			fmt.Sprintf("SELECT count() FROM ((%s) EXCEPT (%s))", direct, rolled),
			fmt.Sprintf("SELECT count() FROM ((%s) EXCEPT (%s))", rolled, direct),
		} {
			if n := queryCount(t, conn, q); n != 0 {
				t.Errorf("%s: %d keys differ from the same aggregate over packets: %s", c.table, n, q)
			}
		}
		if n := queryCount(t, conn, fmt.Sprintf("SELECT count() FROM (%s)", rolled)); n == 0 {
			t.Errorf("%s is empty", c.table)
		}
	}
}
