package collector

import (
	"context"
	"maps"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/record"
)

// Stats returns a snapshot of every counter (record.Stats, the stats topic's message). Kernel
// counters are zero before Start.
func (c *Collector) Stats() record.Stats {
	s := c.statsHeader(c.id)
	s.ClockOffsetNs = c.offset.Load()
	s.Processes = c.state.processes.Load()
	// Downstream counters first, upstream last: a record moves downstream only after it was
	// counted upstream, so each identity in record.Stats's doc holds as ≥ even while packets flow.
	c.n.fill(&s)
	c.fn.fill(&s)
	c.kernelStats(&s)
	return s
}

// statsHeader is a stats message of run id with no counter set yet.
func (c *Collector) statsHeader(id uint64) record.Stats {
	now := time.Now().UTC()
	return record.Stats{
		Version:     record.StatsVersion,
		Time:        now,
		TimeUnixNs:  now.UnixNano(),
		Host:        c.cfg.Host,
		Iface:       c.iface,
		CollectorID: id,
		Mode:        c.mode(),
	}
}

// fill sets the user-space counters of s, downstream first.
func (n *counters) fill(s *record.Stats) {
	s.FramesAcked = n.framesAcked.Load()
	s.RecordsAcked = n.recordsAcked.Load()
	s.RecordsFailed = n.recordsFailed.Load()
	s.RecordsLostRestart = n.recordsLostRestart.Load()
	s.ProduceErrors = n.produceErrors()
	s.BufferedBytes = uint64(max(n.buffered.Load(), 0))
	s.FramesProduced = n.framesProduced.Load()
	s.RecordsProduced = n.recordsProduced.Load()
	s.FramesShed = n.framesShed.Load()
	s.RecordsShed = n.recordsShed.Load()
	s.SamplesRead = n.samplesRead.Load()
	s.SamplesMalformed = n.samplesMalformed.Load()
	s.ReadErrors = n.readErrors.Load()
	s.StatsFailed = n.statsFailed.Load()
}

// fill sets the flow exporter's counters of s.
func (fn *flowCounters) fill(s *record.Stats) {
	s.FlowExports = fn.exports.Load()
	s.FlowExportErrors = fn.exportErrors.Load()
	s.FlowMessagesResent = fn.resent.Load()
	s.FlowRowsExported = fn.rowsExported.Load()
	s.FlowPacketsExported = fn.pktExported.Load()
	s.FlowBytesExported = fn.bytesExported.Load()
	s.FlowsRetired = fn.retired.Load()
	s.FlowLostPackets = fn.lost.Load()
	s.FlowsActive = fn.active.Load()
}

// kernelStats fills the kernel counters from the loaded program, if any.
func (c *Collector) kernelStats(s *record.Stats) {
	c.objsMu.Lock()
	defer c.objsMu.Unlock()
	s.KernelParseErrors = map[string]uint64{}
	if c.objs == nil {
		if f := c.finalKernel; f != nil { // after Stop: the counters as the program left them
			s.KernelSeen, s.KernelEmitted, s.KernelRingFull = f.KernelSeen, f.KernelEmitted, f.KernelRingFull
			s.KernelSampledOut, s.KernelSnippetCopyFailed = f.KernelSampledOut, f.KernelSnippetCopyFailed
			s.KernelFlowCounted, s.KernelFlowFailed = f.KernelFlowCounted, f.KernelFlowFailed
			s.KernelTLSContTracked, s.KernelTLSContCopied = f.KernelTLSContTracked, f.KernelTLSContCopied
			s.KernelTLSContOutside, s.KernelTLSContDone = f.KernelTLSContOutside, f.KernelTLSContDone
			maps.Copy(s.KernelParseErrors, f.KernelParseErrors)
		}
		return
	}
	if c.rd != nil {
		s.RingPendingBytes = c.rd.AvailableBytes()
	}
	v, err := c.objs.ReadStats()
	if err != nil {
		c.log.Warn("read kernel counters", "err", err)
		return
	}
	at := func(i int) uint64 {
		if i < len(v) {
			return v[i]
		}
		return 0
	}
	s.KernelSeen = at(record.StatSeen)
	s.KernelEmitted = at(record.StatEmitted)
	s.KernelRingFull = at(record.StatRingFull)
	s.KernelSampledOut = at(record.StatSampledOut)
	s.KernelSnippetCopyFailed = at(record.StatSnippetCopyFailed)
	s.KernelFlowCounted = at(record.StatFlowCounted)
	s.KernelFlowFailed = at(record.StatFlowFailed)
	s.KernelTLSContTracked = at(record.StatTlsContTracked)
	s.KernelTLSContCopied = at(record.StatTlsContCopied)
	s.KernelTLSContOutside = at(record.StatTlsContOutside)
	s.KernelTLSContDone = at(record.StatTlsContDone)
	for code := 1; code < record.StatSlots-record.StatParseErrorBase; code++ {
		if n := at(record.StatParseErrorBase + code); n > 0 {
			s.KernelParseErrors[record.ParseErrorName(uint8(code))] = n
		}
	}
}

// statsLoop publishes a stats message every StatsInterval until ctx is done.
func (c *Collector) statsLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.StatsInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.publishStats()
		}
	}
}

// publishStats sends one stats message. It never blocks: like a frame, a stats message that
// does not fit the producer's buffer is dropped (and counted in the next one's stats_failed).
func (c *Collector) publishStats() {
	s := c.Stats()
	b, err := s.Encode()
	if err != nil {
		c.log.Error("publish stats", "err", err) // a bug: Stats holds only plain values
		return
	}
	r := &kgo.Record{Topic: c.cfg.StatsTopic, Key: c.prod.key, Value: b}
	c.prod.cl.TryProduce(context.Background(), r, func(_ *kgo.Record, err error) {
		if err != nil {
			c.n.statsFailed.Add(1)
			c.log.Debug("stats message not delivered", "err", err)
		}
	})
}
