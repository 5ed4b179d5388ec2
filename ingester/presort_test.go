package ingester

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"

	"github.com/packetlake/packetlake/record"
)

// TestPresortedBatch: a presorted batch, read back by Arrow's own IPC reader, is in packets'
// ORDER BY order (UTC hour of ts, dst_addr, src_addr, ts) and every row is still the packet it
// was (each column checked against the packet with its seq); a second batch of the same packets
// encodes byte for byte the same (a replay sends what the first attempt sent).
func TestPresortedBatch(t *testing.T) {
	cols, err := packetColumns()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ArrowSchema()
	if err != nil {
		t.Fatal(err)
	}
	order, err := newSortOrder(cols)
	if err != nil {
		t.Fatal(err)
	}
	w := &arrowHTTPWriter{schema: sc, cols: cols, order: order}
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 5000
	pkts := make([]record.Packet, n)
	base := int64(1_764_000_000) * 1e9
	for i := range pkts {
		p := &pkts[i]
		p.Seq = uint64(i)
		p.TS = base + rng.Int64N(3*3600*1e9) // three hours: the hour leads the key
		p.DstAddr[15], p.SrcAddr[15] = byte(rng.IntN(4)), byte(rng.IntN(4))
		p.DstAddr[0] = byte(rng.IntN(2))
		p.Host = fmt.Sprintf("node-%d", rng.IntN(3))
		if i%3 == 0 {
			p.HTTPHost = fmt.Sprintf("h%d.example", i)
		}
		p.PktLen, p.IPProto, p.DstPort, p.CollectorID = uint32(i*7), uint8(i), uint16(i*3), uint64(i*11)
		if i%500 == 0 && i > 0 { // equal keys: the batch order must decide
			pkts[i-1].TS, pkts[i-1].DstAddr, pkts[i-1].SrcAddr = p.TS, p.DstAddr, p.SrcAddr
		}
	}
	encode := func() []byte {
		b := w.NewBatch().(*arrowBatch)
		for i := range pkts {
			b.Append(&pkts[i])
		}
		if err := b.seal(); err != nil {
			t.Fatal(err)
		}
		return bytes.Clone(b.body.Bytes())
	}
	body := encode()
	if again := encode(); !bytes.Equal(body, again) {
		t.Fatal("the same packets encoded twice differ")
	}

	r, err := ipc.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	rows := 0
	var prev sortKey
	for r.Next() {
		rec := r.Record()
		idx := func(name string) int {
			is := rec.Schema().FieldIndices(name)
			if len(is) != 1 {
				t.Fatalf("column %s: %v", name, is)
			}
			return is[0]
		}
		ts := rec.Column(idx("ts")).(*array.Timestamp)
		seq := rec.Column(idx("seq")).(*array.Uint64)
		dst := rec.Column(idx("dst_addr")).(*array.FixedSizeBinary)
		src := rec.Column(idx("src_addr")).(*array.FixedSizeBinary)
		host := rec.Column(idx("host")).(*array.String)
		httpHost := rec.Column(idx("http_host")).(*array.String)
		pktLen := rec.Column(idx("pkt_len")).(*array.Uint32)
		proto := rec.Column(idx("ip_proto")).(*array.Uint8)
		port := rec.Column(idx("dst_port")).(*array.Uint16)
		cid := rec.Column(idx("collector_id")).(*array.Uint64)
		for i := range int(rec.NumRows()) {
			s := seq.Value(i)
			if s >= n {
				t.Fatalf("row %d: seq %d out of range", rows, s)
			}
			p := &pkts[s]
			d, sr := [16]byte(dst.Value(i)), [16]byte(src.Value(i))
			k := keyOf(uint64(ts.Value(i)), &d, &sr, int(s))
			if rows > 0 && compareKeys(prev, k) >= 0 {
				t.Fatalf("row %d (seq %d) is not after row %d (seq %d) in ORDER BY order", rows, s, rows-1, prev.row)
			}
			prev = k
			if int64(ts.Value(i)) != p.TS || [16]byte(dst.Value(i)) != p.DstAddr || [16]byte(src.Value(i)) != p.SrcAddr ||
				host.Value(i) != p.Host || httpHost.Value(i) != p.HTTPHost || pktLen.Value(i) != p.PktLen ||
				proto.Value(i) != p.IPProto || port.Value(i) != p.DstPort || cid.Value(i) != p.CollectorID {
				t.Fatalf("row %d (seq %d) is not the packet with that seq", rows, s)
			}
			rows++
		}
	}
	if rows != n {
		t.Fatalf("%d rows read back, want %d", rows, n)
	}
}

// BenchmarkPresort: sorting a 100k-row batch of the ingest benchmark's kind of traffic (a few
// thousand conversations, interleaved in time) and permuting its columns, per row.
func BenchmarkPresort(b *testing.B) {
	cols, err := packetColumns()
	if err != nil {
		b.Fatal(err)
	}
	order, err := newSortOrder(cols)
	if err != nil {
		b.Fatal(err)
	}
	w := &arrowHTTPWriter{cols: cols, order: order}
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 100_000
	pkts := make([]record.Packet, n)
	for i := range pkts {
		p := &pkts[i]
		flow := rng.IntN(3000)
		p.TS, p.Seq = int64(1_764_000_000)*1e9+int64(i)*10_000, uint64(i)
		p.SrcAddr[10], p.SrcAddr[11], p.SrcAddr[15] = 0xff, 0xff, byte(flow)
		p.DstAddr[10], p.DstAddr[11], p.DstAddr[14], p.DstAddr[15] = 0xff, 0xff, byte(flow>>8), byte(flow%7)
		p.Host, p.Iface = "node-1", "eth0"
		if flow%10 == 5 {
			p.HTTPHost = fmt.Sprintf("app%d.example.org", flow%50)
		}
	}
	batch := w.NewBatch().(*arrowBatch)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		batch.Reset()
		for i := range pkts {
			batch.Append(&pkts[i])
		}
		b.StartTimer()
		order.sort(batch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
}
