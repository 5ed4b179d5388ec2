package bench

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/packetlake/packetlake/ingester"
)

// BenchmarkIngestGrow prices batches that grow while their partition is behind (issue #18,
// ingester/grow.go), as BenchmarkIngestVsKafkaEngine measures the ingester: N packets already
// waiting in Kafka (4 partitions: a backlog, so every partition is behind until its last
// batch), moved into a fresh database with every view, side by side in one run with
//
//   - ch-floor-ref: issue #18's reference floor (packets before its levers, no views);
//   - ch-floor: ClickHouse copying the rows from memory with every view, 100k-row blocks;
//   - ingester-grow-<cap>: the ingester with FlushRows 100k and MaxBatchRows cap (100000 is
//     today's ingester: nothing grows), GrowBudget BENCH_GROW_BUDGET_MB (default 1024: the
//     budget does not cut here, the caps do), packets' min_rows_for_wide_part raised to 1.5 ×
//     cap when cap is over 0901's 150k (BENCH_GROW_WIDE=1 keeps 0901's: bigger inserts Wide).
//
// Per cap it reports the ingester's Go CPU and ClickHouse's CPU per million rows, the Go heap
// live at its peak over the run's baseline, ingester/floor (rows per CPU-second of ingester +
// ClickHouse over the reference floor's) and the same over today's ingester. Rows
// BENCH_INGEST_ROWS (default 2,000,000: 500k per partition, so a 500k cap can be reached),
// caps BENCH_GROW_CAPS (default "100000,250000,500000"). The runs' order reverses from one
// iteration (-benchtime Nx) to the next.
func BenchmarkIngestGrow(b *testing.B) {
	n := envInt("BENCH_INGEST_ROWS", 2_000_000)
	caps := envInts(b, "BENCH_GROW_CAPS", []int{100_000, 250_000, 500_000})
	budget := envInt("BENCH_GROW_BUDGET_MB", 1024) << 20
	topic, memory := growTopic(b, n)
	runs := []ingestRunSpec{
		{"ch-floor-ref", false, beforeIssue18, copyFrom(b, memory), nil},
		{"ch-floor", true, nil, copyFrom(b, memory), nil},
	}
	for _, c := range caps {
		var undo []string
		if c*3/2 > 150_000 && os.Getenv("BENCH_GROW_WIDE") != "1" {
			undo = []string{fmt.Sprintf("MODIFY SETTING min_rows_for_wide_part = %d", c*3/2)}
		}
		runs = append(runs, ingestRunSpec{fmt.Sprintf("ingester-grow-%d", c), true, undo, func(db string) func() {
			cfg := ingester.DefaultConfig()
			cfg.Kafka.Brokers, cfg.Group, cfg.Topic, cfg.StatsTopic = []string{env.Kafka.Addr()}, db, topic, ""
			cfg.ClickHouse, cfg.Migrate = env.CHConfig(db), false
			cfg.SessionTimeout = 6 * time.Second
			cfg.MaxBatchRows, cfg.GrowBudget = c, budget
			in, reg := startIngester(b, cfg)
			return func() { in.Stop(); logBatches(b, reg) }
		}, nil})
	}
	for i := range b.N {
		if i%2 == 1 {
			slices.Reverse(runs)
		}
		res := map[string]ingestResult{}
		for _, r := range runs {
			res[r.name] = ingestRun(b, n, r)
		}
		ref, today := res["ch-floor-ref"], res[fmt.Sprintf("ingester-grow-%d", caps[0])]
		b.ReportMetric(ref.cpu.ch*1e6/float64(n), "floor-ref-cpu-s/Mrows")
		b.ReportMetric(res["ch-floor"].cpu.ch*1e6/float64(n), "floor-views-cpu-s/Mrows")
		for _, c := range caps {
			r := res[fmt.Sprintf("ingester-grow-%d", c)]
			name := fmt.Sprintf("grow-%d", c)
			b.ReportMetric(r.cpu.self*1e6/float64(n), name+"-go-cpu-s/Mrows")
			b.ReportMetric(r.cpu.ch*1e6/float64(n), name+"-ch-cpu-s/Mrows")
			b.ReportMetric(float64(r.heapPeak)/(1<<20), name+"-heap-MB")
			b.ReportMetric(r.perCore()/ref.perCore(), name+"/floor")
			b.ReportMetric(r.perCore()/today.perCore(), name+"/today")
			b.Logf("%-22s go %.2f + clickhouse %.2f (user %.2f, sys %.2f) cpu-s per million rows, heap peak +%.0f MB, ingester/floor %.3f, %.3f x today's rows/cpu-s",
				name, r.cpu.self*1e6/float64(n), r.cpu.ch*1e6/float64(n), r.cpu.chUser*1e6/float64(n), r.cpu.chSys*1e6/float64(n),
				float64(r.heapPeak)/(1<<20), r.perCore()/ref.perCore(), r.perCore()/today.perCore())
		}
	}
}

// growTopic produces n packets as frames of 1000 over 4 partitions (the same packets in the
// same partition as BenchmarkIngestVsKafkaEngine's) and fills a Memory table with them for the
// floors; it returns the topic and the table.
func growTopic(b *testing.B, n int) (topic, memory string) {
	const partitions, perFrame = 4, 1000
	fs, _, pkts := frames(n, perFrame, partitions, time.Now().Add(-time.Hour).UnixNano())
	topic = produceFramesTo(b, "grow", partitions, fs)
	stamp := time.Now().UnixNano()
	memory = fmt.Sprintf("grow_src_%d.packets", stamp)
	fillMemoryTable(b, memory, pkts)
	b.Cleanup(func() { chExec(b, env.CH(b), fmt.Sprintf("DROP DATABASE grow_src_%d SYNC", stamp)) })
	return topic, memory
}
