package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// StatsVersion is the value of Stats.Version; it changes only if a field changes meaning.
// Fields are only ever added, with omitempty: a message without them encodes as it always did.
const StatsVersion = 1

// Stats is one message on the stats topic (JSON, one object per Kafka record, keyed like the
// frames by host/iface) and the collector's snapshot behind its Prometheus metrics. Every
// counter is cumulative since the collector run started (identified by CollectorID), so a
// consumer takes differences between consecutive messages of one run; a new CollectorID
// restarts from zero. ProduceErrors alone counts since the current process started. The collector writes it; the ingester stores it whole in collector_stats.
//
// Where every packet the program saw went:
//
//	kernel_seen     = kernel_emitted + kernel_ring_full + kernel_sampled_out
//	kernel_emitted  = samples_read + samples_malformed + (records still in the ring) [+ records_discarded]
//	samples_read    = records_acked + records_failed + records_shed + records_lost_restart
//	                  + (records in the frame being built or waiting for Kafka)
//	records_produced = records_acked + records_failed + (records waiting for Kafka) [- those lost at a restart]
//
// A pinned run (the collector's Config.PinDir) goes on across collector processes with the
// same CollectorID and every counter going on from where the last process left it; a process
// killed mid-run leaves records_lost_restart to its successor.
//
// Flows (the collector's flows.go): kernel_flow_counted = kernel_seen (+ staged packets) -
// kernel_flow_failed, and flow_packets_exported + flow_lost_packets = kernel_flow_counted once
// the interface is idle and an export has run (always after Stop).
//
// While packets flow, the parenthesised terms make each left side ≥ the named terms on the right
// (a snapshot reads downstream counters first). One exception: the program counts emitted just
// after the record becomes readable, so samples_read may lead kernel_emitted by a few records
// for an instant. The drain adds its counts in batches, at each frame flush and ring poll, so
// they lag by at most the collector's FrameMaxAge.
type Stats struct {
	Version     int       `json:"version"`      // StatsVersion
	Time        time.Time `json:"time"`         // when the snapshot was taken, RFC 3339 with ns, UTC
	TimeUnixNs  int64     `json:"time_unix_ns"` // the same, ns since the Unix epoch
	Host        string    `json:"host"`         // the collector's Config.Host
	Iface       string    `json:"iface"`        // interface (or capture file) recorded
	CollectorID uint64    `json:"collector_id"` // random id of this run, as in the frames
	Mode        string    `json:"mode"`         // "xdp", "tc" or "pcap"
	// ClockOffsetNs is the wall-clock − monotonic offset the current frames carry (0 in pcap mode).
	ClockOffsetNs int64 `json:"clock_offset_ns"`

	// Kernel counters, summed over CPUs, from the BPF program's pl_stats map (schema.KernelCounters).
	KernelSeen              uint64 `json:"kernel_seen"`                // packets the program ran on
	KernelEmitted           uint64 `json:"kernel_emitted"`             // records written to the ring
	KernelRingFull          uint64 `json:"kernel_ring_full"`           // records lost: ring full
	KernelSampledOut        uint64 `json:"kernel_sampled_out"`         // packets deliberately not recorded
	KernelSnippetCopyFailed uint64 `json:"kernel_snippet_copy_failed"` // records emitted without their L7 snippet
	KernelFlowCounted       uint64 `json:"kernel_flow_counted"`        // packets added to a kernel flow entry (every packet, before sampling)
	KernelFlowFailed        uint64 `json:"kernel_flow_failed"`         // packets the flow map refused: in no flow
	// TLS handshake records over several TCP segments (bpf/tls_cont.h): flows remembered, their
	// segments copied, segments outside the missing bytes, flows whose rest all came in order
	// (tracked - done: given up or waiting). Absent from messages of collectors before them.
	KernelTLSContTracked uint64 `json:"kernel_tls_cont_tracked,omitempty"`
	KernelTLSContCopied  uint64 `json:"kernel_tls_cont_copied,omitempty"`
	KernelTLSContOutside uint64 `json:"kernel_tls_cont_outside,omitempty"`
	KernelTLSContDone    uint64 `json:"kernel_tls_cont_done,omitempty"`
	// Flow export (the collector's flows.go): rows and their packets/bytes acknowledged by Kafka on the flows topic.
	FlowExports         uint64 `json:"flow_exports"`
	FlowExportErrors    uint64 `json:"flow_export_errors"` // flow messages not acknowledged when an export ended (kept; no new export until they are)
	FlowRowsExported    uint64 `json:"flow_rows_exported"`
	FlowPacketsExported uint64 `json:"flow_packets_exported"` // = kernel_flow_counted - flow_lost_packets once idle
	FlowBytesExported   uint64 `json:"flow_bytes_exported"`
	FlowsRetired        uint64 `json:"flows_retired"` // idle flows' kernel buckets retired after their last export (freed at the next)
	// FlowLostPackets: packets counted into flows that no acknowledged export carried (yet: a flow
	// message Kafka has not acknowledged is kept until it is): kernel_flow_counted before an export
	// minus flow_packets_exported after it -- a lower bound while packets flow, exact when idle.
	FlowLostPackets uint64 `json:"flow_lost_packets"`
	FlowsActive     int64  `json:"flows_active"` // gauge: live buckets in the kernel flow tables at the last export
	// FlowMessagesResent: flow messages produced again, the same bytes, after a copy failed.
	FlowMessagesResent uint64 `json:"flow_messages_resent,omitempty"`
	// KernelParseErrors counts records by the kernel parser's stop reason (ParseErrorName);
	// only reasons seen at least once are present.
	KernelParseErrors map[string]uint64 `json:"kernel_parse_errors"`
	// RingPendingBytes is how much is waiting in the ring buffer right now (a gauge).
	RingPendingBytes uint64 `json:"ring_pending_bytes"`

	// User-space counters.
	SamplesRead      uint64 `json:"samples_read"`      // valid pl_records read from the ring
	SamplesMalformed uint64 `json:"samples_malformed"` // ring samples (or tails) that were not a valid pl_record: dropped
	FramesProduced   uint64 `json:"frames_produced"`   // frames handed to the Kafka client
	FramesAcked      uint64 `json:"frames_acked"`      // frames Kafka acknowledged
	FramesShed       uint64 `json:"frames_shed"`       // frames dropped because MaxBufferedBytes was reached
	RecordsProduced  uint64 `json:"records_produced"`  // records in frames_produced
	RecordsAcked     uint64 `json:"records_acked"`     // records in frames_acked
	RecordsShed      uint64 `json:"records_shed"`      // records in frames_shed: lost, counted
	RecordsFailed    uint64 `json:"records_failed"`    // records in frames whose produce failed: lost, counted
	// RecordsLostRestart: records a process of this run had read from the ring but that never
	// reached Kafka because the process died (kill -9, OOM) while they were in its frame, its
	// Kafka buffer or in flight: counted by the process that continued the run (a pinned run),
	// after looking for them in the frames topic. Lost, counted.
	RecordsLostRestart uint64 `json:"records_lost_restart,omitempty"`
	// RecordsDiscarded is set only in the last message of a pinned run that a collector of
	// another record layout, program build or settings replaced: the records the run's program
	// had written to the ring that no process read. Lost, counted.
	RecordsDiscarded uint64 `json:"records_discarded,omitempty"`
	// Processes is how many collector processes have carried this run (a pinned run adopted
	// after a restart counts on; 1 otherwise).
	Processes uint64 `json:"processes,omitempty"`
	// ProduceErrors counts failed frames by reason (snake_case Kafka error name, "aborted",
	// "client_closed", "record_timeout", ...); only reasons seen at least once are present.
	ProduceErrors map[string]uint64 `json:"produce_errors"`
	BufferedBytes uint64            `json:"buffered_bytes"` // gauge: frame bytes waiting for Kafka (≤ MaxBufferedBytes)
	ReadErrors    uint64            `json:"read_errors"`    // ring buffer read failures (other than deadline/flush)
	StatsFailed   uint64            `json:"stats_failed"`   // earlier stats messages Kafka did not take
}

// Encode writes s as the stats topic's JSON value.
func (s *Stats) Encode() ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode stats message: %w", err)
	}
	return b, nil
}

// DecodeStats reads one stats message and checks what a reader keys on. Any version from 1 up
// is taken: fields are only ever added, and unknown ones are ignored.
func DecodeStats(b []byte) (Stats, error) {
	var s Stats
	if err := json.Unmarshal(b, &s); err != nil {
		return Stats{}, fmt.Errorf("stats message is not JSON: %w", err)
	}
	if s.Version < 1 || s.Host == "" || s.Time.IsZero() {
		return Stats{}, errors.New("stats message lacks version, host or time")
	}
	return s, nil
}
