package ingester

import (
	"context"
	"regexp"
	"strconv"
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
//   - before-claim: A's claim is refused, it never inserts.
//   - claimed (stopped before its INSERT went out): B finds the claim and cuts its first batch
//     at the claimed range, so an INSERT of A's arriving late would carry B's token.
//   - inserted (stopped once its INSERT was acknowledged, before the commit): B's replay of the
//     claimed range carries A's token and ClickHouse drops it.
//
// Every packet is stored once in each. Before claims, B cut 10 frames where A had cut 4, and
// A's 4 frames were stored twice.
func TestZombieMember(t *testing.T) {
	for _, point := range []string{"before-claim", "claimed", "inserted"} {
		t.Run(point, func(t *testing.T) {
			t.Parallel() // most of each is waiting for A's session to expire
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
			// Not grown while behind (grow.go): A's held batch must leave frames for B to cut
			// its own way, or B would find everything stored by A before it took over.
			cfg.MaxBatchRows = 0
			var logA logbuf.Buffer
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("member A's log:\n%s", logA.String())
				}
			})
			// At debug level franz-go logs each join with the member ID and generation.
			a := ingestChild(t, cfg, &logA, []string{"PACKETLAKE_TEST_HOLD=" + point + ":" + topic, "PACKETLAKE_LOG_LEVEL=debug"})
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

			// The fence itself: A's claim, sent as A was when it stopped, is refused. (Whether A's
			// own worker gets to send it after SIGCONT, or franz-go's heartbeat tells it first
			// that the partition is lost, is a race; either way A must not insert.)
			member, gen := lastJoin(t, logA.String())
			err := commitAs(context.Background(), producer(t), group, member, gen, topic, [16]byte{}, 0, 0, -1, "pl1 "+strings.Split(held, "/")[1]+" 0-3")
			if !fenced(err) {
				t.Fatalf("A's claim as member %s of generation %d: %v; want a refusal by the group", member, gen, err)
			}
			t.Logf("A's claim as member %s of generation %d: %v", member, gen, err)

			if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			gave := waitLog(t, &logA, "uncommitted for the next owner", time.Minute)
			t.Logf("A continued: %s", gave)
			waitRows(t, conn, db, s.sent(), time.Minute)
			refusals := strings.Count(logA.String(), "refused by the group")
			t.Logf("B replayed %v claimed batch(es); A's log shows %d refusals", replayed, refusals)
			if point != "before-claim" && replayed != 1 {
				t.Errorf("B replayed %v claimed batches, want A's one", replayed)
			}
			if point == "before-claim" && replayed != 0 {
				t.Errorf("B replayed %v claimed batches, but A never claimed", replayed)
			}
		})
	}
}

// lastJoin returns the member ID and generation of franz-go's last "joined" line in log.
func lastJoin(t *testing.T, log string) (string, int32) {
	t.Helper()
	re := regexp.MustCompile(`msg="?joined.* member_id=(\S+).* generation=(\d+)`)
	var m []string
	for line := range strings.Lines(log) {
		if mm := re.FindStringSubmatch(line); mm != nil {
			m = mm
		}
	}
	if m == nil {
		t.Fatal("no group join in the member's log")
	}
	gen, _ := strconv.Atoi(m[2])
	return m[1], int32(gen)
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
