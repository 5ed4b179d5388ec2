package bpf

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cilium/ebpf/ringbuf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/packetlake/packetlake/internal/pcapfile"
	"github.com/packetlake/packetlake/internal/testkit/testpcaps"
	"github.com/packetlake/packetlake/record"
)

// FuzzParserVsGopacket is a differential fuzz target: each input is an Ethernet frame, run
// through the very BPF program (BPF_PROG_TEST_RUN through pl_xdp) and through gopacket's layer
// decoders, an independent, widely used parser. Seeded with every frame of the shared captures.
// They must agree:
//
//   - the kernel records no parse_error: every L2-L4 field gopacket decoded equals the record's,
//     and gopacket fails no layer up to L4;
//   - the kernel records parse_error P at layer X (eth, vlan, ipv4, ipv6, tcp, udp, icmp): gopacket
//     too rejects or truncates X (a decode failure at X, X missing, or a truncated packet),
//     and the layers below X agree field by field.
//
// Inputs it found that broke an earlier version are seeds in testdata/fuzz/FuzzParserVsGopacket.
//
//	go test -run '^$' -fuzz '^FuzzParserVsGopacket$' -fuzztime 60s ./bpf/
func FuzzParserVsGopacket(f *testing.F) {
	for _, fr := range sharedFrames(f) {
		f.Add(fr)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < 14 || len(frame) > 4000 {
			return // the kernel needs an Ethernet header; a page-sized frame is plenty
		}
		d := fuzzRun(t, frame)
		if diff := differential(d.p, frame); diff != "" {
			t.Fatalf("kernel and gopacket disagree on %x:%s", frame, diff)
		}
	})
}

var (
	fuzzOnce sync.Once
	fuzzEnv  *env
	fuzzMu   sync.Mutex
)

// fuzzRun runs one frame through a program loaded once per process (fuzz workers are processes).
func fuzzRun(t *testing.T, frame []byte) decoded {
	fuzzOnce.Do(func() {
		// Not newEnv: the object must outlive the first input's t.
		o, err := Load(Config{})
		if err != nil {
			panic(fmt.Sprintf("fuzzing the parser needs root and BPF: %v", err))
		}
		e := &env{o: o}
		if e.rd, err = ringbuf.NewReader(o.Events()); err != nil {
			panic(err)
		}
		fuzzEnv = e
	})
	fuzzMu.Lock()
	defer fuzzMu.Unlock()
	return fuzzEnv.run(t, frame, false)
}

// sharedFrames are the Ethernet frames of every shared capture.
func sharedFrames(tb testing.TB) [][]byte {
	var out [][]byte
	for _, sub := range []string{"tcpdump", "ja4"} {
		files, _ := filepath.Glob(filepath.Join(testpcaps.Dir(), sub, "*.pcap*"))
		for _, f := range files {
			frames, lt, err := pcapfile.ReadAll(f)
			if err != nil {
				continue // the captures include deliberately broken files
			}
			for _, fr := range frames {
				if eth, ok := pcapfile.ToEthernet(lt, fr.Data); ok && len(eth) >= 14 {
					out = append(out, eth)
				}
			}
		}
	}
	if len(out) < 100 {
		tb.Fatalf("only %d frames in the shared captures (%s)", len(out), testpcaps.Dir())
	}
	return out
}

// errLayer maps a parse_error to the layer it concerns: its prefix (ipv6_ext_truncated: ipv6),
// "l7" for the user-space parsers' reasons.
func errLayer(pe string) string {
	if pe == "" {
		return ""
	}
	if l, _, _ := strings.Cut(pe, "_"); layerRank[l] > 0 && layerRank[l] < layerRank["l7"] {
		return l
	}
	return "l7"
}

var layerRank = map[string]int{"eth": 1, "vlan": 2, "ipv4": 3, "ipv6": 3, "tcp": 4, "udp": 4, "icmp": 4, "l7": 5}

