package bpf

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// DropsConfig sizes the drop-reason program (drops.c).
type DropsConfig struct {
	// Entries bounds the (reason, flow) pairs counted at once; a drop that finds the map full is
	// counted in DropStats.Failed only. Default 4096.
	Entries int
}

// DropKey is what a drop is counted under: the kernel's reason (enum skb_drop_reason; its name
// from DropReasons) and the flow of the dropped packet as its headers say when dropped.
type DropKey = dropsPlDropKey

// SrcIP and DstIP return the key's addresses (IPv4 unmapped).
func (k DropKey) SrcIP() netip.Addr { return netip.AddrFrom16(k.SrcAddr).Unmap() }

// DstIP: see SrcIP.
func (k DropKey) DstIP() netip.Addr { return netip.AddrFrom16(k.DstAddr).Unmap() }

// DropCount is a key's cumulative count, summed over CPUs: wire packets (a GRO skb counts its
// segments) and bytes from the MAC header on.
type DropCount struct{ Packets, Bytes uint64 }

// DropStats are the program's counters, summed over CPUs.
type DropStats struct {
	Seen   uint64 // drops of packets received on an observed interface
	Unseen uint64 // other drops (not received on an observed interface, or made on this host)
	Failed uint64 // seen drops not in the map: it was full
}

// Drops is the loaded drop-reason program. Close detaches and releases it.
type Drops struct {
	objs   dropsObjects
	link   link.Link
	closed bool
	// The exporter's ledger and snapshots (pin_drops.go); pinDir is set while pinned.
	state  *ebpf.Map
	snaps  [2]*ebpf.Map
	pinDir string
}

func (cfg DropsConfig) withDefaults() DropsConfig {
	if cfg.Entries <= 0 {
		cfg.Entries = 4096
	}
	return cfg
}

// LoadDrops loads drops.c and attaches it to the skb:kfree_skb tracepoint (tp_btf: needs the
// kernel's BTF, /sys/kernel/btf/vmlinux). It counts nothing until Observe names an interface.
func LoadDrops(cfg DropsConfig) (*Drops, error) {
	cfg = cfg.withDefaults()
	if err := CheckCaps(); err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("remove memlock rlimit: %w", err)
	}
	spec, err := loadDrops()
	if err != nil {
		return nil, err
	}
	spec.Maps["pl_drops"].MaxEntries = uint32(cfg.Entries)
	d := &Drops{}
	if err := spec.LoadAndAssign(&d.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load drops program: verifier rejected it: %+v", ve)
		}
		return nil, fmt.Errorf("load drops program: %w", err)
	}
	if err := d.newLedger(cfg.Entries); err != nil {
		d.Close()
		return nil, err
	}
	d.link, err = link.AttachTracing(link.TracingOptions{Program: d.objs.PlKfreeSkb})
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("attach drops program to tp_btf/kfree_skb: %w", err)
	}
	return d, nil
}

// CurrentNetns is the inode number of the calling thread's network namespace, as the program
// reads it from a packet's device (net->ns.inum).
func CurrentNetns() (uint32, error) {
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), &st); err != nil {
		return 0, fmt.Errorf("network namespace of this thread: %w", err)
	}
	return uint32(st.Ino), nil
}

// Observe counts, from now on, the drops of packets received on interface ifindex of network
// namespace netns (CurrentNetns): an interface the packet program is attached to.
func (d *Drops) Observe(netns uint32, ifindex int) error {
	k := dropsPlDropIface{Netns: netns, Ifindex: uint32(ifindex)}
	if err := d.objs.PlDropIfaces.Put(k, uint8(1)); err != nil {
		return fmt.Errorf("observe drops on ifindex %d: %w", ifindex, err)
	}
	return nil
}

// ObserveOnly makes interface ifindex of netns the only one observed (an adopted program may
// name an interface deleted and made again since).
func (d *Drops) ObserveOnly(netns uint32, ifindex int) error {
	var k dropsPlDropIface
	var v uint8
	var old []dropsPlDropIface
	it := d.objs.PlDropIfaces.Iterate()
	for it.Next(&k, &v) {
		if k.Netns != netns || k.Ifindex != uint32(ifindex) {
			old = append(old, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read observed interfaces: %w", err)
	}
	for _, k := range old {
		if err := d.objs.PlDropIfaces.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("forget observed interface: %w", err)
		}
	}
	return d.Observe(netns, ifindex)
}

// Forget stops counting the drops of an interface Observe named.
func (d *Drops) Forget(netns uint32, ifindex int) error {
	err := d.objs.PlDropIfaces.Delete(dropsPlDropIface{Netns: netns, Ifindex: uint32(ifindex)})
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("forget drops on ifindex %d: %w", ifindex, err)
	}
	return nil
}

// ReadDrops calls fn with every (reason, flow) counted so far, cumulative since load.
func (d *Drops) ReadDrops(fn func(DropKey, DropCount)) error {
	var k DropKey
	var per []dropsPlDropCount
	it := d.objs.PlDrops.Iterate()
	for it.Next(&k, &per) {
		fn(k, sumDrop(per))
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read pl_drops: %w", err)
	}
	return nil
}

// ReadUnseen calls fn with the drops of packets not received on an observed interface, per reason.
func (d *Drops) ReadUnseen(fn func(reason uint32, c DropCount)) error {
	var k uint32
	var per []dropsPlDropCount
	it := d.objs.PlDropsUnseen.Iterate()
	for it.Next(&k, &per) {
		fn(k, sumDrop(per))
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read pl_drops_unseen: %w", err)
	}
	return nil
}

func sumDrop(per []dropsPlDropCount) DropCount {
	var c DropCount
	for _, v := range per {
		c.Packets += v.Packets
		c.Bytes += v.Bytes
	}
	return c
}

// ReadStats returns the program's counters.
func (d *Drops) ReadStats() (DropStats, error) {
	var out [3]uint64
	var per []uint64
	for i := range out {
		if err := d.objs.PlDropStats.Lookup(uint32(i), &per); err != nil {
			return DropStats{}, fmt.Errorf("read pl_drop_stats[%d]: %w", i, err)
		}
		for _, v := range per {
			out[i] += v
		}
	}
	return DropStats{Seen: out[0], Unseen: out[1], Failed: out[2]}, nil
}

// ProgramStats returns the kernel's run count and run time of the program: they move only
// while the kernel collects them (sysctl kernel.bpf_stats_enabled, or EnableRunStats).
func (d *Drops) ProgramStats() (*ebpf.ProgramStats, error) {
	return d.objs.PlKfreeSkb.Stats()
}

// Close releases this process's handles: an unpinned program is detached and freed, a pinned
// one stays attached and counting (Unpin first to end it); again, nothing.
func (d *Drops) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	if d.link != nil {
		errs = append(errs, d.link.Close())
	}
	for _, m := range append([]*ebpf.Map{d.state}, d.snaps[:]...) {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	return errors.Join(append(errs, d.objs.Close())...)
}
