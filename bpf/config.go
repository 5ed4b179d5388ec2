package bpf

import (
	"fmt"
	"os"
	"time"

	"github.com/packetlake/packetlake/schema"
)

const (
	// DefaultRingBytes holds ~100k records without snippet: 50 ms at 2 Mpps (INFRA.md).
	DefaultRingBytes = 16 << 20
	// DefaultWakeupBytes is the pending data at which the kernel wakes the reader.
	DefaultWakeupBytes = 256 << 10
)

// Config sizes the ring buffer and the per-CPU batches. Zero values take the defaults.
type Config struct {
	// RingBytes is the ring buffer size: a power of two, at least one page.
	RingBytes int
	// WakeupBytes: the reader is woken when pending data crosses it, otherwise records are written
	// without a wake-up and the reader must poll with a deadline. Default min(256 KiB, RingBytes/4).
	WakeupBytes int
	// BatchRecords is the most records a CPU stages before writing them to the ring as one sample
	// (default DefaultBatchRecords; 1 writes every record at once). A batch is also written when
	// the next record might not fit its min(16 KiB, RingBytes/4) bytes, and once it is BatchAge
	// old.
	BatchRecords int
	// BatchAge bounds how long a record may wait in a part-filled batch: a later packet on the same
	// CPU, or else that CPU's timer, writes the batch out once its oldest record is this old.
	// Default DefaultBatchAge.
	BatchAge time.Duration
	// FlowEntries is how many flows each flow table, pl_flows4 (IPv4) and pl_flows (IPv6,
	// non-IP), holds at once (default DefaultFlowEntries): it gets 4/3 as many buckets, rounded
	// up to a power of two. A new flow that finds no free bucket among the 32 its hash leads to
	// counts in flow_failed; nothing is evicted (maps.h).
	FlowEntries int
	// NoFlows turns exact flow counting off (benchmarks: the cost without it).
	NoFlows bool
	// NoTLSCont turns off following TLS ClientHello records over several TCP segments
	// (tls_cont.h): only a segment that starts a record is copied, as before it existed.
	NoTLSCont bool
	// SampleMax bounds adaptive sampling: under ring pressure a CPU records 1 in N ordinary
	// packets, N doubling up to SampleMax (default DefaultSampleMax; 1 never samples). Pressure:
	// more than 3/4 of the ring pending after a batch write, or a batch the ring refused; N halves
	// again below 1/4 (BENCHMARKS.md: at 1/2 a burst the ring would have absorbed got sampled).
	SampleMax int
	// XDPFrags makes AttachXDP attach only the frags-aware pl_xdp, never pl_xdp_linear. While
	// pl_xdp_linear is attached natively the kernel refuses to raise the interface's MTU past
	// one buffer (about 3.5 KiB); with XDPFrags it allows that, at ~8 ns more per packet
	// (BENCH.md).
	XDPFrags bool
}

const (
	// DefaultBatchRecords: 32 records to a ring sample (BENCH.md).
	DefaultBatchRecords = 32
	// DefaultBatchAge is well inside the collector's frame age: a quiet interface still delivers.
	DefaultBatchAge = 20 * time.Millisecond

	// DefaultFlowEntries: flows tracked at once per table, IPv4 and the rest: 65536 buckets
	// each (~48 B per possible CPU + head, preallocated), as many as the LRU maps had entries.
	DefaultFlowEntries = 49152
	// DefaultSampleMax: at most 1 in 64 ordinary packets' records kept under pressure.
	DefaultSampleMax = 64

	stageBytes   = 16384                                                                 // PL_STAGE_BYTES (maps.h)
	recordMax    = schema.KernelRecordSize + schema.KernelTunnelSize + schema.SnippetMax // PL_RECORD_MAX
	maxBatchRecs = 1 << 16
)

func (c Config) withDefaults() (Config, error) {
	if c.RingBytes == 0 {
		c.RingBytes = DefaultRingBytes
	}
	page := os.Getpagesize()
	if c.RingBytes < page || c.RingBytes&(c.RingBytes-1) != 0 {
		return c, fmt.Errorf("ring size %d: must be a power of two and at least %d", c.RingBytes, page)
	}
	if c.WakeupBytes == 0 {
		c.WakeupBytes = min(DefaultWakeupBytes, c.RingBytes/4)
	}
	if c.WakeupBytes < 0 || c.WakeupBytes > c.RingBytes {
		return c, fmt.Errorf("wake-up threshold %d: must be between 1 and the ring size %d", c.WakeupBytes, c.RingBytes)
	}
	if c.BatchRecords == 0 {
		c.BatchRecords = DefaultBatchRecords
	}
	if c.BatchRecords < 0 || c.BatchRecords > maxBatchRecs {
		return c, fmt.Errorf("batch of %d records: must be between 1 and %d", c.BatchRecords, maxBatchRecs)
	}
	if c.BatchAge == 0 {
		c.BatchAge = DefaultBatchAge
	}
	if c.FlowEntries == 0 {
		c.FlowEntries = DefaultFlowEntries
	}
	if c.FlowEntries < 0 {
		return c, fmt.Errorf("flow entries %d: must be positive", c.FlowEntries)
	}
	if c.SampleMax == 0 {
		c.SampleMax = DefaultSampleMax
	}
	if c.SampleMax < 0 || c.SampleMax > 1<<20 {
		return c, fmt.Errorf("sample max %d: must be between 1 and %d", c.SampleMax, 1<<20)
	}
	if c.BatchAge < 0 {
		return c, fmt.Errorf("batch age %s: must be positive", c.BatchAge)
	}
	return c, nil
}

// batchLimit is pl_batch_limit: the staged bytes past which a batch is written, so that the next
// record, at its largest, still fits both the stage and a quarter of the ring (a sample larger
// than the ring could never be written). 0: every record is written at once.
func (c Config) batchLimit() uint32 {
	return uint32(max(0, min(stageBytes, c.RingBytes/4)-recordMax))
}
