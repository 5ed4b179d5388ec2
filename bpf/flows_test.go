package bpf

import (
	"runtime"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/packetlake/packetlake/record"
)

// TestFlowKeysPerCPU: every parse case (IPv4, IPv6, VLAN, non-IP, parse errors) runs on CPU 0
// and on CPU 1; each flow ReadFlows returns has the key its packets' record gives (IPv4 flows
// come from pl_flows4's short key, the rest from pl_flows) and the packets, bytes and flags of
// both CPUs' slots summed; DeleteFlows empties both maps.
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
			VlanId: p.VlanID, IpProto: p.IPProto, IpVersion: p.IPVersion}
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
	got := map[FlowKey]FlowCounts{}
	var v4 int
	if err := e.o.ReadFlows(func(k FlowKey, c FlowCounts) {
		if _, dup := got[k]; dup {
			t.Errorf("flow %+v read twice", k)
		}
		got[k] = c
		if k.IpVersion == 4 {
			v4++
		}
	}); err != nil {
		t.Fatal(err)
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
	keys := make([]FlowKey, 0, len(got))
	for k := range got {
		keys = append(keys, k)
	}
	if err := e.o.DeleteFlows(keys); err != nil {
		t.Fatal(err)
	}
	if f, _ := sumFlows(t, e.o); f != 0 {
		t.Fatalf("%d flows left after DeleteFlows", f)
	}
}

// TestFlowCapacityOnOneCPU: all traffic on one CPU (a single-queue NIC, a veth) may use every
// entry of the flow map. With per-CPU LRU lists (BPF_F_NO_COMMON_LRU) the kernel splits the
// preallocated entries among the possible CPUs, and this CPU would start evicting flows at
// FlowEntries / CPUs: their counts would be lost.
func TestFlowCapacityOnOneCPU(t *testing.T) {
	const entries = 1024
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	if cpus < 2 {
		t.Fatal("needs 2 possible CPUs")
	}
	e := newEnv(t, Config{FlowEntries: entries})
	flows := entries * 9 / 10 // LRU maps may evict a little before they are full
	for _, v6 := range []bool{false, true} {
		err := onCPU(0, func() error {
			return withSignalsBlocked(func() error {
				for i := range flows {
					l4 := tcp{sport: uint16(10000 + i), dport: 443, seq: 1, ack: 1, flags: 0x010, win: 1000}.build(nil)
					var frame []byte
					if v6 {
						frame = cat(ether(0x86dd), ip6{next: ipProto.TCP, hlim: 64, plen: -1}.build(ipProto.TCP, l4))
					} else {
						frame = cat(ether(0x0800), ip4{ttl: 64, proto: ipProto.TCP}.build(l4))
					}
					// The tc program: the same flow code, without XDP test runs' ~17 ms dispatcher swap per call.
					if _, err := e.o.objs.PlTc.Run(&ebpf.RunOptions{Data: frame, Repeat: 2}); err != nil {
						return err
					}
					if i%64 == 0 {
						e.drain(t) // keep the ring from filling: only the flow map is under test
					}
				}
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		e.drain(t)
		got, packets := 0, uint64(0)
		if err := e.o.ReadFlows(func(k FlowKey, c FlowCounts) {
			if (k.IpVersion == 6) == v6 && k.DstPort == 443 {
				got++
				packets += c.Packets
			}
		}); err != nil {
			t.Fatal(err)
		}
		if got != flows || packets != 2*uint64(flows) {
			t.Errorf("v6=%v: %d flows holding %d packets after %d flows of 2 packets on one CPU (map of %d, %d CPUs): flows were evicted",
				v6, got, packets, flows, entries, cpus)
		}
	}
}
