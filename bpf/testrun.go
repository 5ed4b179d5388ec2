package bpf

import (
	"encoding/binary"
	"fmt"

	"github.com/cilium/ebpf"
)

// TestRun runs the XDP program once on pkt (an Ethernet frame, at least 14 bytes) with
// BPF_PROG_TEST_RUN: the record lands in Events as for a live packet, and is readable there when
// TestRun returns. The packet carries the program's flush key in XDP metadata, so the program
// writes out its CPU's batch right after this packet's record: the same parser as live traffic,
// a sample per packet (behind any record a live packet left staged on that CPU). It runs pl_xdp,
// which takes frames of any size (fragments beyond a page); pl_xdp_linear, which AttachXDP
// attaches on an ordinary MTU, writes the same bytes (TestXDPLinearSameRecords).
func (o *Objects) TestRun(pkt []byte) (uint32, error) {
	return o.testRunXDP(o.objs.PlXdp, pkt)
}

// testRunXDP is TestRun through the XDP program p (pl_xdp or pl_xdp_linear).
func (o *Objects) testRunXDP(p *ebpf.Program, pkt []byte) (uint32, error) {
	if err := checkFrame(p, pkt); err != nil {
		return 0, err
	}
	const meta = 8
	data := make([]byte, meta+len(pkt))
	binary.NativeEndian.PutUint64(data, o.flushKey)
	copy(data[meta:], pkt)
	return run(p, &ebpf.RunOptions{Data: data, Context: xdpMD{Data: meta, DataEnd: uint32(len(data))}})
}

// testRunTC is TestRun through the TC program (skb path; VLAN tags stay in the packet). The flush
// key travels in cb[0..1].
func (o *Objects) testRunTC(pkt []byte) (uint32, error) {
	if err := checkFrame(o.objs.PlTc, pkt); err != nil {
		return 0, err
	}
	ctx := skbCtx{CB: [5]uint32{uint32(o.flushKey), uint32(o.flushKey >> 32)}}
	return run(o.objs.PlTc, &ebpf.RunOptions{Data: pkt, Context: ctx})
}

// xdpMD is struct xdp_md as BPF_PROG_TEST_RUN takes it: Data is the metadata's length.
type xdpMD struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// skbCtx is the start of struct __sk_buff, up to cb[] (the rest is zero).
type skbCtx struct {
	Len, PktType, Mark, QueueMapping, Protocol, VlanPresent, VlanTCI, VlanProto uint32
	Priority, IngressIfindex, Ifindex, TCIndex                                  uint32
	CB                                                                          [5]uint32
}

func checkFrame(p *ebpf.Program, pkt []byte) error {
	if len(pkt) < 14 {
		return fmt.Errorf("test run %s: frame of %d bytes: the kernel needs at least an Ethernet header (14)", p, len(pkt))
	}
	return nil
}

func run(p *ebpf.Program, opts *ebpf.RunOptions) (uint32, error) {
	ret, err := p.Run(opts)
	if err != nil {
		return 0, fmt.Errorf("test run %s: %w", p, err)
	}
	return ret, nil
}
