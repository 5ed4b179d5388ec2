package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/packetlake/packetlake/record"
)

// The "Line rate" measurements of BENCHMARKS.md, run by `make bench` (about a minute; they want an
// otherwise idle 2-CPU machine): go test ./bpf/ -run '^$' -bench LineRate. Each measures once
// per call, whatever b.N, and reports in its log.

func lineRateOn(t testing.TB) {
	if runtime.NumCPU() < 2 {
		t.Fatal("the line-rate measurements need 2 CPUs: one generates, one reads")
	}
}

func ordinaryFrame() []byte {
	return cat(ether(0x0800), ip4{ttl: 64, proto: ipProto.TCP}.build(
		tcp{sport: 50000, dport: 5001, seq: 1, ack: 1, flags: 0x010, win: 1000}.build(fill(100, 0x41))))
}

// TestLineRateCost: ns/packet from BPF_PROG_TEST_RUN's own timing, one run, side by side: the
// empty program, pl_xdp without flow counting or sampling, pl_xdp with both (the default). The
// ring is drained between chunks (no ring_full, no sampling pressure), so "with" pays the flow
// map update on top of the same record write. Median of 5 chunks of 2^17 packets each.
func BenchmarkLineRateCost(b *testing.B) {
	t := b
	lineRateOn(t)
	with := newEnv(t, Config{RingBytes: benchRing})
	without := newEnv(t, Config{RingBytes: benchRing, NoFlows: true, SampleMax: 1})
	pkts := map[string][]byte{"tcp_ack_100B": ordinaryFrame()}
	for _, c := range parseCases() {
		switch c.name {
		case "ipv4_tcp_syn", "ipv4_udp_dns", "ipv6_udp_dns":
			pkts[c.name] = c.frame
		}
	}
	names := make([]string, 0, len(pkts))
	for n := range pkts {
		names = append(names, n)
	}
	sort.Strings(names)
	const chunk = 1 << 17
	median := func(e *env, p *ebpf.Program, frame []byte) time.Duration {
		var per []time.Duration
		for range 5 {
			_, d, err := p.Benchmark(frame, chunk, nil)
			if err != nil {
				t.Fatal(err)
			}
			per = append(per, d)
			e.drainSamples(t)
		}
		sort.Slice(per, func(i, j int) bool { return per[i] < per[j] })
		return per[len(per)/2]
	}
	var out strings.Builder
	fmt.Fprintf(&out, "| packet | empty | pl_xdp, no flows, no sampling | pl_xdp + flows + sampling | flows cost | ratio with/without |\n|---|---|---|---|---|---|\n")
	for _, n := range names {
		f := pkts[n]
		empty := median(with, with.o.objs.PlXdpPass, f)
		wo := median(without, without.o.xdpProg(), f)
		w := median(with, with.o.xdpProg(), f)
		fmt.Fprintf(&out, "| %s | %d | %d | %d | %+d | %.2f |\n", n, empty.Nanoseconds(), wo.Nanoseconds(), w.Nanoseconds(),
			w.Nanoseconds()-wo.Nanoseconds(), float64(w)/float64(wo))
	}
	for _, e := range []*env{with, without} {
		if err := e.o.Flush(); err != nil {
			t.Fatal(err)
		}
		e.drainSamples(t)
		if d := readStats(t, e); d[record.StatRingFull] != 0 || d[record.StatSampledOut] != 0 {
			t.Fatalf("ring_full %d sampled_out %d: the numbers would be wrong", d[record.StatRingFull], d[record.StatSampledOut])
		}
	}
	t.Logf("ns/packet, BPF_PROG_TEST_RUN, median of 5 x %d:\n%s", chunk, out.String())
}

var sampleRateOff = func() int {
	for _, m := range record.KernelMembers {
		if m.Name == "sample_rate" {
			return m.Offset
		}
	}
	panic("no sample_rate in pl_record")
}()

// TestLineRateDrain: offered load rising from 0.5 Mpps to flat out, one ordinary 166-byte TCP
// frame, a generator thread pinned to CPU 0 (BPF_PROG_TEST_RUN, paced in chunks), a reader pinned
// to CPU 1 walking every record like the collector. Default 16 MiB ring. Per step: packets seen,
// records read per second, ring_full, sampled_out, the sample rates used, and whether the flows
// (map cleared before the step) sum to exactly the packets seen. Sampling off vs on (max 64).
func BenchmarkLineRateDrain(b *testing.B) {
	t := b
	lineRateOn(t)
	frame := ordinaryFrame()
	var out strings.Builder
	fmt.Fprintf(&out, "| sampling | offered Mpps | seen Mpps | records/s read | ring_full | sampled_out | rate (mean of kept / max) | sum(sample_rate)/seen | flows == seen |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, sampleMax := range []int{1, 64} {
		e := newEnv(t, Config{SampleMax: sampleMax})
		for _, mpps := range []float64{0.5, 1, 2, 4, 0} { // 0: flat out
			res := driveStep(t, e, frame, mpps, 2*time.Second)
			off := fmt.Sprintf("%.1f", mpps)
			if mpps == 0 {
				off = "max"
			}
			fmt.Fprintf(&out, "| %s | %s | %.2f | %.2fM | %.1f%% | %.1f%% | %.1f / %d | %.3f | %v |\n",
				map[bool]string{true: "off", false: "max 64"}[sampleMax == 1], off,
				float64(res.seen)/res.elapsed.Seconds()/1e6, float64(res.read)/res.elapsed.Seconds()/1e6,
				100*float64(res.full)/float64(res.seen), 100*float64(res.out)/float64(res.seen),
				float64(res.rateSum)/float64(max(res.read, 1)), res.maxRate,
				float64(res.rateSum)/float64(res.seen), res.flows == res.seen)
			if res.flows != res.seen || res.read+res.full+res.out != res.seen {
				t.Errorf("step %v: seen %d, flows %d, read %d ring_full %d sampled_out %d", off, res.seen, res.flows, res.read, res.full, res.out)
			}
		}
	}
	t.Logf("drain at rising offered load:\n%s", out.String())
}

