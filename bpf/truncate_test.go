package bpf

import (
	"bytes"
	"fmt"
	"testing"
)

// TestTruncatedEverywhere cuts every hand-built frame at every length from 14 bytes (the least
// BPF_PROG_TEST_RUN accepts, so eth_truncated cannot be reached this way) to one short of the
// whole, like a capture with a small snaplen. Each cut must give exactly one record with the
// reason for the first header that broke, and the fields of the headers before it unchanged.
func TestTruncatedEverywhere(t *testing.T) {
	e := newEnv(t, Config{})
	runs := 0
	// Sum over cuts: the ring never needs to hold more than one record at a time.
	for _, c := range parseCases() {
		if c.noCuts {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			full := e.run(t, c.frame, false)
			lay := layout(c.frame)
			for cut := 14; cut < len(c.frame); cut++ {
				for _, tc := range []bool{false, true} {
					if tc && (c.xdpOnly || tcRunRefuses(lay, cut)) {
						continue
					}
					d := e.run(t, c.frame[:cut], tc)
					runs++
					if msg := checkCut(d, full, lay, cut); msg != "" {
						t.Fatalf("cut at %d of %d (tc=%v): %s", cut, len(c.frame), tc, msg)
					}
				}
			}
		})
	}
	t.Logf("%d truncated frames checked", runs)
}

// tcRunRefuses: BPF_PROG_TEST_RUN for skb programs returns EINVAL for an untagged IPv4/IPv6
// frame shorter than the fixed IP header (it reads the addresses before running the program).
// Live skbs never reach TC like that, so only XDP covers those cuts.
func tcRunRefuses(l frameLayout, cut int) bool {
	return l.l2End == 14 && (l.ethType == 0x0800 || l.ethType == 0x86dd) && cut < l.l3Fixed
}

// frameLayout is where the headers of a hand-built frame end.
type frameLayout struct {
	l2End     int    // after Ethernet and VLAN tags
	ethType   uint16 // after the tags
	l3Fixed   int    // after the fixed IP header (20 or 40 bytes)
	l3Hdr     int    // after the IPv4 header with options (IPv4 only)
	ipEnd     int    // end of the IP packet by its length field
	l3Verdict bool   // the fixed header alone already decides the full frame's reason
}

func layout(f []byte) frameLayout {
	l := frameLayout{l2End: 14, ethType: be.Uint16(f[12:])}
	for tags := 0; tags < 2 && (l.ethType == 0x8100 || l.ethType == 0x88a8 || l.ethType == 0x9100); tags++ {
		l.ethType = be.Uint16(f[l.l2End+2:])
		l.l2End += 4
	}
	o := l.l2End
	switch l.ethType {
	case 0x0800:
		ihl := int(f[o]&0x0f) * 4
		tot := int(be.Uint16(f[o+2:]))
		l.l3Fixed, l.l3Hdr, l.ipEnd = o+20, o+ihl, o+tot
		l.l3Verdict = f[o]>>4 != 4 || ihl < 20 || tot < ihl
	case 0x86dd:
		l.l3Fixed, l.ipEnd = o+40, o+40+int(be.Uint16(f[o+4:]))
		l.l3Hdr = l.l3Fixed
		l.l3Verdict = f[o]>>4 != 6
	}
	return l
}

func checkCut(d, full decoded, l frameLayout, cut int) string {
	want := ""
	switch {
	case cut < l.l2End:
		want = "vlan_truncated"
	case l.ethType != 0x0800 && l.ethType != 0x86dd:
		want = full.p.ParseError
	case cut < l.l3Fixed && l.ethType == 0x0800:
		want = "ipv4_truncated"
	case cut < l.l3Fixed:
		want = "ipv6_truncated"
	case l.l3Verdict:
		want = full.p.ParseError
	case cut < l.l3Hdr:
		want = "ipv4_truncated"
	case cut < l.ipEnd && l.ethType == 0x0800:
		want = "ipv4_bad_total_length"
	case cut < l.ipEnd:
		want = "ipv6_truncated"
	default: // only Ethernet padding was cut
		want = full.p.ParseError
	}
	p, f := d.p, full.p
	switch {
	case p.ParseError != want:
		return fmt.Sprintf("parse_error %q, want %q", p.ParseError, want)
	case p.PktLen != uint32(cut):
		return fmt.Sprintf("pkt_len %d", p.PktLen)
	case cut >= l.l2End && (p.SrcMAC != f.SrcMAC || p.DstMAC != f.DstMAC || p.EthType != f.EthType ||
		p.VlanID != f.VlanID || p.InnerVlanID != f.InnerVlanID):
		return "L2 fields differ from the whole frame's" + diffFields(p, f)
	case cut >= l.l3Fixed && (p.SrcAddr != f.SrcAddr || p.DstAddr != f.DstAddr || p.TTL != f.TTL ||
		p.TOS != f.TOS || p.IPLen != f.IPLen || p.IPVersion != f.IPVersion):
		return "L3 fields differ from the whole frame's" + diffFields(p, f)
	case p.SrcPort != 0 && (p.SrcPort != f.SrcPort || p.DstPort != f.DstPort):
		return "ports differ from the whole frame's" + diffFields(p, f)
	case !bytes.HasPrefix(full.k.Snippet, d.k.Snippet) && !(len(full.k.Snippet) == 0 && len(d.k.Snippet) > 0 && p.ParseError != ""):
		return fmt.Sprintf("snippet of %d bytes is not a prefix of the whole frame's", len(d.k.Snippet))
	}
	return ""
}

