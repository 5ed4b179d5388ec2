package bench

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/internal/childproc"
	"github.com/packetlake/packetlake/internal/local/kafkalocal"
)

// BenchmarkIngestScaleOut: does ingest throughput add up when members are added to the group?
// Method and results: bench/SCALEOUT.md.
//
// N packets (the synthetic traffic of synth_test.go; BENCH_SCALEOUT_ROWS, default 2,400,000)
// are produced before any timing into one topic of 6 partitions of the real Apache Kafka, as
// frames of 1000 packets from 6 collectors, collector c's frames in partition c (N/6 each).
// Then, for members = 1, 2, 3, each step with a fresh consumer group and a fresh database made
// by packetlake's migrations (rollup views dropped: the packets table alone, as in
// BenchmarkIngestVsKafkaEngine/packets-only), that many `packetlake ingest` processes (default
// settings: arrow-http, 100k-row batches, flush age 1 s) move the N packets into ClickHouse.
//
// Every member runs in a CPU cgroup of its own (CFS bandwidth: cpu.cfs_quota_us on cgroup v1,
// cpu.max on v2). It starts gated at 0.03 core: enough to start, join the group and heartbeat,
// not to move much. When the group is stable, every partition assigned and every member holding
// some (+1 s), the gate opens and the clock starts: the step times a settled group, not the joining (the broker
// runs with group.initial.rebalance.delay.ms=0, so the first member to join takes every
// partition, and a member that joins a busy group waits for it to revoke; ungated, in a first
// try the third member of a step had nothing left to do when it got its partitions). What the
// members did while gated (rows inserted by the 1 s age cut, CPU) is logged and left out.
//
// Two variants, after the gate opens:
//
//   - free: no limit, GOMAXPROCS = the machine's CPUs (2), on the same 2 cores as ClickHouse and
//     Kafka. Wall-clock scaling is bounded by the machine, not by the group.
//   - budget: each member is limited to BENCH_SCALEOUT_MEMBER_CPU of one core (default 0.04),
//     GOMAXPROCS=1. ClickHouse spends 2-4x the ingester's CPU per row, and one free member
//     already fills the 2 cores with it, so the members can only be what sets the pace if they
//     are held far below the machine: three members at 0.04 core ask ClickHouse for about half
//     a core. Then "adds up" is visible on 2 cores (whether the members were the limit is
//     logged: the share of CFS periods in which they were throttled, and their CPU in cores).
//
// Each step fails unless, after its members stopped, count() = N and uniqExact(collector_id,
// seq) = N (exactly once). Logged per step: rows/s (gate open to count() = N), steady rows/s
// (count() from 10% to 90% of the rows: no first batch, no tail), rows each member inserted
// and the partitions it holds (its /metrics), CPU seconds of each member, of
// ClickHouse and of Kafka over the step (/proc/<pid>/stat), rows per ingester CPU second, CFS
// periods throttled.
// Reported per variant: rows/s with 1, 2, 3 members, ratios to 1 member (ideal 2 and 3),
// ingester rows/cpu-s with 1 and 3 members (no coordination overhead: equal), ClickHouse cores.
func BenchmarkIngestScaleOut(b *testing.B) {
	n := envInt("BENCH_SCALEOUT_ROWS", 2_400_000)
	budget := 0.04
	if s := os.Getenv("BENCH_SCALEOUT_MEMBER_CPU"); s != "" {
		if v, err := strconv.ParseFloat(s, 64); err == nil && v >= 0.02 && v <= 1 {
			budget = v
		} else {
			b.Fatalf("BENCH_SCALEOUT_MEMBER_CPU=%q: want a fraction of one core in [0.02, 1]", s)
		}
	}
	cgs := newMemberCgroups(b)
	var once sync.Once
	var topic string
	for _, v := range []struct {
		name  string
		cores float64 // 0: no limit
	}{{"free", 0}, {"budget", budget}} {
		b.Run(v.name, func(b *testing.B) {
			once.Do(func() { topic = scaleOutTopic(b, n) })
			for range b.N {
				var rs []scaleOutResult
				for members := 1; members <= 3; members++ {
					requireServers(b)
					rs = append(rs, scaleOutStep(b, topic, n, members, cgs, v.cores))
				}
				for i, r := range rs {
					b.ReportMetric(r.rate(), fmt.Sprintf("m%d-rows/s", i+1))
				}
				b.ReportMetric(rs[1].rate()/rs[0].rate(), "x2")
				b.ReportMetric(rs[2].rate()/rs[0].rate(), "x3")
				b.ReportMetric(rs[2].steady/rs[0].steady, "steady-x3")
				b.ReportMetric(rs[0].perIngCPU(), "m1-rows/ing-cpu-s")
				b.ReportMetric(rs[2].perIngCPU(), "m3-rows/ing-cpu-s")
				b.ReportMetric(rs[2].chCores(), "m3-ch-cores")
				b.ReportMetric(rs[2].spread(), "m3-rows-max/min")
				b.Logf("%s: members 1/2/3: %.0f / %.0f / %.0f rows/s (x%.2f, x%.2f), steady %.0f / %.0f / %.0f (x%.2f, x%.2f); "+
					"ingester rows/cpu-s %.0f / %.0f / %.0f; ClickHouse cores %.2f / %.2f / %.2f",
					v.name, rs[0].rate(), rs[1].rate(), rs[2].rate(), rs[1].rate()/rs[0].rate(), rs[2].rate()/rs[0].rate(),
					rs[0].steady, rs[1].steady, rs[2].steady, rs[1].steady/rs[0].steady, rs[2].steady/rs[0].steady,
					rs[0].perIngCPU(), rs[1].perIngCPU(), rs[2].perIngCPU(), rs[0].chCores(), rs[1].chCores(), rs[2].chCores())
			}
		})
	}
}

