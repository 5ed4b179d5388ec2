package bpf

import (
	"testing"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"github.com/packetlake/packetlake/record"
)

// TestWakeupAtThreshold: records below Config.WakeupBytes must not wake a sleeping reader (that
// is what makes the ring cheap); the record that takes pending data across it must.
func TestWakeupAtThreshold(t *testing.T) {
	const threshold = 8192
	o, err := Load(Config{RingBytes: 1 << 20, WakeupBytes: threshold})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	rd, err := ringbuf.NewReader(o.Events())
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	woke := make(chan time.Time, 1)
	go func() {
		if _, err := rd.Read(); err == nil { // no deadline: returns only when woken
			woke <- time.Now()
		}
	}()
	time.Sleep(100 * time.Millisecond) // let the reader block in epoll_wait on an empty ring

	syn := parseCases()[0].frame // KernelRecordSize-byte record, plus the ring's 8-byte header
	per := record.KernelRecordSize + 8
	below := threshold/per - 1
	for range below {
		if _, err := o.TestRun(syn); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-woke:
		t.Fatalf("reader woken with %d bytes pending, below the %d-byte threshold", below*per, threshold)
	case <-time.After(300 * time.Millisecond):
	}
	for range 2 {
		if _, err := o.TestRun(syn); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-woke:
	case <-time.After(2 * time.Second):
		t.Fatalf("reader not woken after pending data crossed %d bytes", threshold)
	}
}
