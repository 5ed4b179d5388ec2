package collector

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sys/unix"

	"github.com/packetlake/packetlake/bpf"
	"github.com/packetlake/packetlake/record"
)

// FlowMessage and FlowRow are the flows topic's wire format, shared with the ingester.
type (
	FlowMessage = record.FlowMessage
	FlowRow     = record.FlowRow
)

// flowsPerMessage keeps a message around 250 KiB of JSON, well under max.message.bytes.
const flowsPerMessage = 1000

// flowCounters are the exporter's, for Stats.
type flowCounters struct {
	*flowTotals               // in the run state: they go on across a restart of a pinned run
	active      atomic.Int64  // gauge: live buckets at the last export
	resent      atomic.Uint64 // messages produced again, same bytes, after their copy failed (per process)
}

// flowTotals are the exporter's counters cumulative per run (runState).
type flowTotals struct {
	exports, exportErrors     atomic.Uint64 // exportErrors: messages unacknowledged when an export ended
	rowsExported, pktExported atomic.Uint64
	bytesExported             atomic.Uint64
	retired                   atomic.Uint64 // idle flows' buckets retired (freed one export later)
	lost                      atomic.Uint64 // packets counted into flows but never exported (lower bound, exact when idle)
}

// flowExporter reads the kernel's flow tables every FlowInterval and produces the deltas. One
// goroutine.
type flowExporter struct {
	c    *Collector
	cl   *kgo.Client                   // its own client: an export of many flows must not take the frames' buffer
	last map[bpf.FlowID]exportedBucket // also in the pinned baseline map of a pinned run
	// pending is the last export while a message of it is unacknowledged: no export is cut
	// until it is settled (flowexport.go).
	pending *flowExport
	mu      sync.Mutex    // one export at a time (loop vs Stop's final export)
	recv    *receiverJoin // Config.Receivers; nil otherwise
}

// exportedBucket is what the acknowledged exports carried of one kernel bucket so far.
type exportedBucket struct {
	key    bpf.FlowKey
	counts bpf.FlowCounts
}

func newFlowExporter(c *Collector) (*flowExporter, error) {
	cl, err := c.cfg.Kafka.NewClient(c.kafkaDeps(),
		kgo.DefaultProduceTopic(c.cfg.FlowsTopic),
		kgo.ProducerBatchCompression(kgo.Lz4Compression()),
		kgo.ProducerLinger(0),
		// Idempotent (the default) with no delivery timeout and unlimited retries (also the
		// defaults, named here because exactness rests on them): a message handed to this client
		// is retried against a slow, paused or absent broker until it is written once, or until
		// Stop closes the client. An export that stops waiting leaves it in flight.
		kgo.RecordDeliveryTimeout(0),
	)
	if err != nil {
		return nil, fmt.Errorf("flows: %w", err)
	}
	x := &flowExporter{c: c, cl: cl, last: map[bpf.FlowID]exportedBucket{}}
	if c.cfg.Receivers && !c.noAttach {
		if x.recv, err = newReceiverJoin(c); err != nil {
			cl.Close()
			return nil, err
		}
	}
	// An adopted run goes on from what its earlier processes' acknowledged exports carried.
	if err := c.objs.ReadFlowBaseline(func(id bpf.FlowID, key bpf.FlowKey, counts bpf.FlowCounts) {
		x.last[id] = exportedBucket{key: key, counts: counts}
	}); err != nil {
		x.close(false)
		return nil, err
	}
	return x, nil
}

// close releases the exporter's client and the receiver tracer (final: the run ends, a pinned
// tracer is unpinned too).
func (x *flowExporter) close(final bool) error {
	x.cl.Close()
	if x.recv != nil {
		return x.recv.close(final)
	}
	return nil
}

// flowExportWait bounds how long an export waits for Kafka's acknowledgements before it returns
// and reports its messages unacknowledged. They stay in flight, and no export is cut until they
// are acknowledged (flowexport.go), so the bound no longer guards exactness (a 5 s bound once
// counted the deltas of a failover twice); it outlasts a partition leader's failover (3-4 s) and
// most of the active controller's (7-10 s on a three-node KRaft cluster, test/cluster), so a
// failover seldom shows as an export error, while an outage shows within seconds.
const flowExportWait = 10 * time.Second

