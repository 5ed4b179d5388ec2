package record

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"slices"
	"testing"
)

func samplePacket(i int) Packet {
	p := Packet{
		Ifindex: 7, PktLen: uint32(60 + i), SrcMAC: 0x0a0b0c0d0e0f, DstMAC: 0x112233445566,
		EthType: 0x0800, VlanID: 10, IPVersion: 4, IPProto: 17, TTL: 64, TOS: 0x10, IPLen: 46,
		IPID: uint32(i), IPFlags: 2, SrcPort: 5353, DstPort: 53, PayloadLen: 18, SampleRate: 1,
	}
	p.SrcAddr = netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}).As16()
	p.DstAddr = netip.MustParseAddr("2001:db8::1").As16()
	return p
}

func TestKernelRoundTrip(t *testing.T) {
	want := samplePacket(3)
	want.ParseError = "udp_bad_length"
	b := AppendKernel(nil, &want, 12345, 0, []byte("xyz"))
	var got Packet
	k, err := DecodeKernel(b, &got)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("decoded %+v\nwant    %+v", got, want)
	}
	if k.TSNanos != 12345 || string(k.Snippet) != "xyz" {
		t.Errorf("ts %d snippet %q", k.TSNanos, k.Snippet)
	}
	if got.Src().String() != "10.0.0.3" {
		t.Errorf("src %s", got.Src())
	}
}

func TestFrameRoundTrip(t *testing.T) {
	var fb FrameBuilder
	hdr := FrameHeader{CollectorID: 99, FirstSeq: 1000, ClockOffset: 1_700_000_000_000_000_000, Host: "h1", Iface: "eth0"}
	fb.Reset(hdr)
	for i := 0; i < 50; i++ {
		p := samplePacket(i)
		var snip []byte
		if i%5 == 0 {
			snip = bytes.Repeat([]byte{byte(i)}, i)
		}
		fb.Append(AppendKernel(nil, &p, uint64(i), 0, snip))
	}
	h, samples, err := ParseFrame(fb.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if h.Count != 50 || h.Host != "h1" || h.Iface != "eth0" || h.CollectorID != 99 || h.FirstSeq != 1000 {
		t.Fatalf("header %+v", h)
	}
	var p Packet
	i := 0
	err = Frame(h, samples, &p, func(p *Packet) error {
		want := samplePacket(i)
		want.Host, want.Iface, want.CollectorID, want.Seq = "h1", "eth0", 99, uint64(1000+i)
		want.TS = int64(i) + hdr.ClockOffset
		if *p != want {
			t.Errorf("packet %d: %+v\nwant %+v", i, *p, want)
		}
		i++
		return nil
	})
	if err != nil || i != 50 {
		t.Fatalf("decoded %d packets, err %v", i, err)
	}
	if fb.NextSeq() != 1050 {
		t.Errorf("next seq %d", fb.NextSeq())
	}
}

func TestParseFrameRefusesDamage(t *testing.T) {
	var fb FrameBuilder
	fb.Reset(FrameHeader{Host: "h", Iface: "i"})
	p := samplePacket(1)
	fb.Append(AppendKernel(nil, &p, 1, 0, []byte("abc")))
	good := append([]byte(nil), fb.Bytes()...)
	cases := map[string][]byte{
		"empty":         nil,
		"garbage":       []byte("hello, this is not a frame at all, not even close....."),
		"truncated":     good[:len(good)-1],
		"extra byte":    append(append([]byte(nil), good...), 0),
		"bad version":   func() []byte { b := append([]byte(nil), good...); b[3] = 9; return b }(),
		"count too big": func() []byte { b := append([]byte(nil), good...); b[8] = 2; return b }(),
		"header short":  func() []byte { b := append([]byte(nil), good...); b[4] = 3; b[5] = 0; return b }(),
	}
	for name, b := range cases {
		if _, _, err := ParseFrame(b); !errors.Is(err, ErrBadFrame) {
			t.Errorf("%s: err %v, want ErrBadFrame", name, err)
		}
	}
	// Every prefix of a good frame is refused, never a panic.
	for n := 0; n < len(good); n++ {
		if _, _, err := ParseFrame(good[:n]); err == nil {
			t.Errorf("prefix of %d bytes accepted", n)
		}
	}
}

func FuzzParseFrame(f *testing.F) {
	var fb FrameBuilder
	fb.Reset(FrameHeader{Host: "h", Iface: "i"})
	p := samplePacket(1)
	fb.Append(AppendKernel(nil, &p, 1, 1, []byte{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 1, 0, 1}))
	f.Add(append([]byte(nil), fb.Bytes()...))
	// A tunnelled record (trailer) and a frame of the 152-byte layout (converted by ParseFrame).
	tp := samplePacket(2)
	tp.TunnelType, tp.TunnelDepth, tp.TunnelSrc[15] = "vxlan", 1, 9
	fb.Append(AppendKernel(nil, &tp, 2, 0, []byte("xy")))
	f.Add(append([]byte(nil), fb.Bytes()...))
	if old, err := os.ReadFile("testdata/frame_152.bin"); err == nil {
		f.Add(old)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, samples, err := ParseFrame(b)
		if err != nil {
			return
		}
		var p Packet
		var want []Packet
		if err := Frame(h, samples, &p, func(p *Packet) error { want = append(want, *p); return nil }); err != nil {
			t.Fatalf("frame accepted by ParseFrame failed to decode: %v", err)
		}
		if len(want) != h.Count {
			t.Fatalf("decoded %d of %d", len(want), h.Count)
		}
		// The ingester's way (in place, into a slice that held another frame) decodes the same.
		got, err := AppendFrame(slices.Repeat([]Packet{samplePacket(9)}, 3)[:1], h, samples, nil)
		if err != nil || len(got) != 1+h.Count || !slices.Equal(got[1:], want) {
			t.Fatalf("AppendFrame: %d packets, err %v; not the %d packets of Frame", len(got)-1, err, h.Count)
		}
	})
}
