package nettest

import (
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/packetlake/packetlake/internal/testkit/testpcaps"
)

// udpExchange sends msg from the peer namespace to the observed end and returns what arrived.
func udpExchange(t *testing.T, v *Veth, dst netip.Addr, msg string) string {
	t.Helper()
	var conn net.PacketConn
	if err := v.Do(func() (err error) {
		conn, err = net.ListenPacket("udp", netip.AddrPortFrom(dst, 0).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	to := conn.LocalAddr().String()
	if err := Do(v.PeerNS, func() error {
		c, err := net.Dial("udp", to)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte(msg))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, _, err := conn.ReadFrom(buf)
	if err != nil {
		t.Fatalf("receive on %s: %v", to, err)
	}
	return string(buf[:n])
}

func TestVethPairTrafficAndCleanup(t *testing.T) {
	var v *Veth
	t.Run("pair", func(t *testing.T) {
		v = NewVethPair(t, WithIPv6())
		if v.Index == 0 || v.PeerIndex == 0 || len(v.MAC) != 6 {
			t.Fatalf("incomplete pair: %+v", v)
		}
		if got := udpExchange(t, v, v.Addr, "hello4"); got != "hello4" {
			t.Errorf("IPv4 got %q", got)
		}
		if got := udpExchange(t, v, v.Addr6, "hello6"); got != "hello6" {
			t.Errorf("IPv6 got %q", got)
		}
		st := ReadLinkStats(t, v.NS, v.Name)
		if st.RxPackets < 2 {
			t.Errorf("observed end saw %v, want >= 2 packets received", st)
		}
	})
	for _, ns := range []string{v.NS, v.PeerNS} {
		if _, err := os.Stat("/run/netns/" + ns); !os.IsNotExist(err) {
			t.Errorf("netns %s still exists after cleanup (stat: %v)", ns, err)
		}
	}
}

func TestReplayCounts(t *testing.T) {
	v := NewVethPair(t)
	before := ReadLinkStats(t, v.NS, v.Name)
	st := Replay(t, v.PeerNS, v.PeerName, testpcaps.Path("tcpdump/dns_udp.pcap"), 0)
	if st.Sent != 2 || st.Failed != 0 {
		t.Fatalf("tcpreplay: %+v, want 2 sent", st)
	}
	after := ReadLinkStats(t, v.NS, v.Name)
	if got := after.RxPackets - before.RxPackets; got != 2 {
		t.Errorf("observed end received %d packets, want 2 (%v)", got, after)
	}
}

func TestReadPcapBothFormats(t *testing.T) {
	for path, want := range map[string]int{
		testpcaps.Path("ja4/tls-sni.pcapng"): 84,
		testpcaps.Path("ja4/v6.pcap"):        161,
	} {
		frames, _, err := ReadPcap(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(frames) != want {
			t.Errorf("%s: %d frames, want %d", path, len(frames), want)
		}
	}
}
