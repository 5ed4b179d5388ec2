package ingester

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// growConfig is testConfig with batches that grow while behind: FlushRows 2000, frames of
// 1000 packets, FlushAge long enough that only a size, cap, budget or revoke cuts a batch.
func growConfig(topic, group, db string, maxRows, budget int) Config {
	cfg := testConfig(sharedCH, topic, "", group, db, WriterArrowHTTP)
	cfg.StatsTopic = ""
	cfg.FlushRows, cfg.FlushAge = 2000, time.Minute
	cfg.MaxBatchRows, cfg.GrowBudget = maxRows, budget
	return cfg
}

// backlog produces frames frames of 1000 packets to topic (one collector per partition key)
// before any ingester runs, and returns what was sent.
func backlog(t *testing.T, topic string, collectors, frames int) sent {
	cl, want := producer(t), sent{}
	for c := range collectors {
		host := fmt.Sprintf("host-%d", c)
		s := newStream(host, uint64(1000+c))
		var fs [][]byte
		for range frames {
			fs = append(fs, s.frame(1000))
		}
		produce(t, cl, topic, host, fs...)
		want.add(s.sent())
	}
	return want
}

func (ing *Ingester) cuts(topic string, c cut) float64 {
	return testutilCounter(ing.metrics.batches.WithLabelValues(topic, string(c)))
}

// TestGrowBacklog: a backlog of 40 frames in one partition is stored in batches of
// MaxBatchRows (10 frames), not FlushRows (2), exactly once.
func TestGrowBacklog(t *testing.T) {
	topic, _, group, db := names("grow")
	createTopic(t, topic, 1)
	want := backlog(t, topic, 1, 40)
	ing := startIngester(t, growConfig(topic, group, db, 10_000, 64<<20))
	conn := chConn(t, sharedCH.TCPAddr())
	waitRows(t, conn, db, want, time.Minute)
	ing.Stop()
	checkExactlyOnce(t, conn, db, want)
	checkCommitted(t, group, topic)
	capped, size := ing.cuts(topic, cutCap), ing.cuts(topic, cutSize)
	// The fetches bring a few frames each; while the high watermark is ahead the batch waits
	// for the next instead of being cut at 2 frames. The last batch is cut caught up (size).
	if capped < 3 || capped+size > 5 {
		t.Errorf("cuts: %v at the cap, %v by size; want 3-4 batches of 10 frames and the rest", capped, size)
	}
	if g := ing.grown.Load(); g != 0 {
		t.Errorf("%d bytes still reserved on the budget after the last flush", g)
	}
}

