// Package bpf loads packetlake's kernel-side packet observer (pl.c) and attaches it to an
// interface. One parser runs behind an XDP program and a TC (tcx) ingress program; each packet
// becomes a struct pl_record (schema/columns.go), optionally followed by an L7 snippet. Records
// are batched per CPU and reach the ring buffer Events several to a sample (Config.BatchRecords,
// Config.BatchAge, Flush). TestRun replays raw frames through the very same parser without
// attaching.
package bpf

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"slices"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Objects are the loaded programs and maps. Close releases them; links returned by the Attach
// methods are owned by the caller and must be closed first (or they keep the programs alive).
type Objects struct {
	objs     plObjects
	flushKey uint64        // pl_flush_key
	age      time.Duration // Config.BatchAge
	frags    bool          // Config.XDPFrags
	flows    flowTables    // pl_flows4 and pl_flows, mapped (flows.go)
	baseline *ebpf.Map     // pinned runs only: the flow exporter's baseline (pin_flows.go)
}

// Load checks privileges, sizes the maps from cfg and loads the object into the kernel.
func Load(cfg Config) (*Objects, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := CheckCaps(); err != nil {
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
	o := &Objects{flushKey: randomKey(), age: cfg.BatchAge, frags: cfg.XDPFrags}
	if err := configureSpec(spec, cfg, o.flushKey); err != nil {
		return nil, err
	}
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
	if err := o.mapFlows(); err != nil {
		o.objs.Close()
		return nil, err
	}
	return o, nil
}

// configureSpec sizes the maps and sets the load-time constants of spec from cfg (already
// withDefaults). BenchmarkParserObjects loads committed objects of earlier versions through it.
func configureSpec(spec *ebpf.CollectionSpec, cfg Config, flushKey uint64) error {
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("count possible CPUs: %w", err)
	}
	spec.Maps[plMapPlEvents].MaxEntries = uint32(cfg.RingBytes)
	spec.Maps[plMapPlTimers].MaxEntries = uint32(cpus)
	if err := sizeFlowMaps(spec, cfg.FlowEntries, cpus); err != nil {
		return err
	}
	flowsOn, tlsContOn := uint32(1), uint32(1)
	if cfg.NoFlows {
		flowsOn = 0
	}
	if cfg.NoTLSCont {
		tlsContOn = 0
	}
	for name, v := range map[string]any{
		plVarPlWakeupBytes:  uint64(cfg.WakeupBytes),
		plVarPlBatchRecords: uint32(cfg.BatchRecords),
		plVarPlBatchLimit:   cfg.batchLimit(),
		plVarPlBatchAgeNs:   uint64(cfg.BatchAge.Nanoseconds()),
		plVarPlFlushKey:     flushKey,
		plVarPlFlowsOn:      flowsOn,
		plVarPlTlsContOn:    tlsContOn,
		plVarPlFlowCpus:     uint32(cpus),
		plVarPlFlowMask:     uint32(flowBuckets(cfg.FlowEntries) - 1),
		plVarPlFlowSeed:     randomKey(),
		plVarPlSampleMax:    uint32(cfg.SampleMax),
		plVarPlSampleHigh:   uint64(cfg.RingBytes / 4 * 3),
		plVarPlSampleLow:    uint64(cfg.RingBytes / 4),
	} {
		sv, ok := spec.Variables[name]
		if !ok && (name == plVarPlFlowMask || name == plVarPlFlowSeed) {
			continue // an object from before the flow tables (BenchmarkParserObjects)
		}
		if !ok && name == plVarPlTlsContOn && !cfg.NoTLSCont {
			continue // an object from before tls_cont.h (BenchmarkParserObjects)
		}
		if !ok {
			return fmt.Errorf("object has no variable %s", name)
		}
		if err := sv.Set(v); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
	}
	return nil
}

// sizeFlowMaps sizes the flow tables (maps.h): entries buckets each, rounded up to a power of
// two, and a bucket of a head and one struct pl_flow per possible CPU (the C declares one slot;
// pl_flow_cpus tells the program how many there are). Objects from before the tables
// (BenchmarkParserObjects loads them) had LRU hash maps of entries flows and pl_flow_zero, the
// all-zero value a new flow started from: those get one slot per CPU as they did.
func sizeFlowMaps(spec *ebpf.CollectionSpec, entries, cpus int) error {
	buckets := flowBuckets(entries)
	for _, name := range []string{plMapPlFlows, plMapPlFlows4, "pl_flow_zero"} {
		m, ok := spec.Maps[name]
		if !ok {
			continue
		}
		if m.Type != ebpf.Array || m.Flags&unix.BPF_F_MMAPABLE == 0 { // before the tables
			if name != "pl_flow_zero" {
				m.MaxEntries = uint32(entries)
			}
			m.Value = &btf.Array{Index: &btf.Int{Name: "u32", Size: 4}, Type: m.Value, Nelems: uint32(cpus)}
			m.ValueSize *= uint32(cpus)
			continue
		}
		bucket, ok := m.Value.(*btf.Struct)
		if !ok || len(bucket.Members) != 2 {
			return fmt.Errorf("%s: value is not struct { head; slot[1]; }", name)
		}
		slots, ok := bucket.Members[1].Type.(*btf.Array)
		if !ok {
			return fmt.Errorf("%s: value's second member is not an array", name)
		}
		slotSize := m.ValueSize - uint32(bucket.Members[1].Offset.Bytes())
		sized := *bucket
		sized.Members = slices.Clone(bucket.Members)
		arr := *slots
		arr.Nelems = uint32(cpus)
		sized.Members[1].Type = &arr
		sized.Size = m.ValueSize + slotSize*uint32(cpus-1)
		m.Value, m.ValueSize, m.MaxEntries = &sized, sized.Size, uint32(buckets)
	}
	return nil
}

// flowBuckets is the number of buckets of each flow table for Config.FlowEntries.
// (maps.h: 4/3 of it, so that FlowEntries flows fill a table at most 3/4, below which no new flow
// is refused; a power of two, for the mask).
func flowBuckets(entries int) int {
	return 1 << bits.Len(uint((entries*4+2)/3-1))
}

// randomKey is a flush key no live packet is expected to carry; never 0 (0 disables it).
func randomKey() uint64 {
	var b [8]byte
	for {
		rand.Read(b[:])
		if k := binary.NativeEndian.Uint64(b[:]); k != 0 {
			return k
		}
	}
}

// Events is the ring buffer. Each sample is one or more records back to back, each a struct
// pl_record, its tunnel trailer when tunnel_depth != 0, then its snippet_len bytes
// (record.SampleLen walks them). Records of one CPU
// keep their order; batches of different CPUs may interleave out of capture order (ts_ns tells).
func (o *Objects) Events() *ebpf.Map { return o.objs.PlEvents }

// ReadStats returns the counters of pl_stats (record.Stat* indices), summed over CPUs. A packet
// is counted in seen and in emitted or ring_full together, when its batch is written, so
// seen == emitted + ring_full + sampled_out holds whenever no batch is being written; staged
// packets (Staged) are in none of them until then. Parse error counters move when the packet
// is parsed.
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

// Close releases programs and maps (pinned ones stay in their pin directory).
func (o *Objects) Close() error {
	o.unmapFlows()
	return errors.Join(o.objs.Close(), o.baseline.Close())
}
