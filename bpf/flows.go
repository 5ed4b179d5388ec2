package bpf

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// FlowKey identifies a flow: the 5-tuple, VLAN, interface, IP version and tunnel id of a packet
// as its record has them (the innermost packet of a tunnel) (addresses IPv4-mapped for IPv4, zero for non-IP frames). It is pl_flows' key;
// IPv4 flows are kept in pl_flows4 under a shorter key (flow4Key), which ReadFlows converts, so
// callers only ever see FlowKey.
type FlowKey = plPlFlowKey

// flow4Key is pl_flows4's key: an IPv4 FlowKey without the ::ffff: prefixes, ip_version and
// tunnel_id (always 0 there: tunnelled IPv4 flows with an id are in pl_flows).
type flow4Key = plPlFlow4Key

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
// exactly one flow bucket (record.StatFlowCounted) or to flow_failed, before any sampling or ring
// decision, so they are exact. FirstNs/LastNs are bpf_ktime_get_ns() (monotonic), min and max
// over CPUs.
type FlowCounts struct {
	Packets, Bytes     uint64
	SYN, FIN, RST, ACK uint64
	FirstNs, LastNs    uint64
}

// Sum adds o (another CPU's slot or bucket of the same flow) to c: counts add up, the first and
// last times are the earliest and latest (0: none).
func (c *FlowCounts) Sum(o FlowCounts) {
	c.Packets += o.Packets
	c.Bytes += o.Bytes
	c.SYN += o.SYN
	c.FIN += o.FIN
	c.RST += o.RST
	c.ACK += o.ACK
	if c.FirstNs == 0 || (o.FirstNs != 0 && o.FirstNs < c.FirstNs) {
		c.FirstNs = o.FirstNs
	}
	c.LastNs = max(c.LastNs, o.LastNs)
}

// Minus is c less an earlier reading prev of the same bucket (the packets since); times are c's.
func (c FlowCounts) Minus(prev FlowCounts) FlowCounts {
	return FlowCounts{
		Packets: c.Packets - prev.Packets, Bytes: c.Bytes - prev.Bytes,
		SYN: c.SYN - prev.SYN, FIN: c.FIN - prev.FIN, RST: c.RST - prev.RST, ACK: c.ACK - prev.ACK,
		FirstNs: c.FirstNs, LastNs: c.LastNs,
	}
}

// FlowID names one bucket of the kernel's flow tables: ReadFlows gives it, RetireFlows and
// FreeFlows take it. A bucket holds one flow from its first packet until it is freed.
type FlowID uint64

// FlowEntry is one bucket as ReadFlows found it: its flow and counts since the bucket was claimed.
// A flow may have more than one bucket (two CPUs claiming at once, or a new bucket after its old
// one was retired): sum entries by Key for the flow's totals.
type FlowEntry struct {
	ID      FlowID
	Key     FlowKey
	Counts  FlowCounts
	Retired bool // RetireFlows retired it: no packet is added to it any more
}

// Bucket states (maps.h PL_FLOW_*).
const (
	flowEmpty   = 0
	flowClaimed = 1
	flowLive    = 2
	flowRetired = 3
)

// flowTable is one of the program's flow tables (pl_flows4, pl_flows), mapped into this process:
// BPF_F_MMAPABLE arrays whose buckets are read in place and whose states change with atomics.
type flowTable struct {
	name string
	mem  []byte
	n    int // buckets
	size int // bytes per bucket: head, then one plPlFlow per possible CPU
	head int // bytes of the head: state and key
	cpus int
	key  func(head unsafe.Pointer) FlowKey
}

func mapFlowTable(name string, m *ebpf.Map, head int, key func(unsafe.Pointer) FlowKey) (*flowTable, error) {
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, err
	}
	t := &flowTable{name: name, n: int(m.MaxEntries()), size: int(m.ValueSize()), head: head, cpus: cpus, key: key}
	if want := head + cpus*int(unsafe.Sizeof(plPlFlow{})); t.size != want {
		return nil, fmt.Errorf("flow table %s: buckets of %d bytes, want %d", t.name, t.size, want)
	}
	// An mmapable array's values start at offset 0, each rounded up to 8 bytes (ours already are).
	t.mem, err = unix.Mmap(m.FD(), 0, t.n*t.size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap flow table %s: %w", t.name, err)
	}
	return t, nil
}

func (t *flowTable) state(i int) *uint32 {
	return (*uint32)(unsafe.Pointer(&t.mem[i*t.size]))
}

// counts sums bucket i's CPU slots.
func (t *flowTable) counts(i int) FlowCounts {
	slots := unsafe.Slice((*plPlFlow)(unsafe.Pointer(&t.mem[i*t.size+t.head])), t.cpus)
	var c FlowCounts
	for _, v := range slots {
		c.Sum(FlowCounts{Packets: v.Packets, Bytes: v.Bytes, SYN: uint64(v.Syn), FIN: uint64(v.Fin),
			RST: uint64(v.Rst), ACK: uint64(v.Ack), FirstNs: v.FirstNs, LastNs: v.LastNs})
	}
	return c
}

