package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/collector"
	"github.com/packetlake/packetlake/ingester"
	"github.com/packetlake/packetlake/internal/local/kafkalocal"
	"github.com/packetlake/packetlake/internal/testkit/nettest"
	"github.com/packetlake/packetlake/record"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// envInts reads a comma-separated list of integers from the environment variable name, def
// when it is unset or empty; a field that is not an integer fails the benchmark.
func envInts(b *testing.B, name string, def []int) []int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		out = append(out, n)
	}
	return out
}

// sender offers DNS queries from the peer end of a veth to the observed end, each carrying its
// send index in the query name ("q<i>.bench.example"), which the collector's parser stores in
// dns_qname: a row says exactly which send it is, whatever the collector's own seq.
type sender struct {
	conn   *net.UDPConn
	mu     sync.Mutex // sentNs grows while the benchmark's poll loop reads it
	sentNs []int64    // send time of query i, ns since the epoch
	cpu    float64    // CPU seconds of the sending thread
}

// sent returns the send times so far; entries never change once appended.
func (s *sender) sent() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sentNs
}

func newSender(b *testing.B, v *nettest.Veth) *sender {
	s := &sender{}
	// The socket belongs to the namespace it is made in; it may send from any thread after.
	err := nettest.Do(v.PeerNS, func() error {
		var err error
		s.conn, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: v.Addr.AsSlice(), Port: 53})
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.conn.Close() })
	return s
}

// run sends at pps (0: as fast as it can) for d; when ahead of schedule it sleeps 0.5 ms. The
// thread is locked so that its CPU time (/proc/thread-self) is the sender's alone.
func (s *sender) run(pps int, d time.Duration) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c0 := cpuSeconds(nil, "thread-self")
	start := time.Now()
	for i := 0; ; i++ {
		now := time.Now()
		el := now.Sub(start)
		if el >= d {
			break
		}
		if pps > 0 && i > int(el.Seconds()*float64(pps)) {
			time.Sleep(500 * time.Microsecond)
			i--
			continue
		}
		// Named by the index in sentNs, which runs on across calls (the warm-up is query 0).
		n := len(s.sentNs)
		q := dnsQuery(uint16(n), "q"+strconv.Itoa(n)+".bench.example")
		// An ICMP port unreachable (nothing listens) fails the next write of a connected
		// socket with ECONNREFUSED, and that packet is not sent: send it again.
		if _, err := s.conn.Write(q); err != nil {
			i--
			continue
		}
		s.mu.Lock()
		s.sentNs = append(s.sentNs, now.UnixNano())
		s.mu.Unlock()
	}
	s.cpu = cpuSeconds(nil, "thread-self") - c0
}

// collectorProc is `packetlake collect` attached (XDP native, defaults otherwise) to the
// observed end of v, in its own process: its CPU is measured apart, and its BPF cleanup (which
// discards pinned OS threads) cannot touch this binary's server children (see BENCHMARKS.md).
type collectorProc struct {
	cmd   *exec.Cmd
	topic string
	out   bytes.Buffer
}

// flowsOnce creates the collector's default flows topic (these benchmarks keep the default):
// without it the collector's stop waits for flow exports Kafka cannot take.
var flowsOnce sync.Once

func startCollector(b *testing.B, v *nettest.Veth, topic, host string) *collectorProc {
	flowsOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := kafkalocal.CreateTopic(ctx, env.Kafka.Addr(), collector.DefaultConfig().FlowsTopic, 1); err != nil {
			b.Logf("create the flows topic: %v", err)
		}
	})
	return startCollectorArgs(b, v, topic, host, false)
}

func (c *collectorProc) cpu(b *testing.B) float64 {
	return cpuSeconds(b, strconv.Itoa(c.cmd.Process.Pid))
}

// stop stops the collector (SIGTERM: drain, flush, final stats) and returns its final stats.
func (c *collectorProc) stop(b *testing.B) record.Stats {
	if c.cmd.ProcessState == nil {
		c.cmd.Process.Signal(syscall.SIGTERM)
		c.cmd.Wait()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Kafka.Addr()), kgo.ConsumeTopics(c.topic+"-stats"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	var last record.Stats
	var n int
	defer func() {
		if last.TimeUnixNs == 0 {
			b.Errorf("no collector stats in %s-stats (%d records); collector output: %s", c.topic, n, c.out.String())
		}
	}()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			n++
			var s record.Stats
			if json.Unmarshal(r.Value, &s) == nil && s.TimeUnixNs >= last.TimeUnixNs {
				last = s
			}
		})
		if last.TimeUnixNs != 0 && fs.NumRecords() == 0 {
			break
		}
	}
	return last
}

func newTopic(b *testing.B, prefix string, partitions int32) string {
	name := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, t := range []string{name, name + "-stats"} {
		if err := kafkalocal.CreateTopic(ctx, env.Kafka.Addr(), t, partitions); err != nil {
			b.Fatal(err)
		}
	}
	return name
}

