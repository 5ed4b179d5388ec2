package record

import (
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/packetlake/packetlake/record/l7"
	"github.com/packetlake/packetlake/schema"
)

// helloConn records what a TLS client writes and fails its first read: the client's first flight.
type helloConn struct {
	net.Conn
	out []byte
}

func (c *helloConn) Write(b []byte) (int, error) { c.out = append(c.out, b...); return len(b), nil }
func (c *helloConn) Read([]byte) (int, error)    { return 0, errors.New("only the hello is wanted") }
func (c *helloConn) Close() error                { return nil }
func (c *helloConn) SetDeadline(time.Time) error { return nil }

// pqHello returns the ClientHello record Go's crypto/tls sends by default (with an
// X25519MLKEM768 key share: ~1.8 KB, two segments of a 1500-byte MTU), and what parsing it in one
// piece gives.
func pqHello(t *testing.T, sni string) ([]byte, l7.ClientHello) {
	t.Helper()
	c := &helloConn{}
	_ = tls.Client(c, &tls.Config{ServerName: sni, NextProtos: []string{"h2", "http/1.1"}}).Handshake()
	if len(c.out) < 1500 || c.out[0] != 0x16 {
		t.Fatalf("Go's ClientHello is %d bytes, want a post-quantum one above 1500", len(c.out))
	}
	rec := c.out[:5+(int(c.out[3])<<8|int(c.out[4]))]
	h, err := l7.ParseClientHelloRecord(rec)
	if err != nil || h.SNI != sni || h.JA4 == "" || h.ALPN != "h2" {
		t.Fatalf("the whole hello parses to %+v, %v", h, err)
	}
	return rec, h
}

// segment is one TCP segment of a client flow (port sport) carrying pl at seq, as decoded.
func segment(sport uint16, seq uint32, ts int64, kind uint8, pl []byte) (*Packet, Kernel) {
	p := &Packet{IPProto: 6, SrcPort: sport, DstPort: 443, TCPSeq: seq, PayloadLen: uint16(len(pl)), TS: ts}
	p.SrcAddr[15], p.DstAddr[15] = 1, 2
	return p, Kernel{L7Kind: kind, Snippet: pl}
}

type seg struct {
	seq  uint32
	kind uint8
	pl   []byte
}

// splitHello cuts rec as the kernel delivers it: the first segment (TLS), the others (tls_cont).
func splitHello(isn uint32, rec []byte, cuts ...int) []seg {
	var out []seg
	from := 0
	for _, c := range append(cuts, len(rec)) {
		kind := uint8(schema.L7TLSCont)
		if from == 0 {
			kind = schema.L7TLS
		}
		out = append(out, seg{isn + uint32(from), kind, rec[from:c]})
		from = c
	}
	return out
}

// feed parses segs in order, each 1 ms after the last, and returns the packets that got an SNI.
func feed(st *L7State, sport uint16, ts int64, segs ...seg) (got []Packet) {
	for i, s := range segs {
		p, k := segment(sport, s.seq, ts+int64(i)*1e6, s.kind, s.pl)
		st.ParseL7(p, k)
		if p.TLSSNI != "" || p.TLSJA4 != "" {
			got = append(got, *p)
		}
	}
	return got
}

// TestTLSSplitHello: a post-quantum ClientHello record over two or three segments gets the SNI,
// ALPN and JA4 of the whole record, once, on the segment that completes it, whatever order the
// pieces come in and with retransmitted copies; the sequence numbers may wrap.
func TestTLSSplitHello(t *testing.T) {
	rec, want := pqHello(t, "pq.tls-reasm.example")
	const isn = 0xfffffd00
	two, three := splitHello(isn, rec, 1448), splitHello(isn, rec, 700, 1400)
	cases := []struct {
		name string
		segs []seg
		last int // index of the segment expected to carry the columns
	}{
		{"two in order", two, 1},
		{"two, the rest first", []seg{two[1], two[0]}, 1},
		{"three in order", three, 2},
		{"three shuffled, copies", []seg{three[2], three[0], three[2], three[1]}, 3},
		{"first retransmitted", []seg{two[0], two[0], two[1]}, 2},
	}
	for i, c := range cases {
		st := NewL7State()
		sport := uint16(50000 + i)
		var hits []int
		for j, s := range c.segs {
			p, k := segment(sport, s.seq, int64(j)*1e6, s.kind, s.pl)
			st.ParseL7(p, k)
			if p.TLSSNI != "" || p.TLSJA4 != "" || p.ParseError != "" {
				hits = append(hits, j)
				if p.TLSSNI != want.SNI || p.TLSJA4 != want.JA4 || p.TLSALPN != want.ALPN || p.TLSVersionMax != want.VersionMax || p.ParseError != "" {
					t.Errorf("%s: segment %d got SNI %q JA4 %q ALPN %q (error %q), want %q %q %q", c.name, j, p.TLSSNI, p.TLSJA4, p.TLSALPN, p.ParseError, want.SNI, want.JA4, want.ALPN)
				}
			}
		}
		if len(hits) != 1 || hits[0] != c.last {
			t.Errorf("%s: hello columns on segments %v, want only on %d", c.name, hits, c.last)
		}
		if st.Stats.TLSReassembled != 1 || st.TLSPending() != 0 {
			t.Errorf("%s: reassembled %d, pending %d; want 1, 0", c.name, st.Stats.TLSReassembled, st.TLSPending())
		}
	}
	// Without a state (record.ParseL7): each segment alone, as before: the first one's SNI (here it
	// is in the first part), no JA4 of a part; the rest nothing.
	p, k := segment(1, isn, 0, schema.L7TLS, two[0].pl)
	ParseL7(p, k)
	if p.TLSSNI != want.SNI || p.TLSJA4 != "" || p.ParseError != "" {
		t.Errorf("stateless first segment: SNI %q, JA4 %q, error %q", p.TLSSNI, p.TLSJA4, p.ParseError)
	}
	p, k = segment(1, two[1].seq, 0, schema.L7TLSCont, two[1].pl)
	ParseL7(p, k)
	if p.TLSSNI != "" || p.TLSJA4 != "" || p.ParseError != "" {
		t.Errorf("stateless continuation parsed to %q %q %q", p.TLSSNI, p.TLSJA4, p.ParseError)
	}
}

