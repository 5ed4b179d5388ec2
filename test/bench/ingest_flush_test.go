package bench

import (
	"fmt"
	"runtime/metrics"
	"testing"
)

// Issue #18, task 4 of the vdedup branch: the ingester with larger batches (FlushRows), priced
// in BenchmarkIngestVsKafkaEngine beside the default. BENCH_INGEST_FLUSH_ROWS lists the sizes
// ("250000,500000"); for each n the run adds
//
//   - ingester-flush-<n>: the ingester with FlushRows n (FlushBytes raised so rows cut first)
//     into today's packets with min_rows_for_wide_part raised to 1.5 n, as migration 0901's
//     comment tells a deployment that raises --flush-rows: its inserts stay Compact;
//   - ch-floor-ref-<n>: issue #18's reference floor (packets before its levers, no views)
//     copying in blocks of n rows: the floor at the ingester's insert size.
//
// Each is reported against the 100k-row reference floor (ingester-flush-<n>/floor) and the
// floor at the same size (ingester-flush-<n>/floor-<n>), with the ingester's Go heap at its
// peak over the run's baseline (-heap-MB: the largest live heap after a GC, sampled every 50 ms).
func flushRowsRuns(b *testing.B, rollups bool, memory string, ingester func(flushRows int) func(db string) func()) []ingestRunSpec {
	var out []ingestRunSpec
	for _, n := range flushRowsSizes(b) {
		wide := fmt.Sprintf("MODIFY SETTING min_rows_for_wide_part = %d", n*3/2)
		out = append(out,
			ingestRunSpec{fmt.Sprintf("ingester-flush-%d", n), rollups, []string{wide}, ingester(n), nil},
			ingestRunSpec{fmt.Sprintf("ch-floor-ref-%d", n), false, beforeIssue18, copyBlocks(b, memory, n), nil})
	}
	return out
}

func reportFlushRows(b *testing.B, res map[string]ingestResult, ref ingestResult) {
	for _, n := range flushRowsSizes(b) {
		ing, floor := res[fmt.Sprintf("ingester-flush-%d", n)], res[fmt.Sprintf("ch-floor-ref-%d", n)]
		b.ReportMetric(ing.perCore()/ref.perCore(), fmt.Sprintf("ingester-flush-%d/floor", n))
		b.ReportMetric(ing.perCore()/floor.perCore(), fmt.Sprintf("ingester-flush-%d/floor-%d", n, n))
		b.ReportMetric(float64(ing.heapPeak)/(1<<20), fmt.Sprintf("ingester-flush-%d-heap-MB", n))
	}
	b.ReportMetric(float64(res["ingester"].heapPeak)/(1<<20), "ingester-heap-MB")
}

func flushRowsSizes(b *testing.B) []int { return envInts(b, "BENCH_INGEST_FLUSH_ROWS", nil) }

// liveHeap is the Go heap live after the last GC.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
