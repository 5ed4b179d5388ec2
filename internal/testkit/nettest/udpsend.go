package nettest

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// SendUDP sends n datagrams of size payload bytes from v's peer end, port src, to the observed
// end's port dst, and fails the test if any is not sent. With badSum the UDP checksum is made
// wrong on purpose: the datagrams go out through a raw socket (the kernel builds the IP header,
// the UDP header is ours), which the receiving kernel then drops for it. Each arrives as a
// frame of 14+20+8+size bytes.
func SendUDP(t testing.TB, v *Veth, src, dst uint16, n, size int, badSum bool) {
	t.Helper()
	err := Do(v.PeerNS, func() error {
		payload := bytes.Repeat([]byte{'d'}, size)
		if !badSum {
			c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(v.PeerAddr, src)))
			if err != nil {
				return err
			}
			defer c.Close()
			for range n {
				if _, err := c.WriteToUDPAddrPort(payload, netip.AddrPortFrom(v.Addr, dst)); err != nil {
					return err
				}
			}
			return nil
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_UDP)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		dgram := make([]byte, 8+size)
		binary.BigEndian.PutUint16(dgram[0:], src)
		binary.BigEndian.PutUint16(dgram[2:], dst)
		binary.BigEndian.PutUint16(dgram[4:], uint16(8+size))
		copy(dgram[8:], payload)
		binary.BigEndian.PutUint16(dgram[6:], UDPChecksum(v.PeerAddr, v.Addr, dgram)^0x5a5a) // a checksum, not the right one
		to := &unix.SockaddrInet4{Addr: v.Addr.As4()}
		for range n {
			if err := unix.Sendto(fd, dgram, 0, to); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("nettest: send UDP from %s: %v", v.PeerNS, err)
	}
}

// UDPChecksum is RFC 768's checksum of the IPv4 datagram dgram (header and payload; its
// checksum field is skipped) from src to dst.
func UDPChecksum(src, dst netip.Addr, dgram []byte) uint16 {
	s4, d4 := src.As4(), dst.As4()
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(s4[:])
	add(d4[:])
	add([]byte{0, unix.IPPROTO_UDP, byte(len(dgram) >> 8), byte(len(dgram))})
	add(dgram[:6])
	add(dgram[8:])
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	if s := ^uint16(sum); s != 0 {
		return s
	}
	return 0xffff
}

// NeighboursBothWays makes permanent neighbour entries for each end in the other's namespace:
// no ARP crosses the pair, so tests counting packets see only their own.
func NeighboursBothWays(t testing.TB, v *Veth) {
	t.Helper()
	MustExec(t, v.PeerNS, "ip", "neigh", "replace", v.Addr.String(), "lladdr", v.MAC.String(), "dev", v.PeerName, "nud", "permanent")
	MustExec(t, v.NS, "ip", "neigh", "replace", v.PeerAddr.String(), "lladdr", v.PeerMAC.String(), "dev", v.Name, "nud", "permanent")
}
