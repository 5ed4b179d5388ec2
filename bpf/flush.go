package bpf

import (
	"fmt"
	"runtime"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Flush writes out the records every CPU has staged but not yet written to the ring (see
// Config.BatchRecords): when it returns they are in Events, and the counters satisfy seen ==
// emitted + ring_full + sampled_out for every packet that ran before the call. Each CPU's batch
// can only be touched on that CPU, so Flush runs the flush program there, from a thread it pins
// to each CPU in turn; a CPU this process may not run on (cpuset) is left to its timer, which
// Flush waits for, up to BatchAge and a margin. Live packets arriving meanwhile start new
// batches. Stopping a capture: detach, Flush, then drain the ring.
func (o *Objects) Flush() error {
	done := make(chan error, 1)
	var flushed unix.CPUSet
	go func() {
		// The thread's affinity is changed: locked and never unlocked, so the runtime discards
		// the thread when this goroutine ends instead of reusing it pinned.
		runtime.LockOSThread()
		done <- o.flushEachCPU(&flushed)
	}()
	if err := <-done; err != nil {
		return err
	}
	deadline := time.Now().Add(o.age + 200*time.Millisecond)
	for {
		per, err := o.stagedPerCPU()
		if err != nil {
			return err
		}
		left := 0
		for cpu, n := range per {
			if !flushed.IsSet(cpu) {
				left += n
			}
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("flush: %d records still staged on CPUs this process cannot run on, past their timers' %s", left, o.age)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// flushEachCPU runs pl_flush on every CPU the calling (locked) thread may run on and notes
// them in flushed.
func (o *Objects) flushEachCPU(flushed *unix.CPUSet) error {
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		return fmt.Errorf("flush: read CPU affinity: %w", err)
	}
	frame := make([]byte, 14) // the smallest frame a test run takes; pl_flush does not read it
	for cpu := range cpuSetSize {
		if !allowed.IsSet(cpu) {
			continue
		}
		var one unix.CPUSet
		one.Set(cpu)
		if err := unix.SchedSetaffinity(0, &one); err != nil {
			continue // offline meanwhile: nothing runs there
		}
		if _, err := run(o.objs.PlFlush, &ebpf.RunOptions{Data: frame}); err != nil {
			return fmt.Errorf("flush CPU %d: %w", cpu, err)
		}
		flushed.Set(cpu)
	}
	return nil
}

// cpuSetSize is how many CPUs a unix.CPUSet can name.
const cpuSetSize = len(unix.CPUSet{}) * 64

// Staged returns how many records the CPUs hold in part-filled batches, not yet written to the
// ring nor counted (a packet is counted when its batch is written).
func (o *Objects) Staged() (int, error) {
	per, err := o.stagedPerCPU()
	n := 0
	for _, c := range per {
		n += c
	}
	return n, err
}

func (o *Objects) stagedPerCPU() ([]int, error) {
	var per []plPlStage
	if err := o.objs.PlStageMap.Lookup(uint32(0), &per); err != nil {
		return nil, fmt.Errorf("read pl_stage_map: %w", err)
	}
	out := make([]int, len(per))
	for cpu, s := range per {
		out[cpu] = int(s.N)
	}
	return out, nil
}
