package bpf

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/packetlake/packetlake/internal/testkit/nettest"
	"github.com/packetlake/packetlake/record"
	"github.com/packetlake/packetlake/schema"
	"golang.org/x/sys/unix"
)

// runRepeat runs frame through pl_xdp repeat times in one syscall, without the flush key.
func (e *env) runRepeat(t testing.TB, frame []byte, repeat uint32) {
	t.Helper()
	var ret uint32
	err := withSignalsBlocked(func() (err error) {
		ret, err = e.o.objs.PlXdp.Run(&ebpf.RunOptions{Data: frame, Repeat: repeat})
		return err
	})
	if err != nil || ret != xdpPass {
		t.Fatalf("test run: %d, %v", ret, err)
	}
}

// withSignalsBlocked runs fn on a thread with every signal blocked. A BPF_PROG_TEST_RUN with
// Repeat > 1 that a signal interrupts (the Go runtime's preemption signal, often, on a busy
// machine) returns EINTR after running some of its repetitions, and cilium/ebpf then runs the
// whole repeat again: the program runs more often than asked and exact counts drift. Blocked,
// the signal waits until the run is over.
func withSignalsBlocked(fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var all, old unix.Sigset_t
	for i := range all.Val {
		all.Val[i] = ^all.Val[i]
	}
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &all, &old); err != nil {
		return err
	}
	defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	return fn()
}

func sumFlows(t testing.TB, o *Objects) (buckets int, total FlowCounts) {
	t.Helper()
	if err := o.ReadFlows(func(f FlowEntry) {
		buckets++
		total.Sum(f.Counts)
	}); err != nil {
		t.Fatal(err)
	}
	return buckets, total
}

// TestFlowsExactTestRun: every parse case, many times, through pl_xdp with a ring nobody reads:
// whatever the ring and sampling did, the flows hold every packet and byte, and one flow per
// distinct key.
func TestFlowsExactTestRun(t *testing.T) {
	e := newEnv(t, Config{RingBytes: 16 << 10})
	var frames [][]byte
	var bytes uint64
	for _, c := range parseCases() {
		if !c.xdpOnly {
			frames = append(frames, c.frame)
		}
	}
	const rounds = 50
	for range rounds {
		for _, f := range frames {
			e.runBatched(t, f)
			bytes += uint64(len(f))
		}
	}
	if err := e.o.Flush(); err != nil {
		t.Fatal(err)
	}
	n := uint64(rounds * len(frames))
	d := readStats(t, e)
	flows, tot := sumFlows(t, e.o)
	t.Logf("%d packets in %d flows: seen %d emitted %d ring_full %d sampled_out %d; %d SYN", n, flows,
		d[record.StatSeen], d[record.StatEmitted], d[record.StatRingFull], d[record.StatSampledOut], tot.SYN)
	if tot.Packets != n || tot.Bytes != bytes || d[record.StatSeen] != n || d[record.StatFlowCounted] != n ||
		d[record.StatFlowFailed] != 0 {
		t.Fatalf("flows: %d packets %d bytes; want %d packets %d bytes; seen %d, flow_counted %d, flow_failed %d",
			tot.Packets, tot.Bytes, n, bytes, d[record.StatSeen], d[record.StatFlowCounted], d[record.StatFlowFailed])
	}
	if d[record.StatSeen] != d[record.StatEmitted]+d[record.StatRingFull]+d[record.StatSampledOut] {
		t.Fatalf("seen %d != emitted + ring_full + sampled_out", d[record.StatSeen])
	}
	if flows != len(readFlowKeys(t, e.o)) {
		t.Fatalf("%d buckets for %d flows: one CPU never claims two", flows, len(readFlowKeys(t, e.o)))
	}
	// Retiring and freeing returns the tables to empty.
	clearFlows(t, e.o)
	if f, _ := sumFlows(t, e.o); f != 0 {
		t.Fatalf("%d buckets left after RetireFlows and FreeFlows", f)
	}
}

