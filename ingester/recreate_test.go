package ingester

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestRecreatedTopicKeepsRows: the packet topic is deleted and re-created twice, and each time
// frames are produced whose offsets repeat the first run's (same keys, same counts, so the
// same partitions and offsets, batches cut by size at the same records). Offsets alone would
// give them the first run's dedup tokens, and ClickHouse would drop them as duplicates. The
// first re-creation happens while no ingester runs; the second under a running one, which must
// notice it, move to the new instance and start it at offset 0.
func TestRecreatedTopicKeepsRows(t *testing.T) {
	topic, stats, group, db := names("recreate")
	createTopic(t, topic, 2)
	createTopic(t, stats, 1)
	cfg := testConfig(sharedCH, topic, stats, group, db, WriterArrowHTTP)
	cfg.FlushRows = 2_000 // 4 frames a batch: a run's 12 frames per key make 3 batches, cut by size
	conn := chConn(t, sharedCH.TCPAddr())
	want := sent{}
	run := func(i int) {
		cl := producer(t) // new each time: a client that saw the old topic refuses the new one
		for c := range 2 {
			s := newStream(fmt.Sprintf("host-%d", c), uint64(100*i+c))
			var fs [][]byte
			for range 12 {
				fs = append(fs, s.frame(500))
			}
			produce(t, cl, topic, s.host, fs...)
			want.add(s.sent())
		}
	}

	run(1)
	ing := startIngester(t, cfg)
	waitRows(t, conn, db, want, time.Minute)
	ing.Stop()

	recreateTopic(t, topic, 2)
	run(2)
	ing = startIngester(t, cfg)
	waitRows(t, conn, db, want, time.Minute)

	recreateTopic(t, topic, 2)
	run(3)
	waitRows(t, conn, db, want, time.Minute)
	if n := testutilCounter(ing.metrics.topicRecreations.WithLabelValues(topic)); n != 1 {
		t.Errorf("the running member counted %v re-creations of the topic, want 1", n)
	}
}

// recreateTopic deletes topic and creates it again with partitions; the group's committed
// offsets go with the old topic.
func recreateTopic(t *testing.T, topic string, partitions int32) {
	t.Helper()
	adm := admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before, err := adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adm.DeleteTopic(ctx, topic); err != nil {
		t.Fatalf("delete topic %s: %v", topic, err)
	}
	for { // the deletion completes in the background
		_, err := adm.CreateTopic(ctx, partitions, -1, nil, topic)
		if err == nil {
			break
		}
		if !errors.Is(err, kerr.TopicAlreadyExists) || ctx.Err() != nil {
			t.Fatalf("create topic %s again: %v", topic, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for { // until the broker's metadata shows the new instance
		after, err := adm.ListTopics(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		if id := after[topic].ID; after[topic].Err == nil && id != before[topic].ID {
			t.Logf("topic %s re-created: id %s → %s", topic, topicIDString(before[topic].ID), topicIDString(id))
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("topic %s: no new topic ID after re-creating it", topic)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
