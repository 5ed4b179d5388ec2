package kafkalocal

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Three real nodes: the active controller and a partition leader are found, a paused node and a
// killed leader are replaced, the killed node rejoins after Restart, and an idempotent acks=all
// producer loses and doubles nothing through it all.
func TestKafkaClusterFailover(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	t0 := time.Now()
	dir, err := os.MkdirTemp("", "kafka-cluster-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node logs kept in %s", dir)
		} else {
			os.RemoveAll(dir)
		}
	})
	c, err := StartCluster(ctx, ClusterConfig{DataDir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	t.Logf("3 nodes up in %v", time.Since(t0).Round(time.Millisecond))
	if err := c.CreateTopic(ctx, "t", 1, 3, 2); err != nil {
		t.Fatal(err)
	}
	ctrl, err := c.ActiveController(ctx)
	if err != nil || c.Node(ctrl) == nil {
		t.Fatalf("active controller %d: %v", ctrl, err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.DefaultProduceTopic("t"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	n := 0
	produce := func(k int) {
		for range k {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: value(n)}).FirstErr(); err != nil {
				t.Fatalf("produce %d: %v", n, err)
			}
			n++
		}
	}
	produce(100)
	leader, err := c.PartitionLeader(ctx, "t", 0)
	if err != nil {
		t.Fatal(err)
	}
	c.Node(leader).Kill()
	t1 := time.Now()
	produce(1) // waits out the failover
	t.Logf("leader %d killed (controller %d): next acknowledged produce after %v", leader, ctrl, time.Since(t1).Round(time.Millisecond))
	if l, err := c.PartitionLeader(ctx, "t", 0); err != nil || l == leader {
		t.Fatalf("leader after kill: %d (%v), the killed one was %d", l, err, leader)
	}
	produce(100)
	if err := c.Node(leader).Restart(ctx); err != nil {
		t.Fatal(err)
	}
	other := leader%3 + 1
	if err := c.Node(other).Pause(); err != nil {
		t.Fatal(err)
	}
	produce(100) // two of three in sync: acks=all with min ISR 2 goes on
	if err := c.Node(other).Resume(); err != nil {
		t.Fatal(err)
	}
	produce(100)

	cons, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[int]bool{}
	for len(seen) < n && ctx.Err() == nil {
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			i := index(t, r.Value)
			if seen[i] {
				t.Errorf("record %d read twice", i)
			}
			seen[i] = true
		})
	}
	if len(seen) != n {
		t.Fatalf("read back %d of %d acknowledged records", len(seen), n)
	}
}