const scaleOutPartitions = 6

// scaleOutTopic produces n packets into a new topic of 6 partitions: frames of 1000 packets from
// 6 collectors, collector c's frames in partition c (as when frames are keyed by host).
func scaleOutTopic(b *testing.B, n int) string {
	const perFrame = 1000
	t0 := time.Now()
	fs := encodeFrames(n, perFrame, scaleOutPartitions, time.Now().Add(-time.Hour).UnixNano())
	gen := time.Since(t0)
	topic := fmt.Sprintf("scaleout-%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := kafkalocal.CreateTopic(ctx, env.Kafka.Addr(), topic, scaleOutPartitions); err != nil {
		b.Fatal(err)
	}
	cl := newLoadProducer(b)
	var mu sync.Mutex
	var firstErr error
	t1 := time.Now()
	var bytes int
	for i, f := range fs {
		bytes += len(f)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: int32(i % scaleOutPartitions), Value: f}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				firstErr = cmp.Or(firstErr, err)
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	b.Logf("topic %s: %d packets in %d frames (%.0f B/packet) over %d partitions (%d frames in the fullest), generated in %v, produced in %v",
		topic, n, len(fs), float64(bytes)/float64(n), scaleOutPartitions, (len(fs)+scaleOutPartitions-1)/scaleOutPartitions,
		gen.Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
	return topic
}

// member is one `packetlake ingest` process.
type member struct {
	cmd     *exec.Cmd
	metrics string // host:port of its /metrics
	log     string
	done    chan struct{}
}

// startMember starts `packetlake ingest` as a child process in cgroup procs: a shell moves
// itself there, then execs the ingester, so no instruction of it runs outside its budget.
func startMember(b *testing.B, topic, group, db string, i int, procs string, gomaxprocs int) *member {
	port, err := freeLocalPort()
	if err != nil {
		b.Fatal(err)
	}
	m := &member{metrics: fmt.Sprintf("127.0.0.1:%d", port), log: filepath.Join(b.TempDir(), fmt.Sprintf("member-%d.log", i)), done: make(chan struct{})}
	args := []string{"-c", `echo $$ > "$0" && exec "$@"`, procs,
		env.Bin, "ingest", "--brokers", env.Kafka.Addr(), "--group", group, "--topic", topic,
		"--stats-topic", "", "--flows-topic", "", "--clickhouse", env.ClickHouse.TCPAddr(),
		"--clickhouse-http", env.ClickHouse.HTTPAddr(), "--database", db, "--no-migrate",
		"--session-timeout", "6s", "--metrics-addr", m.metrics, "--log-level", "warn"}
	m.cmd = exec.Command("/bin/sh", args...)
	m.cmd.Env = append(os.Environ(), fmt.Sprintf("GOMAXPROCS=%d", gomaxprocs))
	logf, err := os.Create(m.log)
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	if err := childproc.Start(m.cmd); err != nil {
		b.Fatal(err)
	}
	go func() { m.cmd.Wait(); close(m.done) }()
	b.Cleanup(m.stop)
	return m
}

func (m *member) pid() string { return strconv.Itoa(m.cmd.Process.Pid) }

func (m *member) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM (flush and commit what is in hand) and waits, SIGKILL after 30 s.
func (m *member) stop() {
	if m.exited() {
		return
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(30 * time.Second):
		m.cmd.Process.Kill()
		<-m.done
	}
}

func (m *member) logTail() string {
	b, _ := os.ReadFile(m.log)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// memberMetrics is what one member's /metrics says.
type memberMetrics struct {
	rows       float64        // packetlake_ingester_rows_inserted_total{table="packets"}
	decoded    float64        // packetlake_ingester_packets_decoded_total
	gcs        float64        // go_gc_duration_seconds_count: GC cycles
	partitions []int          // partitions with a consumer_lag gauge: held now, committed at least once
	cuts       map[string]int // batches by cut
}

func (m *member) scrape(b *testing.B, topic string) memberMetrics {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + m.metrics + "/metrics")
	if err != nil {
		b.Fatalf("metrics of member %s: %v\n%s", m.pid(), err, m.logTail())
	}
	defer resp.Body.Close()
	mm := memberMetrics{cuts: map[string]int{}}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 8<<20))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		name, labels, value, ok := parseSample(sc.Text())
		if !ok {
			continue
		}
		switch {
		case name == "packetlake_ingester_rows_inserted_total" && labels["table"] == "packets":
			mm.rows = value
		case name == "packetlake_ingester_packets_decoded_total":
			mm.decoded = value
		case name == "go_gc_duration_seconds_count":
			mm.gcs = value
		case name == "packetlake_ingester_consumer_lag" && labels["topic"] == topic:
			p, _ := strconv.Atoi(labels["partition"])
			mm.partitions = append(mm.partitions, p)
		case name == "packetlake_ingester_batches_total" && labels["topic"] == topic:
			mm.cuts[labels["cut"]] += int(value)
		}
	}
	slices.Sort(mm.partitions)
	return mm
}

