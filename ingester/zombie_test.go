package ingester

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/packetlake/packetlake/internal/testkit/logbuf"
)

// TestZombieMember: member A, a `packetlake ingest` process, holds its first batch (test hook,
// testhooks_on.go) and is stopped with SIGSTOP past its session timeout; the group gives the
// partition to member B, which cuts batches of another size (as a rolling change of
// --flush-rows would) and ingests everything; then A is continued and goes on with its batch.
// Stopped before its claim, A's claim is refused and it never inserts; stopped after its claim
// was accepted, B finds the claim and cuts its first batch at the claimed range, so A's late
// INSERT carries B's token and ClickHouse drops it. Either way every packet is stored once.
func TestZombieMember(t *testing.T) {
	for _, point := range []string{"before-claim", "claimed"} {
		t.Run(point, func(t *testing.T) {
			topic, stats, group, db := names("zombie")
			createTopic(t, topic, 1)
			createTopic(t, stats, 1)
			conn := chConn(t, sharedCH.TCPAddr())
			s := newStream("host-z", 77)
			var fs [][]byte
			for range 20 {
				fs = append(fs, s.frame(500))
			}
			produce(t, producer(t), topic, s.host, fs...)

			cfg := testConfig(sharedCH, topic, stats, group, db, WriterArrowHTTP)
			cfg.FlushRows = 2_000 // A: 4 frames a batch
			var logA logbuf.Buffer
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("member A's log:\n%s", logA.String())
				}
			})
			a := ingestChild(t, cfg, &logA, "PACKETLAKE_TEST_HOLD="+point+":"+topic)
			pid := a.Process.Pid
			held := waitLog(t, &logA, "test hook: holding batch", time.Minute)
			if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { syscall.Kill(pid, syscall.SIGCONT) }) // before ingestChild's kill
			t.Logf("A stopped: %s", held)

			cfgB := cfg
			cfgB.FlushRows = 5_000 // B: 10 frames a batch
			b := startIngester(t, cfgB)
			waitRows(t, conn, db, s.sent(), time.Minute) // B took over (after A's 6 s session) and has it all
			replayed := testutilCounter(b.metrics.batches.WithLabelValues(topic, string(cutReplay)))

			if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			gave := waitLog(t, &logA, "uncommitted for the next owner", time.Minute)
			t.Logf("A continued: %s", gave)
			waitRows(t, conn, db, s.sent(), time.Minute)
			refusals := strings.Count(logA.String(), "refused by the group")
			t.Logf("B replayed %v claimed batch(es); A's log shows %d refusals", replayed, refusals)
			if point == "claimed" && replayed != 1 {
				t.Errorf("B replayed %v claimed batches, want A's one", replayed)
			}
			if point == "before-claim" && replayed != 0 {
				t.Errorf("B replayed %v claimed batches, but A never claimed", replayed)
			}
		})
	}
}

// waitLog waits until buf holds a line containing s and returns that line.
func waitLog(t *testing.T, buf *logbuf.Buffer, s string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for line := range strings.Lines(buf.String()) {
			if strings.Contains(line, s) {
				return strings.TrimSpace(line)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q after %v", s, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
