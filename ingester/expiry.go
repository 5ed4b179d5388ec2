package ingester

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Records Kafka deleted before the ingester read them. When ClickHouse (or every ingester) is
// down for longer than the topic's retention, the partition's log start moves past the offset
// the ingester would read next: the fetch fails with OffsetOutOfRange, and franz-go resumes at
// the log start (ConsumeResetOffset AtStart; a consumer below the log start always resumes
// there). Nothing in the records says so; the worker notices the jump: the first record after
// it lies past the offset it expected (the committed offset for a worker's first record), and
// the fetch's log start lies past that offset too — a jump Kafka made by deleting, not a
// transaction marker or compaction. The records of [expected, log start) are lost: the worker
// counts them exactly, logs an error, and records the range in ingest_gaps, which loss_budget
// reports as its own stage.
//
// The batch before the jump is inserted and committed first, so a gap starts at a committed
// offset; after a crash the replay finds the gap again from the same offset (to a later one if
// retention deleted more meanwhile): loss_budget counts the union of the ranges.

// gapWatch is a worker's view of its partition's offsets.
type gapWatch struct {
	next     int64        // the offset expected next; -1: not known yet (no record seen)
	logStart atomic.Int64 // the partition's log start in the last fetch (set by the poll loop)
}

func newGapWatch() gapWatch { return gapWatch{next: -1} }

// checkExpired records a gap before r, if Kafka deleted records there.
func (w *partitionWorker) checkExpired(r *kgo.Record) error {
	expected := w.gaps.next
	w.gaps.next = r.Offset + 1
	if expected < 0 {
		expected = w.committed()
	}
	if expected < 0 || r.Offset <= expected {
		return nil
	}
	logStart := w.gaps.logStart.Load()
	if logStart <= expected {
		return nil // a gap Kafka did not make by deleting: transaction markers, compaction
	}
	if w.n > 0 && w.forcedEnd < 0 {
		// Cut here: a replay that reads up to here meets the same gap. (A claimed range is
		// left to run to its claimed end: its token must not change.)
		if err := w.flush(cutGap); err != nil {
			return err
		}
	}
	return w.recordGap(expected, min(logStart, r.Offset)-1, logStart)
}

// committed is the group's committed offset of the partition as this member fetched it on
// assignment, or -1 if there is none (a new group starts at the log start: nothing skipped).
func (w *partitionWorker) committed() int64 {
	if o, ok := w.ing.client.CommittedOffsets()[w.topic][w.partition]; ok {
		return o.Offset
	}
	return -1
}

// recordGap logs [first, last] as lost and stores it in ingest_gaps, retrying until it is
// stored or the partition is taken away.
func (w *partitionWorker) recordGap(first, last, logStart int64) error {
	n := last - first + 1
	w.log.Error("Kafka deleted records before they were ingested (retention shorter than the outage): skipped, counted in ingest_gaps",
		"first_offset", first, "last_offset", last, "records", n, "log_start", logStart)
	err := retry(w.ctx, w.ing.cfg.RetryBackoffMax, func() error {
		ctx, cancel := context.WithTimeout(w.ctx, w.ing.cfg.InsertTimeout)
		defer cancel()
		id, err := w.topicID(ctx)
		if err != nil {
			return err
		}
		return insertGap(ctx, w.ing.conn, w.topic, id, w.partition, first, last)
	}, func(attempt int, err error) {
		w.ing.metrics.insertRetries.WithLabelValues("ingest_gaps").Inc()
		w.logRetry(attempt, "record expired records", err)
	})
	if err != nil {
		return err
	}
	w.ing.metrics.expired.WithLabelValues(w.topic).Add(float64(n))
	w.ing.metrics.rowsInserted.WithLabelValues("ingest_gaps").Inc()
	return nil
}

// topicID asks Kafka for the topic's ID, which tells a topic from one deleted and re-created
// under its name (whose offsets start again at 0). Asked only when a gap is found.
func (w *partitionWorker) topicID(ctx context.Context) (string, error) {
	ts, err := kadm.NewClient(w.ing.client).ListTopics(ctx, w.topic)
	if err != nil {
		return "", fmt.Errorf("topic id of %s: %w", w.topic, err)
	}
	d, ok := ts[w.topic]
	if !ok || d.Err != nil {
		return "", fmt.Errorf("topic id of %s: %v", w.topic, d.Err)
	}
	if d.ID == (kadm.TopicID{}) {
		return "", nil // a broker without topic IDs
	}
	return topicIDString(d.ID), nil
}

// insertGap stores one gap, deduplicated by its range: a retry adds nothing.
func insertGap(ctx context.Context, conn driver.Conn, topic, topicID string, partition int32, first, last int64) error {
	token := fmt.Sprintf("gap/%s/%s/%d/%d-%d", topic, topicID, partition, first, last)
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(dedupSettings(token)))
	if err := conn.Exec(ctx, "INSERT INTO ingest_gaps (ts, topic, topic_id, `partition`, first_offset, last_offset, records) VALUES (?, ?, ?, ?, ?, ?, ?)",
		time.Now(), topic, topicID, partition, first, last, uint64(last-first+1)); err != nil {
		return fmt.Errorf("record gap %s: %w", token, err)
	}
	return nil
}
