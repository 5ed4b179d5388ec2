package bpf

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// machineFacts names what differs between two machines of the same kind and moves the parser's
// ratio to the empty program: the CPU, the kernel, the call/return mitigations (under SRSO
// "Safe RET" every return goes through a thunk) and the clock source behind bpf_ktime_get_ns.
func machineFacts() string {
	// A hypervisor may hide the model name ("AMD EPYC"); family/model/stepping still tell
	// Zen 2, 3, 4 and 5 apart (families 23, 25, 25, 26), whose calls and returns cost differently.
	cpu := map[string]string{}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() && sc.Text() != "" { // the first CPU's block
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
				cpu[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
		f.Close()
	}
	model := fmt.Sprintf("%s (family %s model %s stepping %s, microcode %s)", cpu["model name"],
		cpu["cpu family"], cpu["model"], cpu["stepping"], cpu["microcode"])
	var u unix.Utsname
	_ = unix.Uname(&u)
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			return "?"
		}
		return strings.TrimSpace(string(b))
	}
	var mit []string
	for _, v := range []string{"spec_rstack_overflow", "retbleed", "spectre_v2"} {
		mit = append(mit, v+": "+read("/sys/devices/system/cpu/vulnerabilities/"+v))
	}
	// The ring (64 MiB here, 16 by default) is written through once per lap: whether it fits the
	// last-level cache decides whether its writes miss (BENCH.md).
	return fmt.Sprintf("CPU %s, L3 %s, kernel %s, clocksource %s; %s", model,
		read("/sys/devices/system/cpu/cpu0/cache/index3/size"), unix.ByteSliceToString(u.Release[:]),
		read("/sys/devices/system/clocksource/clocksource0/current_clocksource"), strings.Join(mit, "; "))
}

// opCost is one yardstick of pl.c (pl_cost_*): a program doing one operation costN times.
type opCost struct {
	name, metric string
	p            *ebpf.Program
	ns           []float64 // per pass: (median of the program - the empty one's) / costN
}

// costN is PL_COST_N in pl.c: how many times each pl_cost_* program does its operation.
const costN = 16

// newOpCosts lists the yardsticks of e's object.
func newOpCosts(e *env) []*opCost {
	return []*opCost{
		{name: "helper call + return (bpf_get_prandom_u32)", metric: "ns/helper-call", p: e.o.objs.PlCostHelper},
		{name: "BPF-to-BPF call + return", metric: "ns/bpf-call", p: e.o.objs.PlCostCall},
		{name: "bpf_ktime_get_ns", metric: "ns/ktime", p: e.o.objs.PlCostKtime},
		{name: "ring reserve + commit", metric: "ns/ring-reserve-commit", p: e.o.objs.PlCostRing},
	}
}

// measureOpCosts runs the empty program and each yardstick on frame, interleaved, 5 rounds of
// repeat runs, and adds the pass's per-operation cost (median round) to each.
func measureOpCosts(b *testing.B, e *env, empty *ebpf.Program, ops []*opCost, frame []byte, repeat int) {
	const rounds = 5
	d := make([][]time.Duration, len(ops)+1)
	progs := []*ebpf.Program{empty}
	for _, o := range ops {
		progs = append(progs, o.p)
	}
	for range rounds {
		for i, p := range progs {
			ret, t, err := p.Benchmark(frame, repeat, nil)
			if err != nil || ret != xdpPass {
				b.Fatalf("yardstick %d: %d, %v", i, ret, err)
			}
			d[i] = append(d[i], t)
		}
		e.drainSamples(b) // the ring yardstick's discarded samples: nothing to read, space back
	}
	med := func(ds []time.Duration) float64 {
		ds = append([]time.Duration(nil), ds...)
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return float64(ds[len(ds)/2].Nanoseconds())
	}
	base := med(d[0])
	for i, o := range ops {
		o.ns = append(o.ns, (med(d[i+1])-base)/costN)
	}
}

// reportOpCosts writes one line per yardstick (median of the passes, and each pass) and reports
// the medians as metrics.
func reportOpCosts(b *testing.B, out *strings.Builder, ops []*opCost) {
	for _, o := range ops {
		ns := append([]float64(nil), o.ns...)
		sort.Float64s(ns)
		m := ns[len(ns)/2]
		fmt.Fprintf(out, "- one %s: **%.1f ns** (passes:", o.name, m)
		for _, v := range o.ns {
			fmt.Fprintf(out, " %.1f", v)
		}
		out.WriteString(")\n")
		b.ReportMetric(m, o.metric)
	}
}
