package analytics

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// lever is one way of storing packets, priced by BenchmarkStorageLevers: ALTERs applied to an empty
// copy of the migrated packets table before the mix goes in.
type lever struct {
	name   string
	alters []string // each "MODIFY COLUMN ..." or "MODIFY SETTING ...", run in order
}

// before0900 undoes migration 0900: packets as 0601-0852 left it, the reference of the levers.
var before0900 = []string{
	"MODIFY COLUMN tls_sni String CODEC(ZSTD(1))",
	"MODIFY COLUMN tls_ja4 String CODEC(ZSTD(1))",
	"MODIFY COLUMN dns_qname String CODEC(ZSTD(1))",
	"MODIFY COLUMN seq CODEC(Delta, ZSTD(1))",
	"MODIFY SETTING ratio_of_defaults_for_sparse_serialization = 0.9375",
}

// before returns before0900 followed by alters: one lever priced on the table 0900 started from.
func before(alters ...string) []string { return append(slices.Clone(before0900), alters...) }

// storageLevers are issue #18's candidates for storage <= 8.4 B/packet, each alone on the table
// before 0900 (the first lever, every other one's reference), then 0900's combination.
var storageLevers = []lever{
	{"before-0900", before0900},
	{"lc-ja4", before("MODIFY COLUMN tls_ja4 LowCardinality(String) CODEC(ZSTD(1))")},
	{"lc-sni", before("MODIFY COLUMN tls_sni LowCardinality(String) CODEC(ZSTD(1))")},
	{"lc-qname", before("MODIFY COLUMN dns_qname LowCardinality(String) CODEC(ZSTD(1))")},
	{"lc-http-host", before("MODIFY COLUMN http_host LowCardinality(String) CODEC(ZSTD(1))")},
	{"sparse-0.5", before("MODIFY SETTING ratio_of_defaults_for_sparse_serialization = 0.5")},
	{"sparse-0.8", before("MODIFY SETTING ratio_of_defaults_for_sparse_serialization = 0.8")},
	{"ts-zstd2", before("MODIFY COLUMN ts CODEC(Delta, ZSTD(2))")},
	{"ts-zstd3", before("MODIFY COLUMN ts CODEC(Delta, ZSTD(3))")},
	{"ts-zstd6", before("MODIFY COLUMN ts CODEC(Delta, ZSTD(6))")},
	{"ts-delta4", before("MODIFY COLUMN ts CODEC(Delta(4), ZSTD(1))")},
	{"ts-gorilla", before("MODIFY COLUMN ts CODEC(Gorilla, ZSTD(1))")},
	{"ts-delta-lz4hc", before("MODIFY COLUMN ts CODEC(Delta, LZ4HC(9))")},
	{"seqack-zstd3", before("MODIFY COLUMN tcp_seq CODEC(Delta, ZSTD(3))", "MODIFY COLUMN tcp_ack CODEC(Delta, ZSTD(3))")},
	{"seq-zstd2", before("MODIFY COLUMN seq CODEC(Delta, ZSTD(2))")},
	{"seq-zstd3", before("MODIFY COLUMN seq CODEC(Delta, ZSTD(3))")},
	{"seq-t64", before("MODIFY COLUMN seq CODEC(Delta, T64, ZSTD(1))")},
	{"answers-zstd", before("MODIFY COLUMN dns_answer_addrs CODEC(ZSTD(1))")},
	{"0900", nil}, // packets as migrated
}

// BenchmarkStorageLevers prices storageLevers on the mix of TestStorageBytesPerPacket: each lever
// gets a copy of packets (no views), the same replicated rows, OPTIMIZE FINAL, and its bytes per
// packet from system.parts and per column from system.columns, beside the table before 0900;
// every copy must read back the very rows of that one. A measurement for schema/STORAGE.md, so a
// benchmark (measures once per call): STORAGE_LEVERS, a regexp of lever names, picks some
// (default all).
func BenchmarkStorageLevers(b *testing.B) {
	re := os.Getenv("STORAGE_LEVERS")
	if re == "" {
		re = "."
	}
	priceLevers(b, re)
}

