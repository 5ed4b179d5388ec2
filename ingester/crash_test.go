package ingester

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/packetlake/packetlake/internal/childproc"
	"github.com/packetlake/packetlake/internal/local/chlocal"
	"github.com/packetlake/packetlake/internal/testkit/logbuf"
)

// Exactly once across failures: a stream of >= 200k packets keeps arriving while the ingester
// or ClickHouse is stopped, crashed and restarted; in the end every (host, collector_id, seq)
// is in packets exactly once.

// TestRestartMidStream: Stop + New + Start, three times, while frames arrive. Each Stop revokes
// every partition, so each worker inserts and commits what it holds before the next member
// (the new Ingester) starts at the commit.
func TestRestartMidStream(t *testing.T) {
	topic, stats, group, db := names("restart")
	createTopic(t, topic, 4)
	createTopic(t, stats, 1)
	cfg := testConfig(sharedCH, topic, stats, group, db, WriterArrowHTTP)
	conn := chConn(t, sharedCH.TCPAddr())
	want, done := background(t, topic, 4, 100, 500, 40*time.Millisecond)
	ing := startIngester(t, cfg)
	var inserted, rows uint64
	for i := range 3 {
		rows = waitGrowth(t, conn, db, rows, 20_000) // restart with another 20k rows in
		if err := ing.Stop(); err != nil {
			t.Fatal(err)
		}
		inserted += ing.insertedRows()
		t.Logf("restart %d: %d rows so far", i+1, packetCounts(t, conn, db).Rows)
		ing = startIngester(t, cfg)
	}
	<-done
	waitRows(t, conn, db, want, 2*time.Minute)
	ing.Stop()
	// A graceful handover needs no deduplication: nothing was even sent twice.
	if inserted += ing.insertedRows(); inserted != want.total() {
		t.Errorf("the members inserted %d rows in all, want %d: a batch was sent twice", inserted, want.total())
	}
	checkCommitted(t, group, topic)
}

// TestAbandonedAfterInsert aims at the one window that makes a replay: a batch in ClickHouse
// whose offsets were not committed. The first batches block after their INSERT until the
// revoke deadline gives them up (as a crash would), and the next member must cut and token
// them identically — including batches cut by age, whose end a replay cannot see in the data.
// The rollups fed by the views count every packet once through the replays.
func TestAbandonedAfterInsert(t *testing.T) {
	topic, stats, group, db := names("abandon")
	createTopic(t, topic, 4)
	createTopic(t, stats, 1)
	cfg := testConfig(sharedCH, topic, stats, group, db, WriterNative)
	cfg.FlushRows = 2_000 // 4 frames
	cfg.FlushAge = 150 * time.Millisecond
	cfg.RevokeTimeout = 2 * time.Second
	conn := chConn(t, sharedCH.TCPAddr())

	// Block one batch cut by size and one cut by age, on different partitions (a blocked
	// worker stops its partition, so one each).
	var mu sync.Mutex
	blockedCut, blockedPart := map[cut]string{}, map[string]bool{}
	tokenCh := make(chan string, 2)
	afterInsertHook = func(ctx context.Context, token string, c cut) {
		part := strings.Split(token, "/")[2] // topic/topic id/partition/first-last
		mu.Lock()
		block := strings.HasPrefix(token, topic+"/") && (c == cutSize || c == cutAge) && blockedCut[c] == "" && !blockedPart[part]
		if block {
			blockedCut[c], blockedPart[part] = token, true
		}
		mu.Unlock()
		if block {
			tokenCh <- string(c) + " " + token
			<-ctx.Done() // hold the commit back until the worker is given up
		}
	}
	t.Cleanup(func() { afterInsertHook = nil })

	// A backlog first (batches cut by size), then a trickle slower than FlushAge (batches cut by
	// age), from other collector ids than the trickle's.
	cl := producer(t)
	want := sent{}
	for c := range 4 {
		s := newStream(fmt.Sprintf("host-%d", c), uint64(8000+c))
		var fs [][]byte
		for range 8 {
			fs = append(fs, s.frame(500))
		}
		produce(t, cl, topic, s.host, fs...)
		want.add(s.sent())
	}
	ing := startIngester(t, cfg)
	trickle, done := background(t, topic, 4, 25, 500, 400*time.Millisecond)
	want.add(trickle)
	var tokens []string
	for len(tokens) < 2 {
		select {
		case tok := <-tokenCh:
			tokens = append(tokens, tok)
		case <-time.After(60 * time.Second):
			t.Fatalf("only %v blocked after insert: the test did not reach its window", tokens)
		}
	}
	if err := ing.Stop(); err != nil { // revoke: the blocked workers give up after 2 s, uncommitted
		t.Fatal(err)
	}
	afterInsertHook = nil
	inserted := packetCounts(t, conn, db).Rows
	t.Logf("abandoned uncommitted after insert: %v (%d rows in packets)", tokens, inserted)
	if inserted == 0 {
		t.Fatal("nothing was inserted before the abandon: the test did not reach its window")
	}
	startIngester(t, cfg)
	<-done
	waitRows(t, conn, db, want, 2*time.Minute)
	// The replayed batches ran the views again: the rollups must have dropped them too.
	checkRollupsEqualPackets(t, conn, db)
}

