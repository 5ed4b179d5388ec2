package kafkalocal

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// startApache starts a real broker in a fresh data dir, with jars from the shared cache. A
// missing java or mvn fails the test with the fix in the message: these tests never skip.
func startApache(ctx context.Context, t *testing.T) *Apache {
	t.Helper()
	begin := time.Now()
	a, err := StartApache(ctx, ApacheConfig{DataDir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("StartApache: %v", err)
	}
	t.Cleanup(a.Stop)
	t.Logf("apache kafka %s started at %s in %s (incl. storage format)", KafkaVersion, a.Addr(), time.Since(begin).Round(time.Millisecond))
	return a
}

func TestApacheProduceConsume100k(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	a := startApache(ctx, t)
	const topic, n = "packets", 100_000
	if err := CreateTopic(ctx, a.Addr(), topic, 3); err != nil {
		t.Fatal(err)
	}
	if err := CreateTopic(ctx, a.Addr(), topic, 3); err != nil {
		t.Fatalf("second CreateTopic must be a no-op: %v", err)
	}

	start := time.Now()
	if err := produce(ctx, producer(t, a.Addr()), topic, 0, n, nil); err != nil {
		t.Fatalf("produce: %v", err)
	}
	t.Logf("apache produce (idempotent, lz4, %d B): %s", recordSize, rate(n, time.Since(start)))

	adm := adminClient(t, a.Addr())
	total, parts := endOffsets(ctx, t, adm, topic)
	if total != n || parts != 3 {
		t.Fatalf("topic holds %d records in %d partitions, want %d in 3", total, parts, n)
	}

	start = time.Now()
	seen := make([]bool, n)
	c := consumer(t, a.Addr(), "g-100k", topic)
	if got := consumeAtLeast(ctx, t, c, n, seen); got != n {
		t.Fatalf("consumed %d records, want exactly %d", got, n)
	}
	t.Logf("apache consume (group, incl. join): %s", rate(n, time.Since(start)))
	if err := c.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}

	// A clean restart keeps the data; the admin client from before reconnects to the same address.
	start = time.Now()
	if err := a.Restart(ctx); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	t.Logf("clean restart (SIGTERM, start) took %s", time.Since(start).Round(time.Millisecond))
	if total, _ := endOffsets(ctx, t, adm, topic); total != n {
		t.Fatalf("after a clean restart the topic holds %d records, want %d", total, n)
	}
}

// TestApacheKillRestart crashes the broker with kill -9 while an idempotent producer has records
// in flight, restarts it on the same address, and checks that the clients created before the
// crash carry on, that nothing acknowledged or committed is lost and nothing is duplicated.
func TestApacheKillRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	a := startApache(ctx, t)
	const topic, group, half, n = "crash", "g-crash", 50_000, 100_000
	if err := CreateTopic(ctx, a.Addr(), topic, 3); err != nil {
		t.Fatal(err)
	}
	prod, adm := producer(t, a.Addr()), adminClient(t, a.Addr())
	if err := produce(ctx, prod, topic, 0, half, nil); err != nil {
		t.Fatalf("produce first half: %v", err)
	}

	// A first consumer reads part of the data, commits, and leaves.
	seen := make([]bool, n)
	c1 := consumer(t, a.Addr(), group, topic)
	committed := consumeAtLeast(ctx, t, c1, 20_000, seen)
	if err := c1.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	c1.Close()

	// Second half in flight; kill -9 once a fifth of it is acknowledged.
	var acked atomic.Int64
	prodDone := make(chan error, 1)
	go func() { prodDone <- produce(ctx, prod, topic, half, n, &acked) }()
	for acked.Load() < 10_000 {
		time.Sleep(time.Millisecond)
	}
	pid := a.Pid()
	a.Kill()
	ackedAtKill := acked.Load()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("pid %d still exists after Kill: %v", pid, err)
	}
	time.Sleep(time.Second) // the clients see a dead broker for a while

	start := time.Now()
	if err := a.Restart(ctx); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	t.Logf("restart after kill -9 (pid %d -> %d): ready in %s; %d of %d second-half records acked at kill",
		pid, a.Pid(), time.Since(start).Round(time.Millisecond), ackedAtKill, n-half)
	if err := <-prodDone; err != nil {
		t.Fatalf("producer created before the crash failed instead of reconnecting: %v", err)
	}
	t.Logf("producer finished %s after restart", time.Since(start).Round(time.Millisecond))

	// Exactly n records: nothing acknowledged lost, no retried batch written twice.
	if total, _ := endOffsets(ctx, t, adm, topic); total != n {
		t.Fatalf("after crash the topic holds %d records, want exactly %d", total, n)
	}
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch committed offsets: %v", err)
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Err != nil {
			t.Fatalf("committed offset %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		sum += o.At
	})
	if sum != int64(committed) {
		t.Fatalf("committed offsets after crash sum to %d, want %d", sum, committed)
	}

	// A new member of the group resumes at the committed offsets and gets exactly the rest.
	c2 := consumer(t, a.Addr(), group, topic)
	if got := consumeAtLeast(ctx, t, c2, n-committed, seen); got != n-committed {
		t.Fatalf("resumed consumer got %d records, want exactly %d", got, n-committed)
	}
	for i, ok := range seen {
		if !ok {
			t.Fatalf("record %d never consumed", i)
		}
	}
}

func TestApachePortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	_, err = StartApache(t.Context(), ApacheConfig{DataDir: t.TempDir(), Port: port})
	if err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("StartApache on a taken port: got %v, want an 'already in use' error", err)
	}
}

// TestApacheDiesAtStartup checks that a broker that cannot start is reported at once, with the
// reason from its log, rather than after the start timeout.
func TestApacheDiesAtStartup(t *testing.T) {
	dir := t.TempDir()
	logDirs := filepath.Join(dir, "kraft-logs")
	if err := os.MkdirAll(logDirs, 0o755); err != nil {
		t.Fatal(err)
	}
	// A log dir formatted for another node: KRaft refuses it.
	meta := "cluster.id=" + "AAAAAAAAAAAAAAAAAAAAAQ\nnode.id=7\nversion=1\ndirectory.id=AAAAAAAAAAAAAAAAAAAAAg\n"
	if err := os.WriteFile(filepath.Join(logDirs, "meta.properties"), []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := StartApache(t.Context(), ApacheConfig{DataDir: dir, Logger: testLogger(t)})
	if err == nil || !strings.Contains(err.Error(), "exited during startup") || !strings.Contains(err.Error(), "node id") {
		t.Fatalf("StartApache on a foreign log dir: got %v, want 'exited during startup' with the log's reason", err)
	}
	t.Logf("failed start reported in %s:\n%v", time.Since(start).Round(time.Millisecond), err)
}
