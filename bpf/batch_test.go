package bpf

import (
	"fmt"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/packetlake/packetlake/internal/testkit/nettest"
	"github.com/packetlake/packetlake/record"
)

// runBatched runs frame through pl_xdp as a live packet would go: without TestRun's flush key,
// so its record is only staged in its CPU's batch.
func (e *env) runBatched(t testing.TB, frame []byte) {
	t.Helper()
	ret, err := e.o.objs.PlXdp.Run(&ebpf.RunOptions{Data: frame})
	if err != nil || ret != xdpPass {
		t.Fatalf("test run: %d, %v", ret, err)
	}
}

// TestBatchAccountingTinyRing: with batching, a ring nobody reads fills after a few batches;
// every packet of a batch the ring refuses must count as ring_full, so that after a Flush
// seen == emitted + ring_full exactly, and the ring holds exactly the emitted records, several
// to a sample. Before the Flush, the staged records are in none of the counters.
func TestBatchAccountingTinyRing(t *testing.T) {
	// Batches of at most 4 KiB (a quarter of the ring); no age flush during the test.
	e := newEnv(t, Config{RingBytes: 16 << 10, BatchAge: time.Hour, SampleMax: 1}) // sampling: sample_test.go
	var frames [][]byte
	for _, c := range parseCases() {
		if !c.xdpOnly {
			frames = append(frames, c.frame)
		}
	}
	const rounds = 40
	before := readStats(t, e)
	for range rounds {
		for _, f := range frames {
			e.runBatched(t, f)
		}
	}
	n := uint64(rounds * len(frames))
	staged, err := e.o.Staged()
	if err != nil {
		t.Fatal(err)
	}
	d := statsDelta(t, e, before)
	if staged == 0 || d[record.StatSeen]+uint64(staged) != n ||
		d[record.StatEmitted]+d[record.StatRingFull] != d[record.StatSeen] {
		t.Fatalf("before Flush: %d packets, %d staged, seen %d, emitted %d, ring_full %d",
			n, staged, d[record.StatSeen], d[record.StatEmitted], d[record.StatRingFull])
	}
	if err := e.o.Flush(); err != nil {
		t.Fatal(err)
	}
	if staged, _ = e.o.Staged(); staged != 0 {
		t.Fatalf("%d records still staged after Flush", staged)
	}
	d = statsDelta(t, e, before)
	seen, emitted, full := d[record.StatSeen], d[record.StatEmitted], d[record.StatRingFull]
	samples := e.drainSamples(t)
	var recs int
	for _, s := range samples {
		r, err := splitSample(s)
		if err != nil {
			t.Fatal(err)
		}
		recs += len(r)
	}
	t.Logf("%d packets: seen %d, emitted %d, ring_full %d; ring: %d records in %d samples", n, seen, emitted, full, recs, len(samples))
	if seen != n || emitted+full+d[record.StatSampledOut] != seen || full == 0 || emitted == 0 {
		t.Fatalf("counters do not add up: sent %d, seen %d, emitted %d, ring_full %d", n, seen, emitted, full)
	}
	if uint64(recs) != emitted || len(samples) >= recs {
		t.Errorf("ring holds %d records in %d samples, emitted says %d (want several records a sample)", recs, len(samples), emitted)
	}
}

