package record

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
)

// TestKernelTunnelTrailer: a record carries the 32-byte tunnel trailer exactly when tunnel_depth
// != 0, between the struct and the snippet, and decodes back to the same packet; without it the
// tunnel addresses are zero, as they were in the one-struct layout.
func TestKernelTunnelTrailer(t *testing.T) {
	plain := samplePacket(1)
	tun := samplePacket(2)
	tun.TunnelType, tun.TunnelID, tun.TunnelDepth, tun.TunnelTTL = "geneve", 0xabcdef, 2, 62
	tun.TunnelSrc = netip.MustParseAddr("192.0.2.1").As16()
	tun.TunnelDst = netip.MustParseAddr("2001:db8::2").As16()
	mpls := samplePacket(3) // MPLS straight over Ethernet: tunnelled, but no IP header carried it
	mpls.TunnelType, mpls.TunnelDepth, mpls.TunnelID = "mpls", 1, 16
	for _, c := range []struct {
		name    string
		p       Packet
		snip    string
		trailer int
	}{
		{"plain", plain, "", 0},
		{"plain+snippet", plain, "GET / HTTP/1.1\r\n", 0},
		{"tunnel", tun, "", KernelTunnelSize},
		{"tunnel+snippet", tun, "GET / HTTP/1.1\r\n", KernelTunnelSize},
		{"mpls", mpls, "x", KernelTunnelSize},
	} {
		b := AppendKernel(nil, &c.p, 9, 3, []byte(c.snip))
		if want := KernelRecordSize + c.trailer + len(c.snip); len(b) != want {
			t.Errorf("%s: %d bytes, want %d", c.name, len(b), want)
		}
		if n, err := SampleLen(b); err != nil || n != len(b) {
			t.Errorf("%s: SampleLen %d, %v; want %d", c.name, n, err, len(b))
		}
		// Garbage in the tunnel address fields of the packet to decode into must not survive a
		// record without a trailer: p is reused from record to record.
		got := tun
		k, err := DecodeKernel(b, &got)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got != c.p || string(k.Snippet) != c.snip {
			t.Errorf("%s: decoded %+v snippet %q\nwant %+v snippet %q", c.name, got, k.Snippet, c.p, c.snip)
		}
		// Every cut of the sample is refused, the trailer's bytes included.
		for n := 0; n < len(b); n++ {
			if _, err := SampleLen(b[:n]); err == nil {
				t.Errorf("%s: %d-byte prefix accepted", c.name, n)
			}
			if _, err := DecodeKernel(b[:n], &got); err == nil {
				t.Errorf("%s: %d-byte prefix decoded", c.name, n)
			}
		}
	}
	// Records with and without the trailer walk back to back, as in a batch from the ring.
	var batch []byte
	for i := range 6 {
		p := plain
		if i%2 == 1 {
			p = tun
		}
		batch = AppendKernel(batch, &p, uint64(i), 0, bytes.Repeat([]byte{'s'}, i))
	}
	for i := 0; len(batch) > 0; i++ {
		n, err := SampleLen(batch)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		var got Packet
		k, _ := DecodeKernel(batch[:n], &got)
		if k.TSNanos != uint64(i) || len(k.Snippet) != i || (got.TunnelDepth != 0) != (i%2 == 1) {
			t.Errorf("record %d: ts %d snippet %d depth %d", i, k.TSNanos, len(k.Snippet), got.TunnelDepth)
		}
		batch = batch[n:]
	}
}

func TestAppendKernelRefusesAddressesWithoutDepth(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("tunnel_src with tunnel_depth 0 encoded: the decoder would drop it")
		}
	}()
	p := samplePacket(1)
	p.TunnelSrc[15] = 1
	AppendKernel(nil, &p, 0, 0, nil)
}

