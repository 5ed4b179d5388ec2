package bpf

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/packetlake/packetlake/internal/testkit/nettest"
)

// dropEnv is a veth pair with the packet program attached natively to the observed end and the
// drop-reason program observing it; neighbours are permanent both ways, so no ARP crosses.
type dropEnv struct {
	v       *nettest.Veth
	d       *Drops
	reasons *DropReasons
}

func newDropEnv(t *testing.T) *dropEnv {
	t.Helper()
	v := nettest.NewVethPair(t)
	e := newEnv(t, Config{})
	var l link.Link
	if err := v.Do(func() (err error) { l, err = e.o.AttachXDP(v.Index, XDPNative); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	d, err := LoadDrops(DropsConfig{})
	if err != nil {
		t.Fatalf("drop-reason program (tp_btf/kfree_skb needs the kernel's BTF): %v", err)
	}
	t.Cleanup(func() { d.Close() })
	reasons, err := LoadDropReasons()
	if err != nil {
		t.Fatal(err)
	}
	var ino uint32
	if err := v.Do(func() (err error) { ino, err = CurrentNetns(); return err }); err != nil {
		t.Fatal(err)
	}
	if err := d.Observe(ino, v.Index); err != nil {
		t.Fatal(err)
	}
	nettest.NeighboursBothWays(t, v)
	return &dropEnv{v: v, d: d, reasons: reasons}
}

// snmpUDP reads the Udp counters of /proc/net/snmp in namespace ns: the kernel's own count of
// what its UDP layer refused, an oracle independent of the tracepoint.
func snmpUDP(t *testing.T, ns string) map[string]uint64 {
	t.Helper()
	out := nettest.MustExec(t, ns, "cat", "/proc/net/snmp")
	var lines [][]string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 1 && f[0] == "Udp:" {
			lines = append(lines, f[1:])
		}
	}
	if len(lines) != 2 || len(lines[0]) != len(lines[1]) {
		t.Fatalf("no Udp counters in /proc/net/snmp of %s:\n%s", ns, out)
	}
	m := map[string]uint64{}
	for i, k := range lines[0] {
		m[k], _ = strconv.ParseUint(lines[1][i], 10, 64)
	}
	return m
}

// nftPackets reads the packets counted by the rule of chain "in" of table inet name.
var nftCounter = regexp.MustCompile(`counter packets (\d+) bytes (\d+)`)

func nftPackets(t *testing.T, ns, table string) uint64 {
	t.Helper()
	out := nettest.MustExec(t, ns, "nft", "list", "chain", "inet", table, "in")
	m := nftCounter.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no counter in chain inet %s in:\n%s", table, out)
	}
	n, _ := strconv.ParseUint(string(m[1]), 10, 64)
	return n
}

// dropsOf sums the map's counts per (reason name, destination port) of UDP from the peer.
type dropFlow struct {
	reason           string
	srcPort, dstPort uint16
}

