package nettest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/packetlake/packetlake/internal/netns"
)

// GenevePort is Geneve's UDP port (RFC 8926 §3.3).
const GenevePort = 6081

// Geneve is a Geneve tunnel endpoint (RFC 8926) with its data plane in user space, for kernels
// without a geneve driver (CONFIG_GENEVE unset, as on this project's VMs): a TAP device Dev in
// namespace NS whose Ethernet frames are wrapped in Geneve (protocol 0x6558, Transparent
// Ethernet Bridging, VNI, one OVN-style option) and sent from Local:6081 to Remote:6081 over a
// UDP socket in the same namespace; Geneve datagrams received there are checked, unwrapped and
// written to the TAP. Two of them, one in each namespace of a veth pair, make a Geneve tunnel
// that real clients (curl, dig, openssl) use like any other interface; the underlay carries
// real Geneve datagrams, with the kernel's own UDP/IP headers.
//
// Set the fields, Start, and Close when done: Close ends both goroutines, closes the socket and
// the TAP (which removes the device) and returns the first I/O or protocol error either
// direction met.
type Geneve struct {
	NS, Dev       string     // namespace (ip netns) and TAP device name
	Local, Remote netip.Addr // underlay IPv4 addresses of this end and the other
	VNI           uint32     // 24-bit virtual network identifier, sent and required on receipt
	MTU           int        // TAP MTU; 0 = 1400, so that frame + 14 + 16 + 8 + 20 fits a 1500-byte underlay

	tap  *os.File
	conn *net.UDPConn
	wg   sync.WaitGroup

	sent, received atomic.Uint64 // frames encapsulated (TAP -> UDP) and decapsulated (UDP -> TAP)
	closed         atomic.Bool
	mu             sync.Mutex
	err            error // first error of either direction
}

// geneveOption is the one option every datagram carries: class 0x0102 (Open Virtual Networking),
// type 0x80 (OVN's logical ports; the high bit marks it critical), 4 bytes of data.
var geneveOption = []byte{0x01, 0x02, 0x80, 0x01, 0x00, 0x01, 0x00, 0x02}

const geneveHeaderLen = 8

// Start creates the TAP and the socket inside NS, brings the TAP up with its MTU and starts
// forwarding in both directions. The caller adds the overlay address (ip addr add ... dev Dev).
func (g *Geneve) Start() error {
	if g.VNI >= 1<<24 || !g.Local.Is4() || !g.Remote.Is4() || g.Dev == "" {
		return fmt.Errorf("geneve %s: need a 24-bit VNI, IPv4 Local and Remote and a device name (VNI %d, %v -> %v)", g.Dev, g.VNI, g.Local, g.Remote)
	}
	if g.MTU == 0 {
		g.MTU = 1400
	}
	// Both file descriptors keep the namespace they were opened in.
	err := netns.Do(g.NS, func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("open /dev/net/tun: %w", err)
		}
		ifr, err := unix.NewIfreq(g.Dev)
		if err == nil {
			ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
			err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
		}
		if err != nil {
			unix.Close(fd)
			return fmt.Errorf("TUNSETIFF %s (tap): %w", g.Dev, err)
		}
		// Non-blocking, so the runtime poller waits for frames and Close interrupts a Read.
		g.tap = os.NewFile(uintptr(fd), "/dev/net/tun:"+g.Dev)
		g.conn, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(g.Local, GenevePort)))
		if err != nil {
			g.tap.Close()
			return fmt.Errorf("listen udp %v:%d: %w", g.Local, GenevePort, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("geneve %s in netns %s: %w", g.Dev, g.NS, err)
	}
	// Up before forwarding: the kernel refuses writes to a TAP that is down.
	if out, err := exec.Command("ip", "-n", g.NS, "link", "set", g.Dev, "mtu", strconv.Itoa(g.MTU), "up").CombinedOutput(); err != nil {
		g.tap.Close()
		g.conn.Close()
		return fmt.Errorf("geneve %s: ip link set up: %w: %s", g.Dev, err, out)
	}
	g.wg.Add(2)
	go g.encapsulate()
	go g.decapsulate()
	return nil
}

