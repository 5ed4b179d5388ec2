package console

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/packetlake/packetlake/internal/chconn"
	"github.com/packetlake/packetlake/schema"
)

// BenchmarkTrafficQuery is the traffic view's query for 24 hours grouped by one dimension
// (destination port), answered from the minute rollup (the table the chooser picks) and from
// the raw packets (raw=1), on $PACKETLAKE_CONSOLE_BENCH_ROWS packets (default 10 M) spread
// evenly over the 24 hours. Each iteration makes one API call of each, interleaved, end to end
// (ClickHouse and the console's own work); p50 and p95 of each are reported in ms. Goal (issue 16): p95 ≤ 500 ms when a
// rollup answers.
func BenchmarkTrafficQuery(b *testing.B) {
	rows := 10_000_000
	if s := os.Getenv("PACKETLAKE_CONSOLE_BENCH_ROWS"); s != "" {
		var err error
		if rows, err = strconv.Atoi(s); err != nil {
			b.Fatalf("PACKETLAKE_CONSOLE_BENCH_ROWS=%q: %v", s, err)
		}
	}
	db := env.Database(b)
	ctx := context.Background()
	if err := schema.Migrate(ctx, env.CH(b), db); err != nil {
		b.Fatal(err)
	}
	q, err := chconn.Config{HTTPAddr: env.ClickHouse.HTTPAddr(), Database: db}.Client()
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	start := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	t0 := time.Now()
	// A mix like a busy server's: 5000 clients, 8 services, 3 hosts, sampling on a quarter.
	// Inserted in blocks so that the materialized views see insert-sized blocks.
	const block = 1_000_000
	for off := 0; off < rows; off += block {
		n := min(block, rows-off)
		sql := fmt.Sprintf(`INSERT INTO packets (ts, host, iface, seq, ip_version, src_addr, dst_addr, ip_proto, src_port, dst_port, tcp_flags, pkt_len, sample_rate, ttl)
SELECT toDateTime64('%s', 9) + toIntervalNanosecond(intDiv(number * %d, %d)) AS ts,
  ['web-1','web-2','dns-1'][1 + number %% 3], 'eth0', number, 4,
  toIPv6(IPv4NumToString(toUInt32(167772160 + cityHash64(number) %% 5000))),
  toIPv6(IPv4NumToString(toUInt32(167837696 + number %% 16))),
  [6,6,6,17,17,1][1 + cityHash64(number, 1) %% 6] AS p,
  toUInt16(32768 + cityHash64(number, 2) %% 28000),
  if(p = 6, [443,443,80,22,8080][1 + cityHash64(number, 3) %% 5], if(p = 17, [53,53,123][1 + cityHash64(number, 3) %% 3], 0)),
  if(p = 6, 16, 0), 60 + cityHash64(number, 5) %% 1400, [1,1,1,4][1 + number %% 4], 64
FROM numbers(%d, %d)`, start.Format(time.DateTime), int64(24*time.Hour), rows, off, n)
		rc, err := q.Query(ctx, sql, nil, map[string]string{"max_insert_block_size": "1048576", "max_partitions_per_insert_block": "0"})
		if err != nil {
			b.Fatal(err)
		}
		rc.Close()
	}
	b.Logf("%d packets inserted (with the rollups' views) in %v", rows, time.Since(t0).Round(time.Second))
	srv := New(Config{Querier: q, Now: func() time.Time { return start.Add(24 * time.Hour) }})
	v := url.Values{"from": {"now-24h"}, "to": {"now"}, "dims": {"dst_port"}}
	variants := []struct{ name, raw, table string }{{"rollup", "0", "traffic_1m"}, {"raw", "1", "packets"}}
	call := func(i int) time.Duration {
		c := variants[i]
		t := time.Now()
		r, err := srv.traffic(ctx, with(v, "raw", c.raw))
		if err != nil {
			b.Fatal(err)
		}
		d := time.Since(t)
		if r.Table != c.table {
			b.Fatalf("answered from %s, want %s", r.Table, c.table)
		}
		var total uint64
		for _, row := range r.Rows {
			total += row.Total
		}
		if total < uint64(rows) {
			b.Fatalf("%d packets counted, want at least the %d rows", total, rows)
		}
		return d
	}
	// One untimed call each (caches), then the two interleaved, so that background merges
	// and other load weigh on both alike.
	call(0)
	call(1)
	lat := make([][]time.Duration, len(variants))
	b.ResetTimer()
	for b.Loop() {
		for i := range variants {
			lat[i] = append(lat[i], call(i))
		}
	}
	for i, c := range variants {
		l := lat[i]
		slices.Sort(l)
		pct := func(p float64) float64 {
			return float64(l[min(len(l)-1, int(p*float64(len(l))))]) / float64(time.Millisecond)
		}
		b.ReportMetric(pct(0.50), c.name+"_p50_ms")
		b.ReportMetric(pct(0.95), c.name+"_p95_ms")
	}
	b.ReportMetric(float64(rows), "rows")
}
