package nettest

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestGeneveTunnel: two user-space Geneve endpoints over a veth pair carry a UDP exchange on
// the overlay (ARP included); every frame one end sent the other received, and Close removes
// the TAP devices without an error.
func TestGeneveTunnel(t *testing.T) {
	v := NewVethPair(t)
	ends := []*Geneve{
		{NS: v.NS, Dev: "gnv0", Local: v.Addr, Remote: v.PeerAddr, VNI: 4242},
		{NS: v.PeerNS, Dev: "gnv0", Local: v.PeerAddr, Remote: v.Addr, VNI: 4242},
	}
	for i, g := range ends {
		if err := g.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close() })
		MustExec(t, g.NS, "ip", "addr", "add", []string{"10.43.0.1/24", "10.43.0.2/24"}[i], "dev", g.Dev)
	}
	if out := MustExec(t, v.NS, "ip", "-o", "link", "show", "gnv0"); !strings.Contains(string(out), "mtu 1400") {
		t.Errorf("TAP: %s, want mtu 1400", out)
	}

	var conn net.PacketConn
	if err := v.Do(func() (err error) { conn, err = net.ListenPacket("udp", "10.43.0.1:9999"); return err }); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := Do(v.PeerNS, func() error {
		c, err := net.Dial("udp", "10.43.0.1:9999")
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("through geneve"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, from, err := conn.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "through geneve" || from.(*net.UDPAddr).AddrPort().Addr() != netip.MustParseAddr("10.43.0.2") {
		t.Fatalf("overlay receive: %q from %v, %v", buf[:n], from, err)
	}

	for _, g := range ends {
		if err := g.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	// Counted only after Close, which waits for both goroutines: a sender counts its frame after
	// the write returns, which may be after the other end already delivered it.
	// ARP request, ARP reply, the datagram: at least 2 frames from the peer, 1 back.
	if ends[1].Sent() < 2 || ends[0].Sent() < 1 {
		t.Errorf("sent: observed %d, peer %d", ends[0].Sent(), ends[1].Sent())
	}
	// Each end received what the other sent (nothing is in flight once the datagram arrived).
	if ends[0].Received() != ends[1].Sent() || ends[1].Received() != ends[0].Sent() {
		t.Errorf("observed sent %d received %d; peer sent %d received %d", ends[0].Sent(), ends[0].Received(), ends[1].Sent(), ends[1].Received())
	}
	if out, err := Exec(t.Context(), v.NS, "ip", "link", "show", "gnv0"); err == nil {
		t.Errorf("TAP still there after Close: %s", out)
	}
}

func TestGeneveUnwrapRejects(t *testing.T) {
	g := &Geneve{VNI: 7}
	ok := append([]byte{0x02, 0x40, 0x65, 0x58, 0, 0, 7, 0}, geneveOption...)
	ok = append(ok, make([]byte, 14)...)
	if f, err := g.unwrap(ok); err != nil || len(f) != 14 {
		t.Fatalf("valid datagram: %d bytes, %v", len(f), err)
	}
	for name, mut := range map[string]func(b []byte){
		"version 1":            func(b []byte) { b[0] |= 0x40 },
		"IPv4 inner":           func(b []byte) { b[2], b[3] = 0x08, 0x00 },
		"other VNI":            func(b []byte) { b[6] = 8 },
		"options past the end": func(b []byte) { b[0] = 0x3f },
	} {
		b := append([]byte(nil), ok...)
		mut(b)
		if _, err := g.unwrap(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
