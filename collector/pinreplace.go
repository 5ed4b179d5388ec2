package collector

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/bpf"
)

// replacePinned ends a pinned run this binary will not adopt (reason, detail: bpf.Pinned.Mismatch
// or "run_state"), so that Start can load and pin its own: the old link is detached first (no
// packet reaches the old program afterwards), its CPUs' batches are written out by its own
// flush program, the run's last stats message is published with the records its ring still
// held counted in records_discarded (this binary does not read a ring of another layout, and
// for simplicity not one of the same layout either), and every pin is removed.
func (c *Collector) replacePinned(ctx context.Context, p *bpf.Pinned, reason, detail string) error {
	old := runStateIn(p.Run)
	readable := old.magic.Load() == runStateMagic
	c.log.Warn("replacing the pinned program", "pin_dir", c.cfg.PinDir, "reason", reason, "detail", detail,
		"old_collector_id", old.collectorID, "old_run_readable", readable)
	c.metrics.replacements.WithLabelValues(reason).Inc()
	c.replaced = true
	if err := p.Detach(); err != nil {
		c.log.Warn("detach the replaced program", "err", err)
	}
	if readable {
		c.endReplacedRun(ctx, p, old)
	} else {
		c.log.Warn("the replaced run's state is of another layout: its last counts are not published")
	}
	if err := p.Remove(); err != nil {
		return fmt.Errorf("remove the replaced pin in %s: %w", c.cfg.PinDir, err)
	}
	c.log.Info("replaced pin removed", "pin_dir", c.cfg.PinDir)
	return nil
}

// endReplacedRun publishes the replaced run's last stats message (its own collector_id and
// counters), waiting up to FlushTimeout for Kafka to take it.
func (c *Collector) endReplacedRun(ctx context.Context, p *bpf.Pinned, old *runState) {
	old.settle()
	if err := p.Objs.Flush(); err != nil {
		c.log.Warn("write out the replaced program's staged records", "err", err)
	}
	kc, err := p.KernelCounters()
	if err != nil {
		c.log.Warn("the replaced run's kernel counters cannot be read: its last counts are not published", "err", err)
		return
	}
	if err := c.reconcile(ctx, old); err != nil {
		c.log.Warn("reconcile the replaced run", "err", err)
	}
	r := old.read()
	s := c.statsHeader(old.collectorID)
	s.Processes = old.processes.Load()
	(&counters{userCounters: &old.user}).fill(&s)
	(&flowCounters{flowTotals: &old.flow}).fill(&s)
	s.ProduceErrors, s.BufferedBytes, s.FlowsActive = nil, 0, 0
	s.KernelSeen, s.KernelEmitted, s.KernelRingFull = kc["seen"], kc["emitted"], kc["ring_full"]
	s.KernelSampledOut, s.KernelFlowCounted, s.KernelFlowFailed = kc["sampled_out"], kc["flow_counted"], kc["flow_failed"]
	s.KernelTLSContTracked, s.KernelTLSContCopied = kc["tls_cont_tracked"], kc["tls_cont_copied"]
	s.KernelTLSContOutside, s.KernelTLSContDone = kc["tls_cont_outside"], kc["tls_cont_done"]
	if read := r.Seq + r.Malformed; s.KernelEmitted > read {
		s.RecordsDiscarded = s.KernelEmitted - read
	}
	// The flows the old program counted since its run's last acknowledged export go unexported.
	if s.KernelFlowCounted > s.FlowPacketsExported {
		s.FlowLostPackets = max(s.FlowLostPackets, s.KernelFlowCounted-s.FlowPacketsExported)
	}
	c.metrics.discarded.Add(float64(s.RecordsDiscarded))
	b, err := s.Encode()
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, c.cfg.FlushTimeout)
		defer cancel()
		err = c.prod.cl.ProduceSync(ctx, &kgo.Record{Topic: c.cfg.StatsTopic, Key: c.prod.key, Value: b}).FirstErr()
	}
	if err != nil {
		c.log.Error("the replaced run's last stats message was not published", "err", err, "records_discarded", s.RecordsDiscarded)
		return
	}
	c.log.Warn("the replaced run ended", "old_collector_id", old.collectorID, "kernel_seen", s.KernelSeen,
		"records_acked", s.RecordsAcked, "records_discarded", s.RecordsDiscarded, "records_lost_restart", s.RecordsLostRestart)
}
