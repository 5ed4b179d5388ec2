package analytics

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/packetlake/packetlake/record"
)

// synth builds synthetic packets of one collector run.
type synth struct {
	base  time.Time
	host  string
	id    uint64
	seq   uint64
	rng   *rand.Rand
	batch []record.Packet
}

// pkt is a packet's variable part; the rest gets plausible defaults.
type pkt struct {
	at               time.Duration // after base
	iface            string
	src, dst         string
	proto            uint8
	sport, dport     uint16
	flags            uint16
	length           uint32
	rate             uint32
	ttl              uint8
	edit             func(*record.Packet)
	ipFlags          uint8
	fragOff          uint16
	ipID             uint32
	icmpType         uint8
	parseError       string
	ethType, version uint16 // overrides for non-IP
}

func (s *synth) add(k pkt) {
	p := record.Packet{
		TS:          s.base.Add(k.at).UnixNano(),
		Host:        s.host,
		Iface:       k.iface,
		CollectorID: s.id,
		Seq:         s.seq,
		Ifindex:     2,
		PktLen:      k.length,
		SrcMAC:      0x020000000001,
		DstMAC:      0x020000000002,
		TTL:         k.ttl,
		IPProto:     k.proto,
		SrcPort:     k.sport,
		DstPort:     k.dport,
		TCPFlags:    k.flags,
		SampleRate:  k.rate,
		IPFlags:     k.ipFlags,
		FragOffset:  k.fragOff,
		IPID:        k.ipID,
		ICMPType:    k.icmpType,
		ParseError:  k.parseError,
	}
	s.seq++
	if p.Iface == "" {
		p.Iface = "eth0"
	}
	if p.TTL == 0 {
		p.TTL = 64
	}
	if k.src != "" {
		src, dst := netip.MustParseAddr(k.src), netip.MustParseAddr(k.dst)
		p.SrcAddr, p.DstAddr = src.As16(), dst.As16()
		if src.Is4() {
			p.EthType, p.IPVersion = 0x0800, 4
			p.IPLen = uint16(min(p.PktLen-14, 65535))
		} else {
			p.EthType, p.IPVersion = 0x86dd, 6
			p.IPLen = uint16(min(p.PktLen-14, 65535))
		}
	}
	if k.ethType != 0 {
		p.EthType, p.IPVersion = k.ethType, uint8(k.version)
	}
	if p.IPProto == 6 {
		p.TCPSeq, p.TCPAck, p.TCPWindow = s.rng.Uint32(), s.rng.Uint32(), 64240
	}
	if k.edit != nil {
		k.edit(&p)
	}
	s.batch = append(s.batch, p)
}

func (s *synth) flush(token string) Batch {
	b := Batch{Token: token, Packets: s.batch}
	s.batch = nil
	return b
}

