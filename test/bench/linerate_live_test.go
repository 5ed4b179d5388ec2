package bench

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf/link"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sys/unix"

	"github.com/packetlake/packetlake/internal/local/kafkalocal"
	"github.com/packetlake/packetlake/internal/testkit/nettest"
	"github.com/packetlake/packetlake/record"
	"github.com/packetlake/packetlake/test/bench/gen"
)

// lineRateFlows is how many flows the generator cycles through (consecutive packets belong to
// different flows): a third of the kernel's IPv4 flow table (49152 flows), so none is refused.
const lineRateFlows = 1 << 14

// lineRateStep is one offered load: threads generator threads (pinned to CPU 0, then CPU 1),
// each paced at mpps/threads (0: flat out). squeezed confines the collector to CPU 0, where the
// generator and the receive softirq run: a collector short of CPU, the case sampling is for.
type lineRateStep struct {
	name     string
	mpps     float64
	threads  int
	squeezed bool
}

// lineRateResult is what one step measured.
type lineRateResult struct {
	step      lineRateStep
	sampleMax int
	d         time.Duration // generation time
	sent      uint64        // frames the generator transmitted (runs of the program, gen.Generated)
	genCPU    float64       // CPU-seconds of the generator threads: includes the receive side's softirq (veth NAPI, pl_xdp, skb, drop), which runs on the sending CPU
	rx        uint64        // observed end's rx_packets over the step
	txDropped uint64        // peer end's tx drops (veth queue full: never reached XDP)
	st        record.Stats
	collCPU   float64 // collector process CPU-seconds, generation time + 1 s
	kafkaCPU  float64 // the broker's, same window
	busy      float64 // all CPUs, non-idle seconds over the generation time (includes other work on the VM)
	softirq   float64 // of which softirq
	consumed  uint64  // records read back from the packets topic
	rateSum   uint64  // sum of their sample_rate
	maxRate   uint32
	flowPkts  uint64 // packets summed over the flow deltas read back from the flows topic
	flowRows  uint64
	load      string
}

// BenchmarkLineRateLive: the issue "Line rate"'s proof. A generator (bench/gen: BPF_PROG_TEST_RUN
// in live-frames mode, XDP_TX out of the peer end of a veth in a test-made namespace, 16384
// flows) offers rising loads to `packetlake collect` (its own process, XDP native, default config
// otherwise, producing to the real Apache Kafka). Per step (BENCH_LINERATE_SECONDS, default 4):
// kernel seen, records acked by Kafka, ring_full, sampled_out, shed, the sample rates of the
// records read back from Kafka, flows (exported deltas read back) against seen and the veth's rx
// counter, collector CPU. Each load runs twice, side by side: sampling off (--sample-max 1, the
// plain single-ring version) and on (default, max 64). Results: BENCHMARKS.md, "Line rate".
func BenchmarkLineRateLive(b *testing.B) {
	d := time.Duration(envInt("BENCH_LINERATE_SECONDS", 4)) * time.Second
	steps := []lineRateStep{
		{"0.25", 0.25, 1, false}, {"0.5", 0.5, 1, false}, {"1", 1, 1, false}, {"max", 0, 1, false},
		{"2 (2 thr)", 2, 2, false}, {"max (2 thr)", 0, 2, false}, {"max, collector on CPU 0", 0, 1, true},
	}
	for range b.N {
		requireServers(b)
		v := nettest.NewVethPair(b)
		// Two queues per end (veth's default is one): a frame sent on CPU k lands in the
		// observed end's queue k, whose NAPI runs on CPU k. With one queue, two senders overflow
		// it (half the frames dropped as the peer's tx_dropped).
		nettest.MustExec(b, v.NS, "ethtool", "-L", v.Name, "rx", "2", "tx", "2")
		nettest.MustExec(b, v.PeerNS, "ethtool", "-L", v.PeerName, "rx", "2", "tx", "2")
		g, err := gen.Load(lineRateFlows)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { g.Close() })
		var gl link.Link
		if err := nettest.Do(v.PeerNS, func() (err error) { gl, err = g.Attach(v.PeerIndex); return err }); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { gl.Close() })
		// Addressed to a MAC that is not the observed end's: after XDP the kernel's stack drops
		// each frame at once (PACKET_OTHERHOST), so nothing answers and the receive path stays
		// the driver's + packetlake's + an skb.
		frame := gen.TCPFrame(v.PeerMAC, net.HardwareAddr{2, 0, 0, 0, 0, 1}, v.Addr, 5001, 100)
		var res []lineRateResult
		for _, s := range steps {
			for _, sm := range []int{1, 64} {
				r := runLineRateStep(b, v, g, frame, s, sm, d)
				res = append(res, r)
				b.Logf("%s", r.detail())
			}
		}
		b.Logf("live line rate, %d flows, %v per step:\n%s", lineRateFlows, d, lineRateTable(res))
	}
}

