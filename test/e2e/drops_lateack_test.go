package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/packetlake/packetlake/collector"
	"github.com/packetlake/packetlake/internal/local/kafkalocal"
	"github.com/packetlake/packetlake/internal/testkit/nettest"
	"github.com/packetlake/packetlake/internal/testkit/testinfra"
)

// TestKernelDropsExactThroughLateAcks: the drop export's messages go unacknowledged while the
// test's own Apache Kafka broker is paused (SIGSTOP) past two exports' deadlines, and the kernel
// keeps counting drops meanwhile; then the broker resumes. The drops table must count every
// drop exactly once per flow: no export is cut while one is unacknowledged, and an
// unacknowledged message is never replaced by one carrying its delta again.
func TestKernelDropsExactThroughLateAcks(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	k := startOwnKafka(t, ctx)
	topics := make([]string, 4) // packets, stats, flows, drops
	for i, name := range []string{"packets", "stats", "flows", "drops"} {
		topics[i] = "droplate-" + name
		if err := kafkalocal.CreateTopic(ctx, k.Addr(), topics[i], 1); err != nil {
			t.Fatal(err)
		}
	}
	v := nettest.NewVethPair(t)
	nettest.NeighboursBothWays(t, v)
	cfg := collector.DefaultConfig()
	cfg.Iface, cfg.NetNS, cfg.Host = v.Name, v.NS, "droplate"
	cfg.Kafka.Brokers = []string{k.Addr()}
	cfg.Topic, cfg.StatsTopic, cfg.FlowsTopic, cfg.DropsTopic = topics[0], topics[1], topics[2], topics[3]
	cfg.RingBytes = 4 << 20
	cfg.FlowInterval = time.Second
	cfg.FlushTimeout = 30 * time.Second
	reg := prometheus.NewRegistry()
	c, err := collector.New(cfg, collector.Dependencies{Logger: slog.New(slog.NewTextHandler(testLogWriter{t}, nil)), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	if !c.DropsOn() {
		t.Fatal("the collector started without its drop-reason program (see its log above)")
	}
	metric := func(name string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var sum float64
		for _, mf := range mfs {
			if mf.GetName() == name {
				for _, m := range mf.GetMetric() {
					sum += m.GetCounter().GetValue()
				}
			}
		}
		return sum
	}
	waitMetric := func(what, name string, cond func(float64) bool) {
		t.Helper()
		for !cond(metric(name)) {
			select {
			case <-ctx.Done():
				t.Fatalf("%s: not reached (%s = %v)", what, name, metric(name))
			case <-time.After(50 * time.Millisecond):
			}
		}
	}

	const frame = 14 + 20 + 8
	nettest.SendUDP(t, v, 42000, 7000, 10, 100, false) // closed ports: NO_SOCKET
	waitMetric("the first drops acknowledged", "packetlake_collector_kernel_drops_exported_total", func(f float64) bool { return f >= 10 })

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
	t.Cleanup(resume)
	nettest.SendUDP(t, v, 42000, 7000, 20, 100, false)
	errsBefore := metric("packetlake_collector_drop_export_errors_total")
	waitMetric("an export given up with the broker paused", "packetlake_collector_drop_export_errors_total", func(f float64) bool { return f >= errsBefore+1 })
	nettest.SendUDP(t, v, 42001, 7001, 15, 200, false) // while an export waits for its acknowledgement
	waitMetric("a second export given up", "packetlake_collector_drop_export_errors_total", func(f float64) bool { return f >= errsBefore+2 })
	resume()
	waitMetric("every drop acknowledged after the pause", "packetlake_collector_kernel_drops_exported_total", func(f float64) bool { return f >= 45 })
	t.Logf("exports %v, unacknowledged at an export's end %v, resent %v", metric("packetlake_collector_drop_exports_total"),
		metric("packetlake_collector_drop_export_errors_total"), metric("packetlake_collector_drop_messages_resent_total"))
	if err := c.Stop(); err != nil { // unregisters the metrics
		t.Fatalf("collector Stop: %v", err)
	}

	db := "droplate_" + fmt.Sprint(time.Now().UnixNano())
	group := "droplate-" + db
	stopIngest := startIngestAt(t, ctx, k.Addr(), topics[0], topics[1], topics[2], group, db, "--drops-topic", topics[3])
	if err := testinfra.WaitCommitted(ctx, k.Addr(), group, topics[3]); err != nil {
		t.Fatal(err)
	}
	stopIngest()
	ch := env.CH(t)
	rows, err := ch.Query(ctx, "SELECT dst_port, sum(packets), sum(bytes), count() - uniqExact(run, export_seq, chunk, reason, src_port, dst_port) "+
		"FROM "+db+".drops WHERE observed = 1 AND reason = 'NO_SOCKET' GROUP BY dst_port ORDER BY dst_port")
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint16]string{}
	for rows.Next() {
		var port uint16
		var pk, by uint64
		var twice int64
		if err := rows.Scan(&port, &pk, &by, &twice); err != nil {
			t.Fatal(err)
		}
		got[port] = fmt.Sprintf("%d pkts %d B, %d rows twice", pk, by, twice)
	}
	rows.Close()
	want := map[uint16]string{
		7000: fmt.Sprintf("30 pkts %d B, 0 rows twice", 30*(frame+100)),
		7001: fmt.Sprintf("15 pkts %d B, 0 rows twice", 15*(frame+200)),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("drops table: %v, want %v", got, want)
	}
}
