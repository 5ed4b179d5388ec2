package ingester

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKafkaRetentionGap: the ingester is down while retention deletes records it never read.
// Restarted, it skips them, counts exactly log start − committed offset in ingest_gaps (and on
// /metrics), and stores every record still in Kafka, once.
//
// Retention deletes whole segments whose newest record is older than retention.ms, oldest
// first; the test stamps its records so that it knows which: the first ten (ingested, then the
// ingester stops) two hours old, the next ten one hour old, the last ten new, each ten a
// produce batch and a segment of their own (a batch stamped more than segment.ms after a
// segment's first record starts a new one). Retention is then set to 30 minutes: the broker's
// next retention check (every 500 ms here) deletes the first two segments and the log start
// moves to 20, as observed with ListStartOffsets.
func TestKafkaRetentionGap(t *testing.T) {
	topic, stats, group, db := names("expiry")
	adm := kadm.NewClient(producer(t))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	segmentMs := strconv.Itoa(int((10 * time.Minute).Milliseconds()))
	if _, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"segment.ms": &segmentMs}, topic); err != nil {
		t.Fatal(err)
	}
	createTopic(t, stats, 1)
	cfg := testConfig(sharedCH, topic, stats, group, db, WriterArrowHTTP)
	cl := producer(t)
	const frames, perFrame = 10, 500
	s := newStream("host-expiry", 31)
	now := time.Now()
	produceAt := func(age time.Duration) {
		rs := make([]*kgo.Record, frames)
		for i := range rs {
			rs[i] = &kgo.Record{Topic: topic, Key: []byte(s.host), Value: s.frame(perFrame), Timestamp: now.Add(-age)}
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	produceAt(2 * time.Hour) // offsets 0-9, seqs 0-4999
	ing := startIngester(t, cfg)
	conn := chConn(t, sharedCH.TCPAddr())
	waitRows(t, conn, db, s.sent(), time.Minute)
	if err := ing.Stop(); err != nil {
		t.Fatal(err)
	}
	committed := committedOffset(t, adm, group, topic)

	produceAt(time.Hour) // offsets 10-19, seqs 5000-9999: deleted before they are read
	produceAt(0)         // offsets 20-29, seqs 10000-14999
	retention := strconv.Itoa(int((30 * time.Minute).Milliseconds()))
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: &retention}}, topic); err != nil {
		t.Fatal(err)
	}
	altered := time.Now()
	var logStart int64
	for logStart <= committed {
		starts, err := adm.ListStartOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		o, _ := starts.Lookup(topic, 0)
		logStart = o.Offset
		if ctx.Err() != nil {
			t.Fatalf("log start still %d (committed %d): retention deleted nothing", logStart, committed)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("committed %d, log start %d after %s: %d records expired unread", committed, logStart, time.Since(altered).Round(100*time.Millisecond), logStart-committed)
	if logStart != 2*frames {
		t.Fatalf("log start %d, want %d: retention deleted other segments than the test planned", logStart, 2*frames)
	}

	ing = startIngester(t, cfg)
	waitStable(t, conn, db, 2*frames*perFrame, time.Minute) // seqs 5000-9999 expired: checked below
	if n := queryCount(t, conn, "SELECT uniqExact(seq) FROM "+db+".packets WHERE collector_id = 31 AND (seq < 5000 OR seq BETWEEN 10000 AND 14999)"); n != 2*frames*perFrame {
		t.Errorf("packets holds %d of the %d seqs still in Kafka", n, 2*frames*perFrame)
	}
	waitCount(t, conn, "SELECT count() FROM "+db+".ingest_gaps", 1, 30*time.Second)
	var gaps []struct {
		TopicID string `ch:"topic_id"`
		First   int64  `ch:"first_offset"`
		Last    int64  `ch:"last_offset"`
		Records uint64 `ch:"records"`
	}
	if err := conn.Select(ctx, &gaps, "SELECT topic_id, first_offset, last_offset, records FROM "+db+".ingest_gaps FINAL WHERE topic = ? AND `partition` = 0", topic); err != nil {
		t.Fatal(err)
	}
	if len(gaps) != 1 || gaps[0].First != committed || gaps[0].Last != logStart-1 || gaps[0].Records != uint64(logStart-committed) || gaps[0].TopicID == "" {
		t.Errorf("ingest_gaps: %+v; want one gap [%d, %d] of %d records with the topic's id", gaps, committed, logStart-1, logStart-committed)
	}
	if n := testutilCounter(ing.metrics.expired.WithLabelValues(topic)); n != float64(logStart-committed) {
		t.Errorf("kafka_expired_records_total = %v, want %d", n, logStart-committed)
	}
	ing.Stop()
	checkCommitted(t, group, topic)
}

// committedOffset is the group's committed offset of topic's partition 0.
func committedOffset(t *testing.T, adm *kadm.Client, group, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := offs.Lookup(topic, 0)
	if !ok {
		t.Fatalf("group %s has no commit for %s/0", group, topic)
	}
	return o.At
}
