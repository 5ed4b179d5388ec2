package analytics

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// replicate copies the rows of table base `copies` times into packets, each copy another set of
// conversations 11.25 s later: per copy, the addresses of both ends get their low 16 bits XORed
// with a per-copy value (so each copy is other hosts, and a conversation keeps its two ends), the
// ephemeral ports shift, and TCP sequence numbers, the IPv4 id and the DNS id move by per-copy
// offsets, keeping their steps within a conversation. Every timestamp gets 0-999 ns of jitter
// (the captures have µs timestamps, the kernel's have ns, and exact copies would let ZSTD find
// the same deltas again in every copy). Hosts edge-0..2 with one collector run each whose seq
// counts its packets in time order, as a collector's does, iface eth0. What repeats is the mix:
// the same kinds of conversations, names and payload sizes, as on a real link.
const replicate = `
INSERT INTO %[1]s
SELECT * EXCEPT (n) REPLACE (toUInt64(row_number() OVER (PARTITION BY host ORDER BY ts, n)) AS seq)
FROM (
    WITH
        cityHash64(k) AS h,
        toUInt128(h %% 65536) AS x,
        (src_port > dst_port AND src_port >= 1024) OR src_port >= 32768 AS src_eph,
        (dst_port > src_port AND dst_port >= 1024) OR dst_port >= 32768 AS dst_eph
    SELECT
        ts + toIntervalNanosecond(k * 11250000000 + cityHash64(k, n) %% 1000) AS ts,
        concat('edge-', toString(k %% 3)) AS host,
        'eth0' AS iface,
        cityHash64(concat('edge-', toString(k %% 3))) AS collector_id,
        k * 100000 + n AS seq,
        2 AS ifindex, pkt_len, src_mac, dst_mac, eth_type, vlan_id, inner_vlan_id, ip_version,
        if(ip_version = 0, src_addr, toIPv6(bitXor(toUInt128(src_addr), x))) AS src_addr,
        if(ip_version = 0, dst_addr, toIPv6(bitXor(toUInt128(dst_addr), x))) AS dst_addr,
        ip_proto, ttl, tos, ip_len,
        if(ip_id = 0, 0, (ip_id + h %% 65536) %% 65536) AS ip_id,
        ip_flags, frag_offset, flow_label, ip6_ext,
        if(src_eph, 1024 + (src_port + k * 37) %% 64511, src_port) AS src_port,
        if(dst_eph, 1024 + (dst_port + k * 37) %% 64511, dst_port) AS dst_port,
        tcp_flags,
        if(tcp_seq = 0, 0, toUInt32((tcp_seq + h) %% 4294967296)) AS tcp_seq,
        if(tcp_ack = 0, 0, toUInt32((tcp_ack + h) %% 4294967296)) AS tcp_ack,
        tcp_window, icmp_type, icmp_code, payload_len,
        tunnel_type, tunnel_id, tunnel_src, tunnel_dst, tunnel_ttl, tunnel_depth,
        if(dns_id = 0, 0, bitXor(dns_id, h %% 65536)) AS dns_id,
        dns_is_response, dns_qname, dns_qtype, dns_rcode, dns_answers, dns_answer_addrs,
        tls_sni, tls_ja4, tls_alpn, tls_version_max, quic_version, quic_dcid, quic_scid, http_method, http_host, http_path,
        sample_rate, parse_error, n
    FROM (SELECT *, row_number() OVER (ORDER BY ts, iface, seq) AS n FROM %[2]s) AS b,
         (SELECT number AS k FROM numbers(%[3]d)) AS c
)`

