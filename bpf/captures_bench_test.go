package bpf

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/packetlake/packetlake/internal/testkit/nettest"
	"github.com/packetlake/packetlake/record"
	"github.com/packetlake/packetlake/schema"
)

// captureFrame is one packet of the shared real captures (testpcaps), as Ethernet.
type captureFrame struct {
	file   string
	data   []byte
	kind   string // what its record shows: "L7 snippet", "IPv4", "IPv6", "other"
	tunnel bool   // its record is of a tunnel's inner packet: also counted in the "tunnelled" row
}

// captureFrames reads every packet of every capture in the shared directory, in file order.
// Frames that BPF_PROG_TEST_RUN cannot run (under 14 bytes) or whose link type has no Ethernet
// form are counted in skipped, by reason.
func captureFrames(t testing.TB) (frames []captureFrame, skipped map[string]int) {
	files, _ := filepath.Glob(filepath.Join(pcapDir, "*", "*.pcap*"))
	if len(files) == 0 {
		t.Fatalf("no captures under %s", pcapDir)
	}
	sort.Strings(files)
	skipped = map[string]int{}
	for _, path := range files {
		fr, lt, err := nettest.ReadPcap(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fr {
			eth, ok := nettest.ToEthernet(lt, f.Data)
			switch {
			case !ok:
				skipped["link type "+lt.String()]++
			case len(eth) < 14:
				skipped["under 14 bytes"]++
			default:
				frames = append(frames, captureFrame{file: strings.TrimPrefix(path, pcapDir+"/"), data: eth})
			}
		}
	}
	return frames, skipped
}

// BenchmarkParserCaptures: the "realistic mix" of BENCHMARKS.md, "Line rate": every packet of
// the shared real captures (../shared/pcaps, nobody here wrote them), each run captureRepeat times
// with BPF_PROG_TEST_RUN (the kernel's own ns/packet), side by side, packet by packet: the empty
// program, pl_xdp without flows or sampling, and pl_xdp as attached by default (flows +
// sampling); "pl_xdp" is the program AttachXDP attaches on an ordinary MTU, pl_xdp_linear. The
// mean is over packets (each packet of the captures weighs one). Repeating one packet, its
// flow's first run inserts the entry and the rest hit it. The ring is drained after every call
// (ring_full stays 0, checked). Three passes; per packet the median of the passes. The default
// configuration is loaded twice, apart from the load that runs the empty program and the
// yardsticks, and its column is the mean of the two, as BenchmarkParserObjects does: one load
// alone read 1-4 ns more than other loads of the same object in four runs (BENCH.md, session 10).
// Measures once per call, whatever b.N, and reports in its log.
func BenchmarkParserCaptures(b *testing.B) {
	const captureRepeat = 2000
	const passes = 3
	with := newEnv(b, Config{RingBytes: benchRing})
	without := newEnv(b, Config{RingBytes: benchRing, NoFlows: true, SampleMax: 1})
	def1 := newEnv(b, Config{RingBytes: benchRing}) // the default configuration, twice
	def2 := newEnv(b, Config{RingBytes: benchRing})
	frames, skipped := captureFrames(b)
	classifyFrames(b, without, frames) // the non-flow object: no flow counted
	progs := []struct {
		name string
		e    *env
		p    *ebpf.Program
	}{
		{"empty", with, with.o.objs.PlXdpPass},
		{"pl_xdp, no flows", without, without.o.xdpProg()},
		{"pl_xdp (default)", def1, def1.o.xdpProg()},
		{"pl_xdp (default), second load", def2, def2.o.xdpProg()},
	}
	envs := []*env{with, without, def1, def2}
	var before [][]uint64
	for _, e := range envs {
		before = append(before, readStats(b, e))
	}
	per := make([][][]time.Duration, len(progs)) // [prog][frame][pass]
	for i := range per {
		per[i] = make([][]time.Duration, len(frames))
	}
	passMean := make([][]float64, len(progs))
	ops := newOpCosts(with)
	start := time.Now()
	load0, _ := os.ReadFile("/proc/loadavg")
	quiet := otherWork()
	for range passes {
		sum := make([]float64, len(progs))
		for fi, f := range frames {
			for pi, p := range progs {
				ret, d, err := p.p.Benchmark(f.data, captureRepeat, nil)
				if err != nil || ret != xdpPass {
					b.Fatalf("%s, %s: %d, %v", p.name, f.file, ret, err)
				}
				p.e.drainSamples(b)
				per[pi][fi] = append(per[pi][fi], d)
				sum[pi] += float64(d.Nanoseconds())
			}
		}
		for pi := range progs {
			passMean[pi] = append(passMean[pi], sum[pi]/float64(len(frames)))
		}
		measureOpCosts(b, with, with.o.objs.PlXdpPass, ops, frames[0].data, 20*captureRepeat)
	}
	wall := time.Since(start)
	other, steal := quiet()
	load1, _ := os.ReadFile("/proc/loadavg")
	for i, e := range envs {
		if err := e.o.Flush(); err != nil {
			b.Fatal(err)
		}
		e.drainSamples(b)
		d := readStats(b, e)
		if full := d[record.StatRingFull] - before[i][record.StatRingFull]; full != 0 {
			b.Fatalf("%d records lost to a full ring: the numbers would be wrong", full)
		}
		if out := d[record.StatSampledOut] - before[i][record.StatSampledOut]; out != 0 {
			b.Fatalf("%d records sampled out: the numbers would be wrong", out)
		}
	}
	// Per packet the median of the passes; means over all packets and by kind.
	med := func(pi, fi int) float64 {
		d := append([]time.Duration(nil), per[pi][fi]...)
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return float64(d[len(d)/2].Nanoseconds())
	}
	kinds := []string{"all"}
	count := map[string]int{}
	sums := map[string][]float64{}
	for fi, f := range frames {
		ks := []string{"all", f.kind}
		if f.tunnel {
			ks = append(ks, "tunnelled (VXLAN, Geneve, GRE; inner packet parsed)")
		}
		for _, k := range ks {
			if sums[k] == nil {
				sums[k] = make([]float64, len(progs))
				if k != "all" {
					kinds = append(kinds, k)
				}
			}
			count[k]++
			for pi := range progs {
				sums[k][pi] += med(pi, fi)
			}
		}
	}
	sort.Strings(kinds[1:])
	var out strings.Builder
	fmt.Fprintf(&out, "%s UTC, load %s -> %s, %s; %s\nmeasured in the same run, after each pass (pl.c's pl_cost_* against the empty program, %d runs x 5 rounds, median):\n",
		start.UTC().Format("2006-01-02 15:04"), strings.Fields(string(load0))[0], strings.Fields(string(load1))[0], otherWorkLine(other, steal), machineFacts(), 20*captureRepeat)
	b.ReportMetric(other, "other-cpus")
	reportOpCosts(b, &out, ops)
	fmt.Fprintf(&out, "%d packets from the shared captures (skipped: %v), %d runs each per pass, %d passes, %.0f s; per pass, mean of all packets, empty / no flows / default:",
		len(frames), skipped, captureRepeat, passes, wall.Seconds())
	for i := range passes {
		def := (passMean[2][i] + passMean[3][i]) / 2
		fmt.Fprintf(&out, " %.1f / %.1f / %.1f (%.2fx);", passMean[0][i], passMean[1][i], def, def/passMean[0][i])
	}
	fmt.Fprintf(&out, "\nthe default's two loads, mean of all packets: %.1f and %.1f", sums["all"][2]/float64(count["all"]), sums["all"][3]/float64(count["all"]))
	fmt.Fprintf(&out, "\n| packets | n | empty | pl_xdp, no flows | ratio | pl_xdp (default) | ratio |\n|---|---|---|---|---|---|---|\n")
	for _, k := range kinds {
		m := make([]float64, len(progs))
		for pi := range progs {
			m[pi] = sums[k][pi] / float64(count[k])
		}
		m[2] = (m[2] + m[3]) / 2 // the default configuration: the mean of its two loads
		fmt.Fprintf(&out, "| %s | %d | %.1f | %.1f | %.2fx | %.1f | **%.2fx** |\n", k, count[k], m[0], m[1], m[1]/m[0], m[2], m[2]/m[0])
		if k == "all" {
			b.ReportMetric(m[2]/m[0], "x-empty")
			b.ReportMetric(m[1]/m[0], "x-empty-noflows")
		}
	}
	b.Logf("ns/packet, BPF_PROG_TEST_RUN, mean over every packet of the real captures:\n%s", out.String())
}

// classifyFrames sets each frame's kind from the record e's program gives for it: with an L7
// snippet, IPv4 or IPv6 without one, or non-IP.
func classifyFrames(b *testing.B, e *env, frames []captureFrame) {
	for i := range frames {
		d := e.run(b, frames[i].data, false)
		frames[i].tunnel = d.p.TunnelDepth > 0
		switch {
		case d.k.L7Kind != schema.L7None:
			frames[i].kind = "L7 snippet (DNS/TLS/HTTP)"
		case d.p.IPVersion == 4:
			frames[i].kind = "IPv4, no snippet"
		case d.p.IPVersion == 6:
			frames[i].kind = "IPv6, no snippet"
		default:
			frames[i].kind = "non-IP"
		}
	}
}
