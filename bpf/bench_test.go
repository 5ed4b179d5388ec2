package bpf

import (
	"bytes"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/packetlake/packetlake/nettest"
	"github.com/packetlake/packetlake/record"
	"github.com/packetlake/packetlake/schema"
)

const benchRing = 64 << 20

type benchPacket struct {
	name  string
	frame []byte
}

// benchPackets: hand-built SYN, DNS and VLAN frames; a real TLS ClientHello and HTTP GET.
func benchPackets(b *testing.B, e *env) []benchPacket {
	cases := map[string][]byte{}
	for _, c := range parseCases() {
		cases[c.name] = c.frame
	}
	vlanSyn := cat(ether(0x0800, tag{0x8100, 100}), ip4{ttl: 64, proto: ipProto.TCP, flags: 2}.build(
		tcp{sport: 40000, dport: 443, flags: 0x002, win: 64240, opts: synOpts}.build(nil)))
	pick := func(path string, ok func(decoded) bool) []byte {
		fr, _, err := nettest.ReadPcap(pcapDir + "/" + path)
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range fr {
			if ok(e.run(b, f.Data, false)) {
				return f.Data
			}
		}
		b.Fatalf("%s: no frame fits", path)
		return nil
	}
	hello := pick("ja4/tls-sni.pcapng", func(d decoded) bool {
		return d.k.L7Kind == schema.L7TLS && len(d.k.Snippet) > 5 && d.k.Snippet[5] == 1
	})
	get := pick("ja4/single-packets.pcap", func(d decoded) bool {
		return d.k.L7Kind == schema.L7HTTP && bytes.HasPrefix(d.k.Snippet, []byte("GET "))
	})
	return []benchPacket{
		{"tcp_syn", cases["ipv4_tcp_syn"]},
		{"dns_query", cases["ipv4_udp_dns"]},
		{"dns_ipv6", cases["ipv6_udp_dns"]},
		{"vlan_tcp_syn", vlanSyn},
		{"tls_client_hello", hello},
		{"http_get", get},
	}
}

// BenchmarkParser measures ns/packet with BPF_PROG_TEST_RUN (repeat), the kernel's own timing,
// for the XDP parser and for an empty XDP program from the same object. The ring is drained
// between batches with the timer stopped, so every record is really written (ring_full stays 0,
// checked) and the reader's cost on another CPU is not part of the number.
func BenchmarkParser(b *testing.B) {
	e := newEnv(b, Config{RingBytes: benchRing})
	for _, p := range benchPackets(b, e) {
		for _, prog := range []struct {
			name string
			p    *ebpf.Program
		}{{"empty", e.o.objs.PlXdpPass}, {"parser", e.o.objs.PlXdp}} {
			b.Run(p.name+"/"+prog.name, func(b *testing.B) {
				before := readStatsB(b, e)
				// Records per batch: half the ring, at the largest record size.
				batch := benchRing / 2 / (record.KernelRecordSize + schema.SnippetMax + 8)
				var total time.Duration
				b.ResetTimer()
				for done := 0; done < b.N; {
					n := min(batch, b.N-done)
					ret, per, err := prog.p.Benchmark(p.frame, n, nil)
					if err != nil || ret != xdpPass {
						b.Fatalf("benchmark: %d, %v", ret, err)
					}
					total += per * time.Duration(n)
					done += n
					b.StopTimer()
					e.drain(b)
					b.StartTimer()
				}
				b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/op")
				after := readStatsB(b, e)
				if full := after[record.StatRingFull] - before[record.StatRingFull]; full != 0 {
					b.Fatalf("%d records lost to a full ring: the number would be wrong", full)
				}
			})
		}
	}
}

func readStatsB(b *testing.B, e *env) []uint64 {
	s, err := e.o.ReadStats()
	if err != nil {
		b.Fatal(err)
	}
	return s
}
