package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/ingester"
	"github.com/packetlake/packetlake/internal/local/kafkalocal"
	"github.com/packetlake/packetlake/record"
)

// BenchmarkIngestVsKafkaEngine: the same N packets, already waiting in Apache Kafka (4
// partitions), moved into a fresh `packets` table (packetlake's migrations) by
//
//   - ingester: packetlake's ingester in this process, default config (arrow-http writer,
//     FlushRows 100k, FlushAge 1 s, MaxBatchRows 250k: on this backlog each partition's
//     250k packets go in one or two batches, grown past FlushRows while behind, Wide parts
//     over 0901's 150k rows; BenchmarkIngestGrow prices that), reading packetlake frames of
//     1000 packets;
//   - engine-rb1: ClickHouse's Kafka table engine + a materialized view TO packets, reading the
//     same packets as RowBinary, one row per Kafka message (the engine's usual shape);
//   - engine-rb1000: the same engine reading RowBinary messages of 1000 rows each (the batching
//     packetlake's frames have; a best case for the engine);
//   - ch-floor: no mover at all: ClickHouse copies the same rows, already in its memory (an
//     ENGINE = Memory table filled before timing, blocks of 100k rows), into packets with
//     INSERT ... SELECT. Its CPU is the cost every mover pays to write the table (sort,
//     compress, write parts, run the views): the engine's CPU divided by it bounds the lead any
//     mover can have over the engine, even one that costs nothing itself;
//   - ch-per-insert: the same copy as one INSERT ... SELECT per block of the ingester's
//     MaxBatchRows (its batches on this backlog) with its settings and a token each (copyPerInsert): what a mover that costs nothing
//     reaches when it makes the ingester's INSERTs (zero-cost-mover/floor).
//
// Run it with scripts/on-journaled-ext4.sh (make bench does): ClickHouse's system CPU on an ext4
// without a journal drifts with the run's own file churn (BENCHMARKS.md, issue #18, session 11).
//
// The engine gets the ingester's batch settings: inserts of 100k rows, flush 1 s, one consumer. Each run is timed from its start (ingester.Start, CREATE MATERIALIZED VIEW) until
// count() of its table reaches N (polled every 50 ms); CPU is user+system from /proc for this
// process (the ingester), the ClickHouse child and the Kafka JVM over the same interval.
// Sub-benchmarks: without and with every materialized view the migrations ship (rollups and
// the detector's). Rows: env BENCH_INGEST_ROWS (default 1,000,000).
//
// BENCH_INGEST_MERGES=0 stops background merges on every table of the run's database, so that
// the CPU compared is the insert path's alone.
//
// Issue #18's metrics, all from the same run: floor-rows/cpu-s is ch-floor into packets as it
// was before issue #18's levers (migrations up to 0852: 0900's types, codec and setting and
// 0901's setting undone, reference_test.go) with no views, the issue's reference;
// floor-now-rows/cpu-s the same into today's packets; floor-before-0901-rows/cpu-s today's
// packets without 0901 (every insert a Wide part). ingester/floor and ingester/floor-now divide
// the ingester's rows/cpu-s (this sub-benchmark's views, today's table) by them;
// ingester-before-0901 is the same ingester into packets without 0901. floor-same-views-rows/cpu-s
// and ingester-of-floor are ch-floor with this sub-benchmark's views. <run>-ch-user-s and
// <run>-ch-sys-s are ClickHouse's user and system CPU of each run: the system CPU is mostly the
// creating of part files, which 0901 saves and which drifts with the run's file churn.
// With rollups, ingester-before-0903 and ch-floor-before-0903 are the ingester and ch-floor
// with traffic_1m's view over every packet, as before 0903 rolled it up from flows_1m
// (ingester/ingester-before-0903, floor-same-views-before-0903-rows/cpu-s).
func BenchmarkIngestVsKafkaEngine(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("BENCH_INGEST_ROWS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	// BENCH_INGEST_ENGINES=0 leaves out the two Kafka-engine movers (engine-rb1 alone costs ~30
	// CPU-s of ClickHouse per million rows) when only the ingester against the floor is wanted.
	engines := os.Getenv("BENCH_INGEST_ENGINES") != "0"
	var topics ingestTopics
	for _, rollups := range []bool{false, true} {
		name := "packets-only"
		if rollups {
			name = "with-rollups"
		}
		b.Run(name, func(b *testing.B) {
			topics.once.Do(func() { topics.make(b, n) })
			for range b.N {
				startIngesterRows := func(flushRows int) func(db string) func() {
					return func(db string) func() {
						cfg := ingester.DefaultConfig()
						cfg.Kafka.Brokers, cfg.Group, cfg.Topic, cfg.StatsTopic = []string{env.Kafka.Addr()}, db, topics.frames, ""
						if flushRows > 0 {
							cfg.FlushRows = flushRows
							// Rows, not bytes, cut the batches (118 B per packet in a frame).
							cfg.FlushBytes = max(cfg.FlushBytes, flushRows*160)
						}
						cfg.ClickHouse, cfg.Migrate = env.CHConfig(db), false
						cfg.SessionTimeout = 6 * time.Second
						in, reg := startIngester(b, cfg)
						return func() { in.Stop(); logBatches(b, reg) }
					}
				}
				startIngester := startIngesterRows(0)
				// Issue #18's runs. The order alternates from one iteration (-count) to the next:
				// ClickHouse's system CPU grows with the file churn of the whole run, so a fixed
				// order would favour whichever runs first.
				floorCopy := copyFrom(b, topics.memory)
				runs := []ingestRunSpec{
					{"ingester", rollups, nil, startIngester, nil},
					{"ingester-before-0901", rollups, undo0901, startIngester, nil},
					{"ch-floor-ref", false, beforeIssue18, floorCopy, nil},
					{"ch-floor-now", false, nil, floorCopy, nil},
					{"ch-floor-before-0901", false, undo0901, floorCopy, nil},
				}
				if rollups {
					// -before-0903: traffic_1m's view over every packet again, as before 0903
					// rolled it up from flows_1m's rows (prices_views_test.go).
					before0903 := execAll(b, viewsBefore0903)
					runs = append(runs, ingestRunSpec{"ch-floor", true, nil, floorCopy, nil},
						ingestRunSpec{"ingester-before-0903", true, nil, startIngester, before0903},
						ingestRunSpec{"ch-floor-before-0903", true, nil, floorCopy, before0903})
				}
				runs = append(runs, ingestRunSpec{"ch-per-insert", rollups, nil, copyPerInsert(b, topics.memory, ingester.DefaultConfig().MaxBatchRows), nil})
				runs = append(runs, flushRowsRuns(b, rollups, topics.memory, startIngesterRows)...)
				if ingestRound%2 == 1 {
					slices.Reverse(runs)
				}
				ingestRound++
				res := map[string]ingestResult{}
				for _, r := range runs {
					res[r.name] = ingestRun(b, n, r)
				}
				var e1, e1000 ingestResult
				if engines {
					e1 = ingestRun(b, n, ingestRunSpec{"engine-rb1", rollups, nil, engine(b, topics.rb1, 100_000), nil})
					e1000 = ingestRun(b, n, ingestRunSpec{"engine-rb1000", rollups, nil, engine(b, topics.rb1000, 100), nil})
				}
				ing, ing0901 := res["ingester"], res["ingester-before-0901"]
				// floor: issue #18's reference, packets as before its levers (migrations up to
				// 0852) without views; floor-now: today's packets without views; floor: the same
				// with this sub-benchmark's views.
				ref, now, floor := res["ch-floor-ref"], res["ch-floor-now"], res["ch-floor-now"]
				if rollups {
					floor = res["ch-floor"]
				}
				b.ReportMetric(ing.perCore(), "ingester-rows/cpu-s")
				b.ReportMetric(ing0901.perCore(), "ingester-before-0901-rows/cpu-s")
				b.ReportMetric(ref.perCore(), "floor-rows/cpu-s")
				b.ReportMetric(now.perCore(), "floor-now-rows/cpu-s")
				b.ReportMetric(res["ch-floor-before-0901"].perCore(), "floor-before-0901-rows/cpu-s")
				b.ReportMetric(ing.perCore()/ref.perCore(), "ingester/floor")
				b.ReportMetric(ing.perCore()/now.perCore(), "ingester/floor-now")
				b.ReportMetric(ing0901.perCore()/ref.perCore(), "ingester-before-0901/floor")
				b.ReportMetric(floor.perCore(), "floor-same-views-rows/cpu-s")
				b.ReportMetric(ing.perCore()/floor.perCore(), "ingester-of-floor")
				// The most any mover sending the ingester's INSERTs could reach (copyPerInsert).
				b.ReportMetric(res["ch-per-insert"].perCore()/ref.perCore(), "zero-cost-mover/floor")
				if rollups {
					ing0903 := res["ingester-before-0903"]
					b.ReportMetric(ing0903.perCore(), "ingester-before-0903-rows/cpu-s")
					b.ReportMetric(ing.perCore()/ing0903.perCore(), "ingester/ingester-before-0903")
					b.ReportMetric(res["ch-floor-before-0903"].perCore(), "floor-same-views-before-0903-rows/cpu-s")
				}
				for _, r := range runs {
					b.ReportMetric(res[r.name].cpu.chUser, r.name+"-ch-user-s")
					b.ReportMetric(res[r.name].cpu.chSys, r.name+"-ch-sys-s")
				}
				reportFlushRows(b, res, ref)
				b.ReportMetric(ing.rate(), "ingester-rows/s")
				if !engines {
					continue
				}
				b.ReportMetric(e1.rate(), "engine-rb1-rows/s")
				b.ReportMetric(e1000.rate(), "engine-rb1000-rows/s")
				b.ReportMetric(ing.rate()/e1.rate(), "x-vs-rb1")
				b.ReportMetric(ing.rate()/e1000.rate(), "x-vs-rb1000")
				b.ReportMetric(ing.steady()/e1000.steady(), "steady-x-vs-rb1000")
				b.ReportMetric(e1.perCore(), "engine-rb1-rows/cpu-s")
				b.ReportMetric(e1000.perCore(), "engine-rb1000-rows/cpu-s")
				// The most any mover could lead the engine by per core.
				b.ReportMetric(floor.perCore()/e1000.perCore(), "bound-x-vs-rb1000")
			}
		})
	}
}

// ingestRunSpec is one run of BenchmarkIngestVsKafkaEngine's issue #18 comparison.
type ingestRunSpec struct {
	name  string
	views bool
	undo  []string // ALTERs of packets before the run (reference_test.go)
	start func(db string) func()
	setup func(db string) // after undo, before the run: other DDL (views as before a migration)
}

// ingestRound counts BenchmarkIngestVsKafkaEngine's iterations, to alternate the runs' order.
var ingestRound int

type ingestTopics struct {
	once                sync.Once
	frames, rb1, rb1000 string
	memory              string // db.table of an ENGINE = Memory copy of the rows, for ch-floor
}

// make produces the n packets three ways, one topic each, spread evenly over 4 partitions.
func (t *ingestTopics) make(b *testing.B, n int) {
	const partitions, perFrame = 4, 1000
	fs, _, pkts := frames(n, perFrame, partitions, time.Now().Add(-time.Hour).UnixNano())
	stamp := time.Now().UnixNano()
	t.frames, t.rb1, t.rb1000 = fmt.Sprintf("frames-%d", stamp), fmt.Sprintf("rb1-%d", stamp), fmt.Sprintf("rb1000-%d", stamp)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for _, tp := range []string{t.frames, t.rb1, t.rb1000} {
		if err := kafkalocal.CreateTopic(ctx, env.Kafka.Addr(), tp, partitions); err != nil {
			b.Fatal(err)
		}
	}
	cl := newLoadProducer(b)
	var firstErr error
	var mu sync.Mutex
	prod := func(topic string, part int, v []byte) {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: int32(part), Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
		})
	}
	start := time.Now()
	var bytesFrames, bytesRB int
	for i, f := range fs {
		prod(t.frames, i%partitions, f)
		bytesFrames += len(f)
	}
	var batch []byte
	for i := range pkts {
		part := (i / perFrame) % partitions // the same packets in the same partition as their frame
		row := appendRowBinary(nil, &pkts[i])
		bytesRB += len(row)
		prod(t.rb1, part, row)
		batch = append(batch, row...)
		if (i+1)%perFrame == 0 || i == len(pkts)-1 {
			prod(t.rb1000, part, batch)
			batch = nil
		}
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	t.memory = fmt.Sprintf("floor_src_%d.packets", stamp)
	fillMemoryTable(b, t.memory, pkts)
	b.Logf("produced %d packets: %d frames (%.0f B/packet), %d RowBinary rows (%.0f B/row) and %d RowBinary messages of %d rows, in %v",
		n, len(fs), float64(bytesFrames)/float64(n), n, float64(bytesRB)/float64(n), len(fs), perFrame, time.Since(start).Round(time.Millisecond))
}

