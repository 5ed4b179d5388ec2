package ingester

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// cut says why a batch ended, for metrics and logs.
type cut string

const (
	cutSize   cut = "size"     // FlushRows or FlushBytes reached
	cutAge    cut = "age"      // FlushAge after its first record
	cutRevoke cut = "revoke"   // rebalance or shutdown
	cutReplay cut = "replayed" // at the range a claim committed before the partition came here

	cutRecreated cut = "recreated" // the last batch of a deleted instance of the topic
	cutGap       cut = "gap"       // before records Kafka deleted (expiry.go)
)

// partitionWorker batches, inserts and commits one partition. The poll loop hands it records;
// it runs in its own goroutine so that partitions insert in parallel and a slow ClickHouse
// pauses only the partitions it is slow for.
type partitionWorker struct {
	ing       *Ingester
	topic     string
	partition int32
	sink      sink
	log       *slog.Logger

	mu          sync.Mutex
	queue       []*kgo.Record // fetched, not yet in the batch
	queueAt     []time.Time   // when each queued record was fetched
	queueID     [16]byte      // topic ID the queued records were fetched under (zero: not sent)
	queuedBytes int
	hwm         int64 // partition high watermark, from the last fetch
	paused      bool  // fetching paused because the queue is over MaxQueuedBytes
	draining    bool  // revoked: finish the queue, flush, commit, exit
	wake        chan struct{}

	ctx    context.Context // cancelled when the partition is lost or the revoke times out
	cancel context.CancelFunc
	done   chan struct{}

	// The batch; touched only by run.
	n           int // Kafka records
	first, last int64
	lastEpoch   int32
	rows, bytes int
	started     time.Time
	forcedEnd   int64 // last offset of a claimed range this batch must end at; -1 if none
	dead        []deadLetter
	recs        []*kgo.Record // the records whose rows are in the batch, for a bisection (bisect.go)
	refusals    int           // times ClickHouse refused the batch's data (bisect.go)
	grown       int           // Kafka bytes added past FlushRows/FlushBytes, reserved on GrowBudget (grow.go)
	deadSeen    int           // bad records in this worker's life, for log rate-limiting
	progress    struct{ claimed, deadDone, rowsDone bool }

	stall *stallClock // last progress, for readiness (stall.go)
	gaps  gapWatch    // records Kafka deleted before they were read (expiry.go)

	// Claims (claim.go) and topic IDs (topicid.go); touched only by run.
	firstEpoch   int32     // leader epoch of the batch's first record, committed with its claim
	batchID      [16]byte  // topic ID of the batch's records
	claimedAt    time.Time // when Kafka accepted the batch's claim
	claimChecked bool      // the claim committed before the partition came here was looked at
}

func newPartitionWorker(ing *Ingester, topic string, partition int32, s sink) *partitionWorker {
	ctx, cancel := context.WithCancel(context.Background())
	return &partitionWorker{
		ing: ing, topic: topic, partition: partition, sink: s,
		log:  ing.log.With("topic", topic, "partition", partition),
		wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{}),
		forcedEnd: -1, stall: newStallClock(), gaps: newGapWatch(),
	}
}

// deliver queues records from the poll loop and pauses fetching the partition when too much
// is queued (ClickHouse down or slow): memory stays bounded and Kafka keeps the rest.
func (w *partitionWorker) deliver(id [16]byte, recs []*kgo.Record, hwm int64) {
	n := 0
	for _, r := range recs {
		n += len(r.Value)
	}
	w.mu.Lock()
	if id != [16]byte{} {
		w.queueID = id
	}
	w.queue = append(w.queue, recs...)
	now := time.Now()
	for range recs {
		w.queueAt = append(w.queueAt, now)
	}
	w.queuedBytes += n
	w.hwm = hwm
	if !w.paused && w.queuedBytes > w.ing.cfg.MaxQueuedBytes {
		w.paused = true
		w.ing.client.PauseFetchPartitions(map[string][]int32{w.topic: {w.partition}})
		w.ing.metrics.paused.Inc()
	}
	w.mu.Unlock()
	w.signal()
}

func (w *partitionWorker) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// take returns the queued records, when each was fetched, their topic ID and whether the
// worker is draining.
func (w *partitionWorker) take() ([]*kgo.Record, []time.Time, [16]byte, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	q, at := w.queue, w.queueAt
	w.queue, w.queueAt = nil, nil
	return q, at, w.queueID, w.draining
}