// flowTables maps the two tables once, after load; Close unmaps them. mu keeps an unmap from
// racing a walk (which would fault, not fail).
type flowTables struct {
	mu     sync.RWMutex
	tables [2]*flowTable // pl_flows4, pl_flows: FlowID >> 32 indexes it
	closed bool
}

func (o *Objects) mapFlows() error {
	t4, err := mapFlowTable(plMapPlFlows4, o.objs.PlFlows4, int(unsafe.Sizeof(plPlFlow4Head{})), func(p unsafe.Pointer) FlowKey {
		return (*plPlFlow4Head)(p).Key.full()
	})
	if err != nil {
		return err
	}
	t6, err := mapFlowTable(plMapPlFlows, o.objs.PlFlows, int(unsafe.Sizeof(plPlFlow6Head{})), func(p unsafe.Pointer) FlowKey {
		return (*plPlFlow6Head)(p).Key
	})
	if err != nil {
		unix.Munmap(t4.mem)
		return err
	}
	o.flows.tables = [2]*flowTable{t4, t6}
	return nil
}

func (o *Objects) unmapFlows() {
	o.flows.mu.Lock()
	defer o.flows.mu.Unlock()
	if o.flows.closed {
		return
	}
	for _, t := range o.flows.tables {
		if t != nil {
			unix.Munmap(t.mem)
		}
	}
	o.flows.closed = true
}

var errFlowsClosed = errors.New("flow tables: objects closed")

// ReadFlows walks both flow tables in place and calls fn with every LIVE or RETIRED bucket
// (counts summed over CPUs, cumulative since the bucket was claimed). Buckets claimed during the
// walk may or may not be seen; each is seen at most once.
func (o *Objects) ReadFlows(fn func(FlowEntry)) error {
	o.flows.mu.RLock()
	defer o.flows.mu.RUnlock()
	if o.flows.closed {
		return errFlowsClosed
	}
	for ti, t := range o.flows.tables {
		for i := range t.n {
			// The program writes the key before it makes the bucket LIVE (a full barrier): a LIVE
			// bucket's key is complete.
			st := atomic.LoadUint32(t.state(i))
			if st != flowLive && st != flowRetired {
				continue
			}
			fn(FlowEntry{
				ID:      FlowID(uint64(ti)<<32 | uint64(i)),
				Key:     t.key(unsafe.Pointer(&t.mem[i*t.size])),
				Counts:  t.counts(i),
				Retired: st == flowRetired,
			})
		}
	}
	return nil
}

func (o *Objects) flowBucket(id FlowID) (*flowTable, int, error) {
	ti, i := int(id>>32), int(uint32(id))
	if ti >= len(o.flows.tables) || i >= o.flows.tables[ti].n {
		return nil, 0, fmt.Errorf("flow id %#x: no such bucket", uint64(id))
	}
	return o.flows.tables[ti], i, nil
}

// eachBucket calls fn with the table and index of every id, the tables mapped.
func (o *Objects) eachBucket(ids []FlowID, fn func(t *flowTable, i int)) error {
	o.flows.mu.RLock()
	defer o.flows.mu.RUnlock()
	if o.flows.closed {
		return errFlowsClosed
	}
	for _, id := range ids {
		t, i, err := o.flowBucket(id)
		if err != nil {
			return err
		}
		fn(t, i)
	}
	return nil
}

// RetireFlows retires LIVE buckets (an idle flow's, just exported): no packet matches them from
// now on, and the flow's next packet claims a new bucket. A packet that matched just before may
// still add to one; read the bucket again (ReadFlows reports it Retired) at least one program
// run later -- the next export -- and then free it. Buckets no longer LIVE are left alone.
func (o *Objects) RetireFlows(ids []FlowID) error {
	return o.eachBucket(ids, func(t *flowTable, i int) {
		atomic.CompareAndSwapUint32(t.state(i), flowLive, flowRetired)
	})
}

// FreeFlows empties RETIRED buckets (read since they were retired, their counts exported) for
// new flows: the key and slots are zeroed, then the state is made EMPTY. Buckets not RETIRED are
// left alone.
func (o *Objects) FreeFlows(ids []FlowID) error {
	return o.eachBucket(ids, func(t *flowTable, i int) {
		if atomic.LoadUint32(t.state(i)) != flowRetired {
			return
		}
		clear(t.mem[i*t.size+4 : (i+1)*t.size])
		atomic.StoreUint32(t.state(i), flowEmpty) // after the zeroes: a claim finds the bucket clean
	})
}
