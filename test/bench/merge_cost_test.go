package bench

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkInsertAndMerge prices migration 0901 over a part's whole life, not only its insert:
// the same 1M rows copied by ClickHouse into packets (no views) in 100k-row inserts, then merged
// into one part (OPTIMIZE FINAL), with 0901 (Compact inserts, merged into a Wide part) and
// without it (Wide inserts, Wide merges). Background merges run as they would in production,
// so some happen during the inserts; ClickHouse's user and system CPU is measured for the inserts
// and for everything up to the one part, medians of interleaved rounds (BENCH_PRICE_ROUNDS,
// default 3; rows BENCH_PRICE_ROWS).
func BenchmarkInsertAndMerge(b *testing.B) {
	n, rounds := envInt("BENCH_PRICE_ROWS", 1_000_000), envInt("BENCH_PRICE_ROUNDS", 3)
	src := memorySource(b, "merge", n)
	conn := env.CH(b)
	chPid := strconv.Itoa(env.ClickHouse.Pid())
	variants := []struct {
		name string
		undo []string
	}{{"0901", nil}, {"before-0901", undo0901}}
	type cost struct{ insUser, insSys, allUser, allSys []float64 }
	costs := map[string]*cost{}
	for _, v := range variants {
		costs[v.name] = &cost{}
	}
	for range b.N {
		for r := range rounds {
			order := slices.Clone(variants)
			if r%2 == 1 { // the system CPU drifts with the run's file churn: alternate who goes first
				slices.Reverse(order)
			}
			for _, v := range order {
				db := migrated(b, conn, false)
				alterPackets(b, conn, db, v.undo)
				time.Sleep(time.Second) // let the DDL's own work settle
				u0, s0 := userSys(b, chPid)
				copyFrom(b, src)(db)
				u1, s1 := userSys(b, chPid)
				types := queryStrings(b, "SELECT part_type || ' ' || toString(count()) FROM system.parts WHERE database = '"+db+"' AND table = 'packets' AND active GROUP BY part_type ORDER BY part_type")
				chExec(b, conn, "OPTIMIZE TABLE "+db+".packets FINAL")
				u2, s2 := userSys(b, chPid)
				final := queryStrings(b, "SELECT part_type || ' ' || toString(count()) FROM system.parts WHERE database = '"+db+"' AND table = 'packets' AND active GROUP BY part_type ORDER BY part_type")
				c := costs[v.name]
				c.insUser, c.insSys = append(c.insUser, u1-u0), append(c.insSys, s1-s0)
				c.allUser, c.allSys = append(c.allUser, u2-u0), append(c.allSys, s2-s0)
				b.Logf("round %d %-11s inserts: user %.2f sys %.2f s (parts after them: %s); inserts + merges to one part: user %.2f sys %.2f s (%s)",
					r, v.name, u1-u0, s1-s0, strings.Join(types, ", "), u2-u0, s2-s0, strings.Join(final, ", "))
				chExec(b, conn, "DROP DATABASE "+db+" SYNC")
			}
		}
	}
	for _, v := range variants {
		c := costs[v.name]
		b.ReportMetric(median(c.insUser), v.name+"-insert-user-s")
		b.ReportMetric(median(c.insSys), v.name+"-insert-sys-s")
		b.ReportMetric(median(c.allUser), v.name+"-all-user-s")
		b.ReportMetric(median(c.allSys), v.name+"-all-sys-s")
	}
	with, without := costs["0901"], costs["before-0901"]
	b.ReportMetric((median(with.allUser)+median(with.allSys))/(median(without.allUser)+median(without.allSys)), "0901/before-all")
}
