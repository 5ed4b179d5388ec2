package e2e

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/packetlake/packetlake/collector"
	"github.com/packetlake/packetlake/internal/testkit/nettest"
	"github.com/packetlake/packetlake/record"
	"github.com/packetlake/packetlake/record/l7"
)

// TestLiveQUICClientHello: real QUIC handshakes (quic-go, Go's crypto/tls) between two test
// namespaces, XDP on the server's end, through Kafka: every client's first Initial records the
// QUIC version and connection ids, and the ClientHello's SNI, ALPN and JA4 ('q') are stored on the
// Initial that completes it. Go's default hello offers X25519MLKEM768, whose 1.2 KB key share
// does not fit one Initial: that hello spans two packets and must be reassembled; a hello limited
// to X25519 fits one; a third client speaks QUIC v2.
func TestLiveQUICClientHello(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	v := nettest.NewVethPair(t)
	certFile, keyFile := selfSignedCert(t, dir)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	// Sockets are made inside their namespace and stay in it whichever thread uses them.
	var srvConn net.PacketConn
	if err := nettest.Do(v.NS, func() (err error) {
		srvConn, err = net.ListenPacket("udp4", net.JoinHostPort(v.Addr.String(), "443"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer srvConn.Close()
	qconf := &quic.Config{Versions: []quic.Version{quic.Version1, quic.Version2}}
	ln, err := quic.Listen(srvConn, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"pl-test"}}, qconf)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			go func() { <-conn.Context().Done() }()
		}
	}()

	topic := env.Topic(t, 1)
	cfg := collector.DefaultConfig()
	cfg.Iface, cfg.NetNS, cfg.Hook = v.Name, v.NS, "xdp"
	cfg.Kafka.Brokers = []string{env.Kafka.Addr()}
	cfg.Topic, cfg.StatsTopic, cfg.FlowsTopic = topic, env.Topic(t, 1), env.Topic(t, 1)
	cfg.Host = "live-quic"
	cfg.FrameMaxAge = 50 * time.Millisecond
	cfg.StatsInterval = time.Minute
	c := startCollector(t, ctx, cfg)

	clients := []struct {
		sni     string
		version quic.Version
		curves  []tls.CurveID
	}{
		{"mlkem.pl-quic.test", quic.Version1, nil}, // Go's default key shares: a split hello
		{"x25519.pl-quic.test", quic.Version1, []tls.CurveID{tls.X25519}},
		{"v2.pl-quic.test", quic.Version2, []tls.CurveID{tls.X25519}},
	}
	for _, cl := range clients {
		var conn net.PacketConn
		if err := nettest.Do(v.PeerNS, func() (err error) {
			conn, err = net.ListenPacket("udp4", net.JoinHostPort(v.PeerAddr.String(), "0"))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
		qc, err := quic.Dial(dctx, conn, &net.UDPAddr{IP: v.Addr.AsSlice(), Port: 443},
			&tls.Config{ServerName: cl.sni, InsecureSkipVerify: true, NextProtos: []string{"pl-test"}, CurvePreferences: cl.curves},
			&quic.Config{Versions: []quic.Version{cl.version}})
		dcancel()
		if err != nil {
			t.Fatalf("%s: dial: %v", cl.sni, err)
		}
		qc.CloseWithError(0, "")
		conn.Close()
	}
	time.Sleep(300 * time.Millisecond)
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	recs := consumeAll(ctx, t, topic, int(c.Stats().RecordsAcked))

	for _, cl := range clients {
		wantVersion := uint32(l7.QUICv1)
		if cl.version == quic.Version2 {
			wantVersion = l7.QUICv2
		}
		var initials []record.Packet // client Initials of this client's connection, in order
		var hello *record.Packet
		for i := range recs {
			p := &recs[i]
			if p.TLSSNI == cl.sni {
				hello = p
			}
		}
		if hello == nil {
			t.Errorf("%s: no record holds its ClientHello", cl.sni)
			continue
		}
		for _, p := range recs {
			if p.QUICDCID == hello.QUICDCID && p.SrcPort == hello.SrcPort {
				initials = append(initials, p)
			}
		}
		if hello.QUICVersion != wantVersion || len(hello.QUICDCID) < 16 || hello.DstPort != 443 ||
			!strings.HasPrefix(hello.TLSJA4, "q13d") || hello.TLSALPN != "pl-test" || hello.TLSVersionMax != 0x0304 || hello.ParseError != "" {
			t.Errorf("%s: version %#x DCID %q JA4 %q ALPN %q max version %#x error %q", cl.sni, hello.QUICVersion, hello.QUICDCID,
				hello.TLSJA4, hello.TLSALPN, hello.TLSVersionMax, hello.ParseError)
		}
		t.Logf("%s: QUIC %#x, DCID %s, %d client Initials with CRYPTO data recorded, JA4 %s", cl.sni, hello.QUICVersion, hello.QUICDCID, len(initials), hello.TLSJA4)
		if cl.curves == nil && len(initials) < 2 {
			t.Errorf("%s: the post-quantum hello came in %d Initial(s), expected it split over two", cl.sni, len(initials))
		}
		if cl.curves == nil && len(initials) >= 2 && initials[0].TLSSNI != "" {
			t.Errorf("%s: the first Initial already holds the SNI: the hello was not split", cl.sni)
		}
	}
}
