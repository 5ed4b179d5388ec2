package bench

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// variant is one way of writing the same rows, priced by BenchmarkRollupPrices.
type variant struct {
	name     string
	keep     func(view string) bool // which views stay
	settings string                 // extra INSERT settings
	block    int                    // rows per insert block (default 100k, the ingester's FlushRows)
	from     string                 // source table (default src)
	setup    func(db string)        // before timing: bench-only tables and views (wider rollups)
	// own, if set, runs after the INSERT into packets inside the timed window: the
	// ingester's own rollup inserts (ingagg_prices_test.go). It returns this process's CPU
	// for aggregating and encoding, and for everything (the HTTP requests too).
	own   func(db string) (agg, all float64)
	check []rollupCheck // rollups compared with the aggregate over packets in round 0
}

// BenchmarkRollupPrices prices each lever of issue #18 on the ClickHouse side alone: the same
// packets (the synthetic mix of BenchmarkIngestVsKafkaEngine), already in an ENGINE = Memory
// table, copied into a fresh migrated database with INSERT ... SELECT in 100k-row blocks, one
// thread (ch-floor's settings), under each variant: no views (the floor), every view, each view
// family alone (minute and hour views), and insert settings. The cost is ClickHouse's CPU (/proc) over the INSERT, so a
// variant's price is its CPU over the floor's in the same round. Variants run interleaved,
// round after round (env BENCH_PRICE_ROUNDS, default 3; rows BENCH_PRICE_ROWS, default 1M);
// the medians are reported as <variant>-cpu-s and <variant>/floor. The variants of issue #18's
// untried levers (the ingester's own aggregation, fewer and wider views) are in
// ingagg_prices_test.go; those report this process's CPU too. BENCH_PRICE_VARIANTS (a regexp)
// selects variants, e.g. "^floor$|^all-views$|ingagg|wide|lean".

