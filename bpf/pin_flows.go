package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// The flow exporter sends each bucket's gain since the last acknowledged export, so it must know
// what those exports carried. A pinned run keeps that baseline in a pinned hash map beside the
// flow tables: a collector that adopts the tables continues from it instead of sending every
// bucket's whole count again. Unpinned objects have no baseline map and the methods do nothing.

// flowBaseline is one bucket's entry: the flow it held and its counts as last exported.
type flowBaseline struct {
	Key    FlowKey
	_      [4]byte
	Counts FlowCounts
}

// newBaselineMap makes the baseline map for o's flow tables: one entry per bucket at most,
// allocated as used.
func newBaselineMap(o *Objects) (*ebpf.Map, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "pl_flow_exported", Type: ebpf.Hash, KeySize: 8,
		ValueSize: uint32(flowBaselineSize), MaxEntries: o.objs.PlFlows.MaxEntries() + o.objs.PlFlows4.MaxEntries(),
		Flags: unix.BPF_F_NO_PREALLOC})
	if err != nil {
		return nil, fmt.Errorf("create flow baseline map: %w", err)
	}
	return m, nil
}

// flowBaselineSize follows FlowKey (52 bytes since the key has tunnel_id): a constant of the
// old 44-byte key made every save fail ("doesn't marshal to N bytes").
var flowBaselineSize = binary.Size(flowBaseline{})

// SaveFlowBaseline records what the acknowledged exports carried of buckets ids (keys[i] and
// counts[i] for ids[i]).
func (o *Objects) SaveFlowBaseline(ids []FlowID, keys []FlowKey, counts []FlowCounts) error {
	if o.baseline == nil || len(ids) == 0 {
		return nil
	}
	vals := make([]flowBaseline, len(ids))
	for i := range ids {
		vals[i] = flowBaseline{Key: keys[i], Counts: counts[i]}
	}
	if _, err := o.baseline.BatchUpdate(ids, vals, nil); err != nil {
		return fmt.Errorf("save flow baseline: %w", err)
	}
	return nil
}

// DropFlowBaseline forgets buckets ids (freed: their next flow starts from zero).
func (o *Objects) DropFlowBaseline(ids []FlowID) error {
	if o.baseline == nil || len(ids) == 0 {
		return nil
	}
	if _, err := o.baseline.BatchDelete(ids, nil); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		// A batch stops at the first missing key: delete the rest one by one.
		for _, id := range ids {
			if err := o.baseline.Delete(id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("drop flow baseline: %w", err)
			}
		}
	}
	return nil
}

// ReadFlowBaseline calls fn with every recorded bucket.
func (o *Objects) ReadFlowBaseline(fn func(id FlowID, key FlowKey, counts FlowCounts)) error {
	if o.baseline == nil {
		return nil
	}
	var id FlowID
	var v flowBaseline
	it := o.baseline.Iterate()
	for it.Next(&id, &v) {
		fn(id, v.Key, v.Counts)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read flow baseline: %w", err)
	}
	return nil
}