// engine returns a run that attaches ClickHouse's Kafka engine to topic and a materialized view
// from it into db.packets.
// kafka_max_block_size counts Kafka messages, not rows (measured: with 100000 and messages of
// 1000 rows, the whole 1M rows came as one insert): maxBlock is set so that every insert is
// 100k rows, as the ingester's.
func engine(b *testing.B, topic string, maxBlock int) func(db string) func() {
	return func(db string) func() {
		conn := env.CH(b)
		chExec(b, conn, fmt.Sprintf(`CREATE TABLE %s.kafka_in (%s) ENGINE = Kafka SETTINGS
			kafka_broker_list = '%s', kafka_topic_list = '%s', kafka_group_name = '%s',
			kafka_format = 'RowBinary', kafka_num_consumers = 1,
			kafka_max_block_size = %d, kafka_flush_interval_ms = 1000`,
			db, columnsDDL(), env.Kafka.Addr(), topic, db, maxBlock))
		chExec(b, conn, fmt.Sprintf("CREATE MATERIALIZED VIEW %s.kafka_mv TO %s.packets AS SELECT * FROM %s.kafka_in", db, db, db))
		return func() {
			chExec(b, conn, "DROP VIEW "+db+".kafka_mv SYNC")
			chExec(b, conn, "DROP TABLE "+db+".kafka_in SYNC")
		}
	}
}