// flood is the worst case for compression: a SYN flood from random spoofed IPv4 sources to one
// address and port, one packet every 5 µs, random ports, sequence numbers and IPv4 ids.
const flood = `
INSERT INTO %[1]s (ts, host, iface, collector_id, seq, ifindex, pkt_len, src_mac, dst_mac, eth_type,
    ip_version, src_addr, dst_addr, ip_proto, ttl, ip_len, ip_id, src_port, dst_port, tcp_flags,
    tcp_seq, tcp_window, sample_rate)
SELECT
    toDateTime64(%[2]d, 9) + toIntervalNanosecond(number * 5000), 'edge-0', 'eth0', 42, number, 2, 60,
    0x020000000001, 0x020000000002, 0x0800, 4,
    toIPv6(IPv4NumToString(toUInt32(rand32(1)))), toIPv6('198.51.100.10'), 6, 40 + rand(2) %% 200, 40,
    rand(3) %% 65536, 1024 + rand(4) %% 64000, 443, 0x02, rand(5), 64240, 1
FROM numbers(%[3]d)`

type columnSize struct {
	name              string
	compressed, plain uint64
	codec             string
}

// tableSize returns rows, bytes on disk (data, marks, primary index, checksums: everything) and
// the per-column compressed sizes of a table's active parts.
func tableSize(ctx context.Context, ch CH, table string) (rows, disk uint64, cols []columnSize, err error) {
	r, err := ch.Query(ctx, "SELECT sum(rows), sum(bytes_on_disk) FROM system.parts WHERE database = currentDatabase() AND table = '"+table+"' AND active")
	if err != nil {
		return 0, 0, nil, err
	}
	f := strings.Split(r[0], "\t")
	rows, _ = strconv.ParseUint(f[0], 10, 64)
	disk, _ = strconv.ParseUint(f[1], 10, 64)
	lines, err := ch.Query(ctx, "SELECT name, data_compressed_bytes, data_uncompressed_bytes, compression_codec FROM system.columns "+
		"WHERE database = currentDatabase() AND table = '"+table+"' ORDER BY data_compressed_bytes DESC, name")
	if err != nil {
		return 0, 0, nil, err
	}
	for _, l := range lines {
		f := strings.Split(l, "\t")
		c, _ := strconv.ParseUint(f[1], 10, 64)
		u, _ := strconv.ParseUint(f[2], 10, 64)
		cols = append(cols, columnSize{name: f[0], compressed: c, plain: u, codec: strings.TrimSuffix(strings.TrimPrefix(f[3], "CODEC("), ")")})
	}
	return rows, disk, cols, nil
}

// loadMixBase fills table base with the shared captures' packets, once each, and returns how
// many copies of them (replicate) make the 200k-packet mix. The mix starts at 10:00 UTC
// yesterday and spans about an hour, so it lies in one day, one partition of packets
// (PARTITION BY toDate(ts)), whenever the test runs: a mix starting two hours before a run
// between 00:00 and 02:00 UTC was split over two days, and its inserts into two smaller parts
// (TestPacketsPartTypes failed on that at 01:2x).
func loadMixBase(t testing.TB, ch CH) (ds *Dataset, baseRows, copies int) {
	t.Helper()
	ctx := testCtx(t)
	ds = Build(sharedCaptures(t), time.Now().UTC().Truncate(24*time.Hour).Add(-14*time.Hour))
	if err := ch.Exec(ctx, "CREATE TABLE base AS packets ENGINE = MergeTree ORDER BY tuple()"); err != nil {
		t.Fatal(err)
	}
	for _, b := range ds.Batches {
		if strings.HasPrefix(b.Token, "capture-") {
			if err := ch.InsertInto(ctx, "base", b.Packets, ""); err != nil {
				t.Fatal(err)
			}
			baseRows += len(b.Packets)
		}
	}
	return ds, baseRows, (200_000 + baseRows - 1) / baseRows
}

