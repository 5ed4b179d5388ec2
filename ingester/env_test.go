package ingester

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/packetlake/packetlake/internal/chconn"
	"github.com/packetlake/packetlake/internal/local/chlocal"
	"github.com/packetlake/packetlake/internal/local/kafkalocal"
)

// The tests run the real thing: Apache Kafka (a JVM child, kafkalocal) and ClickHouse (a
// `packetlake clickhouse-local` child, chlocal), both shared by the tests of this package, each
// test on its own topics, group and database. Tests that crash ClickHouse start their own.
// Missing prerequisites (java, mvn, npm, the downloads) fail TestMain loudly; nothing skips.

var (
	plBinary string // the packetlake binary, built once with the test hooks (testhooks_on.go)
	tmpRoot  string // per-run scratch
	sharedCH *chlocal.Process
	kafka    *kafkalocal.Apache
	uniq     atomic.Int64 // suffix for topic, group and database names
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	flag.Parse()
	if goOnly() {
		return m.Run()
	}
	fail := func(what string, err error) int {
		fmt.Fprintf(os.Stderr, "FAIL: %s: %v\n", what, err)
		return 1
	}
	var err error
	if tmpRoot, err = os.MkdirTemp("", "ingester-test-"); err != nil {
		return fail("temp dir", err)
	}
	if os.Getenv("PACKETLAKE_TEST_KEEP") == "" {
		defer os.RemoveAll(tmpRoot)
	} else {
		fmt.Fprintln(os.Stderr, "keeping", tmpRoot)
	}
	plBinary = filepath.Join(tmpRoot, "packetlake")
	if out, err := exec.Command("go", "build", "-tags", "testhooks", "-o", plBinary, "github.com/packetlake/packetlake/cmd/packetlake").CombinedOutput(); err != nil {
		return fail("build packetlake", fmt.Errorf("%v\n%s", err, out))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	sharedCH, err = chlocal.Spawn(ctx, chlocal.SpawnConfig{Binary: plBinary, DataDir: filepath.Join(tmpRoot, "ch"), LogPath: filepath.Join(tmpRoot, "ch.log"),
		OnUnexpectedExit: chlocal.ReportExit("the shared ClickHouse")})
	if err != nil {
		return fail("start ClickHouse", err)
	}
	defer sharedCH.Kill()
	kafka, err = kafkalocal.StartApache(ctx, kafkalocal.ApacheConfig{DataDir: filepath.Join(tmpRoot, "kafka"),
		// Retention runs every 5 min by default, the first time 30 s after the start;
		// TestKafkaRetentionGap waits for it. Topics without a retention of their own keep 7
		// days: nothing else is touched.
		Properties: map[string]string{"log.retention.check.interval.ms": "500", "log.initial.task.delay.ms": "0"}})
	if err != nil {
		return fail("start Apache Kafka", err)
	}
	defer kafka.Kill() // the data dir is thrown away: no need for a clean shutdown
	return m.Run()
}

// goOnly says the run is BenchmarkRowPath alone (-run '^$' -bench RowPath): it measures the
// ingester's Go CPU, which an idle Kafka JVM and ClickHouse on the same 2 cores would disturb.
func goOnly() bool {
	run, bench := flag.Lookup("test.run").Value.String(), flag.Lookup("test.bench").Value.String()
	return run == "^$" && strings.Contains(bench, "RowPath") && !strings.Contains(bench, "|")
}

// names returns fresh topic, stats topic, group and database names for one test.
func names(prefix string) (topic, stats, group, db string) {
	n := uniq.Add(1)
	return fmt.Sprintf("%s-packets-%d", prefix, n), fmt.Sprintf("%s-stats-%d", prefix, n),
		fmt.Sprintf("%s-group-%d", prefix, n), fmt.Sprintf("%s_%d", prefix, n)
}

func createTopic(t testing.TB, name string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := kafkalocal.CreateTopic(ctx, kafka.Addr(), name, partitions); err != nil {
		t.Fatal(err)
	}
}

func chConn(t testing.TB, addr string) driver.Conn {
	t.Helper()
	conn, err := chconn.Config{Addr: addr}.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// testConfig is a config for one test against ch, with batches small enough that a test of
// 10^5 packets cuts many of them.
func testConfig(ch *chlocal.Process, topic, stats, group, db, writer string) Config {
	cfg := DefaultConfig()
	cfg.Kafka.Brokers = []string{kafka.Addr()}
	cfg.Topic, cfg.StatsTopic, cfg.Group = topic, stats, group
	cfg.FlowsTopic = "" // opted into by the tests that produce flows (flows_test.go)
	cfg.ClickHouse = chconn.Config{Addr: ch.TCPAddr(), HTTPAddr: ch.HTTPAddr(), Database: db}
	cfg.Writer = writer
	cfg.FlushRows = 20_000
	cfg.FlushAge = 300 * time.Millisecond
	cfg.RetryBackoffMax = time.Second
	cfg.RevokeTimeout = 10 * time.Second
	cfg.SessionTimeout = 6 * time.Second
	return cfg
}

// startIngester runs an in-process Ingester, stopped at cleanup if the test did not.
func startIngester(t testing.TB, cfg Config) *Ingester {
	t.Helper()
	ing, err := New(cfg, Dependencies{Logger: testLogger(t).With("member", uniq.Add(1)), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ing.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ing.Stop() })
	return ing
}
