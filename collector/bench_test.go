package collector

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/packetlake/packetlake/bpf"
	"github.com/packetlake/packetlake/record"
)

// BenchmarkDrain measures the collector's user-space path alone: a ring pre-filled by the real
// program (BPF_PROG_TEST_RUN, untimed) is read, framed and produced to kfake (in-process, on
// the same 2 cores), and the clock stops when Kafka has acknowledged every frame of the chunk. Run with a fixed count, e.g.
//
//	go test ./collector -run '^$' -bench Drain -benchtime 2000000x
func BenchmarkDrain(b *testing.B) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "packets", "packetlake-stats"))
	if err != nil {
		b.Fatal(err)
	}
	defer kc.Close()
	cfg := testConfig(kc.ListenAddrs()[0])
	cfg.RingBytes = 64 << 20
	cfg.MaxBufferedBytes = 256 << 20 // measure the path, not shedding
	c, err := New(cfg, Dependencies{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Stop()
	objs, err := bpf.Load(bpf.Config{RingBytes: cfg.RingBytes})
	if err != nil {
		b.Fatal(err)
	}
	c.objs = objs // released by Stop
	rd, err := bpf.NewRing(objs.Events())
	if err != nil {
		b.Fatal(err)
	}
	c.rd = rd
	f := c.newFramer()
	pkts, _ := capturePackets(b, "tcpdump/dns_udp.pcap")
	// A snippet is at most the packet: bound a sample (ring header, record, snippet, 8-byte
	// alignment) by the biggest packet so a chunk never overflows the ring.
	biggest := 0
	for _, p := range pkts {
		biggest = max(biggest, len(p))
	}
	sampleBytes := (8 + record.KernelRecordSize + biggest + 7) &^ 7
	chunk := cfg.RingBytes / sampleBytes * 9 / 10
	c.stopping.Store(true) // drain returns once it has read the flush

	b.ResetTimer()
	b.StopTimer()
	for done := 0; done < b.N; {
		n := min(chunk, b.N-done)
		inject(b, c, pkts, n)
		b.StartTimer()
		if err := rd.Flush(); err != nil {
			b.Fatal(err)
		}
		if err := c.drain(rd, f); err != nil {
			b.Fatal(err)
		}
		// Wait for the acks inside the timed window: the client compresses and sends in its
		// own goroutines, which must not get the untimed injection time for free.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := c.prod.flush(ctx)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		done += n
	}

	s := c.Stats()
	if s.SamplesRead != uint64(b.N) || s.RecordsAcked != uint64(b.N) || s.KernelRingFull != 0 {
		b.Fatalf("read %d acked %d ring_full %d of %d", s.SamplesRead, s.RecordsAcked, s.KernelRingFull, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(b.N)/float64(s.FramesAcked), "records/frame")
}
