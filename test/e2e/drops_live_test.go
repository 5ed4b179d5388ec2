package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/packetlake/packetlake/collector"
	"github.com/packetlake/packetlake/ingester"
	"github.com/packetlake/packetlake/internal/testkit/nettest"
	"github.com/packetlake/packetlake/internal/testkit/testinfra"
	"github.com/packetlake/packetlake/query"
)

// TestLiveKernelDropsToClickHouse: the collector attached (XDP) to a veth in a test-made
// namespace with its drop-reason program on, a real Apache Kafka, the ingester, ClickHouse. The
// peer sends UDP that the observed end's kernel drops for three reasons -- a closed port, an
// nftables drop rule, a wrong checksum -- and some that it delivers to a socket. After the
// collector's Stop (its last drop export acknowledged) and the ingester's commits, the drops
// table holds, per reason and flow, exactly the packets and frame bytes sent and not
// delivered, nothing for the delivered flow, no message twice; and loss_budget's kernel columns
// say the same.
func TestLiveKernelDropsToClickHouse(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	v := nettest.NewVethPair(t)
	nettest.NeighboursBothWays(t, v)
	const table = "pl_drops_e2e"
	nettest.MustExec(t, v.NS, "nft", "add table inet "+table+"; "+
		"add chain inet "+table+" in { type filter hook input priority 0; policy accept; }; "+
		"add rule inet "+table+" in udp dport 7001 counter drop")
	// A socket that reads everything: its flow is delivered, never dropped.
	stopEcho := udpReader(t, v, 7009)

	db := env.Database(t)
	topic, stats, flows, drops := env.Topic(t, 1), env.Topic(t, 1), env.Topic(t, 1), env.Topic(t, 1)
	cfg := collector.DefaultConfig()
	cfg.Iface, cfg.NetNS = v.Name, v.NS
	cfg.Kafka.Brokers = []string{env.Kafka.Addr()}
	cfg.Topic, cfg.StatsTopic, cfg.FlowsTopic, cfg.DropsTopic = topic, stats, flows, drops
	cfg.Host = "drops-e2e"
	cfg.RingBytes = 8 << 20
	cfg.StatsInterval, cfg.FlowInterval = time.Second, 500*time.Millisecond
	c := startCollector(t, ctx, cfg)
	if !c.DropsOn() {
		t.Fatal("the collector started without its drop-reason program (see its log above)")
	}

	const frame = 14 + 20 + 8
	nettest.SendUDP(t, v, 42000, 7000, 40, 100, false) // nothing listens on 7000
	nettest.SendUDP(t, v, 42001, 7001, 30, 200, false) // nftables drops 7001
	nettest.SendUDP(t, v, 42002, 7002, 20, 300, true)  // wrong UDP checksum
	nettest.SendUDP(t, v, 42009, 7009, 25, 50, false)  // delivered
	if got := stopEcho(25); got != 25 {
		t.Fatalf("the reading socket got %d of 25 datagrams", got)
	}
	// The collector's drop exports run every 500 ms; the drops of the last sends must be read
	// before Stop's last export, which they are: Stop reads the counters after the sends
	// returned and the receiving NAPI ran (the socket above read its datagrams after them).
	if err := c.Stop(); err != nil {
		t.Fatalf("collector Stop: %v", err)
	}

	icfg := ingester.DefaultConfig()
	icfg.Kafka.Brokers = []string{env.Kafka.Addr()}
	icfg.Topic, icfg.StatsTopic, icfg.FlowsTopic, icfg.DropsTopic, icfg.Group = topic, stats, flows, drops, "drops-"+db
	icfg.ClickHouse = env.CHConfig(db)
	icfg.FlushAge = 200 * time.Millisecond
	ing, err := ingester.New(icfg, ingester.Dependencies{Logger: slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	if err := ing.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer ing.Stop()
	if err := testinfra.WaitCommitted(ctx, env.Kafka.Addr(), icfg.Group, topic, stats, flows, drops); err != nil {
		t.Fatal(err)
	}

	ch := env.CH(t)
	rows, err := ch.Query(ctx, "SELECT reason, src_port, dst_port, toString(src_addr), toString(dst_addr), ip_version, ip_proto, "+
		"ifindex, sum(packets), sum(bytes) FROM "+db+".drops WHERE observed = 1 GROUP BY ALL ORDER BY dst_port")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for rows.Next() {
		var reason, src, dst string
		var sport, dport uint16
		var ipv, proto uint8
		var ifindex uint32
		var pk, by uint64
		if err := rows.Scan(&reason, &sport, &dport, &src, &dst, &ipv, &proto, &ifindex, &pk, &by); err != nil {
			t.Fatal(err)
		}
		got[fmt.Sprintf("%s %s:%d > %s:%d v%d p%d if%d", reason, src, sport, dst, dport, ipv, proto, ifindex)] = fmt.Sprintf("%d pkts %d B", pk, by)
	}
	rows.Close()
	flow := func(reason string, sport, dport uint16) string {
		return fmt.Sprintf("%s ::ffff:%s:%d > ::ffff:%s:%d v4 p17 if%d", reason, v.PeerAddr, sport, v.Addr, dport, v.Index)
	}
	want := map[string]string{
		flow("NO_SOCKET", 42000, 7000):      fmt.Sprintf("40 pkts %d B", 40*(frame+100)),
		flow("NETFILTER_DROP", 42001, 7001): fmt.Sprintf("30 pkts %d B", 30*(frame+200)),
		flow("UDP_CSUM", 42002, 7002):       fmt.Sprintf("20 pkts %d B", 20*(frame+300)),
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("drops %s: %q, want %q", k, got[k], w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected drops row %s: %s", k, g)
		}
	}
	// Each message identity once (the exporter never sends one identity with other rows).
	var ids, msgs uint64
	if err := ch.QueryRow(ctx, "SELECT uniqExact(host, run, export_seq, chunk), count() FROM (SELECT DISTINCT host, run, export_seq, chunk, "+
		"reason, observed, src_addr, dst_addr, src_port, dst_port FROM "+db+".drops)").Scan(&ids, &msgs); err != nil {
		t.Fatal(err)
	}
	var rowsStored uint64
	if err := ch.QueryRow(ctx, "SELECT count() FROM "+db+".drops").Scan(&rowsStored); err != nil {
		t.Fatal(err)
	}
	if rowsStored != msgs {
		t.Errorf("drops holds %d rows, %d distinct (message, reason, flow): a message stored twice", rowsStored, msgs)
	}

	// The loss budget's line: seen by packetlake, dropped by the kernel.
	var out bytes.Buffer
	p := query.Params{Since: start.Add(-time.Minute), Until: time.Now().Add(time.Minute), Limit: 1000}
	if err := query.Run(ctx, query.Config{ClickHouse: env.CHConfig(db)}, "loss_budget", p, "json", &out); err != nil {
		t.Fatal(err)
	}
	var dropped uint64
	reasons := map[string]uint64{}
	dec := json.NewDecoder(&out)
	for dec.More() {
		var r struct {
			Host    string `json:"host"`
			Dropped uint64 `json:"kernel_dropped"`
			Reasons string `json:"kernel_drop_reasons"`
		}
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		if r.Host != cfg.Host {
			continue
		}
		dropped += r.Dropped
		for _, part := range strings.Split(r.Reasons, ", ") {
			var name string
			var n uint64
			if _, err := fmt.Sscanf(part, "%s %d", &name, &n); err == nil {
				reasons[name] += n
			}
		}
	}
	wantReasons := map[string]uint64{"NO_SOCKET": 40, "NETFILTER_DROP": 30, "UDP_CSUM": 20}
	if dropped != 90 || fmt.Sprint(reasons) != fmt.Sprint(wantReasons) {
		t.Errorf("loss_budget: kernel_dropped %d by reason %v; want 90 by %v", dropped, reasons, wantReasons)
	}
	t.Logf("drops stored: %v; %d message identities; loss_budget kernel_dropped %d %v", got, ids, dropped, reasons)
}

// udpReader reads datagrams on the observed end's port until stop is called with how many are
// expected; stop returns how many it read (waiting up to 10 s for the expected count).
func udpReader(t *testing.T, v *nettest.Veth, port int) (stop func(want int) int) {
	t.Helper()
	counts := make(chan int, 1)
	wantc := make(chan int, 1)
	ready := make(chan error, 1)
	go func() {
		err := nettest.Do(v.NS, func() error {
			c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(v.Addr, uint16(port))))
			if err != nil {
				ready <- err
				return err
			}
			ready <- nil
			defer c.Close()
			n, want := 0, -1
			buf := make([]byte, 2048)
			deadline := time.Time{}
			for {
				select {
				case want = <-wantc:
					deadline = time.Now().Add(10 * time.Second)
				default:
				}
				if want >= 0 && (n >= want || time.Now().After(deadline)) {
					counts <- n
					return nil
				}
				c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				if _, err := c.Read(buf); err == nil {
					n++
				}
			}
		})
		if err != nil {
			counts <- -1
		}
	}()
	if err := <-ready; err != nil {
		t.Fatalf("listen on %s:%d: %v", v.Addr, port, err)
	}
	return func(want int) int {
		wantc <- want
		return <-counts
	}
}
