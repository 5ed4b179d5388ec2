package bpf

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
)

// FlowKey identifies a flow in pl_flows: the 5-tuple, VLAN, interface and IP version of a
// packet as its record has them (addresses IPv4-mapped for IPv4, zero for non-IP frames).
type FlowKey = plPlFlowKey

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

// Flows is the flow map (BPF_MAP_TYPE_LRU_PERCPU_HASH, FlowKey → per-CPU counters).
func (o *Objects) Flows() *ebpf.Map { return o.objs.PlFlows }

// flowBatch is how many entries one BPF_MAP_LOOKUP_BATCH asks for.
const flowBatch = 1024

// ReadFlows walks pl_flows with batch lookups and calls fn with each flow's counters summed over
// CPUs (cumulative since the entry was created). Entries created or deleted during the walk may
// or may not be seen; an entry is seen at most once.
func (o *Objects) ReadFlows(fn func(FlowKey, FlowCounts)) error {
	m := o.objs.PlFlows
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("read pl_flows: %w", err)
	}
	keys := make([]plPlFlowKey, flowBatch)
	vals := make([]plPlFlow, flowBatch*cpus)
	var cursor ebpf.MapBatchCursor
	for {
		n, err := m.BatchLookup(&cursor, keys, vals, nil)
		for i := range n {
			var c FlowCounts
			for cpu := range cpus {
				c.add(&vals[i*cpus+cpu])
			}
			fn(keys[i], c)
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read pl_flows: %w", err)
		}
	}
}

// DeleteFlows removes the given flows from pl_flows (missing ones are ignored). Counts a packet
// adds between the last ReadFlows and the delete are lost with the entry: delete only idle flows.
func (o *Objects) DeleteFlows(keys []FlowKey) error {
	m := o.objs.PlFlows
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