// BenchmarkCollectorLive: the collector alone (XDP native on a veth, default config) draining
// into the real Apache Kafka at offered loads of 20k, 100k pps and as fast as one Go sender
// thread can send (BENCH_DRAIN_SECONDS each, default 5). records/s = records Kafka acknowledged
// / send time; per core = the same over the collector process's CPU (send time + 1 s);
// lost = offered - acknowledged, with where it went.
func BenchmarkCollectorLive(b *testing.B) {
	d := time.Duration(envInt("BENCH_DRAIN_SECONDS", 5)) * time.Second
	for _, pps := range []int{20_000, 100_000, 0} {
		name := strconv.Itoa(pps/1000) + "kpps"
		if pps == 0 {
			name = "max"
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				requireServers(b)
				v := nettest.NewVethPair(b)
				topic := newTopic(b, "drain", 4)
				c := startCollector(b, v, topic, "drain")
				s := newSender(b, v)
				c0, coll0 := snapCPU(b), c.cpu(b)
				s.run(pps, d)
				time.Sleep(time.Second) // a frame age and the acks of the last frames
				cpu := snapCPU(b).sub(c0)
				coll := c.cpu(b) - coll0
				st := c.stop(b)
				sent := len(s.sentNs)
				b.ReportMetric(float64(sent)/d.Seconds(), "offered-pps")
				b.ReportMetric(float64(st.RecordsAcked)/d.Seconds(), "acked-records/s")
				b.ReportMetric(float64(st.RecordsAcked)/coll, "records/cpu-s")
				b.ReportMetric(100*float64(sent-int(min(st.RecordsAcked, uint64(sent))))/float64(sent), "lost-%")
				b.Logf("offered %d (%.0f pps; sender thread %.2f cpu-s): kernel seen %d, ring full %d, read %d, acked %d, shed %d, failed %d; collector cpu %.2f s, kafka %.2f s; link %s",
					sent, float64(sent)/d.Seconds(), s.cpu, st.KernelSeen, st.KernelRingFull, st.SamplesRead, st.RecordsAcked, st.RecordsShed, st.RecordsFailed,
					coll, cpu.kafka, nettest.ReadLinkStats(b, v.NS, v.Name))
			}
		})
	}
}

// BenchmarkEndToEndLatency: packets offered at a steady rate (env BENCH_E2E_PPS, default 20000,
// for BENCH_E2E_SECONDS, default 20) to a veth in a test-made namespace, recorded by the
// collector (XDP native, default config), through Apache Kafka, inserted by the ingester
// (default config; the migrations' rollup views attached, as deployed) into ClickHouse.
// Latency of a packet = the start of the first 50 ms poll whose result holds its row (SELECT
// ... WHERE seq > last seen) minus its send time: an upper bound, at most one poll interval
// plus one query late. The ingester's FlushAge: its default (1 s), or env BENCH_E2E_FLUSH_AGE.
func BenchmarkEndToEndLatency(b *testing.B) {
	pps, secs := envInt("BENCH_E2E_PPS", 20000), envInt("BENCH_E2E_SECONDS", 20)
	age := ingester.DefaultConfig().FlushAge
	if v, err := time.ParseDuration(os.Getenv("BENCH_E2E_FLUSH_AGE")); err == nil {
		age = v
	}
	// One configuration per invocation: other flush ages are separate runs (BENCHMARKS.md).
	b.Run("flushage-"+age.String(), func(b *testing.B) {
		for range b.N {
			e2eRun(b, pps, time.Duration(secs)*time.Second, age)
		}
	})
}

