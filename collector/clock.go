package collector

import (
	"golang.org/x/sys/unix"
)

// The BPF program stamps records with bpf_ktime_get_ns(), CLOCK_MONOTONIC: it never jumps, but it
// is not wall-clock time. Each frame carries offset = CLOCK_REALTIME − CLOCK_MONOTONIC so the
// decoder can compute ts = ts_ns + offset.
//
// Drift: the two clocks tick at the same NTP-disciplined rate, so the offset only moves when the
// wall clock is stepped (settimeofday, an NTP step) or slewed hard. The worker measures it again
// every Config.ClockRefresh before starting a frame, so a step shows in frames started at most
// ClockRefresh later, and within one frame (≤ FrameMaxAge of records) the offset is constant —
// records of one frame never reorder against each other. Frames already produced keep the
// offset they were stamped with; nothing is rewritten.

// clockOffset measures CLOCK_REALTIME − CLOCK_MONOTONIC in nanoseconds. The realtime read is
// bracketed by two monotonic reads and the tightest of a few tries is kept, so preemption
// between the reads does not bias the result by more than the bracket's width (~100 ns).
func clockOffset() (int64, error) {
	best, bestWidth := int64(0), int64(-1)
	for range 5 {
		var m0, rt, m1 unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &m0); err != nil {
			return 0, err
		}
		if err := unix.ClockGettime(unix.CLOCK_REALTIME, &rt); err != nil {
			return 0, err
		}
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &m1); err != nil {
			return 0, err
		}
		width := m1.Nano() - m0.Nano()
		if bestWidth < 0 || width < bestWidth {
			best, bestWidth = rt.Nano()-(m0.Nano()+width/2), width
		}
	}
	return best, nil
}