func (de *dropEnv) read(t *testing.T) map[dropFlow]DropCount {
	t.Helper()
	got := map[dropFlow]DropCount{}
	err := de.d.ReadDrops(func(k DropKey, c DropCount) {
		if k.IpProto != unix.IPPROTO_UDP || k.SrcIP() != de.v.PeerAddr || k.DstIP() != de.v.Addr || k.Ifindex != uint32(de.v.Index) {
			t.Logf("other drop: %s %+v", de.reasons.Name(k.Reason), c)
			return
		}
		f := dropFlow{de.reasons.Name(k.Reason), k.SrcPort, k.DstPort}
		s := got[f]
		got[f] = DropCount{s.Packets + c.Packets, s.Bytes + c.Bytes}
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// waitDrops polls the map until the flows in want have at least their packets (the receiver's
// NAPI runs after the sender returns), or 10 s pass; then the caller compares exactly.
func (de *dropEnv) waitDrops(t *testing.T, want map[dropFlow]DropCount) map[dropFlow]DropCount {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := de.read(t)
		done := true
		for f, w := range want {
			if got[f].Packets < w.Packets {
				done = false
			}
		}
		if done || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLiveDropReasons induces four kernel drop reasons on packets the packet program saw and
// requires the drop-reason program to count each exactly: packets and frame bytes per reason and
// flow equal to what was sent minus what was delivered, and equal to the kernel's own counters
// (nftables' rule counter, /proc/net/snmp's Udp NoPorts, InCsumErrors, RcvbufErrors). Reason
// values come from the kernel's BTF, by name.
func TestLiveDropReasons(t *testing.T) {
	de := newDropEnv(t)
	v := de.v
	const table = "pl_drops_test"
	nettest.MustExec(t, v.NS, "nft", "add table inet "+table+"; "+
		"add chain inet "+table+" in { type filter hook input priority 0; policy accept; }; "+
		"add rule inet "+table+" in udp dport 7001 counter drop")

	// A UDP socket that is never read, with the smallest receive buffer the kernel allows.
	var sink *net.UDPConn
	err := v.Do(func() (err error) {
		sink, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(v.Addr, 7003)))
		if err != nil {
			return err
		}
		return sink.SetReadBuffer(1)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()

	snmpBefore := snmpUDP(t, v.NS)
	const frame = 14 + 20 + 8
	const (
		nNoSock, nNF, nCsum, nFull             = 40, 30, 20, 100
		sizeNoSock, sizeNF, sizeCsum, sizeFull = 100, 200, 300, 1000
	)
	nettest.SendUDP(t, v, 42000, 7000, nNoSock, sizeNoSock, false) // nothing listens on 7000
	nettest.SendUDP(t, v, 42001, 7001, nNF, sizeNF, false)         // nftables drops 7001
	nettest.SendUDP(t, v, 42002, 7002, nCsum, sizeCsum, true)      // wrong UDP checksum
	nettest.SendUDP(t, v, 42003, 7003, nFull, sizeFull, false)     // the full socket

	want := map[dropFlow]DropCount{
		{"NO_SOCKET", 42000, 7000}:      {nNoSock, nNoSock * (frame + sizeNoSock)},
		{"NETFILTER_DROP", 42001, 7001}: {nNF, nNF * (frame + sizeNF)},
		{"UDP_CSUM", 42002, 7002}:       {nCsum, nCsum * (frame + sizeCsum)},
	}
	// What the full socket holds was delivered: the rest was dropped. The buffer takes a few.
	waitFor := map[dropFlow]DropCount{}
	for f, c := range want {
		waitFor[f] = c
	}
	waitFor[dropFlow{"SOCKET_RCVBUFF", 42003, 7003}] = DropCount{Packets: 1}
	got := de.waitDrops(t, waitFor)
	delivered := 0
	buf := make([]byte, 2048)
	for {
		sink.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := sink.Read(buf); err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal(err)
			}
			break
		}
		delivered++
	}
	got = de.read(t) // the reads above took long enough for the last ones to land
	nFullDropped := nFull - delivered
	want[dropFlow{"SOCKET_RCVBUFF", 42003, 7003}] = DropCount{uint64(nFullDropped), uint64(nFullDropped * (frame + sizeFull))}
	if delivered == 0 || nFullDropped <= 0 {
		t.Fatalf("the full socket took %d of %d datagrams: the backlog case needs some of each", delivered, nFull)
	}

	for f, w := range want {
		if got[f] != w {
			t.Errorf("%s from :%d to :%d: counted %+v, want %+v", f.reason, f.srcPort, f.dstPort, got[f], w)
		}
	}
	for f, c := range got {
		if _, ok := want[f]; !ok {
			t.Errorf("unexpected drops %s from :%d to :%d: %+v", f.reason, f.srcPort, f.dstPort, c)
		}
	}

	// The kernel's own counters agree.
	snmp := snmpUDP(t, v.NS)
	delta := func(k string) uint64 { return snmp[k] - snmpBefore[k] }
	checks := []struct {
		what      string
		kernel    uint64
		recounted uint64
	}{
		{"nftables rule counter", nftPackets(t, v.NS, table), got[dropFlow{"NETFILTER_DROP", 42001, 7001}].Packets},
		{"Udp NoPorts", delta("NoPorts"), got[dropFlow{"NO_SOCKET", 42000, 7000}].Packets},
		{"Udp InCsumErrors", delta("InCsumErrors"), got[dropFlow{"UDP_CSUM", 42002, 7002}].Packets},
		{"Udp RcvbufErrors", delta("RcvbufErrors"), got[dropFlow{"SOCKET_RCVBUFF", 42003, 7003}].Packets},
	}
	for _, c := range checks {
		if c.kernel != c.recounted {
			t.Errorf("%s: kernel %d, drop-reason program %d", c.what, c.kernel, c.recounted)
		}
	}
	st, err := de.d.ReadStats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Failed != 0 {
		t.Errorf("%d drops found the map full", st.Failed)
	}
	t.Logf("counted exactly: %s; full socket delivered %d of %d; stats %+v", fmtDrops(got), delivered, nFull, st)
}

func fmtDrops(m map[dropFlow]DropCount) string {
	var b strings.Builder
	for f, c := range m {
		fmt.Fprintf(&b, "%s(:%d) %d pkts %d B; ", f.reason, f.dstPort, c.Packets, c.Bytes)
	}
	return b.String()
}