func e2eRun(b *testing.B, pps int, d time.Duration, flushAge time.Duration) {
	requireServers(b)
	v := nettest.NewVethPair(b)
	topic := newTopic(b, "e2e", 4)
	db := fmt.Sprintf("e2e_%d", time.Now().UnixNano())
	cfg := ingester.DefaultConfig()
	cfg.Kafka.Brokers, cfg.Group, cfg.Topic, cfg.StatsTopic = []string{env.Kafka.Addr()}, db, topic, topic+"-stats"
	cfg.ClickHouse = env.CHConfig(db)
	cfg.FlushAge = flushAge
	cfg.SessionTimeout = 6 * time.Second
	in, reg := startIngester(b, cfg)
	defer in.Stop()
	conn := env.CH(b)
	nviews := views(b, conn, db)
	c := startCollector(b, v, topic, "e2e")
	// Warm up: one packet end to end, so the group join and first connections are not timed.
	s := newSender(b, v)
	s.run(1, time.Millisecond)
	q := "SELECT seq, dns_qname FROM " + db + ".packets WHERE host = 'e2e' AND seq > ? ORDER BY seq"
	var rows []struct {
		Seq   uint64 `ch:"seq"`
		QName string `ch:"dns_qname"`
	}
	ctx := context.Background()
	for deadline := time.Now().Add(time.Minute); ; {
		if err := conn.Select(ctx, &rows, "SELECT seq, dns_qname FROM "+db+".packets WHERE host = 'e2e'"); err != nil {
			b.Fatal(err)
		}
		if len(rows) > 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("warm-up packet not in ClickHouse after 1 min; collector: %s", c.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	lastSeq := rows[0].Seq
	warm := len(s.sentNs)
	roll := newRollupPoll(db, warm)
	c0, coll0 := snapCPU(b), c.cpu(b)

	var done atomic.Bool
	go func() { s.run(pps, d); done.Store(true) }()
	var lat []time.Duration
	var polls int
	var pollTime time.Duration
	var sendEnd time.Time
	for {
		t := time.Now()
		rows = rows[:0]
		if err := conn.Select(ctx, &rows, q, lastSeq); err != nil {
			b.Fatal(err)
		}
		polls++
		pollTime += time.Since(t)
		sentNs := s.sent()
		for _, r := range rows {
			lastSeq = r.Seq
			i, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(r.QName, "q"), ".bench.example"))
			if err != nil || i < warm || i >= len(sentNs) {
				continue
			}
			lat = append(lat, time.Duration(t.UnixNano()-sentNs[i]))
		}
		roll.poll(b, conn, sentNs)
		if done.Load() {
			if sendEnd.IsZero() {
				sendEnd = time.Now()
			}
			if (len(lat) >= len(s.sentNs)-warm && len(roll.lat) >= len(s.sentNs)-warm) || time.Since(sendEnd) > 10*time.Second {
				break
			}
		}
		time.Sleep(time.Until(t.Add(50 * time.Millisecond)))
	}
	cpu := snapCPU(b).sub(c0)
	collCPU := c.cpu(b) - coll0
	st := c.stop(b)
	sent := len(s.sentNs) - warm
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	rp50, rp99 := percentile(roll.lat, 0.5), percentile(roll.lat, 0.99)
	b.ReportMetric(rp50.Seconds(), "rollup-p50-s")
	b.ReportMetric(rp99.Seconds(), "rollup-p99-s")
	b.ReportMetric(100*float64(sent-len(roll.lat))/float64(sent), "rollup-lost-%")
	logInsertDurations(b, reg)
	b.Logf("rollup dns_names_1m: %d of %d sent seen, p50 %v p99 %v max %v (packets: p50 %v p99 %v)", len(roll.lat), sent,
		rp50.Round(time.Millisecond), rp99.Round(time.Millisecond), percentile(roll.lat, 1).Round(time.Millisecond),
		pct(0.5).Round(time.Millisecond), pct(0.99).Round(time.Millisecond))
	b.ReportMetric(pct(0.5).Seconds(), "p50-s")
	b.ReportMetric(pct(0.99).Seconds(), "p99-s")
	b.ReportMetric(lat[len(lat)-1].Seconds(), "max-s")
	b.ReportMetric(float64(sent)/d.Seconds(), "offered-pps")
	b.ReportMetric(100*float64(sent-len(lat))/float64(sent), "lost-%")
	b.Logf("flush age %v, %d views: offered %d pkt in %v (%.0f pps, sender thread %.2f cpu-s); %d rows seen: p50 %v p90 %v p99 %v max %v; %d polls, mean query %v; collector: kernel seen %d, ring full %d, acked %d, shed %d; cpu: collector %.2f s, test process (ingester+sender) %.2f s, clickhouse %.2f s, kafka %.2f s; link %s",
		flushAge, nviews, sent, d, float64(sent)/d.Seconds(), s.cpu, len(lat), pct(0.5).Round(time.Millisecond), pct(0.9).Round(time.Millisecond),
		pct(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), polls, (pollTime / time.Duration(polls)).Round(time.Microsecond),
		st.KernelSeen, st.KernelRingFull, st.RecordsAcked, st.RecordsShed, collCPU, cpu.self, cpu.ch, cpu.kafka, nettest.ReadLinkStats(b, v.NS, v.Name))
	// The database is left for the binary's teardown: after 4 of 6 runs the ClickHouse child
	// died without a log line during a DROP DATABASE ... SYNC issued here while the ingester
	// still ran (BENCHMARKS.md).
}

// requireServers fails early and clearly when a server child of this binary is gone (seen on
// 2026-11-22: the ClickHouse child died silently after a live run, see BENCHMARKS.md).
func requireServers(b *testing.B) {
	for _, pid := range []int{env.ClickHouse.Pid(), env.Kafka.Pid()} {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
			b.Fatalf("server child %d of this test binary is gone (killed): results after this point would be wrong", pid)
		}
	}
}