// parseSample parses one line of the Prometheus text format: name{l="v",...} value.
func parseSample(line string) (name string, labels map[string]string, value float64, ok bool) {
	if line == "" || line[0] == '#' {
		return "", nil, 0, false
	}
	sp := strings.LastIndexByte(line, ' ')
	if sp < 0 {
		return "", nil, 0, false
	}
	v, err := strconv.ParseFloat(line[sp+1:], 64)
	if err != nil {
		return "", nil, 0, false
	}
	head := line[:sp]
	labels = map[string]string{}
	if i := strings.IndexByte(head, '{'); i >= 0 {
		name = head[:i]
		for _, kv := range strings.Split(strings.TrimSuffix(head[i+1:], "}"), ",") {
			if k, val, found := strings.Cut(kv, "="); found {
				labels[k] = strings.Trim(val, `"`)
			}
		}
	} else {
		name = head
	}
	return name, labels, v, true
}

func freeLocalPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

type scaleOutResult struct {
	members int
	rows    int           // rows inserted after the gate opened
	elapsed time.Duration // gate open to count() = N
	steady  float64       // rows/s between 10% and 90% of the rows stored
	memCPU  []float64     // CPU seconds of each member over the step
	memRows []float64     // rows each member inserted over the step
	ch      float64       // ClickHouse CPU seconds over the step
	kafka   float64
}

func (r scaleOutResult) rate() float64 { return float64(r.rows) / r.elapsed.Seconds() }

func (r scaleOutResult) perIngCPU() float64 {
	var s float64
	for _, c := range r.memCPU {
		s += c
	}
	return float64(r.rows) / s
}

// chCores is ClickHouse's CPU over the step, in cores (of the machine's 2).
func (r scaleOutResult) chCores() float64 { return r.ch / r.elapsed.Seconds() }

// spread is the most rows a member inserted over the fewest.
func (r scaleOutResult) spread() float64 { return slices.Max(r.memRows) / slices.Min(r.memRows) }

// gateCores is the budget a member starts with: it can start, join and heartbeat, hardly move.
const gateCores = 0.03

