package bench

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/ingester"
	"github.com/packetlake/packetlake/internal/local/kafkalocal"
)

// BenchmarkIngesterSelf is the ingester process's own CPU alone (issue #18): the packets of
// BenchmarkIngestVsKafkaEngine's frames topic (same mix, 1000 per frame, 4 partitions, lz4),
// moved by one ingester (default config) into a fresh packets table without views, merges
// stopped. Only this process is measured, from getrusage over the run (microseconds, where
// /proc's ticks are 10 ms), so that a change of a few percent in the ingester shows; ClickHouse
// and Kafka are whatever they cost. The run ends when the ingester's own counter of rows
// ClickHouse acknowledged reaches N: polling ClickHouse (as the big benchmark does) would put
// a query every 50 ms into the CPU measured.
//
// Per million rows: self-cpu-s, user-s, sys-s, minflt (minor page faults: fresh memory the
// kernel maps), gc-cpu-s (the runtime's estimate of the garbage collector's share), gc-cycles;
// heap-peak-MB is the live Go heap at its peak over the run's baseline. The first run of a test
// process pays the kernel's first touch of every page its heap grows into (50-70k faults per
// million rows, measured); later runs reuse the heap the runtime kept: compare runs of the same
// index. BENCH_INGEST_ROWS sets N (default 1,000,000); BENCH_SELF_CPUPROFILE=FILE writes a CPU
// profile of the runs (the produce step left out, the per-run setup in; 100 Hz, so take several
// runs) to FILE; BENCH_SELF_GOGC sets the GC percent for the runs; BENCH_SELF_MAXQUEUED the
// ingester's MaxQueuedBytes.
func BenchmarkIngesterSelf(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("BENCH_INGEST_ROWS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	selfTopic.once.Do(func() { selfTopic.name = produceFrames(b, n) })
	if s := os.Getenv("BENCH_SELF_GOGC"); s != "" {
		pct, _ := strconv.Atoi(s)
		defer debug.SetGCPercent(debug.SetGCPercent(pct))
	}
	if f := os.Getenv("BENCH_SELF_CPUPROFILE"); f != "" {
		out, err := os.Create(f) // each call of the function (b.N 1, then N) writes it anew
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(out); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { pprof.StopCPUProfile(); out.Close() })
	}
	var sum selfResult
	for range b.N {
		sum = sum.add(ingesterSelfRun(b, n, selfTopic.name))
	}
	per := 1e6 / float64(n) / float64(b.N)
	b.ReportMetric(sum.user*per+sum.sys*per, "self-cpu-s/Mrows")
	b.ReportMetric(sum.user*per, "user-s/Mrows")
	b.ReportMetric(sum.sys*per, "sys-s/Mrows")
	b.ReportMetric(float64(sum.minflt)*per, "minflt/Mrows")
	b.ReportMetric(sum.gcCPU*per, "gc-cpu-s/Mrows")
	b.ReportMetric(float64(sum.gcCycles)*per, "gc-cycles/Mrows")
	b.ReportMetric(float64(sum.heapPeak)/float64(b.N)/(1<<20), "heap-peak-MB")
	b.ReportMetric(0, "ns/op") // the run's wall time says nothing of the ingester's CPU
}

var (
	selfTopic struct {
		once sync.Once
		name string
	}
)

// produceFrames fills a new topic of 4 partitions with n packets in frames of 1000, as
// BenchmarkIngestVsKafkaEngine's frames topic.
func produceFrames(b *testing.B, n int) string {
	const partitions, perFrame = 4, 1000
	return produceFramesTo(b, "self", partitions, encodeFrames(n, perFrame, partitions, time.Now().Add(-time.Hour).UnixNano()))
}