// fillMemoryTable makes table (db.name) an ENGINE = Memory table of the packets, inserted over
// HTTP as RowBinary in blocks of 100k rows, the size of the ingester's inserts.
// memorySource is a Memory table of n generated packets (4 hosts, 1000 per frame, an hour ago)
// in a database of its own, dropped when b ends: the source a pricing benchmark copies from.
func memorySource(b *testing.B, name string, n int) string {
	_, _, pkts := frames(n, 1000, 4, time.Now().Add(-time.Hour).UnixNano())
	db := fmt.Sprintf("%s_src_%d", name, time.Now().UnixNano())
	fillMemoryTable(b, db+".packets", pkts)
	conn := env.CH(b)
	b.Cleanup(func() { chExec(b, conn, "DROP DATABASE "+db+" SYNC") })
	return db + ".packets"
}

func fillMemoryTable(b *testing.B, table string, pkts []record.Packet) {
	conn := env.CH(b)
	db, _, _ := strings.Cut(table, ".")
	chExec(b, conn, "CREATE DATABASE "+db)
	chExec(b, conn, fmt.Sprintf("CREATE TABLE %s (%s) ENGINE = Memory", table, columnsDDL()))
	client, err := env.CHConfig("").Client()
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	const block = 100_000
	for i := 0; i < len(pkts); i += block {
		var body []byte
		for j := i; j < min(i+block, len(pkts)); j++ {
			body = appendRowBinary(body, &pkts[j])
		}
		if err := client.Insert(context.Background(), "INSERT INTO "+table+" FORMAT RowBinary", bytes.NewReader(body), nil); err != nil {
			b.Fatalf("fill %s: %v", table, err)
		}
	}
}

