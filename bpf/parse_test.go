package bpf

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"

	"github.com/packetlake/packetlake/record"
	"github.com/packetlake/packetlake/schema"
)

// Expected records are assembled from the same header values the frames are built from.

func wantEth(frame []byte, ethType uint16) record.Packet {
	return record.Packet{
		Ifindex: 1, // BPF_PROG_TEST_RUN runs XDP and TC on the namespace's loopback device
		PktLen:  uint32(len(frame)),
		SrcMAC:  macNum(macSrc), DstMAC: macNum(macDst),
		EthType: ethType, SampleRate: 1,
	}
}

// with returns p changed by f, for the few fields a case sets beyond the helpers.
func with(p record.Packet, f func(*record.Packet)) record.Packet { f(&p); return p }

func want4(p record.Packet, h ip4, l3payload int) record.Packet {
	if !h.src.IsValid() {
		h.src, h.dst = ip4Src, ip4Dst
	}
	p.IPVersion, p.SrcAddr, p.DstAddr = 4, mapped(h.src), mapped(h.dst)
	p.IPProto, p.TTL, p.TOS, p.IPID = h.proto, h.ttl, h.tos, uint32(h.id)
	p.IPLen = uint16(20 + len(h.opts) + l3payload)
	if h.totLen != 0 {
		p.IPLen = uint16(h.totLen)
	}
	p.IPFlags, p.FragOffset = h.flags, h.fragOff
	return p
}

func want6(p record.Packet, h ip6, l3payload int) record.Packet {
	if !h.src.IsValid() {
		h.src, h.dst = ip6Src, ip6Dst
	}
	p.IPVersion, p.SrcAddr, p.DstAddr = 6, h.src.As16(), h.dst.As16()
	p.IPProto, p.TTL, p.TOS, p.FlowLabel = h.next, h.hlim, h.tclass, h.flow
	p.IPLen = uint16(40 + l3payload)
	for _, x := range h.exts {
		p.IP6Ext |= map[uint8]uint8{ipProto.HOP: 1, ipProto.ROUTING: 2, ipProto.FRAG: 4, ipProto.DST: 8, ipProto.AH: 16}[x.typ]
		if x.typ == ipProto.FRAG {
			p.IPID, p.FragOffset = x.id, x.fragOff
			if x.more {
				p.IPFlags = 1
			}
		}
	}
	return p
}

func wantTCP(p record.Packet, h tcp, payload int) record.Packet {
	p.SrcPort, p.DstPort, p.TCPSeq, p.TCPAck = h.sport, h.dport, h.seq, h.ack
	p.TCPFlags, p.TCPWindow, p.PayloadLen = h.flags&0x0fff, h.win, uint16(payload)
	return p
}

func wantUDP(p record.Packet, h udp, payloadLen int) record.Packet {
	p.SrcPort, p.DstPort, p.PayloadLen = h.sport, h.dport, uint16(payloadLen)
	return p
}

type parseCase struct {
	name    string
	frame   []byte
	want    record.Packet
	kind    uint8  // l7_kind
	snippet []byte // nil: none
	xdpOnly bool   // larger than one page: BPF_PROG_TEST_RUN has frags only for XDP
	// noCuts: not cut by TestTruncatedEverywhere, whose layout model is one L2/L3/L4 stack. A cut
	// tunnelled frame records its outer packet up to the cut encapsulation (tunnel_truncated or
	// the outer L4's reason); a cut BIG TCP frame is no longer one (below 64 KiB).
	noCuts bool
}

var (
	synOpts  = []byte{2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7} // MSS, SACK ok, TS, NOP, WS
	dnsQuery = cat([]byte{0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0}, []byte("\x07example\x03com\x00"), []byte{0, 1, 0, 1})
	tlsHello = cat([]byte{0x16, 0x03, 0x01, 0x01, 0x2c, 0x01, 0x00, 0x01, 0x28, 0x03, 0x03}, fill(289, 3))
	httpGet  = []byte("GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n")
)

