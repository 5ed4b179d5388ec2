package soak

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/packetlake/packetlake/ingester"
	"github.com/packetlake/packetlake/internal/childproc"
	"github.com/packetlake/packetlake/internal/testkit/nettest"
	"github.com/packetlake/packetlake/internal/testkit/testinfra"
	"github.com/packetlake/packetlake/query"
)

const (
	// outage is how long Apache Kafka is stopped: issue 13 asks for 10 minutes.
	outage = 10 * time.Minute
	// The quiet traffic of the outage: one datagram every quietPeriod (~85 packets/s arrive) in
	// frames of a few records (frameAge): ~35 small frames a second, the case where a frame's
	// buffer can hold far more than its length. They fill bufferCap in about eight minutes; the
	// rest of the outage is shed.
	quietPeriod = 10 * time.Millisecond
	frameAge    = 5 * time.Millisecond
	bufferCap   = 16 << 20
	// rssOverhead is the collector's memory besides the frames it buffers: the Go runtime and
	// heap of an idle collector, the code it runs, the BPF ring (ringBytes, mapped twice), the
	// three Kafka clients, the stats and flow messages waiting for the broker. Measured here
	// (2026-12-07): 63-73 MiB idle (it grows with the binary), 77-88 MiB with the cap full,
	// 87-100 MiB at the peak (recovery, while the buffered frames are compressed and sent).
	rssOverhead = 112 << 20
	ringBytes   = 4 << 20
)