// Close stops forwarding, removes the TAP and returns the first error either direction met.
func (g *Geneve) Close() error {
	if g.tap == nil || g.closed.Swap(true) {
		return nil // never started, or closed already
	}
	cerr := errors.Join(g.tap.Close(), g.conn.Close())
	g.wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	return errors.Join(g.err, cerr)
}

// Sent is the number of frames read from the TAP and sent as Geneve datagrams.
func (g *Geneve) Sent() uint64 { return g.sent.Load() }

// Received is the number of Geneve datagrams received and written to the TAP.
func (g *Geneve) Received() uint64 { return g.received.Load() }

// fail keeps the first error; after Close, errors from the closed files are the way out, not one.
func (g *Geneve) fail(err error) {
	if g.closed.Load() && (errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed)) {
		return
	}
	g.mu.Lock()
	if g.err == nil {
		g.err = fmt.Errorf("geneve %s: %w", g.Dev, err)
	}
	g.mu.Unlock()
}

// encapsulate: TAP frame -> Geneve header + option + frame -> UDP to Remote:6081.
func (g *Geneve) encapsulate() {
	defer g.wg.Done()
	hl := geneveHeaderLen + len(geneveOption)
	buf := make([]byte, hl+65536)
	buf[0] = byte(len(geneveOption) / 4) // version 0, options length in 4-byte words
	buf[1] = 0x40                        // C: a critical option is present
	binary.BigEndian.PutUint16(buf[2:], 0x6558)
	binary.BigEndian.PutUint32(buf[4:], g.VNI<<8)
	copy(buf[geneveHeaderLen:], geneveOption)
	to := netip.AddrPortFrom(g.Remote, GenevePort)
	for {
		n, err := g.tap.Read(buf[hl:])
		if err != nil {
			g.fail(fmt.Errorf("read tap: %w", err))
			return
		}
		if _, err := g.conn.WriteToUDPAddrPort(buf[:hl+n], to); err != nil {
			g.fail(fmt.Errorf("send to %v: %w", to, err))
			return
		}
		g.sent.Add(1)
	}
}

// decapsulate: Geneve datagram from Remote -> checked header -> inner Ethernet frame -> TAP.
// A datagram that is not this tunnel's Geneve is an error (the test's namespaces carry no
// other traffic to this port); forwarding goes on.
func (g *Geneve) decapsulate() {
	defer g.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := g.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			g.fail(fmt.Errorf("receive: %w", err))
			return
		}
		frame, err := g.unwrap(buf[:n])
		if err == nil && from.Addr().Unmap() != g.Remote {
			err = fmt.Errorf("datagram from %v, want %v", from, g.Remote)
		}
		if err != nil {
			g.fail(err)
			continue
		}
		if _, err := g.tap.Write(frame); err != nil {
			g.fail(fmt.Errorf("write tap: %w", err))
			return
		}
		g.received.Add(1)
	}
}

// unwrap checks a Geneve header (RFC 8926 §3.4) and returns the Ethernet frame after its options.
func (g *Geneve) unwrap(d []byte) ([]byte, error) {
	if len(d) < geneveHeaderLen {
		return nil, fmt.Errorf("datagram of %d bytes, shorter than a Geneve header", len(d))
	}
	if v := d[0] >> 6; v != 0 {
		return nil, fmt.Errorf("Geneve version %d", v)
	}
	hl := geneveHeaderLen + int(d[0]&0x3f)*4
	if len(d) < hl+14 {
		return nil, fmt.Errorf("datagram of %d bytes: header with options %d, no Ethernet frame after it", len(d), hl)
	}
	if p := binary.BigEndian.Uint16(d[2:]); p != 0x6558 {
		return nil, fmt.Errorf("protocol type %#04x, want 0x6558 (Ethernet)", p)
	}
	if vni := binary.BigEndian.Uint32(d[4:]) >> 8; vni != g.VNI {
		return nil, fmt.Errorf("VNI %d, want %d", vni, g.VNI)
	}
	return d[hl:], nil
}