// TestStorageBytesPerPacket measures what a packet costs on disk for the mix of the shared
// captures, replicated to over 200k rows (see replicate) and merged into one part: it must stay
// at or under 12 bytes. It also measures the same rows with the codecs of 0001 (before
// 0102_packets_codecs), a SYN flood (the worst case) and the rollups, for schema/STORAGE.md.
func TestStorageBytesPerPacket(t *testing.T) {
	const goal = 12.0
	ch := migrated(t)
	ctx := testCtx(t)
	ds, baseRows, copies := loadMixBase(t, ch)
	// The same rows with the codecs of 0001 (before 0102_packets_codecs), in a table without the
	// rollup views: the difference in insert time is what the views cost.
	if err := ch.Exec(ctx, "CREATE TABLE packets_0001 AS packets"); err != nil {
		t.Fatal(err)
	}
	for _, col := range []string{"tcp_seq", "tcp_ack", "ip_id", "src_port", "dst_port"} {
		if err := ch.Exec(ctx, "ALTER TABLE packets_0001 MODIFY COLUMN "+col+" CODEC(ZSTD(1))"); err != nil {
			t.Fatal(err)
		}
	}
	var took [2]time.Duration
	for i, table := range []string{"packets_0001", "packets"} {
		start := time.Now()
		if err := ch.Exec(ctx, fmt.Sprintf(replicate, table, "base", copies)); err != nil {
			t.Fatal(err)
		}
		took[i] = time.Since(start)
	}
	t.Logf("inserted %d × %d packets in %v without the rollup views, %v with them",
		copies, baseRows, took[0].Round(time.Millisecond), took[1].Round(time.Millisecond))
	if err := ch.Exec(ctx, "CREATE TABLE packets_flood AS packets"); err != nil {
		t.Fatal(err)
	}
	if err := ch.Exec(ctx, fmt.Sprintf(flood, "packets_flood", ds.From.Unix(), 200_000)); err != nil {
		t.Fatal(err)
	}
	// Every table a materialized view fills (the rollups, and whatever later migrations add).
	views, err := ch.Query(ctx, "SELECT extract(create_table_query, 'TO [^.]+\\.(\\w+)') FROM system.tables WHERE database = currentDatabase() AND engine = 'MaterializedView' ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	tables := append([]string{"packets", "packets_0001", "packets_flood"}, slices.Compact(slices.Sorted(slices.Values(views)))...)
	for _, table := range tables {
		if err := ch.Exec(ctx, "OPTIMIZE TABLE "+table+" FINAL"); err != nil {
			t.Fatal(err)
		}
	}
	rows, disk, cols, err := tableSize(ctx, ch, "packets")
	if err != nil {
		t.Fatal(err)
	}
	if rows < 200_000 {
		t.Fatalf("only %d packets replicated", rows)
	}
	perPacket := float64(disk) / float64(rows)
	// What is kept must be Wide (0901 makes only the inserts Compact): a Compact part would
	// store more bytes per packet than the table is meant to.
	for _, p := range packetsParts(ctx, t, ch) {
		t.Logf("packets after OPTIMIZE FINAL: %s", p)
		if p.kind != "Wide" && p.rows >= wideFromRows {
			t.Errorf("merged part of %d rows is %s, want Wide", p.rows, p.kind)
		}
	}
	_, _, old, err := tableSize(ctx, ch, "packets_0001")
	if err != nil {
		t.Fatal(err)
	}
	oldBy := map[string]columnSize{}
	for _, c := range old {
		oldBy[c.name] = c
	}
	var b strings.Builder
	fmt.Fprintf(&b, "packets: %d rows, %d bytes on disk, %.2f bytes/packet (goal %.0f)\n", rows, disk, perPacket, goal)
	fmt.Fprintf(&b, "| column | codec | B/packet | ratio | B/packet with 0001's codec |\n|---|---|---:|---:|---:|\n")
	for _, c := range cols {
		ratio := 0.0
		if c.compressed > 0 {
			ratio = float64(c.plain) / float64(c.compressed)
		}
		fmt.Fprintf(&b, "| %s | %s | %.3f | %.1f | %.3f |\n", c.name, c.codec, float64(c.compressed)/float64(rows), ratio,
			float64(oldBy[c.name].compressed)/float64(rows))
	}
	for _, table := range tables[1:] {
		n, d, _, err := tableSize(ctx, ch, table)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s: %d rows, %d bytes on disk, %.2f bytes per packet of the mix, %.1f bytes/row\n",
			table, n, d, float64(d)/float64(rows), float64(d)/float64(max(n, 1)))
	}
	t.Log("\n" + b.String())
	if perPacket > goal {
		t.Errorf("%.2f bytes/packet on disk, goal %.0f", perPacket, goal)
	}
}
