package kafkalocal

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// recordSize matches a packet record of the pipeline (~96 B), so rates compare with INFRA.md.
const recordSize = 96

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// value is record i: its index up front, padded to recordSize, so a consumer can check both
// identity and integrity.
func value(i int) []byte {
	b := make([]byte, recordSize)
	copy(b, fmt.Sprintf("rec-%08d-", i))
	for j := 13; j < recordSize; j++ {
		b[j] = byte('a' + (i+j)%26)
	}
	return b
}

func index(t *testing.T, v []byte) int {
	t.Helper()
	if len(v) != recordSize {
		t.Fatalf("record of %d bytes, want %d", len(v), recordSize)
	}
	i, err := strconv.Atoi(string(v[4:12]))
	if err != nil || string(v) != string(value(i)) {
		t.Fatalf("corrupt record %q", v)
	}
	return i
}

// producer is an idempotent (kgo's default), lz4-compressing client, as the collector will be.
func producer(t *testing.T, addr string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ProducerBatchCompression(kgo.Lz4Compression()),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)
	if err != nil {
		t.Fatalf("producer client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produce sends records [from, to) asynchronously and waits for all acks; acked counts them as
// they arrive so a test can act mid-way. It returns the first delivery error.
func produce(ctx context.Context, cl *kgo.Client, topic string, from, to int, acked *atomic.Int64) error {
	var firstErr atomic.Pointer[error]
	for i := from; i < to; i++ {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: value(i)}, func(_ *kgo.Record, err error) {
			if err != nil {
				firstErr.CompareAndSwap(nil, &err)
				return
			}
			if acked != nil {
				acked.Add(1)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	if p := firstErr.Load(); p != nil {
		return *p
	}
	return nil
}

// consumer joins group on topic from the earliest offset, committing only when told to.
func consumer(t *testing.T, addr, group, topic string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	if err != nil {
		t.Fatalf("consumer client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// consumeAtLeast polls until at least n records arrived, failing on duplicates (seen is shared
// across consumers of one test) and on fetch errors. It returns how many it got.
func consumeAtLeast(ctx context.Context, t *testing.T, cl *kgo.Client, n int, seen []bool) int {
	t.Helper()
	got := 0
	for got < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", got, n, err)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			i := index(t, r.Value)
			if i >= len(seen) {
				t.Fatalf("record %d beyond the %d produced", i, len(seen))
			}
			if seen[i] {
				t.Fatalf("record %d delivered twice (partition %d offset %d)", i, r.Partition, r.Offset)
			}
			seen[i] = true
			got++
		})
	}
	return got
}

// endOffsets sums the end offsets of topic's partitions: the number of records in it.
func endOffsets(ctx context.Context, t *testing.T, adm *kadm.Client, topic string) (total int64, parts int) {
	t.Helper()
	offs, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	if err := offs.Error(); err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	offs.Each(func(o kadm.ListedOffset) {
		total += o.Offset
		if o.Offset > 0 {
			parts++
		}
	})
	return total, parts
}

func rate(n int, d time.Duration) string {
	return fmt.Sprintf("%d records in %s = %.0f rec/s", n, d.Round(time.Millisecond), float64(n)/d.Seconds())
}

func adminClient(t *testing.T, addr string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatalf("admin client: %v", err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}
