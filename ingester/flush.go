package ingester

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// Exactly once, per partition:
//
//   - A batch is a contiguous offset range [first, last] of ONE partition. It goes into
//     ClickHouse as one INSERT per table with insert_deduplication_token
//     "<topic>/<topic id>/<partition>/<first>-<last>" (topicid.go), and only once ClickHouse
//     acknowledged it is last+1 committed to Kafka. The next batch is not inserted before that
//     commit succeeded, so at most one batch per partition is inserted but not committed.
//   - Before its first INSERT the batch is claimed in Kafka: its range is committed as the
//     metadata of the partition's current offset, fenced by the group generation (claim.go). A
//     member that lost the partition cannot claim, so it never inserts; a member that takes the
//     partition over finds the last claim with the committed offset and cuts its first batch
//     exactly there, so a batch inserted but not committed (crash, lost session, revoke
//     timeout) is replayed under the very same token, however the new member cuts the rest.
//   - Retries resend the same batch with the same token. ClickHouse drops a block whose token
//     it saw within non_replicated_deduplication_window inserts, so a batch that landed before
//     the crash (or before a lost response) lands once.
//   - A batch ClickHouse refuses for its data is bisected into parts with tokens derived from
//     its own, the refused records dead-lettered (bisect.go).

// afterInsertHook, set only by tests, runs between a batch's INSERTs and its commit: the window
// in which a crash leaves a batch in ClickHouse but not committed, to be replayed.
var afterInsertHook func(ctx context.Context, token string, c cut)

// flush inserts the batch and commits it, retrying until it succeeds or the partition is
// taken away (then the batch stays uncommitted for the next owner).
func (w *partitionWorker) flush(c cut) error {
	token := fmt.Sprintf("%s/%s/%d/%d-%d", w.topic, topicIDString(w.batchID), w.partition, w.first, w.last)
	failures := 0
	var refused error
	err := retry(w.ctx, w.ing.cfg.RetryBackoffMax, func() error {
		return w.flushOnce(token, c)
	}, func(attempt int, err error) {
		failures = attempt
		if fenced(err) {
			refused = err
		}
		w.logRetry(attempt, "flush "+token, err)
	})
	if err != nil {
		why := "partition taken away mid-batch" // lost, or the revoke timed out
		if refused != nil {
			why = "partition moved to another member"
		}
		w.log.Warn(why+": dropping batch, uncommitted for the next owner",
			"token", token, "rows_inserted", w.progress.rowsDone, "refusal", refused)
		return err
	}
	if failures > 0 {
		w.log.Info("flush succeeded after retries", "token", token, "failures", failures)
	}
	w.ing.metrics.batches.WithLabelValues(w.topic, string(c)).Inc()
	w.stall.progressed()
	w.sink.reset()
	w.ungrow()
	clear(w.dead)
	w.dead = w.dead[:0]
	clear(w.recs)
	w.recs = w.recs[:0]
	w.n, w.rows, w.bytes, w.forcedEnd = 0, 0, 0, -1
	w.progress.claimed, w.progress.deadDone, w.progress.rowsDone = false, false, false
	return nil
}

// flushOnce does what is left of claim → dead letters → rows → commit. Each step that
// succeeded is not repeated by a retry (repeating would be harmless, only slower), except a
// claim older than half the session timeout before the INSERT: a member frozen that long may
// have lost the partition, and a fresh claim fences it again.
func (w *partitionWorker) flushOnce(token string, c cut) error {
	ing := w.ing
	ctx, cancel := context.WithTimeout(w.ctx, ing.cfg.InsertTimeout)
	defer cancel()
	if !w.progress.claimed || !w.progress.rowsDone && time.Since(w.claimedAt) > ing.cfg.SessionTimeout/2 {
		if err := w.claim(ctx, token); err != nil {
			ing.metrics.commitRetries.Inc()
			return err
		}
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
