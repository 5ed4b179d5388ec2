package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/packetlake/packetlake/collector"
	"github.com/packetlake/packetlake/detector"
	"github.com/packetlake/packetlake/internal/chconn"
	"github.com/packetlake/packetlake/internal/testkit/nettest"
	"github.com/packetlake/packetlake/query"
	"github.com/packetlake/packetlake/schema"
	"github.com/packetlake/packetlake/test/analytics"
)

// Addresses of the far namespace behind the router (the test's own /24).
const (
	farAddr    = "198.19.0.1"
	farRouter  = "198.19.0.2"
	nearRouter = "198.18.0.2" // the peer end of nettest's pair, the router's side toward the observed end
)

// The TCP health reports on live traffic against tshark. Three namespaces: the observed end
// (XDP, the collector, tcpdump -Q in: the recorded direction only), a router (the peer of
// nettest's pair) and a far end with the servers. The router is the lossy network: its
// nftables forward chain drops 5% of the download server's segments toward the observed end
// and 5% of the observed end's upload segments (whose receiver then sends duplicate ACKs), and
// holds back 10% of the download segments in a slower HTB class, so they arrive out of order.
//
// This kernel has no netem (CONFIG_NET_SCH_NETEM is not set: `tc qdisc add ... netem` answers
// "Error: Specified qdisc kind is unknown."), so loss is nftables' `numgen random` and
// reordering is HTB's: real kernel drops and real reordering on the path, seen by neither end's
// stack. Traffic: three curl downloads of 2 MB (retransmissions, out-of-order segments), two
// uploads of 1 MB (duplicate ACKs), a writer to a server that never reads (zero windows), a
// server that answers and resets (RSTs after data), and five curl requests from the far end to
// the observed end's web server (handshake RTTs of incoming connections).
//
// The oracle is tshark's analysis of the receiver's tcpdump capture of incoming packets; every
// flow direction's counts must equal the report's exactly. Handshake RTTs may differ by the
// time between the XDP hook and tcpdump's timestamp of the same packets (rttSlack).
func TestLiveTCPHealth(t *testing.T) {
	for _, tool := range []string{"tshark", "tcpdump", "curl", "nft", "tc", "ethtool"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found in PATH: this test needs it (make test installs it)", tool)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	v := nettest.NewVethPair(t, nettest.WithIPv6()) // startHTTPServer listens on both families
	far := lossyPath(t, v)

	// Servers, far end.
	release := make(chan struct{}) // the never-reading server closes its connections on it
	var releaseOnce sync.Once
	defer releaseOnce.Do(func() { close(release) })
	big := strings.Repeat("packetlake", 200_000)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, big) // curl downloads it
	})}
	go srv.Serve(listenFar(t, far, 8080, 0))
	t.Cleanup(func() { srv.Close() })
	serveFar(t, far, 8081, func(c net.Conn) { <-release; c.Close() }, 0)
	// A fixed receive buffer keeps the window steady, so its repeated ACKs are duplicates in
	// tshark's sense (same window); autotuning would change the window with every ACK.
	serveFar(t, far, 8082, func(c net.Conn) { io.Copy(io.Discard, c); c.Close() }, 256<<10)
	serveFar(t, far, 8083, func(c net.Conn) {
		c.Read(make([]byte, 100))
		c.Write([]byte(strings.Repeat("r", 3000)))
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}, 0)
	startHTTPServer(t, v) // observed end, port 80

	// The oracle capture, then the collector.
	pcap := filepath.Join(dir, "incoming.pcap")
	stopCapture := startDaemon(t, v.NS, "tcpdump", "listening on", "tcpdump", "-n", "-B", "131072", "-Q", "in", "-i", v.Name, "-w", pcap, "tcp")
	cfg := collector.DefaultConfig()
	cfg.Iface, cfg.NetNS, cfg.Hook = v.Name, v.NS, "xdp"
	cfg.Kafka.Brokers = []string{env.Kafka.Addr()}
	topic := env.Topic(t, 1)
	cfg.Topic, cfg.StatsTopic, cfg.FlowsTopic = topic, env.Topic(t, 1), env.Topic(t, 1)
	cfg.Host = "tcp-health-live"
	cfg.RingBytes = 16 << 20
	cfg.FrameMaxAge = 50 * time.Millisecond
	cfg.StatsInterval = time.Minute
	c := startCollector(t, ctx, cfg)

	// The traffic.
	var wg sync.WaitGroup
	fail := make(chan error, 16)
	for range 3 {
		wg.Go(func() {
			if out, err := nettest.Exec(ctx, v.NS, "curl", "-sS", "-o", "/dev/null", "--max-time", "60", fmt.Sprintf("http://%s:8080/big", farAddr)); err != nil {
				fail <- fmt.Errorf("download: %v: %s", err, out)
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			fail <- dialFromObserved(v, 8082, func(c net.Conn) error { _, err := c.Write([]byte(big[:1_000_000])); return err })
		})
	}
	wg.Go(func() {
		fail <- dialFromObserved(v, 8081, func(c net.Conn) error {
			// Write until the far end's window has been closed for a while: the write blocks.
			c.SetWriteDeadline(time.Now().Add(2 * time.Second))
			for {
				if _, err := c.Write([]byte(big[:65536])); err != nil {
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						return nil
					}
					return err
				}
			}
		})
	})
	for range 2 {
		wg.Go(func() {
			fail <- dialFromObserved(v, 8083, func(c net.Conn) error {
				c.Write([]byte("hi"))
				io.Copy(io.Discard, c) // ends with the reset
				return nil
			})
		})
	}
	wg.Go(func() {
		for range 5 {
			if out, err := nettest.Exec(ctx, far, "curl", "-sS", "-o", "/dev/null", "--max-time", "10", fmt.Sprintf("http://%s/", v.Addr)); err != nil {
				fail <- fmt.Errorf("request to the observed end: %v: %s", err, out)
			}
		}
	})
	wg.Wait()
	releaseOnce.Do(func() { close(release) })
	close(fail)
	for err := range fail {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Both capture points must have seen the same packets: wait until the observed end's
	// interface has received nothing new for a second (last FINs, ACKs and resets), then stop.
	waitQuiet(t, ctx, v.NS, v.Name)
	if err := c.Stop(); err != nil {
		t.Fatalf("collector Stop: %v", err)
	}
	st := c.Stats()
	stopCapture()

	recs := consumeAll(ctx, t, topic, int(st.RecordsAcked))
	db := env.Database(t)
	if err := schema.Migrate(ctx, env.CH(t), db); err != nil {
		t.Fatal(err)
	}
	ch, err := analytics.NewCH(env.CHConfig(db))
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.InsertPackets(ctx, recs, ""); err != nil {
		t.Fatal(err)
	}
	since, until := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	got := reportHealth(t, ctx, db, since, until)[cfg.Host]
	want := tsharkHealth(t, ctx, pcap, nil)
	border := borderlineLate(t, ctx, db, cfg.Host, since, until)
	for k := range border {
		if want[k] == nil {
			t.Errorf("borderline late segments of %s, a flow direction tshark has no frame of", k)
		}
	}
	tot := compareHealth(t, "live", want, got, rttSlack, border)
	t.Logf("late segments within %v of the out-of-order threshold (either class allowed): %d", borderSlack, sum(border))
	t.Logf("%d records, %d flow directions; tshark's totals: %s (rtt_us = handshakes)", len(recs), len(want), tot.counts())
	if tot.Retrans == 0 || tot.OutOfOrder == 0 || tot.DupAcks == 0 || tot.ZeroWindows == 0 || tot.ResetsAfterData == 0 || tot.RTTMicros < 5 {
		t.Errorf("the lossy path did not produce every kind (%s): the comparison proves too little", tot.counts())
	}

	// The tcp_health detector, its SQL with the default thresholds over a 10-second window from
	// the first record, as a cycle of `packetlake detect` binds them, must fire for exactly the
	// services whose tshark counts cross them (the traffic lasts a few seconds, so all of it is
	// in the window). Which ones depends on the random drops (an upload sink's small buffer
	// full of out-of-order data advertises zero windows too); the lossy download service always.
	first := recs[0].TS
	for _, r := range recs {
		first = min(first, r.TS)
	}
	const window = 10 * time.Second
	th := detector.DefaultThresholds()
	perService := map[string]*health{}
	borderSvc := map[string]int{} // late segments at the threshold, per service (compareHealth)
	for k, h := range want {
		svc := netip.AddrPortFrom(k.Src, k.SrcPort).String() // the far end's servers
		if k.Dst == v.Addr && k.DstPort == 80 {
			svc = netip.AddrPortFrom(k.Dst, k.DstPort).String() // the observed end's
		}
		if perService[svc] == nil {
			perService[svc] = &health{}
		}
		borderSvc[svc] += border[k]
		perService[svc].Retrans += h.Retrans
		perService[svc].OutOfOrder += h.OutOfOrder
		perService[svc].DupAcks += h.DupAcks
		perService[svc].ResetsAfterData += h.ResetsAfterData
		perService[svc].DataSegments += h.DataSegments
		perService[svc].LateData += h.LateData
		perService[svc].ZeroWindows += h.ZeroWindows
		if h.MaxWindow > 0 { // the detector's rule: a window that was open, then closed
			perService[svc].ClosedWindows += h.ZeroWindows
		}
	}
	// The per-service report sums the same flow directions: the far end's servers are 'from'
	// (the recorded direction carried their SYN-ACK), the observed end's web server 'to'.
	gotSvc := reportServices(t, ctx, db, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	for svc, w := range perService {
		dir := "from"
		if svc == netip.AddrPortFrom(v.Addr, 80).String() {
			dir = "to"
		}
		g := gotSvc[svc+" "+dir]
		if g == nil || g.Retrans+g.OutOfOrder != w.Retrans+w.OutOfOrder || abs64(int64(g.Retrans-w.Retrans)) > int64(borderSvc[svc]) || g.DupAcks != w.DupAcks ||
			g.ZeroWindows != w.ZeroWindows || g.ResetsAfterData != w.ResetsAfterData {
			t.Errorf("tcp_health %s %s: %v, want tshark's sums %s", svc, dir, g, w.counts())
		}
	}
	if len(gotSvc) != len(perService) {
		t.Errorf("tcp_health: %d service rows, want %d", len(gotSvc), len(perService))
	}
	wantFired := map[string]string{}
	for svc, h := range perService {
		late := float64(h.LateData)/window.Seconds() >= th.TCPLateMinRate && h.DataSegments > 0 &&
			float64(h.LateData)/float64(h.DataSegments) >= th.TCPLateMinRatio
		zero := float64(h.ClosedWindows)/window.Seconds() >= th.TCPZeroWindowMinRate
		switch {
		case late && zero:
			wantFired[svc] = "late segments and zero windows"
		case late:
			wantFired[svc] = "late segments"
		case zero:
			wantFired[svc] = "zero windows"
		}
	}
	fired := detectTCPHealth(t, ctx, db, time.Unix(0, first), window)
	if !maps.Equal(fired, wantFired) || !strings.Contains(wantFired[farAddr+":8080"], "late segments") {
		t.Errorf("tcp_health detector fired %v; from tshark's counts %v (the download service %s:8080 for its late segments at least)", fired, wantFired, farAddr)
	}
}

// reportServices runs the tcp_health report over [since, until) of db: its rows by
// "service:port direction".
func reportServices(t *testing.T, ctx context.Context, db string, since, until time.Time) map[string]*health {
	t.Helper()
	rep, err := query.ReportByName("tcp_health")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*health{}
	err = tcpHealthRows(ctx, db, rep.SQL, since, until, map[string]string{"limit": "100000"}, func(r map[string]json.RawMessage) error {
		var svc, dir string
		var port uint16
		var h health
		if err := decodeRow(r, map[string]any{"service": &svc, "port": &port, "direction": &dir, "retransmissions": &h.Retrans,
			"out_of_order": &h.OutOfOrder, "duplicate_acks": &h.DupAcks, "zero_windows": &h.ZeroWindows,
			"resets_after_data": &h.ResetsAfterData}); err != nil {
			return err
		}
		a, err := netip.ParseAddr(svc)
		if err != nil {
			return err
		}
		out[netip.AddrPortFrom(a, port).String()+" "+dir] = &h
		return nil
	})
	if err != nil {
		t.Fatalf("tcp_health: %v", err)
	}
	return out
}

// detectTCPHealth runs the tcp_health detector's SQL over [from, from+window) of db and returns
// its subjects with their trouble.
func detectTCPHealth(t *testing.T, ctx context.Context, db string, from time.Time, window time.Duration) map[string]string {
	t.Helper()
	sql, err := detector.SQL(detector.TCPHealth)
	if err != nil {
		t.Fatal(err)
	}
	params := detector.DefaultThresholds().Params()
	params["since"] = from.UTC().Format("2006-01-02 15:04:05.000000000")
	params["until"] = from.Add(window).UTC().Format("2006-01-02 15:04:05.000000000")
	params["window_seconds"] = fmt.Sprint(window.Seconds())
	client, err := env.CHConfig(db).Client(chconn.Timeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	out := map[string]string{}
	err = client.Rows(ctx, sql, params, func(r map[string]json.RawMessage) error {
		var subject, trouble string
		if err := json.Unmarshal(r["subject"], &subject); err != nil {
			return err
		}
		if err := json.Unmarshal(r["trouble"], &trouble); err != nil {
			return err
		}
		out[subject] = trouble
		t.Logf("tcp_health anomaly: %s", mustJSON(r))
		return nil
	})
	if err != nil {
		t.Fatalf("tcp_health detector: %v", err)
	}
	return out
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// rttSlack bounds the difference, in microseconds, between a handshake RTT from XDP's
// timestamps and from tcpdump's: both are taken in the same NAPI poll of the veth, a few
// microseconds apart, more on a loaded machine.
const rttSlack = 200

// borderlineLate counts, per flow direction of host, the late segments whose distance from the
// last advance of the highest sequence lies within borderSlack of their out-of-order threshold
// (3 ms, or the handshake RTT once there was one: the segments block's out_of_order rule).
// The XDP hook and tcpdump stamp the same packet microseconds apart, and their handshake RTTs
// differ by up to rttSlack, so such a segment may be out-of-order by one clock and a
// retransmission by the other; nowhere else do the two clocks change a flag.
func borderlineLate(t *testing.T, ctx context.Context, db, host string, since, until time.Time) map[flowDir]int {
	t.Helper()
	rep, err := query.ReportByName("tcp_health_flows")
	if err != nil {
		t.Fatal(err)
	}
	end := strings.Index(rep.SQL, "\n,\n-- Per flow direction")
	if end < 0 {
		t.Fatal("tcp_health_flows: no segments block followed by the flow block")
	}
	sql := rep.SQL[:end] + `
SELECT toString(src_addr) AS src, src_port, toString(dst_addr) AS dst, dst_port,
    countIf(late AND abs(t - moved_t - if(hs_ack_n > 0 AND n >= hs_ack_n, handshake_rtt_ns, 3000000)) <= {slack:Int64}) AS borderline
FROM seg WHERE host = {host:String}
GROUP BY src_addr, dst_addr, src_port, dst_port`
	out := map[flowDir]int{}
	err = tcpHealthRows(ctx, db, sql, since, until, map[string]string{"host": host, "slack": fmt.Sprint(borderSlack.Nanoseconds())}, func(r map[string]json.RawMessage) error {
		var src, dst string
		var sp, dp uint16
		var n int
		if err := decodeRow(r, map[string]any{"src": &src, "dst": &dst, "src_port": &sp, "dst_port": &dp, "borderline": &n}); err != nil {
			return err
		}
		if n > 0 { // IPv4 is stored IPv4-mapped; tshark's addresses, the keys, are plain IPv4
			out[flowDir{netip.MustParseAddr(src).Unmap(), sp, netip.MustParseAddr(dst).Unmap(), dp}] = n
		}
		return nil
	})
	if err != nil {
		t.Fatalf("borderline late segments: %v", err)
	}
	return out
}

func sum(m map[flowDir]int) (n int) {
	for _, v := range m {
		n += v
	}
	return n
}

// borderSlack is how near its threshold a late segment's distance must be for the two clocks to
// class it differently: the handshake RTTs' slack plus as much again for the segment's own
// two stamps.
const borderSlack = 2 * rttSlack * time.Microsecond

// lossyPath adds a router and a far namespace behind v's peer end: the peer namespace routes
// between v (198.18.0.0/24) and the far end (198.19.0.0/24), dropping and reordering as
// TestLiveTCPHealth describes. It returns the far namespace's name.
func lossyPath(t *testing.T, v *nettest.Veth) string {
	t.Helper()
	far := v.NS + "-far" // pl-test-<pid>-<n>-far: removed with the others if the test dies
	root := func(args ...string) {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	root("ip", "netns", "add", far)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", far).CombinedOutput(); err != nil {
			t.Errorf("delete netns %s: %v: %s", far, err, out)
		}
	})
	root("ip", "link", "add", "plr", "netns", v.PeerNS, "type", "veth", "peer", "name", "plf", "netns", far)
	in := func(ns string, args ...string) { nettest.MustExec(t, ns, args[0], args[1:]...) }
	in(far, "ip", "link", "set", "lo", "up")
	in(far, "ip", "addr", "add", farAddr+"/24", "dev", "plf")
	in(far, "ip", "link", "set", "plf", "up")
	in(far, "ip", "route", "add", "default", "via", farRouter)
	in(v.PeerNS, "ip", "addr", "add", farRouter+"/24", "dev", "plr")
	in(v.PeerNS, "ip", "link", "set", "plr", "up")
	in(v.PeerNS, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	in(v.NS, "ip", "route", "add", "198.19.0.0/24", "via", nearRouter)
	// MTU-sized segments everywhere (no TSO/GSO super-packets), and no GRO at the observed end,
	// so XDP and tcpdump see the same segments one by one.
	for _, d := range [][2]string{{v.NS, v.Name}, {v.PeerNS, v.PeerName}, {v.PeerNS, "plr"}, {far, "plf"}} {
		in(d[0], "ethtool", "-K", d[1], "tso", "off", "gso", "off", "gro", "off")
	}
	// Toward the observed end: class 1:20 is slower, so what it holds arrives after later
	// segments; fast enough that it never queues for long (tshark calls a late segment
	// out-of-order only within 3 ms of the highest one, a retransmission after).
	in(v.PeerNS, "tc", "qdisc", "add", "dev", v.PeerName, "root", "handle", "1:", "htb", "default", "10", "r2q", "1000")
	in(v.PeerNS, "tc", "class", "add", "dev", v.PeerName, "parent", "1:", "classid", "1:10", "htb", "rate", "1gbit")
	in(v.PeerNS, "tc", "class", "add", "dev", v.PeerName, "parent", "1:", "classid", "1:20", "htb", "rate", "100mbit", "ceil", "100mbit")
	rules := "table inet tcphealth {\n chain path {\n  type filter hook forward priority 0;\n" +
		"  tcp sport 8080 numgen random mod 100 < 5 drop\n" +
		"  tcp dport 8082 numgen random mod 100 < 5 drop\n" +
		"  tcp sport 8080 numgen random mod 100 < 10 meta priority set 1:20\n }\n}\n"
	cmd := exec.Command("ip", "netns", "exec", v.PeerNS, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft in %s: %v\n%s", v.PeerNS, err, out)
	}
	return far
}

// serveFar accepts TCP connections on farAddr:port in the far namespace and hands each to fn.
func serveFar(t *testing.T, ns string, port int, fn func(net.Conn), rcvbuf int) {
	t.Helper()
	ln := listenFar(t, ns, port, rcvbuf)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go fn(c)
		}
	}()
}

