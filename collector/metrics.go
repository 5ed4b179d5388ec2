package collector

import (
	"sync"
	"sync/atomic"

	"github.com/packetlake/packetlake/record"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/packetlake/packetlake/internal/kafkaconn"
)

// counters are the user-space counters, shared by the worker, the producer's promises, the stats
// loop and Prometheus scrapes. The worker adds its per-record counts in batches (see worker.go)
// so the hot loop touches no shared cache line per record.
type counters struct {
	*userCounters              // in the run state: they go on across a restart of a pinned run
	buffered      atomic.Int64 // bytes charged for frames waiting for Kafka

	mu     sync.Mutex
	errors map[string]uint64 // failed frames by reason, since this process started; rare, so a mutex is fine
}

// userCounters are the stats message's user-space counters, cumulative per run (runState).
type userCounters struct {
	samplesRead, samplesMalformed           atomic.Uint64
	framesProduced, framesAcked, framesShed atomic.Uint64
	recordsProduced, recordsAcked           atomic.Uint64
	recordsShed, recordsFailed              atomic.Uint64
	readErrors, statsFailed                 atomic.Uint64
	// recordsLostRestart: records a process of this run had read from the ring that never
	// reached Kafka because it died (runState.unconfirmed, less those found in Kafka).
	recordsLostRestart atomic.Uint64
}

func (n *counters) produceError(reason string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.errors == nil {
		n.errors = map[string]uint64{}
	}
	n.errors[reason]++
}

func (n *counters) produceErrors() map[string]uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string]uint64, len(n.errors))
	for k, v := range n.errors {
		out[k] = v
	}
	return out
}

// metrics exports a Stats snapshot to Prometheus at each scrape, so /metrics and the stats topic
// show the same numbers from the same code. The Kafka clients' connection counters are moved by
// their connect hook instead: they are no part of the stats message.
type metrics struct {
	c     *Collector
	descs map[string]*prometheus.Desc
	kafka kafkaconn.Metrics
	// What Start did with a pinned run (pin.go, pinreplace.go): events of this process.
	adoptions    prometheus.Counter
	replacements *prometheus.CounterVec
	discarded    prometheus.Counter
	// The receiving-process join (receivers.go).
	receiverRows   *prometheus.CounterVec
	receiverErrors prometheus.Counter
}

