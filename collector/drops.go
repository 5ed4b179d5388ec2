package collector

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/bpf"
	"github.com/packetlake/packetlake/internal/netns"
	"github.com/packetlake/packetlake/record"
)

// Kernel drop reasons (bpf/drops.c): the collector loads the tracepoint program, names the
// interface it attached to as observed, and every FlowInterval sends what the counters gained
// to DropsTopic. Exact like the flow export, more simply, because the counters only grow (no
// bucket is ever retired): an export's deltas are relative to the counts its predecessor's
// messages carried once ALL of them were acknowledged; until then no new export is cut, and a
// message whose copy failed is produced again with the very same bytes. The ingester stores a
// message identity (host, run, export_seq, chunk) once.
//
// With a pin directory the program, its counters and the exporter's ledger are pinned beside the
// packet program (bpf/pin_drops.go, collector/pinextras.go): the drops counted while no collector
// runs are exported by the next one, and an export a killed process left unacknowledged is sent
// again by the next with the same identity and rows (rebuilt from the pinned snapshots), so the
// ingester stores it once. Without one, the counters live with this process (Run identifies
// them).

// dropExporter owns the drop-reason program and its export. One goroutine, plus Stop's last
// export (mu).
type dropExporter struct {
	c       *Collector
	d       *bpf.Drops
	reasons *bpf.DropReasons
	cl      *kgo.Client
	m       dropMetrics

	mu      sync.Mutex
	off     bool           // the topic does not exist: the program is closed, nothing is exported
	ledger  bpf.DropLedger // as in the program's state map (run, seq, which snapshot is the baseline)
	last    dropCounts     // snapshot ledger.Base: what the acknowledged exports carried, cumulative
	pending *dropExport    // the export ledger.PendingSeq while a message of it is unacknowledged
}

// dropCounts is a reading of the program's counters, cumulative since load.
type dropCounts = bpf.DropSnapshot

type dropExport struct {
	seq  uint64
	msgs []*dropMsg
	now  dropCounts // becomes last once every message is acknowledged
}

type dropMsg struct {
	value  []byte
	copies int
	done   chan struct{} // closed by the latest copy's promise
	err    error
}

type dropMetrics struct {
	packets  *prometheus.CounterVec // drops exported (acknowledged), by observed
	exports  prometheus.Counter
	errors   prometheus.Counter // exports that ended with a message unacknowledged
	resent   prometheus.Counter
	mapFull  prometheus.Counter
	readErrs prometheus.Counter
	resumed  prometheus.Counter // exports an earlier process left unacknowledged, sent again
}

func newDropMetrics() dropMetrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "packetlake", Subsystem: "collector", Name: name, Help: help})
	}
	return dropMetrics{
		packets: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "packetlake", Subsystem: "collector",
			Name: "kernel_drops_exported_total", Help: "Packets the kernel dropped, exported to the drops topic and acknowledged; observed=1: received on the observed interface."},
			[]string{"observed"}),
		exports:  c("drop_exports_total", "Drop exports cut."),
		errors:   c("drop_export_errors_total", "Drop exports that ended with a message Kafka had not acknowledged (kept and retried)."),
		resent:   c("drop_messages_resent_total", "Drop messages produced again, same bytes, after a copy failed."),
		mapFull:  c("kernel_drops_map_full_total", "Drops of observed packets the kernel's (reason, flow) table had no room for (exported with reason MAP_FULL)."),
		readErrs: c("drop_read_errors_total", "Failed reads of the drop-reason program's maps."),
		resumed:  c("drop_exports_resumed_total", "Drop exports an earlier process of the pinned run left unacknowledged, sent again with the same identity."),
	}
}

func (m dropMetrics) all() []prometheus.Collector {
	return []prometheus.Collector{m.packets, m.exports, m.errors, m.resent, m.mapFull, m.readErrs, m.resumed}
}