func parseCases() []parseCase {
	var cs []parseCase
	add := func(c parseCase) { cs = append(cs, c) }

	{ // TCP SYN with options, DF, TOS.
		h := ip4{tos: 0x10, ttl: 64, proto: ipProto.TCP, id: 0x1234, flags: 2}
		th := tcp{sport: 40000, dport: 443, seq: 0x01020304, flags: 0x002, win: 64240, opts: synOpts}
		f := cat(ether(0x0800), h.build(th.build(nil)))
		add(parseCase{name: "ipv4_tcp_syn", frame: f, want: wantTCP(want4(wantEth(f, 0x0800), h, 40), th, 0)})
	}
	{ // IPv4 options, all 12 TCP flag bits, reserved IP flag, non-L7 payload.
		h := ip4{ttl: 1, proto: ipProto.TCP, id: 7, flags: 4, opts: []byte{1, 1, 1, 0}}
		th := tcp{sport: 1, dport: 2, seq: 0xffffffff, ack: 0x80000000, flags: 0xfff, win: 0xffff}
		pl := fill(10, 0x30)
		f := cat(ether(0x0800), h.build(th.build(pl)))
		add(parseCase{name: "ipv4_options_tcp_all_flags", frame: f, want: wantTCP(want4(wantEth(f, 0x0800), h, 30), th, 10)})
	}
	{ // DNS over UDP/IPv4.
		h := ip4{ttl: 64, proto: ipProto.UDP}
		uh := udp{sport: 53000, dport: 53}
		f := cat(ether(0x0800), h.build(uh.build(dnsQuery)))
		add(parseCase{name: "ipv4_udp_dns", frame: f, want: wantUDP(want4(wantEth(f, 0x0800), h, 8+len(dnsQuery)), uh, len(dnsQuery)),
			kind: schema.L7DNS, snippet: dnsQuery})
	}
	{ // DNS over UDP/IPv6 with traffic class and flow label.
		h := ip6{tclass: 0xb8, flow: 0xabcde, hlim: 63, plen: -1, next: ipProto.UDP}
		uh := udp{sport: 53, dport: 33333}
		l4 := uh.build(dnsQuery)
		f := cat(ether(0x86dd), h.build(ipProto.UDP, l4))
		add(parseCase{name: "ipv6_udp_dns", frame: f, want: wantUDP(want6(wantEth(f, 0x86dd), h, len(l4)), uh, len(dnsQuery)),
			kind: schema.L7DNS, snippet: dnsQuery})
	}
	{ // DNS over TCP (length-prefixed): chosen by port, not by content.
		h := ip4{ttl: 64, proto: ipProto.TCP}
		th := tcp{sport: 53, dport: 40001, flags: 0x018, win: 500}
		pl := cat([]byte{0, byte(len(dnsQuery))}, dnsQuery)
		f := cat(ether(0x0800), h.build(th.build(pl)))
		add(parseCase{name: "ipv4_tcp_dns", frame: f, want: wantTCP(want4(wantEth(f, 0x0800), h, 20+len(pl)), th, len(pl)),
			kind: schema.L7DNS, snippet: pl})
	}
	{ // TLS ClientHello.
		h := ip4{ttl: 64, proto: ipProto.TCP, flags: 2}
		th := tcp{sport: 50000, dport: 443, seq: 10, ack: 20, flags: 0x018, win: 502}
		f := cat(ether(0x0800), h.build(th.build(tlsHello)))
		add(parseCase{name: "ipv4_tls_client_hello", frame: f, want: wantTCP(want4(wantEth(f, 0x0800), h, 20+len(tlsHello)), th, len(tlsHello)),
			kind: schema.L7TLS, snippet: tlsHello})
	}
	{ // HTTP GET over IPv6 behind hop-by-hop, destination options and routing headers.
		h := ip6{hlim: 64, plen: -1, next: ipProto.TCP,
			exts: []ext{{typ: ipProto.HOP, body: 6}, {typ: ipProto.DST, body: 14}, {typ: ipProto.ROUTING, body: 22}}}
		th := tcp{sport: 50001, dport: 80, seq: 1, ack: 1, flags: 0x018, win: 1000}
		chain, first := h.chain()
		l3 := cat(chain, th.build(httpGet))
		f := cat(ether(0x86dd), h.build(first, l3))
		add(parseCase{name: "ipv6_ext_chain_http_get", frame: f, want: wantTCP(want6(wantEth(f, 0x86dd), h, len(l3)), th, len(httpGet)),
			kind: schema.L7HTTP, snippet: httpGet})
	}
	{ // IPv6 + AH + TCP.
		h := ip6{hlim: 9, plen: -1, next: ipProto.TCP, exts: []ext{{typ: ipProto.AH, body: 22}}}
		th := tcp{sport: 3, dport: 4, flags: 0x010}
		chain, first := h.chain()
		l3 := cat(chain, th.build(nil))
		f := cat(ether(0x86dd), h.build(first, l3))
		add(parseCase{name: "ipv6_ah_tcp", frame: f, want: wantTCP(want6(wantEth(f, 0x86dd), h, len(l3)), th, 0)})
	}
	{ // IPv6 ESP: opaque, payload_len is everything after the IPv6 header.
		h := ip6{hlim: 9, plen: -1, next: ipProto.ESP}
		l3 := fill(64, 1)
		f := cat(ether(0x86dd), h.build(ipProto.ESP, l3))
		add(parseCase{name: "ipv6_esp", frame: f, want: with(want6(wantEth(f, 0x86dd), h, 64), func(p *record.Packet) { p.PayloadLen = 64 })})
	}
	{ // Exactly PL_IPV6_EXT_MAX (8) extension headers: still parsed.
		var exts []ext
		for range 8 {
			exts = append(exts, ext{typ: ipProto.DST, body: 6})
		}
		h := ip6{hlim: 1, plen: -1, next: ipProto.UDP, exts: exts}
		uh := udp{sport: 7, dport: 9}
		chain, first := h.chain()
		l3 := cat(chain, uh.build(fill(5, 0)))
		f := cat(ether(0x86dd), h.build(first, l3))
		add(parseCase{name: "ipv6_eight_ext_headers", frame: f, want: wantUDP(want6(wantEth(f, 0x86dd), h, len(l3)), uh, 5)})
	}
	{ // Nine: ipv6_ext_too_many, ip_proto is the header not walked.
		var exts []ext
		for range 9 {
			exts = append(exts, ext{typ: ipProto.DST, body: 6})
		}
		h := ip6{hlim: 1, plen: -1, next: ipProto.UDP, exts: exts}
		chain, first := h.chain()
		l3 := cat(chain, udp{sport: 7, dport: 9}.build(nil))
		f := cat(ether(0x86dd), h.build(first, l3))
		add(parseCase{name: "ipv6_nine_ext_headers", frame: f, want: with(want6(wantEth(f, 0x86dd), h, len(l3)), func(p *record.Packet) {
			p.IPProto, p.ParseError = ipProto.DST, "ipv6_ext_too_many"
		})})
	}
	{ // 802.1Q tag, ICMP echo.
		h := ip4{ttl: 64, proto: ipProto.ICMP}
		l4 := icmp(8, 0, fill(56, 0))
		f := cat(ether(0x0800, tag{0x8100, 100}), h.build(l4))
		add(parseCase{name: "vlan_ipv4_icmp_echo", frame: f, want: with(want4(wantEth(f, 0x0800), h, len(l4)), func(p *record.Packet) {
			p.VlanID, p.ICMPType, p.PayloadLen = 100, 8, 56
		})})
	}
	{ // QinQ 802.1ad + 802.1Q, ICMPv6 echo.
		h := ip6{hlim: 64, plen: -1, next: ipProto.ICMP6}
		l4 := icmp(128, 0, fill(16, 0))
		f := cat(ether(0x86dd, tag{0x88a8, 200}, tag{0x8100, 300}), h.build(ipProto.ICMP6, l4))
		add(parseCase{name: "qinq_88a8_ipv6_icmpv6", frame: f, want: with(want6(wantEth(f, 0x86dd), h, len(l4)), func(p *record.Packet) {
			p.VlanID, p.InnerVlanID, p.ICMPType, p.PayloadLen = 200, 300, 128, 16
		})})
	}
	{ // Old QinQ TPID 0x9100, ICMP unreachable code 3.
		h := ip4{ttl: 64, proto: ipProto.ICMP}
		l4 := icmp(3, 3, fill(28, 0))
		f := cat(ether(0x0800, tag{0x9100, 4095}, tag{0x8100, 1}), h.build(l4))
		add(parseCase{name: "qinq_9100_ipv4_icmp_unreach", frame: f, want: with(want4(wantEth(f, 0x0800), h, len(l4)), func(p *record.Packet) {
			p.VlanID, p.InnerVlanID, p.ICMPType, p.ICMPCode, p.PayloadLen = 4095, 1, 3, 3, 28
		})})
	}
	{ // A third tag is not walked: eth_type is its TPID and nothing else is parsed.
		f := cat(ether(0x0800, tag{0x88a8, 10}, tag{0x8100, 20}, tag{0x8100, 30}), ip4{proto: ipProto.UDP}.build(nil))
		add(parseCase{name: "three_vlan_tags", frame: f, want: with(wantEth(f, 0x8100), func(p *record.Packet) { p.VlanID, p.InnerVlanID = 10, 20 })})
	}
	{ // ARP: L2 only.
		f := cat(ether(0x0806), fill(28, 0))
		add(parseCase{name: "arp", frame: f, want: wantEth(f, 0x0806)})
	}
	{ // First IPv4 fragment: UDP length covers the whole datagram, snippet what is here.
		h := ip4{ttl: 64, proto: ipProto.UDP, id: 0x4242, flags: 1}
		uh := udp{sport: 53, dport: 1234, len: 8 + 3000}
		pl := fill(1472, 9)
		f := cat(ether(0x0800), h.build(uh.build(pl)))
		add(parseCase{name: "ipv4_first_fragment_dns", frame: f, want: wantUDP(want4(wantEth(f, 0x0800), h, 1480), uh, 3000),
			kind: schema.L7DNS, snippet: pl[:1024]})
	}
	{ // Later IPv4 fragment: no L4 header, payload_len is the fragment's data.
		h := ip4{ttl: 64, proto: ipProto.UDP, id: 0x4242, flags: 1, fragOff: 1480}
		f := cat(ether(0x0800), h.build(fill(1480, 1)))
		add(parseCase{name: "ipv4_later_fragment", frame: f, want: with(want4(wantEth(f, 0x0800), h, 1480), func(p *record.Packet) { p.PayloadLen = 1480 })})
	}
	{ // First IPv6 fragment with UDP.
		h := ip6{hlim: 64, plen: -1, next: ipProto.UDP, exts: []ext{{typ: ipProto.FRAG, more: true, id: 0xdeadbeef}}}
		uh := udp{sport: 5353, dport: 53, len: 8 + 2000}
		chain, first := h.chain()
		pl := fill(100, 2)
		l3 := cat(chain, uh.build(pl))
		f := cat(ether(0x86dd), h.build(first, l3))
		add(parseCase{name: "ipv6_first_fragment_dns", frame: f, want: wantUDP(want6(wantEth(f, 0x86dd), h, len(l3)), uh, 2000),
			kind: schema.L7DNS, snippet: pl})
	}
	{ // Later IPv6 fragment: ip_proto is the fragment header's next header, no L4.
		h := ip6{hlim: 64, plen: -1, next: ipProto.UDP, exts: []ext{{typ: ipProto.FRAG, fragOff: 1448, id: 0xdeadbeef}}}
		chain, first := h.chain()
		l3 := cat(chain, fill(552, 4))
		f := cat(ether(0x86dd), h.build(first, l3))
		add(parseCase{name: "ipv6_later_fragment", frame: f, want: with(want6(wantEth(f, 0x86dd), h, len(l3)), func(p *record.Packet) { p.PayloadLen = 552 })})
	}
	{ // Ethernet padding after a short packet is not payload.
		h := ip4{ttl: 64, proto: ipProto.UDP}
		uh := udp{sport: 1000, dport: 53}
		f := cat(ether(0x0800), h.build(uh.build([]byte{1, 2})), []byte{0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee})
		add(parseCase{name: "ipv4_udp_ethernet_padding", frame: f, want: wantUDP(want4(wantEth(f, 0x0800), h, 10), uh, 2),
			kind: schema.L7DNS, snippet: []byte{1, 2}})
	}
	{ // Snippet capped at PL_SNIPPET_MAX.
		h := ip4{ttl: 64, proto: ipProto.TCP}
		th := tcp{sport: 50002, dport: 8080, flags: 0x018}
		pl := cat([]byte("POST /upload HTTP/1.1\r\nHost: x\r\n\r\n"), fill(1466, 5))
		f := cat(ether(0x0800), h.build(th.build(pl)))
		add(parseCase{name: "ipv4_http_post_long", frame: f, want: wantTCP(want4(wantEth(f, 0x0800), h, 20+len(pl)), th, len(pl)),
			kind: schema.L7HTTP, snippet: pl[:1024]})
	}
	{ // 3000-byte frame: non-linear for the skb test run? (fits one page: both hooks).
		h := ip4{ttl: 64, proto: ipProto.TCP}
		th := tcp{sport: 50003, dport: 80, flags: 0x018}
		pl := cat(httpGet, fill(2900, 6))
		f := cat(ether(0x0800), h.build(th.build(pl)))
		add(parseCase{name: "ipv4_http_3000_bytes", frame: f, want: wantTCP(want4(wantEth(f, 0x0800), h, 20+len(pl)), th, len(pl)),
			kind: schema.L7HTTP, snippet: pl[:1024]})
	}
	{ // 4 KiB of extension headers push TCP and its payload into XDP fragments (frags program).
		h := ip6{hlim: 64, plen: -1, next: ipProto.TCP, exts: []ext{{typ: ipProto.HOP, body: 2046}, {typ: ipProto.DST, body: 2046}}}
		th := tcp{sport: 50004, dport: 80, seq: 5, flags: 0x018}
		pl := cat(httpGet, fill(1500, 7))
		chain, first := h.chain()
		l3 := cat(chain, th.build(pl))
		f := cat(ether(0x86dd), h.build(first, l3))
		add(parseCase{name: "ipv6_l4_in_xdp_frags", frame: f, xdpOnly: true, want: wantTCP(want6(wantEth(f, 0x86dd), h, len(l3)), th, len(pl)),
			kind: schema.L7HTTP, snippet: pl[:1024]})
	}

	// Tunnels: the same inner flow in two VXLAN networks (two flows, by tunnel_id), in GRE with a
	// key, and IPv6 in IPv4. The inner packet fills the ordinary columns.
	tunnelled := func(typ string, id uint32, outer ip4, depth uint8, p record.Packet) record.Packet {
		p.TunnelType, p.TunnelID, p.TunnelDepth, p.TunnelTTL = typ, id, depth, outer.ttl
		p.TunnelSrc, p.TunnelDst = mapped(outer.src), mapped(outer.dst)
		return p
	}
	for _, vni := range []uint32{42, 43} {
		outer := ip4{ttl: 9, proto: ipProto.UDP, src: netip.MustParseAddr("192.0.2.1"), dst: netip.MustParseAddr("192.0.2.2")}
		h := ip4{ttl: 64, proto: ipProto.TCP, id: 77}
		th := tcp{sport: 40100, dport: 8080, seq: 3, flags: 0x002, win: 1000}
		inner := cat(ether(0x0800), h.build(th.build(nil)))
		vx := cat([]byte{8, 0, 0, 0, byte(vni >> 16), byte(vni >> 8), byte(vni), 0}, inner)
		f := cat(ether(0x0800), outer.build(udp{sport: 50000, dport: 4789}.build(vx)))
		add(parseCase{name: fmt.Sprintf("vxlan_vni_%d", vni), frame: f, noCuts: true,
			want: tunnelled("vxlan", vni, outer, 1, wantTCP(want4(wantEth(f, 0x0800), h, 20), th, 0))})
	}
	{
		outer := ip4{ttl: 30, proto: 47, src: netip.MustParseAddr("192.0.2.5"), dst: netip.MustParseAddr("192.0.2.6")}
		h := ip4{ttl: 64, proto: ipProto.UDP}
		uh := udp{sport: 53001, dport: 53}
		gre := []byte{0x30, 0, 0x08, 0x00, 0, 0, 0x12, 0x34, 0, 0, 0, 1} // key 0x1234, sequence 1
		f := cat(ether(0x0800), outer.build(cat(gre, h.build(uh.build(dnsQuery)))))
		add(parseCase{name: "gre_key_seq_dns", frame: f, kind: schema.L7DNS, snippet: dnsQuery, noCuts: true,
			want: tunnelled("gre", 0x1234, outer, 1, wantUDP(want4(wantEth(f, 0x0800), h, 8+len(dnsQuery)), uh, len(dnsQuery)))})
	}
	{
		outer := ip4{ttl: 12, proto: 41, src: netip.MustParseAddr("192.0.2.7"), dst: netip.MustParseAddr("192.0.2.8")}
		h := ip6{hlim: 63, plen: -1, next: ipProto.TCP}
		th := tcp{sport: 40200, dport: 443, seq: 5, flags: 0x002, win: 1000}
		l4 := th.build(nil)
		f := cat(ether(0x0800), outer.build(h.build(ipProto.TCP, l4)))
		add(parseCase{name: "6in4_tcp", frame: f, noCuts: true,
			want: tunnelled("6in4", 0, outer, 1, wantTCP(want6(wantEth(f, 0x86dd), h, len(l4)), th, 0))})
	}

	// BIG TCP: GRO packets above 64 KiB at tcx. IPv4 says total length 0, IPv6 payload length 0
	// without a jumbo option; both run to the end of the packet (ip_len and payload_len saturate).
	// Only XDP test runs take frames this size (frags), but the parser is the same.
	{
		h := ip4{ttl: 64, proto: ipProto.TCP, flags: 2, totLen: 65536} // 0 on the wire
		th := tcp{sport: 50010, dport: 5201, seq: 1, ack: 1, flags: 0x010, win: 512}
		f := cat(ether(0x0800), h.build(th.build(fill(66000, 9))))
		w := wantTCP(want4(wantEth(f, 0x0800), h, 0), th, 0xffff)
		w.IPLen = 0xffff
		add(parseCase{name: "ipv4_big_tcp_tot_len_0", frame: f, xdpOnly: true, noCuts: true, want: w})
	}
	{
		h := ip6{hlim: 64, plen: 0, next: ipProto.TCP}
		th := tcp{sport: 50011, dport: 5201, seq: 1, ack: 1, flags: 0x010, win: 512}
		f := cat(ether(0x86dd), h.build(ipProto.TCP, th.build(fill(66000, 9))))
		w := wantTCP(want6(wantEth(f, 0x86dd), h, 0), th, 0xffff)
		w.IPLen = 0xffff
		add(parseCase{name: "ipv6_big_tcp_plen_0", frame: f, xdpOnly: true, noCuts: true, want: w})
	}

	// Malformed headers: the reason, and every field that was valid before it.
	{
		h := ip4{version: 5, ttl: 64, proto: ipProto.UDP}
		f := cat(ether(0x0800), h.build(udp{sport: 1, dport: 2}.build(nil)))
		add(parseCase{name: "ipv4_bad_version", frame: f, want: with(wantEth(f, 0x0800), func(p *record.Packet) { p.ParseError = "ipv4_bad_version" })})
	}
	{
		h := ip4{ihl: 4, ttl: 64, proto: ipProto.UDP}
		f := cat(ether(0x0800), h.build(udp{sport: 1, dport: 2}.build(nil)))
		add(parseCase{name: "ipv4_bad_ihl", frame: f, want: with(want4(wantEth(f, 0x0800), h, 8), func(p *record.Packet) { p.ParseError = "ipv4_bad_ihl" })})
	}
	{
		h := ip4{ttl: 64, proto: ipProto.UDP, totLen: 19}
		f := cat(ether(0x0800), h.build(udp{sport: 1, dport: 2}.build(nil)))
		add(parseCase{name: "ipv4_total_length_below_header", frame: f, want: with(want4(wantEth(f, 0x0800), h, 8), func(p *record.Packet) {
			p.ParseError = "ipv4_bad_total_length"
		})})
	}
	{ // Total length beyond the frame: reason recorded, L4 still parsed from the bytes present.
		h := ip4{ttl: 64, proto: ipProto.UDP, totLen: 20 + 8 + len(dnsQuery) + 100}
		uh := udp{sport: 2000, dport: 53}
		f := cat(ether(0x0800), h.build(uh.build(dnsQuery)))
		add(parseCase{name: "ipv4_total_length_beyond_frame", frame: f, want: with(wantUDP(want4(wantEth(f, 0x0800), h, 0), uh, len(dnsQuery)), func(p *record.Packet) {
			p.ParseError = "ipv4_bad_total_length"
		}), kind: schema.L7DNS, snippet: dnsQuery})
	}
	{
		h := ip6{version: 4, hlim: 64, plen: -1, next: ipProto.UDP}
		f := cat(ether(0x86dd), h.build(ipProto.UDP, udp{sport: 1, dport: 2}.build(nil)))
		add(parseCase{name: "ipv6_bad_version", frame: f, want: with(wantEth(f, 0x86dd), func(p *record.Packet) { p.ParseError = "ipv6_bad_version" })})
	}
	{
		h := ip4{ttl: 64, proto: ipProto.TCP}
		th := tcp{sport: 5, dport: 6, seq: 9, flags: 0x002, doff: 4}
		f := cat(ether(0x0800), h.build(th.build(fill(8, 0))))
		add(parseCase{name: "tcp_data_offset_4", frame: f, want: with(wantTCP(want4(wantEth(f, 0x0800), h, 28), th, 0), func(p *record.Packet) {
			p.ParseError = "tcp_bad_data_offset"
		})})
	}
	{
		h := ip4{ttl: 64, proto: ipProto.TCP}
		th := tcp{sport: 5, dport: 6, flags: 0x002, doff: 15}
		f := cat(ether(0x0800), h.build(th.build(fill(8, 0))))
		add(parseCase{name: "tcp_data_offset_beyond_ip", frame: f, want: with(wantTCP(want4(wantEth(f, 0x0800), h, 28), th, 0), func(p *record.Packet) {
			p.ParseError = "tcp_bad_data_offset"
		})})
	}
	{
		h := ip4{ttl: 64, proto: ipProto.UDP}
		uh := udp{sport: 53, dport: 53, len: 7}
		f := cat(ether(0x0800), h.build(uh.build(dnsQuery)))
		add(parseCase{name: "udp_length_below_8", frame: f, want: with(wantUDP(want4(wantEth(f, 0x0800), h, 8+len(dnsQuery)), uh, 0), func(p *record.Packet) {
			p.ParseError = "udp_bad_length"
		})})
	}
	{
		h := ip4{ttl: 64, proto: ipProto.UDP}
		uh := udp{sport: 53, dport: 53, len: 8 + len(dnsQuery) + 1}
		f := cat(ether(0x0800), h.build(uh.build(dnsQuery)))
		add(parseCase{name: "udp_length_beyond_ip", frame: f, want: with(wantUDP(want4(wantEth(f, 0x0800), h, 8+len(dnsQuery)), uh, 0), func(p *record.Packet) {
			p.ParseError = "udp_bad_length"
		})})
	}
	return cs
}

