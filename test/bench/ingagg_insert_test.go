package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/packetlake/packetlake/internal/chconn"
	"github.com/packetlake/packetlake/record"
)

// rowBinary appends values in ClickHouse's RowBinary format (integers little-endian, IPv6 as
// 16 bytes, strings with a varint length), the format ClickHouse parses with the least work.
type rowBinary []byte

func (b *rowBinary) u8(v uint8)    { *b = append(*b, v) }
func (b *rowBinary) u16(v uint16)  { *b = binary.LittleEndian.AppendUint16(*b, v) }
func (b *rowBinary) u32(v uint32)  { *b = binary.LittleEndian.AppendUint32(*b, v) }
func (b *rowBinary) u64(v uint64)  { *b = binary.LittleEndian.AppendUint64(*b, v) }
func (b *rowBinary) ip(v [16]byte) { *b = append(*b, v[:]...) }
func (b *rowBinary) str(v string) {
	*b = binary.AppendUvarint(*b, uint64(len(v)))
	*b = append(*b, v...)
}

// rollupInsert is one table's INSERT and the RowBinary body the batch gives it.
type rollupInsert struct {
	table, sql string
	body       rowBinary
	rows       int
}

// Statements: plain RowBinary where every column is a sum (SimpleAggregateFunction(sum) and
// SummingMergeTree take the partial sums as they are); INSERT ... SELECT FROM input() GROUP BY
// where a uniq state must be built from the distinct tuples. Each takes its table's time column
// name (minute or hour).
const (
	flowsSQL = "INSERT INTO %[1]s (%[2]s, host, iface, src_addr, dst_addr, ip_proto, src_port, dst_port, tunnel_type, tunnel_id, " +
		"packets, bytes, syn, ack, fin, rst, first_seen, last_seen) FORMAT RowBinary"
	// flows_1m has traffic's keys vlan_id and ip_version too (migration 0903).
	flows1mSQL = "INSERT INTO %[1]s (%[2]s, host, iface, src_addr, dst_addr, ip_proto, src_port, dst_port, tunnel_type, tunnel_id, vlan_id, ip_version, " +
		"packets, bytes, syn, ack, fin, rst, first_seen, last_seen) FORMAT RowBinary"
	trafficSQL = "INSERT INTO %[1]s (%[2]s, host, iface, vlan_id, ip_version, ip_proto, dst_port, tunnel_type, tunnel_id, packets, bytes) FORMAT RowBinary"
	talkersSQL = "INSERT INTO %[1]s (%[2]s, host, iface, src_addr, packets, bytes, dst_ports, dst_addrs) " +
		"SELECT t, host, iface, src_addr, sum(packets), sum(bytes), uniqStateIf(dst_port, has_port = 1), uniqState(dst_addr) " +
		"FROM input('t DateTime, host String, iface String, src_addr IPv6, dst_addr IPv6, dst_port UInt16, has_port UInt8, packets UInt64, bytes UInt64') " +
		"GROUP BY t, host, iface, src_addr FORMAT RowBinary"
	dnsSQL = "INSERT INTO %[1]s (%[2]s, host, iface, qname, qtype, queries, responses, nxdomain) FORMAT RowBinary"
	sniSQL = "INSERT INTO %[1]s (%[2]s, host, iface, sni, client_hellos, clients) " +
		"SELECT t, host, iface, name, sum(n), uniqState(client) " +
		"FROM input('t DateTime, host String, iface String, name String, client IPv6, n UInt64') GROUP BY t, host, iface, name FORMAT RowBinary"
	httpSQL = "INSERT INTO %[1]s (%[2]s, host, iface, http_host, method, requests, clients) " +
		"SELECT t, host, iface, name, method, sum(n), uniqState(client) " +
		"FROM input('t DateTime, host String, iface String, name String, method String, client IPv6, n UInt64') GROUP BY t, host, iface, name, method FORMAT RowBinary"
	dst1sSQL  = "INSERT INTO %[1]s (ts, dst_addr, ip_proto, packets, bytes) FORMAT RowBinary"
	recentSQL = "INSERT INTO %[1]s (ts, src_addr, dst_addr, ip_proto, src_port, dst_port, tcp_flags, icmp_type, dns_is_response, dns_qname, sample_rate, pkt_len) FORMAT RowBinary"
)

