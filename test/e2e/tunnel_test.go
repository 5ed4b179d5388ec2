package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/packetlake/packetlake/schema"
)

// Hand-built encapsulations for the kinds the shared captures lack (they have VXLAN, Geneve and
// plain GRE): GRE with checksum, key and sequence, GRE carrying Ethernet and MPLS, ERSPAN II and
// III, the four IP-in-IP kinds, an MPLS stack, VXLAN on Linux's port 8472, Geneve with options and
// an IP payload, and two levels (VXLAN in GRE, MPLS in GRE over IPv6). tshark is the oracle, as
// for the shared captures.

var (
	tunMACa = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xa1}
	tunMACb = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xb2}
	tunMACc = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xc3}
	tunMACd = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xd4}
)

func tunSerialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func tunIPv4(src, dst string, proto layers.IPProtocol, ttl uint8) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: ttl, Id: 0x1234, Flags: layers.IPv4DontFragment,
		Protocol: proto, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
}

func tunIPv6(src, dst string, nh layers.IPProtocol, hlim uint8) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: hlim, FlowLabel: 0x12345, NextHeader: nh,
		SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
}

// tunPort makes each inner flow its own: tshark takes a repeated TCP segment for a retransmission
// and does not dissect its payload again.
var tunPort uint16 = 41000

// tunInner returns an IP packet (no Ethernet): a TCP SYN, a DNS query or an HTTP GET.
func tunInner(t testing.TB, v6 bool, kind string) []byte {
	tunPort++
	var ip gopacket.SerializableLayer
	var nl gopacket.NetworkLayer
	proto := layers.IPProtocolTCP
	if kind == "dns" {
		proto = layers.IPProtocolUDP
	}
	if v6 {
		x := tunIPv6("fd00::10", "fd00::20", proto, 61)
		ip, nl = x, x
	} else {
		x := tunIPv4("10.244.1.10", "10.244.2.20", proto, 61)
		ip, nl = x, x
	}
	switch kind {
	case "dns":
		udp := &layers.UDP{SrcPort: layers.UDPPort(tunPort), DstPort: 53}
		udp.SetNetworkLayerForChecksum(nl)
		dns := &layers.DNS{ID: 0x4242, RD: true, Questions: []layers.DNSQuestion{{Name: []byte("pod.cluster.local"), Type: layers.DNSTypeA, Class: layers.DNSClassIN}}}
		return tunSerialize(t, ip, udp, dns)
	case "http":
		tcp := &layers.TCP{SrcPort: layers.TCPPort(tunPort), DstPort: 80, Seq: 1000, Ack: 2000, ACK: true, PSH: true, Window: 502, DataOffset: 5}
		tcp.SetNetworkLayerForChecksum(nl)
		return tunSerialize(t, ip, tcp, gopacket.Payload("GET /api/v1/pods HTTP/1.1\r\nHost: kube.example\r\n\r\n"))
	}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(tunPort), DstPort: 443, Seq: 7, SYN: true, Window: 64240, DataOffset: 5}
	tcp.SetNetworkLayerForChecksum(nl)
	return tunSerialize(t, ip, tcp)
}

// tunEth puts an Ethernet header (optionally one 802.1Q tag) in front of payload of type et.
func tunEth(t testing.TB, src, dst net.HardwareAddr, et layers.EthernetType, vlan uint16, payload []byte) []byte {
	if vlan != 0 {
		return tunSerialize(t, &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: vlan, Type: et}, gopacket.Payload(payload))
	}
	return tunSerialize(t, &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: et}, gopacket.Payload(payload))
}

func tunEtherOf(ip []byte) layers.EthernetType {
	if ip[0]>>4 == 6 {
		return layers.EthernetTypeIPv6
	}
	return layers.EthernetTypeIPv4
}

// tunGRE is a GRE header with the optional fields asked for (csum is left zero: no one checks it).
func tunGRE(proto uint16, csum bool, key *uint32, seq *uint32) []byte {
	var fl uint16
	b := make([]byte, 4)
	if csum {
		fl |= 0x8000
		b = append(b, 0, 0, 0, 0)
	}
	if key != nil {
		fl |= 0x2000
		b = binary.BigEndian.AppendUint32(b, *key)
	}
	if seq != nil {
		fl |= 0x1000
		b = binary.BigEndian.AppendUint32(b, *seq)
	}
	binary.BigEndian.PutUint16(b, fl)
	binary.BigEndian.PutUint16(b[2:], proto)
	return b
}

func tunUDP(t testing.TB, outer gopacket.SerializableLayer, nl gopacket.NetworkLayer, sport, dport uint16, payload []byte) []byte {
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	udp.SetNetworkLayerForChecksum(nl)
	return tunSerialize(t, outer, udp, gopacket.Payload(payload))
}

