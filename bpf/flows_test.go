package bpf

import (
	"net/netip"
	"runtime"
	"sync"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/packetlake/packetlake/record"
)

// TestFlowKeysPerCPU: every parse case (IPv4, IPv6, VLAN, non-IP, parse errors) runs on CPU 0
// and on CPU 1; each flow ReadFlows returns has the key its packets' record gives (IPv4 flows
// come from pl_flows4's short key, the rest from pl_flows) and the packets, bytes and flags of
// both CPUs' slots summed, in one bucket; retiring and freeing every bucket empties both tables.
func TestFlowKeysPerCPU(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Fatal("needs 2 CPUs")
	}
	e := newEnv(t, Config{})
	type want struct {
		packets, bytes, syn uint64
	}
	wants := map[FlowKey]*want{}
	const on0, on1 = 3, 5 // packets per frame run on CPU 0, CPU 1 (plus the one of e.run)
	var n uint64
	var frames [][]byte
	var recs []record.Packet
	for _, c := range parseCases() { // first the records (e.run flushes whatever its CPU staged)
		if !c.xdpOnly {
			frames = append(frames, c.frame)
			recs = append(recs, e.run(t, c.frame, false).p)
		}
	}
	for i, frame := range frames {
		p := recs[i]
		k := FlowKey{SrcAddr: p.SrcAddr, DstAddr: p.DstAddr, Ifindex: p.Ifindex, SrcPort: p.SrcPort, DstPort: p.DstPort,
			VlanId: p.VlanID, IpProto: p.IPProto, IpVersion: p.IPVersion, TunnelId: p.TunnelID}
		w := wants[k]
		if w == nil {
			w = &want{}
			wants[k] = w
		}
		cnt := uint64(1 + on0 + on1)
		n += cnt
		w.packets += cnt
		w.bytes += cnt * uint64(p.PktLen)
		if p.IPProto == 6 && p.TCPFlags&0x02 != 0 {
			w.syn += cnt
		}
		for cpu, rep := range map[int]int{0: on0, 1: on1} {
			if err := onCPU(cpu, func() error {
				return withSignalsBlocked(func() error {
					_, err := e.o.objs.PlXdp.Run(&ebpf.RunOptions{Data: frame, Repeat: uint32(rep)})
					return err
				})
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := e.o.Flush(); err != nil {
		t.Fatal(err)
	}
	got := readFlowKeys(t, e.o)
	buckets, _ := sumFlows(t, e.o)
	var v4 int
	for k := range got {
		if k.IpVersion == 4 {
			v4++
		}
	}
	if buckets != len(got) { // the CPUs ran one after the other: no two claims raced
		t.Errorf("%d buckets for %d flows", buckets, len(got))
	}
	if len(got) != len(wants) || v4 == 0 || v4 == len(got) {
		t.Errorf("%d flows (%d IPv4), want %d of both kinds", len(got), v4, len(wants))
	}
	for k, w := range wants {
		c, ok := got[k]
		if !ok {
			t.Errorf("flow %+v missing", k)
			continue
		}
		if c.Packets != w.packets || c.Bytes != w.bytes || c.SYN != w.syn || c.FirstNs == 0 || c.LastNs < c.FirstNs {
			t.Errorf("flow %v -> %v proto %d v%d: %+v, want %+v", k.SrcIP(), k.DstIP(), k.IpProto, k.IpVersion, c, *w)
		}
	}
	if d := readStats(t, e); d[record.StatFlowCounted] != n || d[record.StatSeen] != n || d[record.StatFlowFailed] != 0 {
		t.Errorf("flow_counted %d seen %d flow_failed %d, want %d %d 0", d[record.StatFlowCounted], d[record.StatSeen], d[record.StatFlowFailed], n, n)
	}
	clearFlows(t, e.o)
	if f, _ := sumFlows(t, e.o); f != 0 {
		t.Fatalf("%d buckets left after RetireFlows and FreeFlows", f)
	}
}

// TestFlowTableFill: all traffic on one CPU (a single-queue NIC, a veth), new flows of 2 packets
// each, differing only in the source address (the hash must mix every byte). FlowEntries flows
// all fit; past them, until twice the table's buckets were offered, every flow is either in the
// table with both its packets or in flow_failed with both: nothing evicted, nothing lost, and
// the table fills almost to the last bucket.
func TestFlowTableFill(t *testing.T) {
	const entries = 1500 // 2048 buckets
	buckets := flowBuckets(entries)
	e := newEnv(t, Config{FlowEntries: entries})
	for _, v6 := range []bool{false, true} {
		offer := func(from, to int) {
			t.Helper()
			err := onCPU(0, func() error {
				return withSignalsBlocked(func() error {
					for i := from; i < to; i++ {
						l4 := tcp{sport: 40000, dport: 443, seq: 1, ack: 1, flags: 0x010, win: 1000}.build(nil)
						var frame []byte
						if v6 {
							src := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)})
							frame = cat(ether(0x86dd), ip6{src: src, dst: ip6Dst, next: ipProto.TCP, hlim: 64, plen: -1}.build(ipProto.TCP, l4))
						} else {
							frame = cat(ether(0x0800), ip4{src: netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}), dst: ip4Dst, ttl: 64, proto: ipProto.TCP}.build(l4))
						}
						// The tc program: the same flow code, without XDP test runs' ~17 ms dispatcher swap per call.
						if _, err := e.o.objs.PlTc.Run(&ebpf.RunOptions{Data: frame, Repeat: 2}); err != nil {
							return err
						}
						if i%64 == 0 {
							e.drain(t) // keep the ring from filling: only the flow table is under test
						}
					}
					return nil
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			e.drain(t)
		}
		// inTable: the test's flows in the table, and whether each holds both its packets.
		inTable := func() (flows int, whole bool) {
			whole = true
			for k, c := range readFlowKeys(t, e.o) {
				if (k.IpVersion == 6) == v6 && k.DstPort == 443 {
					flows++
					whole = whole && c.Packets == 2
				}
			}
			return flows, whole
		}
		before := readStats(t, e)
		offer(0, entries)
		got, whole := inTable()
		failed := statsDelta(t, e, before)[record.StatFlowFailed]
		if got != entries || !whole || failed != 0 {
			t.Fatalf("v6=%v: %d flows offered (%d buckets), %d in the table (all with both packets: %v), %d packets in flow_failed",
				v6, entries, buckets, got, whole, failed)
		}
		offer(entries, 2*buckets)
		got, whole = inTable()
		failed = statsDelta(t, e, before)[record.StatFlowFailed]
		t.Logf("v6=%v: %d flows offered to %d buckets: %d in the table (%.1f%% full), %d refused", v6, 2*buckets, buckets,
			got, 100*float64(got)/float64(buckets), failed/2)
		if !whole || uint64(got)*2+failed != 2*2*uint64(buckets) || got < buckets*95/100 {
			t.Errorf("v6=%v: %d flows in the table (all with both packets: %v) + %d packets in flow_failed, of %d flows of 2 packets offered to %d buckets",
				v6, got, whole, failed, 2*buckets, buckets)
		}
		clearFlows(t, e.o)
	}
}

// TestFlowRetireAndFree: a retired bucket is no longer matched -- the flow's next packet claims a
// new one, and the retired bucket keeps what it had, so the exporter can read it once more --
// and freeing empties only retired buckets, for new flows.
func TestFlowRetireAndFree(t *testing.T) {
	e := newEnv(t, Config{})
	frame := cat(ether(0x0800), ip4{ttl: 64, proto: ipProto.UDP}.build(udp{sport: 5353, dport: 53}.build([]byte("x"))))
	other := cat(ether(0x0800), ip4{ttl: 64, proto: ipProto.UDP}.build(udp{sport: 5354, dport: 53}.build([]byte("y"))))
	runTC := func(f []byte, n uint32) {
		t.Helper()
		if _, err := e.o.objs.PlTc.Run(&ebpf.RunOptions{Data: f, Repeat: n}); err != nil {
			t.Fatal(err)
		}
	}
	entries := func() []FlowEntry {
		t.Helper()
		var es []FlowEntry
		if err := e.o.ReadFlows(func(f FlowEntry) { es = append(es, f) }); err != nil {
			t.Fatal(err)
		}
		return es
	}
	runTC(frame, 3)
	runTC(other, 1)
	es := entries()
	if len(es) != 2 {
		t.Fatalf("%d buckets, want 2: %+v", len(es), es)
	}
	first := es[0]
	if first.Key.SrcPort != 5353 {
		first = es[1]
	}
	if first.Counts.Packets != 3 || first.Retired {
		t.Fatalf("first bucket %+v, want 3 packets, live", first)
	}
	if err := e.o.RetireFlows([]FlowID{first.ID}); err != nil {
		t.Fatal(err)
	}
	runTC(frame, 2)
	var old, renewed, others int
	for _, f := range entries() {
		switch {
		case f.ID == first.ID && f.Retired && f.Counts.Packets == 3:
			old++
		case f.ID != first.ID && f.Key == first.Key && !f.Retired && f.Counts.Packets == 2:
			renewed++
		case f.Key.SrcPort == 5354 && !f.Retired && f.Counts.Packets == 1:
			others++
		default:
			t.Errorf("unexpected bucket %+v", f)
		}
	}
	if old != 1 || renewed != 1 || others != 1 {
		t.Fatalf("retired bucket kept %d, new bucket %d, other flow %d: want 1 each", old, renewed, others)
	}
	// Freeing: only the retired bucket goes; the live ones stay (FreeFlows leaves them alone).
	var all []FlowID
	for _, f := range entries() {
		all = append(all, f.ID)
	}
	if err := e.o.FreeFlows(all); err != nil {
		t.Fatal(err)
	}
	got := readFlowKeys(t, e.o)
	if n, _ := sumFlows(t, e.o); n != 2 || got[first.Key].Packets != 2 {
		t.Fatalf("after FreeFlows: %d buckets, flow %d packets; want 2 buckets, 2 packets", n, got[first.Key].Packets)
	}
	if err := e.o.FreeFlows([]FlowID{1 << 40}); err == nil {
		t.Error("FreeFlows took an id of no bucket")
	}
}

// TestFlowClaimRace: both CPUs run the same new flows at the same time, so both may claim a
// bucket for one flow at once: whatever buckets they made, each flow's totals are exact.
func TestFlowClaimRace(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Fatal("needs 2 CPUs")
	}
	e := newEnv(t, Config{RingBytes: 64 << 20})
	const flows, reps = 3000, 4
	frames := make([][]byte, flows)
	for i := range frames {
		l4 := udp{sport: uint16(1024 + i), dport: 9}.build([]byte("race"))
		frames[i] = cat(ether(0x0800), ip4{ttl: 64, proto: ipProto.UDP}.build(l4))
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for cpu := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[cpu] = onCPU(cpu, func() error {
				return withSignalsBlocked(func() error {
					for _, f := range frames {
						if _, err := e.o.objs.PlTc.Run(&ebpf.RunOptions{Data: f, Repeat: reps}); err != nil {
							return err
						}
					}
					return nil
				})
			})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := readFlowKeys(t, e.o)
	buckets, tot := sumFlows(t, e.o)
	t.Logf("%d flows on 2 CPUs at once: %d buckets (%d flows claimed twice), %d packets", flows, buckets, buckets-len(got), tot.Packets)
	if len(got) != flows || tot.Packets != 2*reps*flows {
		t.Fatalf("%d flows holding %d packets, want %d holding %d", len(got), tot.Packets, flows, 2*reps*flows)
	}
	for k, c := range got {
		if c.Packets != 2*reps {
			t.Errorf("flow port %d: %d packets, want %d", k.SrcPort, c.Packets, 2*reps)
		}
	}
	if d := readStats(t, e); d[record.StatFlowFailed] != 0 || d[record.StatFlowCounted] != 2*reps*flows {
		t.Errorf("flow_counted %d flow_failed %d", d[record.StatFlowCounted], d[record.StatFlowFailed])
	}
}
