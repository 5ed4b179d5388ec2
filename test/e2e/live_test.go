package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/collector"
	"github.com/packetlake/packetlake/internal/testkit/nettest"
	"github.com/packetlake/packetlake/record"
)

// liveReplays are the shared captures tcpreplay sends into the observed end: DNS over UDP and
// TCP, HTTP in an 802.1Q tag, 802.1ad QinQ, ICMPv6, IPv6 routing headers, TLS ClientHellos,
// GRE, VXLAN, odd TCP flags, a 3 KB frame, the malformed ones, and QUIC client Initials (20 in
// tls-sni), whose ClientHello the decoder decrypts. (quic-tls-handshake is one of them again: a
// second copy of a connection tshark shows without its hello, as a retransmission.)
var liveReplays = []string{
	"tcpdump/dns_udp.pcap", "tcpdump/dns_tcp.pcap", "tcpdump/ipv4_tcp_http_xml.pcap",
	"tcpdump/802.1ad_QinQ.pcap", "tcpdump/icmpv6.pcap", "tcpdump/dnssec.pcap", "tcpdump/edns-opts.pcap",
	"tcpdump/ipv6-routing-header.pcap", "tcpdump/tcp_rst_data.pcap",
	"tcpdump/tcp_eight_lowest_weight_flags_set.pcap", "tcpdump/vxlan.pcap",
	"tcpdump/ipv4_invalid_hdr_length.pcap", "tcpdump/ipv4_invalid_total_length.pcap",
	"tcpdump/ipv6-bad-version.pcap", "tcpdump/ip6_frag_asan.pcap",
	"tcpdump/tcp_header_heapoverflow.pcap", "tcpdump/udp-length-heapoverflow.pcap",
	"ja4/tls12.pcap", "ja4/tls-sni.pcapng", "ja4/v6.pcap", "ja4/macos_tcp_flags.pcap",
	"ja4/gre-sample.pcap", "ja4/single-packets.pcap", "ja4/https-connect.pcap",
}

// Marker datagrams from the peer open and close the compared window (see TestLiveFidelity).
const (
	markerBeginPort = 40001
	markerEndPort   = 40002
)

// The fidelity test through the real pipeline: a veth pair in test-made namespaces, the collector
// attached in-process to the observed end (XDP, then tcx), a real Apache Kafka broker, and tshark
// capturing on the same interface as the oracle. Traffic: tcpreplay of shared captures, and real
// clients in the peer namespace against real servers in the observed one (curl against a Go
// net/http server, dig against dnsmasq, openssl s_client against s_server, ICMP echo with raw
// sockets, big enough to be fragmented); dig from the observed end against a dnsmasq in the peer
// brings real DNS responses in too. Every frame of the topic is decoded and matched, column by
// column, against tshark's dissection of its capture.
//
// Deliberate differences, documented where handled:
//   - tshark on the interface also sees what the observed end sends; the program runs on ingress
//     only. tshark's frames whose source MAC is the observed end's own are left out.
//   - tshark starts before the program is attached and stops after it is detached, and an IPv6
//     link may send an MLD report at any time: the compared window runs from a marker datagram
//     sent after both are ready to one sent when the traffic is done. Inside it, counts must be
//     equal; outside it, the kernel's records are only counted.
//   - tcx runs after the kernel moved an outer VLAN tag into skb metadata; the record restores it
//     (vlan_id, +4 in pkt_len) and libpcap re-inserts it for tshark, so both agree on the wire form.
//   - GRO is turned off on the observed end: with an XDP program attached the veth runs NAPI,
//     and GRO could merge TCP segments after XDP saw them one by one but before tshark sees them.
//   - The pair's MTU is 9000, so the 3 KB frame of dnssec.pcap and the 9 KB first fragments of
//     the big echo requests arrive (at 1500 the veth drops them before any program or tshark
//     sees them); above a page they reach XDP as multi-buffer (xdp.frags) and tc non-linear.
//   - Records and tshark frames are matched by MACs, length and flow identity, not strictly in
//     order: flows handled on different CPUs reach the ring and AF_PACKET in different orders.
func TestLiveFidelity(t *testing.T) {
	for _, tool := range []string{"tshark", "tcpreplay", "dnsmasq", "dig", "curl", "openssl", "ethtool"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found in PATH: this test needs it (make test installs it)", tool)
		}
	}
	for _, hook := range []string{"xdp", "tc"} {
		t.Run(hook, func(t *testing.T) { liveFidelity(t, hook) })
	}
}

