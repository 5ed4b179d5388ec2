// Package testinfra gives integration tests the real infrastructure they run against: the
// packetlake binary, a ClickHouse server and an Apache Kafka broker, started once per test binary
// from TestMain on free loopback ports with temporary data directories, and torn down at the end.
// When a test fails, the directory with the servers' logs and data is kept and its path printed.
//
//	var env *testinfra.Env
//	func TestMain(m *testing.M) { os.Exit(testinfra.Main(m, testinfra.Options{ClickHouse: true, Kafka: true}, &env)) }
//
// A missing prerequisite (no npm, no Java, not root for BPF) fails the binary with a clear
// message: it never skips.
package testinfra

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/packetlake/packetlake/internal/local/chlocal"
	"github.com/packetlake/packetlake/internal/local/kafkalocal"
)

// Options says which servers a test binary needs.
type Options struct {
	ClickHouse bool
	Kafka      bool
	// Root requires running as root (BPF programs, network namespaces).
	Root bool
	// ClickHouseShards > 0 also starts a sharded ClickHouse cluster of that many servers
	// (chlocal.Cluster, named chlocal.DefaultClusterName).
	ClickHouseShards int
	// KafkaNodes > 0 also starts an Apache Kafka cluster of that many KRaft nodes.
	KafkaNodes int
}

// Env is what Main started. Fields for servers not asked for are nil.
type Env struct {
	Dir          string // logs and data of this test binary
	Bin          string // the packetlake binary
	ClickHouse   *chlocal.Process
	Kafka        *kafkalocal.Apache
	CHCluster    *chlocal.Cluster
	KafkaCluster *kafkalocal.Cluster
}

// startTimeout bounds the first start, which may include fetching the engine and jars.
const startTimeout = 15 * time.Minute

// Main starts what opts asks for, runs m, stops everything and returns the exit code.
func Main(m *testing.M, opts Options, env **Env) int {
	dir, err := os.MkdirTemp("", "packetlake-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "testinfra:", err)
		return 1
	}
	e, err := start(opts, dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testinfra: cannot start the test infrastructure: %v\n(logs kept in %s)\n", err, dir)
		RemoveBinary()
		return 1
	}
	*env = e
	code := m.Run()
	e.stop()
	RemoveBinary()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "testinfra: tests failed; server logs and data kept in %s\n", dir)
	} else {
		os.RemoveAll(dir)
	}
	return code
}

func start(opts Options, dir string) (_ *Env, err error) {
	if opts.Root && os.Geteuid() != 0 {
		return nil, fmt.Errorf("these tests load BPF programs and make network namespaces: run them as root (make test does)")
	}
	e := &Env{Dir: dir}
	defer func() {
		if err != nil {
			e.stop()
		}
	}()
	if e.Bin, err = Binary(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	var wg sync.WaitGroup
	var chErr, kErr, cchErr, kcErr error
	if opts.ClickHouse {
		wg.Go(func() {
			e.ClickHouse, chErr = chlocal.Spawn(ctx, chlocal.SpawnConfig{
				Binary:           e.Bin,
				DataDir:          filepath.Join(dir, "clickhouse"),
				LogPath:          filepath.Join(dir, "clickhouse.log"),
				OnUnexpectedExit: chlocal.ReportExit("the test binary's ClickHouse"),
			})
		})
	}
	if opts.Kafka {
		wg.Go(func() {
			e.Kafka, kErr = kafkalocal.StartApache(ctx, kafkalocal.ApacheConfig{
				DataDir: filepath.Join(dir, "kafka"),
				LogPath: filepath.Join(dir, "kafka.log"),
			})
		})
	}
	if opts.ClickHouseShards > 0 {
		wg.Go(func() {
			e.CHCluster, cchErr = chlocal.StartCluster(ctx, chlocal.ClusterConfig{
				Binary: e.Bin, DataDir: filepath.Join(dir, "clickhouse-cluster"), Shards: opts.ClickHouseShards,
				Supervise: true, // as systemd would: a test reads Crashes
				OnUnexpectedExit: func(shard, pid int, err error, tail string) {
					chlocal.ReportExit(fmt.Sprintf("the test binary's ClickHouse shard %d", shard))(pid, err, tail)
				},
			})
		})
	}
	if opts.KafkaNodes > 0 {
		wg.Go(func() {
			e.KafkaCluster, kcErr = kafkalocal.StartCluster(ctx, kafkalocal.ClusterConfig{
				DataDir: filepath.Join(dir, "kafka-cluster"), Nodes: opts.KafkaNodes,
			})
		})
	}
	wg.Wait()
	if cchErr != nil {
		return nil, fmt.Errorf("clickhouse cluster: %w", cchErr)
	}
	if kcErr != nil {
		return nil, fmt.Errorf("kafka cluster: %w", kcErr)
	}
	if chErr != nil {
		return nil, fmt.Errorf("clickhouse: %w", chErr)
	}
	if kErr != nil {
		return nil, fmt.Errorf("kafka: %w", kErr)
	}
	return e, nil
}

func (e *Env) stop() {
	if e.CHCluster != nil {
		e.CHCluster.Stop()
	}
	if e.KafkaCluster != nil {
		e.KafkaCluster.Stop()
	}
	if e.ClickHouse != nil {
		e.ClickHouse.Stop()
	}
	if e.Kafka != nil {
		e.Kafka.Stop()
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds the packetlake binary once per test process and returns its path.
func Binary() (string, error) {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "packetlake-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "packetlake")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/packetlake/packetlake/cmd/packetlake")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build packetlake: %v\n%s", err, out)
		}
	})
	return binPath, buildErr
}

// RemoveBinary deletes what Binary built (~50 MB a test process). Main calls it; a package that
// calls Binary without Main calls it from its TestMain after m.Run, or every run of its tests
// leaves a packetlake-bin-* directory in TMPDIR.
func RemoveBinary() {
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
}
