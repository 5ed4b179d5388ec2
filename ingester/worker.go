package ingester

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Exactly once, per partition:
//
//   - A batch is a contiguous offset range [first, last] of ONE partition. It goes into
//     ClickHouse as one INSERT per table with insert_deduplication_token
//     "<topic>/<partition>/<first>-<last>", and only once ClickHouse acknowledged it is
//     last+1 committed to Kafka. The next batch is not inserted before that commit succeeded,
//     so at most one batch per partition is inserted but not committed.
//   - After a crash or a rebalance the partition is read again from the committed offset, and
//     the replay must cut the very same batches, or the tokens differ and rows are doubled.
//     A batch cut by size (FlushRows rows or FlushBytes bytes reached, counted from its first
//     record) is a pure function of the records from its first offset: the replay cuts it at
//     the same record. A batch cut by age, revoke or shutdown depends on timing, so its range
//     is written to ingest_batches BEFORE its INSERT; a worker loads the ranges from its first
//     offset on and ends a batch that starts at a recorded first offset exactly at the
//     recorded last offset.
//   - Retries resend the same batch with the same token. ClickHouse drops a block whose token
//     it saw within non_replicated_deduplication_window inserts, so a batch that landed before
//     the crash (or before a lost response) lands once.

// afterInsertHook, set only by tests, runs between a batch's INSERTs and its commit: the window
// in which a crash leaves a batch in ClickHouse but not committed, to be replayed.
var afterInsertHook func(ctx context.Context, token string, c cut)

// cut says why a batch ended, for metrics and for whether its range must be recorded.
type cut string

const (
	cutSize   cut = "size"     // deterministic: no record needed
	cutAge    cut = "age"      // recorded
	cutRevoke cut = "revoke"   // recorded (rebalance or shutdown)
	cutReplay cut = "replayed" // at a recorded range
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
	forcedEnd   int64 // last offset of a recorded range this batch must end at; -1 if none
	dead        []deadLetter
	deadSeen    int             // bad records in this worker's life, for log rate-limiting
	ranges      map[int64]int64 // recorded ranges from the first offset seen; nil until loaded
	progress    struct{ ranged, deadDone, rowsDone bool }
}

func newPartitionWorker(ing *Ingester, topic string, partition int32, s sink) *partitionWorker {
	ctx, cancel := context.WithCancel(context.Background())
	return &partitionWorker{
		ing: ing, topic: topic, partition: partition, sink: s,
		log:  ing.log.With("topic", topic, "partition", partition),
		wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{}),
		forcedEnd: -1,
	}
}

