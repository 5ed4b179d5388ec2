package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/record"
)

// The ground everything stands on: 100k records through the real Kafka broker with franz-go,
// decoded, inserted with clickhouse-go into the real ClickHouse and read back exactly.
func TestKafkaToClickHouseRoundTrip(t *testing.T) {
	const n = 100_000
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	topic := env.Topic(t, 3)
	db := env.Database(t)

	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Kafka.Addr()), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(kgo.Lz4Compression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var fb record.FrameBuilder
	for i := range n {
		p := synthetic(i)
		fb.Reset(record.FrameHeader{CollectorID: 42, FirstSeq: uint64(i), Host: "h", Iface: "veth0"})
		fb.Append(record.AppendKernel(nil, &p, uint64(i), 0, nil))
		cl.Produce(ctx, &kgo.Record{Key: []byte{byte(i % 7)}, Value: append([]byte(nil), fb.Bytes()...)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	consumer, err := kgo.NewClient(kgo.SeedBrokers(env.Kafka.Addr()), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	ch := env.CH(t)
	if err := ch.Exec(ctx, fmt.Sprintf(`CREATE TABLE %s.roundtrip (seq UInt64, src IPv6, dst_port UInt16, pkt_len UInt32)
		ENGINE = MergeTree ORDER BY seq`, db)); err != nil {
		t.Fatal(err)
	}
	batch, err := ch.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.roundtrip", db))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for got < n {
		fetches := consumer.PollFetches(ctx)
		if err := fetches.Err(); err != nil {
			t.Fatalf("poll after %d records: %v", got, err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			h, samples, err := record.ParseFrame(r.Value)
			if err != nil {
				t.Fatalf("offset %d: %v", r.Offset, err)
			}
			var p record.Packet
			err = record.Frame(h, samples, &p, func(p *record.Packet) error {
				return batch.Append(p.Seq, p.Src(), p.DstPort, p.PktLen)
			})
			if err != nil {
				t.Fatal(err)
			}
			got++
		})
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}

	var count, distinct, sumLen uint64
	row := ch.QueryRow(ctx, fmt.Sprintf("SELECT count(), uniqExact(seq), sum(pkt_len) FROM %s.roundtrip", db))
	if err := row.Scan(&count, &distinct, &sumLen); err != nil {
		t.Fatal(err)
	}
	var wantLen uint64
	for i := range n {
		wantLen += uint64(synthetic(i).PktLen)
	}
	if count != n || distinct != n || sumLen != wantLen {
		t.Fatalf("count %d distinct %d sum(pkt_len) %d; want %d %d %d", count, distinct, sumLen, n, n, wantLen)
	}
	for _, i := range []int{0, 1, 4242, n - 1} {
		var src netip.Addr
		var port uint16
		var plen uint32
		if err := ch.QueryRow(ctx, fmt.Sprintf("SELECT src, dst_port, pkt_len FROM %s.roundtrip WHERE seq = %d", db, i)).Scan(&src, &port, &plen); err != nil {
			t.Fatal(err)
		}
		want := synthetic(i)
		if src.Unmap() != want.Src() || port != want.DstPort || plen != want.PktLen {
			t.Errorf("seq %d: %s %d %d; want %s %d %d", i, src, port, plen, want.Src(), want.DstPort, want.PktLen)
		}
	}
}

func synthetic(i int) record.Packet {
	p := record.Packet{PktLen: uint32(64 + i%1400), DstPort: uint16(i % 65536), IPVersion: 4, IPProto: 6, SampleRate: 1}
	p.SrcAddr = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).As16()
	return p
}