// l4Stack is an L3 payload cut at every length with the IP length field following the cut:
// a consistent IP packet whose L4 (or IPv6 extension) headers are too short.
type l4Stack struct {
	name  string
	build func(l3payload []byte) []byte // Ethernet + IP header around the payload
	l3    []byte                        // extension headers + L4 header + payload
	segs  []seg                         // consecutive parts of l3, with the reason when cut inside
}

type seg struct {
	n      int
	reason string
}

func l4Stacks() []l4Stack {
	v4 := func(proto uint8) func([]byte) []byte {
		return func(p []byte) []byte { return cat(ether(0x0800), ip4{ttl: 64, proto: proto}.build(p)) }
	}
	th := tcp{sport: 40000, dport: 80, flags: 0x018, opts: synOpts}
	h6 := ip6{hlim: 64, plen: -1, next: ipProto.UDP,
		exts: []ext{{typ: ipProto.HOP, body: 6}, {typ: ipProto.ROUTING, body: 22}, {typ: ipProto.DST, body: 14}, {typ: ipProto.AH, body: 10}}}
	chain6, first6 := h6.chain()
	hf := ip6{hlim: 64, plen: -1, next: ipProto.TCP, exts: []ext{{typ: ipProto.HOP, body: 6}, {typ: ipProto.FRAG, more: true, id: 1}}}
	chainF, firstF := hf.chain()
	v6 := func(first uint8) func([]byte) []byte {
		return func(p []byte) []byte { return cat(ether(0x86dd), ip6{hlim: 64, plen: -1}.build(first, p)) }
	}
	return []l4Stack{
		{"ipv4_tcp", v4(ipProto.TCP), th.build(httpGet),
			[]seg{{20, "tcp_truncated"}, {len(synOpts), "tcp_bad_data_offset"}, {len(httpGet), ""}}},
		{"ipv4_udp", v4(ipProto.UDP), udp{sport: 1, dport: 53}.build(dnsQuery),
			[]seg{{8, "udp_truncated"}, {len(dnsQuery), "udp_bad_length"}}},
		{"ipv4_icmp", v4(ipProto.ICMP), icmp(8, 0, fill(20, 0)),
			[]seg{{8, "icmp_truncated"}, {20, ""}}},
		{"ipv6_ext_udp", v6(first6), cat(chain6, udp{sport: 1, dport: 53}.build(dnsQuery)),
			[]seg{{8, "ipv6_ext_truncated"}, {24, "ipv6_ext_truncated"}, {16, "ipv6_ext_truncated"}, {12, "ipv6_ext_truncated"},
				{8, "udp_truncated"}, {len(dnsQuery), "udp_bad_length"}}},
		{"ipv6_frag_tcp", v6(firstF), cat(chainF, th.build(tlsHello)),
			[]seg{{8, "ipv6_ext_truncated"}, {8, "ipv6_ext_truncated"}, {20, "tcp_truncated"}, {len(synOpts), "tcp_bad_data_offset"}, {len(tlsHello), ""}}},
		{"ipv6_icmpv6", v6(ipProto.ICMP6), icmp(128, 0, fill(20, 0)),
			[]seg{{8, "icmp_truncated"}, {20, ""}}},
	}
}

func TestTruncatedL4(t *testing.T) {
	e := newEnv(t, Config{})
	for _, s := range l4Stacks() {
		t.Run(s.name, func(t *testing.T) {
			total := 0
			for _, g := range s.segs {
				total += g.n
			}
			if total != len(s.l3) {
				t.Fatalf("segments cover %d of %d bytes", total, len(s.l3))
			}
			full := e.run(t, s.build(s.l3), false)
			if full.p.ParseError != "" {
				t.Fatalf("whole packet: parse_error %q", full.p.ParseError)
			}
			for k := 0; k < len(s.l3); k++ {
				want, start := "", 0
				for _, g := range s.segs {
					if k < start+g.n {
						want = g.reason
						break
					}
					start += g.n
				}
				for _, tc := range []bool{false, true} {
					d := e.run(t, s.build(s.l3[:k]), tc)
					if d.p.ParseError != want {
						t.Fatalf("L3 payload cut at %d (tc=%v): parse_error %q, want %q", k, tc, d.p.ParseError, want)
					}
					if want == "" && d.p.SrcPort != full.p.SrcPort && d.p.ICMPType != full.p.ICMPType {
						t.Fatalf("cut at %d: L4 fields differ:%s", k, diffFields(d.p, full.p))
					}
				}
			}
		})
	}
}
