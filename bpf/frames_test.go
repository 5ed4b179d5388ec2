package bpf

import (
	"encoding/binary"
	"net/netip"
)

// Hand-built frames for parser tests. Lengths and next-header fields are computed unless a test
// overrides them to build a malformed packet.

var (
	be      = binary.BigEndian
	macDst  = [6]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	macSrc  = [6]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}
	ip4Src  = netip.MustParseAddr("198.18.1.1")
	ip4Dst  = netip.MustParseAddr("198.18.2.2")
	ip6Src  = netip.MustParseAddr("2001:db8::a")
	ip6Dst  = netip.MustParseAddr("2001:db8:1::b")
	ipProto = struct{ HOP, TCP, UDP, ICMP, ROUTING, FRAG, AH, ESP, ICMP6, NONE, DST uint8 }{0, 6, 17, 1, 43, 44, 51, 50, 58, 59, 60}
)

type tag struct {
	tpid uint16
	id   uint16
}

// ether returns an Ethernet header with VLAN tags (outermost first) ending in EtherType typ.
func ether(typ uint16, tags ...tag) []byte {
	b := append(append([]byte{}, macDst[:]...), macSrc[:]...)
	for _, t := range tags {
		b = be.AppendUint16(b, t.tpid)
		b = be.AppendUint16(b, 0xa000|t.id) // PCP 5: must not leak into the id
	}
	return be.AppendUint16(b, typ)
}

type ip4 struct {
	version, ihl uint8 // 0: 4 and from len(opts)
	tos, ttl     uint8
	proto        uint8
	id           uint16
	flags        uint8  // bit 0 MF, bit 1 DF, bit 2 reserved, as in pl_record
	fragOff      uint16 // bytes
	totLen       int    // 0: header + payload
	opts         []byte // multiple of 4
	src, dst     netip.Addr
}

func (h ip4) build(payload []byte) []byte {
	if h.version == 0 {
		h.version = 4
	}
	if h.ihl == 0 {
		h.ihl = uint8(5 + len(h.opts)/4)
	}
	if h.totLen == 0 {
		h.totLen = 20 + len(h.opts) + len(payload)
	}
	if !h.src.IsValid() {
		h.src, h.dst = ip4Src, ip4Dst
	}
	b := []byte{h.version<<4 | h.ihl, h.tos}
	b = be.AppendUint16(b, uint16(h.totLen))
	b = be.AppendUint16(b, h.id)
	b = be.AppendUint16(b, uint16(h.flags)<<13|h.fragOff/8)
	b = append(b, h.ttl, h.proto, 0, 0) // checksum: not checked by the parser
	b = append(b, h.src.AsSlice()...)
	b = append(b, h.dst.AsSlice()...)
	b = append(b, h.opts...)
	return append(b, payload...)
}

// ext is an IPv6 extension header; typ is its own protocol number (the previous header's next).
type ext struct {
	typ  uint8
	body int // hop-by-hop/routing/dstopts: bytes after the first 2, padded to 8n-2; AH: 4n-2
	// fragment header
	fragOff uint16
	more    bool
	id      uint32
}

type ip6 struct {
	version uint8 // 0: 6
	tclass  uint8
	flow    uint32
	hlim    uint8
	plen    int // -1: computed; else literal
	exts    []ext
	next    uint8 // upper-layer protocol after the extension headers
	src     netip.Addr
	dst     netip.Addr
}

func (x ext) build(next uint8) []byte {
	switch x.typ {
	case ipProto.FRAG:
		b := []byte{next, 0}
		m := uint16(0)
		if x.more {
			m = 1
		}
		b = be.AppendUint16(b, x.fragOff&0xfff8|m)
		return be.AppendUint32(b, x.id)
	case ipProto.AH:
		b := []byte{next, uint8((2+x.body)/4 - 2)}
		return append(b, make([]byte, x.body)...)
	}
	b := []byte{next, uint8((2+x.body)/8 - 1)}
	body := make([]byte, x.body)
	if len(body) > 0 {
		body[0] = 1 // PadN option covering the rest
		body[1] = uint8(len(body) - 2)
	}
	return append(b, body...)
}

// chain returns the extension headers' bytes and the next-header value of the fixed header.
func (h ip6) chain() ([]byte, uint8) {
	var b []byte
	for i, x := range h.exts {
		next := h.next
		if i+1 < len(h.exts) {
			next = h.exts[i+1].typ
		}
		b = append(b, x.build(next)...)
	}
	if len(h.exts) > 0 {
		return b, h.exts[0].typ
	}
	return b, h.next
}

// build returns the IPv6 header, then l3payload (extension headers + L4, already assembled).
func (h ip6) build(first uint8, l3payload []byte) []byte {
	if h.version == 0 {
		h.version = 6
	}
	plen := h.plen
	if plen < 0 {
		plen = len(l3payload)
	}
	if !h.src.IsValid() {
		h.src, h.dst = ip6Src, ip6Dst
	}
	b := be.AppendUint32(nil, uint32(h.version)<<28|uint32(h.tclass)<<20|h.flow&0xfffff)
	b = be.AppendUint16(b, uint16(plen))
	b = append(b, first, h.hlim)
	b = append(b, h.src.AsSlice()...)
	b = append(b, h.dst.AsSlice()...)
	return append(b, l3payload...)
}

type tcp struct {
	sport, dport uint16
	seq, ack     uint32
	flags        uint16 // 12 bits
	win          uint16
	opts         []byte // multiple of 4
	doff         uint8  // 0: from len(opts)
}

func (h tcp) build(payload []byte) []byte {
	if h.doff == 0 {
		h.doff = uint8(5 + len(h.opts)/4)
	}
	b := be.AppendUint16(nil, h.sport)
	b = be.AppendUint16(b, h.dport)
	b = be.AppendUint32(b, h.seq)
	b = be.AppendUint32(b, h.ack)
	b = be.AppendUint16(b, uint16(h.doff)<<12|h.flags&0x0fff)
	b = be.AppendUint16(b, h.win)
	b = append(b, 0, 0, 0, 0) // checksum, urgent pointer
	b = append(b, h.opts...)
	return append(b, payload...)
}

type udp struct {
	sport, dport uint16
	len          int // 0: 8 + payload
}

func (h udp) build(payload []byte) []byte {
	if h.len == 0 {
		h.len = 8 + len(payload)
	}
	b := be.AppendUint16(nil, h.sport)
	b = be.AppendUint16(b, h.dport)
	b = be.AppendUint16(b, uint16(h.len))
	b = append(b, 0, 0)
	return append(b, payload...)
}

// icmp builds an ICMP or ICMPv6 message: type, code, checksum, 4 bytes rest-of-header, payload.
func icmp(typ, code uint8, payload []byte) []byte {
	return append([]byte{typ, code, 0, 0, 0x12, 0x34, 0x00, 0x01}, payload...)
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func fill(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

func mapped(a netip.Addr) [16]byte { return netip.AddrFrom16(a.As16()).As16() }

func macNum(m [6]byte) uint64 {
	return uint64(m[0])<<40 | uint64(m[1])<<32 | uint64(m[2])<<24 | uint64(m[3])<<16 | uint64(m[4])<<8 | uint64(m[5])
}
