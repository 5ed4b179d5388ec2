package gen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Generator is the loaded program. Send transmits with it; Close unloads it.
type Generator struct {
	objs genObjects
}

// Load loads the generator so that consecutive packets cycle through flows flows (a power of
// two, at most 2^28): flow i has source 10.0.0.0 + i/16, source port 1024 + i%16.
func Load(flows int) (*Generator, error) {
	if flows <= 0 || flows&(flows-1) != 0 || flows > 1<<28 {
		return nil, fmt.Errorf("flows %d: want a power of two up to 2^28", flows)
	}
	spec, err := loadGen()
	if err != nil {
		return nil, err
	}
	if err := spec.Variables["flow_mask"].Set(uint32(flows - 1)); err != nil {
		return nil, err
	}
	g := &Generator{}
	if err := spec.LoadAndAssign(&g.objs, nil); err != nil {
		return nil, fmt.Errorf("load generator: %w", err)
	}
	return g, nil
}

// Close unloads the program.
func (g *Generator) Close() error { return g.objs.Close() }

// Generated is the number of frames the program has run on since Load, all CPUs. It is exact,
// where the Repeat of Send is not: an interrupted run is resumed and may run a few more.
func (g *Generator) Generated() (uint64, error) {
	var n uint64
	err := g.objs.Generated.Get(&n)
	return n, err
}

// Attach attaches the program (XDP native) to interface ifindex in the calling thread's network
// namespace, normally the interface Send transmits out of. Frames arriving there would be sent
// back rewritten; on the benchmark's veth nothing arrives. What it buys: while the program is
// attached, the kernel's XDP dispatcher already holds it, so a Send no longer swaps it in and out
// (two RCU grace periods, ~25 ms per call on these VMs): small chunks pace smoothly.
func (g *Generator) Attach(ifindex int) (link.Link, error) {
	return link.AttachXDP(link.XDPOptions{Program: g.objs.GenTx, Interface: ifindex, Flags: link.XDPDriverMode})
}

// xdpMD is struct xdp_md, the context of an XDP test run.
type xdpMD struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// Send runs the program n times in live-frames mode on frame (at least 54 bytes: Ethernet, IPv4
// without options, TCP), each run transmitting one frame out of interface ifindex, which must be
// in the calling thread's network namespace (lock the thread and enter it first). The frames go
// out in batches of 64; a veth whose peer's queue is full drops them (the peer's tx_dropped,
// never an error here). Each call costs ~17 ms of setup on these VMs: send in large chunks.
func (g *Generator) Send(frame []byte, ifindex int, n uint32) error {
	if len(frame) < 54 {
		return errors.New("frame shorter than Ethernet + IPv4 + TCP")
	}
	_, err := g.objs.GenTx.Run(&ebpf.RunOptions{
		Data:    frame,
		Context: xdpMD{DataEnd: uint32(len(frame)), IngressIfindex: uint32(ifindex)},
		Repeat:  n,
		Flags:   unix.BPF_F_TEST_XDP_LIVE_FRAMES,
	})
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%w (%v)", ErrLiveFramesDenied, err)
	}
	return err
}

// ErrLiveFramesDenied: the kernel refuses BPF_PROG_TEST_RUN in live-frames mode to this process.
// Root and every capability do not help: some kernels (seen on 6.18.44-fc-v1300) return EPERM
// for BPF_F_TEST_XDP_LIVE_FRAMES unless the caller is PID 1, before looking at any other
// argument. Ordinary (non-live) test runs still work there; only the generator cannot transmit.
var ErrLiveFramesDenied = errors.New("kernel refuses BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES " +
	"(EPERM for any process but PID 1 on this kernel): the live-frames generator cannot transmit here")

// LiveFrames reports whether this kernel lets the calling process run XDP programs in live-frames
// mode, without transmitting anything: it asks for a live run on a 1-byte frame, which a kernel
// that allows live frames rejects as too short (EINVAL) and a kernel that denies them refuses
// first (EPERM). A nil error means Send can work.
func (g *Generator) LiveFrames() error {
	_, err := g.objs.GenTx.Run(&ebpf.RunOptions{Data: []byte{0}, Flags: unix.BPF_F_TEST_XDP_LIVE_FRAMES})
	switch {
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("%w (%v)", ErrLiveFramesDenied, err)
	case errors.Is(err, unix.EINVAL):
		return nil
	case err == nil:
		return errors.New("live-frames probe: a 1-byte frame was accepted (want EINVAL)")
	default:
		return fmt.Errorf("live-frames probe: %w", err)
	}
}

// TCPFrame builds an Ethernet + IPv4 + TCP ACK frame with payload bytes of 'A' (not DNS, TLS or
// HTTP: a packet sampling applies to). The source address and port are the generator's to set.
func TCPFrame(srcMAC, dstMAC net.HardwareAddr, dst netip.Addr, dport uint16, payload int) []byte {
	b := make([]byte, 14+20+20+payload)
	copy(b[0:6], dstMAC)
	copy(b[6:12], srcMAC)
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+20+payload))
	ip[6] = 0x40 // DF
	ip[8] = 64
	ip[9] = 6
	copy(ip[12:16], []byte{10, 0, 0, 0})
	a := dst.As4()
	copy(ip[16:20], a[:])
	tcp := b[34:54]
	binary.BigEndian.PutUint16(tcp[0:], 1024)
	binary.BigEndian.PutUint16(tcp[2:], dport)
	binary.BigEndian.PutUint32(tcp[4:], 1)
	binary.BigEndian.PutUint32(tcp[8:], 1)
	tcp[12] = 5 << 4
	tcp[13] = 0x10 // ACK
	binary.BigEndian.PutUint16(tcp[14:], 1000)
	for i := range payload {
		b[54+i] = 'A'
	}
	return b
}