// metricDefs are the plain counters: name, help, and the Stats field they read.
var metricDefs = []struct {
	name, help string
	gauge      bool
	get        func(*record.Stats) uint64
}{
	{"kernel_seen_total", "Packets the BPF program ran on.", false, func(s *record.Stats) uint64 { return s.KernelSeen }},
	{"kernel_emitted_total", "Records the BPF program wrote to the ring buffer.", false, func(s *record.Stats) uint64 { return s.KernelEmitted }},
	{"kernel_ring_full_total", "Records lost because the ring buffer was full.", false, func(s *record.Stats) uint64 { return s.KernelRingFull }},
	{"kernel_sampled_out_total", "Packets deliberately not recorded by sampling.", false, func(s *record.Stats) uint64 { return s.KernelSampledOut }},
	{"kernel_snippet_copy_failed_total", "Records emitted without their L7 snippet.", false, func(s *record.Stats) uint64 { return s.KernelSnippetCopyFailed }},
	{"ring_pending_bytes", "Bytes waiting in the ring buffer.", true, func(s *record.Stats) uint64 { return s.RingPendingBytes }},
	{"samples_read_total", "Valid records read from the ring buffer.", false, func(s *record.Stats) uint64 { return s.SamplesRead }},
	{"samples_malformed_total", "Ring buffer samples that were not a valid record (dropped).", false, func(s *record.Stats) uint64 { return s.SamplesMalformed }},
	{"frames_produced_total", "Frames handed to the Kafka client.", false, func(s *record.Stats) uint64 { return s.FramesProduced }},
	{"frames_acked_total", "Frames acknowledged by Kafka.", false, func(s *record.Stats) uint64 { return s.FramesAcked }},
	{"frames_shed_total", "Frames dropped because the producer buffer was full.", false, func(s *record.Stats) uint64 { return s.FramesShed }},
	{"records_produced_total", "Records in frames handed to the Kafka client.", false, func(s *record.Stats) uint64 { return s.RecordsProduced }},
	{"records_acked_total", "Records in frames acknowledged by Kafka.", false, func(s *record.Stats) uint64 { return s.RecordsAcked }},
	{"records_shed_total", "Records dropped because the producer buffer was full.", false, func(s *record.Stats) uint64 { return s.RecordsShed }},
	{"records_failed_total", "Records in frames Kafka did not take.", false, func(s *record.Stats) uint64 { return s.RecordsFailed }},
	{"records_lost_restart_total", "Records a killed process of this run had read that never reached Kafka.", false, func(s *record.Stats) uint64 { return s.RecordsLostRestart }},
	{"buffered_bytes", "Frame bytes waiting for Kafka.", true, func(s *record.Stats) uint64 { return s.BufferedBytes }},
	{"read_errors_total", "Ring buffer read failures.", false, func(s *record.Stats) uint64 { return s.ReadErrors }},
	{"stats_failed_total", "Stats messages Kafka did not take.", false, func(s *record.Stats) uint64 { return s.StatsFailed }},
	{"kernel_flow_counted_total", "Packets added to a kernel flow bucket.", false, func(s *record.Stats) uint64 { return s.KernelFlowCounted }},
	{"kernel_flow_failed_total", "Packets of new flows a full kernel flow table refused (in no flow).", false, func(s *record.Stats) uint64 { return s.KernelFlowFailed }},
	{"kernel_tls_cont_tracked_total", "TCP flows remembered because a TLS handshake record went on past its segment.", false, func(s *record.Stats) uint64 { return s.KernelTLSContTracked }},
	{"kernel_tls_cont_copied_total", "Segments of remembered flows copied for the rest of their TLS record.", false, func(s *record.Stats) uint64 { return s.KernelTLSContCopied }},
	{"kernel_tls_cont_outside_total", "Segments of remembered flows outside the missing bytes (retransmissions, later data): not copied.", false, func(s *record.Stats) uint64 { return s.KernelTLSContOutside }},
	{"kernel_tls_cont_done_total", "Remembered flows whose missing TLS record bytes all came in order (tracked - done: given up or waiting).", false, func(s *record.Stats) uint64 { return s.KernelTLSContDone }},
	{"flow_exports_total", "Flow exports run.", false, func(s *record.Stats) uint64 { return s.FlowExports }},
	{"flow_export_errors_total", "Flow messages not acknowledged when an export ended (kept; no new export is cut until they are).", false, func(s *record.Stats) uint64 { return s.FlowExportErrors }},
	{"flow_messages_resent_total", "Flow messages produced again, the same bytes, after a copy failed.", false, func(s *record.Stats) uint64 { return s.FlowMessagesResent }},
	{"flow_rows_exported_total", "Flow rows acknowledged by Kafka.", false, func(s *record.Stats) uint64 { return s.FlowRowsExported }},
	{"flow_packets_exported_total", "Packets in flow rows acknowledged by Kafka.", false, func(s *record.Stats) uint64 { return s.FlowPacketsExported }},
	{"flow_bytes_exported_total", "Bytes in flow rows acknowledged by Kafka.", false, func(s *record.Stats) uint64 { return s.FlowBytesExported }},
	{"flows_retired_total", "Idle flows' kernel buckets retired after their last export.", false, func(s *record.Stats) uint64 { return s.FlowsRetired }},
	{"flow_lost_packets", "Packets counted into flows that no acknowledged export carried (a lower bound while packets flow).", true, func(s *record.Stats) uint64 { return s.FlowLostPackets }},
	{"flows_active", "Live kernel flow buckets at the last export.", true, func(s *record.Stats) uint64 { return uint64(max(s.FlowsActive, 0)) }},
}