// release accounts for records now in a batch (or committed) and resumes fetching once the
// queue is down to half its limit.
func (w *partitionWorker) release(recs []*kgo.Record) {
	n := 0
	for _, r := range recs {
		n += len(r.Value)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.queuedBytes -= n
	if w.paused && w.queuedBytes <= w.ing.cfg.MaxQueuedBytes/2 {
		w.resumeLocked()
	}
}

func (w *partitionWorker) resumeLocked() {
	if w.paused {
		w.paused = false
		w.ing.client.ResumeFetchPartitions(map[string][]int32{w.topic: {w.partition}})
		w.ing.metrics.paused.Dec()
	}
}

// revoke asks the worker to process what it has, flush, commit and exit; after RevokeTimeout
// it gives up, leaving the uncommitted rest to the next owner.
func (w *partitionWorker) revoke() {
	w.mu.Lock()
	w.draining = true
	w.mu.Unlock()
	time.AfterFunc(w.ing.cfg.RevokeTimeout, w.cancel)
	w.signal()
}

// abort stops the worker at once: the partition is lost, its commits would be refused.
func (w *partitionWorker) abort() { w.cancel() }

// wait blocks until the worker exited and undoes its fetch pause, so the partition is not
// left paused should it come back to this member.
func (w *partitionWorker) wait() {
	<-w.done
	w.cancel()
	w.mu.Lock()
	w.resumeLocked()
	w.mu.Unlock()
	w.ing.metrics.lag.DeleteLabelValues(w.topic, strconv.Itoa(int(w.partition)))
}

func (w *partitionWorker) run() {
	defer close(w.done)
	defer w.ungrow() // a batch abandoned uncommitted holds no budget
	tick := time.NewTicker(max(w.ing.cfg.FlushAge/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		recs, at, id, draining := w.take()
		if err := w.process(recs, at, id); err != nil {
			return // the partition was taken away mid-batch
		}
		w.release(recs)
		if w.n > 0 && w.forcedEnd < 0 && time.Since(w.started) >= w.ing.cfg.FlushAge {
			if w.flush(cutAge) != nil {
				return
			}
		}
		// A batch that grew while its partition was behind is cut as soon as the partition
		// caught up, not at FlushAge (grow.go).
		if w.n > 0 && w.forcedEnd < 0 && w.full() && !w.behind() {
			if w.flush(cutSize) != nil {
				return
			}
		}
		if len(recs) > 0 {
			continue // more may have arrived meanwhile
		}
		if w.n == 0 {
			w.stall.progressed() // caught up: nothing fetched is waiting
		}
		if draining {
			w.finish()
			return
		}
		select {
		case <-w.wake:
		case <-tick.C:
		case <-w.ctx.Done():
			return
		}
	}
}

// finish flushes the partial batch of a revoked partition, unless it is the replay of a
// claimed range not yet complete: that one can only be cut where it was claimed, so it is
// left to the next owner, which will find the claim and cut it there.
func (w *partitionWorker) finish() {
	if w.n == 0 {
		return
	}
	if w.forcedEnd >= 0 {
		w.log.Info("revoked mid-replay of a claimed batch: leaving it to the next owner",
			"first", w.first, "last", w.last, "claimed_last", w.forcedEnd)
		return
	}
	_ = w.flush(cutRevoke)
}

// process adds records (fetched under topic ID id, zero if the broker did not say; record i
// fetched at at[i]) to the batch, flushing at each cut.
func (w *partitionWorker) process(recs []*kgo.Record, at []time.Time, id [16]byte) error {
	if id == ([16]byte{}) {
		id = w.ing.cachedTopicID(w.topic)
	}
	for i, r := range recs {
		// A batch never mixes two instances of a topic, and the new instance's committed claim
		// applies from its first record on (a re-created topic can come back to the same worker
		// when the group's assignment did not change).
		if w.n > 0 && id != w.batchID {
			if err := w.flush(cutRecreated); err != nil {
				return err
			}
		}
		if id != w.batchID {
			w.claimChecked = false
		}
		// Offsets can have gaps (transaction markers, compaction); a claimed range whose last
		// offset is such a gap ends before the first record past it.
		if w.n > 0 && w.forcedEnd >= 0 && r.Offset > w.forcedEnd {
			if err := w.flush(cutReplay); err != nil {
				return err
			}
		}
		if err := w.checkExpired(r); err != nil { // a gap retention made (expiry.go)
			return err
		}
		if w.n == 0 {
			// The batch's age runs from when its first record was fetched, not from when this
			// worker got to it: records fetched during the previous INSERT have waited that
			// long already, and counting from now would add the INSERT's duration to their
			// latency a second time (BENCHMARKS.md, "The rollups' latency").
			w.first, w.firstEpoch, w.batchID, w.started, w.forcedEnd = r.Offset, r.LeaderEpoch, id, at[i], -1
			w.honourClaim()
		}
		rows, err := w.sink.add(r)
		if err == nil {
			w.recs = append(w.recs, r)
		} else {
			w.dead = append(w.dead, deadLetter{ts: r.Timestamp, offset: r.Offset, err: err.Error(), raw: r.Value})
			w.ing.metrics.deadLetters.WithLabelValues(w.topic).Inc()
			if w.deadSeen++; w.deadSeen <= 10 || w.deadSeen%1000 == 0 { // a bad producer must not flood the log
				w.log.Warn("bad record to dead_letters", "offset", r.Offset, "err", err, "bad_records_so_far", w.deadSeen)
			}
		}
		w.ing.metrics.kafkaRecords.WithLabelValues(w.topic).Inc()
		w.n++
		w.last, w.lastEpoch = r.Offset, r.LeaderEpoch
		w.rows += rows
		w.bytes += len(r.Value)
		switch {
		case w.forcedEnd >= 0:
			if r.Offset >= w.forcedEnd {
				if err := w.flush(cutReplay); err != nil {
					return err
				}
			}
		case w.full():
			if c := w.grow(i < len(recs)-1, len(r.Value)); c != "" {
				if err := w.flush(c); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// logRetry logs the first failure and then every tenth, so an outage does not flood the log.
func (w *partitionWorker) logRetry(attempt int, what string, err error) {
	w.stall.failed(fmt.Errorf("%s: %w", what, err))
	if attempt == 1 || attempt%10 == 0 {
		w.log.Warn(what+" failed, retrying", "attempt", attempt, "err", err)
	}
}
