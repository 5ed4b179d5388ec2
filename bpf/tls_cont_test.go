package bpf

import (
	"bytes"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/packetlake/packetlake/record"
	"github.com/packetlake/packetlake/schema"
)

// tlsRecord is a handshake record of n bytes in all (header included) starting like a
// ClientHello; the kernel only reads its header.
func tlsRecord(n int) []byte {
	body := cat([]byte{0x01, 0, byte((n - 9) >> 8), byte(n - 9)}, fill(n-9, 11))
	return cat([]byte{0x16, 0x03, 0x01, byte((n - 5) >> 8), byte(n - 5)}, body)
}

// tlsSegment is one TCP segment of flow sport -> 443 with seq and payload.
func tlsSegment(sport uint16, seq uint32, pl []byte) []byte {
	return cat(ether(0x0800), ip4{ttl: 64, proto: ipProto.TCP}.build(tcp{sport: sport, dport: 443, seq: seq, flags: 0x018}.build(pl)))
}

func statDelta(t *testing.T, e *env, before []uint64, idx int) uint64 {
	t.Helper()
	now, err := e.o.ReadStats()
	if err != nil {
		t.Fatal(err)
	}
	return now[idx] - before[idx]
}

// TestTLSContinuation: a ClientHello record longer than its segment makes the kernel copy the
// segments that carry its rest (l7_kind tls_cont), in order or not, through XDP and TC; nothing
// outside the missing range is copied (a retransmitted first segment is a TLS segment again, the
// data after the record is nothing), and a flow whose rest comes after the deadline is dropped
// (tracked - done counts what was given up).
func TestTLSContinuation(t *testing.T) {
	e := newEnv(t, Config{})
	var isn uint32 = 0xfffffc00 // the record's bytes wrap the sequence space
	rec := tlsRecord(2600)
	segs := [][]byte{rec[:1400], rec[1400:2000], rec[2000:]}
	seqs := []uint32{isn, isn + 1400, isn + 2000}
	before, err := e.o.ReadStats()
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, d decoded, kind uint8, want []byte) {
		t.Helper()
		if d.k.L7Kind != kind || !bytes.Equal(d.k.Snippet, want) {
			t.Fatalf("%s: l7_kind %d with %d snippet bytes, want kind %d with %d", what, d.k.L7Kind, len(d.k.Snippet), kind, len(want))
		}
	}
	for _, tc := range []bool{false, true} {
		sport := uint16(41000)
		if tc {
			sport++
		}
		// In order: the first segment whole (1400 bytes, beyond SnippetHeadMax), then the rest.
		check("first", e.run(t, tlsSegment(sport, seqs[0], segs[0]), tc), schema.L7TLS, segs[0])
		check("second", e.run(t, tlsSegment(sport, seqs[1], segs[1]), tc), schema.L7TLSCont, segs[1])
		check("third", e.run(t, tlsSegment(sport, seqs[2], segs[2]), tc), schema.L7TLSCont, segs[2])
		// Complete: the flow is forgotten, a retransmitted last piece is not copied again.
		check("after", e.run(t, tlsSegment(sport, seqs[2], segs[2]), tc), schema.L7None, nil)
	}
	// Both flows completed: their gate slots are shut again, so other packets skip the lookup.
	for i := range e.o.objs.PlTlsContUntil.MaxEntries() {
		var until uint64
		if err := e.o.objs.PlTlsContUntil.Lookup(i, &until); err != nil || until != 0 {
			t.Fatalf("gate slot %d holds %d (%v) after every remembered flow completed", i, until, err)
		}
	}
	// Out of order, with a retransmission of the first segment in between; then data past the record.
	sport := uint16(41010)
	check("first", e.run(t, tlsSegment(sport, seqs[0], segs[0]), false), schema.L7TLS, segs[0])
	check("third early", e.run(t, tlsSegment(sport, seqs[2], segs[2]), false), schema.L7TLSCont, segs[2])
	check("first again", e.run(t, tlsSegment(sport, seqs[0], segs[0]), false), schema.L7TLS, segs[0])
	check("second late", e.run(t, tlsSegment(sport, seqs[1], segs[1]), false), schema.L7TLSCont, segs[1])
	check("past the record", e.run(t, tlsSegment(sport, isn+2600, fill(300, 1)), false), schema.L7None, nil)
	// The other direction and another flow are not the remembered flow.
	other := cat(ether(0x0800), ip4{ttl: 64, proto: ipProto.TCP}.build(tcp{sport: 443, dport: sport, seq: seqs[1], flags: 0x018}.build(segs[1])))
	check("reverse direction", e.run(t, other, false), schema.L7None, nil)

	if got := statDelta(t, e, before, record.StatTlsContTracked); got != 3 {
		t.Errorf("tls_cont_tracked moved by %d, want 3 (a retransmitted first segment renews, not counted)", got)
	}
	if got := statDelta(t, e, before, record.StatTlsContCopied); got != 6 {
		t.Errorf("tls_cont_copied moved by %d, want 6", got)
	}
	if got := statDelta(t, e, before, record.StatTlsContDone); got != 2 {
		t.Errorf("tls_cont_done moved by %d, want 2 (the in-order flows; the other one's range stays open)", got)
	}
	if got := statDelta(t, e, before, record.StatTlsContOutside); got != 1 {
		t.Errorf("tls_cont_outside moved by %d, want 1 (the data past the record)", got)
	}

	// Expiry: the rest comes after the deadline (PL_TLS_CONT_NS, 1 s of the kernel's monotonic clock).
	sport = 41020
	d := e.run(t, tlsSegment(sport, seqs[0], segs[0]), false)
	check("first", d, schema.L7TLS, segs[0])
	for {
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
			t.Fatal(err)
		}
		if uint64(ts.Nano()) > d.k.TSNanos+1_000_000_000 {
			break
		}
		// Another flow's packets meanwhile: they must stay uncopied.
		check("unrelated", e.run(t, tlsSegment(sport+1, seqs[1], segs[1]), false), schema.L7None, nil)
	}
	check("second, too late", e.run(t, tlsSegment(sport, seqs[1], segs[1]), false), schema.L7None, nil)
	// Late, while another flow is remembered: still not copied.
	sport = 41030
	check("first", e.run(t, tlsSegment(sport, seqs[0], segs[0]), false), schema.L7TLS, segs[0])
	check("second, too late, gate open", e.run(t, tlsSegment(41020, seqs[1], segs[1]), false), schema.L7None, nil)
	if got, want := statDelta(t, e, before, record.StatTlsContTracked)-statDelta(t, e, before, record.StatTlsContDone), uint64(3); got != want {
		t.Errorf("tracked - done = %d, want %d (out of order, expired, waiting)", got, want)
	}
}

