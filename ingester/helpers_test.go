package ingester

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// testutilCounter reads a counter's value.
func testutilCounter(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}

// assigned counts the partitions of topic this member has a worker for.
func (ing *Ingester) assigned(topic string) int {
	ing.mu.Lock()
	defer ing.mu.Unlock()
	n := 0
	for tp := range ing.workers {
		if tp.topic == topic {
			n++
		}
	}
	return n
}

// testutilGauge reads a gauge's value.
func testutilGauge(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return 0
	}
	return m.GetGauge().GetValue()
}

// insertedRows is how many rows this member had acknowledged by ClickHouse into packets,
// replays included: summed over the members of a graceful handover it equals what was
// produced only if no batch was ever sent twice.
func (ing *Ingester) insertedRows() uint64 {
	return uint64(testutilCounter(ing.metrics.rowsInserted.WithLabelValues("packets")))
}

// checkCommitted fails unless the group's committed offset of every partition of topic is the
// partition's end: everything consumed was committed, nothing is left to replay.
func checkCommitted(t *testing.T, group, topic string) {
	t.Helper()
	adm := admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(e kadm.ListedOffset) {
		c, ok := committed.Lookup(topic, e.Partition)
		if e.Offset == 0 && !ok {
			return // an empty partition has nothing to commit
		}
		if !ok || c.At != e.Offset {
			t.Errorf("%s/%d: committed %d (found %v), end %d", topic, e.Partition, c.At, ok, e.Offset)
		}
	})
}

// admin is an admin client of the test broker, closed at the end of the test.
func admin(t *testing.T) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// waitCount polls q, a SELECT count(), until it reaches n or timeout passes; the caller checks
// what it finds then.
func waitCount(t testing.TB, conn driver.Conn, q string, n uint64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for queryCount(t, conn, q) < n && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
}

// deadLetterRow is a dead_letters row as the tests check it.
type deadLetterRow struct {
	Partition int32  `ch:"partition"`
	Offset    int64  `ch:"offset"`
	Error     string `ch:"error"`
	Raw       string `ch:"raw"`
}

// readDeadLetters waits until dead_letters holds n rows (of any topic), then returns topic's,
// by offset.
func readDeadLetters(t testing.TB, conn driver.Conn, db, topic string, n int) []deadLetterRow {
	t.Helper()
	waitCount(t, conn, "SELECT count() FROM "+db+".dead_letters", uint64(n), 30*time.Second)
	var got []deadLetterRow
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := conn.Select(ctx, &got, "SELECT `partition`, `offset`, error, raw FROM "+db+".dead_letters WHERE topic = ? ORDER BY `offset`", topic); err != nil {
		t.Fatal(err)
	}
	return got
}
