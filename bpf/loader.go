// Package bpf loads packetlake's kernel-side packet observer (pl.c) and attaches it to an
// interface. One parser runs behind an XDP program and a TC (tcx) ingress program; each packet
// becomes a struct pl_record (schema/columns.go) in the ring buffer Events, optionally followed by
// an L7 snippet. TestRun replays raw frames through the very same parser without attaching.
package bpf

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

const (
	// DefaultRingBytes holds ~100k records without snippet: 50 ms at 2 Mpps (INFRA.md).
	DefaultRingBytes = 16 << 20
	// DefaultWakeupBytes is the pending data at which the kernel wakes the reader.
	DefaultWakeupBytes = 256 << 10
)

// Config sizes the ring buffer. Zero values take the defaults.
type Config struct {
	// RingBytes is the ring buffer size: a power of two, at least one page.
	RingBytes int
	// WakeupBytes: the reader is woken when pending data crosses it, otherwise records are written
	// without a wake-up and the reader must poll with a deadline. Default min(256 KiB, RingBytes/4).
	WakeupBytes int
}

func (c Config) withDefaults() (Config, error) {
	if c.RingBytes == 0 {
		c.RingBytes = DefaultRingBytes
	}
	page := os.Getpagesize()
	if c.RingBytes < page || c.RingBytes&(c.RingBytes-1) != 0 {
		return c, fmt.Errorf("ring size %d: must be a power of two and at least %d", c.RingBytes, page)
	}
	if c.WakeupBytes == 0 {
		c.WakeupBytes = min(DefaultWakeupBytes, c.RingBytes/4)
	}
	if c.WakeupBytes < 0 || c.WakeupBytes > c.RingBytes {
		return c, fmt.Errorf("wake-up threshold %d: must be between 1 and the ring size %d", c.WakeupBytes, c.RingBytes)
	}
	return c, nil
}

// Objects are the loaded programs and maps. Close releases them; links returned by the Attach
// methods are owned by the caller and must be closed first (or they keep the programs alive).
type Objects struct {
	objs plObjects
}

// Load checks privileges, sizes the maps from cfg and loads the object into the kernel.
func Load(cfg Config) (*Objects, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkCaps(); err != nil {
		return nil, err
	}
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; a no-op on newer ones.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("remove memlock rlimit: %w", err)
	}
	spec, err := loadPl()
	if err != nil {
		return nil, err
	}
	spec.Maps[plMapPlEvents].MaxEntries = uint32(cfg.RingBytes)
	if err := spec.Variables[plVarPlWakeupBytes].Set(uint64(cfg.WakeupBytes)); err != nil {
		return nil, fmt.Errorf("set wake-up threshold: %w", err)
	}
	o := &Objects{}
	if err := spec.LoadAndAssign(&o.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			// %+v prints the whole verifier log, not just its last lines.
			return nil, fmt.Errorf("load bpf objects: verifier rejected a program: %+v", ve)
		}
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("load bpf objects: %w (%s)", err, capHint)
		}
		return nil, fmt.Errorf("load bpf objects: %w", err)
	}
	return o, nil
}

const capHint = "hint: run as root, or grant the binary cap_bpf,cap_net_admin,cap_perfmon"

// checkCaps refuses early and clearly: the kernel's own answer would be a bare EPERM.
func checkCaps() error {
	const capNetAdmin, capSysAdmin, capBPF = 12, 21, 39
	eff, err := effectiveCaps()
	if err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	has := func(c uint) bool { return eff&(1<<c) != 0 }
	if !(has(capBPF) || has(capSysAdmin)) || !(has(capNetAdmin) || has(capSysAdmin)) {
		return fmt.Errorf("loading XDP/TC programs needs CAP_BPF and CAP_NET_ADMIN, have CapEff=%#x (uid %d); %s",
			eff, os.Geteuid(), capHint)
	}
	return nil
}

func effectiveCaps() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, errors.New("no CapEff line in /proc/self/status")
}

// XDPMode chooses how the XDP program is attached.
type XDPMode int

const (
	// XDPAuto lets the kernel choose: native when the driver supports it, else generic.
	XDPAuto XDPMode = iota
	// XDPNative runs in the driver, before an skb exists; fails if the driver lacks support.
	XDPNative
	// XDPGeneric runs on the skb; works on any interface, slower.
	XDPGeneric
)

