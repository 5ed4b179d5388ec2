package collector

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/record"
)

// Pcap mode produces exactly the capture's packets, with the capture's times, and they decode
// back through the ingester's path.
func TestPcapModeProducesCapture(t *testing.T) {
	for _, name := range []string{"tcpdump/dns_udp.pcap", "ja4/single-packets.pcap", "ja4/v6.pcap", "ja4/tls-handshake.pcapng"} {
		t.Run(filepath.Base(name), func(t *testing.T) {
			path := filepath.Join(pcapDir, name)
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("capture missing: %v", err)
			}
			k := startKafka(t)
			cfg := testConfig(k.Addr())
			cfg.Iface = ""
			cfg.Pcap = path
			cfg.FrameMaxBytes = 8192 // several frames even for a small capture
			c, err := New(cfg, Dependencies{Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			select {
			case <-c.Done():
			case <-time.After(30 * time.Second):
				t.Fatal("replay did not finish")
			}
			if err := c.Err(); err != nil {
				t.Fatalf("replay: %v", err)
			}
			if err := c.Stop(); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			pkts, times := capturePackets(t, name)
			s := c.Stats()
			if s.KernelSeen != uint64(len(pkts)) || s.KernelEmitted != uint64(len(pkts)) {
				t.Fatalf("kernel saw %d emitted %d of %d packets", s.KernelSeen, s.KernelEmitted, len(pkts))
			}
			cons := newConsumer(t, k.Addr(), cfg.Topic)
			recs := cons.until(10*time.Second, func(r []*kgo.Record) bool { return countRecords(r) >= len(pkts) })
			frames := decodeFrames(t, recs)
			var got []record.Packet
			for _, f := range frames {
				if f.hdr.Flags&record.FrameWallClock == 0 || f.hdr.ClockOffset != 0 {
					t.Errorf("pcap frame flags %d offset %d, want FrameWallClock and 0", f.hdr.Flags, f.hdr.ClockOffset)
				}
				if f.hdr.Iface != filepath.Base(name) {
					t.Errorf("iface %q, want the file name", f.hdr.Iface)
				}
				got = append(got, f.packets...)
			}
			if len(got) != len(pkts) {
				t.Fatalf("%d packets in Kafka, capture has %d", len(got), len(pkts))
			}
			for i, p := range got {
				if p.Seq != uint64(i) {
					t.Fatalf("packet %d has seq %d", i, p.Seq)
				}
				if p.TS != times[i].UnixNano() {
					t.Errorf("packet %d: ts %d, capture says %d", i, p.TS, times[i].UnixNano())
				}
				if p.PktLen != uint32(len(pkts[i])) {
					t.Errorf("packet %d: pkt_len %d, captured %d bytes", i, p.PktLen, len(pkts[i]))
				}
				gp := gopacket.NewPacket(pkts[i], layers.LayerTypeEthernet, gopacket.Default)
				if ip, ok := gp.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok && p.Src().String() != ip.SrcIP.String() {
					t.Errorf("packet %d: src %s, gopacket %s", i, p.Src(), ip.SrcIP)
				}
				if udp, ok := gp.Layer(layers.LayerTypeUDP).(*layers.UDP); ok && p.DstPort != uint16(udp.DstPort) {
					t.Errorf("packet %d: dst port %d, gopacket %d", i, p.DstPort, udp.DstPort)
				}
			}
			var l7 int
			for _, p := range got {
				if p.DNSQName != "" || p.TLSSNI != "" || p.HTTPHost != "" {
					l7++
				}
			}
			if l7 == 0 {
				t.Errorf("no DNS name, TLS SNI or HTTP host decoded from %s", name)
			}
			t.Logf("%s: %d packets in %d frames, %d with an L7 name", name, len(got), len(frames), l7)
		})
	}
}

// A capture of anything but Ethernet is refused with a clear error.
func TestReplayRefusesNonEthernet(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raw.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeRaw); err != nil {
		t.Fatal(err)
	}
	pkt := []byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}
	w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Now(), CaptureLength: len(pkt), Length: len(pkt)}, pkt)
	f.Close()

	_, err = DecodeCapture(path, os.Stdout)
	if err == nil || !strings.Contains(err.Error(), "only Ethernet") {
		t.Fatalf("non-Ethernet capture: err = %v, want a link type error", err)
	}
	t.Log(err)
}