// TestOutageBoundedAndCounted: a collector process on a veth in test-made namespaces, real UDP
// traffic through its XDP program. A burst while Apache Kafka is up, then Kafka is stopped for
// the outage while a quiet trickle goes on, then it is started again. Throughout, the collector
// process's RSS (/proc/PID/status) stays within bufferCap + rssOverhead: the buffer cap counts
// the memory frames really hold, not their length. After recovery everything is ingested and
// loss_budget accounts for every packet the kernel saw: stored, or shed by the collector (the
// shed stage equal to its records_shed), and counted in flows exactly.
func TestOutageBoundedAndCounted(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), outage+5*time.Minute)
	defer cancel()
	start := time.Now()
	v := nettest.NewVethPair(t)
	topic, stats, flows := env.Topic(t, 1), env.Topic(t, 1), env.Topic(t, 1)
	db := strings.ReplaceAll(env.Topic(t, 1), "-", "_")

	col := startCollector(t, v, "--topic", topic, "--stats-topic", stats, "--flows-topic", flows)
	rss := watchRSS(t, col.pid, bufferCap+rssOverhead)
	defer rss.stop()
	col.waitFor(t, ctx, "ready", func(m metrics) bool { return m.ok })
	t.Logf("collector pid %d ready, RSS %d KiB", col.pid, rss.now()/1024)

	// The burst, acknowledged.
	u := nettest.NewUDPFlows(t, v, 2)
	u.Burst(0, 20_000)
	burst := u.Total()
	m := col.waitFor(t, ctx, "burst acknowledged", settled(float64(burst)))
	t.Logf("burst of %d datagrams: %v records acknowledged, %v shed; RSS %d KiB, peak %d KiB", burst, m.v["records_acked_total"],
		m.v["records_shed_total"], rss.now()/1024, rss.peak()/1024)

	// The outage, quiet traffic all along.
	env.Kafka.Stop()
	t.Cleanup(func() { _ = env.Kafka.Restart(context.Background()) }) // no-op unless the test failed mid-outage
	stopTraffic := u.Run(ctx, quietPeriod, 1)
	down := time.Now()
	outageEnd := time.After(outage)
	tick := time.NewTicker(30 * time.Second)
	for waiting := true; waiting; {
		select {
		case <-outageEnd:
			waiting = false
		case <-rss.over:
			stopTraffic()
			t.Fatalf("collector RSS %d KiB after %s of outage: over the cap %d KiB + overhead %d KiB (buffered %v bytes, shed %v records)",
				rss.peak()/1024, time.Since(down).Round(time.Second), bufferCap/1024, rssOverhead/1024,
				col.scrape(t).v["buffered_bytes"], col.scrape(t).v["records_shed_total"])
		case <-tick.C:
			m := col.scrape(t)
			t.Logf("outage: RSS %d KiB (peak %d), Go heap in use %.0f KiB, buffered %v bytes in %v frames, shed %v records, seen %v",
				rss.now()/1024, rss.peak()/1024, m.v["go_memstats_heap_inuse_bytes"]/1024, m.v["buffered_bytes"],
				m.v["frames_produced_total"]-m.v["frames_acked_total"], m.v["records_shed_total"], m.v["kernel_seen_total"])
			if m.v["buffered_bytes"] > bufferCap {
				t.Errorf("buffered bytes %v over the cap %d", m.v["buffered_bytes"], bufferCap)
			}
			// The heap the runtime holds for the frames' buffers, resident or not yet (a buffer's
			// untouched pages become resident once the runtime reuses them): within the same bound.
			if h := m.v["go_memstats_heap_inuse_bytes"]; h > bufferCap+rssOverhead {
				t.Fatalf("Go heap in use %.0f KiB after %s of outage: over the cap %d KiB + overhead %d KiB (buffered %v bytes)",
					h/1024, time.Since(down).Round(time.Second), bufferCap/1024, rssOverhead/1024, m.v["buffered_bytes"])
			}
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	tick.Stop()
	stopTraffic()
	sent := u.Total()
	if err := env.Kafka.Restart(ctx); err != nil {
		t.Fatalf("restart kafka: %v", err)
	}
	m = col.waitFor(t, ctx, "recovery: buffered frames delivered", settled(float64(sent)))
	t.Logf("recovered: %d datagrams sent; seen %v, acked %v, shed %v, failed %v; RSS peak %d KiB (cap %d KiB + overhead %d KiB)",
		sent, m.v["kernel_seen_total"], m.v["records_acked_total"], m.v["records_shed_total"], m.v["records_failed_total"],
		rss.peak()/1024, bufferCap/1024, rssOverhead/1024)
	if m.v["records_shed_total"] == 0 {
		t.Errorf("nothing shed: the outage did not fill the %d-byte buffer", bufferCap)
	}
	rss.stop()
	col.stop(t)

	// Everything in ClickHouse, then the loss budget.
	cfg := ingester.DefaultConfig()
	cfg.Kafka.Brokers = []string{env.Kafka.Addr()}
	cfg.Topic, cfg.StatsTopic, cfg.FlowsTopic, cfg.Group = topic, stats, flows, "soak-"+db
	cfg.ClickHouse = env.CHConfig(db)
	cfg.FlushAge = 200 * time.Millisecond
	ing, err := ingester.New(cfg, ingester.Dependencies{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := ing.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer ing.Stop()
	if err := testinfra.WaitCommitted(ctx, env.Kafka.Addr(), cfg.Group, topic, stats, flows); err != nil {
		t.Fatal(err)
	}
	checkBudget(t, ctx, db, start)
	t.Logf("test took %s", time.Since(start).Round(time.Second))
}

// settled: the program has seen sent packets and every record read is acknowledged, shed or
// failed; nothing waits for Kafka.
func settled(sent float64) func(metrics) bool {
	return func(m metrics) bool {
		return m.v["kernel_seen_total"] >= sent && m.v["buffered_bytes"] == 0 &&
			m.v["records_acked_total"]+m.v["records_shed_total"]+m.v["records_failed_total"] == m.v["samples_read_total"]
	}
}

// checkBudget sums loss_budget over the run and compares it with the collector's final stats
// message and the tables.
func checkBudget(t *testing.T, ctx context.Context, db string, since time.Time) {
	t.Helper()
	ch := env.CH(t)
	var seen, acked, shed, failed, flowCounted, flowPackets, stored uint64
	var dups int64
	if err := ch.QueryRow(ctx, "SELECT kernel_seen, records_acked, records_shed, records_failed, JSONExtractUInt(raw, 'kernel_flow_counted') "+
		"FROM "+db+".collector_stats ORDER BY ts DESC LIMIT 1").Scan(&seen, &acked, &shed, &failed, &flowCounted); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueryRow(ctx, "SELECT (SELECT sum(packets) FROM "+db+".flows), count(), count() - uniqExact(host, collector_id, seq) FROM "+
		db+".packets").Scan(&flowPackets, &stored, &dups); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	p := query.Params{Since: since.Add(-time.Minute), Until: time.Now().Add(time.Minute), Limit: 10_000}
	if err := query.Run(ctx, query.Config{ClickHouse: env.CHConfig(db)}, "loss_budget", p, "json", &out); err != nil {
		t.Fatal(err)
	}
	sum := map[string]float64{}
	for dec := json.NewDecoder(&out); dec.More(); {
		var row map[string]any
		if err := dec.Decode(&row); err != nil {
			t.Fatal(err)
		}
		for k, v := range row {
			if x, ok := v.(float64); ok && !strings.HasSuffix(k, "_pct") {
				sum[k] += x
			}
		}
	}
	t.Logf("final stats: seen %d acked %d shed %d failed %d flow_counted %d; tables: %d rows, %d flow packets, %d duplicates; loss_budget summed: %v",
		seen, acked, shed, failed, flowCounted, stored, flowPackets, dups, sum)
	// Every packet not stored was shed, and loss_budget says so in its shed stage. Whether
	// loss_budget calls a shed packet flows_only or unaccounted depends on its minute: flows
	// count in the minute of their export, and the outage's were exported after it.
	want := map[string]float64{"seen": float64(seen), "stored": float64(acked), "shed": float64(shed),
		"sampled": 0, "failed": 0, "ring_full": 0, "malformed": 0, "ingest_lost": 0, "flow_failed": 0}
	for k, w := range want {
		if sum[k] != w {
			t.Errorf("loss_budget %s summed over the run: %v, want %v", k, sum[k], w)
		}
	}
	if sum["flows_only"]+sum["unaccounted"] != float64(shed) {
		t.Errorf("loss_budget flows_only + unaccounted: %v + %v, want the %d records shed", sum["flows_only"], sum["unaccounted"], shed)
	}
	if shed == 0 || stored != acked || dups != 0 || flowPackets != flowCounted || flowCounted != seen {
		t.Errorf("shed %d; %d rows stored of %d acknowledged, %d duplicates; flows count %d packets, the kernel %d (seen %d)",
			shed, stored, acked, dups, flowPackets, flowCounted, seen)
	}
}

// collectorProc is `packetlake collect` as a child process.
type collectorProc struct {
	pid     int
	metrics string // http://addr/metrics
	cmd     *exec.Cmd
	done    chan struct{}
	log     string
}

func startCollector(t *testing.T, v *nettest.Veth, args ...string) *collectorProc {
	t.Helper()
	addr := testinfra.FreeAddr(t)
	c := &collectorProc{metrics: "http://" + addr, log: filepath.Join(t.TempDir(), "collect.log"), done: make(chan struct{})}
	logf, err := os.Create(c.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	c.cmd = exec.Command(env.Bin, append([]string{"collect", "--iface", v.Name, "--netns", v.NS, "--brokers", env.Kafka.Addr(),
		"--host", "soak", "--ring-bytes", strconv.Itoa(ringBytes), "--max-buffered-bytes", strconv.Itoa(bufferCap),
		"--frame-max-age", frameAge.String(),
		"--metrics-addr", addr, "--pin-dir="}, args...)...) // unpinned: nothing outlives the test
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	if err := childproc.Start(c.cmd); err != nil {
		t.Fatal(err)
	}
	c.pid = c.cmd.Process.Pid
	go func() { c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		<-c.done
		if t.Failed() {
			b, _ := os.ReadFile(c.log)
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("collector log (tail):\n%s", b)
		}
	})
	return c
}

// stop ends the collector with SIGTERM, as an orchestrator does: it detaches, makes its last flow
// export, publishes its final stats and flushes.
func (c *collectorProc) stop(t *testing.T) {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(time.Minute):
		t.Fatal("collector did not exit within a minute of SIGTERM")
	}
	if !c.cmd.ProcessState.Success() {
		t.Errorf("collector exited with %v", c.cmd.ProcessState)
	}
}

// metrics is one scrape of the collector's /metrics (its own without the packetlake_collector_
// prefix, the Go runtime's as they are; the series of a labelled metric summed), and whether
// /healthz said ready.
type metrics struct {
	ok bool
	v  map[string]float64
}

func (c *collectorProc) scrape(t *testing.T) metrics {
	t.Helper()
	m := metrics{v: map[string]float64{}}
	cl := http.Client{Timeout: 5 * time.Second}
	if r, err := cl.Get(c.metrics + "/healthz"); err == nil {
		m.ok = r.StatusCode == http.StatusOK
		r.Body.Close()
	}
	r, err := cl.Get(c.metrics + "/metrics")
	if err != nil {
		return m
	}
	defer r.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(r.Body, 4<<20))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		name, _, _ := strings.Cut(strings.TrimPrefix(line[:max(sp, 0)], "packetlake_collector_"), "{")
		if x, err := strconv.ParseFloat(line[sp+1:], 64); err == nil && sp > 0 {
			m.v[name] += x
		}
	}
	return m
}

