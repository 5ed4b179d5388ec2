package bench

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"strings"

	"github.com/packetlake/packetlake/internal/testkit/benchmix"
	"github.com/packetlake/packetlake/record"
	"github.com/packetlake/packetlake/schema"
)

// The traffic is benchmix's (internal/testkit/benchmix), shared with ingester's BenchmarkRowPath.

func dnsQuery(id uint16, name string) []byte { return benchmix.DNSQuery(id, name) }

func appendSample(b []byte, seq uint64) []byte { return benchmix.AppendSample(b, seq) }

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
