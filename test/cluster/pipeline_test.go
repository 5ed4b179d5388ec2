package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packetlake/packetlake/collector"
	"github.com/packetlake/packetlake/detector"
	"github.com/packetlake/packetlake/internal/chconn"
	"github.com/packetlake/packetlake/internal/testkit/nettest"
	"github.com/packetlake/packetlake/internal/testkit/testpcaps"
	"github.com/packetlake/packetlake/query"
	"github.com/packetlake/packetlake/test/analytics"
)

// TestClusterPipelineSurvivesKills is packetlake past one machine, end to end: two live
// collectors (XDP on two veths, real captures replayed into each by tcpreplay: two "hosts") →
// a three-node Kafka (RF 3, min ISR 2; idempotent producers, acks=all) → three `packetlake
// ingest` processes in one group → a two-shard ClickHouse, through Distributed tables with
// foreground inserts and each shard deduplicating by the batch's token. Under traffic, in turn
// and each chosen by what the test observes: SIGKILL the leader of the busiest partition, then
// the active KRaft controller, then the ingester inserting the most, then one ClickHouse shard
// server; each is restarted. At the end every packet the kernel saw is stored exactly once, the
// flows count every packet, and every report, dashboard query and detector query answers the
// same on the cluster as on a single server loaded from the same topics.
func TestClusterPipelineSurvivesKills(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	testStart := time.Now()
	kc, cc := env.KafkaCluster, env.CHCluster
	const topic, stats, flows, group, db = "cl-packets", "cl-stats", "cl-flows", "cl-ingest", "pl_cluster"
	for _, tp := range []struct {
		name string
		n    int32
	}{{topic, 3}, {stats, 1}, {flows, 1}} {
		if err := kc.CreateTopic(ctx, tp.name, tp.n, 3, 2); err != nil {
			t.Fatal(err)
		}
	}
	schemaApply(t, ctx, db)
	brokers := strings.Join(kc.Addrs(), ",")
	ingestArgs := func(shard int) []string {
		return []string{"--brokers", brokers, "--group", group, "--topic", topic, "--stats-topic", stats,
			"--flows-topic", flows, "--cluster", cc.Name(), "--database", db,
			"--clickhouse", cc.TCPAddrs()[shard], "--clickhouse-http", cc.HTTPAddrs()[shard],
			"--flush-age", "300ms", "--session-timeout", "6s", "--log-level", "info"}
	}
	// Ingesters 1 and 3 insert through shard 1, ingester 2 through shard 2: killing shard 2
	// takes an entry point and a shard away at once.
	var ingesters []*ingestProc
	for i := range 3 {
		ingesters = append(ingesters, startIngestProc(t, fmt.Sprintf("ingester-%d", i+1), ingestArgs(i%2)...))
	}

	hosts := []string{"node-a", "node-b"}
	var collectors []*collector.Collector
	var veths []*nettest.Veth
	for i, host := range hosts {
		v := nettest.NewVethPair(t)
		cfg := collector.DefaultConfig()
		cfg.Iface, cfg.NetNS, cfg.Host = v.Name, v.NS, host
		cfg.Kafka.Brokers, cfg.Topic, cfg.StatsTopic, cfg.FlowsTopic = kc.Addrs(), topic, stats, flows
		cfg.RingBytes = 4 << 20
		c, err := collector.New(cfg, collector.Dependencies{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(ctx); err != nil {
			t.Fatalf("collector %d: %v", i, err)
		}
		t.Cleanup(func() { c.Stop() })
		collectors, veths = append(collectors, c), append(veths, v)
	}

	// Traffic: a real capture replayed into each collector's interface, over and over, until
	// the faults are done.
	stopTraffic := make(chan struct{})
	var traffic sync.WaitGroup
	replayErr := make(chan error, len(veths))
	for _, v := range veths {
		traffic.Go(func() {
			for {
				select {
				case <-stopTraffic:
					return
				default:
				}
				if _, err := nettest.Exec(ctx, v.PeerNS, "tcpreplay", "--intf1="+v.PeerName, "--pps=1500", "--loop=4",
					testpcaps.Path("ja4/v6.pcap")); err != nil {
					replayErr <- err
					return
				}
			}
		})
	}
	kv := newKafkaView(t)
	ends := func() map[int32]int64 { return kv.endOffsets(ctx, topic) }
	commits := func() map[int32]int64 { return kv.committed(ctx, group, topic) }
	all := []string{topic, stats, flows}
	stalls := map[string]time.Duration{}

	// Traffic flows into the cluster through every ingester that holds a packets partition
	// (3 members, 5 partitions of 3 topics: one member may hold only stats and flows).
	clusterRows := chHTTP(t, cc.HTTPAddrs()[0], db)
	waitFor(ctx, t, 90*time.Second, "rows on the cluster, all three ingesters up", func() bool {
		for _, p := range ingesters {
			if p.rowsInserted() < 0 {
				return false
			}
		}
		n := uintOr(ctx, clusterRows, "SELECT count() FROM packets")
		return n != ^uint64(0) && n > 1000
	})

	// 1. The leader of the busiest partition.
	active := busy(ctx, 2*time.Second, ends)
	if len(active) == 0 {
		t.Fatal("no partition of the packets topic is growing")
	}
	var busiest int32
	var most int64 = -1
	for p, o := range active {
		if o > most {
			busiest, most = p, o
		}
	}
	leader, err := kc.PartitionLeader(ctx, topic, busiest)
	if err != nil {
		t.Fatal(err)
	}
	base := ends()
	kc.Node(leader).Kill()
	killed := time.Now()
	stalls["kafka partition leader"] = advancedSince(ctx, t, "produce after the leader's kill", killed, onlyKeys(base, active), ends)
	t.Logf("killed kafka node %d, leader of %s/%d: every busy partition took writes again after %v", leader, topic, busiest, stalls["kafka partition leader"])
	if err := kc.Node(leader).Restart(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, 60*time.Second, "all replicas back in sync after the leader's restart", func() bool { return kv.fullISR(ctx, all...) })

	// 2. The active controller.
	ctrl, err := kc.ActiveController(ctx)
	if err != nil {
		t.Fatal(err)
	}
	active = busy(ctx, time.Second, ends)
	base = ends()
	kc.Node(ctrl).Kill()
	killed = time.Now()
	newCtrl := 0
	stalls["kafka controller election"] = waitFor(ctx, t, 60*time.Second, "a new active controller", func() bool {
		c, err := kc.ActiveController(ctx)
		newCtrl = c
		return err == nil && c != ctrl
	})
	stalls["kafka active controller"] = advancedSince(ctx, t, "produce after the controller's kill", killed, onlyKeys(base, active), ends)
	t.Logf("killed kafka node %d, the active controller: node %d took over after %v; every busy partition took writes again after %v",
		ctrl, newCtrl, stalls["kafka controller election"], stalls["kafka active controller"])
	if err := kc.Node(ctrl).Restart(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, 60*time.Second, "all replicas back in sync after the controller's restart", func() bool { return kv.fullISR(ctx, all...) })

	// 3. The ingester inserting the most packets right now (one holding packets partitions).
	victim, gain := 0, 0.0
	waitFor(ctx, t, 60*time.Second, "an ingester inserting packets", func() bool {
		before := make([]float64, len(ingesters))
		for i, p := range ingesters {
			before[i] = p.rowsInserted()
		}
		time.Sleep(2 * time.Second)
		for i, p := range ingesters {
			if g := p.rowsInserted() - before[i]; g > gain {
				victim, gain = i, g
			}
		}
		return gain > 0
	})
	// Its partitions that receive traffic: a partition without new records is never committed
	// again, by anyone.
	fed := busy(ctx, time.Second, ends)
	held := ingesters[victim].owned(topic)
	ingesters[victim].kill()
	killed = time.Now()
	base = settled(ctx, commits) // after the kill: a commit in flight at the kill is no progress
	heldBase := map[int32]int64{}
	for p := range held {
		if _, ok := fed[p]; ok {
			heldBase[p] = base[p]
		}
	}
	if len(heldBase) == 0 {
		t.Fatalf("%s inserted packets but its log shows no fed packets partition held (held %v, fed %v)", ingesters[victim].name, held, fmtOffsets(fed))
	}
	stalls["ingester"] = advancedSince(ctx, t, "commits of the killed ingester's partitions", killed, heldBase, commits)
	t.Logf("killed %s (%.0f rows in the 2 s before, holding %s partitions %v): they were committed again, by another member, after %v",
		ingesters[victim].name, gain, topic, fmtOffsets(heldBase), stalls["ingester"])
	ingesters[victim].start()

	// 4. A ClickHouse shard server (also the entry point of ingester 2).
	active = busy(ctx, time.Second, commits)
	if err := cc.Kill(2); err != nil {
		t.Fatal(err)
	}
	killed = time.Now()
	base = settled(ctx, commits)
	time.Sleep(3 * time.Second) // foreground inserts into the Distributed tables fail meanwhile
	if err := cc.Restart(ctx, 2); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	stalls["clickhouse shard (3 s down)"] = advancedSince(ctx, t, "commits after the shard's restart", killed, onlyKeys(base, active), commits)
	t.Logf("killed clickhouse shard 2 for %v: every busy partition committed again %v after the kill (%v after the restart)",
		restarted.Sub(killed).Round(time.Millisecond), stalls["clickhouse shard (3 s down)"], time.Since(restarted).Round(time.Millisecond))

	// The end: traffic stops, collectors flush, every ingester catches up.
	time.Sleep(2 * time.Second)
	close(stopTraffic)
	traffic.Wait()
	select {
	case err := <-replayErr:
		t.Fatalf("tcpreplay: %v", err)
	default:
	}
	var acked uint64
	seen := map[string]uint64{}
	for i, c := range collectors {
		if err := c.Stop(); err != nil {
			t.Fatalf("stop collector %d: %v", i, err)
		}
		s := c.Stats()
		if s.RecordsShed != 0 || s.RecordsFailed != 0 || s.KernelRingFull != 0 || s.FlowLostPackets != 0 || s.RecordsAcked != s.KernelSeen {
			t.Fatalf("collector %s lost records: %+v", hosts[i], s)
		}
		acked += s.RecordsAcked
		seen[hosts[i]] = s.KernelSeen
	}
	cl := chHTTP(t, cc.HTTPAddrs()[0], db)
	count := func(sql string) func() uint64 { return func() uint64 { return uintOr(ctx, cl, sql) } }
	rows := waitStable(ctx, acked, count("SELECT count() FROM packets"))
	flowPackets := waitStable(ctx, acked, count("SELECT sum(packets) FROM flows"))
	if rows != acked {
		t.Fatalf("cluster: %d rows; the collectors' kernels saw and Kafka acknowledged %d", rows, acked)
	}
	if flowPackets != acked {
		// Rows of one export seen twice are the ingester's; the same flow in more exports
		// than the collector made, the collector's.
		dups, _ := cl.Query(ctx, "SELECT host, collector_id, export_seq, count() - uniqExact(ifindex, ip_proto, src_addr, dst_addr, src_port, dst_port, vlan_id) AS extra FROM flows GROUP BY ALL HAVING extra > 0 LIMIT 5")
		t.Errorf("cluster: flows count %d packets, the kernels saw %d; flow rows repeated within one export: %v; collectors: %+v / %+v",
			flowPackets, acked, dups, collectors[0].Stats(), collectors[1].Stats())
	}
	var perShard []uint64
	for _, a := range cc.HTTPAddrs() {
		perShard = append(perShard, uintOr(ctx, chHTTP(t, a, db), "SELECT count() FROM packets_local"))
	}
	if perShard[0]+perShard[1] != rows || perShard[0] == 0 || perShard[1] == 0 {
		t.Errorf("rows per shard %v, total %d: want both shards holding part of them", perShard, rows)
	}
	if d := uintOr(ctx, cl, "SELECT count() - uniqExact(host, collector_id, seq) FROM packets"); d != 0 {
		t.Errorf("(host, collector_id, seq) stored more than once: %d extra rows", d)
	}
	for host, n := range seen {
		if got := uintOr(ctx, cl, "SELECT count() FROM packets WHERE host = '"+host+"'"); got != n {
			t.Errorf("host %s: %d rows, its kernel saw %d", host, got, n)
		}
	}
	t.Logf("%d packets from 2 collectors (%v per shard) stored exactly once through 4 kills", rows, perShard)
	for _, p := range ingesters {
		if p.exited() {
			t.Errorf("%s exited by itself", p.name)
		}
	}

	// The same topics into a single server, by one ingester of its own group.
	const single = "pl_single"
	startIngestProc(t, "ingester-single", "--brokers", brokers, "--group", "cl-single", "--topic", topic,
		"--stats-topic", stats, "--flows-topic", flows, "--database", single,
		"--clickhouse", env.ClickHouse.TCPAddr(), "--clickhouse-http", env.ClickHouse.HTTPAddr(), "--flush-age", "300ms")
	sl := chHTTP(t, env.ClickHouse.HTTPAddr(), single)
	if n := waitStable(ctx, acked, func() uint64 { return uintOr(ctx, sl, "SELECT count() FROM packets") }); n != acked {
		t.Fatalf("single server: %d rows, want %d", n, acked)
	}
	if n := waitStable(ctx, flowPackets, func() uint64 { return uintOr(ctx, sl, "SELECT sum(packets) FROM flows") }); n != flowPackets {
		t.Errorf("single server: flows count %d packets, the cluster %d (the kernels saw %d)", n, flowPackets, acked)
	}
	nStats := uintOr(ctx, cl, "SELECT count() FROM collector_stats")
	if n := waitStable(ctx, nStats, func() uint64 { return uintOr(ctx, sl, "SELECT count() FROM collector_stats") }); n != nStats {
		t.Fatalf("single server: %d stats rows, the cluster %d", n, nStats)
	}

	compareEverything(t, ctx, db, single, testStart.Add(-time.Minute), time.Now().Add(time.Minute))
	for what, d := range stalls {
		t.Logf("stall: %-28s %v", what, d.Round(10*time.Millisecond))
	}
	if n := cc.Crashes(); n > 0 {
		// Not packetlake's: a libchdb server whose Distributed INSERT lost its remote shard
		// has been seen to abort (SIGABRT); the launcher restarts it as systemd would, and
		// exactly once held regardless. Said in the log, not hidden.
		t.Logf("clickhouse servers that exited by themselves and were restarted by the launcher: %d (see the shards' clickhouse.log)", n)
	}
	t.Logf("whole test %v", time.Since(testStart).Round(time.Second))
}

// settled reads now() until it answers.
func settled(ctx context.Context, now func() map[int32]int64) map[int32]int64 {
	for ctx.Err() == nil {
		if m := now(); m != nil {
			return m
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

func onlyKeys(m, keys map[int32]int64) map[int32]int64 {
	out := map[int32]int64{}
	for k := range keys {
		out[k] = m[k]
	}
	return out
}

// waitStable waits until now() reaches want and then stays the same for 3 s, and returns it:
// exactly once is judged only once nothing more arrives.
func waitStable(ctx context.Context, want uint64, now func() uint64) uint64 {
	deadline := time.Now().Add(3 * time.Minute)
	var n uint64
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if n = now(); n != ^uint64(0) && n >= want {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for i := 0; i < 15 && ctx.Err() == nil; i++ {
		time.Sleep(200 * time.Millisecond)
		if m := now(); m != n {
			n, i = m, 0
		}
	}
	return n
}

// compareEverything runs every report, every rollup, every dashboard query and every detector query on the
// cluster (database db through shard 1) and on the single server (database single) and wants
// the same answers, as sorted rows with floats rounded to 9 significant digits (sums over
// shards add in another order).
func compareEverything(t *testing.T, ctx context.Context, db, single string, from, until time.Time) {
	t.Helper()
	clusterCfg := chconn.Config{HTTPAddr: env.CHCluster.HTTPAddrs()[0], Database: db}
	singleCfg := chconn.Config{HTTPAddr: env.ClickHouse.HTTPAddr(), Database: single}
	compared, nonEmpty := 0, 0
	same := func(what string, run func(chconn.Config) ([]string, error)) {
		a, errA := run(clusterCfg)
		b, errB := run(singleCfg)
		if errA != nil || errB != nil {
			t.Errorf("%s: cluster error %v, single error %v", what, errA, errB)
			return
		}
		if !slices.Equal(a, b) {
			i := 0
			for i < min(len(a), len(b)) && a[i] == b[i] {
				i++
			}
			t.Errorf("%s differs: cluster %d rows, single %d rows; first difference at sorted row %d:\ncluster: %.400s\nsingle:  %.400s",
				what, len(a), len(b), i, strings.Join(a[i:min(i+1, len(a))], ""), strings.Join(b[i:min(i+1, len(b))], ""))
		}
		compared++
		if len(a) > 0 {
			nonEmpty++
		}
	}
	p := query.Params{Since: from, Until: until, Limit: 1_000_000}
	for _, rep := range query.Reports() {
		same("report "+rep.Name, func(cfg chconn.Config) ([]string, error) {
			var out bytes.Buffer
			err := query.RunSQL(ctx, query.Config{ClickHouse: cfg}, rep.SQL, p, "TabSeparated", &out)
			return normalize(out.String()), err
		})
	}
	_, queries := analytics.LoadDashboards(t, "")
	for _, q := range queries {
		sql, err := analytics.ExpandGrafana(q.SQL, from, until, 30, analytics.GrafanaVars{})
		if err != nil {
			t.Errorf("%s %s: %v", q.Dashboard, q.Where, err)
			continue
		}
		same(q.Dashboard+" "+q.Where, func(cfg chconn.Config) ([]string, error) {
			c, err := analytics.NewCH(cfg)
			if err != nil {
				return nil, err
			}
			rows, err := c.Query(ctx, sql)
			return normalize(strings.Join(rows, "\n")), err
		})
	}
	// Every rollup, read through the Distributed tables (each shard's views rolled up its own
	// packets) and on the single server: the same rows, tunnel keys (0600) included, and
	// flows_1m's VLAN and IP version (0903: traffic_1m is rolled up from them).
	for _, tier := range []struct{ suffix, bucket string }{{"_1m", "minute"}, {"_1h", "hour"}} {
		qs := []string{
			"SELECT %s, host, iface, src_addr, dst_addr, ip_proto, src_port, dst_port, tunnel_type, tunnel_id, sum(packets), sum(bytes), sum(syn), sum(ack), sum(fin), sum(rst), min(first_seen), max(last_seen) FROM flows%s GROUP BY ALL ORDER BY ALL",
			"SELECT %s, host, iface, vlan_id, ip_version, ip_proto, dst_port, tunnel_type, tunnel_id, sum(packets), sum(bytes) FROM traffic%s GROUP BY ALL ORDER BY ALL",
			"SELECT %s, host, iface, src_addr, sum(packets), sum(bytes), uniqMerge(dst_ports), uniqMerge(dst_addrs) FROM talkers%s GROUP BY ALL ORDER BY ALL",
			"SELECT %s, host, iface, qname, qtype, sum(queries), sum(responses), sum(nxdomain) FROM dns_names%s GROUP BY ALL ORDER BY ALL",
			"SELECT %s, host, iface, sni, sum(client_hellos), uniqMerge(clients) FROM tls_sni%s GROUP BY ALL ORDER BY ALL",
			"SELECT %s, host, iface, http_host, method, sum(requests), uniqMerge(clients) FROM http_hosts%s GROUP BY ALL ORDER BY ALL",
		}
		if tier.suffix == "_1m" {
			qs = append(qs, "SELECT %s, host, iface, src_addr, dst_addr, ip_proto, src_port, dst_port, tunnel_type, tunnel_id, vlan_id, ip_version, sum(packets), sum(bytes) FROM flows%s GROUP BY ALL ORDER BY ALL")
		}
		for _, q := range qs {
			sql := fmt.Sprintf(q, tier.bucket, tier.suffix)
			same("rollup "+sql[strings.Index(sql, " FROM ")+6:strings.Index(sql, " GROUP")], func(cfg chconn.Config) ([]string, error) {
				c, err := analytics.NewCH(cfg)
				if err != nil {
					return nil, err
				}
				rows, err := c.Query(ctx, sql)
				return normalize(strings.Join(rows, "\n")), err
			})
		}
	}
	sensitive := detector.DefaultThresholds()
	sensitive.SYNFloodMinRate, sensitive.PortScanMinPorts, sensitive.HostSweepMinHosts = 1, 2, 2
	sensitive.ICMPFloodMinRate, sensitive.UDPFloodMinRate, sensitive.DNSTunnelMinNames, sensitive.VolumeMinRate = 0.1, 0.1, 1, 0.1
	for name, th := range map[string]detector.Thresholds{"default": detector.DefaultThresholds(), "sensitive": sensitive} {
		params := th.Params()
		params["since"] = from.UTC().Format("2006-01-02 15:04:05.000000000")
		params["until"] = until.UTC().Format("2006-01-02 15:04:05.000000000")
		params["window_seconds"] = strconv.Itoa(int(until.Sub(from).Seconds()))
		for _, kind := range detector.Kinds {
			sql, err := detector.SQL(kind)
			if err != nil {
				t.Fatal(err)
			}
			same("detector "+kind+" ("+name+" thresholds)", func(cfg chconn.Config) ([]string, error) {
				client, err := cfg.Client(chconn.Timeout(time.Minute))
				if err != nil {
					return nil, err
				}
				defer client.Close()
				body, err := client.Query(ctx, sql, params, map[string]string{"default_format": "TabSeparatedWithNames", "session_timezone": "UTC"})
				if err != nil {
					return nil, err
				}
				defer body.Close()
				b, err := io.ReadAll(body)
				return normalize(withoutTopK(string(b))), err
			})
		}
	}
	t.Logf("%d queries (reports, dashboards, detectors) answer the same on the cluster and on one server; %d of them with rows", compared, nonEmpty)
	if nonEmpty < compared/2 {
		t.Errorf("only %d of %d compared queries returned rows: the comparison proves little", nonEmpty, compared)
	}
}

// withoutTopK drops the header line and the evidence columns named top_*: topK is approximate
// and breaks ties by order of arrival, which differs between one server and the shards (it
// differs between two runs on one server as well). What the detector decides — subject,
// score, window, counts — is compared whole.
func withoutTopK(tsv string) string {
	lines := strings.Split(strings.TrimSuffix(tsv, "\n"), "\n")
	if len(lines) == 0 || lines[0] == "" {
		return ""
	}
	names := strings.Split(lines[0], "\t")
	var out []string
	for _, l := range lines[1:] {
		var keep []string
		for i, v := range strings.Split(l, "\t") {
			if i >= len(names) || !strings.HasPrefix(names[i], "top_") {
				keep = append(keep, v)
			}
		}
		out = append(out, strings.Join(keep, "\t"))
	}
	return strings.Join(out, "\n")
}

var float = regexp.MustCompile(`-?\d+\.\d+(e[-+]?\d+)?`)

// normalize sorts the rows and rounds every decimal number to 9 significant digits.
func normalize(out string) []string {
	out = strings.TrimSuffix(out, "\n")
	if out == "" {
		return nil
	}
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		lines[i] = float.ReplaceAllStringFunc(l, func(s string) string {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return s
			}
			return strconv.FormatFloat(f, 'g', 9, 64)
		})
	}
	slices.Sort(lines)
	return lines
}
