package ingester

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/packetlake/packetlake/record"
)

// The two writers on the same data, against the same real ClickHouse (the shared child):
// 100k decoded packets (a third with HTTP strings, a fifth IPv6) appended into a batch and
// inserted as one INSERT, as a worker does per flush. rows/s covers append + encode + insert,
// client and server on the same 2 cores; merges are stopped on the table.
//
//	go test ./ingester -run '^$' -bench Writer -benchtime 20x

const benchRows = 100_000

func benchPackets(b testing.TB) []record.Packet {
	s := newStream("bench-host", 99)
	var out []record.Packet
	var p record.Packet
	for len(out) < benchRows {
		h, samples, err := record.ParseFrame(s.frame(500))
		if err != nil {
			b.Fatal(err)
		}
		record.Frame(h, samples, &p, func(p *record.Packet) error { out = append(out, *p); return nil })
	}
	return out
}

// dropViews detaches the rollups (materialized views on packets, schema/migrations/01xx) so a
// benchmark measures the writer and the packets table alone.
func dropViews(b *testing.B, conn driver.Conn, db string) {
	var views []struct {
		Name string `ch:"name"`
	}
	if err := conn.Select(context.Background(), &views, "SELECT name FROM system.tables WHERE database = ? AND engine = 'MaterializedView'", db); err != nil {
		b.Fatal(err)
	}
	for _, v := range views {
		if err := conn.Exec(context.Background(), "DROP VIEW "+db+"."+v.Name+" SYNC"); err != nil {
			b.Fatal(err)
		}
	}
}

func benchWriter(b *testing.B, writer string, rollups bool) {
	_, _, _, db := names("bench")
	cfg := testConfig(sharedCH, "t", "", "g", db, writer)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ing, err := New(cfg, Dependencies{Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	defer ing.Stop()
	if err := ing.migrate(ctx); err != nil {
		b.Fatal(err)
	}
	// Background merges would bill one writer for the other's parts: off for the comparison.
	conn := chConn(b, sharedCH.TCPAddr())
	if err := conn.Exec(ctx, "SYSTEM STOP MERGES "+db+".packets"); err != nil {
		b.Fatal(err)
	}
	if !rollups {
		dropViews(b, conn, db)
	}
	pkts := benchPackets(b)
	batch := ing.writer.NewBatch()
	insert := func(i int) {
		batch.Append(pkts)
		if err := ing.writer.Insert(ctx, batch, fmt.Sprintf("bench/%d", i)); err != nil {
			b.Fatal(err)
		}
		batch.Reset()
	}
	insert(-1) // warm up connections and allocator
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		insert(i)
	}
	b.ReportMetric(float64(b.N*benchRows)/time.Since(start).Seconds(), "rows/s")
	b.StopTimer()
	if n := queryCount(b, conn, "SELECT count() FROM "+db+".packets"); n != uint64((b.N+1)*benchRows) {
		b.Fatalf("%d rows stored, want %d", n, (b.N+1)*benchRows)
	}
	dropDatabase(b, conn, db)
}

func dropDatabase(b *testing.B, conn driver.Conn, db string) {
	if err := conn.Exec(context.Background(), "DROP DATABASE "+db+" SYNC"); err != nil {
		b.Fatal(err)
	}
}

// Each writer into packets alone, and with the rollup views the migrations attach to it.
func BenchmarkWriterArrowHTTP(b *testing.B) {
	b.Run("packets", func(b *testing.B) { benchWriter(b, WriterArrowHTTP, false) })
	b.Run("with-rollups", func(b *testing.B) { benchWriter(b, WriterArrowHTTP, true) })
}

func BenchmarkWriterNative(b *testing.B) {
	b.Run("packets", func(b *testing.B) { benchWriter(b, WriterNative, false) })
	b.Run("with-rollups", func(b *testing.B) { benchWriter(b, WriterNative, true) })
}

// BenchmarkIngest is the whole path on a backlog: 400k packets waiting in 4 partitions,
// consumed, decoded, inserted and committed by one ingester with the given writer, timed from
// the first rows seen in ClickHouse (those are not counted). Each iteration is a fresh topic
// and database.
func BenchmarkIngestArrowHTTP(b *testing.B) { benchIngest(b, WriterArrowHTTP) }
func BenchmarkIngestNative(b *testing.B)    { benchIngest(b, WriterNative) }

func benchIngest(b *testing.B, writer string) {
	const frames, perFrame, collectors = 200, 500, 4
	var elapsed time.Duration
	var timedRows uint64
	for range b.N {
		topic, stats, group, db := names("benchingest")
		createTopic(b, topic, 4)
		createTopic(b, stats, 1)
		cl := producer(b)
		for c := range collectors {
			s := newStream(fmt.Sprintf("host-%d", c), uint64(c))
			var fs [][]byte
			for range frames {
				fs = append(fs, s.frame(perFrame))
			}
			produce(b, cl, topic, s.host, fs...)
		}
		cfg := testConfig(sharedCH, topic, stats, group, db, writer)
		cfg.FlushRows = DefaultConfig().FlushRows
		conn := chConn(b, sharedCH.TCPAddr())
		ing := startIngester(b, cfg)
		// Timed from the first insert on: joining the group is not throughput.
		var first uint64
		for first == 0 {
			time.Sleep(5 * time.Millisecond)
			first = packetCounts(b, conn, db).Rows
		}
		start := time.Now()
		waitPackets(b, conn, db, frames*perFrame*collectors, 5*time.Minute)
		elapsed += time.Since(start)
		timedRows += frames*perFrame*collectors - first
		ing.Stop()
		dropDatabase(b, conn, db) // its merges would run into the next iteration
	}
	b.ReportMetric(float64(timedRows)/elapsed.Seconds(), "rows/s")
}

// The client side alone: appending 100k packets to a batch (and, for Arrow, encoding the IPC
// stream), no ClickHouse involved.
func BenchmarkAppendArrow(b *testing.B) {
	cfg := DefaultConfig()
	cfg.ClickHouse.HTTPAddr, cfg.ClickHouse.Database = "x", "exp"
	w, _ := newArrowHTTPWriter(cfg)
	pkts := benchPackets(b)
	batch := w.NewBatch().(*arrowBatch)
	b.ResetTimer()
	for range b.N {
		batch.Append(pkts)
		batch.seal()
		batch.Reset()
	}
}

func BenchmarkAppendNative(b *testing.B) {
	w := &nativeWriter{}
	w.cols, _ = packetColumns()
	pkts := benchPackets(b)
	batch := w.NewBatch()
	b.ResetTimer()
	for range b.N {
		batch.Append(pkts)
		batch.Reset()
	}
}