// listenFar listens on farAddr:port in the far namespace, closed when the test ends. rcvbuf > 0
// fixes the socket's receive buffer (inherited by accepted sockets).
func listenFar(t *testing.T, ns string, port int, rcvbuf int) net.Listener {
	t.Helper()
	var ln net.Listener
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		if rcvbuf == 0 {
			return nil
		}
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf) })
		if err != nil {
			return err
		}
		return serr
	}}
	if err := nettest.Do(ns, func() (err error) {
		ln, err = lc.Listen(context.Background(), "tcp", fmt.Sprintf("%s:%d", farAddr, port))
		return err
	}); err != nil {
		t.Fatalf("listen on %s:%d in %s: %v", farAddr, port, ns, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dialFromObserved connects from the observed end to the far end's port and runs fn on it.
func dialFromObserved(v *nettest.Veth, port int, fn func(net.Conn) error) error {
	var c net.Conn
	if err := v.Do(func() (err error) {
		c, err = net.DialTimeout("tcp", fmt.Sprintf("%s:%d", farAddr, port), 10*time.Second)
		return err
	}); err != nil {
		return fmt.Errorf("dial port %d: %w", port, err)
	}
	defer c.Close()
	if err := fn(c); err != nil {
		return fmt.Errorf("port %d: %w", port, err)
	}
	return nil
}

// waitQuiet returns once dev in ns has received no packet for a second.
func waitQuiet(t *testing.T, ctx context.Context, ns, dev string) {
	t.Helper()
	last, since := nettest.ReadLinkStats(t, ns, dev).RxPackets, time.Now()
	for time.Since(since) < time.Second {
		select {
		case <-ctx.Done():
			t.Fatalf("%s never went quiet: %v", dev, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		if n := nettest.ReadLinkStats(t, ns, dev).RxPackets; n != last {
			last, since = n, time.Now()
		}
	}
}