// TestLegacyFrameDecoded: testdata/frame_152.bin was written by the FrameBuilder and AppendKernel
// of the build before the tunnel trailer (git main at 1f3c568), with legacyPackets. Its 152-byte
// records decode to the same packets, seqs and snippets as today's records of them.
func TestLegacyFrameDecoded(t *testing.T) {
	b, err := os.ReadFile("testdata/frame_152.bin")
	if err != nil {
		t.Fatal(err)
	}
	if rs := le.Uint16(b[6:]); rs != legacyRecordSize {
		t.Fatalf("testdata frame says pl_record is %d bytes", rs)
	}
	h, samples, err := ParseFrame(b)
	if err != nil {
		t.Fatal(err)
	}
	ps, snips := legacyPackets()
	if h.Count != len(ps) || h.Host != "old" || h.FirstSeq != 100 {
		t.Fatalf("header %+v", h)
	}
	i := 0
	var p Packet
	err = FrameState(h, samples, &p, nil, func(p *Packet) error {
		want := ps[i]
		want.Host, want.Iface, want.CollectorID, want.Seq = "old", "eth0", 5, uint64(100+i)
		want.TS = int64(1000+i) + 1_000_000
		// The L7 columns come from the snippet: decode today's record of the same packet for them.
		var now Packet
		k, err := DecodeKernel(AppendKernel(nil, &ps[i], 0, map[int]uint8{1: 3, 4: 1}[i], snips[i]), &now)
		if err != nil {
			return err
		}
		ParseL7(&now, k)
		now.Host, now.Iface, now.CollectorID, now.Seq, now.TS = want.Host, want.Iface, want.CollectorID, want.Seq, want.TS
		if *p != now || p.TunnelSrc != want.TunnelSrc || p.TunnelDst != want.TunnelDst || p.TunnelDepth != want.TunnelDepth {
			t.Errorf("packet %d: %+v\nwant %+v", i, *p, now)
		}
		i++
		return nil
	})
	if err != nil || i != len(ps) {
		t.Fatalf("decoded %d of %d: %v", i, len(ps), err)
	}
	if ps[1].TunnelSrc == [16]byte{} || ps[4].DstPort != 53 {
		t.Fatal("legacyPackets lost its tunnelled or its DNS packet")
	}
	// A damaged legacy frame is refused like any other, never a panic.
	for n := 0; n < len(b); n++ {
		if _, _, err := ParseFrame(b[:n]); err == nil {
			t.Errorf("prefix of %d bytes accepted", n)
		}
	}
}

// TestFrameOtherRecordSizeRefused: a frame of a layout this build does not know (pre-17's 112
// bytes, say) is refused as a bad frame -- the ingester's dead letters, counted -- and says why.
func TestFrameOtherRecordSizeRefused(t *testing.T) {
	var fb FrameBuilder
	fb.Reset(FrameHeader{Host: "h", Iface: "i"})
	p := samplePacket(1)
	fb.Append(AppendKernel(nil, &p, 1, 0, nil))
	b := append([]byte(nil), fb.Bytes()...)
	if le.Uint16(b[6:]) != KernelRecordSize {
		t.Fatalf("frame says pl_record is %d bytes, want %d", le.Uint16(b[6:]), KernelRecordSize)
	}
	le.PutUint16(b[6:], 112)
	_, _, err := ParseFrame(b)
	if !errors.Is(err, ErrBadFrame) || !strings.Contains(err.Error(), "pl_record is 112 bytes") {
		t.Errorf("err %v, want ErrBadFrame naming the size", err)
	}
}

// legacyPackets are the packets of testdata/frame_152.bin: an ordinary one, a VXLAN-tunnelled one
// with a snippet, GRE in VXLAN, an MPLS stack straight over Ethernet cut short (depth 1, no
// addresses), and a DNS query with a snippet.
func legacyPackets() ([]Packet, [][]byte) {
	var ps []Packet
	var snips [][]byte
	for i := 0; i < 5; i++ {
		p := Packet{Ifindex: 3, PktLen: uint32(100 + i), SrcMAC: 0x020000000001, DstMAC: 0x020000000002,
			EthType: 0x0800, IPVersion: 4, IPProto: 6, TTL: 63, TOS: 0, IPLen: uint16(86 + i), IPID: uint32(7 * i),
			SrcPort: uint16(40000 + i), DstPort: 443, TCPFlags: 0x18, TCPSeq: 1000, TCPAck: 2000, TCPWindow: 512,
			PayloadLen: uint16(46 + i), SampleRate: 1}
		p.SrcAddr = netip.MustParseAddr("10.0.0.1").As16()
		p.DstAddr = netip.MustParseAddr("10.0.0.2").As16()
		var snip []byte
		switch i {
		case 1:
			p.TunnelType, p.TunnelID, p.TunnelDepth, p.TunnelTTL = "vxlan", 42, 1, 64
			p.TunnelSrc = netip.MustParseAddr("192.0.2.11").As16()
			p.TunnelDst = netip.MustParseAddr("2001:db8::12").As16()
			snip = []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		case 2:
			p.TunnelType, p.TunnelID, p.TunnelDepth, p.TunnelTTL = "gre", 7, 2, 61
			p.TunnelSrc = netip.MustParseAddr("198.51.100.1").As16()
			p.TunnelDst = netip.MustParseAddr("198.51.100.2").As16()
		case 3:
			p.TunnelType, p.TunnelDepth, p.ParseError = "mpls", 1, "tunnel_truncated"
			p.EthType, p.IPVersion, p.IPProto, p.SrcAddr, p.DstAddr = 0x8847, 0, 0, [16]byte{}, [16]byte{}
		case 4:
			p.IPProto, p.DstPort = 17, 53
			snip = []byte{0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 'a', 0, 0, 1, 0, 1}
		}
		ps, snips = append(ps, p), append(snips, snip)
	}
	return ps, snips
}
