package record

import (
	"github.com/packetlake/packetlake/record/l7"
)

// Bounds of the QUIC ClientHello reassembly. A client's first flight (its Initial packets with
// the ClientHello) leaves within a millisecond or so; post-quantum hellos are about 2 KB.
const (
	QUICMaxConns    = 1024          // connections waiting for the rest of their ClientHello
	QUICMaxHello    = 16 << 10      // crypto stream bytes kept per connection (and the largest hello)
	QUICMaxFrags    = 1024          // CRYPTO frames kept per connection
	QUICPendingTime = 3_000_000_000 // ns of capture time a connection may wait
)

// L7State is what the L7 step keeps between packets: the CRYPTO frames of QUIC connections whose
// ClientHello spans several Initial packets (current Chrome splits a post-quantum hello in two).
// It is bounded in memory (QUICMaxConns connections of at most QUICMaxHello bytes) and in time
// (QUICPendingTime of capture time after a connection's first Initial); a connection dropped
// before its hello completed is counted in Stats. Not safe for concurrent use: one per decoding
// goroutine. The zero value is not ready: use NewL7State.
//
// It also joins TLS ClientHello records spread over several TCP segments (tlsreasm.go), under
// the same kind of bounds (TLSMaxFlows, TLSMaxRecord, TLSPendingTime).
type L7State struct {
	conns   map[quicConnKey]*quicConn
	fifo    []quicConnKey // in order of first packet; entries already gone are skipped
	tls     map[tlsFlowKey]*tlsFlow
	tlsFifo []tlsFlowKey // the same for tls
	Stats   L7Stats
}

// L7Stats counts the QUIC ClientHello reassembly's outcomes.
type L7Stats struct {
	QUICHellos      uint64 // ClientHellos parsed from QUIC Initials
	QUICReassembled uint64 // of which spanned several Initial packets
	QUICExpired     uint64 // connections given up: the rest did not come within QUICPendingTime
	QUICEvicted     uint64 // connections given up: QUICMaxConns others were waiting
	QUICTooLarge    uint64 // connections given up: crypto data beyond QUICMaxHello (or QUICMaxFrags frames)

	// TLS over TCP: ClientHello records spread over several segments.
	TLSReassembled uint64 // joined whole and parsed in the segment that completed them
	TLSExpired     uint64 // flows given up: the rest did not come within TLSPendingTime
	TLSOrphaned    uint64 // flows given up: later segments came, the first never did (within TLSPendingTime)
	TLSEvicted     uint64 // flows given up: TLSMaxFlows others were waiting
	TLSTooLarge    uint64 // flows given up: a record above TLSMaxRecord, or too many segments
	TLSConflict    uint64 // flows given up: two copies of a byte differed (no SNI/JA4 rather than a wrong one)
	TLSReplaced    uint64 // flows given up: another record began on the flow before this one completed
}

// Sub returns the counts of s since was.
func (s L7Stats) Sub(was L7Stats) L7Stats {
	return L7Stats{
		QUICHellos: s.QUICHellos - was.QUICHellos, QUICReassembled: s.QUICReassembled - was.QUICReassembled,
		QUICExpired: s.QUICExpired - was.QUICExpired, QUICEvicted: s.QUICEvicted - was.QUICEvicted,
		QUICTooLarge:   s.QUICTooLarge - was.QUICTooLarge,
		TLSReassembled: s.TLSReassembled - was.TLSReassembled, TLSExpired: s.TLSExpired - was.TLSExpired,
		TLSOrphaned: s.TLSOrphaned - was.TLSOrphaned, TLSEvicted: s.TLSEvicted - was.TLSEvicted,
		TLSTooLarge: s.TLSTooLarge - was.TLSTooLarge, TLSConflict: s.TLSConflict - was.TLSConflict,
		TLSReplaced: s.TLSReplaced - was.TLSReplaced,
	}
}

type quicConnKey struct {
	src, dst         [16]byte
	srcPort, dstPort uint16
	dcid             [20]byte
	dcidLen          uint8
}