func runLineRateStep(b *testing.B, v *nettest.Veth, g *gen.Generator, frame []byte, s lineRateStep, sampleMax int, d time.Duration) lineRateResult {
	requireServers(b)
	r := lineRateResult{step: s, sampleMax: sampleMax, d: d}
	topic := newTopic(b, "linerate", 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	err := kafkalocal.CreateTopic(ctx, env.Kafka.Addr(), topic+"-flows", 1)
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	c := startCollectorArgs(b, v, topic, "linerate", s.squeezed, "--sample-max", strconv.Itoa(sampleMax), "--flows-topic", topic+"-flows")
	time.Sleep(500 * time.Millisecond) // the producer's first connection and metadata
	rx0 := nettest.ReadLinkStats(b, v.NS, v.Name)
	tx0 := nettest.ReadLinkStats(b, v.PeerNS, v.PeerName)
	coll0, kafka0 := c.cpu(b), cpuSeconds(b, strconv.Itoa(env.Kafka.Pid()))
	busy0, soft0 := procStatBusy(b)
	gen0, err := g.Generated()
	if err != nil {
		b.Fatal(err)
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	errs := make([]error, s.threads)
	start := time.Now()
	for i := range s.threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cpu, err := genThread(v, g, frame, i, s.mpps*1e6/float64(s.threads), start, d)
			mu.Lock()
			r.genCPU += cpu
			errs[i] = err
			mu.Unlock()
		}()
	}
	wg.Wait()
	r.d = time.Since(start)
	busy1, soft1 := procStatBusy(b)
	r.busy, r.softirq = busy1-busy0, soft1-soft0
	for _, err := range errs {
		if err != nil {
			b.Fatalf("generator: %v", err)
		}
	}
	gen1, err := g.Generated()
	if err != nil {
		b.Fatal(err)
	}
	r.sent = gen1 - gen0
	time.Sleep(time.Second) // the last batches, frames and acks
	r.collCPU = c.cpu(b) - coll0
	r.kafkaCPU = cpuSeconds(b, strconv.Itoa(env.Kafka.Pid())) - kafka0
	r.st = c.stop(b)
	r.rx = nettest.ReadLinkStats(b, v.NS, v.Name).RxPackets - rx0.RxPackets
	r.txDropped = nettest.ReadLinkStats(b, v.PeerNS, v.PeerName).TxDropped - tx0.TxDropped
	r.consumed, r.rateSum, r.maxRate = readRecords(b, topic, r.st.RecordsAcked)
	r.flowPkts, r.flowRows = readFlows(b, topic+"-flows", r.st.KernelSeen)
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		r.load = strings.Join(strings.Fields(string(la))[:3], " ")
	}
	return r
}

// genThread sends from the peer namespace on a thread pinned to CPU cpu, paced at pps (0: flat
// out) in chunks of 4096 frames (~3 ms at full speed: the generator is attached, so a call costs
// no dispatcher swap, see gen.Attach), until d after start.
func genThread(v *nettest.Veth, g *gen.Generator, frame []byte, cpu int, pps float64, start time.Time, d time.Duration) (cpuSec float64, err error) {
	const chunk = 4096
	var sent uint64 // requested: an interrupted Send may run a few more (gen.Generated counts)
	err = nettest.Do(v.PeerNS, func() error {
		var all, one unix.CPUSet
		if err := unix.SchedGetaffinity(0, &all); err != nil {
			return err
		}
		one.Set(cpu)
		if err := unix.SchedSetaffinity(0, &one); err != nil {
			return err
		}
		defer unix.SchedSetaffinity(0, &all) // the thread goes back to the Go scheduler
		c0 := cpuSeconds(nil, "thread-self")
		for time.Since(start) < d {
			if err := g.Send(frame, v.PeerIndex, chunk); err != nil {
				return err
			}
			sent += chunk
			if pps > 0 {
				time.Sleep(time.Until(start.Add(time.Duration(float64(sent) / pps * float64(time.Second)))))
			}
		}
		cpuSec = cpuSeconds(nil, "thread-self") - c0
		return nil
	})
	return cpuSec, err
}

