package query

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/packetlake/packetlake/internal/chconn"
	"github.com/packetlake/packetlake/schema"
)

// BenchmarkTCPHealthReports is what the TCP health reports cost: $PACKETLAKE_TCP_HEALTH_BENCH_ROWS
// TCP segments (default 1 M) in flows of 500 segments over one hour, one in 50 sent again
// (late), the per-service report (tcp_health), the per-flow report (tcp_health_flows) and, as
// the yardstick, top_conversations (one GROUP BY over the same rows), each over the whole hour,
// interleaved in every iteration so that merges and other load weigh on all alike. Reports
// each one's p50 in ms and its ratio to the yardstick's.
func BenchmarkTCPHealthReports(b *testing.B) {
	rows := 1_000_000
	if s := os.Getenv("PACKETLAKE_TCP_HEALTH_BENCH_ROWS"); s != "" {
		var err error
		if rows, err = strconv.Atoi(s); err != nil {
			b.Fatalf("PACKETLAKE_TCP_HEALTH_BENCH_ROWS=%q: %v", s, err)
		}
	}
	db := env.Database(b)
	ctx := context.Background()
	if err := schema.Migrate(ctx, env.CH(b), db); err != nil {
		b.Fatal(err)
	}
	q, err := chconn.Config{HTTPAddr: env.ClickHouse.HTTPAddr(), Database: db}.Client(chconn.Timeout(10 * time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	start := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	// Segment i of flow f: 1448 bytes each, the 50th of every 50 repeating the one before.
	sql := fmt.Sprintf(`INSERT INTO packets (ts, host, iface, seq, ip_version, src_addr, dst_addr, ip_proto, src_port, dst_port, tcp_flags, tcp_seq, tcp_ack, tcp_window, payload_len, pkt_len, sample_rate)
SELECT toDateTime64('%s', 9) + toIntervalNanosecond(intDiv(number * %d, %d)) AS ts,
  'web-1', 'eth0', number, 4,
  toIPv6(IPv4NumToString(toUInt32(167772160 + f %% 5000))),
  toIPv6(IPv4NumToString(toUInt32(167837696 + f %% 16))),
  6, toUInt16(10000 + f %% 50000), [443, 80, 8080][1 + f %% 3],
  if(i = 0, 2, 16),
  toUInt32((cityHash64(f) + 1448 * if(i %% 50 = 49, i - 1, i)) %% 4294967296),
  toUInt32(cityHash64(f, 1) %% 4294967296), 512, if(i = 0, 0, 1448), 1514, 1
FROM (SELECT number, intDiv(number, 500) AS f, number %% 500 AS i FROM numbers(%d))`,
		start.Format(time.DateTime), int64(time.Hour), rows, rows)
	t0 := time.Now()
	if rc, err := q.Query(ctx, sql, nil, map[string]string{"max_partitions_per_insert_block": "0"}); err != nil {
		b.Fatal(err)
	} else {
		rc.Close()
	}
	b.Logf("%d segments inserted in %v", rows, time.Since(t0).Round(time.Second))
	names := []string{"top_conversations", "tcp_health", "tcp_health_flows"}
	params := map[string]string{
		"since": start.Format("2006-01-02 15:04:05"), "until": start.Add(time.Hour).Format("2006-01-02 15:04:05"),
		"limit": "100",
	}
	call := func(name string) time.Duration {
		r, err := ReportByName(name)
		if err != nil {
			b.Fatal(err)
		}
		t := time.Now()
		rc, err := q.Query(ctx, r.SQL, params, map[string]string{"default_format": "TSV"})
		if err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil || n == 0 {
			b.Fatalf("%s: %d bytes, %v", name, n, err)
		}
		return time.Since(t)
	}
	for _, n := range names { // untimed: caches
		call(n)
	}
	lat := make([][]time.Duration, len(names))
	b.ResetTimer()
	for b.Loop() {
		for i, n := range names {
			lat[i] = append(lat[i], call(n))
		}
	}
	p50 := func(l []time.Duration) float64 {
		slices.Sort(l)
		return float64(l[len(l)/2]) / float64(time.Millisecond)
	}
	base := p50(lat[0])
	b.ReportMetric(base, "top_conversations_p50_ms")
	for i, n := range names[1:] {
		v := p50(lat[i+1])
		b.ReportMetric(v, n+"_p50_ms")
		b.ReportMetric(v/base, n+"_vs_top_conversations")
	}
	b.ReportMetric(float64(rows), "rows")
}
