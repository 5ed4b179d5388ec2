package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/collector"
	"github.com/packetlake/packetlake/internal/testkit/nettest"
	"github.com/packetlake/packetlake/record"
	"github.com/packetlake/packetlake/record/l7"
)

// TestLiveTLSSplitClientHello: TLS ClientHellos that span several TCP segments, from real
// clients to a real openssl s_server between two test namespaces, XDP on the server's end,
// tshark capturing there, collector -> Kafka (4 partitions) -> ingester -> ClickHouse. Go's
// crypto/tls offers an X25519MLKEM768 key share by default: a ~1.8 KB hello, two segments at a
// 1500-byte MTU. Then a 400-byte path MTU on the client's route splits Go's hello into five
// segments and openssl s_client's (Debian's openssl 3.0 has no ML-KEM) into two. For every
// hello the stored row carries the SNI and ALPN tshark reassembles and a JA4 computed here from
// tshark's dissection (FoxIO's recipe), on the segment that completes it; every record of a
// connection went to one Kafka partition.
func TestLiveTLSSplitClientHello(t *testing.T) {
	for _, tool := range []string{"tshark", "openssl", "ethtool"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found in PATH: this test needs it (make test installs it)", tool)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	v := nettest.NewVethPair(t)
	nettest.MustExec(t, v.NS, "ethtool", "-K", v.Name, "gro", "off")
	certFile, keyFile := selfSignedCert(t, dir)
	const port = "4433"
	startDaemon(t, v.NS, "openssl s_server", "ACCEPT", "openssl", "s_server", "-accept", port,
		"-cert", certFile, "-key", keyFile, "-alpn", "h2,http/1.1", "-www")

	pcap := filepath.Join(dir, "server.pcapng")
	stopCapture := startDaemon(t, v.NS, "tshark", "Capturing on", "tshark", "-n", "-i", v.Name, "-w", pcap)
	topic, stats, flows := env.Topic(t, 4), env.Topic(t, 1), env.Topic(t, 1)
	cfg := collector.DefaultConfig()
	cfg.Iface, cfg.NetNS, cfg.Hook = v.Name, v.NS, "xdp"
	cfg.Kafka.Brokers = []string{env.Kafka.Addr()}
	cfg.Topic, cfg.StatsTopic, cfg.FlowsTopic = topic, stats, flows
	cfg.Host = "live-tls-split"
	cfg.FrameMaxAge = 50 * time.Millisecond
	cfg.StatsInterval = time.Minute
	c := startCollector(t, ctx, cfg)

	addr := net.JoinHostPort(v.Addr.String(), port)
	goClient := func(sni string) {
		t.Helper()
		var conn net.Conn
		if err := nettest.Do(v.PeerNS, func() (err error) {
			conn, err = net.DialTimeout("tcp", addr, 5*time.Second)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Client(conn, &tls.Config{ServerName: sni, InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}})
		if err := tc.Handshake(); err != nil {
			t.Fatalf("%s: handshake with openssl s_server: %v", sni, err)
		}
		if got := tc.ConnectionState().CurveID; got != tls.X25519MLKEM768 && got != tls.X25519 {
			t.Logf("%s: negotiated group %v", sni, got)
		}
	}
	sslClient := func(sni string) {
		t.Helper()
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		defer ccancel()
		// stdin is /dev/null: s_client ends after the handshake
		out, err := nettest.Exec(cctx, v.PeerNS, "openssl", "s_client", "-connect", addr, "-servername", sni, "-alpn", "h2,http/1.1")
		if err != nil || !strings.Contains(string(out), "BEGIN CERTIFICATE") {
			t.Fatalf("openssl s_client %s: %v\n%s", sni, err, out)
		}
	}
	goClient("pq.pl-tls-split.test")
	// A small path MTU on the client's route: the same hellos in smaller segments.
	nettest.MustExec(t, v.PeerNS, "ip", "route", "replace", v.Addr.String()+"/32", "dev", v.PeerName, "mtu", "lock", "400")
	goClient("pq-small-mss.pl-tls-split.test")
	sslClient("openssl.pl-tls-split.test")

	// The tail of the last batch reaches Kafka within FrameMaxAge of Stop.
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	// dumpcap writes what it has read every 100 ms or so: wait until the capture holds the three
	// hellos before stopping it (stopped at once, it lost every frame under load).
	for deadline := time.Now().Add(20 * time.Second); ; {
		out, _ := exec.Command("tshark", "-n", "-r", pcap, "-Y", "tls.handshake.type == 1").Output()
		if n := strings.Count(string(out), "\n"); n >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopCapture()

	// The oracle: tshark's reassembled ClientHellos (reassembly on, as tshark does by default).
	type hello struct {
		sni, alpn, ja4 string
		sport          uint16
		segments       int
	}
	var want []hello
	for _, f := range tsharkRows(t, pcap, "tls.handshake.type == 1", "tcp.srcport", "tcp.segment.count",
		"tls.handshake.extensions_server_name", "tls.handshake.extensions_alpn_str", "tls.handshake.version",
		"tls.handshake.extensions.supported_version", "tls.handshake.ciphersuite", "tls.handshake.extension.type",
		"tls.handshake.sig_hash_alg", "tls.handshake.sig_hash_alg_len", "tcp.reassembled.data") {
		sport, _ := strconv.Atoi(f[0])
		segs, _ := strconv.Atoi(f[1])
		h := hello{sni: f[2], alpn: firstOf(f[3]), sport: uint16(sport), segments: segs, ja4: ja4FromTshark(t, f[2:10])}
		rawHex := f[10]
		// The reassembled bytes through packetlake's parser in one piece agree with tshark too.
		raw, err := hex.DecodeString(strings.ReplaceAll(rawHex, ":", ""))
		if err != nil || len(raw) == 0 {
			t.Fatalf("tshark frame of %s: no reassembled data (%q): the hello was not split", h.sni, rawHex)
		}
		if one, err := l7.ParseClientHelloRecord(raw); err != nil || one.JA4 != h.ja4 || one.SNI != h.sni {
			t.Errorf("%s: the reassembled hello parses to %q %q (%v), tshark's fields give JA4 %q", h.sni, one.SNI, one.JA4, err, h.ja4)
		}
		want = append(want, h)
	}
	if len(want) != 3 {
		all := tsharkRows(t, pcap, "frame", "frame.number", "tcp.srcport", "tcp.dstport", "tcp.len")
		t.Fatalf("tshark found %d ClientHellos over several segments, want 3: %+v (capture of %d frames: %v)", len(want), want, len(all), all)
	}

	// Every record of a connection in one partition (the collector keys frames by host and
	// interface), each partition decoded with its own L7 state as an ingester's worker does.
	parts := consumePartitions(ctx, t, topic, int(st.RecordsAcked))
	for _, h := range want {
		var in []int32
		for part, recs := range parts {
			for _, p := range recs {
				if p.SrcPort == h.sport && !slices.Contains(in, part) {
					in = append(in, part)
				}
			}
		}
		if len(in) != 1 {
			t.Errorf("%s: records of the connection in partitions %v, want one", h.sni, in)
		}
	}

	// Stored: through the ingester into ClickHouse.
	db := strings.ReplaceAll(env.Topic(t, 1), "-", "_")
	stop := startIngest(t, ctx, topic, stats, flows, "tls-split-"+db, db)
	waitRows(t, ctx, db, st.RecordsAcked)
	stop()
	rows := storedPackets(t, ctx, db, "src_port != "+port)
	for _, h := range want {
		var hits []record.Packet
		segs := 0
		for _, p := range rows {
			if p.SrcPort != h.sport {
				continue
			}
			if p.PayloadLen > 0 {
				segs++
			}
			if p.TLSSNI != "" || p.TLSJA4 != "" {
				hits = append(hits, p)
			}
		}
		if len(hits) != 1 {
			t.Errorf("%s: %d stored rows with hello columns, want 1", h.sni, len(hits))
			continue
		}
		p := hits[0]
		if p.TLSSNI != h.sni || p.TLSALPN != h.alpn || p.TLSJA4 != h.ja4 || p.ParseError != "" {
			t.Errorf("%s: stored SNI %q ALPN %q JA4 %q (error %q); tshark: %q %q %q", h.sni, p.TLSSNI, p.TLSALPN, p.TLSJA4, p.ParseError, h.sni, h.alpn, h.ja4)
		}
		t.Logf("%s: %d segments (tshark), %d client data rows stored, JA4 %s ALPN %s", h.sni, h.segments, segs, p.TLSJA4, p.TLSALPN)
	}
	t.Logf("kernel: tls_cont tracked %d copied %d outside %d done %d", st.KernelTLSContTracked, st.KernelTLSContCopied, st.KernelTLSContOutside, st.KernelTLSContDone)
	if st.KernelTLSContTracked != 3 || st.KernelTLSContDone != 3 || st.KernelTLSContCopied < 1+4+1 {
		t.Errorf("kernel counters: tracked %d done %d copied %d; want 3 flows tracked and done, at least 6 segments copied",
			st.KernelTLSContTracked, st.KernelTLSContDone, st.KernelTLSContCopied)
	}
}

// tsharkRows runs tshark over capture with filter and returns the fields of each matching frame.
func tsharkRows(t *testing.T, capture, filter string, fields ...string) [][]string {
	t.Helper()
	args := []string{"-n", "-r", capture, "-Y", filter, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	out, err := exec.Command("tshark", args...).Output()
	if err != nil {
		t.Fatalf("tshark %v: %v", args, err)
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, "\t"))
		}
	}
	return rows
}

func firstOf(list string) string { s, _, _ := strings.Cut(list, ","); return s }

// ja4FromTshark computes JA4 (TCP) from tshark's dissection of a ClientHello, following FoxIO's
// python/ja4.py: f is sni, alpn list, handshake version, supported versions, cipher suites,
// extension types, signature algorithms, and the byte lengths of the signature algorithm lists
// (comma-separated). tshark lists the algorithms of signature_algorithms (13) and
// signature_algorithms_cert (50) in one field, in extension order; JA4 takes extension 13's.
func ja4FromTshark(t *testing.T, f []string) string {
	t.Helper()
	nums := func(s string) []uint64 {
		var out []uint64
		for _, x := range strings.Split(s, ",") {
			if x == "" {
				continue
			}
			n, err := strconv.ParseUint(x, 0, 16)
			if err != nil {
				t.Fatalf("tshark value %q: %v", x, err)
			}
			if n&0x0f0f == 0x0a0a && n>>8 == n&0xff { // GREASE
				continue
			}
			out = append(out, n)
		}
		return out
	}
	sni, alpn := f[0], firstOf(f[1])
	version := nums(f[2])[0] // the handshake's, unless supported_versions offers more
	if sv := nums(f[3]); len(sv) > 0 {
		version = slices.Max(sv)
	}
	ciphers, exts, sigs := nums(f[4]), nums(f[5]), nums(f[6])
	if lens := strings.Split(f[7], ","); len(lens) == 2 { // both extensions: pick 13's part
		first, _ := strconv.Atoi(lens[0])
		if slices.Index(exts, 13) < slices.Index(exts, 50) {
			sigs = sigs[:first/2]
		} else {
			sigs = sigs[first/2:]
		}
	}
	ver := map[uint64]string{0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10"}[version]
	d := "i"
	if sni != "" {
		d = "d"
	}
	a := "00"
	if alpn != "" {
		a = alpn[:1] + alpn[len(alpn)-1:]
	}
	hexes := func(v []uint64) []string {
		out := make([]string, len(v))
		for i, n := range v {
			out[i] = fmt.Sprintf("%04x", n)
		}
		return out
	}
	hash12 := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:])[:12] }
	cs := hexes(ciphers)
	slices.Sort(cs)
	var es []string
	for _, e := range hexes(exts) {
		if e != "0000" && e != "0010" {
			es = append(es, e)
		}
	}
	slices.Sort(es)
	extPart := strings.Join(es, ",")
	if len(sigs) > 0 {
		extPart += "_" + strings.Join(hexes(sigs), ",")
	}
	return fmt.Sprintf("t%s%s%02d%02d%s_%s_%s", ver, d, min(len(ciphers), 99), min(len(exts), 99), a,
		hash12(strings.Join(cs, ",")), hash12(extPart))
}

// consumePartitions reads want records of topic and decodes each partition's frames in order
// with its own L7 state, as the ingester's per-partition workers do.
func consumePartitions(ctx context.Context, t *testing.T, topic string, want int) map[int32][]record.Packet {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Kafka.Addr()), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out := map[int32][]record.Packet{}
	states := map[int32]*record.L7State{}
	n := 0
	for n < want {
		fs := cl.PollFetches(cctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("consume %s: %d of %d records: %v", topic, n, want, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			h, samples, err := record.ParseFrame(r.Value)
			if err != nil {
				t.Fatalf("frame at %d/%d: %v", r.Partition, r.Offset, err)
			}
			if states[r.Partition] == nil {
				states[r.Partition] = record.NewL7State()
			}
			var p record.Packet
			if err := record.FrameState(h, samples, &p, states[r.Partition], func(p *record.Packet) error {
				out[r.Partition] = append(out[r.Partition], *p)
				n++
				return nil
			}); err != nil {
				t.Fatalf("frame at %d/%d: %v", r.Partition, r.Offset, err)
			}
		})
	}
	return out
}
