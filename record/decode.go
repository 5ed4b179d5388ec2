package record

import (
	"errors"

	"github.com/packetlake/packetlake/record/l7"
	"github.com/packetlake/packetlake/schema"
)

// Frame decodes every sample of a frame checked by ParseFrame into p, one at a time, and calls fn
// with it. p is reused: fn must copy what it keeps.
func Frame(h FrameHeader, samples []byte, p *Packet, fn func(*Packet) error) error {
	seq := h.FirstSeq
	for len(samples) > 0 {
		n, err := SampleLen(samples)
		if err != nil {
			return err // ParseFrame already walked these samples: only on misuse
		}
		*p = Packet{Host: h.Host, Iface: h.Iface, CollectorID: h.CollectorID, Seq: seq}
		k, err := DecodeKernel(samples[:n], p)
		if err != nil {
			return err
		}
		p.TS = int64(k.TSNanos) + h.ClockOffset
		ParseL7(p, k)
		if err := fn(p); err != nil {
			return err
		}
		samples = samples[n:]
		seq++
	}
	return nil
}

// ParseL7 fills the DNS, TLS and HTTP columns from the snippet the BPF program copied. A reason
// the kernel recorded takes precedence over one found here; the columns parsed before an L7
// error are kept.
func ParseL7(p *Packet, k Kernel) {
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
		}
	case schema.L7TLS:
		p.TLSSNI, err = l7.ParseTLSClientHello(k.Snippet)
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

const ipProtoTCP = 6