func liveFidelity(t *testing.T, hook string) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	start := time.Now()
	dir := t.TempDir()
	v := nettest.NewVethPair(t, nettest.WithIPv6(), nettest.WithMTU(9000))
	nettest.MustExec(t, v.NS, "ethtool", "-K", v.Name, "gro", "off")

	// Servers first: none of them sends anything until asked.
	hosts := startHTTPServer(t, v)
	startDaemon(t, v.NS, "dnsmasq", "started, version", "dnsmasq", dnsmasqArgs(dir, "obs", v.Addr, v.Addr6)...)
	startDaemon(t, v.PeerNS, "dnsmasq-peer", "started, version", "dnsmasq", dnsmasqArgs(dir, "peer", v.PeerAddr, v.PeerAddr6)...)
	cert, key := selfSignedCert(t, dir)
	startDaemon(t, v.NS, "s_server", "ACCEPT", "openssl", "s_server", "-accept", "443", "-cert", cert, "-key", key, "-www")

	// The oracle capture, then the collector.
	pcap := filepath.Join(dir, "oracle.pcapng")
	stopCapture := startDaemon(t, v.NS, "tshark", "Capturing on", "tshark", "-n", "-i", v.Name, "-w", pcap)
	topic, statsTopic := env.Topic(t, 1), env.Topic(t, 1)
	cfg := collector.DefaultConfig()
	cfg.Iface, cfg.NetNS, cfg.Hook = v.Name, v.NS, hook
	cfg.Kafka.Brokers = []string{env.Kafka.Addr()}
	cfg.Topic, cfg.StatsTopic, cfg.FlowsTopic = topic, statsTopic, env.Topic(t, 1)
	cfg.Host = "live-" + hook
	cfg.RingBytes = 8 << 20
	cfg.FrameMaxAge = 50 * time.Millisecond
	cfg.StatsInterval = time.Minute
	c := startCollector(t, ctx, cfg)

	// The traffic, between the two markers.
	sendMarker(t, v, markerBeginPort)
	var replayed int
	for _, name := range liveReplays {
		st := nettest.Replay(t, v.PeerNS, v.PeerName, filepath.Join(sharedPcaps, name), 1000)
		if st.Failed != 0 {
			t.Errorf("tcpreplay %s: %+v", name, st)
		}
		replayed += st.Sent
	}
	driveClients(ctx, t, v, hosts)
	time.Sleep(300 * time.Millisecond) // let the last ACKs and FINs arrive inside the window
	sendMarker(t, v, markerEndPort)
	time.Sleep(300 * time.Millisecond)

	if err := c.Stop(); err != nil {
		t.Fatalf("collector Stop: %v", err)
	}
	st := c.Stats()
	stopCapture()

	// Every frame of the topic.
	recs := consumeAll(ctx, t, topic, int(st.RecordsAcked))
	var window []record.Packet
	inWindow, before, after := false, 0, 0
	var outside []string // what the kernel recorded outside the window, for the log
	for i, p := range recs {
		if p.Seq != uint64(i) || p.CollectorID != c.ID() || p.Host != cfg.Host || p.Iface != v.Name ||
			p.Ifindex != uint32(v.Index) || p.SampleRate != 1 {
			t.Errorf("record %d: seq %d collector %d host %q iface %q ifindex %d sample_rate %d; want %d %d %q %q %d 1",
				i, p.Seq, p.CollectorID, p.Host, p.Iface, p.Ifindex, p.SampleRate, i, c.ID(), cfg.Host, v.Name, v.Index)
		}
		if ts := time.Unix(0, p.TS); ts.Before(start.Add(-time.Second)) || ts.After(time.Now()) {
			t.Errorf("record %d: ts %v outside the test's run", i, ts)
		}
		isBegin, isEnd := isMarker(&p, v, markerBeginPort), isMarker(&p, v, markerEndPort)
		switch {
		case isBegin:
			inWindow = true
		case !inWindow && !isEnd:
			before++
			outside = append(outside, describe(&p))
		case !inWindow:
			after++
		}
		if inWindow {
			window = append(window, p)
		}
		if isEnd {
			inWindow = false
		}
	}
	if st.KernelSeen != uint64(len(recs)) || st.KernelEmitted != st.KernelSeen || st.KernelRingFull != 0 ||
		st.RecordsAcked != st.SamplesRead || st.RecordsShed != 0 || st.RecordsFailed != 0 {
		t.Errorf("kernel seen %d emitted %d ring_full %d; read %d acked %d shed %d failed %d; %d records in the topic",
			st.KernelSeen, st.KernelEmitted, st.KernelRingFull, st.SamplesRead, st.RecordsAcked, st.RecordsShed,
			st.RecordsFailed, len(recs))
	}

	// tshark's ingress frames inside the same window.
	frames, _, err := nettest.ReadPcap(pcap)
	if err != nil {
		t.Fatal(err)
	}
	all := oracleDissect(t, pcap)
	if len(all) != len(frames) {
		t.Fatalf("tshark dissected %d frames of %d", len(all), len(frames))
	}
	malformed := malformedFrames(t)
	var oracle []oracleFrame
	var raw [][]byte
	inWindow = false
	egress, tsharkOutside := 0, 0
	for _, d := range all {
		if d.first("eth.src") == v.MAC.String() {
			egress++
			continue
		}
		if isMarkerFrame(d, v, markerBeginPort) {
			inWindow = true
		}
		if !inWindow {
			tsharkOutside++
		}
		if inWindow {
			oracle = append(oracle, d)
			raw = append(raw, frames[d.num-1].Data)
		}
		if isMarkerFrame(d, v, markerEndPort) {
			inWindow = false
		}
	}
	t.Logf("%s: kernel seen %d = %d records in the topic (%d before the window %v, %d after), %d in the window; "+
		"tshark: %d frames, %d egress, %d ingress outside the window, %d in it; tcpreplay sent %d", hook,
		st.KernelSeen, len(recs), before, outside, after, len(window), len(all), egress, tsharkOutside, len(oracle), replayed)
	if len(window) < 2 || len(oracle) < 2 {
		t.Fatalf("markers not found: %d records and %d tshark frames in the window", len(window), len(oracle))
	}
	if len(window) != len(oracle) {
		t.Errorf("%d records but tshark saw %d ingress frames between the markers", len(window), len(oracle))
	}

	// Match each record with the first unmatched tshark frame of the same MACs and length whose
	// flow identity (addresses, ports, IP id, TCP sequence numbers and flags) also agrees, or, if
	// none does, the first of the same MACs and length (its differences are then reported). The
	// kernel and AF_PACKET see packets of flows handled on different CPUs in slightly different
	// orders.
	type matchKey struct{ src, dst, n string }
	identity := []string{"src_addr", "dst_addr", "ip_proto", "src_port", "dst_port", "ip_id", "tcp_seq",
		"tcp_ack", "tcp_flags", "icmp_type"}
	expects := make([]oracleExpectation, len(oracle))
	queue := map[matchKey][]int{}
	for i, d := range oracle {
		bad := malformed[string(raw[i])]
		expects[i] = oracleExpect(t, fmt.Sprintf("%s: tshark frame %d", hook, d.num), d, bad.stop)
		// the MACs the record has: the inner frame's for a tunnelled Ethernet frame (vxlan.pcap)
		k := matchKey{fmt.Sprint(expects[i].want["src_mac"]), fmt.Sprint(expects[i].want["dst_mac"]), d.first("frame.len")}
		queue[k] = append(queue[k], i)
	}
	tl := oracleTally{}
	reordered, unmatched := 0, 0
	for i := range window {
		p := &window[i]
		k := matchKey{oracleMAC(p.SrcMAC), oracleMAC(p.DstMAC), fmt.Sprint(p.PktLen)}
		q := queue[k]
		if len(q) == 0 {
			unmatched++
			if unmatched <= 10 {
				t.Errorf("%s: record %d (%s -> %s, %d bytes, %s) has no tshark frame", hook, p.Seq,
					p.Src(), p.Dst(), p.PktLen, oracleMAC(p.SrcMAC))
			}
			continue
		}
		pick := 0
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
		j := q[pick]
		queue[k] = append(q[:pick:pick], q[pick+1:]...)
		if j != i {
			reordered++
		}
		d := oracle[j]
		where := fmt.Sprintf("%s: record %d / tshark frame %d", hook, p.Seq, d.num)
		oracleCheck(t, where, p, expects[j], malformed[string(raw[j])].reason, tl)
	}
	t.Logf("%s: %d records matched with tshark (%d not in tshark's order, %d unmatched); matches by column: %v",
		hook, len(window)-unmatched, reordered, unmatched, tl)

	// Nothing vacuous: the real clients and the replays must have shown up.
	if n := len(*hosts); n < 3 {
		t.Errorf("the HTTP server saw %d requests, want 3", n)
	}
	for _, m := range []struct {
		col  string
		want int
	}{
		{"pkt_len", 480}, {"src_addr", 480}, {"src_port", 350}, {"tcp_seq", 220}, {"icmp_type", 50},
		{"vlan_id", 3}, {"inner_vlan_id", 2}, {"flow_label", 20}, {"ip6_ext", 6}, {"frag_offset", 2},
		{"ip_flags", 100}, {"dns_qname", 30}, {"dns_answers", 10}, {"tls_sni", 40}, {"http_host", 6},
		{"parse_error", 7}, {"tls_alpn", 40}, {"tls_version_max", 40}, {"quic_version", 20}, {"quic_dcid", 20},
	} {
		if tl[m.col] < m.want {
			t.Errorf("%s: only %d %s values matched tshark, want at least %d", hook, tl[m.col], m.col, m.want)
		}
	}
	// The real clients' own names must be among them, not only the replays'.
	var names []string
	for _, p := range window {
		if p.Src() == v.PeerAddr || p.Src() == v.PeerAddr6 {
			for _, s := range []string{p.TLSSNI, p.HTTPMethod + " " + p.HTTPHost + p.HTTPPath, p.DNSQName} {
				if s = strings.TrimSpace(s); s != "" {
					names = append(names, s)
				}
			}
		}
	}
	t.Logf("%s: L7 values from the real clients: %s", hook, strings.Join(names, ", "))
	for _, want := range []string{"some.name.test", "six.name.test", "www.pl-http.test", "a.pl-dns.test", "r1.pl-dns.test"} {
		found := false
		for _, p := range window {
			found = found || p.TLSSNI == want || p.HTTPHost == want || p.DNSQName == want
		}
		if !found {
			t.Errorf("%s: no record carries %q", hook, want)
		}
	}
}

