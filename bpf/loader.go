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
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/packetlake/packetlake/record"
	"github.com/packetlake/packetlake/schema"
)

const (
	// DefaultRingBytes holds ~100k records without snippet: 50 ms at 2 Mpps (INFRA.md).
	DefaultRingBytes = 16 << 20
	// DefaultWakeupBytes is the pending data at which the kernel wakes the reader.
	DefaultWakeupBytes = 256 << 10
)

// Config sizes the ring buffer and the per-CPU batches. Zero values take the defaults.
type Config struct {
	// RingBytes is the ring buffer size: a power of two, at least one page.
	RingBytes int
	// WakeupBytes: the reader is woken when pending data crosses it, otherwise records are written
	// without a wake-up and the reader must poll with a deadline. Default min(256 KiB, RingBytes/4).
	WakeupBytes int
	// BatchRecords is the most records a CPU stages before writing them to the ring as one sample
	// (default DefaultBatchRecords; 1 writes every record at once). A batch is also written when
	// the next record might not fit its min(16 KiB, RingBytes/4) bytes, and once it is BatchAge
	// old.
	BatchRecords int
	// BatchAge bounds how long a record may wait in a part-filled batch: a later packet on the same
	// CPU, or else that CPU's timer, writes the batch out once its oldest record is this old.
	// Default DefaultBatchAge.
	BatchAge time.Duration
	// FlowEntries is how many flows each flow table, pl_flows4 (IPv4) and pl_flows (IPv6,
	// non-IP), holds at once (default DefaultFlowEntries): it gets 4/3 as many buckets, rounded
	// up to a power of two. A new flow that finds no free bucket among the 32 its hash leads to
	// counts in flow_failed; nothing is evicted (maps.h).
	FlowEntries int
	// NoFlows turns exact flow counting off (benchmarks: the cost without it).
	NoFlows bool
	// SampleMax bounds adaptive sampling: under ring pressure a CPU records 1 in N ordinary
	// packets, N doubling up to SampleMax (default DefaultSampleMax; 1 never samples). Pressure:
	// more than 3/4 of the ring pending after a batch write, or a batch the ring refused; N halves
	// again below 1/4 (BENCHMARKS.md: at 1/2 a burst the ring would have absorbed got sampled).
	SampleMax int
	// XDPFrags makes AttachXDP attach only the frags-aware pl_xdp, never pl_xdp_linear. While
	// pl_xdp_linear is attached natively the kernel refuses to raise the interface's MTU past
	// one buffer (about 3.5 KiB); with XDPFrags it allows that, at ~8 ns more per packet
	// (BENCH.md).
	XDPFrags bool
}

const (
	// DefaultBatchRecords: 32 records to a ring sample (BENCH.md).
	DefaultBatchRecords = 32
	// DefaultBatchAge is well inside the collector's frame age: a quiet interface still delivers.
	DefaultBatchAge = 20 * time.Millisecond

	// DefaultFlowEntries: flows tracked at once per table, IPv4 and the rest: 65536 buckets
	// each (~48 B per possible CPU + head, preallocated), as many as the LRU maps had entries.
	DefaultFlowEntries = 49152
	// DefaultSampleMax: at most 1 in 64 ordinary packets' records kept under pressure.
	DefaultSampleMax = 64

	stageBytes   = 16384                                       // PL_STAGE_BYTES (maps.h)
	recordMax    = record.KernelRecordSize + schema.SnippetMax // PL_RECORD_MAX
	maxBatchRecs = 1 << 16
)

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
	if c.BatchRecords == 0 {
		c.BatchRecords = DefaultBatchRecords
	}
	if c.BatchRecords < 0 || c.BatchRecords > maxBatchRecs {
		return c, fmt.Errorf("batch of %d records: must be between 1 and %d", c.BatchRecords, maxBatchRecs)
	}
	if c.BatchAge == 0 {
		c.BatchAge = DefaultBatchAge
	}
	if c.FlowEntries == 0 {
		c.FlowEntries = DefaultFlowEntries
	}
	if c.FlowEntries < 0 {
		return c, fmt.Errorf("flow entries %d: must be positive", c.FlowEntries)
	}
	if c.SampleMax == 0 {
		c.SampleMax = DefaultSampleMax
	}
	if c.SampleMax < 0 || c.SampleMax > 1<<20 {
		return c, fmt.Errorf("sample max %d: must be between 1 and %d", c.SampleMax, 1<<20)
	}
	if c.BatchAge < 0 {
		return c, fmt.Errorf("batch age %s: must be positive", c.BatchAge)
	}
	return c, nil
}

