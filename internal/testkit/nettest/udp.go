package nettest

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// UDPFlows sends UDP datagrams from the peer end of a veth to the observed end (port 9), one flow
// per source port from 41000, and counts what each flow sent as the kernel counts it: packets
// and Ethernet frame bytes. A permanent neighbour entry replaces ARP, so every datagram the
// sender counts reaches the observed end's programs (ARP resolution would drop the first ones
// in the sender's queue), and nothing but the datagrams arrives.
type UDPFlows struct {
	conns []*net.UDPConn
	dst   netip.AddrPort
	mu    sync.Mutex
	sent  map[uint16][2]uint64 // source port → packets, bytes
	n     int
}

// NewUDPFlows opens flows sockets in v's peer namespace, closed when the test ends.
func NewUDPFlows(t testing.TB, v *Veth, flows int) *UDPFlows {
	t.Helper()
	MustExec(t, v.PeerNS, "ip", "neigh", "replace", v.Addr.String(), "lladdr", v.MAC.String(), "dev", v.PeerName, "nud", "permanent")
	u := &UDPFlows{sent: map[uint16][2]uint64{}, dst: netip.AddrPortFrom(v.Addr, 9)}
	err := Do(v.PeerNS, func() error {
		for i := range flows {
			// Unconnected: a connected socket would fail writes with the ICMP port unreachable
			// the observed end answers with.
			c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(v.PeerAddr, uint16(41000+i))))
			if err != nil {
				return err
			}
			u.conns = append(u.conns, c)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("nettest: UDP sockets in %s: %v", v.PeerNS, err)
	}
	t.Cleanup(func() {
		for _, c := range u.conns {
			c.Close()
		}
	})
	return u
}

// Send writes one datagram on flow i, 100 to 1099 bytes of payload, and counts it if it left.
func (u *UDPFlows) Send(i int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.n++
	payload := make([]byte, 100+u.n*37%1000)
	if _, err := u.conns[i].WriteToUDPAddrPort(payload, u.dst); err != nil {
		return
	}
	port := uint16(u.conns[i].LocalAddr().(*net.UDPAddr).Port)
	s := u.sent[port]
	u.sent[port] = [2]uint64{s[0] + 1, s[1] + uint64(14+20+8+len(payload))}
}

// Burst sends n datagrams on flow i at once.
func (u *UDPFlows) Burst(i, n int) {
	for range n {
		u.Send(i)
	}
}

// Run sends one datagram on each of the first flows every period until stop is called (or ctx
// ends); stop returns once the sender has.
func (u *UDPFlows) Run(ctx context.Context, period time.Duration, flows int) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			for i := range flows {
				u.Send(i)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}

// Sent returns, per source port, the packets and bytes sent so far.
func (u *UDPFlows) Sent() map[uint16][2]uint64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make(map[uint16][2]uint64, len(u.sent))
	for k, v := range u.sent {
		out[k] = v
	}
	return out
}

// Total is the packets sent so far on all flows.
func (u *UDPFlows) Total() uint64 {
	var n uint64
	for _, s := range u.Sent() {
		n += s[0]
	}
	return n
}