// driveClients runs the real clients, each of which must succeed.
func driveClients(ctx context.Context, t *testing.T, v *nettest.Veth, hosts *[]string) {
	t.Helper()
	run := func(ns string, name string, args ...string) string {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		out, err := nettest.Exec(cctx, ns, name, args...)
		if err != nil {
			t.Errorf("%v", err)
		}
		return string(out)
	}
	a4, a6 := v.Addr.String(), v.Addr6.String()
	// curl: three requests with Host headers, IPv4 and IPv6.
	curl := []string{"-sS", "--noproxy", "*", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}"}
	for _, args := range [][]string{
		{"-H", "Host: www.pl-http.test", "http://" + a4 + "/index.html?q=1"},
		{"-H", "Host: six.pl-http.test:8080", "-d", "a=b", "http://[" + a6 + "]/submit"},
		{"-I", "http://" + a4 + "/head/path"},
	} {
		if out := run(v.PeerNS, "curl", append(curl, args...)...); out != "200" {
			t.Errorf("curl %v: %q", args, out)
		}
	}
	// dig against the observed end's dnsmasq (queries arrive) and, from the observed end,
	// against the peer's (responses arrive).
	for _, q := range []struct {
		ns, server string
		args       []string
	}{
		{v.PeerNS, a4, []string{"a.pl-dns.test", "A"}},
		{v.PeerNS, a4, []string{"+tcp", "b.pl-dns.test", "AAAA"}},
		{v.PeerNS, a6, []string{"c.pl-dns.test", "A"}},
		{v.PeerNS, a6, []string{"+tcp", "d.pl-dns.test", "MX"}},
		{v.PeerNS, a4, []string{"nx.other.test", "A"}},
		{v.PeerNS, a4, []string{"+norecurse", "e.pl-dns.test", "TXT"}},
		{v.NS, v.PeerAddr.String(), []string{"r1.pl-dns.test", "A"}},
		{v.NS, v.PeerAddr6.String(), []string{"r2.pl-dns.test", "AAAA"}},
		{v.NS, v.PeerAddr.String(), []string{"+tcp", "r3.pl-dns.test", "A"}},
		{v.NS, v.PeerAddr.String(), []string{"refused.other.test", "A"}},
	} {
		out := run(q.ns, "dig", append([]string{"@" + q.server, "+tries=1", "+time=3"}, q.args...)...)
		if !strings.Contains(out, "status: NOERROR") && !strings.Contains(out, "status: REFUSED") {
			t.Errorf("dig %v: no answer:\n%s", q.args, out)
		}
	}
	// openssl s_client: TLS 1.3 over IPv4, TLS 1.2 over IPv6, each with its own server name.
	for _, args := range [][]string{
		{"-connect", a4 + ":443", "-servername", "some.name.test"},
		{"-connect", "[" + a6 + "]:443", "-servername", "six.name.test", "-tls1_2"},
	} {
		out := run(v.PeerNS, "openssl", append([]string{"s_client", "-brief"}, args...)...)
		if !strings.Contains(out, "Protocol version") {
			t.Errorf("openssl s_client %v:\n%s", args, out)
		}
	}
	// ICMP echo, small and fragmented (12000 bytes over a 9000-byte MTU), IPv4 and IPv6.
	for _, dst := range []netip.Addr{v.Addr, v.Addr6} {
		for _, size := range []int{56, 12000} {
			if err := ping(v.PeerNS, dst, size); err != nil {
				t.Errorf("ping %s (%d bytes): %v", dst, size, err)
			}
		}
	}
}