// differential compares the record p of frame with gopacket's decoding; "" when they agree.
func differential(p record.Packet, frame []byte) string {
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.DecodeOptions{NoCopy: true})
	if p.TunnelType != "" {
		return tunnelDifferential(p, pkt)
	}
	var diffs []string
	eq := func(field string, got, want uint64) {
		if got != want {
			diffs = append(diffs, fmt.Sprintf("%s: kernel %d (%#x), gopacket %d (%#x)", field, got, got, want, want))
		}
	}
	failed := "" // gopacket's failing layer, by the kernel's layer names
	if el := pkt.ErrorLayer(); el != nil {
		// The layer before the DecodeFailure decoded its successor badly. Only the outer
		// headers count: past the first L4 (or tunnel) layer the kernel parses nothing.
		failed = "l7"
		ls := pkt.Layers()
		outer := true
		for i := 0; i < len(ls)-1; i++ {
			switch ls[i].LayerType() {
			case layers.LayerTypeDot1Q:
			case layers.LayerTypeEthernet:
				outer = outer && i == 0
			case layers.LayerTypeIPv4, layers.LayerTypeIPv6, layers.LayerTypeIPv6HopByHop, layers.LayerTypeIPv6Routing,
				layers.LayerTypeIPv6Fragment, layers.LayerTypeIPv6Destination:
			default:
				outer = false
			}
		}
		if outer && len(ls) >= 2 {
			switch ls[len(ls)-2].LayerType() {
			case layers.LayerTypeEthernet, layers.LayerTypeDot1Q:
				failed = "l3orvlan"
			default:
				failed = "l4"
			}
		}
	}
	truncated := pkt.Metadata().Truncated
	// gopacket stops without a DecodeFailure when a header announces a next one and no byte is
	// left for it: that is a truncation too.
	if ls := pkt.Layers(); len(ls) > 0 {
		if dl, ok := ls[len(ls)-1].(gopacket.DecodingLayer); ok && len(ls[len(ls)-1].LayerPayload()) == 0 &&
			dl.NextLayerType() != gopacket.LayerTypeZero && dl.NextLayerType() != gopacket.LayerTypePayload {
			truncated = true
		}
	}
	stop := layerRank[errLayer(p.ParseError)]
	if stop == 0 {
		stop = 99
	}

	eq("pkt_len", uint64(p.PktLen), uint64(len(frame)))
	if eth, ok := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet); ok {
		eq("src_mac", p.SrcMAC, mac64(eth.SrcMAC))
		eq("dst_mac", p.DstMAC, mac64(eth.DstMAC))
	}
	// VLAN tags: gopacket decodes 802.1Q and 802.1ad alike as Dot1Q. The kernel reads two tags.
	var tags []uint64
	etype := uint64(binary.BigEndian.Uint16(frame[12:14]))
	for _, l := range pkt.Layers()[1:] {
		q, ok := l.(*layers.Dot1Q)
		if !ok {
			break // the outer tags only
		}
		tags = append(tags, uint64(q.VLANIdentifier))
		etype = uint64(q.Type)
	}
	// The kernel also takes the old QinQ TPID 0x9100 for a tag, which gopacket does not know:
	// frames with one are compared at the MACs only.
	oldQinQ := etype == 0x9100 || bytesHasTPID9100(frame)
	if stop > layerRank["vlan"] && len(tags) <= 2 && !oldQinQ {
		var outer, inner uint64
		if len(tags) > 0 {
			outer = tags[0]
		}
		if len(tags) > 1 {
			inner = tags[1]
		}
		eq("vlan_id", uint64(p.VlanID), outer)
		eq("inner_vlan_id", uint64(p.InnerVlanID), inner)
		eq("eth_type", uint64(p.EthType), etype)
	}

	var l4Frag bool // gopacket leaves L4 of any fragment undecoded; the kernel parses first fragments
	ip4, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	ip6, _ := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	if stop > layerRank["ipv4"] && !oldQinQ {
		switch {
		case ip4 != nil && p.IPVersion == 4 && len(ip4.SrcIP.To4()) == 4 && len(ip4.DstIP.To4()) == 4:
			eqAddr(&diffs, "src_addr", p.SrcAddr, netip.AddrFrom4([4]byte(ip4.SrcIP.To4())))
			eqAddr(&diffs, "dst_addr", p.DstAddr, netip.AddrFrom4([4]byte(ip4.DstIP.To4())))
			eq("ip_proto", uint64(p.IPProto), uint64(ip4.Protocol))
			eq("ttl", uint64(p.TTL), uint64(ip4.TTL))
			eq("tos", uint64(p.TOS), uint64(ip4.TOS))
			eq("ip_len", uint64(p.IPLen), uint64(ip4.Length))
			eq("ip_id", uint64(p.IPID), uint64(ip4.Id))
			eq("ip_flags", uint64(p.IPFlags), uint64(ip4.Flags))
			eq("frag_offset", uint64(p.FragOffset), uint64(ip4.FragOffset)*8)
			l4Frag = ip4.Flags&layers.IPv4MoreFragments != 0 || ip4.FragOffset != 0
		case ip6 != nil && p.IPVersion == 6 && len(ip6.SrcIP) == 16 && len(ip6.DstIP) == 16:
			eqAddr(&diffs, "src_addr", p.SrcAddr, netip.AddrFrom16([16]byte(ip6.SrcIP.To16())))
			eqAddr(&diffs, "dst_addr", p.DstAddr, netip.AddrFrom16([16]byte(ip6.DstIP.To16())))
			eq("ttl", uint64(p.TTL), uint64(ip6.HopLimit))
			eq("tos", uint64(p.TOS), uint64(ip6.TrafficClass))
			eq("flow_label", uint64(p.FlowLabel), uint64(ip6.FlowLabel))
			if ip6.Length != 0 || ip6.NextHeader != layers.IPProtocolIPv6HopByHop {
				eq("ip_len", uint64(p.IPLen), min(uint64(ip6.Length)+40, 0xffff))
			}
			proto, bits, frag := ip6ChainGopacket(pkt, ip6)
			if proto >= 0 {
				eq("ip_proto", uint64(p.IPProto), uint64(proto))
				eq("ip6_ext", uint64(p.IP6Ext), uint64(bits))
			}
			l4Frag = frag || proto < 0
		case (etype == 0x0800 || etype == 0x86dd) && failed == "" && !truncated:
			diffs = append(diffs, fmt.Sprintf("ip_version: kernel %d, gopacket decoded no IP layer for ethertype %#x", p.IPVersion, etype))
		}
	}
	if stop > layerRank["tcp"] && !l4Frag && p.FragOffset == 0 && !oldQinQ {
		if tcp, ok := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP); ok && p.IPProto == 6 {
			eq("src_port", uint64(p.SrcPort), uint64(tcp.SrcPort))
			eq("dst_port", uint64(p.DstPort), uint64(tcp.DstPort))
			eq("tcp_seq", uint64(p.TCPSeq), uint64(tcp.Seq))
			eq("tcp_ack", uint64(p.TCPAck), uint64(tcp.Ack))
			eq("tcp_window", uint64(p.TCPWindow), uint64(tcp.Window))
			eq("tcp_flags", uint64(p.TCPFlags)&0x1ff, tcpFlags(tcp))
		}
		if udp, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP); ok && p.IPProto == 17 {
			eq("src_port", uint64(p.SrcPort), uint64(udp.SrcPort))
			eq("dst_port", uint64(p.DstPort), uint64(udp.DstPort))
		}
		if ic, ok := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok && p.IPProto == 1 {
			eq("icmp_type", uint64(p.ICMPType), uint64(ic.TypeCode.Type()))
			eq("icmp_code", uint64(p.ICMPCode), uint64(ic.TypeCode.Code()))
		}
		if ic, ok := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6); ok && p.IPProto == 58 {
			eq("icmp_type", uint64(p.ICMPType), uint64(ic.TypeCode.Type()))
			eq("icmp_code", uint64(p.ICMPCode), uint64(ic.TypeCode.Code()))
		}
	}

	// Rejections: a kernel parse_error needs gopacket to reject or truncate too, and the reverse
	// below L4.
	if pe := p.ParseError; oldQinQ {
	} else if pe != "" && errLayer(pe) != "l7" {
		if failed == "" && !truncated && hasLayer(pkt, errLayer(pe)) && !gopacketLenient(pkt, pe) {
			diffs = append(diffs, fmt.Sprintf("parse_error %s, but gopacket decoded %s without complaint (layers %s)", pe, errLayer(pe), layerNames(pkt)))
		}
	} else if failed == "l3orvlan" || failed == "l4" {
		if !kernelIgnores(pkt, p, failed) {
			diffs = append(diffs, fmt.Sprintf("no parse_error, but gopacket fails at %s: %v (layers %s)", failed, pkt.ErrorLayer().Error(), layerNames(pkt)))
		}
	}
	return strings.Join(prefix(diffs), "")
}

