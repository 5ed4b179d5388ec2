package bench

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkInsertFixedCost prices what one INSERT costs ClickHouse whatever its size, with every
// view the product ships (issue #18, batch branch): many small INSERTs of the bench mix, each
// one statement of one block with a deduplication token as the ingester sends (INSERT ...
// SELECT from a Memory table of exactly that many rows, as BenchmarkViewDedup's
// per-block-select: no HTTP body to parse), into a fresh migrated database with merges
// stopped, under three modes:
//
//   - floor: no views (packets alone);
//   - views: every view;
//   - views-to-null: every view's query over every block, writing into ENGINE = Null copies
//     of its table (prices_views_test.go): the queries without their parts.
//
// Per mode and size it reports ClickHouse's CPU (user+system) per INSERT in ms, medians over
// BENCH_PRICE_ROUNDS rounds (default 3, modes and sizes interleaved): views minus floor is
// what the views add to one INSERT, views-to-null minus floor their queries, views minus
// views-to-null their parts. Sizes BENCH_FIXED_SIZES (default "1,1000,10000"), INSERTs per
// run BENCH_FIXED_INSERTS (default 200).
func BenchmarkInsertFixedCost(b *testing.B) {
	inserts, rounds := envInt("BENCH_FIXED_INSERTS", 200), envInt("BENCH_PRICE_ROUNDS", 3)
	sizes := envInts(b, "BENCH_FIXED_SIZES", []int{1, 1000, 10000})
	conn := env.CH(b)
	src := memorySource(b, "fixed", slices.Max(sizes))
	srcDB, _, _ := strings.Cut(src, ".")
	for _, n := range sizes { // one source per size: every INSERT copies the whole table, no OFFSET to skip
		chExec(b, conn, fmt.Sprintf("CREATE TABLE %s.rows_%d AS %s ENGINE = Memory", srcDB, n, src))
		chExec(b, conn, fmt.Sprintf("INSERT INTO %s.rows_%d SELECT * FROM %s LIMIT %d", srcDB, n, src, n))
	}
	type mode struct {
		name  string
		setup func(db string)
	}
	modes := []mode{{"floor", nil}, {"views", nil}, {"views-to-null", toNullViews(b)}}
	if re := os.Getenv("BENCH_FIXED_MODES"); re != "" {
		modes = slices.DeleteFunc(modes, func(m mode) bool { return !regexp.MustCompile(re).MatchString(m.name) })
	}
	type run struct {
		m mode
		n int
	}
	var runs []run
	for _, n := range sizes {
		for _, m := range modes {
			runs = append(runs, run{m, n})
		}
	}
	ms := map[string][]float64{}
	chPid := strconv.Itoa(env.ClickHouse.Pid())
	for range b.N {
		for r := range rounds {
			for k := range runs {
				// Each round starts one run later, so none always runs first or last.
				x := runs[(k+r)%len(runs)]
				db := migrated(b, conn, x.m.name != "floor")
				if x.m.setup != nil {
					x.m.setup(db)
				}
				for _, t := range mergeTreeTables(b, db) {
					chExec(b, conn, "SYSTEM STOP MERGES "+db+"."+t)
				}
				u0, s0 := userSys(b, chPid)
				for i := range inserts {
					chExec(b, conn, fmt.Sprintf("INSERT INTO %s.packets SELECT * FROM %s.rows_%d SETTINGS max_threads = 1, max_insert_threads = 1, insert_deduplicate = 1, insert_deduplication_token = 'fixed/%s/%d'",
						db, srcDB, x.n, db, i))
				}
				u1, s1 := userSys(b, chPid)
				key := fmt.Sprintf("%s-%d", x.m.name, x.n)
				per := 1000 * (u1 - u0 + s1 - s0) / float64(inserts)
				ms[key] = append(ms[key], per)
				if got, want := count(b, conn, "SELECT count() FROM "+db+".packets"), uint64(inserts*x.n); got != want {
					b.Fatalf("%s: %d rows, want %d", key, got, want)
				}
				if r == 0 {
					logParts(b, db, inserts)
				}
				chExec(b, conn, "DROP DATABASE "+db+" SYNC")
				b.Logf("round %d %-22s clickhouse %6.2f ms per INSERT (user %.2f s, sys %.2f s for %d)", r, key, per, u1-u0, s1-s0, inserts)
			}
		}
	}
	for _, n := range sizes {
		floor, views, null := median(ms[fmt.Sprintf("floor-%d", n)]), median(ms[fmt.Sprintf("views-%d", n)]), median(ms[fmt.Sprintf("views-to-null-%d", n)])
		b.ReportMetric(floor, fmt.Sprintf("floor-%d-ms/insert", n))
		b.ReportMetric(views, fmt.Sprintf("views-%d-ms/insert", n))
		b.ReportMetric(null, fmt.Sprintf("views-to-null-%d-ms/insert", n))
		b.ReportMetric(views-floor, fmt.Sprintf("views-over-floor-%d-ms/insert", n))
		b.ReportMetric(null-floor, fmt.Sprintf("view-queries-%d-ms/insert", n))
		b.ReportMetric(views-null, fmt.Sprintf("view-parts-%d-ms/insert", n))
		b.Logf("%6d rows per INSERT: floor %6.2f ms, every view %6.2f (+%.2f), queries only %6.2f (+%.2f), so parts +%.2f ms per INSERT",
			n, floor, views, views-floor, null, null-floor, views-null)
	}
}