// startHTTPServer serves HTTP on port 80 of the observed end (IPv4 and IPv6) from this process;
// it returns the Host of every request it answered.
func startHTTPServer(t *testing.T, v *nettest.Veth) *[]string {
	t.Helper()
	var mu sync.Mutex
	hosts := &[]string{}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		*hosts = append(*hosts, r.Host)
		mu.Unlock()
		io.WriteString(w, "packetlake\n")
	})}
	for _, a := range []netip.Addr{v.Addr, v.Addr6} {
		var ln net.Listener
		if err := v.Do(func() (err error) {
			ln, err = net.Listen("tcp", netip.AddrPortFrom(a, 80).String())
			return err
		}); err != nil {
			t.Fatalf("listen on %s port 80 in %s: %v", a, v.NS, err)
		}
		go srv.Serve(ln)
	}
	t.Cleanup(func() { srv.Close() })
	return hosts
}

func dnsmasqArgs(dir, name string, a4, a6 netip.Addr) []string {
	return []string{"--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--bind-interfaces", "--listen-address=" + a4.String(), "--listen-address=" + a6.String(),
		"--address=/pl-dns.test/198.18.0.77", "--address=/pl-dns.test/2001:db8::77",
		"--log-facility=-", "--pid-file=" + filepath.Join(dir, "dnsmasq-"+name+".pid"), "--user=root"}
}