// TestTLSSplitHelloGivesUp: every way the reassembly gives up leaves the hello columns empty
// (never a wrong SNI or JA4) and moves its own counter, and the state stays bounded.
func TestTLSSplitHelloGivesUp(t *testing.T) {
	rec, _ := pqHello(t, "pq.tls-reasm.example")
	two := splitHello(1000, rec, 1448)
	none := func(what string, got []Packet) {
		t.Helper()
		if len(got) != 0 {
			t.Errorf("%s: hello columns on %d packets (SNI %q), want none", what, len(got), got[0].TLSSNI)
		}
	}

	t.Run("conflict", func(t *testing.T) {
		st := NewL7State()
		three := splitHello(1000, rec, 700, 1400)
		bad := seg{three[2].seq, schema.L7TLSCont, append([]byte(nil), three[2].pl...)}
		bad.pl[10] ^= 0xff // a copy of the last piece that disagrees with the first copy
		none("conflict", feed(st, 1, 0, three[0], three[2], bad, three[1]))
		if st.Stats.TLSConflict != 1 || st.Stats.TLSReassembled != 0 {
			t.Errorf("conflict %d, reassembled %d; want 1, 0", st.Stats.TLSConflict, st.Stats.TLSReassembled)
		}
	})

	t.Run("expired", func(t *testing.T) {
		st := NewL7State()
		none("first only", feed(st, 1, 0, two[0]))
		// Another flow's first segment, past the deadline of the first: the first is dropped.
		none("other", feed(st, 2, TLSPendingTime+1, two[0]))
		if st.Stats.TLSExpired != 1 || st.TLSPending() != 1 {
			t.Fatalf("expired %d, pending %d; want 1, 1", st.Stats.TLSExpired, st.TLSPending())
		}
		// The late rest of the first flow waits for a start that is gone: orphaned in its turn.
		none("late rest", feed(st, 1, TLSPendingTime+2, two[1]))
		none("much later", feed(st, 3, 3*TLSPendingTime, two[0]))
		if st.Stats.TLSOrphaned != 1 || st.Stats.TLSExpired != 2 || st.Stats.TLSReassembled != 0 {
			t.Errorf("orphaned %d, expired %d, reassembled %d; want 1, 2, 0", st.Stats.TLSOrphaned, st.Stats.TLSExpired, st.Stats.TLSReassembled)
		}
	})

	t.Run("evicted", func(t *testing.T) {
		st := NewL7State()
		for i := range TLSMaxFlows + 1 {
			none("first segments", feed(st, uint16(i), int64(i), two[0]))
		}
		if st.Stats.TLSEvicted != 1 || st.TLSPending() != TLSMaxFlows {
			t.Fatalf("evicted %d, pending %d; want 1, %d", st.Stats.TLSEvicted, st.TLSPending(), TLSMaxFlows)
		}
		// The evicted one (port 0) cannot complete; the newest can.
		none("evicted rest", feed(st, 0, TLSMaxFlows+1, two[1]))
		if got := feed(st, TLSMaxFlows, TLSMaxFlows+2, two[1]); len(got) != 1 {
			t.Errorf("the newest flow did not complete")
		}
	})

	t.Run("too large", func(t *testing.T) {
		st := NewL7State()
		huge := append([]byte{0x16, 0x03, 0x01, 0x50, 0x00}, rec[5:1448]...) // a 20485-byte record
		none("huge", feed(st, 1, 0, seg{1000, schema.L7TLS, huge}))
		none("first", feed(st, 2, 0, two[0]))
		for i := range TLSMaxPieces { // copies of one byte of the rest: never complete
			none("pieces", feed(st, 2, int64(i), seg{two[1].seq, schema.L7TLSCont, two[1].pl[:1]}))
		}
		if st.Stats.TLSTooLarge != 2 || st.TLSPending() != 0 {
			t.Errorf("too large %d, pending %d; want 2, 0", st.Stats.TLSTooLarge, st.TLSPending())
		}
	})

	t.Run("replaced", func(t *testing.T) {
		st := NewL7State()
		other := splitHello(90000, rec, 1448)
		none("first", feed(st, 1, 0, two[0]))
		// A new hello on the same ports before the first completed: the first's rest then no longer fits.
		if got := feed(st, 1, 1e6, other[0], other[1]); len(got) != 1 {
			t.Errorf("the second hello did not complete")
		}
		none("first's rest", feed(st, 1, 3e6, two[1]))
		if st.Stats.TLSReplaced != 1 || st.Stats.TLSReassembled != 1 {
			t.Errorf("replaced %d, reassembled %d; want 1, 1", st.Stats.TLSReplaced, st.Stats.TLSReassembled)
		}
	})
}