// gopacketLenient is true for the checks gopacket does not make, each verified on the bytes
// here: it decodes IPv4 and IPv6 headers whatever their version nibble says, and takes an IPv4
// total length of 0 as "the rest of the frame" (TSO), a UDP length of 0 as a jumbogram's.
func gopacketLenient(pkt gopacket.Packet, pe string) bool {
	if ip6, ok := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ok && pe == "ipv6_bad_version" {
		return len(ip6.Contents) > 0 && ip6.Contents[0]>>4 != 6
	}
	if udp, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP); ok && pe == "udp_bad_length" {
		// A UDP length of 0 is taken for a jumbogram: the rest of the packet.
		return len(udp.Contents) >= 6 && binary.BigEndian.Uint16(udp.Contents[4:6]) == 0
	}
	if ip4, ok := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
		switch pe {
		case "ipv4_bad_version":
			return len(ip4.Contents) > 0 && ip4.Contents[0]>>4 != 4
		case "ipv4_bad_total_length":
			// A total length of 0 is taken for TCP segmentation offload: the frame's length.
			return len(ip4.Contents) >= 4 && binary.BigEndian.Uint16(ip4.Contents[2:4]) == 0
		}
	}
	return false
}

// bytesHasTPID9100 reports a 0x9100 tag among the (up to two) tags the kernel reads.
func bytesHasTPID9100(frame []byte) bool {
	for off := 12; off+2 <= len(frame) && off <= 20; off += 4 {
		t := binary.BigEndian.Uint16(frame[off:])
		if t == 0x9100 {
			return true
		}
		if t != 0x8100 && t != 0x88a8 {
			return false
		}
	}
	return false
}