// TestBatchTestRunFlushes: TestRun leaves nothing staged, even behind records staged by packets
// that ran without the flush key on the same CPU.
func TestBatchTestRunFlushes(t *testing.T) {
	e := newEnv(t, Config{BatchAge: time.Hour})
	frame := parseCases()[0].frame
	done := make(chan error, 1)
	go func() { // one CPU for all runs: the TestRun must take the staged records out with it
		done <- onCPU(0, func() error {
			for range 5 {
				if _, err := e.o.objs.PlXdp.Run(&ebpf.RunOptions{Data: frame}); err != nil {
					return err
				}
			}
			if staged, err := e.o.Staged(); err != nil || staged != 5 {
				return fmt.Errorf("%d records staged (%v), want 5", staged, err)
			}
			_, err := e.o.TestRun(frame)
			return err
		})
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if staged, _ := e.o.Staged(); staged != 0 {
		t.Fatalf("%d records staged after TestRun", staged)
	}
	if got := len(e.drain(t)); got != 6 {
		t.Fatalf("%d records in the ring, want 6", got)
	}
}

// TestBatchQuietInterface: on a live veth (XDP native and tcx), a part-filled batch reaches a
// reader that sleeps without a deadline within the batch age (the CPU's timer writes it out and
// wakes the reader), not before it (it was really batched); and Flush forces one out at once.
func TestBatchQuietInterface(t *testing.T) {
	const age = 200 * time.Millisecond
	capture := pcapDir + "/tcpdump/dns_udp.pcap" // 2 frames: far from a full batch
	for _, hook := range []string{"xdp", "tcx"} {
		t.Run(hook, func(t *testing.T) {
			v := nettest.NewVethPair(t)
			attach := func(e *env) link.Link {
				t.Helper()
				var l link.Link
				err := v.Do(func() (err error) {
					if hook == "xdp" {
						l, err = e.o.AttachXDP(v.Index, XDPNative)
					} else {
						l, err = e.o.AttachTC(v.Index)
					}
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { l.Close() })
				return l
			}

			// The timer: a blocking read returns once the batch is age old.
			e := newEnv(t, Config{BatchAge: age})
			l := attach(e)
			got := make(chan int, 1)
			go func() {
				e.rd.SetDeadline(time.Time{}) // sleep until woken
				rec, err := e.rd.Read()
				if err != nil {
					got <- -1
					return
				}
				r, _ := splitSample(rec.RawSample)
				got <- len(r)
			}()
			time.Sleep(50 * time.Millisecond) // the reader is asleep in epoll_wait
			start := time.Now()
			st := nettest.Replay(t, v.PeerNS, v.PeerName, capture, 0)
			sent := time.Now()
			var n int
			select {
			case n = <-got:
			case <-time.After(age + 2*time.Second):
				t.Fatalf("no sample within %s of sending %d frames", age+2*time.Second, st.Sent)
			}
			arrived := time.Now()
			t.Logf("%d frames sent in %s; a sample of %d records read %s after the first was sent (age %s)",
				st.Sent, sent.Sub(start).Round(time.Millisecond), n, arrived.Sub(start).Round(time.Millisecond), age)
			if n < 1 || arrived.Sub(start) < age || arrived.Sub(sent) > age+300*time.Millisecond {
				t.Fatalf("sample of %d records read %s after sending started, %s after it ended; want one after the %s age, promptly",
					n, arrived.Sub(start), arrived.Sub(sent), age)
			}
			records := n + len(e.collect(t, st.Sent-n))
			if d := readStats(t, e); records != st.Sent || d[record.StatSeen] != uint64(st.Sent) || d[record.StatEmitted] != uint64(st.Sent) {
				t.Fatalf("sent %d, read %d records; seen %d, emitted %d", st.Sent, records, d[record.StatSeen], d[record.StatEmitted])
			}

			l.Close() // one XDP program per interface

			// Flush: with an age nothing reaches, the batch waits until user space asks.
			e2 := newEnv(t, Config{BatchAge: time.Hour})
			attach(e2)
			st = nettest.Replay(t, v.PeerNS, v.PeerName, capture, 0)
			time.Sleep(100 * time.Millisecond)
			if early := e2.drain(t); len(early) != 0 {
				t.Fatalf("%d records reached the ring before the batch was full, old or flushed", len(early))
			}
			if staged, err := e2.o.Staged(); err != nil || staged != st.Sent {
				t.Fatalf("%d records staged (%v), want %d", staged, err, st.Sent)
			}
			if err := e2.o.Flush(); err != nil {
				t.Fatal(err)
			}
			if recs := e2.drain(t); len(recs) != st.Sent {
				t.Fatalf("%d records in the ring after Flush, want %d", len(recs), st.Sent)
			}
			if d := readStats(t, e2); d[record.StatSeen] != uint64(st.Sent) || d[record.StatEmitted] != uint64(st.Sent) {
				t.Fatalf("after Flush: seen %d, emitted %d, want %d", d[record.StatSeen], d[record.StatEmitted], st.Sent)
			}
		})
	}
}
