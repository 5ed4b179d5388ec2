package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/bpf"
	"github.com/packetlake/packetlake/record"
)

// Flow exports are exact end to end, through lost, late and repeated acknowledgements:
//
//   - An export is cut from the kernel's flow tables into messages of up to flowsPerMessage
//     flows. Each message has an identity, (collector_id, export_seq, chunk), and fixed bytes;
//     its deltas are relative to what the ACKNOWLEDGED exports carried (x.last).
//   - A message is handed to the client once, with no deadline: the idempotent producer retries
//     it until the broker has written it once. An export that stops waiting (a slow or paused
//     broker) leaves it in flight and returns. Only a copy whose promise failed is produced
//     again, with the very same bytes.
//   - No export is cut while a message of the previous one is unacknowledged (x.pending): an
//     unresolved message's delta is never folded into a new message, which is how a late
//     acknowledgement used to count packets twice (the given-up message landed, and the next
//     export re-sent its delta). The kernel keeps counting meanwhile, and the first export cut
//     after the settlement carries everything since. The exporter holds at most one export.
//   - A bucket is retired or freed only once the message carrying its last counts is
//     acknowledged; until then the kernel keeps it.
//   - Should a message ever land twice (a copy failed after the broker had written it), the
//     ingester stores an identity once, looking it up in the flows table itself: across its
//     restarts and rebalances, and however late the copy comes (ingester/sink_flows.go).
//
// Steps of an export: settle the pending export if any (produce → wait → remember →
// retireAndFree), then changedFlows → cut → the same settlement → noteLost.

// exportClock is when an export reads the tables.
type exportClock struct {
	mono uint64    // CLOCK_MONOTONIC, bpf_ktime_get_ns's clock: how long a flow has been idle
	off  int64     // wall clock − monotonic: the rows' first and last seen
	now  time.Time // the messages' time
}

// flowExport is one export's messages, kept until every one is acknowledged.
type flowExport struct {
	seq  uint64
	msgs []*flowMsg
}

// flowMsg is one message of an export and its latest copy handed to the client.
type flowMsg struct {
	chunk  uint32
	value  []byte // every copy sends these bytes; nil: its flows gained nothing, nothing to send
	groups []*flowGroup
	acked  bool // taken in by remember
	copies int
	done   chan struct{} // closed by the latest copy's promise; nil before the first copy
	err    error         // that promise's error, read after done
}

