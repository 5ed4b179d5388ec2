package collector

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/packetlake/packetlake/record"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFlowsExportedExactly: packets run through the program in two bursts, with idle flows
// deleted from the kernel map in between (and recreated by the second burst): the deltas on the
// flows topic sum to exactly the packets and bytes the kernel saw, and Stats agree.
func TestFlowsExportedExactly(t *testing.T) {
	k := startKafka(t)
	cfg := testConfig(k.Addr())
	cfg.FlowInterval = 100 * time.Millisecond
	cfg.FlowIdle = 200 * time.Millisecond
	c := startLive(t, cfg)
	pkts, _ := capturePackets(t, "ja4/tls-handshake.pcapng")
	var wantBytes uint64
	const n = 400
	for i := range n / 2 {
		wantBytes += 2 * uint64(len(pkts[i%len(pkts)])) // the same packets, twice
	}
	inject(t, c, pkts, n/2)
	// Exported, then idle, then deleted from the map.
	if !waitFor(5*time.Second, func() bool { s := c.Stats(); return s.FlowPacketsExported == n/2 && s.FlowsActive == 0 }) {
		t.Fatalf("first burst not exported and pruned: %+v", c.Stats())
	}
	inject(t, c, pkts, n/2)
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	s := c.Stats()
	cons := newConsumer(t, k.Addr(), cfg.FlowsTopic)
	var pk, by, rows uint64
	recs := cons.until(10*time.Second, func(rs []*kgo.Record) bool {
		pk, by, rows = 0, 0, 0
		for _, r := range rs {
			var m FlowMessage
			if err := json.Unmarshal(r.Value, &m); err != nil {
				t.Fatalf("flow message: %v", err)
			}
			if m.Version != record.FlowMessageVersion || m.CollectorID != c.ID() || m.Host != cfg.Host {
				t.Fatalf("flow message header: %+v", m)
			}
			for _, f := range m.Flows {
				pk += f.Packets
				by += f.Bytes
				rows++
				if f.Packets == 0 || f.FirstSeenNs == 0 || f.LastSeenNs < f.FirstSeenNs {
					t.Fatalf("bad row %+v", f)
				}
			}
		}
		return pk >= n
	})
	t.Logf("%d messages, %d rows: %d packets %d bytes; stats: seen %d flow_counted %d exported %d lost %d retired %d",
		len(recs), rows, pk, by, s.KernelSeen, s.KernelFlowCounted, s.FlowPacketsExported, s.FlowLostPackets, s.FlowsRetired)
	if pk != n || by != wantBytes || s.KernelSeen != n || s.KernelFlowCounted != n || s.FlowPacketsExported != n ||
		s.FlowBytesExported != wantBytes || s.FlowLostPackets != 0 {
		t.Fatalf("want %d packets %d bytes; topic %d/%d, stats %+v", n, wantBytes, pk, by, s)
	}
}
