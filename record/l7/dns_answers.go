package l7

import (
	"encoding/binary"
	"net/netip"
)

const (
	dnsTypeA    = 1
	dnsTypeAAAA = 28
	dnsClassIN  = 1
)

// AppendDNSAnswerIPs appends to dst the addresses of the A and AAAA records in the answer
// section of the DNS message in b, as text separated by single spaces (IPv4 dotted), and
// returns it. It is what passive DNS ties the question's name to (schema column
// dns_answer_addrs). overTCP as for ParseDNS.
//
// It is best effort by design: the snippet may end inside the answers (a long response), and
// the records read whole before that are still true answers, so a cut or malformed record ends
// the list without an error; ParseDNS reports the message's errors. Records of another class
// than IN are skipped (mDNS sets the top "cache flush" bit of the class, which is masked).
func AppendDNSAnswerIPs(dst, b []byte, overTCP bool) []byte {
	if overTCP {
		if len(b) < 2 {
			return dst
		}
		n := int(binary.BigEndian.Uint16(b))
		b = b[2:]
		if n < len(b) {
			b = b[:n]
		}
	}
	if len(b) < dnsHeaderLen || binary.BigEndian.Uint16(b[2:])&0x8000 == 0 {
		return dst // not a response
	}
	questions := int(binary.BigEndian.Uint16(b[4:]))
	answers := int(binary.BigEndian.Uint16(b[6:]))
	if answers == 0 {
		return dst
	}
	var scratch [dnsMaxName]byte
	off := dnsHeaderLen
	for range questions {
		_, next, err := readName(b, off, scratch[:0])
		if err != nil || next+4 > len(b) {
			return dst
		}
		off = next + 4 // type, class
	}
	first := len(dst)
	for range answers {
		_, next, err := readName(b, off, scratch[:0])
		if err != nil || next+10 > len(b) {
			return dst
		}
		typ := binary.BigEndian.Uint16(b[next:])
		class := binary.BigEndian.Uint16(b[next+2:]) & 0x7fff
		rdlen := int(binary.BigEndian.Uint16(b[next+8:]))
		rdata := next + 10
		if rdata+rdlen > len(b) {
			return dst
		}
		var addr netip.Addr
		switch {
		case class != dnsClassIN:
		case typ == dnsTypeA && rdlen == 4:
			addr = netip.AddrFrom4([4]byte(b[rdata : rdata+4]))
		case typ == dnsTypeAAAA && rdlen == 16:
			addr = netip.AddrFrom16([16]byte(b[rdata : rdata+16]))
		}
		if addr.IsValid() {
			if len(dst) > first {
				dst = append(dst, ' ')
			}
			dst = addr.AppendTo(dst)
		}
		off = rdata + rdlen
	}
	return dst
}
