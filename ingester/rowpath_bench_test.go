package ingester

import (
	"encoding/hex"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/internal/testkit/benchmix"
	"github.com/packetlake/packetlake/record"
	"github.com/packetlake/packetlake/schema"
)

// BenchmarkRowPath is the ingester's own Go work per row, without Kafka or ClickHouse: frames as
// collectors produce them go through the packet sink exactly as a partition worker hands them
// over (ParseFrame, decode, L7, Arrow append) and every 100k rows the batch is sealed (the IPC
// encoding an insert sends). One op is one row, so -benchmem's B/op and allocs/op are per row.
//
//	go test ./ingester -run '^$' -bench RowPath -benchtime 2s -benchmem
//
// Mixes: "bench" is test/bench's BenchmarkIngestVsKafkaEngine traffic (benchmix: mostly TCP/443
// without payload, a tenth IPv6, a tenth DNS queries, some HTTP requests), 1000 packets a
// frame; "synth" the ingester tests' (a third HTTP, a fifth IPv6), 500 a frame; "l7" real
// payloads on every packet (record/l7/testdata/payloads.tsv: DNS queries and responses, TLS
// ClientHellos, HTTP requests), the L7 step's worst case.
func BenchmarkRowPath(b *testing.B) {
	for _, m := range []struct {
		name   string
		frames func(b *testing.B) []*kgo.Record
	}{{"bench", benchMixFrames}, {"synth", synthMixFrames}, {"l7", l7MixFrames}} {
		b.Run(m.name, func(b *testing.B) {
			recs := m.frames(b)
			cfg := DefaultConfig()
			cfg.ClickHouse.HTTPAddr, cfg.ClickHouse.Database = "x", "exp" // never dialled
			w, err := newArrowHTTPWriter(cfg)
			if err != nil {
				b.Fatal(err)
			}
			s := newPacketSink(w, func(int) {})
			batch := s.batch.(*arrowBatch)
			b.ReportAllocs()
			b.ResetTimer()
			// b.N rows, rounded up to whole frames: at the b.N the benchmark settles on (millions)
			// the part frame it overshoots by is noise.
			for rows, i := 0, 0; rows < b.N; i++ {
				n, err := s.add(recs[i%len(recs)])
				if err != nil {
					b.Fatal(err)
				}
				rows += n
				if s.len() >= benchRows {
					if err := batch.seal(); err != nil {
						b.Fatal(err)
					}
					s.reset()
				}
			}
		})
	}
}

// frameRecords packs n packets made by sample into Kafka records of perFrame packets each.
func frameRecords(n, perFrame int, sample func(b []byte, seq uint64) []byte) []*kgo.Record {
	var fb record.FrameBuilder
	var buf []byte
	var out []*kgo.Record
	for seq := 0; seq < n; {
		fb.Reset(record.FrameHeader{CollectorID: 1000, FirstSeq: uint64(seq), ClockOffset: wallBase, Host: "node-0", Iface: "eth0"})
		for j := 0; j < perFrame && seq < n; j, seq = j+1, seq+1 {
			buf = sample(buf[:0], uint64(seq))
			fb.Append(buf)
		}
		out = append(out, &kgo.Record{Value: append([]byte(nil), fb.Bytes()...)})
	}
	return out
}

func benchMixFrames(*testing.B) []*kgo.Record {
	return frameRecords(200_000, 1000, benchmix.AppendSample)
}

func synthMixFrames(*testing.B) []*kgo.Record {
	return frameRecords(200_000, 500, appendSample)
}

// l7MixFrames: every packet carries one of the real payloads, in turn.
func l7MixFrames(b *testing.B) []*kgo.Record {
	data, err := os.ReadFile("../record/l7/testdata/payloads.tsv")
	if err != nil {
		b.Fatal(err)
	}
	type payload struct {
		kind, proto uint8
		port        uint16
		bytes       []byte
	}
	var ps []payload
	for line := range strings.Lines(string(data)) {
		c := strings.Split(strings.TrimSpace(line), "\t")
		if strings.HasPrefix(c[0], "#") || len(c) != 3 {
			continue
		}
		raw, err := hex.DecodeString(c[2])
		if err != nil {
			b.Fatal(err)
		}
		p := payload{proto: 6, bytes: raw}
		switch {
		case c[0] == "dns_tcp_response":
			p.kind, p.port = schema.L7DNS, 53
		case strings.HasPrefix(c[0], "dns_"):
			p.kind, p.proto, p.port = schema.L7DNS, 17, 53
		case strings.HasPrefix(c[0], "tls_"):
			p.kind, p.port = schema.L7TLS, 443
		case strings.HasPrefix(c[0], "http_"):
			p.kind, p.port = schema.L7HTTP, 80
		default:
			b.Fatalf("payload %s: no kind", c[0])
		}
		ps = append(ps, p)
	}
	if len(ps) == 0 {
		b.Fatal("no payloads")
	}
	return frameRecords(100_000, 1000, func(buf []byte, seq uint64) []byte {
		pl := ps[seq%uint64(len(ps))]
		p := record.Packet{
			Ifindex: 2, EthType: 0x0800, IPVersion: 4, IPProto: pl.proto, TTL: 64,
			SrcPort: 1024 + uint16(seq%50000), DstPort: pl.port, SampleRate: 1,
			PayloadLen: uint16(len(pl.bytes)), PktLen: 54 + uint32(len(pl.bytes)),
		}
		p.SrcAddr = netip.AddrFrom4([4]byte{10, 2, byte(seq >> 8), byte(seq)}).As16()
		p.DstAddr = netip.AddrFrom4([4]byte{192, 168, 1, 1}).As16()
		return record.AppendKernel(buf, &p, seq*10_000, pl.kind, pl.bytes)
	})
}