// startDrops loads (or adopts, pinned) the drop-reason program and starts its export, when
// Config.Drops is on in live mode. A kernel that refuses the program (no BTF, no tp_btf) costs
// the feature, not the collector: it is logged and the collector runs on without it.
func (c *Collector) startDrops() error {
	if !c.cfg.Drops || c.cfg.DropsTopic == "" || c.cfg.Pcap != "" || c.noAttach {
		c.removePinnedDrops() // off now: a program an earlier run pinned stops counting
		return nil
	}
	reasons, err := bpf.LoadDropReasons()
	if err != nil {
		c.log.Warn("kernel drop reasons off: cannot read enum skb_drop_reason", "err", err)
		return nil
	}
	d, err := c.loadDrops()
	if err != nil || d == nil {
		return err // nil, nil: off (logged), or nothing pinned to end (DetachPinned)
	}
	var ino uint32
	if err := netns.Do(c.cfg.NetNS, func() (err error) { ino, err = bpf.CurrentNetns(); return err }); err != nil {
		d.Close()
		return fmt.Errorf("drops: %w", err)
	}
	if err := d.ObserveOnly(ino, c.ifindex); err != nil {
		d.Close()
		return fmt.Errorf("drops: %w", err)
	}
	cl, err := c.cfg.Kafka.NewClient(c.kafkaDeps(),
		kgo.DefaultProduceTopic(c.cfg.DropsTopic),
		kgo.ProducerBatchCompression(kgo.Lz4Compression()),
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(0), // retried until written once, as the flows' client
	)
	if err != nil {
		d.Close()
		return fmt.Errorf("drops: %w", err)
	}
	x := &dropExporter{c: c, d: d, reasons: reasons, cl: cl, m: newDropMetrics()}
	if err := x.resume(); err != nil {
		cl.Close()
		d.Close()
		return fmt.Errorf("drops: %w", err)
	}
	for _, m := range x.m.all() {
		if err := c.reg.Register(m); err != nil {
			x.close()
			return fmt.Errorf("drops: register metrics: %w", err)
		}
	}
	if x.pending != nil {
		x.m.resumed.Inc()
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.drops, c.dropsCancel, c.dropsDone = x, cancel, make(chan struct{})
	go func() {
		defer close(c.dropsDone)
		x.loop(ctx)
	}()
	c.log.Info("kernel drop reasons on", "topic", c.cfg.DropsTopic, "run", x.ledger.Run, "next_export_seq", x.ledger.Seq+1,
		"pinned", d.Pinned(), "resending_export", x.ledger.PendingSeq)
	return nil
}

// resume reads the ledger: a new program's is set up with a random run; an adopted one's
// baseline is read back, and an export its last process left unacknowledged is rebuilt, to be
// sent again as it was.
func (x *dropExporter) resume() error {
	l, err := x.d.Ledger()
	if err != nil {
		return err
	}
	if l.Run == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		l = bpf.DropLedger{Run: binary.NativeEndian.Uint64(b[:]) | 1}
		if err := x.d.SetLedger(l); err != nil {
			return err
		}
	}
	x.ledger = l
	if x.last, err = x.d.ReadSnapshot(l.Base); err != nil {
		return err
	}
	if l.PendingSeq == 0 {
		return nil
	}
	now, err := x.d.ReadSnapshot(1 - l.Base)
	if err != nil {
		return err
	}
	x.pending, err = x.build(l.PendingSeq, l.PendingNs, l.PendingCollector, now)
	if err != nil {
		return err
	}
	x.c.log.Info("drops: sending again the export the last process left unacknowledged", "run", l.Run, "export_seq", l.PendingSeq,
		"messages", len(x.pending.msgs))
	return nil
}

// dropsTopicMissing reports whether the brokers say the drops topic does not exist. The feature
// is on by default, and brokers usually refuse to create topics on first use: its messages would
// wait unacknowledged forever, and hold up Stop. Asked by the export loop before its first
// export, so a broker that is down does not hold up Start; one that does not answer in time is
// not taken for a missing topic (the client keeps trying).
func dropsTopicMissing(ctx context.Context, cl *kgo.Client, topic string) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	details, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return false
	}
	d, ok := details[topic]
	return !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition)
}

// stopDrops ends the loop, makes the last export and releases the program. final (the run
// ends: unpinned, --on-stop detach, --detach): the program is detached first and unpinned, so
// the last export carries every drop it counted; otherwise a pinned program keeps counting for
// the next process, which goes on from the ledger.
func (c *Collector) stopDrops(ctx context.Context, final bool) error {
	if c.drops == nil {
		return nil
	}
	c.dropsCancel()
	<-c.dropsDone
	var derr error
	if final {
		derr = c.drops.d.Detach()
	}
	err := c.drops.export(ctx)
	c.drops.close()
	c.drops = nil
	if err != nil {
		return fmt.Errorf("last drop export: %w", err)
	}
	if derr != nil {
		return fmt.Errorf("drops: %w", derr)
	}
	return nil
}

// releaseDrops is stopDrops without the last export (a failed Start): a pinned program stays.
func (c *Collector) releaseDrops() {
	if c.drops == nil {
		return
	}
	c.dropsCancel()
	<-c.dropsDone
	c.drops.close()
	c.drops = nil
}

func (x *dropExporter) close() {
	x.cl.Close()
	x.d.Close() // again after the loop's: a no-op
	for _, m := range x.m.all() {
		x.c.reg.Unregister(m)
	}
}