// scaleOutStep runs one step: members processes into a fresh database until n rows are stored.
// cores is each member's budget once the gate opens (0: no limit).
func scaleOutStep(b *testing.B, topic string, n, members int, cgs *memberCgroups, cores float64) scaleOutResult {
	conn := env.CH(b)
	db := migrated(b, conn, false)
	group := "scaleout-" + db
	q := "SELECT count() FROM " + db + ".packets"
	time.Sleep(time.Second) // let the DDL's own work settle
	gomaxprocs := runtime.NumCPU()
	if cores > 0 {
		gomaxprocs = 1
	}
	ms := make([]*member, members)
	tStart := time.Now()
	for i := range ms {
		ms[i] = startMember(b, topic, group, db, i+1, cgs.set(b, i+1, gateCores), gomaxprocs)
	}
	alive := func() {
		for i, m := range ms {
			if m.exited() {
				b.Fatalf("member %d exited: %s", i+1, m.logTail())
			}
		}
	}

	// Gated: wait for a stable group in which every member holds partitions.
	adm, err := kgo.NewClient(kgo.SeedBrokers(env.Kafka.Addr()))
	if err != nil {
		b.Fatal(err)
	}
	defer adm.Close()
	var desc string
	for ok := false; !ok; {
		if time.Since(tStart) > 2*time.Minute {
			b.Fatalf("%d members: group not settled after 2 min: %s", members, desc)
		}
		alive()
		time.Sleep(200 * time.Millisecond)
		ok, desc = groupStable(adm, group, topic, members)
	}
	settled := time.Since(tStart)
	time.Sleep(time.Second) // the members' assign callbacks have started their workers

	// Open the gate.
	chPid, kPid := strconv.Itoa(env.ClickHouse.Pid()), strconv.Itoa(env.Kafka.Pid())
	cpu0, rows0, gcs0, thr0 := make([]float64, members), make([]float64, members), make([]float64, members), make([]cfsStat, members)
	var decoded0 float64
	for i, m := range ms {
		mm := m.scrape(b, topic)
		rows0[i], gcs0[i], decoded0 = mm.rows, mm.gcs, decoded0+mm.decoded
		cpu0[i], thr0[i] = cpuSeconds(b, m.pid()), cgs.stat(i+1)
	}
	gated := count(b, conn, q)
	ch0, k0, t0 := cpuSeconds(b, chPid), cpuSeconds(b, kPid), time.Now()
	for i := range ms {
		cgs.set(b, i+1, cores)
	}
	got, first := gated, time.Duration(0)
	// Steady: count() between 10% and 90% of the rows (it rises in steps of one partition's
	// batch, 100k rows: the window holds many of them).
	var t10, t90 time.Duration
	var c10, c90 uint64
	lo, hi := gated+(uint64(n)-gated)/10, gated+(uint64(n)-gated)*9/10
	deadline := t0.Add(5 * time.Minute) // at 2.4M rows: fails below 8k rows/s
	for got < uint64(n) {
		if time.Now().After(deadline) {
			for i, m := range ms {
				b.Logf("member %d (pid %s) metrics %+v; log tail:\n%s", i+1, m.pid(), m.scrape(b, topic), m.logTail())
			}
			b.Fatalf("%d members: %d of %d rows 5 min after the gate opened", members, got, n)
		}
		alive()
		time.Sleep(50 * time.Millisecond)
		got = count(b, conn, q)
		now := time.Since(t0)
		if got > gated && first == 0 {
			first = now
		}
		if got >= lo && t10 == 0 {
			t10, c10 = now, got
		}
		if got >= hi && t90 == 0 {
			t90, c90 = now, got
		}
	}
	elapsed := time.Since(t0)
	waitNoInsert(b, conn, db, deadline) // ClickHouse's CPU includes the last INSERTs' tails
	r := scaleOutResult{members: members, rows: n - int(gated), elapsed: elapsed,
		ch: cpuSeconds(b, chPid) - ch0, kafka: cpuSeconds(b, kPid) - k0}
	cpu1 := make([]float64, members)
	for i, m := range ms {
		cpu1[i] = cpuSeconds(b, m.pid())
	}
	r.steady = math.NaN()
	if t90 > t10 {
		r.steady = float64(c90-c10) / (t90 - t10).Seconds()
	}
	// A member's counter moves when it has read ClickHouse's answer, which may be just after
	// count() saw the rows: wait (bounded) until the members' rows add up.
	var mms []memberMetrics
	for try := 0; try < 50; try++ {
		mms = mms[:0]
		var sum float64
		for i, m := range ms {
			mm := m.scrape(b, topic)
			mms, sum = append(mms, mm), sum+mm.rows-rows0[i]
		}
		if sum >= float64(r.rows) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// What a member costs with nothing to do (heartbeats, fetch long polls, the Go runtime): its
	// CPU over 2 s after the last row (/proc counts in 10 ms ticks: 0.005 core resolution).
	idle := make([]float64, members)
	for i, m := range ms {
		idle[i] = cpuSeconds(b, m.pid())
	}
	time.Sleep(2 * time.Second)
	for i, m := range ms {
		idle[i] = (cpuSeconds(b, m.pid()) - idle[i]) / 2
	}
	var lines []string
	held := 0
	for i, mm := range mms {
		c, s := cpu1[i]-cpu0[i], cgs.stat(i+1).sub(thr0[i])
		r.memCPU, r.memRows = append(r.memCPU, c), append(r.memRows, mm.rows-rows0[i])
		held += len(mm.partitions)
		line := fmt.Sprintf("m%d: %7.0f rows (%5.1f%%), partitions %v, %5.2f cpu-s (%5.3f cores) = %7.0f rows/cpu-s; %3.0f GCs; idle %.3f cores; batches by cut %v (whole run)",
			i+1, r.memRows[i], 100*r.memRows[i]/float64(r.rows), mm.partitions, c, c/elapsed.Seconds(), r.memRows[i]/c,
			mm.gcs-gcs0[i], idle[i], mm.cuts)
		if cores > 0 {
			line += fmt.Sprintf("; throttled in %d of %d CFS periods", s.throttled, s.periods)
		}
		lines = append(lines, line)
	}
	for _, m := range ms {
		m.stop()
	}

	// Exactly once, after every member stopped (a late flush would show here).
	var total, uniq uint64
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := conn.QueryRow(ctx, "SELECT count(), uniqExact(collector_id, seq) FROM "+db+".packets").Scan(&total, &uniq); err != nil {
		b.Fatal(err)
	}
	if total != uint64(n) || uniq != uint64(n) {
		b.Fatalf("%d members: count() %d, uniqExact(collector_id, seq) %d; want both %d (exactly once)", members, total, uniq, n)
	}
	if held != scaleOutPartitions {
		b.Errorf("%d members hold %d partitions between them at the end, want %d", members, held, scaleOutPartitions)
	}
	var sumRows float64
	for _, x := range r.memRows {
		sumRows += x
	}
	b.Logf("%d member(s): group settled %.2f s after start (%v); while gated: %d rows inserted, %.0f decoded; gate open -> count() = N: %.2f s\n"+
		"    %8.0f rows/s (steady %8.0f, 10%%-90%% of the rows in %.2f-%.2f s; first insert after %.2f s); members inserted %.0f rows (%.4f x); "+
		"members %.0f rows/cpu-s; clickhouse %.2f cpu-s (%.2f cores), kafka %.2f cpu-s (%.2f cores); exactly once: %d rows, %d unique\n    %s",
		members, settled.Seconds(), desc, gated, decoded0, elapsed.Seconds(), r.rate(), r.steady, t10.Seconds(), t90.Seconds(), first.Seconds(), sumRows, sumRows/float64(r.rows),
		r.perIngCPU(), r.ch, r.chCores(), r.kafka, r.kafka/elapsed.Seconds(), total, uniq, strings.Join(lines, "\n    "))
	chExec(b, conn, "DROP DATABASE "+db+" SYNC")
	return r
}

// groupStable says whether group is Stable with n members that all hold partitions of topic,
// and all of its partitions assigned. (The cooperative-sticky rebalance goes in two rounds: the
// group is Stable in between with the revoked partitions not yet given to anyone; seen once.)
func groupStable(adm *kgo.Client, group, topic string, n int) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	gs, err := kadm.NewClient(adm).DescribeGroups(ctx, group)
	if err != nil {
		return false, err.Error()
	}
	g := gs[group]
	if g.State != "Stable" {
		return false, "state " + g.State
	}
	var per []int
	busy, assigned := 0, 0
	for _, m := range g.Members {
		c := 0
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, tp := range a.Topics {
				if tp.Topic == topic {
					c += len(tp.Partitions)
				}
			}
		}
		if c > 0 {
			busy++
		}
		assigned += c
		per = append(per, c)
	}
	return len(g.Members) == n && busy == n && assigned == scaleOutPartitions,
		fmt.Sprintf("%d members holding %v partitions", len(g.Members), per)
}

