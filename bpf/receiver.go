package bpf

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

// Receivers is the loaded and attached receiving-process tracer (receiver.c): which process
// reads each local TCP/UDP socket, host-wide (every network namespace), in an LRU map. Close
// detaches and unloads it.
type Receivers struct {
	objs   receiverObjects
	links  []link.Link
	pinDir string // set while pinned (pin_receivers.go): Close leaves the tracer attached
}

// RecvKey is a socket as its incoming packets' flow sees it (receiver.c struct pl_recv_key):
// Remote is the flow's source, Local its destination, IPv4 as IPv4-mapped IPv6; an unconnected
// socket has Remote zero, a wildcard-bound one Local zero too.
type RecvKey = receiverPlRecvKey

// Receiver is the process the tracer saw reading a socket.
type Receiver struct {
	PID      uint32 // the process (thread group id)
	TID      uint32 // the thread that read
	UID      uint32
	Comm     string // the reading thread's command name (up to 15 bytes)
	CgroupID uint64 // cgroup v2 id: the inode of the cgroup's directory under the cgroup2 mount
	SeenNs   uint64 // CLOCK_MONOTONIC when recorded
}

// DefaultReceiverEntries is the LRU map's size: sockets remembered at once; the least recently
// recorded is forgotten first.
const DefaultReceiverEntries = 16384

// LoadReceivers loads receiver.c and attaches its programs to the raw tracepoints
// sock:sock_recv_length (Linux 6.5+) and sock:inet_sock_set_state (no tracefs needed). entries sizes the map (0: the
// default). Needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN) and kernel BTF (CO-RE).
func LoadReceivers(entries int) (*Receivers, error) {
	if entries <= 0 {
		entries = DefaultReceiverEntries
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("remove memlock rlimit: %w", err)
	}
	spec, err := loadReceiver()
	if err != nil {
		return nil, err
	}
	spec.Maps[receiverMapPlReceivers].MaxEntries = uint32(entries)
	spec.Maps[receiverMapPlRecvSocks].MaxEntries = uint32(entries)
	r := &Receivers{}
	if err := spec.LoadAndAssign(&r.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load receiver tracer: verifier rejected a program: %+v", ve)
		}
		return nil, fmt.Errorf("load receiver tracer: %w", err)
	}
	if err := r.Attach(); err != nil {
		r.objs.Close()
		return nil, err
	}
	return r, nil
}

// Attach attaches the programs (LoadReceivers does); Detach takes them off, keeping the maps.
// Benchmarks alternate the two to measure the program's cost side by side.
func (r *Receivers) Attach() error {
	if len(r.links) > 0 {
		return nil
	}
	for _, tp := range []struct {
		name string
		prog *ebpf.Program
	}{{"sock_recv_length", r.objs.PlRecv}, {"inet_sock_set_state", r.objs.PlRecvState}} {
		l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: tp.name, Program: tp.prog})
		if err != nil {
			r.Detach()
			return fmt.Errorf("attach receiver tracer to raw tracepoint %s (sock_recv_length: Linux 6.5+): %w", tp.name, err)
		}
		r.links = append(r.links, l)
	}
	return nil
}

// Detach takes the programs off the tracepoints (of a pinned tracer: this process's handles
// only; Unpin ends it).
func (r *Receivers) Detach() error {
	var errs []error
	for _, l := range r.links {
		errs = append(errs, l.Close())
	}
	r.links = nil
	return errors.Join(errs...)
}

// Close detaches the programs and releases the map; a pinned tracer stays attached.
func (r *Receivers) Close() error {
	return errors.Join(r.Detach(), r.objs.Close())
}

// Read calls fn with every socket in the map, a batch of entries per system call. The map
// changes while it is read: an entry may be missed or seen twice, never torn.
func (r *Receivers) Read(fn func(RecvKey, Receiver)) error {
	keys := make([]RecvKey, readBatch)
	vals := make([]receiverPlReceiver, readBatch)
	var cursor ebpf.MapBatchCursor
	for {
		n, err := r.objs.PlReceivers.BatchLookup(&cursor, keys, vals, nil)
		for i := range n {
			fn(keys[i], receiverOf(&vals[i]))
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil // the end of the map
		}
		if err != nil {
			return fmt.Errorf("read receivers: %w", err)
		}
	}
}

// readBatch entries per BPF_MAP_LOOKUP_BATCH: ~100 KiB of values.
const readBatch = 1024

// Put writes one entry as the program would: tests and benchmarks of the join use it.
func (r *Receivers) Put(k RecvKey, v Receiver) error {
	raw := receiverPlReceiver{CgroupId: v.CgroupID, SeenNs: v.SeenNs, Tgid: v.PID, Pid: v.TID, Uid: v.UID}
	for i := 0; i < len(v.Comm) && i < len(raw.Comm)-1; i++ {
		raw.Comm[i] = int8(v.Comm[i])
	}
	return r.objs.PlReceivers.Put(&k, &raw)
}

// Counts are the tracer's per-CPU counters summed: socket events the hooks saw (reads, listens), and map writes (a socket new to the map, or used by another process than recorded).
func (r *Receivers) Counts() (seen, written uint64, err error) {
	for i, dst := range []*uint64{&seen, &written} {
		var per []uint64
		if err := r.objs.PlRecvStats.Lookup(uint32(i), &per); err != nil {
			return 0, 0, fmt.Errorf("read receiver counters: %w", err)
		}
		for _, n := range per {
			*dst += n
		}
	}
	return seen, written, nil
}

func receiverOf(v *receiverPlReceiver) Receiver {
	comm := make([]byte, 0, len(v.Comm))
	for _, c := range v.Comm {
		comm = append(comm, byte(c))
	}
	if i := bytes.IndexByte(comm, 0); i >= 0 {
		comm = comm[:i]
	}
	return Receiver{PID: v.Tgid, TID: v.Pid, UID: v.Uid, Comm: string(comm), CgroupID: v.CgroupId, SeenNs: v.SeenNs}
}

// NewRecvKey is the key of a socket of proto in network namespace netns (its inode) whose
// incoming packets come from remote and go to local (zero values: not connected, wildcard).
func NewRecvKey(netns uint32, proto uint8, remote netip.AddrPort, local netip.AddrPort) RecvKey {
	k := RecvKey{Netns: netns, IpProto: proto, RemotePort: remote.Port(), LocalPort: local.Port()}
	if a := remote.Addr(); a.IsValid() && !a.IsUnspecified() {
		k.RemoteAddr = a.As16()
	}
	if a := local.Addr(); a.IsValid() && !a.IsUnspecified() {
		k.LocalAddr = a.As16()
	}
	return k
}