// TestFlowsExactLive: TCP and UDP from the peer namespace with Go sockets, through native XDP:
// the flows' packets and bytes equal seen and what the interface received, exactly.
func TestFlowsExactLive(t *testing.T) {
	v := nettest.NewVethPair(t)
	e := newEnv(t, Config{RingBytes: 4096}) // a tiny ring: records are lost and sampled, flows are not
	if err := v.Do(func() error {
		l, err := e.o.AttachXDP(v.Index, XDPNative)
		if err == nil {
			t.Cleanup(func() { l.Close() })
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	pcap := pcapDir + "/ja4/tls-handshake.pcapng"
	frames, _, err := nettest.ReadPcap(pcap)
	if err != nil {
		t.Fatal(err)
	}
	var sent4, bytes4 uint64 // the sender's IPv4 frames: the kernel's own traffic on the veth is IPv6
	for _, f := range frames {
		if len(f.Data) >= 14 && f.Data[12] == 0x08 && f.Data[13] == 0x00 {
			sent4++
			bytes4 += uint64(len(f.Data))
		}
	}
	st := nettest.Replay(t, v.PeerNS, v.PeerName, pcap, 5000)
	if st.Sent != len(frames) || st.Failed != 0 {
		t.Fatalf("tcpreplay sent %d of %d frames", st.Sent, len(frames))
	}
	time.Sleep(50 * time.Millisecond)
	if err := e.o.Flush(); err != nil {
		t.Fatal(err)
	}
	d := readStats(t, e)
	var all, v4 FlowCounts
	if err := e.o.ReadFlows(func(f FlowEntry) {
		k, c := f.Key, f.Counts
		all.Packets += c.Packets
		all.Bytes += c.Bytes
		if k.IpVersion == 4 {
			if k.Ifindex != uint32(v.Index) {
				t.Errorf("flow %v: ifindex %d, want %d", k.SrcIP(), k.Ifindex, v.Index)
			}
			v4.Packets += c.Packets
			v4.Bytes += c.Bytes
		}
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("sent %d frames, %d IPv4 (%d bytes); flows: %d packets (IPv4 %d, %d bytes); seen %d emitted %d ring_full %d sampled_out %d",
		st.Sent, sent4, bytes4, all.Packets, v4.Packets, v4.Bytes,
		d[record.StatSeen], d[record.StatEmitted], d[record.StatRingFull], d[record.StatSampledOut])
	if all.Packets != d[record.StatSeen] || d[record.StatFlowCounted] != all.Packets || v4.Packets != sent4 || v4.Bytes != bytes4 {
		t.Fatalf("flows count %d packets (IPv4 %d, %d bytes), seen %d, flow_counted %d; sent %d IPv4 frames, %d bytes",
			all.Packets, v4.Packets, v4.Bytes, d[record.StatSeen], d[record.StatFlowCounted], sent4, bytes4)
	}
	if d[record.StatSeen] != d[record.StatEmitted]+d[record.StatRingFull]+d[record.StatSampledOut] {
		t.Fatalf("seen %d != emitted + ring_full + sampled_out", d[record.StatSeen])
	}
}

// TestSamplingUnderPressure: ordinary packets at a rate a slow reader of a small ring cannot
// take, with SYNs and DNS queries among them. Every packet is accounted for exactly
// (kept + sampled_out + ring_full == seen), SYN and DNS records are never sampled, the kept
// ordinary records' sample_rate sums to about the ordinary packets sent, and flows are exact.
func TestSamplingUnderPressure(t *testing.T) {
	e := newEnv(t, Config{RingBytes: 64 << 10, BatchAge: time.Hour})
	ordinary := cat(ether(0x0800), ip4{ttl: 64, proto: ipProto.TCP}.build(
		tcp{sport: 50000, dport: 5001, seq: 1, ack: 1, flags: 0x010, win: 1000}.build(fill(100, 0x41))))
	syn := cat(ether(0x0800), ip4{ttl: 64, proto: ipProto.TCP}.build(
		tcp{sport: 40000, dport: 443, seq: 9, flags: 0x002, win: 64240, opts: synOpts}.build(nil)))
	dns := cat(ether(0x0800), ip4{ttl: 64, proto: ipProto.UDP}.build(udp{sport: 53000, dport: 53}.build(dnsQuery)))

	var (
		mu                            sync.Mutex
		kept, keptSyn, keptDNS, ordRe uint64
		ordRateSum                    uint64
		badRate                       int
		maxRate                       uint32
	)
	stop := make(chan struct{})
	done := make(chan struct{})
	read := func() {
		e.rd.SetDeadline(time.Now())
		for {
			rec, err := e.rd.Read()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			recs, err := splitSample(rec.RawSample)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			for _, raw := range recs {
				var p record.Packet
				k, err := record.DecodeKernel(raw, &p)
				if err != nil {
					t.Error(err)
					continue
				}
				kept++
				switch {
				case p.TCPFlags&0x2 != 0:
					keptSyn++
					if p.SampleRate != 1 {
						badRate++
					}
				case k.L7Kind == schema.L7DNS:
					keptDNS++
					if p.SampleRate != 1 {
						badRate++
					}
				default:
					ordRe++
					ordRateSum += uint64(p.SampleRate)
					maxRate = max(maxRate, p.SampleRate)
				}
			}
			mu.Unlock()
		}
	}
	go func() { // a slow reader: drains the ring every 2 ms
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
				read()
			}
		}
	}()
	// XDP test runs with repeat > 1 cost ~17 ms each (BENCH.md): few, big ones. Each overflows
	// the ring; the reader then catches up before the SYN and the DNS query.
	const rounds, repeat = 200, 5000
	for range rounds {
		e.runRepeat(t, ordinary, repeat)
		time.Sleep(3 * time.Millisecond)
		e.runBatched(t, syn)
		e.runBatched(t, dns)
	}
	if err := e.o.Flush(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	<-done
	read()
	d := readStats(t, e)
	nOrd := uint64(rounds * repeat)
	n := nOrd + 2*rounds
	_, tot := sumFlows(t, e.o)
	mu.Lock()
	defer mu.Unlock()
	seen, emitted, full, out := d[record.StatSeen], d[record.StatEmitted], d[record.StatRingFull], d[record.StatSampledOut]
	t.Logf("%d packets (%d ordinary): seen %d emitted %d ring_full %d sampled_out %d; read %d (SYN %d DNS %d ordinary %d, sum(sample_rate) %d, max rate %d)",
		n, nOrd, seen, emitted, full, out, kept, keptSyn, keptDNS, ordRe, ordRateSum, maxRate)
	if seen != n || kept != emitted || emitted+out+full != seen {
		t.Fatalf("accounting: sent %d seen %d; read %d emitted %d; sampled_out %d ring_full %d", n, seen, kept, emitted, out, full)
	}
	if tot.Packets != n || tot.SYN != rounds {
		t.Fatalf("flows: %d packets (%d SYN), want %d (%d)", tot.Packets, tot.SYN, n, rounds)
	}
	if out == 0 || maxRate < 2 {
		t.Fatalf("no sampling happened (sampled_out %d, max rate %d): no pressure?", out, maxRate)
	}
	if badRate != 0 {
		t.Errorf("%d SYN/DNS records carry a sample rate", badRate)
	}
	// Sampling never drops a SYN or a DNS query: only the ring can (ring_full counts it).
	if keptSyn+keptDNS+full < 2*rounds || keptSyn > rounds || keptDNS > rounds {
		t.Errorf("kept %d SYN and %d DNS of %d each, ring_full %d", keptSyn, keptDNS, rounds, full)
	}
	if full == 0 && (keptSyn != rounds || keptDNS != rounds) {
		t.Errorf("no ring loss, yet kept %d SYN and %d DNS of %d each", keptSyn, keptDNS, rounds)
	}
	// sum(sample_rate) over kept ordinary records estimates the ordinary packets the ring did not
	// refuse. Loose: the rate changes per batch, and ring_full losses are not scaled.
	est := float64(ordRateSum) / float64(nOrd-min(nOrd, full))
	if est < 0.5 || est > 1.5 {
		t.Errorf("sum(sample_rate) %d over %d ordinary packets (%d lost to the ring): ratio %.2f", ordRateSum, nOrd, full, est)
	}
}