func tunVXLAN(vni uint32) []byte {
	return []byte{0x08, 0, 0, 0, byte(vni >> 16), byte(vni >> 8), byte(vni), 0}
}

// tunGeneve: version 0, options of optWords 4-byte words (one option class 0x0102 type 0x80).
func tunGeneve(vni uint32, proto uint16, optWords int) []byte {
	b := []byte{byte(optWords), 0, byte(proto >> 8), byte(proto), byte(vni >> 16), byte(vni >> 8), byte(vni), 0}
	if optWords > 0 {
		opt := make([]byte, optWords*4)
		opt[0], opt[1], opt[2], opt[3] = 0x01, 0x02, 0x80, byte(optWords-1)
		b = append(b, opt...)
	}
	return b
}

func u32p(v uint32) *uint32 { return &v }

// tunnelFrames are the hand-built captures' frames, with the tunnel type each must be recorded with.
func tunnelFrames(t testing.TB) (frames [][]byte, types []string) {
	add := func(typ string, f []byte) { frames, types = append(frames, f), append(types, typ) }
	eth4 := func(ip []byte) []byte { return tunEth(t, tunMACa, tunMACb, layers.EthernetTypeIPv4, 0, ip) }
	eth6 := func(ip []byte) []byte { return tunEth(t, tunMACa, tunMACb, layers.EthernetTypeIPv6, 0, ip) }
	o4 := func(proto layers.IPProtocol, payload []byte) []byte {
		return eth4(tunSerialize(t, tunIPv4("192.0.2.1", "192.0.2.2", proto, 64), gopacket.Payload(payload)))
	}
	o6 := func(proto layers.IPProtocol, payload []byte) []byte {
		return eth6(tunSerialize(t, tunIPv6("2001:db8::1", "2001:db8::2", proto, 63), gopacket.Payload(payload)))
	}
	in4, in6 := tunInner(t, false, "syn"), tunInner(t, true, "syn")
	dns4, dns6 := tunInner(t, false, "dns"), tunInner(t, true, "dns")
	http4 := func() []byte { return tunInner(t, false, "http") }
	innerEth := func(ip []byte, vlan uint16) []byte { return tunEth(t, tunMACc, tunMACd, tunEtherOf(ip), vlan, ip) }

	// GRE: plain, with checksum + key + sequence, over IPv6, carrying IPv6.
	add("gre", o4(layers.IPProtocolGRE, append(tunGRE(0x0800, false, nil, nil), in4...)))
	add("gre", o4(layers.IPProtocolGRE, append(tunGRE(0x0800, true, u32p(0x1234), u32p(99)), dns4...)))
	add("gre", o6(layers.IPProtocolGRE, append(tunGRE(0x86dd, false, u32p(7), nil), in6...)))
	// GRE transparent Ethernet bridging (0x6558) with a key; the inner frame with a VLAN tag.
	add("gre", o4(layers.IPProtocolGRE, append(tunGRE(0x6558, false, u32p(77), nil), innerEth(http4(), 0)...)))
	add("gre", o4(layers.IPProtocolGRE, append(tunGRE(0x6558, false, u32p(78), nil), innerEth(in4, 30)...)))
	// ERSPAN II: sequence number, 8-byte header (version 1, session 5).
	erspan2 := []byte{0x10, 0x00, 0x00, 0x05, 0, 0, 0, 0}
	add("erspan2", o4(layers.IPProtocolGRE, append(append(tunGRE(0x88be, false, nil, u32p(1)), erspan2...), innerEth(in4, 0)...)))
	// ERSPAN III: 12-byte header (version 2, session 9), no platform sub-header; IPv6 inside.
	erspan3 := []byte{0x20, 0x00, 0x00, 0x09, 0, 0, 0, 1, 0, 0, 0, 0}
	add("erspan3", o4(layers.IPProtocolGRE, append(append(tunGRE(0x22eb, false, nil, u32p(2)), erspan3...), innerEth(in6, 0)...)))
	// IP in IP.
	add("ipip", o4(layers.IPProtocolIPv4, dns4))
	add("6in4", o4(layers.IPProtocolIPv6, dns6))
	add("4in6", o6(layers.IPProtocolIPv4, in4))
	add("ip6ip6", o6(layers.IPProtocolIPv6, in6))
	// MPLS: two labels, then IPv4; one label, then IPv6.
	mpls := func(labels []uint32, ip []byte) []byte {
		var b []byte
		for i, l := range labels {
			w := l<<12 | 64
			if i == len(labels)-1 {
				w |= 1 << 8
			}
			b = binary.BigEndian.AppendUint32(b, w)
		}
		return append(b, ip...)
	}
	add("mpls", tunEth(t, tunMACa, tunMACb, layers.EthernetTypeMPLSUnicast, 0, mpls([]uint32{100, 200}, http4())))
	add("mpls", tunEth(t, tunMACa, tunMACb, layers.EthernetTypeMPLSUnicast, 0, mpls([]uint32{16}, in6)))
	// VXLAN on 4789 and Linux's 8472, over IPv4 and IPv6.
	x4 := tunIPv4("192.0.2.1", "192.0.2.2", layers.IPProtocolUDP, 64)
	x6 := tunIPv6("2001:db8::1", "2001:db8::2", layers.IPProtocolUDP, 63)
	add("vxlan", eth4(tunUDP(t, x4, x4, 51000, 4789, append(tunVXLAN(42), innerEth(http4(), 0)...))))
	add("vxlan", eth4(tunUDP(t, x4, x4, 51001, 8472, append(tunVXLAN(1), innerEth(dns4, 0)...))))
	add("vxlan", eth6(tunUDP(t, x6, x6, 51002, 4789, append(tunVXLAN(0xabcdef), innerEth(dns6, 0)...))))
	// Geneve: with options and Ethernet inside; without options and IPv4 straight inside.
	add("geneve", eth4(tunUDP(t, x4, x4, 52000, 6081, append(tunGeneve(5000, 0x6558, 2), innerEth(in4, 0)...))))
	add("geneve", eth4(tunUDP(t, x4, x4, 52001, 6081, append(tunGeneve(5001, 0x0800, 0), dns4...))))
	// Two levels: VXLAN in GRE (the VTEPs' packet inside a GRE tunnel); MPLS in GRE over IPv6.
	vtep := tunIPv4("172.16.0.1", "172.16.0.2", layers.IPProtocolUDP, 32)
	inGRE := tunUDP(t, vtep, vtep, 53000, 4789, append(tunVXLAN(42), innerEth(http4(), 0)...))
	add("vxlan", o4(layers.IPProtocolGRE, append(tunGRE(0x0800, false, u32p(9), nil), inGRE...)))
	add("mpls", o6(layers.IPProtocolGRE, append(tunGRE(0x8847, false, nil, nil), mpls([]uint32{300}, dns4)...)))
	return frames, types
}