// startCollectorArgs starts `packetlake collect` on v with extra flags and returns once its XDP
// program is attached; onCPU0 runs it under taskset -c 0 (taskset execs it: the pid is the
// collector's).
func startCollectorArgs(b *testing.B, v *nettest.Veth, topic, host string, onCPU0 bool, extra ...string) *collectorProc {
	c := &collectorProc{topic: topic}
	args := append([]string{"collect", "--iface", v.Name, "--netns", v.NS, "--xdp-mode", "native",
		"--brokers", env.Kafka.Addr(), "--topic", topic, "--stats-topic", topic + "-stats", "--host", host,
		"--metrics-addr", "", "--stats-interval", "1h", "--log-level", "warn",
		// A benchmark's run ends with it: without this, SIGTERM leaves the program and its
		// 16 MiB ring pinned under /sys/fs/bpf/packetlake/netns/ after the namespace is gone.
		"--on-stop", "detach"}, extra...)
	c.cmd = exec.Command(env.Bin, args...)
	if onCPU0 {
		c.cmd = exec.Command("taskset", append([]string{"-c", "0", env.Bin}, args...)...)
	}
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	if err := c.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			c.cmd.Process.Signal(syscall.SIGTERM)
			c.cmd.Wait()
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out, _ := nettest.Exec(context.Background(), v.NS, "ip", "link", "show", "dev", v.Name)
		if strings.Contains(string(out), "xdp") {
			return c
		}
		if time.Now().After(deadline) || c.cmd.ProcessState != nil {
			b.Fatalf("collector did not attach to %s: %s", v.Name, c.out.String())
		}
	}
}

// procStatBusy: seconds all CPUs spent not idle (user..steal, without idle and iowait), and in
// softirq, since boot.
func procStatBusy(tb testing.TB) (busy, softirq float64) {
	s, err := os.ReadFile("/proc/stat")
	if err != nil {
		tb.Fatal(err)
	}
	f := strings.Fields(strings.SplitN(string(s), "\n", 2)[0]) // "cpu user nice system idle iowait irq softirq steal ..."
	for i, name := range []string{"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"} {
		n, _ := strconv.ParseFloat(f[1+i], 64)
		switch name {
		case "idle", "iowait":
		case "softirq":
			softirq = n / 100
			busy += n / 100
		default:
			busy += n / 100
		}
	}
	return busy, softirq
}

var sampleRateOff = func() int {
	for _, m := range record.KernelMembers {
		if m.Name == "sample_rate" {
			return m.Offset
		}
	}
	panic("no sample_rate in pl_record")
}()

// readRecords reads the packets topic back from the start until want records (or 10 s without
// any): how many, and the sum and max of their sample_rate.
func readRecords(b *testing.B, topic string, want uint64) (n, rateSum uint64, maxRate uint32) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Kafka.Addr()), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(64<<20))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	idle := time.Now()
	for deadline := time.Now().Add(3 * time.Minute); n < want && time.Now().Before(deadline) && time.Since(idle) < 10*time.Second; {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			idle = time.Now()
			_, samples, err := record.ParseFrame(r.Value)
			if err != nil {
				b.Errorf("frame at offset %d: %v", r.Offset, err)
				return
			}
			for len(samples) > 0 {
				l, _ := record.SampleLen(samples) // ParseFrame checked every sample
				rate := binary.LittleEndian.Uint32(samples[sampleRateOff:])
				rateSum += uint64(rate)
				maxRate = max(maxRate, rate)
				n++
				samples = samples[l:]
			}
		})
	}
	return n, rateSum, maxRate
}

// readFlows sums the packets of every flow delta on the flows topic, until want packets (or 5 s
// without a message).
func readFlows(b *testing.B, topic string, want uint64) (pkts, rows uint64) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Kafka.Addr()), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	idle := time.Now()
	for deadline := time.Now().Add(time.Minute); pkts < want && time.Now().Before(deadline) && time.Since(idle) < 5*time.Second; {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			idle = time.Now()
			var m record.FlowMessage
			if err := json.Unmarshal(r.Value, &m); err != nil {
				b.Errorf("flow message: %v", err)
				return
			}
			for _, f := range m.Flows {
				pkts += f.Packets
				rows++
			}
		})
	}
	return pkts, rows
}