func priceLevers(t testing.TB, re string) {
	ch := migrated(t)
	ctx := testCtx(t)
	_, _, copies := loadMixBase(t, ch)
	levers := slices.DeleteFunc(slices.Clone(storageLevers), func(l lever) bool {
		return l.name != "before-0900" && !regexp.MustCompile(re).MatchString(l.name)
	})
	sizes := map[string]map[string]columnSize{}
	var out strings.Builder
	fmt.Fprintf(&out, "| lever | B/packet (system.parts) | columns that moved (B/packet, before 0900 -> lever) |\n|---|---:|---|\n")
	for i, l := range levers {
		table := "lever_" + strings.NewReplacer("-", "_", ".", "_").Replace(l.name)
		if err := ch.Exec(ctx, "CREATE TABLE "+table+" AS packets"); err != nil {
			t.Fatal(err)
		}
		alterTable(t, ch, table, l.alters)
		if err := ch.Exec(ctx, fmt.Sprintf(replicate, table, "base", copies)); err != nil {
			t.Fatal(err)
		}
		rows, disk, cols := mergedSize(t, ch, table)
		sizes[l.name] = map[string]columnSize{}
		for _, c := range cols {
			sizes[l.name][c.name] = c
		}
		var moved []string
		if i > 0 {
			if d := sameTableRows(t, ch, "lever_before_0900", table); d != "" {
				t.Errorf("%s does not store what the table before 0900 stores: %s", l.name, d)
			}
			for _, c := range cols {
				old := sizes["before-0900"][c.name]
				if diff := int64(c.compressed) - int64(old.compressed); diff*1000 > int64(rows) || -diff*1000 > int64(rows) {
					moved = append(moved, fmt.Sprintf("%s %.3f -> %.3f", c.name, float64(old.compressed)/float64(rows), float64(c.compressed)/float64(rows)))
				}
			}
		}
		fmt.Fprintf(&out, "| %s | %.3f | %s |\n", l.name, float64(disk)/float64(rows), strings.Join(moved, ", "))
		t.Logf("%s: %d rows, %.3f B/packet", l.name, rows, float64(disk)/float64(rows))
	}
	t.Log("\n" + out.String())
	// How much the mix repeats its names, which is what LowCardinality lives on.
	r, err := ch.Query(ctx, "SELECT uniqExact(tls_sni), countIf(tls_sni != ''), uniqExact(tls_ja4), countIf(tls_ja4 != ''), "+
		"uniqExact(dns_qname), countIf(dns_qname != ''), count() FROM lever_before_0900")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("distinct / non-empty / rows: tls_sni, tls_ja4, dns_qname: %s", r[0])
	dnsFlood(t, ch)
}

// dnsFlood is LowCardinality's worst case: 200,000 DNS queries for random names under one
// domain (a random-subdomain flood), every name distinct, in packets before and after 0900.
func dnsFlood(t testing.TB, ch CH) {
	ctx := testCtx(t)
	for _, table := range []string{"dns_flood_before_0900", "dns_flood_0900"} {
		if err := ch.Exec(ctx, "CREATE TABLE "+table+" AS packets"); err != nil {
			t.Fatal(err)
		}
		if table == "dns_flood_before_0900" {
			alterTable(t, ch, table, before0900)
		}
		if err := ch.Exec(ctx, "INSERT INTO "+table+` (ts, host, iface, collector_id, seq, ifindex, pkt_len, eth_type,
    ip_version, src_addr, dst_addr, ip_proto, ttl, ip_len, src_port, dst_port, payload_len, dns_id, dns_qname, dns_qtype, sample_rate)
SELECT toDateTime64(1764000000, 9) + toIntervalNanosecond(number * 5000), 'edge-0', 'eth0', 42, number, 2, 90, 0x0800,
    4, toIPv6(IPv4NumToString(toUInt32(rand32(1)))), toIPv6('198.51.100.53'), 17, 64, 76, 1024 + rand(2) % 64000, 53, 48,
    rand(3) % 65536, concat(lower(hex(rand64(4))), '.victim.example'), 1, 1
FROM numbers(200000)`); err != nil {
			t.Fatal(err)
		}
		rows, disk, cols := mergedSize(t, ch, table)
		for _, c := range cols {
			if c.name == "dns_qname" {
				t.Logf("%s: %.3f B/packet, dns_qname %.3f B/packet (%s)", table, float64(disk)/float64(rows), float64(c.compressed)/float64(rows), c.codec)
			}
		}
	}
}

// sameTableRows says how two tables of packets' columns differ ("" if they hold the same rows): row
// counts, and rows of one missing from the other, compared as values whatever the column types.
func sameTableRows(t testing.TB, ch CH, a, b string) string {
	ctx := testCtx(t)
	for _, q := range []string{
		"SELECT (SELECT count() FROM %[1]s) - (SELECT count() FROM %[2]s)",
		"SELECT count() FROM (SELECT * FROM %[1]s EXCEPT ALL SELECT * FROM %[2]s)",
		"SELECT count() FROM (SELECT * FROM %[2]s EXCEPT ALL SELECT * FROM %[1]s)",
	} {
		r, err := ch.Query(ctx, fmt.Sprintf(q, a, b))
		if err != nil {
			t.Fatal(err)
		}
		if r[0] != "0" {
			return fmt.Sprintf("%s: %s", fmt.Sprintf(q, a, b), r[0])
		}
	}
	return ""
}

// alterTable runs each of alters ("MODIFY COLUMN ...", "MODIFY SETTING ...") on table, in order.
func alterTable(t testing.TB, ch CH, table string, alters []string) {
	for _, a := range alters {
		if err := ch.Exec(testCtx(t), "ALTER TABLE "+table+" "+a); err != nil {
			t.Fatalf("%s: %s: %v", table, a, err)
		}
	}
}

// mergedSize merges table into one part (OPTIMIZE FINAL) and measures it (tableSize).
func mergedSize(t testing.TB, ch CH, table string) (rows, disk uint64, cols []columnSize) {
	if err := ch.Exec(testCtx(t), "OPTIMIZE TABLE "+table+" FINAL"); err != nil {
		t.Fatal(err)
	}
	rows, disk, cols, err := tableSize(testCtx(t), ch, table)
	if err != nil {
		t.Fatal(err)
	}
	return rows, disk, cols
}