// copyFrom returns a run in which ClickHouse itself copies the rows of src into db.packets,
// one thread, 100k-row blocks (the ingester's insert size).
func copyFrom(b *testing.B, src string) func(db string) func() { return copyBlocks(b, src, 100_000) }

// copyBlocks is copyFrom in blocks of block rows (the Memory table's 100k-row blocks squashed).
func copyBlocks(b *testing.B, src string, block int) func(db string) func() {
	return func(db string) func() {
		set := fmt.Sprintf("max_threads = 1, max_insert_threads = 1, max_block_size = %d, min_insert_block_size_rows = %d", block, block)
		if block != 100_000 { // the Memory table's blocks are 100k rows: squash them by rows alone
			set += fmt.Sprintf(", min_insert_block_size_bytes = %d", 1<<32)
		}
		chExec(b, env.CH(b), fmt.Sprintf("INSERT INTO %s.packets SELECT * FROM %s SETTINGS %s", db, src, set))
		return func() {}
	}
}

type ingestResult struct {
	rows    int
	elapsed time.Duration
	cpu     cpuSnap
	engine  bool
	// first is when the first rows became queryable, firstRows how many there were.
	first     time.Duration
	firstRows uint64
	heapPeak  uint64 // this process's live Go heap at its peak, over the run's baseline
}

