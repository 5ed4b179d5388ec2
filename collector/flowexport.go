package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/bpf"
	"github.com/packetlake/packetlake/record"
)

// exportClock is when an export reads the tables.
type exportClock struct {
	mono uint64    // CLOCK_MONOTONIC, bpf_ktime_get_ns's clock: how long a flow has been idle
	off  int64     // wall clock − monotonic: the rows' first and last seen
	now  time.Time // the messages' time
}

// sentFlows is one export's messages on their way to Kafka: flowsPerMessage groups of order to
// a message.
type sentFlows struct {
	order    []*flowGroup
	wg       sync.WaitGroup
	failed   []atomic.Bool         // by message
	firstErr atomic.Pointer[error] // what the broker said, for the log
}

// message is the groups of message i.
func (s *sentFlows) message(i int) []*flowGroup {
	return s.order[i*flowsPerMessage : min(len(s.order), (i+1)*flowsPerMessage)]
}

// export reads the tables and produces, per flow, what its buckets gained since their last
// acknowledged export. Only after Kafka acknowledged a flow's row does it remember the buckets'
// counts, retire the buckets of flows idle longer than FlowIdle and free the buckets it had
// retired at an earlier export (their last packets, if any raced the retirement, were in this
// row): no count is lost between the kernel and the topic. final: Stop's last export, after the
// program was detached.
func (x *flowExporter) export(ctx context.Context, final bool) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	c := x.c
	c.objsMu.Lock()
	objs := c.objs
	c.objsMu.Unlock()
	if objs == nil {
		return nil
	}
	st, err := objs.ReadStats()
	if err != nil {
		return err
	}
	countedBefore := st[record.StatFlowCounted]
	clk := c.exportClock()
	order, err := x.changedFlows(objs, clk.mono, final)
	if err != nil {
		return err
	}
	sent, err := x.produce(ctx, order, clk, c.state.flowSeq.Add(1))
	if err != nil {
		return err
	}
	acked := x.wait(ctx, &sent.wg, !final) // final: Stop closes the client right after, failing the rest
	retire, toFree, errs := x.remember(sent, acked)
	c.fn.exports.Add(1)
	if err := x.saveBaseline(objs, sent, acked, toFree); err != nil {
		return err
	}
	if err := x.retireAndFree(objs, retire, toFree); err != nil {
		return err
	}
	if errs > 0 {
		c.fn.exportErrors.Add(uint64(errs))
		cause := errors.New("not acknowledged before the export ended")
		if e := sent.firstErr.Load(); e != nil {
			cause = *e
		}
		return fmt.Errorf("%d of %d flow messages not acknowledged (retried at the next export): %w", errs, len(sent.failed), cause)
	}
	x.noteLost(countedBefore)
	return nil
}

// exportClock reads the clocks; the offset is the last one stamped on a frame if it cannot be
// measured.
func (c *Collector) exportClock() exportClock {
	mono := monoNow()
	off, err := clockOffset()
	if err != nil {
		off = c.offset.Load()
	}
	return exportClock{mono: mono, off: off, now: time.Now().UTC()}
}

// changedFlows walks the flow tables and returns, in table order, the flows whose buckets this
// export produces, retires or frees. It counts the live buckets and forgets the buckets freed
// since the last export.
func (x *flowExporter) changedFlows(objs *bpf.Objects, mono uint64, final bool) ([]*flowGroup, error) {
	idleNs := uint64(x.c.cfg.FlowIdle.Nanoseconds())
	groups := map[bpf.FlowKey]*flowGroup{}
	var order []*flowGroup
	seen := make(map[bpf.FlowID]struct{}, len(x.last))
	active := 0
	if err := objs.ReadFlows(func(e bpf.FlowEntry) {
		seen[e.ID] = struct{}{}
		if !e.Retired {
			active++
		}
		d := bucketDelta{entry: e}
		if !final {
			d.free = e.Retired
			// Packets 0: just claimed, its first packet not added yet; not idle.
			d.retire = !e.Retired && e.Counts.Packets > 0 && mono > e.Counts.LastNs && mono-e.Counts.LastNs > idleNs
		}
		if e.Counts.Packets == x.prev(e).Packets && !d.retire && !d.free {
			return
		}
		g := groups[e.Key]
		if g == nil {
			g = &flowGroup{key: e.Key}
			groups[e.Key] = g
			order = append(order, g)
		}
		g.buckets = append(g.buckets, d)
	}); err != nil {
		return nil, err
	}
	x.c.fn.active.Store(int64(active))
	for id := range x.last { // freed (by this exporter) since: nothing left to remember
		if _, ok := seen[id]; !ok {
			delete(x.last, id)
		}
	}
	return order, nil
}

