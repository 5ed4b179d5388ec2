package collector

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/packetlake/packetlake/bpf"
)

// runState is what a collector run needs to outlive its process. With a pin directory it lives
// in the pinned run page (bpf.Pinned.Run), so a restarted collector continues the run: the same
// collector_id, seq going on from where the ring was read, and every counter of the stats
// message going on from its last value (loss_budget takes differences within a run and must
// never see a reset). Without one it lives on the heap and dies with the process, as the run does.
//
// Two kinds of fields. Counters are atomics, added to where the event happens, so an increment
// is in the page the instant it is made. Marks are pairs of values that must change together
// (where the ring was read up to and the seq reached there; what Kafka acknowledged and up to
// which offset): each is written to the slot not in use, then published by bumping its
// generation, so a process killed mid-write leaves the previous mark whole.
type runState struct {
	magic       atomic.Uint64 // runStateMagic once the run is set up
	collectorID uint64
	startedNs   int64         // wall clock at the run's start
	processes   atomic.Uint64 // processes that have carried the run, including this one

	user userCounters
	flow flowTotals
	// flowSeq is the flow exporter's export_seq, per run.
	flowSeq atomic.Uint64

	readGen atomic.Uint64
	reads   [2]readMark
	ackGen  atomic.Uint64
	acks    [2]ackMark
}

// runStateMagic changes whenever runState's layout does: a pin whose run state is of another
// layout is replaced, never misread.
const runStateMagic = 0x31_5f_4e_55_52_4c_50 // "PLRUN_1"

func init() {
	if unsafe.Sizeof(runState{}) > bpf.RunBytes {
		panic("collector: runState does not fit the pinned run page")
	}
}

// readMark: the ring was consumed up to Pos (a position of bpf.Ring); the records before it
// got seq numbers below Seq and Malformed samples were dropped. Written after a sample is framed
// and before its space is committed to the kernel (worker.go).
type readMark struct {
	Pos, Seq, Malformed uint64
}

// ackMark: Kafka acknowledged Records records in Frames frames of this run, the last at offset
// NextOffset-1 of partition Partition-1 (0: none yet), and every frame of seq below Through is
// settled (acknowledged, failed, shed or counted lost). LostRestart is records_lost_restart,
// which only the reconciliation after a restart raises, together with Records.
type ackMark struct {
	Records, Frames       uint64
	Partition, NextOffset uint64
	Through, LostRestart  uint64
}

// newRunState starts a run in place (a fresh pinned page, or the heap): a random collector_id,
// seq from 0.
func newRunState(st *runState) (*runState, error) {
	var idb [8]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return nil, fmt.Errorf("collector id: %w", err)
	}
	st.collectorID = binary.LittleEndian.Uint64(idb[:])
	st.startedNs = time.Now().UnixNano()
	st.processes.Store(1)
	st.magic.Store(runStateMagic) // last: a page with the magic is a set-up run
	return st, nil
}

// runStateIn is the run state in a pinned run page (zero when the page is new).
func runStateIn(page []byte) *runState {
	return (*runState)(unsafe.Pointer(&page[0]))
}

// read returns the current read mark.
func (st *runState) read() readMark { return st.reads[st.readGen.Load()&1] }

// markRead publishes a read mark. One writer: the source goroutine.
func (st *runState) markRead(m readMark) {
	g := st.readGen.Load()
	st.reads[(g+1)&1] = m
	st.readGen.Store(g + 1)
}

// ack returns the current ack mark.
func (st *runState) ack() ackMark { return st.acks[st.ackGen.Load()&1] }

// markAck publishes an ack mark. Writers hold producer.ackMu (or run before the producer).
func (st *runState) markAck(m ackMark) {
	g := st.ackGen.Load()
	st.acks[(g+1)&1] = m
	st.ackGen.Store(g + 1)
}

// settle brings the counters a process may have left behind its marks up to them: a process
// killed between counting a sample and publishing its count leaves the mark ahead. Run once,
// before anything else uses the state.
func (st *runState) settle() {
	r, a := st.read(), st.ack()
	st.user.samplesRead.Store(r.Seq)
	st.user.samplesMalformed.Store(r.Malformed)
	st.user.recordsAcked.Store(a.Records)
	st.user.framesAcked.Store(a.Frames)
	st.user.recordsLostRestart.Store(a.LostRestart)
}

// unconfirmed is how many records of seq below the read mark have no known fate: neither
// acknowledged, failed, shed nor already counted lost. After a crash they were in the frame
// being built, buffered in the Kafka client, or in flight to the broker.
func (st *runState) unconfirmed() (uint64, error) {
	u := &st.user
	seq := st.read().Seq
	known := u.recordsAcked.Load() + u.recordsFailed.Load() + u.recordsShed.Load() + u.recordsLostRestart.Load()
	if known > seq {
		return 0, fmt.Errorf("run state inconsistent: %d records acknowledged, failed, shed or lost, but only %d read", known, seq)
	}
	return seq - known, nil
}