// Synthetic returns packets the captures lack, in three batches from host edge-3, between
// base + 40 min and base + 80 min: every one has a sample_rate above 1 except where noted.
//
//   - a SYN port scan (one source, 300 ports, sample_rate 16) and a SYN flood (50 sources, one
//     port, sample_rate 64; half the sources also send with a second, distant TTL);
//   - an IPv6 bulk transfer of 9000-byte jumbo frames at sample_rate 1,000,000: bytes × rate
//     exceeds 2^32, so 32-bit arithmetic anywhere would show;
//   - DNS queries and responses (sample_rate 4) with NXDOMAIN answers and several qtypes;
//   - TLS ClientHellos (rate 2) and HTTP requests (rate 3) from a few clients;
//   - IPv4 and IPv6 fragments (rate 5), ICMP echo (rate 3), ARP (rate 2), parse errors (rate 1).
func Synthetic(base time.Time) []Batch {
	s := &synth{base: base, host: "edge-3", id: 9001, rng: rand.New(rand.NewPCG(1, 2))}
	var out []Batch
	mins := func(m float64) time.Duration { return time.Duration(m * float64(time.Minute)) }

	// Batch 1: scan, flood, TTL spread.
	for i := range 300 {
		s.add(pkt{at: mins(40 + float64(i)/60), src: "203.0.113.7", dst: "198.51.100.10", proto: 6,
			sport: 40000, dport: uint16(1 + i*3), flags: 0x02, length: 60, rate: 16, ttl: 49})
	}
	for i := range 500 {
		src := fmt.Sprintf("192.0.2.%d", 1+i%50)
		ttl := uint8(57)
		if i%50 < 25 && i%2 == 1 {
			ttl = 240 // a second initial TTL (255) from the same source: spoofing
		}
		s.add(pkt{at: mins(44 + float64(i)/100), src: src, dst: "198.51.100.10", proto: 6,
			sport: uint16(1024 + s.rng.IntN(60000)), dport: 443, flags: 0x02, length: 74, rate: 64, ttl: ttl})
	}
	// A few handshakes complete: bare ACKs to the flooded port.
	for i := range 20 {
		s.add(pkt{at: mins(46 + float64(i)/20), src: fmt.Sprintf("192.0.2.%d", 1+i), dst: "198.51.100.10", proto: 6,
			sport: 50000, dport: 443, flags: 0x10, length: 66, rate: 64, ttl: 57})
	}
	out = append(out, s.flush("synthetic-1"))

	// Batch 2: jumbo bulk over IPv6 crossing the hour, DNS, TLS, HTTP.
	for i := range 60 {
		flags := uint16(0x10)
		switch {
		case i == 0:
			flags = 0x02
		case i%7 == 0:
			flags = 0x18 // PSH ACK
		case i == 58:
			flags = 0x11 // FIN ACK
		case i == 59:
			flags = 0x04 // RST
		}
		s.add(pkt{at: mins(55 + float64(i)/6), iface: "eth1", src: "2001:db8::1", dst: "2001:db8::2", proto: 6,
			sport: 33000, dport: 5001, flags: flags, length: 9000, rate: 1_000_000, ttl: 64})
	}
	names := []struct {
		name  string
		qtype uint16
		rcode uint8
	}{{"example.com", 1, 0}, {"example.com", 28, 0}, {"mail.example.com", 15, 0}, {"nx.example", 1, 3}, {"does-not-exist.test", 1, 3}}
	for i := range 200 {
		n := names[i%len(names)]
		client := fmt.Sprintf("10.0.0.%d", 5+i%3)
		at := mins(41 + float64(i)/10)
		id := uint16(s.rng.Uint32())
		s.add(pkt{at: at, src: client, dst: "9.9.9.9", proto: 17, sport: uint16(20000 + i), dport: 53, length: 80, rate: 4, ttl: 64,
			edit: func(p *record.Packet) {
				p.DNSID, p.DNSQName, p.DNSQType, p.PayloadLen = id, n.name, n.qtype, 38
			}})
		if i%4 != 3 { // a quarter of the queries go unanswered
			s.add(pkt{at: at + 20*time.Millisecond, src: "9.9.9.9", dst: client, proto: 17, sport: 53, dport: uint16(20000 + i), length: 120, rate: 4, ttl: 58,
				edit: func(p *record.Packet) {
					p.DNSID, p.DNSQName, p.DNSQType, p.DNSIsResponse, p.DNSRCode, p.PayloadLen = id, n.name, n.qtype, 1, n.rcode, 78
					if n.rcode == 0 {
						p.DNSAnswers = 1
					}
				}})
		}
	}
	for i := range 90 {
		port := uint16(443)
		if i%3 == 0 {
			port = 8443
		}
		sni := "api.example.com"
		if i%5 == 0 {
			sni = "telemetry.example.net"
		}
		s.add(pkt{at: mins(45 + float64(i)/3), src: fmt.Sprintf("10.1.0.%d", 1+i%4), dst: "198.51.100.20", proto: 6,
			sport: uint16(41000 + i), dport: port, flags: 0x18, length: 583, rate: 2, ttl: 64,
			edit: func(p *record.Packet) { p.TLSSNI, p.PayloadLen = sni, 517 }})
	}
	for i := range 60 {
		method, path := "GET", "/login"
		if i%4 == 0 {
			method, path = "POST", "/api/v1/upload"
		}
		host := "intranet.example"
		if i%6 == 0 {
			host = "intranet.example:8080"
		}
		s.add(pkt{at: mins(52 + float64(i)/3), src: fmt.Sprintf("10.2.0.%d", 1+i%2), dst: "198.51.100.30", proto: 6,
			sport: uint16(42000 + i), dport: 80, flags: 0x18, length: 420, rate: 3, ttl: 64,
			edit: func(p *record.Packet) { p.HTTPMethod, p.HTTPHost, p.HTTPPath, p.PayloadLen = method, host, path, 354 }})
	}
	out = append(out, s.flush("synthetic-2"))

	// Batch 3: fragments, ICMP, ARP, parse errors, one packet per minute up to base + 80 min.
	for d := range 12 {
		id := uint32(7000 + d)
		for f := range 3 {
			flags := uint8(1)
			if f == 2 {
				flags = 0
			}
			s.add(pkt{at: mins(61 + float64(d)/2 + float64(f)/100), src: "10.9.9.9", dst: "198.51.100.10", proto: 17,
				sport: 0, dport: 0, length: 1514, rate: 5, ipFlags: flags, fragOff: uint16(f * 1480), ipID: id,
				edit: func(p *record.Packet) {
					if f == 0 {
						p.SrcPort, p.DstPort = 5353, 9999
					}
				}})
		}
	}
	for d := range 4 {
		for f := range 2 {
			s.add(pkt{at: mins(63 + float64(d) + float64(f)/100), src: "2001:db8::99", dst: "2001:db8::2", proto: 17,
				length: 1294, rate: 5, ipFlags: uint8(1 - f), fragOff: uint16(f * 1232), ipID: uint32(0x10000 + d),
				edit: func(p *record.Packet) { p.IP6Ext = 4 }})
		}
	}
	for i := range 40 {
		s.add(pkt{at: mins(66 + float64(i)/10), src: "192.0.2.200", dst: "198.51.100.10", proto: 1,
			length: 98, rate: 3, ttl: 60, icmpType: 8})
	}
	for i := range 30 {
		s.add(pkt{at: mins(70 + float64(i)/3), length: 60, rate: 2, ethType: 0x0806, version: 0, iface: "eth1"})
	}
	for i := range 10 {
		s.add(pkt{at: mins(75 + float64(i)/2), src: "203.0.113.66", dst: "198.51.100.10", proto: 6,
			length: 54, rate: 1, parseError: "tcp_truncated"})
	}
	// Pod traffic in two VXLAN networks between two nodes, and one GRE tunnel inside a VXLAN one.
	for i := range 24 {
		vni, typ, depth := uint32(42+i%2), "vxlan", uint8(1)
		if i%6 == 5 {
			vni, typ, depth = 7, "gre", 2
		}
		node := [2]string{"::ffff:192.0.2.11", "::ffff:192.0.2.12"}
		s.add(pkt{at: mins(76 + float64(i)/6), src: fmt.Sprintf("10.244.%d.%d", i%2, 2+i%3), dst: "10.244.9.9", proto: 6,
			sport: uint16(50000 + i), dport: 8080, flags: 0x10, length: 164, rate: uint32(1 + i%2), ttl: 63,
			edit: func(p *record.Packet) {
				p.TunnelType, p.TunnelID, p.TunnelDepth, p.TunnelTTL = typ, vni, depth, 64
				p.TunnelSrc = netip.MustParseAddr(node[i%2]).As16()
				p.TunnelDst = netip.MustParseAddr(node[1-i%2]).As16()
			}})
	}
	out = append(out, s.flush("synthetic-3"))
	return out
}