// lost is every record the pipeline lost, counted: ring full, shed, failed, malformed.
func (r lineRateResult) lost() uint64 {
	return r.st.KernelRingFull + r.st.RecordsShed + r.st.RecordsFailed + r.st.SamplesMalformed
}

// exact: every packet seen is a record Kafka acknowledged, one sampled out, or one counted lost,
// the records read back are the ones acknowledged, and the flows hold every packet seen, which
// is every packet the veth received.
func (r lineRateResult) exact() bool {
	st := r.st
	return st.RecordsAcked+st.KernelSampledOut+r.lost() == st.KernelSeen && r.consumed == st.RecordsAcked &&
		r.flowPkts == st.KernelSeen && st.FlowPacketsExported == st.KernelSeen && st.KernelFlowCounted == st.KernelSeen &&
		r.rx == st.KernelSeen
}

func (r lineRateResult) detail() string {
	st := r.st
	return fmt.Sprintf("step %s sample-max %d (load %s): sent %d in %v (gen cpu %.2f s), veth rx %d, peer tx dropped %d; kernel seen %d, emitted %d, ring_full %d, sampled_out %d, flow_counted %d; read %d, acked %d, shed %d, failed %d, malformed %d; read back %d records, rate sum %d, max %d; flows exported %d pkts (read back %d in %d rows, lost %d, retired %d); cpu: collector %.2f s, kafka %.2f s, all CPUs busy %.2f s (softirq %.2f)",
		r.step.name, r.sampleMax, r.load, r.sent, r.d.Round(time.Millisecond), r.genCPU, r.rx, r.txDropped, st.KernelSeen, st.KernelEmitted, st.KernelRingFull,
		st.KernelSampledOut, st.KernelFlowCounted, st.SamplesRead, st.RecordsAcked, st.RecordsShed, st.RecordsFailed, st.SamplesMalformed,
		r.consumed, r.rateSum, r.maxRate, st.FlowPacketsExported, r.flowPkts, r.flowRows, st.FlowLostPackets, st.FlowsRetired,
		r.collCPU, r.kafkaCPU, r.busy, r.softirq)
}

func lineRateTable(res []lineRateResult) string {
	var out strings.Builder
	fmt.Fprintf(&out, "| offered Mpps (gen threads) | sampling | seen Mpps (veth rx) | records acked by Kafka /s | ring_full | sampled_out | shed | rate mean of kept / max | sum(rate)/seen | flows == seen == rx | acked+sampled_out+lost == seen | collector CPU-s | records per collector CPU-s | collector cores per Mpps seen | gen+softirq cores per Mpps | Kafka CPU-s | busy CPUs | load |\n")
	fmt.Fprintf(&out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range res {
		st, sec := r.st, r.d.Seconds()
		seen := float64(max(st.KernelSeen, 1))
		pct := func(n uint64) string { return fmt.Sprintf("%.1f%%", 100*float64(n)/seen) }
		samp := "off"
		if r.sampleMax > 1 {
			samp = "max " + strconv.Itoa(r.sampleMax)
		}
		fmt.Fprintf(&out, "| %s (%d) | %s | %.2f (%.2f) | %.2fM | %s | %s | %s | %.2f / %d | %.3f | %v | %v | %.2f | %.2fM | %.2f | %.2f | %.2f | %.2f | %s |\n",
			r.step.name, r.step.threads, samp, seen/sec/1e6, float64(r.rx)/sec/1e6, float64(st.RecordsAcked)/sec/1e6,
			pct(st.KernelRingFull), pct(st.KernelSampledOut), pct(st.RecordsShed),
			float64(r.rateSum)/float64(max(r.consumed, 1)), r.maxRate, float64(r.rateSum)/seen,
			r.flowPkts == st.KernelSeen && st.FlowPacketsExported == st.KernelSeen && r.rx == st.KernelSeen,
			r.exact(), r.collCPU, float64(st.RecordsAcked)/r.collCPU/1e6, r.collCPU/(seen/1e6),
			(r.genCPU/sec)/(seen/sec/1e6), r.kafkaCPU, r.busy/sec, r.load)
	}
	return out.String()
}