// BenchmarkTLSContGate measures what tls_cont.h adds to a TCP segment whose payload classifies
// as nothing (the packets that pay for it), side by side in alternating passes: gate_shut (no
// remembered flow in its gate slot: one array read), gate_open_miss (its slot open for another
// flow: plus an LRU hash lookup), outside (this flow remembered, the segment outside the
// missing bytes: plus a counter), copied (a continuation: plus the 256-byte copy). Reports the
// median ns/packet of each (BPF_PROG_TEST_RUN's own timing) and each one's ratio to gate_shut.
func BenchmarkTLSContGate(b *testing.B) {
	e := newEnv(b, Config{RingBytes: benchRing})
	const seq = 1_000_000
	frame := cat(ether(0x0800), ip4{ttl: 64, proto: ipProto.TCP}.build(tcp{sport: 40000, dport: 8080, seq: seq, flags: 0x018}.build(fill(256, 0x41))))
	d := e.run(b, frame, false)
	if d.k.L7Kind != schema.L7None {
		b.Fatalf("the data segment classifies as %d", d.k.L7Kind)
	}
	key := plPlTlsContKey{SrcAddr: d.p.SrcAddr, DstAddr: d.p.DstAddr, SrcPort: 40000, DstPort: 8080}
	setGate := func(until uint64) { // every slot: this flow's among them
		for i := range e.o.objs.PlTlsContUntil.MaxEntries() {
			if err := e.o.objs.PlTlsContUntil.Put(i, until); err != nil {
				b.Fatal(err)
			}
		}
	}
	states := []struct {
		name string
		set  func()
	}{
		{"gate_shut", func() { setGate(0); e.o.objs.PlTlsCont.Delete(key) }},
		{"gate_open_miss", func() { setGate(^uint64(0)); e.o.objs.PlTlsCont.Delete(key) }},
		{"outside", func() {
			setGate(^uint64(0))
			if err := e.o.objs.PlTlsCont.Put(key, plPlTlsCont{Deadline: ^uint64(0), Start: seq + 100_000, Left: 10}); err != nil {
				b.Fatal(err)
			}
		}},
		{"copied", func() { // d = 1: copied, the range not moved
			setGate(^uint64(0))
			if err := e.o.objs.PlTlsCont.Put(key, plPlTlsCont{Deadline: ^uint64(0), Start: seq - 1, Left: 1 << 20}); err != nil {
				b.Fatal(err)
			}
		}},
	}
	const runs, passes = 65536, 9
	per := make([][]float64, len(states))
	for range b.N {
		for pass := range passes {
			for i := range states {
				s := states[(i+pass)%len(states)] // rotate who goes first
				s.set()
				_, dur, err := e.o.xdpProg().Benchmark(frame, runs, nil)
				if err != nil {
					b.Fatal(err)
				}
				per[(i+pass)%len(states)] = append(per[(i+pass)%len(states)], float64(dur.Nanoseconds()))
				e.drainSamples(b)
			}
		}
	}
	med := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	shut := med(per[0])
	for i, s := range states {
		m := med(per[i])
		b.ReportMetric(m, s.name+"-ns/pkt")
		if i > 0 {
			b.ReportMetric(m/shut, s.name+"/shut")
		}
	}
}

// TestTLSContinuationOff: with Config.NoTLSCont the rest of a record is not copied and no flow
// is remembered.
func TestTLSContinuationOff(t *testing.T) {
	e := newEnv(t, Config{NoTLSCont: true})
	rec := tlsRecord(2600)
	before, err := e.o.ReadStats()
	if err != nil {
		t.Fatal(err)
	}
	if d := e.run(t, tlsSegment(42000, 1000, rec[:1400]), false); d.k.L7Kind != schema.L7TLS || !bytes.Equal(d.k.Snippet, rec[:1400]) {
		t.Fatalf("first segment: kind %d, %d snippet bytes", d.k.L7Kind, len(d.k.Snippet))
	}
	if d := e.run(t, tlsSegment(42000, 2400, rec[1400:]), false); d.k.L7Kind != schema.L7None || len(d.k.Snippet) != 0 {
		t.Errorf("rest: kind %d with %d snippet bytes, want nothing copied", d.k.L7Kind, len(d.k.Snippet))
	}
	if got := statDelta(t, e, before, record.StatTlsContTracked); got != 0 {
		t.Errorf("tls_cont_tracked moved by %d, want 0", got)
	}
}