// batchLimit is pl_batch_limit: the staged bytes past which a batch is written, so that the next
// record, at its largest, still fits both the stage and a quarter of the ring (a sample larger
// than the ring could never be written). 0: every record is written at once.
func (c Config) batchLimit() uint32 {
	return uint32(max(0, min(stageBytes, c.RingBytes/4)-recordMax))
}

// Objects are the loaded programs and maps. Close releases them; links returned by the Attach
// methods are owned by the caller and must be closed first (or they keep the programs alive).
type Objects struct {
	objs     plObjects
	flushKey uint64        // pl_flush_key
	age      time.Duration // Config.BatchAge
	frags    bool          // Config.XDPFrags
	flows    flowTables    // pl_flows4 and pl_flows, mapped (flows.go)
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
	flowsOn := uint32(1)
	if cfg.NoFlows {
		flowsOn = 0
	}
	for name, v := range map[string]any{
		plVarPlWakeupBytes:  uint64(cfg.WakeupBytes),
		plVarPlBatchRecords: uint32(cfg.BatchRecords),
		plVarPlBatchLimit:   cfg.batchLimit(),
		plVarPlBatchAgeNs:   uint64(cfg.BatchAge.Nanoseconds()),
		plVarPlFlushKey:     flushKey,
		plVarPlFlowsOn:      flowsOn,
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

// Events is the ring buffer. Each sample is one or more records back to back, each a struct
// pl_record followed by its snippet_len bytes (record.SampleLen walks them). Records of one CPU
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

// Flush writes out the records every CPU has staged but not yet written to the ring (see
// Config.BatchRecords): when it returns they are in Events, and the counters satisfy seen ==
// emitted + ring_full + sampled_out for every packet that ran before the call. Each CPU's batch
// can only be touched on that CPU, so Flush runs the flush program there, from a thread it pins
// to each CPU in turn; a CPU this process may not run on (cpuset) is left to its timer, which
// Flush waits for, up to BatchAge and a margin. Live packets arriving meanwhile start new
// batches. Stopping a capture: detach, Flush, then drain the ring.
func (o *Objects) Flush() error {
	done := make(chan error, 1)
	var flushed unix.CPUSet
	go func() {
		// The thread's affinity is changed: locked and never unlocked, so the runtime discards
		// the thread when this goroutine ends instead of reusing it pinned.
		runtime.LockOSThread()
		done <- o.flushEachCPU(&flushed)
	}()
	if err := <-done; err != nil {
		return err
	}
	deadline := time.Now().Add(o.age + 200*time.Millisecond)
	for {
		per, err := o.stagedPerCPU()
		if err != nil {
			return err
		}
		left := 0
		for cpu, n := range per {
			if !flushed.IsSet(cpu) {
				left += n
			}
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("flush: %d records still staged on CPUs this process cannot run on, past their timers' %s", left, o.age)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// flushEachCPU runs pl_flush on every CPU the calling (locked) thread may run on and notes
// them in flushed.
func (o *Objects) flushEachCPU(flushed *unix.CPUSet) error {
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		return fmt.Errorf("flush: read CPU affinity: %w", err)
	}
	frame := make([]byte, 14) // the smallest frame a test run takes; pl_flush does not read it
	for cpu := range cpuSetSize {
		if !allowed.IsSet(cpu) {
			continue
		}
		var one unix.CPUSet
		one.Set(cpu)
		if err := unix.SchedSetaffinity(0, &one); err != nil {
			continue // offline meanwhile: nothing runs there
		}
		if _, err := run(o.objs.PlFlush, &ebpf.RunOptions{Data: frame}); err != nil {
			return fmt.Errorf("flush CPU %d: %w", cpu, err)
		}
		flushed.Set(cpu)
	}
	return nil
}

// cpuSetSize is how many CPUs a unix.CPUSet can name.
const cpuSetSize = len(unix.CPUSet{}) * 64

// Staged returns how many records the CPUs hold in part-filled batches, not yet written to the
// ring nor counted (a packet is counted when its batch is written).
func (o *Objects) Staged() (int, error) {
	per, err := o.stagedPerCPU()
	n := 0
	for _, c := range per {
		n += c
	}
	return n, err
}

func (o *Objects) stagedPerCPU() ([]int, error) {
	var per []plPlStage
	if err := o.objs.PlStageMap.Lookup(uint32(0), &per); err != nil {
		return nil, fmt.Errorf("read pl_stage_map: %w", err)
	}
	out := make([]int, len(per))
	for cpu, s := range per {
		out[cpu] = int(s.N)
	}
	return out, nil
}

// Close releases programs and maps.
func (o *Objects) Close() error {
	o.unmapFlows()
	return o.objs.Close()
}
