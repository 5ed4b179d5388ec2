package bpf

import (
	"errors"
	"fmt"
	"net/netip"
	"unsafe"

	"github.com/cilium/ebpf"
)

// FlowKey identifies a flow: the 5-tuple, VLAN, interface and IP version of a packet as its
// record has them (addresses IPv4-mapped for IPv4, zero for non-IP frames). It is pl_flows' key;
// IPv4 flows are kept in pl_flows4 under a shorter key (flow4Key), which ReadFlows and DeleteFlows
// convert, so callers only ever see FlowKey.
type FlowKey = plPlFlowKey

// flow4Key is pl_flows4's key: an IPv4 FlowKey without the ::ffff: prefixes and ip_version.
type flow4Key = plPlFlow4Key

// v4 returns k as pl_flows4's key, or false if k is not an IPv4 flow.
func (k FlowKey) v4() (flow4Key, bool) {
	if k.IpVersion != 4 {
		return flow4Key{}, false
	}
	k4 := flow4Key{Ifindex: k.Ifindex, SrcPort: k.SrcPort, DstPort: k.DstPort, VlanId: k.VlanId, IpProto: k.IpProto}
	copy(k4.SrcAddr[:], k.SrcAddr[12:])
	copy(k4.DstAddr[:], k.DstAddr[12:])
	return k4, true
}

// full returns k4 as the FlowKey the record of its packets gives.
func (k4 flow4Key) full() FlowKey {
	k := FlowKey{Ifindex: k4.Ifindex, SrcPort: k4.SrcPort, DstPort: k4.DstPort, VlanId: k4.VlanId, IpProto: k4.IpProto, IpVersion: 4}
	k.SrcAddr[10], k.SrcAddr[11] = 0xff, 0xff
	k.DstAddr[10], k.DstAddr[11] = 0xff, 0xff
	copy(k.SrcAddr[12:], k4.SrcAddr[:])
	copy(k.DstAddr[12:], k4.DstAddr[:])
	return k
}

// SrcIP and DstIP return the key's addresses (IPv4 unmapped).
func (k FlowKey) SrcIP() netip.Addr { return netip.AddrFrom16(k.SrcAddr).Unmap() }

// DstIP: see SrcIP.
func (k FlowKey) DstIP() netip.Addr { return netip.AddrFrom16(k.DstAddr).Unmap() }

// FlowCounts are a flow's counters summed over CPUs. Every packet the program sees adds to
// exactly one flow (record.StatFlowCounted), before any sampling or ring decision, so they are
// exact. FirstNs/LastNs are bpf_ktime_get_ns() (monotonic), min and max over CPUs.
type FlowCounts struct {
	Packets, Bytes     uint64
	SYN, FIN, RST, ACK uint64
	FirstNs, LastNs    uint64
}

// Add sums one CPU's value (or another FlowCounts) into c.
func (c *FlowCounts) add(v *plPlFlow) {
	if v.Packets == 0 {
		return
	}
	c.Packets += v.Packets
	c.Bytes += v.Bytes
	c.SYN += uint64(v.Syn)
	c.FIN += uint64(v.Fin)
	c.RST += uint64(v.Rst)
	c.ACK += uint64(v.Ack)
	if c.FirstNs == 0 || (v.FirstNs != 0 && v.FirstNs < c.FirstNs) {
		c.FirstNs = v.FirstNs
	}
	c.LastNs = max(c.LastNs, v.LastNs)
}

// flowBatch is how many entries one BPF_MAP_LOOKUP_BATCH asks for.
const flowBatch = 1024

// ReadFlows walks pl_flows4 and pl_flows with batch lookups and calls fn with each flow's counters
// summed over CPUs (cumulative since the entry was created). Entries created or deleted during the
// walk may or may not be seen; an entry is seen at most once.
func (o *Objects) ReadFlows(fn func(FlowKey, FlowCounts)) error {
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("read pl_flows: %w", err)
	}
	// A value is one plPlFlow per possible CPU (maps.h), laid out as a per-CPU map's would be.
	flat := make([]plPlFlow, flowBatch*cpus)
	vals := make(flowValues, flowBatch)
	for i := range vals {
		vals[i] = flat[i*cpus : (i+1)*cpus]
	}
	sum := func(i int) FlowCounts {
		var c FlowCounts
		for cpu := range vals[i] {
			c.add(&vals[i][cpu])
		}
		return c
	}
	keys4 := make([]flow4Key, flowBatch)
	if err := readBatches(o.objs.PlFlows4, keys4, vals, func(i int) { fn(keys4[i].full(), sum(i)) }); err != nil {
		return fmt.Errorf("read pl_flows4: %w", err)
	}
	keys := make([]FlowKey, flowBatch)
	if err := readBatches(o.objs.PlFlows, keys, vals, func(i int) { fn(keys[i], sum(i)) }); err != nil {
		return fmt.Errorf("read pl_flows: %w", err)
	}
	return nil
}

// flowValues receives a batch of flow values, one []plPlFlow (a slot per possible CPU) per key:
// the value size is only known at run time, so the batch lookup hands the bytes to
// UnmarshalBinary, which copies them in the kernel's (= this host's) layout.
type flowValues [][]plPlFlow

func (v flowValues) UnmarshalBinary(b []byte) error {
	for i, slots := range v {
		n := len(slots) * int(unsafe.Sizeof(plPlFlow{}))
		if len(b) < (i+1)*n {
			return fmt.Errorf("flow values: %d bytes for %d entries of %d", len(b), len(v), n)
		}
		copy(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(slots))), n), b[i*n:(i+1)*n])
	}
	return nil
}

// readBatches walks m with batch lookups into keys and vals, calling each(i) for every entry i of
// each batch.
func readBatches[K any](m *ebpf.Map, keys []K, vals flowValues, each func(i int)) error {
	var cursor ebpf.MapBatchCursor
	for {
		n, err := m.BatchLookup(&cursor, keys, vals, nil)
		for i := range n {
			each(i)
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// DeleteFlows removes the given flows from pl_flows4 and pl_flows (missing ones are ignored).
// Counts a packet adds between the last ReadFlows and the delete are lost with the entry: delete
// only idle flows.
func (o *Objects) DeleteFlows(keys []FlowKey) error {
	var keys4 []flow4Key
	var rest []FlowKey
	for _, k := range keys {
		if k4, ok := k.v4(); ok {
			keys4 = append(keys4, k4)
		} else {
			rest = append(rest, k)
		}
	}
	if err := deleteBatches(o.objs.PlFlows4, keys4); err != nil {
		return err
	}
	return deleteBatches(o.objs.PlFlows, rest)
}

func deleteBatches[K any](m *ebpf.Map, keys []K) error {
	for len(keys) > 0 {
		chunk := keys[:min(len(keys), flowBatch)]
		keys = keys[len(chunk):]
		if _, err := m.BatchDelete(chunk, nil); err != nil {
			// A batch stops at the first missing key: fall back to one by one.
			for _, k := range chunk {
				if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
					return fmt.Errorf("delete flow: %w", err)
				}
			}
		}
	}
	return nil
}
