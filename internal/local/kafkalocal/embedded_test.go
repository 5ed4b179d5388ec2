package kafkalocal

import (
	"context"
	"strings"
	"testing"
	"time"
)

func startEmbedded(t *testing.T, dir string) *Embedded {
	t.Helper()
	e, err := StartEmbedded(EmbeddedConfig{DataDir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(e.Stop)
	return e
}

func TestEmbeddedProduceConsume(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	e := startEmbedded(t, t.TempDir())
	const topic, n = "packets", 100_000
	if err := CreateTopic(ctx, e.Addr(), topic, 3); err != nil {
		t.Fatal(err)
	}
	if err := CreateTopic(ctx, e.Addr(), topic, 3); err != nil {
		t.Fatalf("second CreateTopic must be a no-op: %v", err)
	}
	start := time.Now()
	if err := produce(ctx, producer(t, e.Addr()), topic, 0, n, nil); err != nil {
		t.Fatalf("produce: %v", err)
	}
	t.Logf("kfake produce (SyncWrites, idempotent, lz4, %d B): %s", recordSize, rate(n, time.Since(start)))
	start = time.Now()
	seen := make([]bool, n)
	if got := consumeAtLeast(ctx, t, consumer(t, e.Addr(), "g", topic), n, seen); got != n {
		t.Fatalf("consumed %d, want exactly %d", got, n)
	}
	t.Logf("kfake consume (group, incl. join): %s", rate(n, time.Since(start)))
}

// TestEmbeddedPersistence stops kfake and starts it again on the same data dir: records and the
// group's committed offsets must still be there.
func TestEmbeddedPersistence(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	const topic, group, n = "packets", "g", 20_000
	seen := make([]bool, n)

	e := startEmbedded(t, dir)
	if err := CreateTopic(ctx, e.Addr(), topic, 3); err != nil {
		t.Fatal(err)
	}
	prod := producer(t, e.Addr())
	if err := produce(ctx, prod, topic, 0, n, nil); err != nil {
		t.Fatalf("produce: %v", err)
	}
	c1 := consumer(t, e.Addr(), group, topic)
	committed := consumeAtLeast(ctx, t, c1, 5_000, seen)
	if err := c1.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	c1.Close()
	prod.Close()
	e.Stop()

	e = startEmbedded(t, dir)
	if total, parts := endOffsets(ctx, t, adminClient(t, e.Addr()), topic); total != n || parts != 3 {
		t.Fatalf("after restart the topic holds %d records in %d partitions, want %d in 3", total, parts, n)
	}
	if got := consumeAtLeast(ctx, t, consumer(t, e.Addr(), group, topic), n-committed, seen); got != n-committed {
		t.Fatalf("resumed consumer got %d, want exactly %d (committed offsets lost?)", got, n-committed)
	}
}

func TestEmbeddedDataDirInUse(t *testing.T) {
	dir := t.TempDir()
	startEmbedded(t, dir)
	_, err := StartEmbedded(EmbeddedConfig{DataDir: dir})
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second kfake on one data dir: got %v, want an 'in use' error", err)
	}
}