// appendHostIface appends the host and iface columns of interned pair hi.
func (d *dims) appendHostIface(b *rowBinary, hi uint16) {
	b.str(d.hostIfaces[hi][0])
	b.str(d.hostIfaces[hi][1])
}

func flowRows(d *dims, a *agg[flowKey, flowVal]) (b rowBinary) {
	for i, k := range a.keys {
		appendFlowKey(&b, d, k)
		appendFlowVal(&b, &a.vals[i])
	}
	return b
}

// fineRows are flows_1m's rows: the flow key, then vlan_id and ip_version.
func fineRows(d *dims, a *agg[fineKey, flowVal]) (b rowBinary) {
	for i, k := range a.keys {
		appendFlowKey(&b, d, k.flowKey)
		b.u16(k.vlan)
		b.u8(k.ipver)
		appendFlowVal(&b, &a.vals[i])
	}
	return b
}

func appendFlowKey(b *rowBinary, d *dims, k flowKey) {
	b.u32(k.t)
	d.appendHostIface(b, k.hi)
	b.ip(k.src)
	b.ip(k.dst)
	b.u8(k.proto)
	b.u16(k.sport)
	b.u16(k.dport)
	b.str(d.tunTypes[k.tt])
	b.u32(k.tunID)
}

func appendFlowVal(b *rowBinary, v *flowVal) {
	for _, x := range []uint64{v.packets, v.bytes, v.syn, v.ack, v.fin, v.rst, uint64(v.first), uint64(v.last)} {
		b.u64(x)
	}
}

func trafficRows(d *dims, a *agg[trafficKey, sums]) (b rowBinary) {
	for i, k := range a.keys {
		b.u32(k.t)
		d.appendHostIface(&b, k.hi)
		b.u16(k.vlan)
		b.u8(k.ipver)
		b.u8(k.proto)
		b.u16(k.dport)
		b.str(d.tunTypes[k.tt])
		b.u32(k.tunID)
		b.u64(a.vals[i].packets)
		b.u64(a.vals[i].bytes)
	}
	return b
}

func talkerRows(d *dims, a *agg[talkerKey, sums]) (b rowBinary) {
	for i, k := range a.keys {
		b.u32(k.t)
		d.appendHostIface(&b, k.hi)
		b.ip(k.src)
		b.ip(k.dst)
		b.u16(k.dport)
		if k.hasPort {
			b.u8(1)
		} else {
			b.u8(0)
		}
		b.u64(a.vals[i].packets)
		b.u64(a.vals[i].bytes)
	}
	return b
}

func dnsRows(d *dims, a *agg[dnsKey, dnsVal]) (b rowBinary) {
	for i, k := range a.keys {
		b.u32(k.t)
		d.appendHostIface(&b, k.hi)
		b.str(k.qname)
		b.u16(k.qtype)
		b.u64(a.vals[i].queries)
		b.u64(a.vals[i].responses)
		b.u64(a.vals[i].nxdomain)
	}
	return b
}

func nameRows(d *dims, a *agg[nameKey, uint64], method bool) (b rowBinary) {
	for i, k := range a.keys {
		b.u32(k.t)
		d.appendHostIface(&b, k.hi)
		b.str(k.name)
		if method {
			b.str(k.method)
		}
		b.ip(k.client)
		b.u64(a.vals[i])
	}
	return b
}

func dst1sRows(a *agg[dstKey, sums]) (b rowBinary) {
	for i, k := range a.keys {
		b.u32(k.t)
		b.ip(k.dst)
		b.u8(k.proto)
		b.u64(a.vals[i].packets)
		b.u64(a.vals[i].bytes)
	}
	return b
}

// recentRows is detect_recent's copy of 12 columns of every packet: no aggregation possible.
func recentRows(pkts []record.Packet) (b rowBinary) {
	b = make(rowBinary, 0, len(pkts)*80)
	for i := range pkts {
		p := &pkts[i]
		b.u64(uint64(p.TS))
		b.ip(p.SrcAddr)
		b.ip(p.DstAddr)
		b.u8(p.IPProto)
		b.u16(p.SrcPort)
		b.u16(p.DstPort)
		b.u16(p.TCPFlags)
		b.u8(p.ICMPType)
		b.u8(p.DNSIsResponse)
		b.str(p.DNSQName)
		b.u32(p.SampleRate)
		b.u32(p.PktLen)
	}
	return b
}

