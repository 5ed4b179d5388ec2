package bpf

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
)

// benchObject is one program under comparison with its own ring (drained after every call).
type benchObject struct {
	label string
	prog  *ebpf.Program
	drain func(testing.TB)
}

// loadObjectFile loads a bpf2go object file (an earlier version of pl_bpfel.o, e.g. from
// `git show REV:bpf/pl_bpfel.o`) configured as Load configures the committed one, and returns
// its program prog with a reader on its ring.
func loadObjectFile(t testing.TB, label, path, prog string, cfg Config) benchObject {
	t.Helper()
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if err := configureSpec(spec, cfg, randomKey()); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		t.Fatalf("%s: load: %v", path, err)
	}
	t.Cleanup(func() { coll.Close() })
	if prog == "" { // the program AttachXDP attaches, in objects that have it
		prog = "pl_xdp"
		if coll.Programs["pl_xdp_linear"] != nil {
			prog = "pl_xdp_linear"
		}
	}
	p := coll.Programs[prog]
	if p == nil {
		t.Fatalf("%s: no program %s", path, prog)
	}
	rd, err := ringbuf.NewReader(coll.Maps["pl_events"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close() })
	if os.Getenv("PL_BENCH_ADDRS") != "" {
		info, _ := p.Info()
		ks, _ := info.JitedKsymAddrs()
		fmt.Printf("%s: %s at %#x\n", label, prog, ks[0])
	}
	return benchObject{label: label, prog: p, drain: func(t testing.TB) {
		rd.SetDeadline(time.Now())
		for {
			_, err := rd.Read()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
			if err != nil {
				t.Fatalf("read ring: %v", err)
			}
		}
	}}
}

// BenchmarkParserObjects compares object files, e.g. the committed object with earlier or
// experimental ones, in one run: `PL_BENCH_OBJECTS=old=/tmp/old.o[:prog],... go test ./bpf/ -run
// '^$' -bench ParserObjects` (an old object: `git show REV:bpf/pl_bpfel.o > /tmp/old.o`; path@N
// loads it with Config.BatchRecords N, path~M with a ring of M MiB instead of 64, path~M@N both). Columns:
// the empty program (the harness), "new" (this directory's pl_bpfel.o), then each listed object;
// each object's program is prog, by default the one AttachXDP attaches on an ordinary MTU
// (pl_xdp_linear, or pl_xdp in objects without it). All objects are loaded the same way (from
// their file, with the default Config but a 64 MiB ring): where an object sits in memory moved
// one copy of the same object by up to ~10 ns against another copy, so each object is loaded
// PL_BENCH_INSTANCES times (default 3) and its column is the mean of its instances. Every frame
// runs through every instance round-robin, each pass starting the round at the next one.
// Mixes (PL_BENCH_MIX, default both): "six", BenchmarkParser's six packets (median of 7 passes,
// or PL_BENCH_PASSES, of 131072 runs per packet), "captures", every packet of the shared
// captures (BenchmarkParserCaptures: median of 3 passes of 2000), and, unless PL_BENCH_MIX names
// another, "newflows": 10000 IPv4 and 10000 IPv6 SYNs of distinct flows, each run once, so every
// run inserts a flow (the one-run timing includes the test run's own timer). Means are over packets; ratios
// are to the empty program of the same run. Measures once per call and prints its tables.
func BenchmarkParserObjects(b *testing.B) {
	spec := "new=pl_bpfel.o," + os.Getenv("PL_BENCH_OBJECTS")
	cfg := Config{RingBytes: benchRing}
	e := newEnv(b, cfg)
	objs := []benchObject{{label: "empty", prog: e.o.objs.PlXdpPass, drain: func(t testing.TB) { e.drainSamples(t) }}}
	instances := 3
	if n, err := strconv.Atoi(os.Getenv("PL_BENCH_INSTANCES")); err == nil && n > 0 {
		instances = n
	}
	for _, s := range strings.Split(spec, ",") {
		if s == "" {
			continue
		}
		label, path, ok := strings.Cut(s, "=")
		if !ok {
			b.Fatalf("PL_BENCH_OBJECTS entry %q: want label=path[:prog]", s)
		}
		prog := ""
		if p, pr, ok := strings.Cut(path, ":"); ok {
			path, prog = p, pr
		}
		c := cfg
		if p, n, ok := strings.Cut(path, "@"); ok { // file@N: Config.BatchRecords N
			path = p
			if c.BatchRecords, _ = strconv.Atoi(n); c.BatchRecords <= 0 {
				b.Fatalf("PL_BENCH_OBJECTS entry %q: batch size", s)
			}
		}
		if p, n, ok := strings.Cut(path, "~"); ok { // file~N: a ring of N MiB (cache behaviour)
			path = p
			mib, err := strconv.Atoi(n)
			if err != nil || mib <= 0 {
				b.Fatalf("PL_BENCH_OBJECTS entry %q: ring MiB", s)
			}
			c.RingBytes = mib << 20
		}
		for range instances {
			objs = append(objs, loadObjectFile(b, label, path, prog, c))
		}
	}
	mix := os.Getenv("PL_BENCH_MIX")
	if mix == "" || mix == "six" || mix == "both" {
		var frames []captureFrame
		for _, p := range benchPackets(b, e) {
			frames = append(frames, captureFrame{file: p.name, data: p.frame, kind: p.name})
		}
		passes := 7
		if n, err := strconv.Atoi(os.Getenv("PL_BENCH_PASSES")); err == nil && n > 0 {
			passes = n
		}
		fmt.Printf("six packets:\n%s\n", compareObjects(b, objs, frames, 131072, passes, true))
	}
	if mix == "" || mix == "captures" || mix == "both" {
		frames, _ := captureFrames(b)
		classifyFrames(b, e, frames)
		fmt.Printf("%d packets of the shared captures:\n%s\n", len(frames), compareObjects(b, objs, frames, 2000, 3, false))
	}
	if mix == "" || mix == "newflows" {
		frames := newFlowFrames(10000)
		fmt.Printf("%d packets, each the first of its flow (one run each):\n%s\n", len(frames), compareObjects(b, objs, frames, 1, 1, false))
	}
}

