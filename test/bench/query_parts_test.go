package bench

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

// BenchmarkQueryYoungParts prices what migration 0901 costs the queries that read the newest
// rows: until merges take them past 150k rows, packets' parts are Compact (every column of a
// granule in one file) where they were Wide. The same 1M rows as ten 100k-row parts (merges
// stopped), Compact with 0901 and Wide without it; each query runs BENCH_QUERY_REPEAT times
// (default 20) per table, the tables alternating, and ClickHouse's CPU and the wall time per
// query are reported.
func BenchmarkQueryYoungParts(b *testing.B) {
	n, repeat := envInt("BENCH_PRICE_ROWS", 1_000_000), envInt("BENCH_QUERY_REPEAT", 20)
	src := memorySource(b, "query", n)
	conn := env.CH(b)
	chPid := strconv.Itoa(env.ClickHouse.Pid())
	dbs := map[string]string{}
	for _, v := range []struct {
		name string
		undo []string
	}{{"compact", nil}, {"wide", undo0901}} {
		db := migrated(b, conn, false)
		b.Cleanup(func() { chExec(b, conn, "DROP DATABASE "+db+" SYNC") })
		alterPackets(b, conn, db, v.undo)
		chExec(b, conn, "SYSTEM STOP MERGES "+db+".packets")
		copyFrom(b, src)(db)
		b.Logf("%s: packets parts %v", v.name, queryStrings(b, "SELECT part_type || ' ' || toString(count()) FROM system.parts WHERE database = '"+db+"' AND table = 'packets' AND active GROUP BY part_type"))
		dbs[v.name] = db
	}
	// A console query over few columns (top talkers), one over one column with a filter, and
	// one over many (the raw rows of a conversation, as a drill-down reads them).
	queries := map[string]string{
		"top-talkers": "SELECT src_addr, sum(pkt_len) AS b FROM %s.packets GROUP BY src_addr ORDER BY b DESC LIMIT 10",
		"dns-count":   "SELECT count() FROM %s.packets WHERE dst_port = 53",
		"raw-rows":    "SELECT * FROM %s.packets WHERE src_port = 443 ORDER BY ts LIMIT 1000 FORMAT Null",
	}
	for range b.N {
		for qn, q := range queries {
			cpu, wall := map[string]float64{}, map[string]float64{}
			for range repeat {
				for _, name := range []string{"compact", "wide"} {
					u0, s0 := userSys(b, chPid)
					t0 := time.Now()
					chExec(b, conn, fmt.Sprintf(q, dbs[name]))
					wall[name] += time.Since(t0).Seconds()
					u1, s1 := userSys(b, chPid)
					cpu[name] += u1 - u0 + s1 - s0
				}
			}
			b.Logf("%-11s per query: compact %.1f ms CPU, %.1f ms wall; wide %.1f ms CPU, %.1f ms wall", qn,
				cpu["compact"]/float64(repeat)*1e3, wall["compact"]/float64(repeat)*1e3, cpu["wide"]/float64(repeat)*1e3, wall["wide"]/float64(repeat)*1e3)
			b.ReportMetric(cpu["compact"]/cpu["wide"], qn+"-compact/wide-cpu")
			b.ReportMetric(wall["compact"]/wall["wide"], qn+"-compact/wide-wall")
		}
	}
}