// inserts encodes the batch's aggregates as one insert per rollup table of db (the hour tables
// when hours, detect_recent when recent), empty tables left out as the views write nothing for
// them either.
func (r *rollupAgg) inserts(db string, pkts []record.Packet, hours, recent bool) []rollupInsert {
	out := []rollupInsert{
		{table: "flows_1m", sql: flows1mSQL, body: fineRows(&r.dims, &r.fine), rows: len(r.fine.keys)},
		{table: "flows_1h", sql: flowsSQL, body: flowRows(&r.dims, &r.flowsH), rows: len(r.flowsH.keys)},
		{table: "traffic_1m", sql: trafficSQL, body: trafficRows(&r.dims, &r.traffic.m), rows: len(r.traffic.m.keys)},
		{table: "traffic_1h", sql: trafficSQL, body: trafficRows(&r.dims, &r.traffic.h), rows: len(r.traffic.h.keys)},
		{table: "talkers_1m", sql: talkersSQL, body: talkerRows(&r.dims, &r.talkers.m), rows: len(r.talkers.m.keys)},
		{table: "talkers_1h", sql: talkersSQL, body: talkerRows(&r.dims, &r.talkers.h), rows: len(r.talkers.h.keys)},
		{table: "dns_names_1m", sql: dnsSQL, body: dnsRows(&r.dims, &r.dns.m), rows: len(r.dns.m.keys)},
		{table: "dns_names_1h", sql: dnsSQL, body: dnsRows(&r.dims, &r.dns.h), rows: len(r.dns.h.keys)},
		{table: "tls_sni_1m", sql: sniSQL, body: nameRows(&r.dims, &r.sni.m, false), rows: len(r.sni.m.keys)},
		{table: "tls_sni_1h", sql: sniSQL, body: nameRows(&r.dims, &r.sni.h, false), rows: len(r.sni.h.keys)},
		{table: "http_hosts_1m", sql: httpSQL, body: nameRows(&r.dims, &r.http.m, true), rows: len(r.http.m.keys)},
		{table: "http_hosts_1h", sql: httpSQL, body: nameRows(&r.dims, &r.http.h, true), rows: len(r.http.h.keys)},
		{table: "detect_dst_1s", sql: dst1sSQL, body: dst1sRows(&r.dst1s), rows: len(r.dst1s.keys)},
	}
	if recent {
		out = append(out, rollupInsert{table: "detect_recent", sql: recentSQL, body: recentRows(pkts), rows: len(pkts)})
	}
	out = slices.DeleteFunc(out, func(in rollupInsert) bool { return in.rows == 0 || !hours && strings.HasSuffix(in.table, "_1h") })
	for i := range out {
		tcol := "minute"
		if strings.HasSuffix(out[i].table, "_1h") {
			tcol = "hour"
		}
		out[i].sql = fmt.Sprintf(out[i].sql, db+"."+out[i].table, tcol)
	}
	return out
}

// rollupSettings go with every rollup insert: the ingester's dedup settings, and one thread as
// the floor's INSERT ... SELECT has.
var rollupSettings = map[string]string{"insert_deduplicate": "1", "max_threads": "1", "max_insert_threads": "1"}

// sendRollups makes the inserts, each under its own token derived from the batch's: a replay of the
// batch re-derives the same tokens, so every table drops its copy (the tables keep
// non_replicated_deduplication_window, as for the views).
func sendRollups(ctx context.Context, client *chconn.Client, ins []rollupInsert, batchToken string) error {
	for _, in := range ins {
		s := map[string]string{"insert_deduplication_token": batchToken + "/" + in.table}
		for k, v := range rollupSettings {
			s[k] = v
		}
		if err := client.Insert(ctx, in.sql, bytes.NewReader(in.body), s); err != nil {
			return fmt.Errorf("insert %d rows into %s: %w", in.rows, in.table, err)
		}
	}
	return nil
}
