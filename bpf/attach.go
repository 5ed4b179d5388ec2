package bpf

import (
	"fmt"
	"net"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

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
// network namespace. It attaches pl_xdp_linear, which reads the frame length from the linear
// buffer (pl.c), and falls back to the frags-aware pl_xdp when the kernel refuses it: natively on
// an interface whose MTU does not fit one buffer (e.g. a veth with MTU 9000). Both record the
// same bytes. While pl_xdp_linear is attached natively, the kernel refuses to raise the MTU past
// one buffer: detach and attach again after such a change, or load with Config.XDPFrags.
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
	first := o.xdpProg()
	l, err := link.AttachXDP(link.XDPOptions{Program: first, Interface: ifindex, Flags: flags})
	if err != nil && first != o.objs.PlXdp {
		l, err = link.AttachXDP(link.XDPOptions{Program: o.objs.PlXdp, Interface: ifindex, Flags: flags})
	}
	if err != nil {
		hint := "hint: another XDP program may be attached (ip link show " + name + ")"
		if mode == XDPNative {
			hint = "hint: the driver may lack native XDP; try XDPGeneric or XDPAuto"
		}
		return nil, fmt.Errorf("attach xdp (%s) to %s: %w (%s)", mode, name, err, hint)
	}
	return l, nil
}

// xdpProg is the program AttachXDP attaches first (and where the MTU allows, the one attached):
// the one benchmarks measure as attached.
func (o *Objects) xdpProg() *ebpf.Program {
	if o.frags {
		return o.objs.PlXdp
	}
	return o.objs.PlXdpLinear
}

// XDPProgram names the program an AttachXDP link runs: "pl_xdp_linear" or "pl_xdp" (frames
// beyond one buffer), for the log; "" if the link's info cannot be read.
func (o *Objects) XDPProgram(l link.Link) string {
	li, err := l.Info()
	if err != nil {
		return ""
	}
	for name, p := range map[string]*ebpf.Program{"pl_xdp_linear": o.objs.PlXdpLinear, "pl_xdp": o.objs.PlXdp} {
		if pi, err := p.Info(); err == nil {
			if id, ok := pi.ID(); ok && id == li.Program {
				return name
			}
		}
	}
	return ""
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