// selfSignedCert makes a key and certificate for openssl s_server.
func selfSignedCert(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	out, err := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
		"-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=some.name.test").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	return cert, key
}

// startDaemon runs a long-lived command inside namespace ns (ip netns exec replaces itself with
// the command, so the PID is the command's) and waits until its output shows ready. It is stopped
// by its PID at cleanup, also when the test fails; the returned function stops it earlier and
// waits for it: SIGINT for tshark (which then finishes its file), SIGTERM for the others.
func startDaemon(t *testing.T, ns, label, ready string, name string, args ...string) (stop func()) {
	t.Helper()
	w := &readyWriter{ready: ready, seen: make(chan struct{})}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.WaitDelay = 3 * time.Second // children (dumpcap, dnsmasq's TCP workers) may hold the pipe
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", label, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			sig := syscall.SIGTERM
			if name == "tshark" {
				sig = syscall.SIGINT
			}
			cmd.Process.Signal(sig)
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
		})
	}
	t.Cleanup(stop)
	select {
	case <-w.seen:
	case err := <-exited:
		t.Fatalf("%s exited before it was ready: %v\n%s", label, err, w.output())
	case <-time.After(15 * time.Second):
		t.Fatalf("%s not ready after 15 s (waiting for %q):\n%s", label, ready, w.output())
	}
	return stop
}

// readyWriter collects a command's output and signals the first time it contains ready.
type readyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ready string
	seen  chan struct{}
	done  bool
}

func (w *readyWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(b)
	if !w.done && strings.Contains(w.buf.String(), w.ready) {
		w.done = true
		close(w.seen)
	}
	return len(b), nil
}

func (w *readyWriter) output() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// sendMarker sends one UDP datagram from the peer to the observed end's port.
func sendMarker(t *testing.T, v *nettest.Veth, port int) {
	t.Helper()
	err := nettest.Do(v.PeerNS, func() error {
		c, err := net.Dial("udp", netip.AddrPortFrom(v.Addr, uint16(port)).String())
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("packetlake fidelity marker"))
		return err
	})
	if err != nil {
		t.Fatalf("marker to port %d: %v", port, err)
	}
}

