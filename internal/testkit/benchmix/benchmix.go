// Package benchmix is the synthetic traffic of the ingester's benchmarks: test/bench's
// BenchmarkIngestVsKafkaEngine (through ClickHouse) and ingester's BenchmarkRowPath (Go alone)
// must decode the same packets, or their per-row costs cannot be compared.
package benchmix

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"github.com/packetlake/packetlake/record"
	"github.com/packetlake/packetlake/schema"
)

// Synthetic but realistic traffic: nFlows conversations (a few thousand 5-tuples, as on a
// server's uplink), mostly TCP with some HTTP request snippets, DNS queries over UDP with real
// query bytes, a tenth IPv6; 10 µs between packets.
const nFlows = 3000

func mix(x uint64) uint64 { // splitmix64
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// DNSQuery is a real DNS query message (RD set, one A question) for name.
func DNSQuery(id uint16, name string) []byte {
	b := binary.BigEndian.AppendUint16(nil, id)
	b = append(b, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0) // RD, 1 question
	for _, l := range strings.Split(name, ".") {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	return append(b, 0, 0, 1, 0, 1)
}

// AppendSample appends the pl_record sample of packet seq.
func AppendSample(b []byte, seq uint64) []byte {
	// Zipf-like: a few flows carry most packets.
	r := mix(seq)
	flow := (r % nFlows) * (r >> 32 % nFlows) / nFlows
	f, h := mix(flow), mix(seq^0x5bd1e995)
	p := record.Packet{
		Ifindex: 2, PktLen: 64 + uint32(h%1400), SrcMAC: 0x0200_0000_0000 | f&0xffff, DstMAC: 0x0200_0000_0001,
		EthType: 0x0800, IPVersion: 4, IPProto: 6, TTL: 64 - uint8(f%8), IPID: uint32(seq),
		IPFlags: 2, SrcPort: 1024 + uint16(f>>16)%60000, DstPort: 443, TCPFlags: 0x10,
		TCPSeq: uint32(seq * 1400), TCPAck: uint32(f), TCPWindow: 502, SampleRate: 1,
	}
	p.IPLen = uint16(p.PktLen - 14)
	p.PayloadLen = p.IPLen - 40
	p.SrcAddr = netip.AddrFrom4([4]byte{10, 1, byte(f >> 8), byte(f)}).As16()
	p.DstAddr = netip.AddrFrom4([4]byte{192, 168, 0, byte(f>>24) % 16}).As16()
	var kind uint8
	var snippet []byte
	switch {
	case flow%10 == 9: // IPv6
		p.EthType, p.IPVersion, p.FlowLabel = 0x86dd, 6, uint32(f)&0xfffff
		binary.BigEndian.PutUint64(p.SrcAddr[:], 0x20010db800010000)
		binary.BigEndian.PutUint64(p.SrcAddr[8:], f)
		binary.BigEndian.PutUint64(p.DstAddr[:], 0x20010db800020000)
		binary.BigEndian.PutUint64(p.DstAddr[8:], f>>24%16)
	case flow%10 == 3: // DNS
		p.IPProto, p.DstPort, p.TCPFlags, p.TCPSeq, p.TCPAck, p.TCPWindow = 17, 53, 0, 0, 0, 0
		kind, snippet = schema.L7DNS, DNSQuery(uint16(seq), fmt.Sprintf("svc%d.example.com", f%200))
		p.PktLen, p.PayloadLen = 42+uint32(len(snippet)), uint16(len(snippet))
	case flow%10 == 5 && seq%4 == 0: // HTTP requests on plain-text flows
		p.DstPort, p.TCPFlags = 80, 0x18
		kind, snippet = schema.L7HTTP, fmt.Appendf(nil, "GET /api/v1/items/%d HTTP/1.1\r\nHost: app%d.example.org\r\nUser-Agent: bench\r\n\r\n", h%1000, f%50)
	}
	return record.AppendKernel(b, &p, seq*10_000, kind, snippet)
}