// produce sends the flows' deltas, flowsPerMessage rows to a message; a message whose flows
// gained nothing (idle and already exported, only to be retired or freed) is not sent and
// counts as acknowledged.
func (x *flowExporter) produce(ctx context.Context, order []*flowGroup, clk exportClock, seq uint64) (*sentFlows, error) {
	c := x.c
	sent := &sentFlows{order: order, failed: make([]atomic.Bool, (len(order)+flowsPerMessage-1)/flowsPerMessage)}
	for i := range sent.failed {
		groups := sent.message(i)
		msg := FlowMessage{Version: record.FlowMessageVersion, Time: clk.now, Host: c.cfg.Host, Iface: c.iface,
			CollectorID: c.id, ExportSeq: seq, Flows: make([]FlowRow, 0, len(groups))}
		for _, g := range groups {
			g.delta = x.delta(g)
			if g.delta.Packets > 0 {
				msg.Flows = append(msg.Flows, flowRow(g.key, g.delta, clk.off))
			}
		}
		if len(msg.Flows) == 0 {
			continue
		}
		b, err := json.Marshal(&msg)
		if err != nil {
			return nil, err
		}
		sent.wg.Add(1)
		x.cl.Produce(ctx, &kgo.Record{Key: c.prod.key, Value: b}, func(_ *kgo.Record, err error) {
			defer sent.wg.Done()
			if err != nil {
				sent.failed[i].Store(true)
				sent.firstErr.CompareAndSwap(nil, &err)
			}
		})
	}
	return sent, nil
}

// remember takes in what the acknowledged messages carried: the exported counters, and each
// bucket's counts as the next export's starting point. It returns the buckets to retire and to
// free, and how many messages were not acknowledged (all of them unless acked).
func (x *flowExporter) remember(sent *sentFlows, acked bool) (retire, toFree []bpf.FlowID, errs int) {
	fn := &x.c.fn
	for i := range sent.failed {
		if !acked || sent.failed[i].Load() {
			errs++
			continue
		}
		for _, g := range sent.message(i) {
			if g.delta.Packets > 0 {
				fn.rowsExported.Add(1)
				fn.pktExported.Add(g.delta.Packets)
				fn.bytesExported.Add(g.delta.Bytes)
			}
			for _, d := range g.buckets {
				switch {
				case d.free:
					toFree = append(toFree, d.entry.ID)
					delete(x.last, d.entry.ID)
					continue
				case d.retire:
					retire = append(retire, d.entry.ID)
				}
				x.last[d.entry.ID] = exportedBucket{key: d.entry.Key, counts: d.entry.Counts}
			}
		}
	}
	return retire, toFree, errs
}

// saveBaseline writes what remember took in to a pinned run's baseline map (bpf.Objects does
// nothing for an unpinned one), so that a process continuing the run sends only what the buckets
// gain from here. A process killed between an export's acknowledgement and this write leaves
// its successor the older baseline: that one export's deltas are sent again.
func (x *flowExporter) saveBaseline(objs *bpf.Objects, sent *sentFlows, acked bool, freed []bpf.FlowID) error {
	var ids []bpf.FlowID
	var keys []bpf.FlowKey
	var counts []bpf.FlowCounts
	for i := range sent.failed {
		if !acked || sent.failed[i].Load() {
			continue
		}
		for _, g := range sent.message(i) {
			for _, d := range g.buckets {
				if e, ok := x.last[d.entry.ID]; ok && !d.free {
					ids, keys, counts = append(ids, d.entry.ID), append(keys, e.key), append(counts, e.counts)
				}
			}
		}
	}
	return errors.Join(objs.SaveFlowBaseline(ids, keys, counts), objs.DropFlowBaseline(freed))
}

// retireAndFree hands the acknowledged idle buckets back to the kernel.
func (x *flowExporter) retireAndFree(objs *bpf.Objects, retire, toFree []bpf.FlowID) error {
	if err := objs.RetireFlows(retire); err != nil {
		return err
	}
	x.c.fn.retired.Add(uint64(len(retire)))
	return objs.FreeFlows(toFree)
}

// noteLost raises the lost packets to what was counted before the walk and is in no
// acknowledged delta. Every packet counted before the walk is in an exported delta, or was lost
// (an export not acknowledged yet, which the next one retries; nothing else loses counts now).
func (x *flowExporter) noteLost(countedBefore uint64) {
	fn := &x.c.fn
	e := fn.pktExported.Load()
	if countedBefore <= e {
		return
	}
	for {
		old := fn.lost.Load()
		if countedBefore-e <= old || fn.lost.CompareAndSwap(old, countedBefore-e) {
			return
		}
	}
}