func BenchmarkRollupPrices(b *testing.B) {
	n, rounds := envInt("BENCH_PRICE_ROWS", 1_000_000), envInt("BENCH_PRICE_ROUNDS", 3)
	_, _, pkts := frames(n, 1000, 4, time.Now().Add(-time.Hour).UnixNano())
	stamp := time.Now().UnixNano()
	src := fmt.Sprintf("price_src_%d.packets", stamp)
	fillMemoryTable(b, src, pkts)
	conn := env.CH(b)
	b.Cleanup(func() { chExec(b, conn, fmt.Sprintf("DROP DATABASE price_src_%d SYNC", stamp)) })

	// The same rows sorted by packets' ORDER BY: what a mover that pre-sorts its batch sends.
	sorted := fmt.Sprintf("price_src_%d.sorted", stamp)
	chExec(b, conn, fmt.Sprintf("CREATE TABLE %s AS %s ENGINE = Memory", sorted, src))
	chExec(b, conn, fmt.Sprintf("INSERT INTO %s SELECT * FROM %s ORDER BY toStartOfHour(ts), dst_addr, src_addr, ts SETTINGS max_block_size = 100000, min_insert_block_size_rows = 100000", sorted, src))

	all := func(string) bool { return true }
	none := func(string) bool { return false }
	vs := []variant{{name: "floor", keep: none}, {name: "all-views", keep: all},
		{name: "all-views-no-optimize-on-insert", keep: all, settings: "optimize_on_insert = 0"},
		{name: "floor-500k-blocks", keep: none, block: 500_000}, {name: "all-views-500k-blocks", keep: all, block: 500_000},
		{name: "floor-presorted", keep: none, from: sorted}, {name: "all-views-presorted", keep: all, from: sorted},
		// The floor's INSERT with a deduplication token. What these variants price is not the
		// deduplication but squashing: this one statement carries 10 blocks, and without
		// deduplication in the views ClickHouse squashes the views' output of all of them into
		// one part per view table; with it (the default, what a token asks for) each source
		// block keeps its own part in every view table (BenchmarkViewDedup: 140 parts, 3639
		// files against 32 and 1065). The ingester makes one INSERT of one block per batch, so
		// it pays one part per view table per batch either way, and with one block per statement
		// the token costs nothing measurable (BENCHMARKS.md, vdedup).
		{name: "floor-dedup-token", keep: none, settings: "insert_deduplication_token = 'bench'"},
		{name: "all-views-dedup-token", keep: all, settings: "insert_deduplication_token = 'bench'"},
		{name: "all-views-dedup-token-not-in-views", keep: all, settings: "insert_deduplication_token = 'bench', deduplicate_blocks_in_dependent_materialized_views = 0"}}
	// A family is a rollup's minute and hour views (the hour view reads the minute table).
	for _, fam := range []string{"flows", "talkers", "traffic", "dns_names", "tls_sni", "http_hosts", "detect_dst_1s", "detect_recent"} {
		vs = append(vs, variant{name: "only-" + fam, keep: func(x string) bool { return strings.HasPrefix(x, fam+"_") }})
	}
	vs = append(vs, issue18Variants(b, pkts)...)
	vs = append(vs, storageVariants(b, conn)...)
	vs = append(vs, viewPriceVariants(b)...)
	if re := os.Getenv("BENCH_PRICE_VARIANTS"); re != "" { // a subset, e.g. "^floor$|^all-views"
		vs = slices.DeleteFunc(vs, func(v variant) bool { return !regexp.MustCompile(re).MatchString(v.name) })
	}
	cpu, goAgg, goAll := map[string][]float64{}, map[string][]float64{}, map[string][]float64{}
	// ClickHouse's user CPU apart: its system CPU for the same insert grew run after run in one
	// process (measured 2026-12-07: floor 0.26, 0.64, 1.17 s of system time, user steady at
	// 0.43-0.45), which biases the variants run late in a round; user time does not drift.
	user := map[string][]float64{}
	chPid := strconv.Itoa(env.ClickHouse.Pid())
	for range b.N {
		for r := range rounds {
			for k := range vs {
				// Each round starts one variant later, so none always runs first or last.
				v := vs[(k+r)%len(vs)]
				db := migrated(b, conn, true)
				for _, name := range viewNames(b, db) {
					if !v.keep(name) {
						chExec(b, conn, "DROP VIEW "+db+"."+name+" SYNC")
					}
				}
				if v.setup != nil {
					v.setup(db)
				}
				// Merges of the parts would run during one variant or the next at random (measured:
				// 0.5 to 2.5 CPU-s for the same floor): stopped on every table, so each price is
				// the INSERT's own work. (SYSTEM STOP MERGES without a table does not reach
				// tables created after it.)
				for _, t := range mergeTreeTables(b, db) {
					chExec(b, conn, "SYSTEM STOP MERGES "+db+"."+t)
				}
				block, from := cmp.Or(v.block, 100_000), cmp.Or(v.from, src)
				set := fmt.Sprintf("max_threads = 1, max_insert_threads = 1, max_block_size = %d, min_insert_block_size_rows = %d", block, block)
				if v.block > 0 { // also squash the 100k-row blocks the Memory table holds
					set += fmt.Sprintf(", min_insert_block_size_bytes = %d", 1<<32)
				}
				if v.settings != "" {
					set += ", " + v.settings
				}
				c0 := snapCPU(b)
				u0, _ := userSys(b, chPid)
				chExec(b, conn, fmt.Sprintf("INSERT INTO %s.packets SELECT * FROM %s SETTINGS %s", db, from, set))
				var ga, gall float64
				if v.own != nil {
					ga, gall = v.own(db)
				}
				c := snapCPU(b).sub(c0).ch
				u1, _ := userSys(b, chPid)
				if got := count(b, conn, "SELECT count() FROM "+db+".packets"); got != uint64(n) {
					b.Fatalf("%s: %d rows, want %d", v.name, got, n)
				}
				if r == 0 {
					b.Logf("%s: packets parts by type: %s", v.name, strings.Join(queryStrings(b, "SELECT part_type || ' ' || toString(count()) FROM system.parts WHERE database = '"+db+"' AND table = 'packets' AND active GROUP BY part_type"), ", "))
					if ps := queryStrings(b, "SELECT path FROM system.parts WHERE database = '"+db+"' AND table = 'flows_1m' AND active LIMIT 1"); len(ps) == 1 {
						files, _ := os.ReadDir(ps[0])
						b.Logf("%s: a part of flows_1m has %d files", v.name, len(files))
					}
				}
				if r == 0 && v.check != nil { // a price for a wrong rollup is worthless
					rows := checkRollups(b, db, v.check)
					b.Logf("%s: %d rollup tables equal the aggregate over packets (rows: %v)", v.name, len(rows), rows)
				}
				cpu[v.name], user[v.name] = append(cpu[v.name], c), append(user[v.name], u1-u0)
				goAgg[v.name], goAll[v.name] = append(goAgg[v.name], ga), append(goAll[v.name], gall)
				chExec(b, conn, "DROP DATABASE "+db+" SYNC")
				b.Logf("round %d %-40s clickhouse %5.2f cpu-s (user %5.2f)  go: aggregate+encode %5.2f, all %5.2f cpu-s", r, v.name, c, u1-u0, ga, gall)
			}
		}
	}
	floor, floorUser := median(cpu["floor"]), median(user["floor"])
	for _, v := range vs {
		m, mu := median(cpu[v.name]), median(user[v.name])
		b.ReportMetric(m, v.name+"-cpu-s")
		b.ReportMetric(m/floor, v.name+"/floor")
		b.ReportMetric(mu, v.name+"-user-s")
		b.ReportMetric(mu/floorUser, v.name+"/floor-user")
		b.Logf("%-40s user median %5.2f s  %5.2f x floor's user", v.name, mu, mu/floorUser)
		b.Logf("%-40s median %5.2f cpu-s  %5.2f x floor  (+%5.2f cpu-s per million rows)", v.name, m, m/floor, (m-floor)*1e6/float64(n))
		if v.own != nil { // the ingester's own work counts against it: ClickHouse + Go over the floor
			ga, gall := median(goAgg[v.name]), median(goAll[v.name])
			b.ReportMetric(ga*1e6/float64(n), v.name+"-go-agg-cpu-s/Mrows")
			b.ReportMetric(gall*1e6/float64(n), v.name+"-go-all-cpu-s/Mrows")
			b.ReportMetric((m+gall)/floor, v.name+"+go/floor")
			b.ReportMetric((mu+gall)/floorUser, v.name+"+go/floor-user")
			b.Logf("%-40s go: aggregate+encode %5.3f, with the requests %5.3f cpu-s per million rows; clickhouse+go %5.2f x floor",
				v.name, ga*1e6/float64(n), gall*1e6/float64(n), (m+gall)/floor)
		}
	}
}

func viewNames(tb testing.TB, db string) []string {
	rows, err := env.CH(tb).Query(context.Background(), "SELECT name FROM system.tables WHERE database = ? AND engine = 'MaterializedView' ORDER BY name", db)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			tb.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func mergeTreeTables(tb testing.TB, db string) []string {
	return queryStrings(tb, "SELECT name FROM system.tables WHERE database = ? AND engine LIKE '%MergeTree'", db)
}

// queryStrings runs a query of one String column and returns its rows.
func queryStrings(tb testing.TB, q string, args ...any) []string {
	rows, err := env.CH(tb).Query(context.Background(), q, args...)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			tb.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
