package bench

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/packetlake/packetlake/record"
)

// issue18Variants are BenchmarkRollupPrices' variants for the two levers of issue #18 nobody
// had priced (BENCHMARKS.md, "ingagg"):
//
//   - ingagg*: packets with no view attached (the floor's INSERT), then the ingester's own
//     rollups: each 100k-row batch aggregated in Go (rollupAgg) and written with one insert per
//     rollup table, under a token derived from the batch's. ClickHouse's CPU covers both; this
//     process's CPU is reported apart (aggregate + encode, and with the HTTP requests).
//     ingagg writes every table the views write (detect_recent as a 12-column copy of each
//     packet); -no-detect-recent leaves that copy to a detector reading packets; -minute-only
//     also leaves the hour tables to a job that rolls minutes up once an hour (not priced: it
//     reads the minute rows, not the packets); -500k is ingagg with 500k-row batches, beside
//     floor-500k-blocks and all-views-500k-blocks.
//   - all-views-*: fewer, wider views: the three L7 name families in one table per tier
//     (prices_wide_test.go), without detect_recent, without the hour views, and all three.
//
// Each variant's rollups are compared with the aggregate over packets in the first round.
func issue18Variants(b *testing.B, pkts []record.Packet) []variant {
	client, err := env.CHConfig("").Client()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(client.Close)
	own := func(hours, recent bool, batchRows int) func(db string) (float64, float64) {
		return func(db string) (agg, all float64) {
			var r rollupAgg
			u0 := rusage(b)
			for i := 0; i < len(pkts); i += batchRows {
				batch := pkts[i:min(i+batchRows, len(pkts))]
				a0 := rusage(b)
				r.reset()
				r.add(batch)
				if hours {
					r.foldHours()
				}
				ins := r.inserts(db, batch, hours, recent)
				agg += rusage(b) - a0
				if err := sendRollups(context.Background(), client, ins, fmt.Sprintf("%s-%d", db, i)); err != nil {
					b.Fatal(err)
				}
			}
			return agg, rusage(b) - u0
		}
	}
	none := func(string) bool { return false }
	hourTable := func(t string) bool { return strings.HasSuffix(t, "_1h") }
	recent := func(t string) bool { return t == "detect_recent" }
	l7 := func(t string) bool { return isL7View(t + "_mv") }
	wide := func(db string) { createWideL7(b, db) }
	var wideMinute []rollupCheck
	for _, c := range wideL7Checks() {
		if strings.HasPrefix(c.table, "l7_names_1m") {
			wideMinute = append(wideMinute, c)
		}
	}
	// Compact parts for packets: ClickHouse writes a part of >= 10 MB uncompressed (a 100k-row
	// insert of packets) as a Wide part, two files per column; perf showed the system CPU of
	// these inserts in ext4_create. A setting, so no migration needed to try it.
	compact := func(db string) {
		chExec(b, env.CH(b), "ALTER TABLE "+db+".packets MODIFY SETTING min_bytes_for_wide_part = 1000000000")
	}
	return []variant{
		{name: "floor-compact-parts", keep: none, setup: compact},
		{name: "all-views-compact-parts", keep: func(string) bool { return true }, setup: compact},
		{name: "ingagg", keep: none, own: own(true, true, 100_000), check: rollupChecks()},
		{name: "ingagg-500k", keep: none, block: 500_000, own: own(true, true, 500_000), check: rollupChecks()},
		{name: "ingagg-no-detect-recent", keep: none, own: own(true, false, 100_000), check: checksExcept(recent)},
		{name: "ingagg-minute-only", keep: none, own: own(false, false, 100_000),
			check: checksExcept(func(t string) bool { return recent(t) || hourTable(t) })},
		{name: "all-views-wide-l7", keep: func(v string) bool { return !isL7View(v) }, setup: wide,
			check: append(checksExcept(l7), wideL7Checks()...)},
		{name: "all-views-no-detect-recent", keep: func(v string) bool { return v != "detect_recent_mv" }, check: checksExcept(recent)},
		{name: "all-views-no-hour", keep: func(v string) bool { return !strings.HasSuffix(v, "_1h_mv") },
			check: checksExcept(func(t string) bool { return hourTable(t) })},
		{name: "all-views-lean", keep: func(v string) bool {
			return !isL7View(v) && v != "detect_recent_mv" && !strings.HasSuffix(v, "_1h_mv")
		}, setup: func(db string) {
			createWideL7(b, db)
			chExec(b, env.CH(b), "DROP VIEW "+db+".l7_names_1h_mv SYNC")
		}, check: append(checksExcept(func(t string) bool { return l7(t) || recent(t) || hourTable(t) }), wideMinute...)},
	}
}

// rusage is this process's user+system CPU seconds, to the microsecond (/proc's stat counts
// hundredths: too coarse for one batch's aggregation).
func rusage(tb testing.TB) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