const metricPrefix = "packetlake_collector_"

func newMetrics(c *Collector) *metrics {
	labels := prometheus.Labels{"host": c.cfg.Host, "iface": c.iface}
	m := &metrics{c: c, descs: map[string]*prometheus.Desc{}, kafka: kafkaconn.NewMetrics(metricPrefix, labels),
		adoptions: prometheus.NewCounter(prometheus.CounterOpts{Name: metricPrefix + "pin_adoptions_total",
			Help: "Pinned runs this process adopted and continues.", ConstLabels: labels}),
		replacements: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricPrefix + "pin_replacements_total",
			Help: "Pinned programs this process replaced (detached, their run ended, unpinned), by reason.", ConstLabels: labels},
			[]string{"reason"}),
		discarded: prometheus.NewCounter(prometheus.CounterOpts{Name: metricPrefix + "pin_replaced_records_discarded_total",
			Help: "Records left unread in the ring of a replaced pinned program (in its run's records_discarded).", ConstLabels: labels}),
	}
	m.receiverRows, m.receiverErrors = receiverMetrics(labels)
	m.descs["receiver_reads_total"], m.descs["receiver_entries_written_total"] = receiverKernelDescs(labels)
	for _, d := range metricDefs {
		m.descs[d.name] = prometheus.NewDesc(metricPrefix+d.name, d.help, nil, labels)
	}
	m.descs["kernel_parse_errors_total"] = prometheus.NewDesc(metricPrefix+"kernel_parse_errors_total",
		"Records whose kernel parse stopped early, by reason.", []string{"reason"}, labels)
	m.descs["produce_errors_total"] = prometheus.NewDesc(metricPrefix+"produce_errors_total",
		"Frames Kafka did not take, by reason.", []string{"reason"}, labels)
	m.descs["clock_offset_seconds"] = prometheus.NewDesc(metricPrefix+"clock_offset_seconds",
		"Wall clock minus CLOCK_MONOTONIC, as stamped on frames.", nil, labels)
	return m
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range m.descs {
		ch <- d
	}
	m.kafka.Describe(ch)
	m.adoptions.Describe(ch)
	m.replacements.Describe(ch)
	m.discarded.Describe(ch)
	m.receiverRows.Describe(ch)
	m.receiverErrors.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	s := m.c.Stats()
	for _, d := range metricDefs {
		t := prometheus.CounterValue
		if d.gauge {
			t = prometheus.GaugeValue
		}
		ch <- prometheus.MustNewConstMetric(m.descs[d.name], t, float64(d.get(&s)))
	}
	for reason, n := range s.KernelParseErrors {
		ch <- prometheus.MustNewConstMetric(m.descs["kernel_parse_errors_total"], prometheus.CounterValue, float64(n), reason)
	}
	for reason, n := range s.ProduceErrors {
		ch <- prometheus.MustNewConstMetric(m.descs["produce_errors_total"], prometheus.CounterValue, float64(n), reason)
	}
	ch <- prometheus.MustNewConstMetric(m.descs["clock_offset_seconds"], prometheus.GaugeValue, float64(s.ClockOffsetNs)/1e9)
	m.kafka.Collect(ch)
	m.adoptions.Collect(ch)
	m.replacements.Collect(ch)
	m.discarded.Collect(ch)
	m.receiverRows.Collect(ch)
	m.receiverErrors.Collect(ch)
	if t := m.c.recvTracer.Load(); t != nil {
		// A tracer closed since the Load fails the read: that scrape goes without them.
		if reads, written, err := t.Counts(); err == nil {
			ch <- prometheus.MustNewConstMetric(m.descs["receiver_reads_total"], prometheus.CounterValue, float64(reads))
			ch <- prometheus.MustNewConstMetric(m.descs["receiver_entries_written_total"], prometheus.CounterValue, float64(written))
		}
	}
}