func (x *dropExporter) loop(ctx context.Context) {
	if dropsTopicMissing(ctx, x.cl, x.c.cfg.DropsTopic) {
		x.c.log.Warn("kernel drop reasons off: the drops topic does not exist (packetlake topics create makes it)", "topic", x.c.cfg.DropsTopic)
		x.mu.Lock()
		x.off = true
		if err := x.d.Detach(); err != nil { // unpinned and detached: nothing counts any more
			x.c.log.Warn("drops: detach", "err", err)
		}
		x.d.Close()
		x.mu.Unlock()
		return
	}
	t := time.NewTicker(x.c.cfg.FlowInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			ectx, cancel := context.WithTimeout(ctx, max(x.c.cfg.FlowInterval, flowExportWait))
			if err := x.export(ectx); err != nil {
				x.c.log.Warn("drop export", "err", err)
			}
			cancel()
		}
	}
}

// export settles the pending export, if any, then reads the counters and sends what they gained
// since the last acknowledged export. The reading is written to the spare snapshot and the
// export recorded as pending in the ledger before any message is produced, so that a process
// killed from then on leaves the next one what it needs to send the same messages again.
func (x *dropExporter) export(ctx context.Context) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.off {
		return nil
	}
	if x.pending != nil {
		if err := x.settle(ctx, x.pending); err != nil {
			return fmt.Errorf("drop export %d, not cutting a new one until it is acknowledged: %w", x.pending.seq, err)
		}
	}
	now, err := x.d.Read()
	if err != nil {
		x.m.readErrs.Inc()
		return err
	}
	if len(x.deltas(now)) == 0 {
		return nil
	}
	l := x.ledger
	if err := x.d.WriteSnapshot(1-l.Base, now); err != nil {
		return err
	}
	l.Seq++
	l.PendingSeq, l.PendingNs, l.PendingCollector = l.Seq, uint64(time.Now().UnixNano()), x.c.id
	exp, err := x.build(l.PendingSeq, l.PendingNs, l.PendingCollector, now)
	if err != nil {
		return err
	}
	if err := x.d.SetLedger(l); err != nil {
		return err
	}
	x.ledger = l
	x.m.exports.Inc()
	x.pending = exp
	if err := x.settle(ctx, exp); err != nil {
		return fmt.Errorf("drop export %d: %w", exp.seq, err)
	}
	return nil
}

// build makes the messages of export seq, read at ns for collector id: its rows are what now
// gained over the baseline, sorted, so that the same two snapshots always give the same messages.
func (x *dropExporter) build(seq, ns, id uint64, now dropCounts) (*dropExport, error) {
	rows := x.deltas(now)
	exp := &dropExport{seq: seq, now: now}
	clk := time.Unix(0, int64(ns)).UTC()
	for i := 0; i < len(rows); i += record.DropRowsPerMessage {
		msg := record.DropMessage{Version: record.DropMessageVersion, Time: clk, Host: x.c.cfg.Host, Iface: x.c.iface,
			CollectorID: id, Run: x.ledger.Run, ExportSeq: seq, Chunk: uint32(len(exp.msgs) + 1),
			Drops: rows[i:min(len(rows), i+record.DropRowsPerMessage)]}
		b, err := json.Marshal(&msg)
		if err != nil {
			return nil, err
		}
		exp.msgs = append(exp.msgs, &dropMsg{value: b})
	}
	return exp, nil
}

// settle produces the messages of exp that have no copy in flight or acknowledged, waits for
// them up to ctx and, once every one is acknowledged, makes exp's counts the baseline.
func (x *dropExporter) settle(ctx context.Context, exp *dropExport) error {
	for _, m := range exp.msgs {
		if m.done != nil {
			select {
			case <-m.done:
				if m.err == nil {
					continue // acknowledged
				}
			default:
				continue // in flight
			}
		}
		if m.copies++; m.copies > 1 {
			x.m.resent.Inc()
		}
		done := make(chan struct{})
		m.done, m.err = done, nil
		x.cl.Produce(context.Background(), &kgo.Record{Key: []byte(x.c.cfg.Host), Value: m.value}, func(_ *kgo.Record, err error) {
			m.err = err
			close(done)
		})
	}
	open := 0
	var cause error
	for _, m := range exp.msgs {
		select {
		case <-m.done:
		case <-ctx.Done():
		}
		select {
		case <-m.done:
			if m.err != nil {
				open++
				cause = m.err
			}
		default:
			open++
		}
	}
	if open > 0 {
		x.m.errors.Inc()
		if cause == nil {
			cause = errors.New("still in flight when the export ended")
		}
		return fmt.Errorf("%d of %d drop messages not acknowledged (kept, sent again as they are if they failed): %w", open, len(exp.msgs), cause)
	}
	// Acknowledged whole: the export's snapshot becomes the baseline, in one write.
	l := x.ledger
	l.Base, l.PendingSeq, l.PendingNs, l.PendingCollector = 1-l.Base, 0, 0, 0
	if err := x.d.SetLedger(l); err != nil {
		return fmt.Errorf("record the acknowledged drop export %d: %w", exp.seq, err)
	}
	x.account(exp.now)
	x.ledger, x.last, x.pending = l, exp.now, nil
	return nil
}