type quicConn struct {
	first int64 // capture time of the first Initial, ns
	frags []l7.CryptoFragment
	bytes int
}

// NewL7State returns an empty state.
func NewL7State() *L7State {
	return &L7State{conns: map[quicConnKey]*quicConn{}, tls: map[tlsFlowKey]*tlsFlow{}}
}

// Pending returns the connections waiting for the rest of their ClientHello.
func (s *L7State) Pending() int { return len(s.conns) }

// quicHello returns the crypto stream of p's connection as far as it is known with q's frames
// added, and whether it holds the whole ClientHello. Without a state only q's frames count.
func (s *L7State) quicHello(p *Packet, q *l7.QUICInitial) (stream []byte, complete bool) {
	stream = l7.CryptoStream(q.Crypto, QUICMaxHello)
	if n := l7.ClientHelloLen(stream); n > 0 && len(stream) >= n {
		if s != nil {
			delete(s.conns, s.key(p, q)) // a retransmitted hello after an incomplete one
		}
		return stream[:n], true
	}
	if s == nil {
		return stream, false
	}
	s.expire(p.TS)
	k := s.key(p, q)
	c := s.conns[k]
	if c == nil {
		if !startsStream(q.Crypto) {
			// Only the start of a hello opens a connection: a later Initial of a connection whose
			// hello is done (an ACK, a retransmission) must not wait to be counted as given up.
			// The price: a second Initial arriving before the first is not joined.
			return nil, false
		}
		if len(s.conns) >= QUICMaxConns {
			s.evictOldest()
		}
		c = &quicConn{first: p.TS}
		s.conns[k] = c
		s.fifo = append(s.fifo, k)
	}
	for _, f := range q.Crypto {
		if c.bytes+len(f.Data) > QUICMaxHello || f.Offset > QUICMaxHello || len(c.frags) >= QUICMaxFrags {
			s.Stats.QUICTooLarge++
			delete(s.conns, k)
			return nil, false
		}
		c.frags = append(c.frags, l7.CryptoFragment{Offset: f.Offset, Data: append([]byte(nil), f.Data...)})
		c.bytes += len(f.Data)
	}
	stream = l7.CryptoStream(c.frags, QUICMaxHello)
	if n := l7.ClientHelloLen(stream); n > 0 && len(stream) >= n {
		delete(s.conns, k)
		s.Stats.QUICReassembled++
		return stream[:n], true
	}
	return nil, false
}

func startsStream(frags []l7.CryptoFragment) bool {
	for _, f := range frags {
		if f.Offset == 0 && len(f.Data) > 0 {
			return true
		}
	}
	return false
}

func (s *L7State) key(p *Packet, q *l7.QUICInitial) quicConnKey {
	k := quicConnKey{src: p.SrcAddr, dst: p.DstAddr, srcPort: p.SrcPort, dstPort: p.DstPort, dcidLen: uint8(len(q.DCID))}
	copy(k.dcid[:], q.DCID)
	return k
}

// expire drops the connections whose first Initial is more than QUICPendingTime before now.
func (s *L7State) expire(now int64) {
	for len(s.fifo) > 0 {
		k := s.fifo[0]
		c := s.conns[k]
		if c != nil && now-c.first <= QUICPendingTime {
			break
		}
		if c != nil {
			s.Stats.QUICExpired++
			delete(s.conns, k)
		}
		s.fifo = s.fifo[1:]
	}
	if cap(s.fifo) > 4*QUICMaxConns && len(s.fifo) < QUICMaxConns {
		s.fifo = append([]quicConnKey(nil), s.fifo...) // let the spent prefix go
	}
}

func (s *L7State) evictOldest() {
	for len(s.fifo) > 0 {
		k := s.fifo[0]
		s.fifo = s.fifo[1:]
		if _, ok := s.conns[k]; ok {
			delete(s.conns, k)
			s.Stats.QUICEvicted++
			return
		}
	}
}
