package bench

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"reflect"
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

func dnsQuery(id uint16, name string) []byte {
	b := binary.BigEndian.AppendUint16(nil, id)
	b = append(b, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0) // RD, 1 question
	for _, l := range strings.Split(name, ".") {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	return append(b, 0, 0, 1, 0, 1)
}

// appendSample appends the pl_record sample of packet seq.
func appendSample(b []byte, seq uint64) []byte {
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
		kind, snippet = schema.L7DNS, dnsQuery(uint16(seq), fmt.Sprintf("svc%d.example.com", f%200))
		p.PktLen, p.PayloadLen = 42+uint32(len(snippet)), uint16(len(snippet))
	case flow%10 == 5 && seq%4 == 0: // HTTP requests on plain-text flows
		p.DstPort, p.TCPFlags = 80, 0x18
		kind, snippet = schema.L7HTTP, fmt.Appendf(nil, "GET /api/v1/items/%d HTTP/1.1\r\nHost: app%d.example.org\r\nUser-Agent: bench\r\n\r\n", h%1000, f%50)
	}
	return record.AppendKernel(b, &p, seq*10_000, kind, snippet)
}

// frames returns n packets as frames of perFrame packets from collectors collectors (see
// encodeFrames), and the same packets decoded (the rows the ingester must store).
func frames(n, perFrame, collectors int, tsBase int64) (out [][]byte, keys []string, pkts []record.Packet) {
	var p record.Packet
	out = encodeFrames(n, perFrame, collectors, tsBase)
	for _, f := range out {
		h, samples, err := record.ParseFrame(f)
		if err != nil {
			panic(err)
		}
		if err := record.Frame(h, samples, &p, func(p *record.Packet) error { pkts = append(pkts, *p); return nil }); err != nil {
			panic(err)
		}
		keys = append(keys, h.Host)
	}
	return out, keys, pkts
}

// encodeFrames returns n packets as frames of perFrame packets, frame i from collector
// i%collectors (host node-<c>, collector id 1000+c), without decoding them: n may be millions.
func encodeFrames(n, perFrame, collectors int, tsBase int64) [][]byte {
	var fb record.FrameBuilder
	var sample []byte
	var out [][]byte
	next := make([]uint64, collectors)
	for i := 0; i < n; {
		c := (i / perFrame) % collectors
		fb.Reset(record.FrameHeader{CollectorID: uint64(1000 + c), FirstSeq: next[c], ClockOffset: tsBase,
			Host: fmt.Sprintf("node-%d", c), Iface: "eth0"})
		for j := 0; j < perFrame && i < n; j, i = j+1, i+1 {
			sample = appendSample(sample[:0], fb.NextSeq()*uint64(collectors)+uint64(c))
			fb.Append(sample)
		}
		next[c] = fb.NextSeq()
		out = append(out, append([]byte(nil), fb.Bytes()...))
	}
	return out
}

// appendRowBinary appends p in ClickHouse's RowBinary format, columns in schema order:
// integers little-endian, DateTime64 as Int64, IPv6 as 16 bytes, (LowCardinality) String as
// varint length + bytes.
func appendRowBinary(b []byte, p *record.Packet) []byte {
	v := reflect.ValueOf(p).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Int64:
			b = binary.LittleEndian.AppendUint64(b, uint64(f.Int()))
		case reflect.Uint64:
			b = binary.LittleEndian.AppendUint64(b, f.Uint())
		case reflect.Uint32:
			b = binary.LittleEndian.AppendUint32(b, uint32(f.Uint()))
		case reflect.Uint16:
			b = binary.LittleEndian.AppendUint16(b, uint16(f.Uint()))
		case reflect.Uint8:
			b = append(b, uint8(f.Uint()))
		case reflect.String:
			b = binary.AppendUvarint(b, uint64(f.Len()))
			b = append(b, f.String()...)
		case reflect.Array:
			a := f.Interface().([16]byte)
			b = append(b, a[:]...)
		default:
			panic("rowbinary: unhandled field " + v.Type().Field(i).Name)
		}
	}
	return b
}

// columnsDDL is the column list of packets, for the Kafka engine table.
func columnsDDL() string {
	parts := make([]string, len(schema.Columns))
	for i, c := range schema.Columns {
		parts[i] = c.Name + " " + c.CHType
	}
	return strings.Join(parts, ", ")
}
