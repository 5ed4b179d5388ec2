package bench

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/internal/chconn"
	"github.com/packetlake/packetlake/internal/childproc"
	"github.com/packetlake/packetlake/internal/local/chlocal"
	"github.com/packetlake/packetlake/internal/local/kafkalocal"
)

// BenchmarkClusterScaleOut: the same packets, produced and then ingested by one `packetlake
// ingest` (3 partitions), through
//
//   - 1 broker → 1 ClickHouse server (the test binary's own),
//   - 1 broker → 2 shards (Distributed tables, foreground inserts, schema apply --cluster),
//   - 3 brokers (RF 3, min ISR 2, acks=all) → 2 shards,
//
// side by side. Per step: produce rate and the brokers' CPU per million records; ingest rate
// (rows/s until every row is stored) and rows per CPU-second of everything that worked (the
// ingester, every ClickHouse server, every broker). The clusters start once, inside the
// benchmark. BENCH_CLUSTER_PACKETS sets the packets (default 1,000,000).
//
// On 2 shared cores this measures cost, not capacity: the 2 shards and 3 brokers share the
// cores of the 1, so more servers can only cost more CPU per row; what it shows is how much.
func BenchmarkClusterScaleOut(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("BENCH_CLUSTER_PACKETS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1000 {
			b.Fatalf("BENCH_CLUSTER_PACKETS=%q: want a number >= 1000", s)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	kc, cc := benchClusters(b, ctx)
	fs := encodeFrames(n, 1000, 3, time.Now().Add(-time.Hour).UnixNano())
	for b.Loop() {
		type step struct {
			name     string
			brokers  []string
			bpids    []int
			chTCP    string
			chHTTP   string
			chPids   []int
			cluster  string
			minISR   int
			replicas int16
		}
		steps := []step{
			{"1 broker, 1 server", []string{env.Kafka.Addr()}, []int{env.Kafka.Pid()}, env.ClickHouse.TCPAddr(), env.ClickHouse.HTTPAddr(), []int{env.ClickHouse.Pid()}, "", 1, 1},
			{"1 broker, 2 shards", []string{env.Kafka.Addr()}, []int{env.Kafka.Pid()}, cc.TCPAddrs()[0], cc.HTTPAddrs()[0], shardPids(cc), cc.Name(), 1, 1},
			{"3 brokers, 2 shards", kc.Addrs(), brokerPids(kc), cc.TCPAddrs()[0], cc.HTTPAddrs()[0], shardPids(cc), cc.Name(), 2, 3},
		}
		var lines []string
		for i, s := range steps {
			tag := fmt.Sprintf("cl%d_%d", i, time.Now().UnixNano())
			topic := strings.ReplaceAll(tag, "_", "-")
			if err := kafkalocal.CreateTopicWith(ctx, s.brokers, topic, 3, s.replicas, s.minISR); err != nil {
				b.Fatal(err)
			}
			// Produce: acks=all, idempotent, as the collector does.
			cl, err := kgo.NewClient(kgo.SeedBrokers(s.brokers...), kgo.ProducerBatchCompression(kgo.Lz4Compression()),
				kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20), kgo.RecordPartitioner(kgo.ManualPartitioner()),
				kgo.RequiredAcks(kgo.AllISRAcks()))
			if err != nil {
				b.Fatal(err)
			}
			k0, t0 := cpuOf(b, s.bpids), time.Now()
			var mu sync.Mutex
			var firstErr error
			for j, f := range fs {
				cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: int32(j % 3), Value: f}, func(_ *kgo.Record, err error) {
					if err != nil {
						mu.Lock()
						firstErr = cmp.Or(firstErr, err)
						mu.Unlock()
					}
				})
			}
			if err := cl.Flush(ctx); err != nil || firstErr != nil {
				b.Fatalf("produce: %v %v", err, firstErr)
			}
			cl.Close()
			produce, kProduce := time.Since(t0), cpuOf(b, s.bpids)-k0

			// Ingest: one ingester from the topic's start until every row is stored.
			db := tag
			if s.cluster != "" {
				out, err := exec.CommandContext(ctx, env.Bin, "schema", "apply", "--cluster", s.cluster, "--clickhouse", s.chTCP, "--database", db).CombinedOutput()
				if err != nil {
					b.Fatalf("schema apply --cluster: %v\n%s", err, out)
				}
			}
			k1, ch0, t1 := cpuOf(b, s.bpids), cpuOf(b, s.chPids), time.Now()
			args := []string{"ingest", "--brokers", strings.Join(s.brokers, ","), "--group", tag, "--topic", topic,
				"--stats-topic", "", "--flows-topic", "", "--clickhouse", s.chTCP, "--clickhouse-http", s.chHTTP,
				"--database", db, "--metrics-addr", "", "--log-level", "warn"}
			if s.cluster != "" {
				args = append(args, "--cluster", s.cluster)
			}
			ing := exec.Command(env.Bin, args...)
			logPath := filepath.Join(b.TempDir(), "ingest.log")
			logf, err := os.Create(logPath)
			if err != nil {
				b.Fatal(err)
			}
			ing.Stdout, ing.Stderr = logf, logf
			if err := childproc.Start(ing); err != nil {
				b.Fatal(err)
			}
			ch, err := chconn.Config{HTTPAddr: s.chHTTP, Database: db}.Client(chconn.Timeout(time.Minute))
			if err != nil {
				b.Fatal(err)
			}
			for rows := uint64(0); rows < uint64(n); {
				if ctx.Err() != nil {
					log, _ := os.ReadFile(logPath)
					b.Fatalf("%s: %d of %d rows before the deadline; ingester log:\n%s", s.name, rows, n, tail(string(log), 3000))
				}
				time.Sleep(50 * time.Millisecond)
				rows = httpCount(ctx, ch, "SELECT count() FROM packets")
			}
			ingest := time.Since(t1)
			c0 := cpuSeconds(b, strconv.Itoa(ing.Process.Pid))
			kIngest, chIngest := cpuOf(b, s.bpids)-k1, cpuOf(b, s.chPids)-ch0
			ing.Process.Signal(syscall.SIGTERM)
			ing.Wait()
			logf.Close()
			ch.Close()
			total := c0 + kIngest + chIngest
			lines = append(lines, fmt.Sprintf("%-20s produce %7.0f packets/s, brokers %.2f cpu-s/M packets | ingest %7.0f rows/s, %7.0f rows/cpu-s (ingester %.1f, clickhouse %.1f, kafka %.1f cpu-s)",
				s.name, float64(n)/produce.Seconds(), kProduce/float64(n)*1e6, float64(n)/ingest.Seconds(), float64(n)/total, c0, chIngest, kIngest))
			b.ReportMetric(float64(n)/total, fmt.Sprintf("step%d-rows/cpu-s", i+1))
		}
		b.Logf("%d packets in %d frames of 1000, 3 partitions:\n%s", n, len(fs), strings.Join(lines, "\n"))
	}
}