// ingestChild runs `packetlake ingest` as a child process, as deployed, its output to out, with
// env added to its environment (e.g. a test hook) and extra flags overriding; it is killed at
// cleanup, stopped (SIGSTOP) or not.
func ingestChild(t *testing.T, cfg Config, out io.Writer, env []string, extra ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(plBinary, "ingest", "--brokers", cfg.Kafka.Brokers[0], "--group", cfg.Group,
		"--topic", cfg.Topic, "--stats-topic", cfg.StatsTopic, "--database", cfg.ClickHouse.Database,
		"--clickhouse", cfg.ClickHouse.Addr, "--clickhouse-http", cfg.ClickHouse.HTTPAddr,
		"--flush-rows", strconv.Itoa(cfg.FlushRows), "--max-batch-rows", strconv.Itoa(cfg.MaxBatchRows), "--flush-age", cfg.FlushAge.String(),
		"--session-timeout", cfg.SessionTimeout.String(), "--metrics-addr", "")
	cmd.Args = append(cmd.Args, extra...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := childproc.Start(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// TestKillIngestProcess: kill -9 of `packetlake ingest` mid-stream, three times. Nothing is
// flushed or committed on the way out; the next process replays from the last commit.
func TestKillIngestProcess(t *testing.T) {
	topic, stats, group, db := names("kill")
	createTopic(t, topic, 4)
	createTopic(t, stats, 1)
	cfg := testConfig(sharedCH, topic, stats, group, db, WriterArrowHTTP)
	conn := chConn(t, sharedCH.TCPAddr())
	var log logbuf.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ingest log:\n%s", log.String())
		}
	})
	want, done := background(t, topic, 4, 110, 500, 60*time.Millisecond)
	var rows uint64
	for i := range 3 {
		child := ingestChild(t, cfg, &log, nil)
		rows = waitGrowth(t, conn, db, rows, uint64(15_000+5_000*i)) // kill with more rows in than at the last kill
		child.Process.Signal(syscall.SIGKILL)
		child.Wait()
		t.Logf("kill -9 %d: %d rows so far", i+1, packetCounts(t, conn, db).Rows)
	}
	ingestChild(t, cfg, &log, nil)
	<-done
	waitRows(t, conn, db, want, 2*time.Minute)
}

