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
	exports, exportErrors     atomic.Uint64
	rowsExported, pktExported atomic.Uint64
	bytesExported             atomic.Uint64
	resets                    atomic.Uint64 // flows found with fewer packets than last exported: evicted and recreated
	lost                      atomic.Uint64 // packets counted into flows but never exported (lower bound, exact when idle)
	active                    atomic.Int64  // gauge: flows in the map at the last export
}

// flowExporter reads pl_flows every FlowInterval and produces the deltas. One goroutine.
type flowExporter struct {
	c    *Collector
	cl   *kgo.Client // its own client: an export of many flows must not take the frames' buffer
	last map[bpf.FlowKey]bpf.FlowCounts
	seq  uint64
	mu   sync.Mutex // one export at a time (loop vs Stop's final export)
}

func newFlowExporter(c *Collector) (*flowExporter, error) {
	sec, err := c.cfg.Kafka.Opts()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(sec,
		kgo.SeedBrokers(c.cfg.Brokers...),
		kgo.DefaultProduceTopic(c.cfg.FlowsTopic),
		kgo.ProducerBatchCompression(kgo.Lz4Compression()),
		kgo.ProducerLinger(0),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client for flows: %w", err)
	}
	return &flowExporter{c: c, cl: cl, last: map[bpf.FlowKey]bpf.FlowCounts{}}, nil
}

func (x *flowExporter) loop(ctx context.Context) {
	t := time.NewTicker(x.c.cfg.FlowInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			ectx, cancel := context.WithTimeout(ctx, max(x.c.cfg.FlowInterval, 5*time.Second))
			if err := x.export(ectx, false); err != nil {
				x.c.log.Warn("flow export", "err", err)
			}
			cancel()
		}
	}
}

type flowDelta struct {
	key  bpf.FlowKey
	cur  bpf.FlowCounts
	idle bool
}

// export reads the map, produces every flow that moved since its last export, waits for Kafka,
// and then (only for what Kafka acknowledged) remembers the exported totals and deletes flows
// idle longer than FlowIdle. final: Stop's last export, after the program was detached.
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
	mono := monoNow()
	off, err := clockOffset()
	if err != nil {
		off = c.offset.Load()
	}
	now := time.Now().UTC()
	idleNs := uint64(c.cfg.FlowIdle.Nanoseconds())
	var deltas []flowDelta
	seenKeys := make(map[bpf.FlowKey]struct{}, len(x.last))
	active := 0
	if err := objs.ReadFlows(func(k bpf.FlowKey, cur bpf.FlowCounts) {
		active++
		seenKeys[k] = struct{}{}
		idle := mono > cur.LastNs && mono-cur.LastNs > idleNs
		prev, ok := x.last[k]
		if ok && cur.Packets < prev.Packets { // evicted (or deleted) and recreated meanwhile
			c.fn.resets.Add(1)
			prev = bpf.FlowCounts{}
		}
		if cur.Packets == prev.Packets && !idle {
			return
		}
		deltas = append(deltas, flowDelta{key: k, cur: cur, idle: idle})
	}); err != nil {
		return err
	}
	c.fn.active.Store(int64(active))
	// Flows remembered but gone from the map were evicted by the LRU: forget them.
	for k := range x.last {
		if _, ok := seenKeys[k]; !ok {
			delete(x.last, k)
		}
	}
	x.seq++
	var (
		wg       sync.WaitGroup
		failed   = make([]atomic.Bool, (len(deltas)+flowsPerMessage-1)/flowsPerMessage)
		toPrune  []bpf.FlowKey
		firstErr atomic.Pointer[error] // what the broker said, for the log
	)
	for ci := range failed {
		chunk := deltas[ci*flowsPerMessage : min(len(deltas), (ci+1)*flowsPerMessage)]
		msg := FlowMessage{Version: record.FlowMessageVersion, Time: now, Host: c.cfg.Host, Iface: c.iface,
			CollectorID: c.id, ExportSeq: x.seq, Flows: make([]FlowRow, 0, len(chunk))}
		for _, d := range chunk {
			prev := x.last[d.key]
			if d.cur.Packets < prev.Packets {
				prev = bpf.FlowCounts{}
			}
			if d.cur.Packets == prev.Packets {
				continue // idle and already exported: only to be deleted
			}
			msg.Flows = append(msg.Flows, flowRow(d.key, d.cur, prev, off))
		}
		if len(msg.Flows) == 0 {
			continue
		}
		b, err := json.Marshal(&msg)
		if err != nil {
			return err
		}
		wg.Add(1)
		x.cl.Produce(ctx, &kgo.Record{Key: c.prod.key, Value: b}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				failed[ci].Store(true)
				firstErr.CompareAndSwap(nil, &err)
			}
		})
	}
	acked := x.wait(ctx, &wg, !final) // final: Stop closes the client right after, failing the rest
	var errs int
	for ci := range failed {
		if !acked || failed[ci].Load() {
			errs++
			continue
		}
		for _, d := range deltas[ci*flowsPerMessage : min(len(deltas), (ci+1)*flowsPerMessage)] {
			prev := x.last[d.key]
			if d.cur.Packets < prev.Packets {
				prev = bpf.FlowCounts{}
			}
			if d.cur.Packets > prev.Packets {
				c.fn.rowsExported.Add(1)
				c.fn.pktExported.Add(d.cur.Packets - prev.Packets)
				c.fn.bytesExported.Add(d.cur.Bytes - prev.Bytes)
			}
			if d.idle && !final {
				toPrune = append(toPrune, d.key)
				delete(x.last, d.key)
			} else {
				x.last[d.key] = d.cur
			}
		}
	}
	c.fn.exports.Add(1)
	if errs > 0 {
		c.fn.exportErrors.Add(uint64(errs))
		cause := errors.New("not acknowledged before the export ended")
		if e := firstErr.Load(); e != nil {
			cause = *e
		}
		return fmt.Errorf("%d of %d flow messages not acknowledged (retried at the next export): %w", errs, len(failed), cause)
	}
	if len(toPrune) > 0 {
		if err := objs.DeleteFlows(toPrune); err != nil {
			return err
		}
	}
	// Every packet counted before the walk is in an exported delta, or was lost with an entry
	// (LRU eviction, or a packet between the walk and the delete of an idle flow).
	if e := c.fn.pktExported.Load(); countedBefore > e {
		for {
			old := c.fn.lost.Load()
			if countedBefore-e <= old || c.fn.lost.CompareAndSwap(old, countedBefore-e) {
				break
			}
		}
	}
	return nil
}