// steady is the rate after the first rows: without joining the group and the first batch.
func (r ingestResult) steady() float64 {
	if r.firstRows >= uint64(r.rows) {
		return r.rate()
	}
	return float64(uint64(r.rows)-r.firstRows) / (r.elapsed - r.first).Seconds()
}

func (r ingestResult) rate() float64 { return float64(r.rows) / r.elapsed.Seconds() }

// perCore is rows per CPU second of the processes doing the moving: ClickHouse, plus this
// process for the ingester (the broker's CPU is reported apart: both read the same bytes).
func (r ingestResult) perCore() float64 {
	c := r.cpu.ch
	if !r.engine {
		c += r.cpu.self
	}
	return float64(r.rows) / c
}

// ingestRun times one mover into a fresh database until n rows are queryable.
func ingestRun(b *testing.B, n int, spec ingestRunSpec) ingestResult {
	name, start := spec.name, spec.start
	conn := env.CH(b)
	db := migrated(b, conn, spec.views)
	alterPackets(b, conn, db, spec.undo)
	if spec.setup != nil {
		spec.setup(db)
	}
	nviews := views(b, conn, db)
	if os.Getenv("BENCH_INGEST_MERGES") == "0" {
		// Background merges start at moments no mover controls: in one loaded run the same
		// ch-floor cost 1.51 and 2.73 CPU-s. Stopped on every table, each mover's CPU is its
		// insert path alone (the merges of packets are the same work for every mover).
		for _, t := range mergeTreeTables(b, db) {
			chExec(b, conn, "SYSTEM STOP MERGES "+db+"."+t)
		}
	}
	q := "SELECT count() FROM " + db + ".packets"
	time.Sleep(time.Second) // let the DDL's own work settle
	runtime.GC()
	heap0, heapPeak := liveHeap(), uint64(0)
	c0, t0 := snapCPU(b), time.Now()
	stop := start(db)
	var first time.Duration
	var firstRows uint64
	deadline := t0.Add(10 * time.Minute)
	var got uint64
	for got < uint64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("%s: %d of %d rows after 10 min", name, got, n)
		}
		time.Sleep(50 * time.Millisecond)
		if h := liveHeap(); h > heap0 {
			heapPeak = max(heapPeak, h-heap0)
		}
		if got = count(b, conn, q); got > 0 && first == 0 {
			first, firstRows = time.Since(t0), got
		}
	}
	elapsed := time.Since(t0)
	// packets' part is visible before the INSERT that wrote it has run its views: an INSERT
	// still running then does the rest of its work (up to 4 inserts' views, one per partition)
	// after count() = n, so the CPU is taken once no INSERT into db runs any more (measured
	// 2026-12-07: ClickHouse 1.20 CPU-s for the ingester with 250k-row batches and every view,
	// less than ch-floor with the same views, when taken at count() = n).
	waitNoInsert(b, conn, db, deadline)
	r := ingestResult{rows: n, elapsed: elapsed, cpu: snapCPU(b).sub(c0), engine: !strings.HasPrefix(name, "ingester"), first: first, firstRows: firstRows, heapPeak: heapPeak}
	stop()
	if got != uint64(n) {
		b.Errorf("%s: %d rows, want %d", name, got, n)
	}
	b.Logf("%-20s views=%d  %8.0f rows/s  %6.2f s (first %d rows after %5.2f s; after them %8.0f rows/s)  cpu: self %5.2f s (user %.2f, sys %.2f), clickhouse %5.2f s (user %.2f, sys %.2f), kafka %5.2f s  => %8.0f rows/cpu-s",
		name, nviews, r.rate(), r.elapsed.Seconds(), firstRows, first.Seconds(), r.steady(), r.cpu.self, r.cpu.selfUser, r.cpu.selfSys,
		r.cpu.ch, r.cpu.chUser, r.cpu.chSys, r.cpu.kafka, r.perCore())
	b.Logf("%-20s Go heap live at peak: +%.0f MB", name, float64(heapPeak)/(1<<20))
	b.Logf("%-20s packets parts by type: %s", name, strings.Join(queryStrings(b, "SELECT part_type || ' ' || toString(count()) FROM system.parts WHERE database = '"+db+"' AND table = 'packets' AND active GROUP BY part_type ORDER BY part_type"), ", "))
	if nviews > 0 { // a view writes a part per block it gets: one per INSERT when nothing squashes them
		b.Logf("%-20s active parts per table: %s", name, strings.Join(queryStrings(b, "SELECT table || ' ' || toString(count()) FROM system.parts WHERE database = ? AND active AND table != 'schema_migrations' GROUP BY table ORDER BY table", db), ", "))
	}
	chExec(b, conn, "DROP DATABASE "+db+" SYNC")
	return r
}

