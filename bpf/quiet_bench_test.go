package bpf

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// otherWork says how quiet the machine stayed while a parser benchmark ran, which the load
// average cannot: a benchmark made of BPF_PROG_TEST_RUN calls waits ~17 ms in uninterruptible
// sleep per call (the XDP dispatcher swap), so it alone shows a load of ~1 however busy the
// other CPU is. And work on the other CPU moves the numbers: a thread streaming through memory
// there made pl_xdp_linear 12.8 ns slower per packet and the empty program 1.5 ns (4.22x
// against 3.98x on an idle CPU, one run, BENCH.md session 10): the program writes each record
// to ring memory that is cold every lap, and shares the last-level cache and the memory bus
// with that CPU. Call it when the timed part starts; the function it returns gives, since then,
// the CPU time everything but this process used, in CPUs (1.0: one CPU busy all along), and the
// time the hypervisor gave this VM's CPUs to others (steal), in CPUs too.
func otherWork() func() (other, steal float64) {
	busy0, steal0 := cpuTicks()
	own0 := ownCPU()
	start := time.Now()
	return func() (float64, float64) {
		busy1, steal1 := cpuTicks()
		wall := time.Since(start).Seconds()
		other := (busy1-busy0)/ticksPerSecond - (ownCPU() - own0)
		return max(0, other) / wall, (steal1 - steal0) / ticksPerSecond / wall
	}
}

// otherWorkLine is otherWork's reading for a benchmark's log.
func otherWorkLine(other, steal float64) string {
	s := fmt.Sprintf("other work during the run: %.2f CPUs, steal %.2f", other, steal)
	if other > 0.1 || steal > 0.05 {
		s += " (**disturbed**: compare only columns of this run with each other)"
	}
	return s
}

// ticksPerSecond is USER_HZ, the unit of /proc/stat: 100 on every Linux architecture Go runs on.
const ticksPerSecond = 100

// cpuTicks sums /proc/stat's first line: the time all CPUs spent busy (user, nice, system, irq,
// softirq; guest time is inside user) and stolen, in ticks.
func cpuTicks() (busy, steal float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	v := func(i int) float64 {
		if i >= len(f) {
			return 0
		}
		n, _ := strconv.ParseFloat(f[i], 64)
		return n
	}
	return v(1) + v(2) + v(3) + v(6) + v(7), v(8)
}

// ownCPU is this process's CPU time in seconds, user and system: the kernel's test runs are
// system time of the thread that asked for them.
func ownCPU() float64 {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