// TestGrowTrickle: frames produced one at a time, each fetched before the next is sent, are
// cut at FlushRows as soon as the partition has caught up, not held for FlushAge (ten minutes
// here) or grown: a trickle keeps today's latency.
func TestGrowTrickle(t *testing.T) {
	topic, _, group, db := names("growtrickle")
	createTopic(t, topic, 1)
	cfg := growConfig(topic, group, db, 100_000, 64<<20)
	cfg.FlushAge = 10 * time.Minute // far beyond the wait below: only a cut at FlushRows stores rows
	ing := startIngester(t, cfg)
	conn := chConn(t, sharedCH.TCPAddr())
	cl, s := producer(t), newStream("host-0", 1000)
	for i := range 20 {
		produce(t, cl, topic, "host-0", s.frame(1000))
		// Wait until the worker has the frame: the next one arrives to a caught-up partition.
		deadline := time.Now().Add(30 * time.Second)
		for testutilCounter(ing.metrics.kafkaRecords.WithLabelValues(topic)) < float64(i+1) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Everything but at most the last frame is in full batches, cut at once (FlushAge is ten
	// minutes away: a batch held for it would fail this wait).
	waitCount(t, conn, "SELECT count() FROM "+db+".packets", 19_000, 2*time.Minute)
	if n := queryCount(t, conn, "SELECT count() FROM "+db+".packets"); n < 19_000 {
		t.Errorf("%d rows stored before FlushAge, want at least 19000: full batches of a caught-up partition were held", n)
	}
	ing.Stop()
	checkExactlyOnce(t, conn, db, s.sent())
	if c := ing.cuts(topic, cutCap) + ing.cuts(topic, cutBudget); c != 0 {
		t.Errorf("%v batches grew on a trickle", c)
	}
}

// TestGrowBudget: four partitions' backlogs with a cap no batch reaches and a budget of two
// frames: the bytes held past FlushRows never exceed the budget, batches are cut by it, every
// row lands once, and the reservation is all given back.
func TestGrowBudget(t *testing.T) {
	topic, _, group, db := names("growbudget")
	createTopic(t, topic, 4)
	want := backlog(t, topic, 4, 20)
	frame := len(newStream("x", 1).frame(1000))
	budget := 2 * frame
	cfg := growConfig(topic, group, db, 1_000_000, budget)
	cfg.FlushAge = 2 * time.Second // a partition's last frame, alone after a budget cut, is cut by age
	ing := startIngester(t, cfg)
	var peak int64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { // sampled; grow.go checks every reservation against the budget before keeping it
		defer close(done)
		for {
			peak = max(peak, ing.grown.Load())
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	conn := chConn(t, sharedCH.TCPAddr())
	waitRows(t, conn, db, want, time.Minute)
	close(stop)
	<-done
	ing.Stop()
	checkExactlyOnce(t, conn, db, want)
	if peak > int64(budget) {
		t.Errorf("%d bytes held past FlushRows at peak, budget %d", peak, budget)
	}
	if ing.cuts(topic, cutBudget) == 0 {
		t.Errorf("no batch was cut by the budget")
	}
	if g := ing.grown.Load(); g != 0 {
		t.Errorf("%d bytes still reserved on the budget after the last flush", g)
	}
}

// TestGrowReplay: a batch grown to the cap on a backlog, inserted but abandoned before its
// commit (as a crash leaves it), is replayed by a member that grows nothing and cuts at
// another FlushRows: the claim makes it cut the very same range, so ClickHouse drops the
// replay by its token and every packet and rollup row counts once.
func TestGrowReplay(t *testing.T) {
	topic, _, group, db := names("growreplay")
	createTopic(t, topic, 1)
	want := backlog(t, topic, 1, 20)
	cfg := growConfig(topic, group, db, 8_000, 64<<20) // cap: 8 frames
	cfg.RevokeTimeout = 2 * time.Second
	held := make(chan string, 1)
	afterInsertHook = func(ctx context.Context, token string, c cut) {
		if c == cutCap && strings.HasPrefix(token, topic+"/") {
			select {
			case held <- token:
				<-ctx.Done() // hold the commit back until the worker is given up
			default:
			}
		}
	}
	t.Cleanup(func() { afterInsertHook = nil })
	ing := startIngester(t, cfg)
	var token string
	select {
	case token = <-held:
	case <-time.After(time.Minute):
		t.Fatal("no batch was cut at the cap")
	}
	if err := ing.Stop(); err != nil { // revoke: the held worker gives up after 2 s, uncommitted
		t.Fatal(err)
	}
	afterInsertHook = nil
	conn := chConn(t, sharedCH.TCPAddr())
	if n := queryCount(t, conn, "SELECT count() FROM "+db+".packets"); n != 8_000 {
		t.Fatalf("%d rows after the held batch %s, want its 8000", n, token)
	}
	cfgB := cfg
	cfgB.FlushRows, cfgB.MaxBatchRows = 3_000, 0
	b := startIngester(t, cfgB)
	waitRows(t, conn, db, want, time.Minute)
	b.Stop()
	if r := b.cuts(topic, cutReplay); r != 1 {
		t.Errorf("the second member replayed %v claimed batches, want the held one (%s)", r, token)
	}
	checkRollupsEqualPackets(t, conn, db)
	checkCommitted(t, group, topic)
}
