package enrich

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/packetlake/packetlake/query"
)

// plainTopTalkers is top_talkers as it was before enrichment: the baseline of the comparison.
const plainTopTalkers = `SELECT
    if(src_addr BETWEEN toIPv6('::ffff:0.0.0.0') AND toIPv6('::ffff:255.255.255.255'), IPv4NumToString(toIPv4(src_addr)), IPv6NumToString(src_addr)) AS source,
    sum(sample_rate) AS packets,
    sum(pkt_len * sample_rate) AS bytes,
    uniqExactIf(dst_port, ip_proto IN (6, 17)) AS dst_ports
FROM packets
WHERE ts >= {since:DateTime64(9)} AND ts < {until:DateTime64(9)}
GROUP BY src_addr
ORDER BY bytes DESC
LIMIT {limit:UInt32}`

// BenchmarkEnrichment measures what enrichment costs where it is paid, on N packets from S
// sources (ENRICH_BENCH_ROWS, default 2 M; sources N/20): the query time of top_talkers with its
// four dictGet columns against the same report without them (interleaved A/B, medians), one
// passive DNS cycle over the N rows, and the load of a GeoIP database of 65,536 networks.
// Ingest itself is unchanged: the packets table gains one String column, empty except in DNS
// responses.
func BenchmarkEnrichment(b *testing.B) {
	rows := 2_000_000
	if s := os.Getenv("ENRICH_BENCH_ROWS"); s != "" {
		fmt.Sscan(s, &rows)
	}
	db, ch := migrated(b)
	ctx := testCtx(b)
	// Sources spread over 10.0.0.0/8 (one in 20 rows shares a source); every 100th row a DNS
	// response naming its source, every 50th a ClientHello to it with an SNI.
	for off := 0; off < rows; off += 500_000 { // in parts: the client has a timeout, the rollup views are slow
		if err := ch.Exec(ctx, fmt.Sprintf(`INSERT INTO packets (ts, host, collector_id, seq, ip_version, src_addr, dst_addr, ip_proto,
		src_port, dst_port, pkt_len, sample_rate, dns_is_response, dns_qname, dns_answers, dns_answer_addrs, tls_sni)
		SELECT toDateTime64('2026-12-07 00:00:00', 9, 'UTC') + toIntervalMillisecond(number), 'bench', 1, number, 4,
		       toIPv6(IPv4NumToString(toUInt32(167772160 + (number %% %[2]d) * 37))), toIPv6('::ffff:192.0.2.1'), 6,
		       40000 + number %% 1000, 443, 60 + number %% 1400, 1,
		       number %% 100 = 0, if(number %% 100 = 0, concat('h', toString(number %% %[2]d), '.example'), ''), number %% 100 = 0,
		       if(number %% 100 = 0, IPv4NumToString(toUInt32(167772160 + (number %% %[2]d) * 37)), ''),
		       if(number %% 50 = 25, concat('s', toString(number %% 977), '.example'), '')
		FROM numbers(%[3]d, %[1]d)`, min(500_000, rows-off), rows/20, off)); err != nil {
			b.Fatal(err)
		}
	}

	// A GeoIP database of 65,536 /24 networks in 10.0.0.0/8, each its own country/AS record.
	dir := b.TempDir()
	var nets []geoNet
	for i := range 65536 {
		nets = append(nets, geoNet{prefix: fmt.Sprintf("10.%d.%d.0/24", i/256, i%256), cc: fmt.Sprintf("C%d", i%250),
			country: fmt.Sprintf("Country %d", i%250), asn: uint32(64512 + i%1000), org: fmt.Sprintf("Org %d", i%1000)})
	}
	writeMMDB(b, filepath.Join(dir, "bench-Country.mmdb"), "GeoLite2-Country", nets)
	writeMMDB(b, filepath.Join(dir, "bench-ASN.mmdb"), "GeoLite2-ASN", nets)
	cfg := DefaultConfig()
	cfg.ClickHouse = env.CHConfig(db)
	cfg.GeoIPDir = dir
	cfg.PassiveDNSInterval = time.Hour
	cfg.PassiveDNSBackfill = 0
	e, err := New(cfg, Dependencies{})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := e.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer e.Stop()
	for testutil.ToFloat64(e.m.pdnsCycles)+testutil.ToFloat64(e.m.pdnsErrors) < 1 {
		time.Sleep(10 * time.Millisecond) // the first cycle runs at Start, in the background
	}
	startAndCycle := time.Since(start)
	if testutil.ToFloat64(e.m.pdnsErrors) > 0 {
		b.Fatal("passive dns cycle failed")
	}
	// One more cycle on its own, timed alone: the same window again (what a restart re-reads).
	e.pdns.from = time.Unix(0, 0)
	c0 := time.Now()
	if err := e.passiveDNSCycle(ctx); err != nil {
		b.Fatal(err)
	}
	cycle := time.Since(c0)

	rep, err := query.ReportByName("top_talkers")
	if err != nil {
		b.Fatal(err)
	}
	qcfg := query.Config{ClickHouse: env.CHConfig(db)}
	params := query.Params{Since: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC), Limit: 1_000_000}
	timeIt := func(sql string, limit int) time.Duration {
		var out strings.Builder
		p := params
		p.Limit = limit
		t0 := time.Now()
		if err := query.RunSQL(ctx, qcfg, sql, p, "Null", &out); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	timeIt(plainTopTalkers, 20) // warm the caches of both
	timeIt(rep.SQL, 20)
	// Interleaved A/B at two limits: every source (the dictionaries looked up for all) and the
	// command's default 20 (looked up for the 20 kept).
	var plainAll, enrichedAll, plain20, enriched20 []time.Duration
	b.ResetTimer()
	for range max(b.N, 9) {
		plainAll = append(plainAll, timeIt(plainTopTalkers, 1_000_000))
		enrichedAll = append(enrichedAll, timeIt(rep.SQL, 1_000_000))
		plain20 = append(plain20, timeIt(plainTopTalkers, 20))
		enriched20 = append(enriched20, timeIt(rep.SQL, 20))
	}
	b.StopTimer()
	med := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2].Microseconds()) / 1000
	}
	b.ReportMetric(med(plainAll), "plain_all_ms")
	b.ReportMetric(med(enrichedAll), "enriched_all_ms")
	b.ReportMetric(med(enrichedAll)/med(plainAll), "enriched/plain_all")
	b.ReportMetric(med(plain20), "plain_top20_ms")
	b.ReportMetric(med(enriched20), "enriched_top20_ms")
	b.ReportMetric(med(enriched20)/med(plain20), "enriched/plain_top20")
	n, _ := ch.Uint(ctx, "SELECT count() FROM passive_dns")
	colBytes, _ := ch.Uint(ctx, "SELECT data_compressed_bytes FROM system.columns WHERE database = currentDatabase() AND table = 'packets' AND name = 'dns_answer_addrs'")
	b.ReportMetric(float64(colBytes)/float64(rows), "dns_answer_addrs_B/row")
	b.ReportMetric(float64(rows), "rows")
	b.ReportMetric(float64(rows/20), "sources")
	b.ReportMetric(float64(cycle.Milliseconds()), "pdns_cycle_ms")
	b.ReportMetric(float64(rows)/cycle.Seconds(), "pdns_rows/s")
	b.ReportMetric(float64(n), "pdns_rows")
	b.ReportMetric(float64(startAndCycle.Milliseconds()), "start_geoip2x65536+cycle_ms")
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Logf("load average: %s", strings.TrimSpace(string(load)))
	}
}