func writeTunnelPcap(t testing.TB, frames [][]byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tunnels.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	for i, fr := range frames {
		ci := gopacket.CaptureInfo{Timestamp: ts.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(fr), Length: len(fr)}
		if err := w.WritePacket(ci, fr); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDecodeTunnelFidelity: `packetlake decode` of the hand-built tunnel frames agrees with tshark
// on every column (the inner packet's and tunnel_*), and each frame has the tunnel type and depth
// it was built with.
func TestDecodeTunnelFidelity(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	frames, types := tunnelFrames(t)
	path := writeTunnelPcap(t, frames)
	stdout, stderr, err := runDecode(ctx, path)
	if err != nil || stderr != "" {
		t.Fatalf("packetlake decode: %v\n%s", err, stderr)
	}
	lines := splitLines(stdout)
	dis := oracleDissect(t, path)
	if len(lines) != len(frames) || len(dis) != len(frames) {
		t.Fatalf("%d JSON objects, tshark %d frames, %d built", len(lines), len(dis), len(frames))
	}
	tl := oracleTally{}
	depth2 := 0
	for i, line := range lines {
		where := fmt.Sprintf("tunnel frame %d (%s, tshark %s)", i+1, types[i], dis[i].first("frame.protocols"))
		p := decodeJSONRecord(t, where, line)
		e := oracleExpect(t, where, dis[i], 0)
		oracleCheck(t, where, &p, e, "", tl)
		if p.TunnelType != types[i] {
			t.Errorf("%s: tunnel_type %q, built as %q", where, p.TunnelType, types[i])
		}
		if p.TunnelDepth == 2 {
			depth2++
		}
	}
	t.Logf("%d tunnelled frames agree with tshark; non-zero matches by column: %v", len(frames), tl)
	for _, m := range []struct {
		col  string
		want int
	}{{"tunnel_type", len(frames)}, {"tunnel_src", len(frames) - 2}, {"tunnel_id", 15}, {"src_port", len(frames) - 4},
		{"dns_qname", 6}, {"http_host", 4}} {
		if tl[m.col] < m.want {
			t.Errorf("only %d %s values matched tshark, want at least %d", tl[m.col], m.col, m.want)
		}
	}
	if depth2 != 2 {
		t.Errorf("%d frames of depth 2, want 2", depth2)
	}
	seen := map[string]bool{}
	for _, typ := range types {
		seen[typ] = true
	}
	for code, name := range schema.TunnelTypes {
		if code != 0 && !seen[name] {
			t.Errorf("no hand-built frame of tunnel type %q", name)
		}
	}
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != '\n' {
			i++
		}
		out = append(out, b[:i])
		if i < len(b) {
			i++
		}
		b = b[i:]
	}
	return out
}