// BenchmarkClusterFailoverStall: an idempotent acks=all producer writes one record at a time
// (each waits for its acknowledgement) to a 3-partition RF 3 topic of the 3-node cluster; the
// stall is the longest wait for one acknowledgement across the SIGKILL of the partition 0
// leader, then (after it is back in sync) of the active controller. With the client
// packetlake uses (MetadataMinAge 250 ms) and broker.session.timeout.ms=3000.
func BenchmarkClusterFailoverStall(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	kc, _ := benchClusters(b, ctx)
	for b.Loop() {
		topic := fmt.Sprintf("stall-%d", time.Now().UnixNano())
		if err := kc.CreateTopic(ctx, topic, 1, 3, 2); err != nil {
			b.Fatal(err)
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(kc.Addrs()...), kgo.DefaultProduceTopic(topic),
			kgo.RequiredAcks(kgo.AllISRAcks()), kgo.MetadataMinAge(250*time.Millisecond))
		if err != nil {
			b.Fatal(err)
		}
		stall := func(kill func() (int, error)) (time.Duration, int) {
			for range 50 {
				if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("warm")}).FirstErr(); err != nil {
					b.Fatal(err)
				}
			}
			node, err := kill()
			if err != nil {
				b.Fatal(err)
			}
			var worst time.Duration
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
				t0 := time.Now()
				if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
					b.Fatal(err)
				}
				worst = max(worst, time.Since(t0))
				if time.Since(t0) < 50*time.Millisecond && worst > time.Second {
					break // recovered
				}
			}
			if err := kc.Node(node).Restart(ctx); err != nil {
				b.Fatal(err)
			}
			return worst, node
		}
		wasCtrl := false
		leaderStall, leader := stall(func() (int, error) {
			id, err := kc.PartitionLeader(ctx, topic, 0)
			if c, cerr := kc.ActiveController(ctx); cerr == nil && c == id {
				wasCtrl = true // then the leader's stall includes a controller election
			}
			if err == nil {
				kc.Node(id).Kill()
			}
			return id, err
		})
		time.Sleep(5 * time.Second) // the restarted node catches up
		ctrlStall, ctrl := stall(func() (int, error) {
			id, err := kc.ActiveController(ctx)
			if err == nil {
				kc.Node(id).Kill()
			}
			return id, err
		})
		cl.Close()
		b.ReportMetric(leaderStall.Seconds(), "leader-stall-s")
		b.ReportMetric(ctrlStall.Seconds(), "controller-stall-s")
		b.Logf("longest acknowledgement wait: %v after SIGKILL of partition leader (node %d, also the active controller: %v), %v after SIGKILL of the active controller (node %d)",
			leaderStall.Round(10*time.Millisecond), leader, wasCtrl, ctrlStall.Round(10*time.Millisecond), ctrl)
	}
}