// TestClickHouseKilledMidStream: kill -9 of ClickHouse while inserts are in flight, restarted on
// the same data dir and ports after a pause. The ingester retries with the same tokens,
// pauses fetching meanwhile, and catches up.
func TestClickHouseKilledMidStream(t *testing.T) {
	topic, stats, group, db := names("chkill")
	createTopic(t, topic, 4)
	createTopic(t, stats, 1)
	spawn := ownClickHouse(t)
	ch := spawn(0, 0)
	tcpPort, httpPort := port(t, ch.TCPAddr()), port(t, ch.HTTPAddr())
	cfg := testConfig(ch, topic, stats, group, db, WriterArrowHTTP)
	cfg.MaxQueuedBytes = 1 << 20 // so the outage shows the fetch pause
	ing := startIngester(t, cfg)
	want, done := background(t, topic, 4, 100, 500, 50*time.Millisecond)
	maxPaused := 0.0
	var rows uint64
	for i := range 2 {
		rows = waitGrowth(t, chConn(t, ch.TCPAddr()), db, rows, 10_000) // kill with another 10k rows in
		if err := ch.Kill(); err != nil {
			t.Fatal(err)
		}
		t.Logf("ClickHouse killed (%d)", i+1)
		for range 30 { // 3 s down; frames keep arriving
			maxPaused = max(maxPaused, testutilGauge(ing.metrics.paused))
			time.Sleep(100 * time.Millisecond)
		}
		ch = spawn(tcpPort, httpPort)
	}
	<-done
	waitRows(t, chConn(t, ch.TCPAddr()), db, want, 2*time.Minute)
	retries := 0.0
	for _, table := range []string{"packets", "dead_letters", "collector_stats"} {
		retries += testutilCounter(ing.metrics.insertRetries.WithLabelValues(table))
	}
	t.Logf("insert retries %v, partitions paused at most %v", retries, maxPaused)
	if retries == 0 {
		t.Error("no insert was retried: the kills missed the ingester")
	}
	if maxPaused == 0 {
		t.Error("no partition was paused while ClickHouse was down: fetching is not bounded")
	}
	if p := testutilGauge(ing.metrics.paused); p != 0 {
		t.Errorf("%v partitions still paused after ClickHouse came back", p)
	}
}

// TestClickHouseKilledAfterInsert: ClickHouse dies right after acknowledging a batch whose
// offsets are then never committed; the batch is replayed into the restarted server, whose
// deduplication log (on disk since the INSERT) must drop it.
func TestClickHouseKilledAfterInsert(t *testing.T) {
	topic, stats, group, db := names("chafter")
	createTopic(t, topic, 2)
	createTopic(t, stats, 1)
	spawn := ownClickHouse(t)
	ch := spawn(0, 0)
	tcpPort, httpPort := port(t, ch.TCPAddr()), port(t, ch.HTTPAddr())
	cfg := testConfig(ch, topic, stats, group, db, WriterArrowHTTP)
	cfg.RevokeTimeout = 2 * time.Second
	var once sync.Once
	killed := make(chan string, 1)
	afterInsertHook = func(ctx context.Context, token string, _ cut) {
		if !strings.HasPrefix(token, topic+"/") {
			return
		}
		first := false
		once.Do(func() { first = true })
		if first {
			ch.Kill()
			killed <- token
			<-ctx.Done() // never commit: the next member replays the batch
		}
	}
	t.Cleanup(func() { afterInsertHook = nil })
	want, done := background(t, topic, 2, 100, 1000, 20*time.Millisecond)
	ing := startIngester(t, cfg)
	token := <-killed
	ing.Stop()
	afterInsertHook = nil
	ch = spawn(tcpPort, httpPort)
	conn := chConn(t, ch.TCPAddr())
	t.Logf("killed ClickHouse after acknowledging %s; %d rows survived", token, packetCounts(t, conn, db).Rows)
	startIngester(t, cfg)
	<-done
	waitRows(t, conn, db, want, 2*time.Minute)
}

