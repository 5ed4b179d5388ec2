package ingester

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A poison batch: ClickHouse refuses it because of some of its rows (errclass.go), so retrying
// it can never succeed, and the partition would stall behind it forever. After PoisonRetries
// such refusals the batch is bisected: each half is inserted on its own, a refused half is split
// again, down to single Kafka records; the records ClickHouse refuses alone go to dead_letters
// with the server's error, every other row lands, and the batch is committed as usual.
//
// Exactly once through a crash mid-bisection: the split points are indexes into the batch's
// records, and each part's deduplication token is the batch's token plus the offsets of the
// part's first and last record. The replay of the batch (same records, same token) fails the
// same way, is split at the same points, and ClickHouse drops the parts it already has. This
// assumes a refusal of the data is deterministic — it is for parse, type and constraint errors;
// if an operator changed the table between the crash and the replay so that the whole batch now
// passes, the parts stored before the crash would be stored again under the batch's token.

// bisectInsertHook, set only by tests, runs after each part of a bisection landed.
var bisectInsertHook func(ctx context.Context, token string)

// insertRows inserts the batch's rows under its token. A refusal of the data is returned for a
// retry until it happened PoisonRetries times; then the batch is bisected.
func (w *partitionWorker) insertRows(ctx context.Context, token string) error {
	m, table, n := w.ing.metrics, w.sink.table(), w.sink.len()
	t0 := time.Now()
	err := w.sink.insert(ctx, token)
	if err == nil {
		w.refusals = 0
		m.insertDuration.WithLabelValues(table).Observe(time.Since(t0).Seconds())
		// Counted after the insert: a sink may drop rows stored before (flows_dedup.go).
		m.rowsInserted.WithLabelValues(table).Add(float64(w.sink.len()))
		return nil
	}
	m.insertRetries.WithLabelValues(table).Inc()
	if classify(err) != errRejected || len(w.recs) == 0 {
		return err
	}
	if w.refusals++; w.refusals < w.ing.cfg.PoisonRetries {
		return fmt.Errorf("ClickHouse refuses the batch's data (%d of %d tries before bisecting it): %w", w.refusals, w.ing.cfg.PoisonRetries, err)
	}
	w.refusals = 0
	m.bisected.WithLabelValues(w.topic).Inc()
	w.log.Warn("ClickHouse refuses the batch's data: bisecting it to store what it accepts and dead-letter the rest",
		"token", token, "records", len(w.recs), "rows", n, "code", describeCode(err), "err", err)
	b := &bisection{w: w, token: token, part: w.sink.fresh()}
	if err := b.refused(0, len(w.recs), err); err != nil {
		return err
	}
	if err := b.deadLetter(); err != nil {
		return err
	}
	w.log.Info("bisected batch stored", "token", token, "rows", b.stored, "refused_records", len(b.refusedRecs), "inserts", b.inserts)
	return nil
}

// bisection isolates the records of a poison batch (w.recs) that ClickHouse refuses.
type bisection struct {
	w           *partitionWorker
	token       string
	part        sink // holds one part at a time
	stored      int  // rows of the parts that landed
	inserts     int
	refusedRecs []deadLetter
}

// refused handles recs[lo:hi], which ClickHouse refused with err: one record goes to the dead
// letters, more are split in two halves, each tried on its own.
func (b *bisection) refused(lo, hi int, err error) error {
	if hi-lo == 1 {
		r := b.w.recs[lo]
		b.refusedRecs = append(b.refusedRecs, deadLetter{ts: r.Timestamp, offset: r.Offset, raw: r.Value,
			err: fmt.Sprintf("ClickHouse refused the record: %s: %v", describeCode(err), err)})
		return nil
	}
	mid := lo + (hi-lo)/2
	if err := b.try(lo, mid); err != nil {
		return err
	}
	return b.try(mid, hi)
}

// try inserts recs[lo:hi] under its own token, retrying transient errors with backoff; a
// refusal splits it further. It fails only when the partition is taken away.
func (b *bisection) try(lo, hi int) error {
	w := b.w
	recs := w.recs[lo:hi]
	token := fmt.Sprintf("%s/bisect/%d-%d", b.token, recs[0].Offset, recs[len(recs)-1].Offset)
	bo := newBackoff(w.ing.cfg.RetryBackoffMax)
	for attempt := 1; ; attempt++ {
		rows, err := b.insert(recs, token)
		if err == nil {
			b.stored += rows
			w.stall.progressed() // a part landed: the partition moves, if slowly
			if bisectInsertHook != nil {
				bisectInsertHook(w.ctx, token)
			}
			return nil
		}
		w.ing.metrics.insertRetries.WithLabelValues(b.part.table()).Inc()
		if classify(err) == errRejected {
			return b.refused(lo, hi, err)
		}
		if w.ctx.Err() != nil {
			return w.ctx.Err()
		}
		w.logRetry(attempt, "bisect insert "+token, err)
		if err := bo.wait(w.ctx); err != nil {
			return err
		}
	}
}

// insert sends one part as one INSERT. The records decoded once already, so they decode again.
func (b *bisection) insert(recs []*kgo.Record, token string) (int, error) {
	b.part.reset()
	for _, r := range recs {
		if _, err := b.part.add(r); err != nil {
			return 0, fmt.Errorf("bisect: record at offset %d no longer decodes: %w", r.Offset, err)
		}
	}
	ctx, cancel := context.WithTimeout(b.w.ctx, b.w.ing.cfg.InsertTimeout)
	defer cancel()
	b.inserts++
	if err := b.part.insert(ctx, token); err != nil {
		return 0, err
	}
	n := b.part.len() // after the insert: a sink may drop rows stored before (flows_dedup.go)
	b.w.ing.metrics.rowsInserted.WithLabelValues(b.part.table()).Add(float64(n))
	return n, nil
}

// deadLetter stores the refused records, under a token of their own: the bisection finds the
// same ones on a replay.
func (b *bisection) deadLetter() error {
	w := b.w
	if len(b.refusedRecs) == 0 {
		return nil // the refusal did not repeat for any part: nothing to dead-letter
	}
	token := b.token + "/refused"
	err := retry(w.ctx, w.ing.cfg.RetryBackoffMax, func() error {
		ctx, cancel := context.WithTimeout(w.ctx, w.ing.cfg.InsertTimeout)
		defer cancel()
		if err := insertDeadLetters(ctx, w.ing.conn, w.topic, w.partition, b.refusedRecs, token); err != nil {
			w.ing.metrics.insertRetries.WithLabelValues("dead_letters").Inc()
			return err
		}
		w.ing.metrics.rowsInserted.WithLabelValues("dead_letters").Add(float64(len(b.refusedRecs)))
		return nil
	}, func(attempt int, err error) { w.logRetry(attempt, "dead-letter refused records of "+b.token, err) })
	if err != nil {
		return err
	}
	for _, d := range b.refusedRecs {
		w.ing.metrics.rejected.WithLabelValues(w.topic).Inc()
		if w.deadSeen++; w.deadSeen <= 10 || w.deadSeen%1000 == 0 {
			w.log.Warn("record refused by ClickHouse to dead_letters", "offset", d.offset, "err", d.err, "bad_records_so_far", w.deadSeen)
		}
	}
	return nil
}
