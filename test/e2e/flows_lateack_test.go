package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/packetlake/packetlake/collector"
	"github.com/packetlake/packetlake/internal/local/kafkalocal"
	"github.com/packetlake/packetlake/internal/testkit/nettest"
	"github.com/packetlake/packetlake/internal/testkit/testinfra"
	"github.com/packetlake/packetlake/record"
)

// TestFlowsExactThroughLateAcks: Apache Kafka acknowledges flow messages late. The broker JVM is
// paused (SIGSTOP) while real UDP traffic crosses a veth into the collector's XDP program, until
// two flow exports have given up waiting for their acknowledgement; then it resumes (SIGCONT) and
// takes everything it had received. The flows table must then count every packet exactly once:
// in total what the kernel counted, and per UDP flow what the test sent. Before export identities
// (collector_id, export_seq, chunk), the export after a given-up one re-sent the cumulative
// delta, and the late original landed too: the flows counted those packets twice.
func TestFlowsExactThroughLateAcks(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	k := startOwnKafka(t, ctx)
	topics := make([]string, 3) // packets, stats, flows
	for i, name := range []string{"packets", "stats", "flows"} {
		topics[i] = "lateack-" + name
		if err := kafkalocal.CreateTopic(ctx, k.Addr(), topics[i], 1); err != nil {
			t.Fatal(err)
		}
	}

	v := nettest.NewVethPair(t)
	cfg := collector.DefaultConfig()
	cfg.Iface, cfg.NetNS, cfg.Host = v.Name, v.NS, "lateack"
	cfg.Kafka.Brokers = []string{k.Addr()}
	cfg.Topic, cfg.StatsTopic, cfg.FlowsTopic = topics[0], topics[1], topics[2]
	cfg.RingBytes = 4 << 20
	cfg.FlowInterval = time.Second
	cfg.FlowIdle = 3 * time.Second // idle flows are retired and freed around the pause too
	cfg.FlushTimeout = 30 * time.Second
	c := startCollector(t, ctx, cfg)

	// Four UDP flows all along; a fifth only before the pause, so it goes idle and is retired
	// while the broker is paused.
	sent := nettest.NewUDPFlows(t, v, 5)
	stopTraffic := sent.Run(ctx, 200*time.Millisecond, 4)
	sent.Burst(4, 30)
	waitStats(t, ctx, c, "flow exports acknowledged before the pause", func(s record.Stats) bool {
		return s.FlowPacketsExported >= 30 && s.FlowExportErrors == 0
	})

	pid := k.Pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
				t.Errorf("SIGCONT broker %d: %v", pid, err)
			}
		}
	}
	t.Cleanup(resume) // a failed test must not leave a stopped JVM behind
	paused := time.Now()
	before := c.Stats().FlowExportErrors
	waitStats(t, ctx, c, "two flow exports given up with the broker paused", func(s record.Stats) bool {
		return s.FlowExportErrors >= before+2
	})
	resume()
	t.Logf("broker paused for %s: %d flow messages unacknowledged at an export's end", time.Since(paused).Round(time.Millisecond),
		c.Stats().FlowExportErrors-before)
	exportedAtResume := c.Stats().FlowPacketsExported
	waitStats(t, ctx, c, "flow exports acknowledged again after the pause", func(s record.Stats) bool {
		return s.FlowPacketsExported > exportedAtResume
	})
	stopTraffic()
	total := sent.Total()
	waitStats(t, ctx, c, "every datagram sent seen by the program", func(s record.Stats) bool { return s.KernelSeen >= total })
	if err := c.Stop(); err != nil {
		t.Fatalf("collector Stop: %v", err)
	}
	st := c.Stats()
	t.Logf("kernel seen %d, flow counted %d; exported %d packets in %d rows, lost %d; %d exports, %d messages unacknowledged at an export's end",
		st.KernelSeen, st.KernelFlowCounted, st.FlowPacketsExported, st.FlowRowsExported, st.FlowLostPackets,
		st.FlowExports, st.FlowExportErrors)
	if st.KernelFlowCounted != st.KernelSeen || st.FlowPacketsExported != st.KernelFlowCounted || st.FlowLostPackets != 0 {
		t.Errorf("collector: kernel seen %d, flow counted %d, exported %d, lost %d; want all equal, none lost",
			st.KernelSeen, st.KernelFlowCounted, st.FlowPacketsExported, st.FlowLostPackets)
	}

	// Everything on the flows topic, ingested once the group has committed its end.
	db := "lateack_" + fmt.Sprint(time.Now().UnixNano())
	group := "lateack-" + db
	startIngestAt(t, ctx, k.Addr(), topics[0], topics[1], topics[2], group, db)
	if err := testinfra.WaitCommitted(ctx, k.Addr(), group, topics[2]); err != nil {
		t.Fatal(err)
	}

	ch := env.CH(t)
	var pk, by, noID uint64
	var twice int64
	if err := ch.QueryRow(ctx, "SELECT sum(packets), sum(bytes), count() - uniqExact(collector_id, export_seq, ifindex, vlan_id, tunnel_id, "+
		"ip_version, ip_proto, src_addr, dst_addr, src_port, dst_port), countIf(chunk = 0) FROM "+db+".flows").Scan(&pk, &by, &twice, &noID); err != nil {
		t.Fatal(err)
	}
	if pk != st.KernelFlowCounted || twice != 0 || noID != 0 {
		t.Errorf("flows table: %d packets (%d bytes), %d flow rows twice in one export, %d rows without a message identity; "+
			"the kernel counted %d packets", pk, by, twice, noID, st.KernelFlowCounted)
	}
	rows, err := ch.Query(ctx, "SELECT src_port, sum(packets), sum(bytes) FROM "+db+".flows WHERE ip_proto = 17 AND "+
		"src_addr = toIPv6(?) GROUP BY src_port", "::ffff:"+v.PeerAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[uint16][2]uint64{}
	for rows.Next() {
		var port uint16
		var p, b uint64
		if err := rows.Scan(&port, &p, &b); err != nil {
			t.Fatal(err)
		}
		got[port] = [2]uint64{p, b}
	}
	want := sent.Sent()
	for port, w := range want {
		if got[port] != w {
			t.Errorf("UDP flow from port %d: flows table has %d packets %d bytes, the test sent %d packets %d bytes",
				port, got[port][0], got[port][1], w[0], w[1])
		}
	}
	if len(got) != len(want) {
		t.Errorf("flows table has %d UDP flows, the test sent %d", len(got), len(want))
	}
	t.Logf("flows table: %d packets, %d bytes; UDP flows (packets, bytes) sent %v, stored %v", pk, by, want, got)
}

// startOwnKafka starts an Apache Kafka broker for one test: a test that pauses or stops its
// broker must not take the shared one from the others.
func startOwnKafka(t *testing.T, ctx context.Context) *kafkalocal.Apache {
	t.Helper()
	dir := t.TempDir()
	k, err := kafkalocal.StartApache(ctx, kafkalocal.ApacheConfig{DataDir: filepath.Join(dir, "kafka"), LogPath: filepath.Join(dir, "kafka.log")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Kill)
	return k
}

// waitStats polls the collector's stats until cond holds, failing the test at ctx's end.
func waitStats(t *testing.T, ctx context.Context, c *collector.Collector, what string, cond func(record.Stats) bool) {
	t.Helper()
	for !cond(c.Stats()) {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not reached: %+v", what, c.Stats())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