// produceFramesTo creates a topic named prefix-<now> with partitions partitions and produces
// frame i to partition i % partitions (encodeFrames' and frames' layout), waiting until Kafka
// has every one.
func produceFramesTo(b *testing.B, prefix string, partitions int, fs [][]byte) string {
	topic := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := kafkalocal.CreateTopic(ctx, env.Kafka.Addr(), topic, int32(partitions)); err != nil {
		b.Fatal(err)
	}
	cl := newLoadProducer(b)
	var mu sync.Mutex
	var firstErr error
	for i, f := range fs {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: int32(i % partitions), Value: f}, func(_ *kgo.Record, err error) {
			mu.Lock()
			firstErr = cmp.Or(firstErr, err)
			mu.Unlock()
		})
	}
	if err := cmp.Or(cl.Flush(ctx), firstErr); err != nil {
		b.Fatal(err)
	}
	return topic
}

type selfResult struct {
	user, sys, gcCPU float64
	minflt, gcCycles uint64
	heapPeak         uint64
}

func (a selfResult) add(r selfResult) selfResult {
	return selfResult{a.user + r.user, a.sys + r.sys, a.gcCPU + r.gcCPU, a.minflt + r.minflt, a.gcCycles + r.gcCycles, a.heapPeak + r.heapPeak}
}

// ingesterSelfRun moves the topic's n rows into a fresh database and returns this process's
// resources over the run.
func ingesterSelfRun(b *testing.B, n int, topic string) selfResult {
	conn := env.CH(b)
	db := migrated(b, conn, false)
	for _, t := range mergeTreeTables(b, db) {
		chExec(b, conn, "SYSTEM STOP MERGES "+db+"."+t)
	}
	cfg := ingester.DefaultConfig()
	cfg.Kafka.Brokers, cfg.Group, cfg.Topic, cfg.StatsTopic = []string{env.Kafka.Addr()}, db, topic, ""
	cfg.ClickHouse, cfg.Migrate = env.CHConfig(db), false
	cfg.SessionTimeout = 6 * time.Second
	if s := os.Getenv("BENCH_SELF_MAXQUEUED"); s != "" {
		cfg.MaxQueuedBytes, _ = strconv.Atoi(s)
	}
	time.Sleep(time.Second) // let the DDL's own work settle
	runtime.GC()
	heap0, heapPeak := liveHeap(), uint64(0)
	r0, m0 := selfRusage(b), gcMetrics()
	in, reg := startIngester(b, cfg)
	deadline := time.Now().Add(10 * time.Minute)
	for inserted(b, reg) < float64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d rows after 10 min", int(inserted(b, reg)), n)
		}
		time.Sleep(50 * time.Millisecond)
		if h := liveHeap(); h > heap0 {
			heapPeak = max(heapPeak, h-heap0)
		}
	}
	r1, m1 := selfRusage(b), gcMetrics()
	in.Stop()
	if got := count(b, conn, "SELECT count() FROM "+db+".packets"); got != uint64(n) {
		b.Errorf("%d rows, want %d", got, n)
	}
	chExec(b, conn, "DROP DATABASE "+db+" SYNC")
	r := selfResult{
		user: tv(r1.Utime) - tv(r0.Utime), sys: tv(r1.Stime) - tv(r0.Stime),
		minflt: uint64(r1.Minflt - r0.Minflt), gcCPU: m1[0].Value.Float64() - m0[0].Value.Float64(),
		gcCycles: m1[1].Value.Uint64() - m0[1].Value.Uint64(), heapPeak: heapPeak,
	}
	b.Logf("ingester alone: cpu %.3f s (user %.3f, sys %.3f), %d minor faults, gc %.3f s in %d cycles, heap peak +%.0f MB",
		r.user+r.sys, r.user, r.sys, r.minflt, r.gcCPU, r.gcCycles, float64(heapPeak)/(1<<20))
	return r
}

func selfRusage(b *testing.B) syscall.Rusage {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

func gcMetrics() []metrics.Sample {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s
}

// inserted is the rows the ingester's INSERTs into packets had acknowledged.
func inserted(b *testing.B, reg *prometheus.Registry) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "packetlake_ingester_rows_inserted_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "table" && l.GetValue() == "packets" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