// memberCgroups gives each member a CPU cgroup of its own with a CFS bandwidth limit: the kernel
// lets the member's threads run at most that share of one core in every period.
type memberCgroups struct {
	dir string // the parent cgroup made for this benchmark
	v2  bool
}

// The CFS period: 50 ms, short so that a throttled member is not parked for long stretches (at
// 0.1 core: 5 ms of CPU in every 50 ms); the kernel wants quotas of at least 1 ms.
const cfsPeriod = 50_000

func newMemberCgroups(b *testing.B) *memberCgroups {
	cg := &memberCgroups{}
	name := fmt.Sprintf("packetlake-bench-%d", os.Getpid())
	switch {
	case fileExists("/sys/fs/cgroup/cgroup.controllers"): // cgroup v2, unified hierarchy
		cg.v2, cg.dir = true, filepath.Join("/sys/fs/cgroup", name)
		// The root may hold processes and still delegate controllers; "+cpu" is usually on already.
		if err := os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte("+cpu"), 0); err != nil {
			b.Logf("enable the cpu controller at the cgroup root: %v (trying anyway)", err)
		}
	case fileExists("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"): // cgroup v1 cpu controller
		cg.dir = filepath.Join("/sys/fs/cgroup/cpu", name)
	default:
		b.Fatal("no cgroup cpu controller (neither /sys/fs/cgroup/cgroup.controllers nor /sys/fs/cgroup/cpu/): this benchmark limits its members' CPU with one")
	}
	if err := os.Mkdir(cg.dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		b.Fatalf("make cgroup %s (needs root): %v", cg.dir, err)
	}
	if cg.v2 {
		if err := os.WriteFile(filepath.Join(cg.dir, "cgroup.subtree_control"), []byte("+cpu"), 0); err != nil {
			b.Fatalf("enable cpu in %s: %v", cg.dir, err)
		}
	}
	b.Cleanup(func() {
		ents, _ := os.ReadDir(cg.dir)
		for _, e := range ents {
			if e.IsDir() {
				rmCgroup(b, filepath.Join(cg.dir, e.Name()))
			}
		}
		rmCgroup(b, cg.dir)
	})
	return cg
}

