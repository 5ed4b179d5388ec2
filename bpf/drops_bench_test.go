package bpf

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/packetlake/packetlake/internal/testkit/nettest"
)

// BenchmarkDropsDeliveredCost measures what the drop-reason program costs packets the kernel
// delivers: UDP datagrams from the peer to a socket that reads them all, through the packet
// program (XDP, native), in rounds with the drop-reason program loaded and observing the
// interface and rounds without it, alternated (on/off, then off/on) in the same run. Reported:
//
//   - cpu-ns/pkt-off, cpu-ns/pkt-on and on/off: this process's CPU time (user + system, where
//     the veth's receive softirq runs when not deferred to ksoftirqd) per delivered packet;
//   - runs/kpkt: the drop-reason program's runs per 1000 delivered packets while on, from the
//     kernel's own BPF run statistics (bpf_stats_enabled, turned on here). It fires on kfree_skb
//     anywhere on the host, so other work on a shared machine adds runs; the packets delivered
//     add none;
//   - ns/run: its run time per run, from the same statistics;
//   - drops-seen: drops it counted on the observed interface (0: nothing delivered was taken for
//     a drop).
func BenchmarkDropsDeliveredCost(b *testing.B) {
	v := nettest.NewVethPair(b)
	nettest.NeighboursBothWays(b, v)
	e := newEnv(b, Config{})
	var l link.Link
	if err := v.Do(func() (err error) { l, err = e.o.AttachXDP(v.Index, XDPNative); return err }); err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	stats, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		b.Fatalf("enable BPF run statistics: %v", err)
	}
	defer stats.Close()
	var ino uint32
	if err := v.Do(func() (err error) { ino, err = CurrentNetns(); return err }); err != nil {
		b.Fatal(err)
	}

	var rx, tx *net.UDPConn
	if err := v.Do(func() (err error) {
		rx, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(v.Addr, 7100)))
		return err
	}); err != nil {
		b.Fatal(err)
	}
	defer rx.Close()
	if err := nettest.Do(v.PeerNS, func() (err error) {
		tx, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(v.PeerAddr, 42100)))
		return err
	}); err != nil {
		b.Fatal(err)
	}
	defer tx.Close()
	// window: the reader frees a slot per datagram read; the sender blocks (no spinning, which
	// would be counted as CPU) when 64 are in flight.
	window := make(chan struct{}, 64)
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, err := rx.Read(buf); err != nil {
				return
			}
			<-window
		}
	}()

	const burst = 20000
	payload := make([]byte, 64)
	dst := netip.AddrPortFrom(v.Addr, 7100)
	// round sends burst datagrams, never more than 64 ahead of the reader (so the socket's
	// buffer never overflows: no drop is made on purpose), and returns the CPU time it took.
	round := func() time.Duration {
		before := cpuTime()
		for range burst {
			window <- struct{}{}
			if _, err := tx.WriteToUDPAddrPort(payload, dst); err != nil {
				b.Fatal(err)
			}
		}
		for range cap(window) { // every datagram read
			window <- struct{}{}
		}
		for range cap(window) {
			<-window
		}
		return cpuTime() - before
	}

	var cpuOn, cpuOff time.Duration
	var pktsOn, pktsOff, runs, runNs, seen uint64
	i := 0
	for b.Loop() {
		for _, on := range [][2]bool{{true, false}, {false, true}}[i%2] {
			if !on {
				cpuOff += round()
				pktsOff += burst
				continue
			}
			d, err := LoadDrops(DropsConfig{})
			if err != nil {
				b.Fatal(err)
			}
			if err := d.Observe(ino, v.Index); err != nil {
				b.Fatal(err)
			}
			s0, err := d.ProgramStats()
			if err != nil {
				b.Fatal(err)
			}
			cpuOn += round()
			pktsOn += burst
			s1, err := d.ProgramStats()
			if err != nil {
				b.Fatal(err)
			}
			st, err := d.ReadStats()
			if err != nil {
				b.Fatal(err)
			}
			runs += s1.RunCount - s0.RunCount
			runNs += uint64(s1.Runtime - s0.Runtime)
			seen += st.Seen
			d.Close()
		}
		i++
	}
	on := float64(cpuOn.Nanoseconds()) / float64(pktsOn)
	off := float64(cpuOff.Nanoseconds()) / float64(pktsOff)
	b.ReportMetric(on, "cpu-ns/pkt-on")
	b.ReportMetric(off, "cpu-ns/pkt-off")
	b.ReportMetric(on/off, "on/off")
	b.ReportMetric(1000*float64(runs)/float64(pktsOn), "runs/kpkt")
	if runs > 0 {
		b.ReportMetric(float64(runNs)/float64(runs), "ns/run")
	}
	b.ReportMetric(float64(seen), "drops-seen")
	if seen != 0 {
		b.Errorf("%d drops counted on the observed interface: a delivered packet was taken for a drop, or the reader fell behind", seen)
	}
}

// cpuTime is this process's user + system CPU time.
func cpuTime() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDropsDropCost measures what the drop-reason program costs a packet the kernel drops:
// UDP datagrams to a closed port (NO_SOCKET) on the observed interface, the program's run time
// per run from the kernel's BPF run statistics. Runs from other work on the host dilute it little
// (runs/pkt says how many there were per packet dropped).
func BenchmarkDropsDropCost(b *testing.B) {
	v := nettest.NewVethPair(b)
	nettest.NeighboursBothWays(b, v)
	e := newEnv(b, Config{})
	var l link.Link
	if err := v.Do(func() (err error) { l, err = e.o.AttachXDP(v.Index, XDPNative); return err }); err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	stats, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		b.Fatalf("enable BPF run statistics: %v", err)
	}
	defer stats.Close()
	var ino uint32
	if err := v.Do(func() (err error) { ino, err = CurrentNetns(); return err }); err != nil {
		b.Fatal(err)
	}
	d, err := LoadDrops(DropsConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	if err := d.Observe(ino, v.Index); err != nil {
		b.Fatal(err)
	}
	var tx *net.UDPConn
	if err := nettest.Do(v.PeerNS, func() (err error) {
		tx, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(v.PeerAddr, 42200)))
		return err
	}); err != nil {
		b.Fatal(err)
	}
	defer tx.Close()
	seen := func() uint64 {
		st, err := d.ReadStats()
		if err != nil {
			b.Fatal(err)
		}
		return st.Seen
	}
	payload := make([]byte, 64)
	dst := netip.AddrPortFrom(v.Addr, 7200) // nothing listens
	s0, err := d.ProgramStats()
	if err != nil {
		b.Fatal(err)
	}
	base := seen()
	var sent uint64
	const burst = 20000
	for b.Loop() {
		for range burst / 64 {
			for range 64 {
				if _, err := tx.WriteToUDPAddrPort(payload, dst); err != nil {
					b.Fatal(err)
				}
			}
			sent += 64
			for seen()-base < sent { // the veth's queue never overflows
				time.Sleep(50 * time.Microsecond)
			}
		}
	}
	s1, err := d.ProgramStats()
	if err != nil {
		b.Fatal(err)
	}
	runs := s1.RunCount - s0.RunCount
	b.ReportMetric(float64((s1.Runtime-s0.Runtime).Nanoseconds())/float64(runs), "ns/run")
	b.ReportMetric(float64(runs)/float64(sent), "runs/pkt")
	if got := seen() - base; got != sent {
		b.Errorf("counted %d drops of %d datagrams sent to a closed port", got, sent)
	}
}