// inFlight reports whether m's latest copy has not been answered yet.
func (m *flowMsg) inFlight() bool {
	if m.done == nil {
		return false
	}
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

// export settles the pending export, if any, and then reads the tables and produces, per flow,
// what its buckets gained since their last acknowledged export. Only after Kafka acknowledged a
// flow's row does it remember the buckets' counts, retire the buckets of flows idle longer than
// FlowIdle and free the buckets it had retired at an earlier export (their last packets, if any
// raced the retirement, were in this row): no count is lost between the kernel and the topic.
// final: Stop's last export, after the program was detached.
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
	if x.pending != nil {
		if err := x.settle(ctx, objs, x.pending); err != nil {
			return fmt.Errorf("export %d, not cutting a new one until it is acknowledged: %w", x.pending.seq, err)
		}
		x.pending = nil
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
	exp, err := x.cut(order, clk, c.state.flowSeq.Add(1))
	if err != nil {
		return err
	}
	c.fn.exports.Add(1)
	if err := x.settle(ctx, objs, exp); err != nil {
		x.pending = exp
		return fmt.Errorf("export %d: %w", exp.seq, err)
	}
	x.noteLost(countedBefore)
	return nil
}

// settle hands exp's messages without a copy in flight to the client, waits for them up to ctx,
// takes in those acknowledged and returns an error while any is not.
func (x *flowExporter) settle(ctx context.Context, objs *bpf.Objects, exp *flowExport) error {
	x.produce(exp)
	x.wait(ctx, exp)
	acked, retire, toFree, open, cause := x.remember(exp)
	if err := x.saveBaseline(objs, acked, toFree); err != nil {
		return err
	}
	if err := x.retireAndFree(objs, retire, toFree); err != nil {
		return err
	}
	if open == 0 {
		return nil
	}
	x.c.fn.exportErrors.Add(uint64(open))
	if cause == nil {
		cause = errors.New("still in flight when the export ended")
	}
	return fmt.Errorf("%d of %d flow messages not acknowledged (kept, and sent again as they are if they failed): %w",
		open, len(exp.msgs), cause)
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

// cut builds the export's messages: flowsPerMessage groups of order to a message, numbered from
// 1. A message whose flows gained nothing (idle and already exported, only to be retired or
// freed) has no bytes and counts as acknowledged.
func (x *flowExporter) cut(order []*flowGroup, clk exportClock, seq uint64) (*flowExport, error) {
	c := x.c
	exp := &flowExport{seq: seq}
	recv := x.recv
	if recv != nil && len(order) > 0 {
		if err := recv.refresh(); err != nil {
			c.log.Warn("receivers: read the kernel's map; this export names none", "err", err)
			recv = nil
		}
	}
	for i := 0; i < len(order); i += flowsPerMessage {
		m := &flowMsg{chunk: uint32(len(exp.msgs) + 1), groups: order[i:min(len(order), i+flowsPerMessage)]}
		exp.msgs = append(exp.msgs, m)
		msg := FlowMessage{Version: record.FlowMessageVersion, Time: clk.now, Host: c.cfg.Host, Iface: c.iface,
			CollectorID: c.id, ExportSeq: exp.seq, Chunk: m.chunk, Flows: make([]FlowRow, 0, len(m.groups))}
		for _, g := range m.groups {
			g.delta = x.delta(g)
			if g.delta.Packets > 0 {
				row := flowRow(g.key, g.delta, clk.off)
				if recv != nil {
					recv.fill(&row, g.key)
				}
				msg.Flows = append(msg.Flows, row)
			}
		}
		if len(msg.Flows) == 0 {
			continue
		}
		b, err := json.Marshal(&msg)
		if err != nil {
			return nil, err
		}
		m.value = b
	}
	return exp, nil
}

// produce hands the client a copy of every message not acknowledged and not in flight: the
// first copy, or the same bytes again after a copy failed.
func (x *flowExporter) produce(exp *flowExport) {
	for _, m := range exp.msgs {
		if m.acked || m.value == nil || m.inFlight() || m.done != nil && m.err == nil {
			continue
		}
		if m.copies++; m.copies > 1 {
			x.c.fn.resent.Add(1)
		}
		done := make(chan struct{})
		m.done, m.err = done, nil
		// Background: the record lives until the broker answers, whatever the export's deadline.
		x.cl.Produce(context.Background(), &kgo.Record{Key: x.c.prod.key, Value: m.value}, func(_ *kgo.Record, err error) {
			m.err = err
			close(done)
		})
	}
}

// wait waits until no message of exp is in flight, or until ctx ends.
func (x *flowExporter) wait(ctx context.Context, exp *flowExport) {
	for _, m := range exp.msgs {
		if m.inFlight() {
			select {
			case <-m.done:
			case <-ctx.Done():
				return
			}
		}
	}
}

// remember takes in what the newly acknowledged messages carried: the exported counters, and
// each bucket's counts as the next export's starting point. It returns those messages, the
// buckets to retire and to free, how many messages are still not acknowledged, and the first
// error a copy got.
func (x *flowExporter) remember(exp *flowExport) (acked []*flowMsg, retire, toFree []bpf.FlowID, open int, cause error) {
	fn := &x.c.fn
	for _, m := range exp.msgs {
		if m.acked {
			continue
		}
		if m.value != nil && (m.done == nil || m.inFlight() || m.err != nil) {
			open++
			if m.done != nil && !m.inFlight() && cause == nil {
				cause = m.err
			}
			continue
		}
		m.acked = true
		acked = append(acked, m)
		for _, g := range m.groups {
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
	return acked, retire, toFree, open, cause
}

// saveBaseline writes what remember took in to a pinned run's baseline map (bpf.Objects does
// nothing for an unpinned one), so that a process continuing the run sends only what the buckets
// gain from here. A process killed between an export's acknowledgement and this write, or with
// a message in flight, leaves its successor the older baseline: that export's deltas are sent
// again, in a message of another identity.
func (x *flowExporter) saveBaseline(objs *bpf.Objects, acked []*flowMsg, freed []bpf.FlowID) error {
	var ids []bpf.FlowID
	var keys []bpf.FlowKey
	var counts []bpf.FlowCounts
	for _, m := range acked {
		for _, g := range m.groups {
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