// set makes (or keeps) member i's cgroup, limits it to cores of one core (0: no limit) and
// returns its cgroup.procs file.
func (cg *memberCgroups) set(b *testing.B, i int, cores float64) string {
	dir := filepath.Join(cg.dir, fmt.Sprintf("member-%d", i))
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		b.Fatalf("make cgroup %s: %v", dir, err)
	}
	quota := int(cores * cfsPeriod)
	var err error
	switch {
	case cg.v2 && cores > 0:
		err = os.WriteFile(filepath.Join(dir, "cpu.max"), fmt.Appendf(nil, "%d %d", quota, cfsPeriod), 0)
	case cg.v2:
		err = os.WriteFile(filepath.Join(dir, "cpu.max"), fmt.Appendf(nil, "max %d", cfsPeriod), 0)
	default:
		if cores <= 0 {
			quota = -1
		}
		// The period first: the quota is checked against it.
		if err = os.WriteFile(filepath.Join(dir, "cpu.cfs_period_us"), fmt.Appendf(nil, "%d", cfsPeriod), 0); err == nil {
			err = os.WriteFile(filepath.Join(dir, "cpu.cfs_quota_us"), fmt.Appendf(nil, "%d", quota), 0)
		}
	}
	if err != nil {
		b.Fatalf("set the CPU budget of %s: %v", dir, err)
	}
	return filepath.Join(dir, "cgroup.procs")
}

// rmCgroup removes an empty cgroup; its processes may take a moment to be gone after exit.
func rmCgroup(b *testing.B, dir string) {
	var err error
	for range 50 {
		if err = os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Logf("remove cgroup %s: %v", dir, err)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// cfsStat counts a member cgroup's CFS bandwidth periods: those in which it ran, and those in
// which it used up its quota and was throttled.
type cfsStat struct{ periods, throttled int }

func (a cfsStat) sub(b cfsStat) cfsStat {
	return cfsStat{a.periods - b.periods, a.throttled - b.throttled}
}

func (cg *memberCgroups) stat(i int) cfsStat {
	raw, _ := os.ReadFile(filepath.Join(cg.dir, fmt.Sprintf("member-%d", i), "cpu.stat"))
	var s cfsStat
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, _ := strings.Cut(line, " ")
		n, _ := strconv.Atoi(v)
		switch k {
		case "nr_periods":
			s.periods = n
		case "nr_throttled":
			s.throttled = n
		}
	}
	return s
}
