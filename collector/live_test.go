package collector

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf/link"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/packetlake/packetlake/internal/testkit/nettest"
)

// Real traffic through a veth in test-made namespaces: every packet tcpreplay sends is recorded
// on each hook, reaches Kafka, and Stop leaves no program attached.
func TestLiveVeth(t *testing.T) {
	capture := filepath.Join(pcapDir, "ja4/tls-sni.pcapng")
	for _, tc := range []struct{ hook, mode string }{{"xdp", "native"}, {"xdp", "generic"}, {"tc", "auto"}} {
		t.Run(tc.hook+"-"+tc.mode, func(t *testing.T) {
			v := nettest.NewVethPair(t)
			k := startKafka(t)
			cfg := testConfig(k.Addr())
			cfg.Iface, cfg.Hook, cfg.XDPMode = v.Name, tc.hook, tc.mode
			cfg.FrameMaxAge = 50 * time.Millisecond
			var c *Collector
			// New resolves the interface and Start attaches by ifindex: both in the veth's netns.
			err := v.Do(func() error {
				var err error
				if c, err = New(cfg, Dependencies{Logger: testLogger(t)}); err != nil {
					return err
				}
				return c.Start(context.Background())
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Stop() })
			info, err := c.link.Info()
			if err != nil {
				t.Fatal(err)
			}
			if !linkExists(info.ID) || (tc.hook == "xdp" && xdpAttached(t, v) != 1) {
				t.Fatalf("no program attached to %s after Start", v.Name)
			}

			sent := nettest.Replay(t, v.PeerNS, v.PeerName, capture, 1000)
			if !waitFor(10*time.Second, func() bool { return c.Stats().RecordsAcked >= uint64(sent.Sent) }) {
				t.Fatalf("sent %d, stats %+v (link %s)", sent.Sent, c.Stats(), nettest.ReadLinkStats(t, v.NS, v.Name))
			}
			if err := c.Stop(); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			if linkExists(info.ID) || xdpAttached(t, v) != 0 {
				t.Fatalf("program still attached to %s after Stop (link %d)", v.Name, info.ID)
			}

			cons := newConsumer(t, k.Addr(), cfg.Topic)
			recs := cons.until(10*time.Second, func(r []*kgo.Record) bool { return countRecords(r) >= sent.Sent })
			var n, sni int
			for _, f := range decodeFrames(t, recs) {
				for _, p := range f.packets {
					n++
					if p.Ifindex != uint32(v.Index) || p.Iface != v.Name {
						t.Errorf("packet %d: ifindex %d iface %q, want %d %q", p.Seq, p.Ifindex, p.Iface, v.Index, v.Name)
					}
					if d := time.Since(time.Unix(0, p.TS)); d < 0 || d > time.Minute {
						t.Errorf("packet %d: ts %v is not the capture's wall-clock time", p.Seq, time.Unix(0, p.TS))
					}
					if p.TLSSNI != "" {
						sni++
					}
				}
			}
			if n != sent.Sent || sni == 0 {
				t.Fatalf("%d records (%d with SNI) for %d packets sent", n, sni, sent.Sent)
			}
			t.Logf("%s/%s: %d packets sent, %d recorded, %d with SNI", tc.hook, tc.mode, sent.Sent, n, sni)
		})
	}
}

// linkExists says whether a BPF link (an attachment) is still in the kernel.
func linkExists(id link.ID) bool {
	l, err := link.NewFromID(id)
	if err != nil {
		return false
	}
	l.Close() // our extra reference only; the attachment's own fd decides its life
	return true
}

// xdpAttached counts XDP programs on the observed veth end, as bpftool sees them (bpftool 7.1
// predates tcx, so tc attachments are checked through their link instead).
func xdpAttached(t *testing.T, v *nettest.Veth) int {
	t.Helper()
	out := nettest.MustExec(t, v.NS, "bpftool", "-j", "net", "show", "dev", v.Name)
	var net []struct {
		XDP []json.RawMessage `json:"xdp"`
	}
	if err := json.Unmarshal(out, &net); err != nil || len(net) != 1 {
		t.Fatalf("bpftool net show: %v: %s", err, out)
	}
	return len(net[0].XDP)
}
