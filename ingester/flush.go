package ingester

import (
	"context"
	"fmt"
	"strconv"

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
//   - A batch ClickHouse refuses for its data is bisected into parts with tokens derived from
//     its own, the refused records dead-lettered (bisect.go).

// afterInsertHook, set only by tests, runs between a batch's INSERTs and its commit: the window
// in which a crash leaves a batch in ClickHouse but not committed, to be replayed.
var afterInsertHook func(ctx context.Context, token string, c cut)

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
	w.stall.progressed()
	w.sink.reset()
	clear(w.dead)
	w.dead = w.dead[:0]
	clear(w.recs)
	w.recs = w.recs[:0]
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
	if w.sink.len() > 0 && !w.progress.rowsDone {
		if err := w.insertRows(ctx, token); err != nil { // bisects a poison batch (bisect.go)
			return err
		}
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