// wait waits for the export's promises, up to ctx; then it aborts what is still buffered (the
// deltas are retried at the next export) and reports false if a promise still has not run.
func (x *flowExporter) wait(ctx context.Context, wg *sync.WaitGroup, abort bool) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
	}
	if !abort {
		return false
	}
	abortCtx, cancel := context.WithTimeout(context.Background(), recordAbortWait)
	defer cancel()
	_ = x.cl.AbortBufferedRecords(abortCtx)
	select {
	case <-done:
		return true
	case <-abortCtx.Done():
		return false
	}
}

func flowRow(k bpf.FlowKey, cur, prev bpf.FlowCounts, off int64) FlowRow {
	wall := func(ns uint64) int64 {
		if ns == 0 {
			return 0
		}
		return int64(ns) + off
	}
	return FlowRow{
		Ifindex: k.Ifindex, VlanID: k.VlanId, IPVersion: k.IpVersion, IPProto: k.IpProto,
		SrcAddr: k.SrcIP(), DstAddr: k.DstIP(), SrcPort: k.SrcPort, DstPort: k.DstPort,
		Packets: cur.Packets - prev.Packets, Bytes: cur.Bytes - prev.Bytes,
		SYN: cur.SYN - prev.SYN, FIN: cur.FIN - prev.FIN, RST: cur.RST - prev.RST, ACK: cur.ACK - prev.ACK,
		FirstSeenNs: wall(cur.FirstNs), LastSeenNs: wall(cur.LastNs),
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

// stopFlows ends the loop and makes the last export: the program is detached and its batches
// flushed, so after it every packet the program counted is in Kafka (or in flow_export_errors).
// ctx is Stop's FlushTimeout, shared with the frames' flush.
func (c *Collector) stopFlows(ctx context.Context) error {
	if c.flows == nil {
		return nil
	}
	c.flowsCancel()
	<-c.flowsDone
	err := c.flows.export(ctx, true)
	c.flows.cl.Close()
	c.flows = nil
	if err != nil {
		return fmt.Errorf("last flow export: %w", err)
	}
	return nil
}