type stepResult struct {
	elapsed                      time.Duration
	seen, read, full, out, flows uint64
	rateSum                      uint64
	maxRate                      uint32
}

func driveStep(t testing.TB, e *env, frame []byte, mpps float64, dur time.Duration) stepResult {
	t.Helper()
	clearFlows(t, e.o)
	e.drainSamples(t)
	before := readStats(t, e)
	var res stepResult
	const chunk = 1 << 18 // per syscall: ~17 ms of dispatcher swap amortized (BENCH.md)
	start := time.Now()
	prodErr := make(chan error, 1)
	go func() {
		prodErr <- onCPU(0, func() error {
			sent := 0
			for time.Since(start) < dur {
				if _, _, err := e.o.objs.PlXdp.Benchmark(frame, chunk, nil); err != nil {
					return err
				}
				sent += chunk
				if mpps > 0 { // pace: wait until the offered rate allows the next chunk
					due := start.Add(time.Duration(float64(sent) / (mpps * 1e6) * float64(time.Second)))
					time.Sleep(time.Until(due))
				}
			}
			return nil
		})
	}()
	var rec ringbuf.Record
	readErr := onCPU(1, func() error {
		produced := false
		for {
			e.rd.SetDeadline(time.Now().Add(10 * time.Millisecond))
			err := e.rd.ReadInto(&rec)
			if err == nil {
				for s := rec.RawSample; len(s) > 0; {
					n, err := record.SampleLen(s)
					if err != nil {
						return err
					}
					r := binary.LittleEndian.Uint32(s[sampleRateOff:])
					res.rateSum += uint64(r)
					res.maxRate = max(res.maxRate, r)
					res.read++
					s = s[n:]
				}
				continue
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return err
			}
			if !produced {
				select {
				case err := <-prodErr:
					if err != nil {
						return err
					}
					produced = true
					res.elapsed = time.Since(start)
					if err := e.o.Flush(); err != nil {
						return err
					}
				default:
				}
				continue
			}
			return nil
		}
	})
	if readErr != nil {
		t.Fatal(readErr)
	}
	d := statsDelta(t, e, before)
	res.seen, res.full, res.out = d[record.StatSeen], d[record.StatRingFull], d[record.StatSampledOut]
	_, tot := sumFlows(t, e.o)
	res.flows = tot.Packets
	return res
}

// TestLineRateRingContention: is the one shared ring a bottleneck when both CPUs produce? The
// kernel's ns/packet of pl_xdp (sampling off, flows on) with one producer thread (CPU 0) and with
// two at once (CPU 0 and 1), into a 256 MiB ring nobody reads during the run (large enough that
// nothing is refused). If the ring's lock (taken once per 32-record batch) mattered, the
// concurrent cost per packet would rise well above the single one.
func BenchmarkLineRateRingContention(b *testing.B) {
	t := b
	lineRateOn(t)
	e := newEnv(t, Config{RingBytes: 256 << 20, SampleMax: 1})
	frame := ordinaryFrame()
	const n = 1 << 18
	run := func(cpus ...int) []time.Duration {
		per := make([]time.Duration, len(cpus))
		errs := make(chan error, len(cpus))
		for i, cpu := range cpus {
			go func() {
				errs <- onCPU(cpu, func() error {
					_, d, err := e.o.objs.PlXdp.Benchmark(frame, n, nil)
					per[i] = d
					return err
				})
			}()
		}
		for range cpus {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if err := e.o.Flush(); err != nil {
			t.Fatal(err)
		}
		e.drainSamples(t)
		return per
	}
	var out strings.Builder
	for range 3 {
		one := run(0)
		two := run(0, 1)
		fmt.Fprintf(&out, "one producer: %d ns/packet; two concurrent: %d and %d ns/packet\n",
			one[0].Nanoseconds(), two[0].Nanoseconds(), two[1].Nanoseconds())
	}
	if d := readStats(t, e); d[record.StatRingFull] != 0 {
		t.Fatalf("ring_full %d: the ring was too small for the measurement", d[record.StatRingFull])
	}
	t.Logf("ring contention, pl_xdp, 166-byte TCP frame, %d packets per producer:\n%s", n, out.String())
}