// account counts what an acknowledged export carried.
func (x *dropExporter) account(now dropCounts) {
	var seen, unseen uint64
	for k, c := range now.Seen {
		seen += c.Packets - x.last.Seen[k].Packets
	}
	seen += now.Failed - x.last.Failed
	for r, c := range now.Unseen {
		unseen += c.Packets - x.last.Unseen[r].Packets
	}
	x.m.packets.WithLabelValues("1").Add(float64(seen))
	x.m.packets.WithLabelValues("0").Add(float64(unseen))
	x.m.mapFull.Add(float64(now.Failed - x.last.Failed))
}

// deltas are the rows of what now gained over the last acknowledged export. A per-CPU value read
// while a CPU adds to it is that CPU's before or after: either way no more than the truth, and
// the rest comes with the next export.
func (x *dropExporter) deltas(now dropCounts) []record.DropRow {
	var rows []record.DropRow
	keys := slices.SortedFunc(maps.Keys(now.Seen), compareDropKeys)
	for _, k := range keys {
		c, p := now.Seen[k], x.last.Seen[k]
		if c.Packets <= p.Packets {
			continue
		}
		rows = append(rows, record.DropRow{Observed: true, Reason: x.reasons.Name(k.Reason), Ifindex: k.Ifindex,
			IPVersion: k.IpVersion, IPProto: k.IpProto, SrcAddr: dropAddr(k.IpVersion, k.SrcIP()), DstAddr: dropAddr(k.IpVersion, k.DstIP()),
			SrcPort: k.SrcPort, DstPort: k.DstPort, Packets: c.Packets - p.Packets, Bytes: c.Bytes - p.Bytes})
	}
	if now.Failed > x.last.Failed {
		rows = append(rows, record.DropRow{Observed: true, Reason: record.DropReasonMapFull, Ifindex: uint32(x.c.ifindex),
			SrcAddr: netip.IPv6Unspecified(), DstAddr: netip.IPv6Unspecified(), Packets: now.Failed - x.last.Failed})
	}
	for _, r := range slices.Sorted(maps.Keys(now.Unseen)) {
		c, p := now.Unseen[r], x.last.Unseen[r]
		if c.Packets <= p.Packets {
			continue
		}
		rows = append(rows, record.DropRow{Reason: x.reasons.Name(r), SrcAddr: netip.IPv6Unspecified(), DstAddr: netip.IPv6Unspecified(),
			Packets: c.Packets - p.Packets, Bytes: c.Bytes - p.Bytes})
	}
	return rows
}

// compareDropKeys orders keys by reason, interface, addresses, ports, protocol: rows in a fixed
// order, so a rebuilt export chunks its rows as the original did.
func compareDropKeys(a, b bpf.DropKey) int {
	return cmp.Or(cmp.Compare(a.Reason, b.Reason), cmp.Compare(a.Ifindex, b.Ifindex),
		bytes.Compare(a.SrcAddr[:], b.SrcAddr[:]), bytes.Compare(a.DstAddr[:], b.DstAddr[:]),
		cmp.Compare(a.SrcPort, b.SrcPort), cmp.Compare(a.DstPort, b.DstPort),
		cmp.Compare(a.IpProto, b.IpProto), cmp.Compare(a.IpVersion, b.IpVersion))
}

// dropAddr is the address of a key, "::" when the packet was not IP.
func dropAddr(ipVersion uint8, a netip.Addr) netip.Addr {
	if ipVersion == 0 {
		return netip.IPv6Unspecified()
	}
	return a
}

// DropsOn reports whether the drop-reason program was loaded at Start (Config.Drops, live mode,
// the kernel accepted it). It is closed again soon after if the drops topic does not exist (logged).
func (c *Collector) DropsOn() bool { return c.drops != nil }

// validateDrops checks the drop-reason settings (Config.Validate).
func (c Config) validateDrops() error {
	if c.DropEntries < 0 {
		return errors.New("drop entries must not be negative")
	}
	if !c.Drops || c.DropsTopic == "" {
		return nil
	}
	if c.DropsTopic == c.Topic || c.DropsTopic == c.StatsTopic || c.DropsTopic == c.FlowsTopic {
		return fmt.Errorf("drops topic %q: must differ from the packet, stats and flows topics", c.DropsTopic)
	}
	if c.FlowInterval <= 0 {
		return errors.New("flow interval (the drop export's period too) must be positive")
	}
	return nil
}
