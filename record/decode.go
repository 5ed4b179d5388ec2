package record

import (
	"errors"
	"slices"

	"github.com/packetlake/packetlake/record/l7"
	"github.com/packetlake/packetlake/schema"
)

// Frame decodes every sample of a frame checked by ParseFrame into p, one at a time, and calls fn
// with it. p is reused: fn must copy what it keeps. Each packet's L7 columns come from its own
// snippet alone: FrameState also completes QUIC ClientHellos spread over several packets.
func Frame(h FrameHeader, samples []byte, p *Packet, fn func(*Packet) error) error {
	return FrameState(h, samples, p, nil, fn)
}

// FrameState is Frame with the L7 state st carried from packet to packet (nil: none).
func FrameState(h FrameHeader, samples []byte, p *Packet, st *L7State, fn func(*Packet) error) error {
	seq := h.FirstSeq
	for len(samples) > 0 {
		n, err := decodeSample(h, seq, samples, p, st)
		if err != nil {
			return err
		}
		if err := fn(p); err != nil {
			return err
		}
		samples = samples[n:]
		seq++
	}
	return nil
}

// AppendFrame is FrameState for a caller that keeps every packet of the frame: it decodes each
// one in place at the end of out and returns the extended slice. A Packet is ~450 bytes; decoding
// into one and copying it out cost the ingester a copy per row (ingester/BENCH.md, ingcpu). On
// error out holds the packets decoded so far.
func AppendFrame(out []Packet, h FrameHeader, samples []byte, st *L7State) ([]Packet, error) {
	// Count is the header's claim (checked by ParseFrame, but not by a caller that skipped it):
	// the samples' bytes bound the room made, as legacySamples does.
	out = slices.Grow(out, min(h.Count, len(samples)/KernelRecordSize))
	seq := h.FirstSeq
	for len(samples) > 0 {
		if len(out) < cap(out) {
			out = out[:len(out)+1] // decodeSample overwrites the whole Packet: no need to zero it first
		} else {
			out = append(out, Packet{})
		}
		n, err := decodeSample(h, seq, samples, &out[len(out)-1], st)
		if err != nil {
			return out[:len(out)-1], err
		}
		samples = samples[n:]
		seq++
	}
	return out, nil
}

// decodeSample decodes the sample that starts samples (packet seq of frame h) into p, and
// returns the sample's length.
func decodeSample(h FrameHeader, seq uint64, samples []byte, p *Packet, st *L7State) (int, error) {
	n, err := SampleLen(samples)
	if err != nil {
		return 0, err // ParseFrame already walked these samples: only on misuse
	}
	*p = Packet{Host: h.Host, Iface: h.Iface, CollectorID: h.CollectorID, Seq: seq}
	k, err := DecodeKernel(samples[:n], p)
	if err != nil {
		return 0, err
	}
	p.TS = int64(k.TSNanos) + h.ClockOffset
	st.ParseL7(p, k)
	return n, nil
}

// ParseL7 fills the DNS, TLS, HTTP and QUIC columns from the snippet the BPF program copied,
// from that packet alone.
func ParseL7(p *Packet, k Kernel) { (*L7State)(nil).ParseL7(p, k) }

// ParseL7 fills the DNS, TLS, HTTP and QUIC columns from the snippet the BPF program copied. A
// reason the kernel recorded takes precedence over one found here; the columns parsed before an
// L7 error are kept. A QUIC ClientHello is parsed where it completes: in the packet, or (s not
// nil) in the last Initial of its connection that brings a missing part; the earlier ones get the
// QUIC columns only. So is a TLS ClientHello record over several TCP segments (s not nil): its
// columns go to the segment that completes it, as tshark shows it. Without a state, an
// incomplete hello gives what its part holds (the SNI when it is there, else tls_truncated).
func (s *L7State) ParseL7(p *Packet, k Kernel) {
	if len(k.Snippet) == 0 {
		return
	}
	var err error
	switch k.L7Kind {
	case schema.L7DNS:
		var d l7.DNS
		d, err = l7.ParseDNS(k.Snippet, p.IPProto == ipProtoTCP)
		p.DNSID, p.DNSQName, p.DNSQType, p.DNSRCode, p.DNSAnswers = d.ID, d.QName, d.QType, d.RCode, d.Answers
		if d.IsResponse {
			p.DNSIsResponse = 1
			if d.Answers > 0 {
				var buf [256]byte // most answer lists fit: one allocation, the string
				p.DNSAnswerIPs = string(l7.AppendDNSAnswerIPs(buf[:0], k.Snippet, p.IPProto == ipProtoTCP))
			}
		}
	case schema.L7TLS:
		rec := k.Snippet
		if s != nil && tlsContinues(p, rec) {
			var complete bool
			if rec, complete = s.tlsHello(p, rec, true); !complete {
				break // waiting for the rest (bpf/tls_cont.h copies it), or given up (counted)
			}
		}
		var h l7.ClientHello
		h, err = l7.ParseClientHelloRecord(rec)
		setHello(p, &h)
	case schema.L7TLSCont:
		if s == nil {
			break // a piece alone says nothing
		}
		rec, complete := s.tlsHello(p, k.Snippet, false)
		if !complete {
			break
		}
		var h l7.ClientHello
		h, err = l7.ParseClientHelloRecord(rec)
		setHello(p, &h)
	case schema.L7QUIC:
		var q l7.QUICInitial
		q, err = l7.ParseQUICInitial(k.Snippet)
		if q.Version != 0 {
			p.QUICVersion, p.QUICDCID, p.QUICSCID = q.Version, q.DCIDHex(), q.SCIDHex()
		}
		if err != nil || len(q.Crypto) == 0 {
			break // no CRYPTO frame: an Initial with only an ACK, PING or padding
		}
		stream, complete := s.quicHello(p, &q)
		if !complete && s != nil {
			break // waiting for the rest (or given up, counted)
		}
		var h l7.ClientHello
		h, err = l7.ParseClientHelloMessage(stream, 'q')
		setHello(p, &h)
		if complete && err == nil && s != nil {
			s.Stats.QUICHellos++
		}
	case schema.L7HTTP:
		p.HTTPMethod, p.HTTPHost, p.HTTPPath, err = l7.ParseHTTPRequest(k.Snippet)
	}
	if err != nil && p.ParseError == "" {
		var r interface{ Reason() string }
		if errors.As(err, &r) {
			p.ParseError = r.Reason()
		} else {
			p.ParseError = "l7_error"
		}
	}
}

func setHello(p *Packet, h *l7.ClientHello) {
	p.TLSSNI, p.TLSJA4, p.TLSALPN, p.TLSVersionMax = h.SNI, h.JA4, h.ALPN, h.VersionMax
}

const ipProtoTCP = 6