// waitFor scrapes until cond holds.
func (c *collectorProc) waitFor(t *testing.T, ctx context.Context, what string, cond func(metrics) bool) metrics {
	t.Helper()
	for {
		m := c.scrape(t)
		if cond(m) {
			return m
		}
		select {
		case <-c.done:
			t.Fatalf("%s: the collector exited (%v)", what, c.cmd.ProcessState)
		case <-ctx.Done():
			t.Fatalf("%s: not reached: %v", what, m.v)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// rssWatch samples a process's VmRSS every 200 ms and signals over once it passes a bound.
type rssWatch struct {
	over      chan struct{}
	quit      chan struct{}
	done      chan struct{}
	last, max atomic.Int64
}

func watchRSS(t *testing.T, pid int, bound int64) *rssWatch {
	w := &rssWatch{over: make(chan struct{}), quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		signalled := false
		for {
			if n, err := vmRSS(pid); err == nil {
				w.last.Store(n)
				if n > w.max.Load() {
					w.max.Store(n)
				}
				if n > bound && !signalled {
					signalled = true
					close(w.over)
				}
			}
			select {
			case <-w.quit:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(w.stop)
	return w
}

func (w *rssWatch) now() int64  { return w.last.Load() }
func (w *rssWatch) peak() int64 { return w.max.Load() }
func (w *rssWatch) stop() {
	select {
	case <-w.quit:
	default:
		close(w.quit)
	}
	<-w.done
}

// vmRSS is the resident set of pid in bytes, from /proc/PID/status.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