func (x *flowExporter) loop(ctx context.Context) {
	t := time.NewTicker(x.c.cfg.FlowInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			ectx, cancel := context.WithTimeout(ctx, max(x.c.cfg.FlowInterval, flowExportWait))
			if err := x.export(ectx, false); err != nil {
				x.c.log.Warn("flow export", "err", err)
			}
			cancel()
		}
	}
}

// bucketDelta is one kernel bucket at this export: its counts now, and what becomes of it once
// the export is acknowledged.
type bucketDelta struct {
	entry  bpf.FlowEntry
	retire bool // idle: retire it (no packet matches it from then on)
	free   bool // retired at an earlier export and now read once more: free it
}

// flowGroup is one flow's buckets at this export: one row on the topic.
type flowGroup struct {
	key     bpf.FlowKey
	buckets []bucketDelta
	delta   bpf.FlowCounts // what the buckets gained since their last acknowledged export
}

// prev is what the acknowledged exports carried of e's bucket: zero for a bucket they never
// carried (or, never seen, one that holds another flow than they knew).
func (x *flowExporter) prev(e bpf.FlowEntry) bpf.FlowCounts {
	p, ok := x.last[e.ID]
	if !ok || p.key != e.Key || e.Counts.Packets < p.counts.Packets {
		return bpf.FlowCounts{}
	}
	return p.counts
}

// delta sums what g's buckets gained since their last acknowledged export.
func (x *flowExporter) delta(g *flowGroup) bpf.FlowCounts {
	var sum bpf.FlowCounts
	for _, d := range g.buckets {
		if prev := x.prev(d.entry); d.entry.Counts.Packets > prev.Packets {
			sum.Sum(d.entry.Counts.Minus(prev))
		}
	}
	return sum
}

func flowRow(k bpf.FlowKey, d bpf.FlowCounts, off int64) FlowRow {
	wall := func(ns uint64) int64 {
		if ns == 0 {
			return 0
		}
		return int64(ns) + off
	}
	return FlowRow{
		Ifindex: k.Ifindex, VlanID: k.VlanId, TunnelID: k.TunnelId, IPVersion: k.IpVersion, IPProto: k.IpProto,
		SrcAddr: k.SrcIP(), DstAddr: k.DstIP(), SrcPort: k.SrcPort, DstPort: k.DstPort,
		Packets: d.Packets, Bytes: d.Bytes, SYN: d.SYN, FIN: d.FIN, RST: d.RST, ACK: d.ACK,
		FirstSeenNs: wall(d.FirstNs), LastSeenNs: wall(d.LastNs),
	}
}

// monoNow is CLOCK_MONOTONIC in ns, the clock of bpf_ktime_get_ns.
func monoNow() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}

// startFlows starts the exporter goroutine (FlowsTopic set).
func (c *Collector) startFlows() error {
	if !c.cfg.Receivers {
		c.removePinnedReceivers() // off now: a tracer an earlier run pinned stops
	}
	if c.cfg.FlowsTopic == "" {
		return nil
	}
	x, err := newFlowExporter(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.flows, c.flowsCancel, c.flowsDone = x, cancel, make(chan struct{})
	go func() {
		defer close(c.flowsDone)
		x.loop(ctx)
	}()
	return nil
}

// stopFlows ends the loop and makes the last export (settling a pending one first). final: the
// program is detached and its batches flushed, so after it every packet the program counted is
// in Kafka, or Stop reports the messages Kafka did not acknowledge in time; otherwise (the
// pinned program stays) an ordinary export, whose baseline the next process goes on from. ctx
// is Stop's FlushTimeout, shared with the frames' flush.
func (c *Collector) stopFlows(ctx context.Context, final bool) error {
	if c.flows == nil {
		return nil
	}
	c.flowsCancel()
	<-c.flowsDone
	err := c.flows.export(ctx, final)
	if cerr := c.flows.close(final); cerr != nil {
		c.log.Warn("receivers: detach", "err", cerr)
	}
	c.flows = nil
	if err != nil {
		return fmt.Errorf("last flow export: %w", err)
	}
	return nil
}