// newLoadProducer is the client that fills a benchmark's topics: lz4, 1 MiB batches, the
// partition set on each record. Closed when b ends.
func newLoadProducer(b *testing.B) *kgo.Client {
	b.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Kafka.Addr()), kgo.ProducerBatchCompression(kgo.Lz4Compression()),
		kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	return cl
}

// logBatches logs the ingester's inserts by what cut them: a view's cost is mostly per insert,
// so the size of the inserts explains much of the difference to ch-floor's 100k-row blocks.
func logBatches(b *testing.B, reg *prometheus.Registry) {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	var cuts []string
	var total float64
	for _, mf := range mfs {
		if mf.GetName() != "packetlake_ingester_batches_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "cut" {
					cuts = append(cuts, fmt.Sprintf("%s %.0f", l.GetValue(), m.GetCounter().GetValue()))
				}
			}
			total += m.GetCounter().GetValue()
		}
	}
	b.Logf("ingester: %.0f inserts into packets (%s)", total, strings.Join(cuts, ", "))
}

// logInsertDurations logs the ingester's mean INSERT duration per table: with the views run
// inside the packets INSERT, a rollup row is queryable only when that INSERT is done.
func logInsertDurations(b *testing.B, reg *prometheus.Registry) {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "packetlake_ingester_insert_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			if h.GetSampleCount() == 0 {
				continue
			}
			table := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "table" {
					table = l.GetValue()
				}
			}
			b.Logf("ingester: %d INSERTs into %s, mean %.0f ms", h.GetSampleCount(), table,
				1000*h.GetSampleSum()/float64(h.GetSampleCount()))
		}
	}
}