// newFlowFrames is n TCP SYNs over IPv4 and n over IPv6, each from another source address and
// port: every run inserts a flow, as under a SYN flood from spoofed sources.
func newFlowFrames(n int) []captureFrame {
	var frames []captureFrame
	for i := range n {
		l4 := tcp{sport: uint16(1024 + i%60000), dport: 80, seq: uint32(i), flags: 0x002, win: 1024}.build(nil)
		src4 := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		src6 := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)})
		frames = append(frames,
			captureFrame{file: "syn4", kind: "IPv4 SYN, new flow", data: cat(ether(0x0800), ip4{src: src4, dst: ip4Dst, ttl: 64, proto: ipProto.TCP}.build(l4))},
			captureFrame{file: "syn6", kind: "IPv6 SYN, new flow", data: cat(ether(0x86dd), ip6{src: src6, dst: ip6Dst, next: ipProto.TCP, hlim: 64, plen: -1}.build(ipProto.TCP, l4))})
	}
	return frames
}

// compareObjects runs every frame through every object, round-robin, passes times, and returns a
// markdown table of the per-frame medians: one row per frame (perFrame) or per kind, and "mean".
func compareObjects(b *testing.B, objs []benchObject, frames []captureFrame, repeat, passes int, perFrame bool) string {
	per := make([][][]time.Duration, len(objs)) // [obj][frame][pass]
	for i := range per {
		per[i] = make([][]time.Duration, len(frames))
	}
	start := time.Now()
	load0, _ := os.ReadFile("/proc/loadavg")
	quiet := otherWork()
	for pass := range passes {
		for fi, f := range frames {
			for k := range objs {
				// Each pass starts the round at another column: no column always follows the same one.
				oi := (k + pass) % len(objs)
				o := objs[oi]
				ret, d, err := o.prog.Benchmark(f.data, repeat, nil)
				if err != nil || ret != xdpPass {
					b.Fatalf("%s, %s: %d, %v", o.label, f.file, ret, err)
				}
				o.drain(b)
				per[oi][fi] = append(per[oi][fi], d)
			}
		}
	}
	other, steal := quiet()
	load1, _ := os.ReadFile("/proc/loadavg")
	med := func(oi, fi int) float64 {
		d := append([]time.Duration(nil), per[oi][fi]...)
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return float64(d[len(d)/2].Nanoseconds())
	}
	// Columns by label: the instances of one object are averaged.
	var labels []string
	inst := map[string][]int{}
	for oi, o := range objs {
		if inst[o.label] == nil {
			labels = append(labels, o.label)
		}
		inst[o.label] = append(inst[o.label], oi)
	}
	var rows []string
	sums := map[string][]float64{}
	count := map[string]int{}
	instMeans := make([]float64, len(objs)) // mean over all frames, per instance
	for fi, f := range frames {
		for oi := range objs {
			instMeans[oi] += med(oi, fi) / float64(len(frames))
		}
		keys := []string{"mean", f.kind}
		if f.tunnel { // also a row of its own: what the encapsulations cost, whatever the inner kind
			keys = append(keys, "of which tunnelled")
		}
		for _, k := range keys {
			if sums[k] == nil {
				sums[k] = make([]float64, len(labels))
				if k != "mean" {
					rows = append(rows, k)
				}
			}
			count[k]++
			for li, l := range labels {
				for _, oi := range inst[l] {
					sums[k][li] += med(oi, fi) / float64(len(inst[l]))
				}
			}
		}
	}
	if !perFrame {
		sort.Strings(rows)
	}
	rows = append(rows, "mean")
	var out strings.Builder
	fmt.Fprintf(&out, "%s-%s UTC, load %s -> %s, %s, %d runs x %d passes, %d loaded instances per object (mean of their medians), %.0f s\n| packets | n |",
		start.UTC().Format("15:04"), time.Now().UTC().Format("15:04"), strings.Fields(string(load0))[0],
		strings.Fields(string(load1))[0], otherWorkLine(other, steal), repeat, passes, len(inst[labels[len(labels)-1]]), time.Since(start).Seconds())
	for _, l := range labels {
		fmt.Fprintf(&out, " %s |", l)
		if l != "empty" {
			out.WriteString(" ratio |")
		}
	}
	out.WriteString("\n|---|---|" + strings.Repeat("---|", 2*len(labels)-1) + "\n")
	for _, k := range rows {
		fmt.Fprintf(&out, "| %s | %d |", k, count[k])
		base := sums[k][0] / float64(count[k])
		for li, l := range labels {
			m := sums[k][li] / float64(count[k])
			fmt.Fprintf(&out, " %.1f |", m)
			if l != "empty" {
				fmt.Fprintf(&out, " %.2fx |", m/base)
			}
		}
		out.WriteString("\n")
	}
	out.WriteString("instances, mean over the frames:")
	for _, l := range labels {
		fmt.Fprintf(&out, " %s", l)
		for _, oi := range inst[l] {
			fmt.Fprintf(&out, " %.1f", instMeans[oi])
		}
		out.WriteString(";")
	}
	out.WriteString("\n")
	return out.String()
}