// ownClickHouse returns a function that starts a ClickHouse of this test's own on one data
// directory (0 ports: pick free ones), killed at cleanup: the kill tests restart it on the
// same directory and ports.
func ownClickHouse(t *testing.T) func(tcp, http int) *chlocal.Process {
	dir := filepath.Join(t.TempDir(), "ch")
	return func(tcp, http int) *chlocal.Process {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		p, err := chlocal.Spawn(ctx, chlocal.SpawnConfig{Binary: plBinary, DataDir: dir, TCPPort: tcp, HTTPPort: http,
			LogPath: filepath.Join(filepath.Dir(dir), "ch.log"), OnUnexpectedExit: chlocal.ReportExit("a test's own ClickHouse")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Kill() })
		return p
	}
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, _ := strings.Cut(addr, ":")
	n := 0
	for _, c := range p {
		n = n*10 + int(c-'0')
	}
	return n
}

// TestRebalance: members join and leave mid-stream; the partitions spread over the members
// and each handover (cooperative revoke: flush, commit, then hand over) loses and doubles
// nothing.
func TestRebalance(t *testing.T) {
	topic, stats, group, db := names("rebalance")
	createTopic(t, topic, 6)
	createTopic(t, stats, 1)
	cfg := testConfig(sharedCH, topic, stats, group, db, WriterArrowHTTP)
	conn := chConn(t, sharedCH.TCPAddr())
	want, done := background(t, topic, 6, 60, 500, 60*time.Millisecond)
	a := startIngester(t, cfg)
	waitGrowth(t, conn, db, 0, 1) // a is ingesting
	b := startIngester(t, cfg)
	// A cooperative rebalance takes two rounds, each noticed at a heartbeat.
	waitSpread(t, 6, map[string]*Ingester{"a": a, "b": b}, topic)
	c := startIngester(t, cfg)
	waitSpread(t, 6, map[string]*Ingester{"a": a, "b": b, "c": c}, topic)
	a.Stop()
	waitSpread(t, 6, map[string]*Ingester{"b": b, "c": c}, topic)
	<-done
	waitRows(t, conn, db, want, 2*time.Minute)
	b.Stop()
	c.Stop()
	if n := a.insertedRows() + b.insertedRows() + c.insertedRows(); n != want.total() {
		t.Errorf("the members inserted %d rows in all, want %d: a handover sent a batch twice", n, want.total())
	}
	checkCommitted(t, group, topic)
}

// waitSpread waits until every member owns some of the n partitions and together all of them.
func waitSpread(t *testing.T, n int, members map[string]*Ingester, topic string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, sum, empty := map[string]int{}, 0, false
		for name, m := range members {
			got[name] = m.assigned(topic)
			sum += got[name]
			empty = empty || got[name] == 0
		}
		if !empty && sum == n {
			t.Logf("partitions spread: %v", got)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("partitions not spread over the members after 30 s: %v of %d", got, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestKafkaKilledMidStream: the broker is killed -9 and restarted while frames flow. The
// client reconnects by itself (errors are counted); uncommitted batches are replayed from the
// last commit the broker kept, with the same tokens.
func TestKafkaKilledMidStream(t *testing.T) {
	topic, stats, group, db := names("kafkakill")
	createTopic(t, topic, 4)
	createTopic(t, stats, 1)
	cfg := testConfig(sharedCH, topic, stats, group, db, WriterArrowHTTP)
	conn := chConn(t, sharedCH.TCPAddr())
	ing := startIngester(t, cfg)
	// The producer's client retries through the outage, as the collector's does.
	want, done := background(t, topic, 4, 100, 500, 50*time.Millisecond)
	waitGrowth(t, conn, db, 0, 10_000) // kill with rows flowing
	kafka.Kill()
	t.Logf("kafka killed at %d rows", packetCounts(t, conn, db).Rows)
	time.Sleep(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := kafka.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	<-done
	waitRows(t, conn, db, want, 2*time.Minute)
	errs := testutilCounter(ing.metrics.kafkaErrors.WithLabelValues("connect")) + testutilCounter(ing.metrics.kafkaErrors.WithLabelValues("fetch"))
	t.Logf("kafka errors counted: %v", errs)
	if errs == 0 {
		t.Error("no Kafka error was counted during the outage")
	}
}