// deliver queues records from the poll loop and pauses fetching the partition when too much
// is queued (ClickHouse down or slow): memory stays bounded and Kafka keeps the rest.
func (w *partitionWorker) deliver(recs []*kgo.Record, hwm int64) {
	n := 0
	for _, r := range recs {
		n += len(r.Value)
	}
	w.mu.Lock()
	w.queue = append(w.queue, recs...)
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

// take returns the queued records and whether the worker is draining.
func (w *partitionWorker) take() ([]*kgo.Record, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.queue
	w.queue = nil
	return q, w.draining
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
	tick := time.NewTicker(max(w.ing.cfg.FlushAge/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		recs, draining := w.take()
		if err := w.process(recs); err != nil {
			return // the partition was taken away mid-batch
		}
		w.release(recs)
		if w.n > 0 && w.forcedEnd < 0 && time.Since(w.started) >= w.ing.cfg.FlushAge {
			if w.flush(cutAge) != nil {
				return
			}
		}
		if len(recs) > 0 {
			continue // more may have arrived meanwhile
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
// recorded range not yet complete: that one can only be cut where it was cut before, so it is
// left to the next owner, which will cut it there.
func (w *partitionWorker) finish() {
	if w.n == 0 {
		return
	}
	if w.forcedEnd >= 0 {
		w.log.Info("revoked mid-replay of a recorded batch: leaving it to the next owner",
			"first", w.first, "last", w.last, "recorded_last", w.forcedEnd)
		return
	}
	_ = w.flush(cutRevoke)
}

// process adds records to the batch, flushing at each cut.
func (w *partitionWorker) process(recs []*kgo.Record) error {
	for _, r := range recs {
		if w.ranges == nil {
			if err := w.loadRanges(r.Offset); err != nil {
				return err
			}
		}
		// Offsets can have gaps (transaction markers, compaction); a recorded range whose last
		// offset is such a gap ends before the first record past it.
		if w.n > 0 && w.forcedEnd >= 0 && r.Offset > w.forcedEnd {
			if err := w.flush(cutReplay); err != nil {
				return err
			}
		}
		if w.n == 0 {
			w.first, w.started, w.forcedEnd = r.Offset, time.Now(), -1
			if last, ok := w.ranges[r.Offset]; ok {
				w.forcedEnd = last
			}
		}
		rows, err := w.sink.add(r)
		if err != nil {
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
		case w.rows >= w.ing.cfg.FlushRows || w.bytes >= w.ing.cfg.FlushBytes:
			if err := w.flush(cutSize); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadRanges reads the recorded batch ranges from the worker's first offset on.
func (w *partitionWorker) loadRanges(from int64) error {
	return retry(w.ctx, w.ing.cfg.RetryBackoffMax, func() error {
		ctx, cancel := context.WithTimeout(w.ctx, w.ing.cfg.InsertTimeout)
		defer cancel()
		rs, err := loadRanges(ctx, w.ing.conn, w.topic, w.partition, from)
		if err == nil {
			w.ranges = rs
			w.log.Debug("partition starts", "offset", from, "recorded_ranges", len(rs))
		}
		return err
	}, func(attempt int, err error) {
		w.logRetry(attempt, "load batch ranges", err)
	})
}

// flush inserts the batch and commits it, retrying until it succeeds or the partition is
// taken away (then the batch stays uncommitted for the next owner).
func (w *partitionWorker) flush(c cut) error {
	token := fmt.Sprintf("%s/%d/%d-%d", w.topic, w.partition, w.first, w.last)
	failures := 0
	err := retry(w.ctx, w.ing.cfg.RetryBackoffMax, func() error {
		return w.flushOnce(token, c)
	}, func(attempt int, err error) {
		failures = attempt
		w.logRetry(attempt, "flush "+token, err)
	})
	if err != nil {
		return err
	}
	if failures > 0 {
		w.log.Info("flush succeeded after retries", "token", token, "failures", failures)
	}
	w.ing.metrics.batches.WithLabelValues(w.topic, string(c)).Inc()
	w.sink.reset()
	clear(w.dead)
	w.dead = w.dead[:0]
	w.n, w.rows, w.bytes, w.forcedEnd = 0, 0, 0, -1
	w.progress.ranged, w.progress.deadDone, w.progress.rowsDone = false, false, false
	return nil
}

// flushOnce does what is left of range record → dead letters → rows → commit. Each step that
// succeeded is not repeated by a retry (repeating would be harmless, only slower).
func (w *partitionWorker) flushOnce(token string, c cut) error {
	ing := w.ing
	record := c == cutAge || c == cutRevoke
	ctx, cancel := context.WithTimeout(w.ctx, ing.cfg.InsertTimeout)
	defer cancel()
	if record && !w.progress.ranged {
		if err := saveRange(ctx, ing.conn, w.topic, w.partition, w.first, w.last, token); err != nil {
			ing.metrics.insertRetries.WithLabelValues("ingest_batches").Inc()
			return err
		}
		w.progress.ranged = true
	}
	if len(w.dead) > 0 && !w.progress.deadDone {
		if err := insertDeadLetters(ctx, ing.conn, w.topic, w.partition, w.dead, token); err != nil {
			ing.metrics.insertRetries.WithLabelValues("dead_letters").Inc()
			return err
		}
		ing.metrics.rowsInserted.WithLabelValues("dead_letters").Add(float64(len(w.dead)))
		w.progress.deadDone = true
	}
	if n := w.sink.len(); n > 0 && !w.progress.rowsDone {
		t0 := time.Now()
		if err := w.sink.insert(ctx, token); err != nil {
			ing.metrics.insertRetries.WithLabelValues(w.sink.table()).Inc()
			return err
		}
		ing.metrics.insertDuration.WithLabelValues(w.sink.table()).Observe(time.Since(t0).Seconds())
		ing.metrics.rowsInserted.WithLabelValues(w.sink.table()).Add(float64(n))
		w.progress.rowsDone = true
	}
	if afterInsertHook != nil {
		afterInsertHook(w.ctx, token, c)
	}
	if err := w.commit(ctx); err != nil {
		ing.metrics.commitRetries.Inc()
		return err
	}
	ing.metrics.commits.Inc()
	w.mu.Lock()
	lag := w.hwm - (w.last + 1)
	w.mu.Unlock()
	ing.metrics.lag.WithLabelValues(w.topic, strconv.Itoa(int(w.partition))).Set(float64(max(lag, 0)))
	return nil
}

// commit commits last+1 for this partition alone and waits for Kafka's answer.
func (w *partitionWorker) commit(ctx context.Context) error {
	var cerr error
	offsets := map[string]map[int32]kgo.EpochOffset{w.topic: {w.partition: {Epoch: w.lastEpoch, Offset: w.last + 1}}}
	w.ing.client.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					cerr = err
				}
			}
		}
	})
	if cerr != nil {
		return fmt.Errorf("commit offset %d: %w", w.last+1, cerr)
	}
	return nil
}

// logRetry logs the first failure and then every tenth, so an outage does not flood the log.
func (w *partitionWorker) logRetry(attempt int, what string, err error) {
	if attempt == 1 || attempt%10 == 0 {
		w.log.Warn(what+" failed, retrying", "attempt", attempt, "err", err)
	}
}