// TestParseHandBuilt checks every field of the record for each hand-built frame, through both
// programs: XDP and TC must write the same bytes (but the timestamp).
func TestParseHandBuilt(t *testing.T) {
	e := newEnv(t, Config{})
	for _, c := range parseCases() {
		t.Run(c.name, func(t *testing.T) {
			x := e.run(t, c.frame, false)
			check(t, "xdp", x, c.want, c.kind, c.snippet)
			if c.xdpOnly {
				return
			}
			tc := e.run(t, c.frame, true)
			check(t, "tc", tc, c.want, c.kind, c.snippet)
			if !bytes.Equal(x.raw[8:], tc.raw[8:]) {
				t.Errorf("xdp and tc records differ:\n xdp % x\n tc  % x", x.raw[8:], tc.raw[8:])
			}
		})
	}
}

func check(t *testing.T, hook string, d decoded, want record.Packet, kind uint8, snippet []byte) {
	t.Helper()
	if diff := diffFields(d.p, want); diff != "" {
		t.Errorf("%s: fields differ:%s", hook, diff)
	}
	if d.k.L7Kind != kind {
		t.Errorf("%s: l7_kind %d, want %d", hook, d.k.L7Kind, kind)
	}
	if !bytes.Equal(d.k.Snippet, snippet) {
		t.Errorf("%s: snippet (%d bytes) differs from the payload's first %d bytes", hook, len(d.k.Snippet), len(snippet))
	}
}
