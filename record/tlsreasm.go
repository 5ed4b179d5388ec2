package record

import (
	"encoding/binary"
	"slices"
)

// Bounds of the TLS-over-TCP ClientHello reassembly. The kernel (bpf/tls_cont.h) copies the
// segments that carry the rest of a handshake record longer than its first segment, for a
// second at most; a post-quantum hello is ~2 KB, two segments.
const (
	TLSMaxFlows    = 1024          // flows waiting for the rest of their ClientHello record
	TLSMaxRecord   = 16384 + 5     // the largest record joined: 2^14 bytes of plaintext and the header
	TLSMaxPieces   = 64            // segments kept per flow (retransmissions included)
	TLSPendingTime = 3_000_000_000 // ns of capture time a flow may wait
)

type tlsFlowKey struct {
	src, dst         [16]byte
	srcPort, dstPort uint16
	tunnelID         uint32
}

type tlsPiece struct {
	seq  uint32
	data []byte
}

type tlsFlow struct {
	first  int64  // capture time of its first segment seen, ns
	start  uint32 // tcp_seq of the record's first byte
	need   int    // the record's length, header included; 0 until its first segment came
	pieces []tlsPiece
	bytes  int
}

// tlsContinues says whether a TLS segment's snippet is the start of a handshake record that goes
// on in later segments, with the whole segment copied: the case where the kernel copies the rest
// (pl_tls_cont_start). A segment copied in part (above SnippetMax) is parsed alone, as before.
func tlsContinues(p *Packet, snip []byte) bool {
	return len(snip) >= 5 && snip[0] == 0x16 && len(snip) == int(p.PayloadLen) &&
		5+int(binary.BigEndian.Uint16(snip[3:])) > len(snip)
}

// tlsHello adds a segment of p's flow (start: it begins the record) and returns the record once
// every byte of it is known. Pieces may come in any order (two CPUs' batches reach user space in
// either order) and twice; two pieces that disagree on a byte give up the flow (TLSConflict):
// no SNI or JA4 rather than a wrong one.
func (s *L7State) tlsHello(p *Packet, snip []byte, start bool) ([]byte, bool) {
	s.tlsExpire(p.TS)
	k := tlsFlowKey{src: p.SrcAddr, dst: p.DstAddr, srcPort: p.SrcPort, dstPort: p.DstPort, tunnelID: p.TunnelID}
	f := s.tls[k]
	if start {
		need := 5 + int(binary.BigEndian.Uint16(snip[3:]))
		if f != nil && f.need != 0 && (f.start != p.TCPSeq || f.need != need) {
			// Another record on the flow: a new connection on the same ports, or a second hello.
			s.Stats.TLSReplaced++
			delete(s.tls, k)
			f = nil
		}
		if need > TLSMaxRecord {
			s.Stats.TLSTooLarge++
			delete(s.tls, k)
			return nil, false
		}
		if f == nil {
			f = s.tlsNew(k, p.TS)
		}
		f.start, f.need = p.TCPSeq, need
	} else if f == nil {
		f = s.tlsNew(k, p.TS) // ahead of its first segment
	}
	if len(f.pieces) >= TLSMaxPieces || f.bytes+len(snip) > 2*TLSMaxRecord {
		s.Stats.TLSTooLarge++
		delete(s.tls, k)
		return nil, false
	}
	f.pieces = append(f.pieces, tlsPiece{seq: p.TCPSeq, data: slices.Clone(snip)})
	f.bytes += len(snip)
	if f.need == 0 {
		return nil, false
	}
	rec, complete, conflict := f.join()
	switch {
	case conflict:
		s.Stats.TLSConflict++
		delete(s.tls, k)
		return nil, false
	case !complete:
		return nil, false
	}
	delete(s.tls, k)
	s.Stats.TLSReassembled++
	return rec, true
}

// join lays the pieces over the record by sequence number (modulo 2^32); bytes outside it are
// ignored (a piece of data past the record, a retransmission reaching back before it).
func (f *tlsFlow) join() (rec []byte, complete, conflict bool) {
	rec = make([]byte, f.need)
	have := make([]bool, f.need)
	n := 0
	for _, pc := range f.pieces {
		off := pc.seq - f.start
		if off >= uint32(f.need) {
			continue
		}
		for i, b := range pc.data[:min(len(pc.data), f.need-int(off))] {
			j := int(off) + i
			if have[j] {
				if rec[j] != b {
					return nil, false, true
				}
				continue
			}
			rec[j], have[j] = b, true
			n++
		}
	}
	return rec, n == f.need, false
}

func (s *L7State) tlsNew(k tlsFlowKey, ts int64) *tlsFlow {
	if len(s.tls) >= TLSMaxFlows {
		s.tlsEvictOldest()
	}
	f := &tlsFlow{first: ts}
	s.tls[k] = f
	s.tlsFifo = append(s.tlsFifo, k)
	return f
}

// tlsExpire drops the flows whose first segment is more than TLSPendingTime before now.
func (s *L7State) tlsExpire(now int64) {
	for len(s.tlsFifo) > 0 {
		k := s.tlsFifo[0]
		f := s.tls[k]
		if f != nil && now-f.first <= TLSPendingTime {
			break
		}
		if f != nil {
			if f.need == 0 {
				s.Stats.TLSOrphaned++
			} else {
				s.Stats.TLSExpired++
			}
			delete(s.tls, k)
		}
		s.tlsFifo = s.tlsFifo[1:]
	}
	if cap(s.tlsFifo) > 4*TLSMaxFlows && len(s.tlsFifo) < TLSMaxFlows {
		s.tlsFifo = slices.Clone(s.tlsFifo) // let the spent prefix go
	}
}

func (s *L7State) tlsEvictOldest() {
	for len(s.tlsFifo) > 0 {
		k := s.tlsFifo[0]
		s.tlsFifo = s.tlsFifo[1:]
		if _, ok := s.tls[k]; ok {
			delete(s.tls, k)
			s.Stats.TLSEvicted++
			return
		}
	}
}

// TLSPending returns the flows waiting for the rest of their ClientHello record.
func (s *L7State) TLSPending() int { return len(s.tls) }