func isMarker(p *record.Packet, v *nettest.Veth, port int) bool {
	return p.IPProto == 17 && p.DstPort == uint16(port) && p.Src() == v.PeerAddr
}

func isMarkerFrame(d oracleFrame, v *nettest.Veth, port int) bool {
	return d.first("ip.src") == v.PeerAddr.String() && d.first("udp.dstport") == fmt.Sprint(port)
}

// ping sends one ICMP echo request of size payload bytes from the peer namespace with a raw
// socket and waits for the reply; the kernel fragments it when it exceeds the MTU.
func ping(ns string, dst netip.Addr, size int) error {
	network, typ, replyType := "ip4:icmp", byte(8), byte(0)
	if dst.Is6() {
		network, typ, replyType = "ip6:ipv6-icmp", 128, 129
	}
	var conn net.PacketConn
	if err := nettest.Do(ns, func() (err error) {
		conn, err = net.ListenPacket(network, "")
		return err
	}); err != nil {
		return err
	}
	defer conn.Close()
	msg := make([]byte, 8+size)
	msg[0] = typ
	binary.BigEndian.PutUint16(msg[4:], uint16(os.Getpid()))
	binary.BigEndian.PutUint16(msg[6:], uint16(size))
	for i := 8; i < len(msg); i++ {
		msg[i] = byte(i)
	}
	if !dst.Is6() { // the kernel fills in ICMPv6 checksums itself
		binary.BigEndian.PutUint16(msg[2:], inetChecksum(msg))
	}
	if _, err := conn.WriteTo(msg, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
		return err
	}
	buf := make([]byte, 65536)
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("no echo reply: %w", err)
		}
		if n >= 8 && buf[0] == replyType && binary.BigEndian.Uint16(buf[6:]) == uint16(size) {
			return nil
		}
	}
}

func inetChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// describe names a record in a log line.
func describe(p *record.Packet) string {
	if p.IPVersion == 0 {
		return fmt.Sprintf("eth_type 0x%04x", p.EthType)
	}
	return fmt.Sprintf("%s->%s proto %d type %d", p.Src(), p.Dst(), p.IPProto, p.ICMPType)
}

// consumeAll reads the topic from its start until it has want records, and decodes them.
func consumeAll(ctx context.Context, t *testing.T, topic string, want int) []record.Packet {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Kafka.Addr()), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var out []record.Packet
	l7st := record.NewL7State() // as the ingester: QUIC hellos over several Initials
	for len(out) < want {
		fs := cl.PollFetches(cctx)
		if err := fs.Err(); err != nil {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				t.Fatalf("topic %s: %d records after 20 s, want %d", topic, len(out), want)
			}
			t.Fatalf("consume %s: %v", topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			h, samples, err := record.ParseFrame(r.Value)
			if err != nil {
				t.Fatalf("frame at offset %d: %v", r.Offset, err)
			}
			var p record.Packet
			if err := record.FrameState(h, samples, &p, l7st, func(p *record.Packet) error {
				out = append(out, *p)
				return nil
			}); err != nil {
				t.Fatalf("frame at offset %d: %v", r.Offset, err)
			}
		})
	}
	if len(out) != want {
		t.Errorf("topic %s holds %d records, the collector had %d acknowledged", topic, len(out), want)
	}
	return out
}

// malformedFrames maps the bytes of each frame of oracleMalformed to its expectation, so that
// a replayed copy can be recognised in the live capture.
func malformedFrames(t *testing.T) map[string]struct {
	reason string
	stop   int
} {
	t.Helper()
	out := map[string]struct {
		reason string
		stop   int
	}{}
	for k, v := range oracleMalformed {
		name, num, _ := strings.Cut(k, "#")
		frames, _, err := nettest.ReadPcap(filepath.Join(sharedPcaps, name))
		if err != nil {
			t.Fatal(err)
		}
		var n int
		fmt.Sscan(num, &n)
		out[string(frames[n-1].Data)] = v
	}
	return out
}

// startCollector starts an in-process collector that logs to the test, stopped when it ends.
func startCollector(t *testing.T, ctx context.Context, cfg collector.Config) *collector.Collector {
	t.Helper()
	c, err := collector.New(cfg, collector.Dependencies{Logger: slog.New(slog.NewTextHandler(testLogWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	return c
}

// testLogWriter sends the collector's log lines to the test log.
type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}