// kernelIgnores is true for gopacket failures past what the kernel parses: the payload of
// protocols it records only by number (GRE, SCTP, IPsec, tunnels), and L4 of fragments.
func kernelIgnores(pkt gopacket.Packet, p record.Packet, failed string) bool {
	if msg := pkt.ErrorLayer().Error().Error(); failed == "l4" && (strings.Contains(msg, "TLV option") || strings.Contains(msg, "jumbogram")) {
		return true // gopacket checks the options TLVs and the jumbogram option; the kernel walks only the headers lengths (pl_parse_ipv6)
	}
	if failed == "l4" {
		switch p.IPProto {
		case 6, 17, 1, 58:
			return p.FragOffset != 0 || p.IPFlags&1 != 0
		}
		return true
	}
	// Failing after Ethernet/Dot1Q: an ethertype the kernel does not parse either.
	return p.IPVersion == 0 && p.ParseError == ""
}

func hasLayer(pkt gopacket.Packet, name string) bool {
	switch name {
	case "eth":
		return pkt.Layer(layers.LayerTypeEthernet) != nil
	case "vlan":
		return pkt.Layer(layers.LayerTypeDot1Q) != nil
	case "ipv4":
		return pkt.Layer(layers.LayerTypeIPv4) != nil
	case "ipv6":
		return pkt.Layer(layers.LayerTypeIPv6) != nil
	case "tcp":
		return pkt.Layer(layers.LayerTypeTCP) != nil
	case "udp":
		return pkt.Layer(layers.LayerTypeUDP) != nil
	case "icmp":
		return pkt.Layer(layers.LayerTypeICMPv4) != nil || pkt.Layer(layers.LayerTypeICMPv6) != nil
	}
	return false
}

