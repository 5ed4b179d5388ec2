package nettest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"testing"
)

// ReplayStats is what tcpreplay reports having sent.
type ReplayStats struct {
	Sent, Failed int
}

var replayCount = regexp.MustCompile(`(?m)^\s*(Successful|Failed) packets:\s+(\d+)`)

// Replay sends every frame of a pcap/pcapng file out of interface dev in namespace ns with
// tcpreplay, at pps packets per second (0 = 1000). A paced rate, not --topspeed: a veth whose
// peer runs native XDP has a small queue, and a burst overflowing it is dropped before any
// program sees it (those drops show only in the sender's tx_dropped, see LinkStats).
func Replay(t testing.TB, ns, dev, pcap string, pps int) ReplayStats {
	t.Helper()
	requireTools(t, "tcpreplay")
	if pps == 0 {
		pps = 1000
	}
	out := MustExec(t, ns, "tcpreplay", "--intf1="+dev, "--pps="+strconv.Itoa(pps), pcap)
	var st ReplayStats
	m := replayCount.FindAllStringSubmatch(string(out), -1)
	if len(m) != 2 {
		t.Fatalf("nettest: tcpreplay %s: cannot find packet counts in its output:\n%s", pcap, out)
	}
	for _, g := range m {
		n, _ := strconv.Atoi(g[2])
		if g[1] == "Successful" {
			st.Sent = n
		} else {
			st.Failed = n
		}
	}
	return st
}

// LinkStats are an interface's kernel counters.
type LinkStats struct {
	RxPackets, RxDropped, TxPackets, TxDropped uint64
}

// ReadLinkStats reads dev's counters inside namespace ns.
func ReadLinkStats(t testing.TB, ns, dev string) LinkStats {
	t.Helper()
	out := MustExec(t, ns, "ip", "-j", "-s", "link", "show", "dev", dev)
	var links []struct {
		Stats struct {
			Rx struct{ Packets, Dropped uint64 }
			Tx struct{ Packets, Dropped uint64 }
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		t.Fatalf("nettest: parse `ip -j -s link show %s`: %v: %s", dev, err, out)
	}
	s := links[0].Stats
	return LinkStats{s.Rx.Packets, s.Rx.Dropped, s.Tx.Packets, s.Tx.Dropped}
}

func (s LinkStats) String() string {
	return fmt.Sprintf("rx %d (dropped %d), tx %d (dropped %d)", s.RxPackets, s.RxDropped, s.TxPackets, s.TxDropped)
}