var (
	clustersOnce sync.Once
	benchKafka   *kafkalocal.Cluster
	benchCH      *chlocal.Cluster
	clustersErr  error
	clustersDir  string
)

// benchClusters starts a 3-node Kafka and a 2-shard ClickHouse once per test binary (both
// cluster benchmarks share them); TestMain stops them at the end.
func benchClusters(b *testing.B, ctx context.Context) (*kafkalocal.Cluster, *chlocal.Cluster) {
	b.Helper()
	clustersOnce.Do(func() {
		dir, err := os.MkdirTemp("", "packetlake-bench-clusters-")
		if err != nil {
			clustersErr = err
			return
		}
		clustersDir = dir
		var wg sync.WaitGroup
		var kErr, cErr error
		wg.Go(func() {
			benchKafka, kErr = kafkalocal.StartCluster(ctx, kafkalocal.ClusterConfig{DataDir: filepath.Join(dir, "kafka")})
		})
		wg.Go(func() {
			benchCH, cErr = chlocal.StartCluster(ctx, chlocal.ClusterConfig{Binary: env.Bin, DataDir: filepath.Join(dir, "clickhouse")})
		})
		wg.Wait()
		clustersErr = cmp.Or(kErr, cErr)
	})
	if clustersErr != nil {
		b.Fatal(clustersErr)
	}
	return benchKafka, benchCH
}

// stopBenchClusters stops the clusters benchClusters started, at the end of TestMain.
func stopBenchClusters() {
	if benchCH != nil {
		benchCH.Stop()
	}
	if benchKafka != nil {
		benchKafka.Stop()
	}
	if clustersDir != "" {
		os.RemoveAll(clustersDir)
	}
}

func brokerPids(c *kafkalocal.Cluster) []int {
	var out []int
	for _, n := range c.Nodes {
		out = append(out, n.Pid())
	}
	return out
}

func shardPids(c *chlocal.Cluster) []int {
	var out []int
	for i := range c.Shards() {
		out = append(out, c.Server(i+1).Pid())
	}
	return out
}

func cpuOf(b *testing.B, pids []int) float64 {
	var s float64
	for _, p := range pids {
		s += cpuSeconds(b, strconv.Itoa(p))
	}
	return s
}

func httpCount(ctx context.Context, c *chconn.Client, sql string) uint64 {
	body, err := c.Query(ctx, sql, nil, nil)
	if err != nil {
		return 0
	}
	defer body.Close()
	var buf [64]byte
	k, _ := body.Read(buf[:])
	v, _ := strconv.ParseUint(strings.TrimSpace(string(buf[:k])), 10, 64)
	return v
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