// ip6ChainGopacket follows gopacket's IPv6 extension layers: the final next header (-1 when
// gopacket stopped inside the chain), the kernel's ip6_ext bits, and whether a fragment header
// was seen.
func ip6ChainGopacket(pkt gopacket.Packet, ip6 *layers.IPv6) (proto int, bits uint8, frag bool) {
	nh := ip6.NextHeader
	seen := false
	for _, l := range pkt.Layers() {
		if l == ip6 {
			seen = true
			continue
		}
		if !seen {
			continue
		}
		switch x := l.(type) {
		case *layers.IPv6HopByHop:
			bits |= 1
			nh = x.NextHeader
		case *layers.IPv6Routing:
			bits |= 2
			nh = x.NextHeader
		case *layers.IPv6Fragment:
			bits |= 4
			nh, frag = x.NextHeader, true
		case *layers.IPv6Destination:
			bits |= 8
			nh = x.NextHeader
		case *gopacket.DecodeFailure:
			return -1, bits, frag
		default:
			if nh == layers.IPProtocolAH || nh == 135 || nh == 139 || nh == 140 || nh == 253 || nh == 254 {
				return -1, bits, frag // extension headers gopacket does not walk
			}
			return int(nh), bits, frag
		}
	}
	return int(nh), bits, frag
}

func tcpFlags(t *layers.TCP) uint64 {
	var f uint64
	for i, b := range []bool{t.FIN, t.SYN, t.RST, t.PSH, t.ACK, t.URG, t.ECE, t.CWR, t.NS} {
		if b {
			f |= 1 << i
		}
	}
	return f
}

func mac64(m []byte) uint64 {
	var v uint64
	for _, b := range m {
		v = v<<8 | uint64(b)
	}
	return v
}

func eqAddr(diffs *[]string, field string, got [16]byte, want netip.Addr) {
	if netip.AddrFrom16(got) != netip.AddrFrom16(want.As16()) {
		*diffs = append(*diffs, fmt.Sprintf("%s: kernel %v, gopacket %v", field, netip.AddrFrom16(got).Unmap(), want))
	}
}

func layerNames(pkt gopacket.Packet) string {
	var n []string
	for _, l := range pkt.Layers() {
		n = append(n, l.LayerType().String())
	}
	return strings.Join(n, "/")
}

func prefix(s []string) []string {
	for i := range s {
		s[i] = "\n\t" + s[i]
	}
	return s
}

// tunnelDifferential checks a packet the kernel decapsulated. Its ordinary columns hold the
// innermost packet, which gopacket's layer list does not single out the same way for every
// encapsulation (GRE keys, ERSPAN, MPLS, Geneve options), so they are left to tshark, which
// follows encapsulations to the innermost packet (test/e2e TestDecodeFidelity,
// TestDecodeTunnelFidelity). What gopacket does show plainly is the outer IP header that
// carried a single encapsulation: the kernel's tunnel_src and tunnel_dst must be its addresses.
func tunnelDifferential(p record.Packet, pkt gopacket.Packet) string {
	if p.TunnelDepth != 1 {
		return ""
	}
	var src, dst net.IP
	switch l := pkt.Layers(); {
	case len(l) > 1 && l[1].LayerType() == layers.LayerTypeIPv4:
		ip := l[1].(*layers.IPv4)
		src, dst = ip.SrcIP, ip.DstIP
	case len(l) > 1 && l[1].LayerType() == layers.LayerTypeIPv6:
		ip := l[1].(*layers.IPv6)
		src, dst = ip.SrcIP, ip.DstIP
	default:
		return "" // VLAN-tagged or MPLS underlay: the first IP layer may be inside the label stack
	}
	var diffs []string
	if got := net.IP(p.TunnelSrc[:]); !got.Equal(src) {
		diffs = append(diffs, fmt.Sprintf("tunnel_src: kernel %v, gopacket's outer IP %v", got, src))
	}
	if got := net.IP(p.TunnelDst[:]); !got.Equal(dst) {
		diffs = append(diffs, fmt.Sprintf("tunnel_dst: kernel %v, gopacket's outer IP %v", got, dst))
	}
	return strings.Join(diffs, "\n")
}
