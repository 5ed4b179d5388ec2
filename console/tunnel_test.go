package console

import (
	"slices"
	"testing"
	"time"
)

// tunnelPackets: handPackets plus three tunnelled packets, worked out by hand:
//
//	#  time      inner src -> dst     dport rate  tunnel   id   outer src -> dst
//	7  10:03:00  10.9.0.1 -> 10.9.0.2  80   1     vxlan    42   192.0.2.1 -> 192.0.2.2
//	8  10:03:10  10.9.0.1 -> 10.9.0.2  80   3     vxlan    42   192.0.2.1 -> 192.0.2.2
//	9  10:04:00  10.9.0.5 -> 10.9.0.6  53   1     gre      7    2001:db8:f::1 -> 2001:db8:f::2
var tunnelPackets = append(slices.Clone(handPackets),
	pkt{"ts": at(3 * time.Minute), "host": "h1", "iface": "eth0", "seq": 7, "ip_version": 4, "src_addr": "::ffff:10.9.0.1", "dst_addr": "::ffff:10.9.0.2", "ip_proto": 6, "src_port": 41000, "dst_port": 80, "pkt_len": 150, "sample_rate": 1,
		"tunnel_type": "vxlan", "tunnel_id": 42, "tunnel_src": "::ffff:192.0.2.1", "tunnel_dst": "::ffff:192.0.2.2", "tunnel_depth": 1},
	pkt{"ts": at(3*time.Minute + 10*time.Second), "host": "h1", "iface": "eth0", "seq": 8, "ip_version": 4, "src_addr": "::ffff:10.9.0.1", "dst_addr": "::ffff:10.9.0.2", "ip_proto": 6, "src_port": 41000, "dst_port": 80, "pkt_len": 150, "sample_rate": 3,
		"tunnel_type": "vxlan", "tunnel_id": 42, "tunnel_src": "::ffff:192.0.2.1", "tunnel_dst": "::ffff:192.0.2.2", "tunnel_depth": 1},
	pkt{"ts": at(4 * time.Minute), "host": "h1", "iface": "eth0", "seq": 9, "ip_version": 4, "src_addr": "::ffff:10.9.0.5", "dst_addr": "::ffff:10.9.0.6", "ip_proto": 17, "src_port": 5300, "dst_port": 53, "pkt_len": 120, "sample_rate": 1,
		"tunnel_type": "gre", "tunnel_id": 7, "tunnel_src": "2001:db8:f::1", "tunnel_dst": "2001:db8:f::2", "tunnel_depth": 1},
)

// TestTunnelDimensions: the console groups and filters packets by tunnel type, id and outer
// addresses; no rollup has those columns, so the packets table answers (and says why).
func TestTunnelDimensions(t *testing.T) {
	f := newFixture(t, tunnelPackets)
	for _, c := range []struct {
		dims string
		want map[string]uint64
	}{
		{"tunnel_type", map[string]uint64{"": 19, "vxlan": 4, "gre": 1}},
		{"tunnel_id", map[string]uint64{"0": 19, "42": 4, "7": 1}},
		{"tunnel_src", map[string]uint64{"::": 19, "192.0.2.1": 4, "2001:db8:f::1": 1}},
		{"tunnel_type,tunnel_dst,dst_port", map[string]uint64{"|::|443": 12, "|::|53": 4, "|::|80": 2, "|::|0": 1,
			"vxlan|192.0.2.2|80": 4, "gre|2001:db8:f::2|53": 1}},
	} {
		r := f.traffic(t, with(twoHours, "dims", c.dims))
		if r.Table != "packets" || len(r.Rejected) == 0 {
			t.Errorf("%s: table %s (rejected %v), want packets with the rollups rejected", c.dims, r.Table, r.Rejected)
		}
		eqTotals(t, "by "+c.dims, totals(r), c.want)
	}
	for filter, want := range map[string]uint64{
		"tunnel_type = vxlan":                     4,
		"tunnel_type != ''":                       5,
		"tunnel_id = 42 AND dst_port = 80":        4,
		"tunnel_id IN (7, 8)":                     1,
		"tunnel_src << 192.0.2.0/24":              4,
		"tunnel_dst = 2001:db8:f::2":              1,
		"tunnel_dst << 2001:db8::/32 OR ttl = 63": 5,
		"tunnel_type = gre AND tunnel_id = 42":    0,
	} {
		r := f.traffic(t, with(twoHours, "filter", filter))
		var got uint64
		for _, row := range r.Rows {
			got += row.Total
		}
		if got != want || r.Table != "packets" {
			t.Errorf("filter %q (%s): %d packets, want %d from packets", filter, r.Table, got, want)
		}
	}
}
