package collector

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/packetlake/packetlake/bpf"
	"github.com/packetlake/packetlake/internal/cgroups"
	"github.com/packetlake/packetlake/internal/netns"
)

// receiverJoin names the receiving process of each exported TCP/UDP flow (Config.Receivers,
// issue 19). The kernel side (bpf/receiver.c) remembers, per socket, the last process that read
// it (or, for a TCP listener, listened on it); at each export the exporter reads that map once and looks every flow up in it: per flow and
// per export, never per packet. The cgroup id is named by its path once per cgroup (cached).
// With a pinned run the tracer is pinned beside the packet program (pinextras.go): its map, and
// its recording while no collector runs, outlive a restart.
//
// A flow's packets come from its source to its destination, so a socket matches it as
// remote = source, local = destination, looked up in this order:
//  1. the connected socket (TCP, connected UDP): the full 4-tuple;
//  2. an unconnected socket bound to the destination address (a UDP server, a TCP listener:
//     the connection's own socket not read yet);
//  3. an unconnected socket bound to the wildcard with the destination port.
//
// Sockets are keyed by network namespace too. Each form is looked up first in the namespace of
// the collector's interface; forms 1 and 2 then in any other namespace, and taken when exactly
// one namespace has them (a packet routed from the host's interface to a pod's veth is read in
// the pod's namespace; two namespaces with the same addresses are ambiguous and name nobody).
type receiverJoin struct {
	tracer *bpf.Receivers
	cg     *cgroups.Resolver // nil without a cgroup2 mount: ids only
	netns  uint32            // inode of the interface's network namespace
	own    map[bpf.RecvKey]bpf.Receiver
	other  map[bpf.RecvKey]map[uint32]bpf.Receiver // keyed with Netns 0: by namespace, every other one's
	rows   *prometheus.CounterVec                  // flow rows by outcome
	errs   prometheus.Counter                      // map reads that failed (the export goes on without receivers)
	c      *Collector                              // nil in tests of the join alone
}

// receiverOutcomes label packetlake_collector_flow_receivers_total.
const (
	recvFound     = "found"     // a receiver named
	recvUnknown   = "unknown"   // TCP/UDP flow with no socket in the map (not local, not read yet, or forgotten)
	recvAmbiguous = "ambiguous" // only in other namespaces, more than one of them
)

func newReceiverJoin(c *Collector) (*receiverJoin, error) {
	var ns uint32
	if err := netns.Do(c.cfg.NetNS, func() error {
		var st unix.Stat_t
		if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
			return err
		}
		ns = uint32(st.Ino)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("receivers: network namespace of %s: %w", c.cfg.Iface, err)
	}
	t, err := c.loadReceivers()
	if err != nil {
		return nil, fmt.Errorf("receivers: %w", err)
	}
	j := &receiverJoin{tracer: t, netns: ns, rows: c.metrics.receiverRows, errs: c.metrics.receiverErrors, c: c}
	c.recvTracer.Store(t)
	if j.cg, err = cgroups.NewResolver(); err != nil {
		c.log.Warn("receivers: cgroup ids will not be named by path", "err", err)
	}
	return j, nil
}

// close releases the tracer; final (the run ends) unpins it first, so it detaches.
func (j *receiverJoin) close(final bool) error {
	if j.c != nil {
		j.c.recvTracer.Store(nil)
	}
	var err error
	if final {
		err = j.tracer.Unpin()
	}
	return errors.Join(err, j.tracer.Close())
}

// refresh reads the kernel's map, once per export. (A key is in it once: the kernel keeps the
// process that read it last; the SeenNs checks only guard against a key seen twice by a read
// racing the map's changes.)
func (j *receiverJoin) refresh() error {
	if j.own == nil {
		j.own, j.other = map[bpf.RecvKey]bpf.Receiver{}, map[bpf.RecvKey]map[uint32]bpf.Receiver{}
	}
	clear(j.own)
	clear(j.other)
	err := j.tracer.Read(func(k bpf.RecvKey, v bpf.Receiver) {
		if k.Netns == j.netns {
			if old, ok := j.own[k]; !ok || v.SeenNs > old.SeenNs {
				j.own[k] = v
			}
			return
		}
		ns := k.Netns
		k.Netns = 0
		m := j.other[k]
		if m == nil {
			m = map[uint32]bpf.Receiver{}
			j.other[k] = m
		}
		if old, ok := m[ns]; !ok || v.SeenNs > old.SeenNs {
			m[ns] = v
		}
	})
	if err != nil {
		j.errs.Inc()
	}
	return err
}

// fill sets row's receiver columns from the map read by the last refresh.
func (j *receiverJoin) fill(row *FlowRow, k bpf.FlowKey) {
	if k.IpProto != 6 && k.IpProto != 17 {
		return
	}
	exact := bpf.RecvKey{RemoteAddr: k.SrcAddr, LocalAddr: k.DstAddr, RemotePort: k.SrcPort, LocalPort: k.DstPort, IpProto: k.IpProto}
	bound := bpf.RecvKey{LocalAddr: k.DstAddr, LocalPort: k.DstPort, IpProto: k.IpProto}
	wild := bpf.RecvKey{LocalPort: k.DstPort, IpProto: k.IpProto}
	outcome := recvUnknown
	for _, f := range []bpf.RecvKey{exact, bound, wild} {
		own := f
		own.Netns = j.netns
		if v, ok := j.own[own]; ok {
			j.set(row, v)
			outcome = recvFound
			break
		}
		if f == wild {
			break // a wildcard socket in another namespace says nothing about this address
		}
		if vs := j.other[f]; len(vs) == 1 {
			for _, v := range vs {
				j.set(row, v)
			}
			outcome = recvFound
			break
		} else if len(vs) > 1 {
			outcome = recvAmbiguous
			break
		}
	}
	j.rows.WithLabelValues(outcome).Inc()
}

func (j *receiverJoin) set(row *FlowRow, v bpf.Receiver) {
	row.RecvPID, row.RecvComm, row.RecvCgroupID = v.PID, v.Comm, v.CgroupID
	if j.cg != nil {
		in := j.cg.Resolve(v.CgroupID, v.PID)
		row.RecvCgroup, row.RecvContainerID, row.RecvPodUID = in.Path, in.ContainerID, in.PodUID
	}
}

// receiverKernelDescs are the tracer's own counters (bpf.Receivers.Counts), read at each scrape.
func receiverKernelDescs(labels prometheus.Labels) (reads, written *prometheus.Desc) {
	return prometheus.NewDesc(metricPrefix+"receiver_reads_total", "Socket reads the receiver tracer saw (--receivers; since it was loaded).", nil, labels),
		prometheus.NewDesc(metricPrefix+"receiver_entries_written_total", "Receiver entries the tracer wrote: a socket new to it, or read by another process.", nil, labels)
}

// receiverMetrics are the join's counters, registered with the collector's.
func receiverMetrics(labels prometheus.Labels) (*prometheus.CounterVec, prometheus.Counter) {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricPrefix + "flow_receivers_total",
			Help: "Exported TCP/UDP flow rows by receiving-process lookup outcome (found, unknown, ambiguous; --receivers).", ConstLabels: labels},
			[]string{"outcome"}),
		prometheus.NewCounter(prometheus.CounterOpts{Name: metricPrefix + "receiver_read_errors_total",
			Help: "Reads of the kernel's receiver map that failed (that export's rows carry no receiver).", ConstLabels: labels})
}
