package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/packetlake/packetlake/collector"
	"github.com/packetlake/packetlake/internal/testkit/nettest"
)

// TestLiveTunnels: two tunnels between two test namespaces over a veth pair, each carrying curl
// (HTTP), dig (DNS) and openssl s_client (a TLS ClientHello with a server name), with the
// collector's XDP program on the observed end of the underlay veth and tshark capturing there:
//   - VXLAN: the kernel's vxlan device (VNI 42, UDP 4789);
//   - Geneve: a user-space Geneve endpoint over TAP (nettest.Geneve: VNI 5005, UDP 6081, one
//     option, Ethernet inside), because this VM's kernel has no geneve driver (CONFIG_GENEVE is
//     not set: "ip link add ... type geneve" fails). Its datagrams are real Geneve sent by the
//     kernel's UDP stack; only the wrapping and unwrapping run in this process.
//
// Replayed into the underlay as well: tcpdump-geneve.pcap (real-world Geneve with options, 39
// frames) and the hand-built frames of every tunnel kind (tunnel_test.go). Every record of the
// topic must equal tshark's dissection of a frame of the capture -- the inner packet's columns
// and tunnel_* (type, VNI, outer addresses, outer TTL) -- the clients' names (HTTP Host, DNS
// name, TLS SNI) must come out of each tunnel, and every frame the peer's Geneve endpoint sent
// must be a record with its VNI.
func TestLiveTunnels(t *testing.T) {
	for _, tool := range []string{"tshark", "dnsmasq", "dig", "curl", "openssl", "ethtool"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found in PATH: this test needs it (make test installs it)", tool)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	v := nettest.NewVethPair(t)
	nettest.MustExec(t, v.NS, "ethtool", "-K", v.Name, "gro", "off")

	// The overlays: the observed end is .1, the peer .2, in each. VXLAN is the kernel's device.
	type overlay struct {
		dev, kind string
		args      []string
		obs, peer string
	}
	overlays := []overlay{
		{"vx42", "vxlan", []string{"id", "42", "dstport", "4789"}, "10.42.0.1", "10.42.0.2"},
	}
	for _, o := range overlays {
		for _, side := range []struct{ ns, local, remote, addr string }{
			{v.NS, v.Addr.String(), v.PeerAddr.String(), o.obs},
			{v.PeerNS, v.PeerAddr.String(), v.Addr.String(), o.peer},
		} {
			args := append([]string{"link", "add", o.dev, "type", o.kind}, o.args...)
			args = append(args, "remote", side.remote)
			if o.kind == "vxlan" {
				args = append(args, "local", side.local, "dev", map[string]string{v.NS: v.Name, v.PeerNS: v.PeerName}[side.ns])
			}
			nettest.MustExec(t, side.ns, "ip", args...)
			nettest.MustExec(t, side.ns, "ip", "addr", "add", side.addr+"/24", "dev", o.dev)
			nettest.MustExec(t, side.ns, "ip", "link", "set", o.dev, "up")
		}
	}
	// Geneve: a user-space endpoint over TAP at each end, as the kernel has no geneve driver.
	// MTU 1400: the inner frame (14) + Geneve with its option (16) + UDP + IPv4 fit the veth's 1500.
	const geneveVNI = 5005 // tcpdump-geneve.pcap has VNIs 10 and 11, the hand-built frames 5000 and 5001
	var genevePeer *nettest.Geneve
	for _, side := range []struct {
		ns            string
		local, remote netip.Addr
		addr          string
	}{{v.NS, v.Addr, v.PeerAddr, "10.43.0.1"}, {v.PeerNS, v.PeerAddr, v.Addr, "10.43.0.2"}} {
		g := &nettest.Geneve{NS: side.ns, Dev: "gnv0", Local: side.local, Remote: side.remote, VNI: geneveVNI, MTU: 1400}
		if err := g.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := g.Close(); err != nil {
				t.Errorf("Geneve endpoint in %s: %v", side.ns, err)
			}
		})
		nettest.MustExec(t, side.ns, "ip", "addr", "add", side.addr+"/24", "dev", g.Dev)
		genevePeer = g
	}
	tunnels := []struct{ kind, obs string }{{"vxlan", "10.42.0.1"}, {"geneve", "10.43.0.1"}}

	// Servers in the observed namespace, on the overlay addresses.
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "packetlake\n")
	})}
	for _, o := range tunnels {
		var ln net.Listener
		if err := v.Do(func() (err error) {
			ln, err = net.Listen("tcp", o.obs+":80")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
	}
	t.Cleanup(func() { srv.Close() })
	startDaemon(t, v.NS, "dnsmasq", "started, version", "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
		"--no-resolv", "--no-hosts", "--bind-interfaces", "--listen-address=10.42.0.1", "--listen-address=10.43.0.1",
		"--address=/pl-tun.test/198.18.0.42", "--log-facility=-", "--pid-file="+filepath.Join(dir, "dnsmasq.pid"), "--user=root")
	certFile, keyFile := selfSignedCert(t, dir)
	startDaemon(t, v.NS, "s_server", "ACCEPT", "openssl", "s_server", "-accept", "443", "-cert", certFile, "-key", keyFile, "-www")

	pcap := filepath.Join(dir, "underlay.pcapng")
	stopCapture := startDaemon(t, v.NS, "tshark", "Capturing on", "tshark", "-n", "-i", v.Name, "-w", pcap)
	topic := env.Topic(t, 1)
	cfg := collector.DefaultConfig()
	cfg.Iface, cfg.NetNS, cfg.Hook = v.Name, v.NS, "xdp"
	cfg.Kafka.Brokers = []string{env.Kafka.Addr()}
	cfg.Topic, cfg.StatsTopic, cfg.FlowsTopic = topic, env.Topic(t, 1), env.Topic(t, 1)
	cfg.Host = "live-tunnels"
	cfg.FrameMaxAge = 50 * time.Millisecond
	cfg.StatsInterval = time.Minute
	c := startCollector(t, ctx, cfg)
	geneveBefore := genevePeer.Sent()

	// The clients, in the peer namespace, through each overlay.
	for _, o := range tunnels {
		host := o.kind + ".pl-tun.test"
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		out, err := nettest.Exec(cctx, v.PeerNS, "curl", "-sS", "--noproxy", "*", "-m", "5", "-o", "/dev/null",
			"-w", "%{http_code}", "-H", "Host: "+host, "http://"+o.obs+"/"+o.kind+"/path")
		ccancel()
		if err != nil || string(out) != "200" {
			t.Errorf("curl through %s: %q %v", o.kind, out, err)
		}
		cctx, ccancel = context.WithTimeout(ctx, 10*time.Second)
		out, err = nettest.Exec(cctx, v.PeerNS, "dig", "@"+o.obs, "+tries=1", "+time=3", "q."+host, "A")
		ccancel()
		if err != nil || !strings.Contains(string(out), "status: NOERROR") {
			t.Errorf("dig through %s: %v\n%s", o.kind, err, out)
		}
		// stdin is /dev/null: s_client ends after the handshake
		cctx, ccancel = context.WithTimeout(ctx, 10*time.Second)
		out, err = nettest.Exec(cctx, v.PeerNS, "openssl", "s_client", "-brief", "-connect", o.obs+":443", "-servername", "tls."+host)
		ccancel()
		if err != nil || !strings.Contains(string(out), "Protocol version") {
			t.Errorf("openssl s_client through %s: %v\n%s", o.kind, err, out)
		}
	}
	// Recorded Geneve (tcpdump-geneve.pcap) and the hand-built kinds, replayed into the underlay.
	built, _ := tunnelFrames(t)
	for _, path := range []string{filepath.Join(sharedPcaps, "ja4/tcpdump-geneve.pcap"), writeTunnelPcap(t, built)} {
		if st := nettest.Replay(t, v.PeerNS, v.PeerName, path, 1000); st.Failed != 0 {
			t.Errorf("tcpreplay %s: %+v", path, st)
		}
	}
	time.Sleep(300 * time.Millisecond)
	// Closing the peer's endpoint waits for its sender: no Geneve frame can leave after the count.
	if err := genevePeer.Close(); err != nil {
		t.Errorf("peer's Geneve endpoint: %v", err)
	}
	geneveLive := genevePeer.Sent() - geneveBefore
	if err := c.Stop(); err != nil {
		t.Fatalf("collector Stop: %v", err)
	}
	st := c.Stats()
	stopCapture()
	recs := consumeAll(ctx, t, topic, int(st.RecordsAcked))

	// tshark's ingress frames; each record must equal one of them (the capture starts before the
	// program is attached, so tshark may have more).
	all := oracleDissect(t, pcap)
	type key struct{ src, dst, n string }
	queue := map[key][]int{}
	expects := make([]oracleExpectation, len(all))
	for i, d := range all {
		if d.first("eth.src") == v.MAC.String() {
			continue // egress: the program runs on ingress only
		}
		expects[i] = oracleExpect(t, fmt.Sprintf("tshark frame %d", d.num), d, 0)
		// the MACs the record has: the inner frame's, for a tunnelled Ethernet frame
		k := key{fmt.Sprint(expects[i].want["src_mac"]), fmt.Sprint(expects[i].want["dst_mac"]), d.first("frame.len")}
		queue[k] = append(queue[k], i)
	}
	identity := []string{"tunnel_type", "tunnel_id", "src_addr", "dst_addr", "ip_proto", "src_port", "dst_port", "ip_id",
		"tcp_seq", "tcp_ack", "tcp_flags", "icmp_type", "eth_type"}
	tl := oracleTally{}
	byType := map[string]int{}
	geneveRecs := 0 // of the live Geneve tunnel's VNI
	names := map[string]bool{}
	for i := range recs {
		p := &recs[i]
		k := key{oracleMAC(p.SrcMAC), oracleMAC(p.DstMAC), fmt.Sprint(p.PktLen)}
		q := queue[k]
		pick := -1
		for qi, j := range q {
			same := true
			for _, c := range identity {
				same = same && (expects[j].unknown[c] || oracleColumnValue(p, c) == expects[j].want[c])
			}
			if same {
				pick = qi
				break
			}
		}
		if pick < 0 && len(q) > 0 {
			pick = 0 // the first of the same MACs and length: oracleCheck names the differences
		}
		if pick < 0 {
			t.Errorf("record %d (%s, %s -> %s, %d bytes) has no tshark frame of its MACs and length", p.Seq, p.TunnelType, p.Src(), p.Dst(), p.PktLen)
			continue
		}
		j := q[pick]
		queue[k] = append(q[:pick:pick], q[pick+1:]...)
		oracleCheck(t, fmt.Sprintf("record %d / tshark frame %d", p.Seq, all[j].num), p, expects[j], "", tl)
		byType[p.TunnelType]++
		if p.TunnelType == "geneve" && p.TunnelID == geneveVNI {
			geneveRecs++
		}
		for _, s := range []string{p.HTTPHost, p.DNSQName, p.TLSSNI} {
			if s != "" {
				names[p.TunnelType+":"+s] = true
			}
		}
	}
	// Every frame the peer's endpoint wrapped reached the observed end's XDP program as a record.
	if geneveLive < 8 || uint64(geneveRecs) != geneveLive {
		t.Errorf("%d records of VNI %d, the peer's Geneve endpoint sent %d frames during the clients: want them equal (and at least 8)", geneveRecs, geneveVNI, geneveLive)
	}
	if byType["geneve"] < 39+2+geneveRecs || byType["vxlan"] < 8 {
		t.Errorf("records by tunnel type %v: want the 41 Geneve frames replayed, the Geneve endpoint's and the VXLAN device's traffic", byType)
	}
	t.Logf("%d records (kernel seen %d), each equal to a tshark frame; by tunnel type %v (geneve VNI %d: %d, live); names %v; matches by column: %v",
		len(recs), st.KernelSeen, byType, geneveVNI, geneveRecs, names, tl)
	for _, want := range []string{"vxlan:vxlan.pl-tun.test", "vxlan:q.vxlan.pl-tun.test", "vxlan:tls.vxlan.pl-tun.test",
		"geneve:geneve.pl-tun.test", "geneve:q.geneve.pl-tun.test", "geneve:tls.geneve.pl-tun.test"} {
		if !names[want] {
			t.Errorf("no record of %s", want)
		}
	}
	for _, m := range []struct {
		col  string
		want int
	}{{"tunnel_type", 64}, {"tunnel_id", 58}, {"tunnel_src", 62}, {"src_port", 55}, {"tcp_seq", 40}} {
		if tl[m.col] < m.want {
			t.Errorf("only %d %s values matched tshark, want at least %d", tl[m.col], m.col, m.want)
		}
	}
}
