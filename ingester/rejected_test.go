package ingester

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Frames that decode fine but that ClickHouse refuses for good: the batch holding them is
// bisected, the refused frames go to dead_letters with the server's error, every other row lands
// once, and the partition commits past them.

const rejectedHost = "host-rejected" // the test's CHECK constraint refuses this host's rows

// rejectingDB starts an ingester (which applies the migrations) and then adds a CHECK constraint
// to packets that refuses rejectedHost: ClickHouse's own VIOLATED_CONSTRAINT, for frames the
// ingester decodes without complaint.
func rejectingDB(t *testing.T, cfg Config) (*Ingester, driver.Conn) {
	t.Helper()
	ing := startIngester(t, cfg)
	conn := chConn(t, cfg.ClickHouse.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := conn.Exec(ctx, "ALTER TABLE "+cfg.ClickHouse.Database+".packets ADD CONSTRAINT no_rejected_host CHECK host != '"+rejectedHost+"'"); err != nil {
		t.Fatal(err)
	}
	return ing, conn
}

// produceWithRejected produces goodFrames frames of perFrame packets of one good collector and,
// after frames at the given indexes, a frame of rejectedHost. It returns the good packet count
// and the rejected frames as Kafka acknowledged them (with their offsets).
func produceWithRejected(t *testing.T, topic string, goodFrames, perFrame int, after ...int) (uint64, []*kgo.Record) {
	t.Helper()
	good, bad := newStream("host-good", 4242), newStream(rejectedHost, 6666)
	var values [][]byte
	var badIdx []int
	for i := range goodFrames {
		values = append(values, good.frame(perFrame))
		for _, a := range after {
			if a == i {
				badIdx = append(badIdx, len(values))
				values = append(values, bad.frame(perFrame))
			}
		}
	}
	rs := produce(t, producer(t), topic, "one-partition", values...)
	var rejected []*kgo.Record
	for _, i := range badIdx {
		rejected = append(rejected, rs[i])
	}
	return uint64(goodFrames * perFrame), rejected
}

// checkRejected waits for the rejected frames in dead_letters and checks them: where they came
// from, their bytes, and ClickHouse's error.
func checkRejected(t *testing.T, conn driver.Conn, db, topic string, want []*kgo.Record) {
	t.Helper()
	got := readDeadLetters(t, conn, db, topic, len(want))
	if len(got) != len(want) {
		t.Fatalf("dead_letters holds %d frames, want the %d rejected ones", len(got), len(want))
	}
	for i, d := range got {
		r := want[i]
		if d.Partition != r.Partition || d.Offset != r.Offset || !bytes.Equal([]byte(d.Raw), r.Value) ||
			!strings.Contains(d.Error, "VIOLATED_CONSTRAINT") {
			t.Errorf("dead letter %d: partition %d offset %d, %d raw bytes, error %q; want partition %d offset %d, the %d bytes produced and ClickHouse's VIOLATED_CONSTRAINT",
				i, d.Partition, d.Offset, len(d.Raw), d.Error, r.Partition, r.Offset, len(r.Value))
		}
	}
	t.Logf("dead letter error: %.200s", got[0].Error)
}

// checkGoodRows checks that packets holds exactly the good collector's seqs 0..n-1, once each,
// and none of the rejected host.
func checkGoodRows(t *testing.T, conn driver.Conn, db string, n uint64) {
	t.Helper()
	waitRows(t, conn, db, sent{{"host-good", 4242}: n}, time.Minute)
}

// TestRejectedFrames: two frames ClickHouse refuses among 40 good ones, in one batch; both
// writers (ClickHouse's error arrives as HTTP text with arrow-http, as an exception with native).
func TestRejectedFrames(t *testing.T) {
	for _, writer := range []string{WriterArrowHTTP, WriterNative} {
		t.Run(writer, func(t *testing.T) {
			topic, stats, group, db := names("rejected")
			createTopic(t, topic, 1)
			createTopic(t, stats, 1)
			cfg := testConfig(sharedCH, topic, stats, group, db, writer)
			cfg.PoisonRetries = 2
			ing, conn := rejectingDB(t, cfg)
			good, rejected := produceWithRejected(t, topic, 40, 300, 9, 27)
			checkGoodRows(t, conn, db, good)
			checkRejected(t, conn, db, topic, rejected)
			checkCommitted(t, group, topic)
			if n := testutilCounter(ing.metrics.rejected.WithLabelValues(topic)); n != 2 {
				t.Errorf("rejected_records_total = %v, want 2", n)
			}
			if err := ing.Ready(); err != nil {
				t.Errorf("not ready after isolating the rejected frames: %v", err)
			}
		})
	}
}

// TestRejectedCrashMidBisect: the member is given up (as by a crash) right after the first half
// of a bisected batch landed, uncommitted. The next member retries the batch, bisects it at the
// same points with the same derived tokens, and ClickHouse drops the half it already has.
func TestRejectedCrashMidBisect(t *testing.T) {
	topic, stats, group, db := names("rejcrash")
	createTopic(t, topic, 1)
	createTopic(t, stats, 1)
	cfg := testConfig(sharedCH, topic, stats, group, db, WriterArrowHTTP)
	cfg.PoisonRetries = 2
	cfg.RevokeTimeout = 2 * time.Second
	var once sync.Once
	landed := make(chan string, 1)
	bisectInsertHook = func(ctx context.Context, token string) {
		if !strings.Contains(token, topic) {
			return
		}
		first := false
		once.Do(func() { first = true })
		if first {
			landed <- token
			<-ctx.Done() // never finish the bisection: the next member replays the batch
		}
	}
	t.Cleanup(func() { bisectInsertHook = nil })
	ing, conn := rejectingDB(t, cfg)
	good, rejected := produceWithRejected(t, topic, 40, 300, 5, 33)
	var token string
	select {
	case token = <-landed:
	case <-time.After(time.Minute):
		t.Fatal("no bisect insert landed within a minute")
	}
	ing.Stop() // revoke: the blocked worker gives up after RevokeTimeout, uncommitted
	bisectInsertHook = nil
	before := packetCounts(t, conn, db).Rows
	t.Logf("given up after %s landed: %d rows in packets", token, before)
	if before == 0 || before >= good {
		t.Fatalf("%d rows before the replay: the test did not stop mid-bisect", before)
	}
	startIngester(t, cfg)
	checkGoodRows(t, conn, db, good)
	checkRejected(t, conn, db, topic, rejected)
	checkCommitted(t, group, topic)
}