func (m XDPMode) String() string {
	switch m {
	case XDPNative:
		return "native"
	case XDPGeneric:
		return "generic"
	}
	return "auto"
}

// AttachXDP attaches the XDP program to the interface with index ifindex in the calling thread's
// network namespace.
func (o *Objects) AttachXDP(ifindex int, mode XDPMode) (link.Link, error) {
	name, err := ifaceName(ifindex)
	if err != nil {
		return nil, fmt.Errorf("attach xdp: %w", err)
	}
	var flags link.XDPAttachFlags
	switch mode {
	case XDPNative:
		flags = link.XDPDriverMode
	case XDPGeneric:
		flags = link.XDPGenericMode
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: o.objs.PlXdp, Interface: ifindex, Flags: flags})
	if err != nil {
		hint := "hint: another XDP program may be attached (ip link show " + name + ")"
		if mode == XDPNative {
			hint = "hint: the driver may lack native XDP; try XDPGeneric or XDPAuto"
		}
		return nil, fmt.Errorf("attach xdp (%s) to %s: %w (%s)", mode, name, err, hint)
	}
	return l, nil
}

// AttachTC attaches the TC program at tcx ingress of the interface with index ifindex (calling
// thread's network namespace). It returns "next", so programs attached after it still run.
func (o *Objects) AttachTC(ifindex int) (link.Link, error) {
	name, err := ifaceName(ifindex)
	if err != nil {
		return nil, fmt.Errorf("attach tc: %w", err)
	}
	l, err := link.AttachTCX(link.TCXOptions{
		Interface: ifindex,
		Program:   o.objs.PlTc,
		Attach:    ebpf.AttachTCXIngress,
	})
	if err != nil {
		return nil, fmt.Errorf("attach tcx ingress to %s: %w (hint: tcx needs Linux 6.6+)", name, err)
	}
	return l, nil
}

func ifaceName(ifindex int) (string, error) {
	ifc, err := net.InterfaceByIndex(ifindex)
	if err != nil {
		return "", fmt.Errorf("no interface with index %d in this network namespace: %w "+
			"(hint: `ip link` lists them; for another namespace attach from a thread inside it)", ifindex, err)
	}
	return fmt.Sprintf("%s (index %d)", ifc.Name, ifindex), nil
}

// Events is the ring buffer of records: struct pl_record followed by snippet_len bytes.
func (o *Objects) Events() *ebpf.Map { return o.objs.PlEvents }

// ReadStats returns the counters of pl_stats (record.Stat* indices), summed over CPUs.
func (o *Objects) ReadStats() ([]uint64, error) {
	m := o.objs.PlStats
	out := make([]uint64, m.MaxEntries())
	var perCPU []uint64
	for i := range out {
		if err := m.Lookup(uint32(i), &perCPU); err != nil {
			return nil, fmt.Errorf("read pl_stats[%d]: %w", i, err)
		}
		for _, v := range perCPU {
			out[i] += v
		}
	}
	return out, nil
}

// TestRun runs the XDP program once on pkt (an Ethernet frame, at least 14 bytes) with
// BPF_PROG_TEST_RUN: the record lands in Events as for a live packet.
func (o *Objects) TestRun(pkt []byte) (uint32, error) {
	return testRun(o.objs.PlXdp, pkt)
}

// testRunTC is TestRun through the TC program (skb path; VLAN tags stay in the packet).
func (o *Objects) testRunTC(pkt []byte) (uint32, error) {
	return testRun(o.objs.PlTc, pkt)
}

func testRun(p *ebpf.Program, pkt []byte) (uint32, error) {
	if len(pkt) < 14 {
		return 0, fmt.Errorf("test run %s: frame of %d bytes: the kernel needs at least an Ethernet header (14)", p, len(pkt))
	}
	ret, err := p.Run(&ebpf.RunOptions{Data: pkt})
	if err != nil {
		return 0, fmt.Errorf("test run %s: %w", p, err)
	}
	return ret, nil
}

// Close releases programs and maps.
func (o *Objects) Close() error {
	return o.objs.Close()
}
