package bpf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/cilium/ebpf/link"
	"github.com/gopacket/gopacket/layers"
	"github.com/packetlake/packetlake/internal/testkit/nettest"
	"github.com/packetlake/packetlake/record"
	"github.com/packetlake/packetlake/schema"
)

// collect reads records until want have arrived or nothing more comes for a while. Records are
// written without wake-ups below the threshold, so it polls like the collector's deadline does.
func (e *env) collect(t *testing.T, want int) [][]byte {
	t.Helper()
	var got [][]byte
	idle := time.Now()
	for len(got) < want && time.Since(idle) < 2*time.Second {
		if n := e.drain(t); len(n) > 0 {
			got = append(got, n...)
			idle = time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return got
}

func tsNanos(raw []byte) uint64 { return binary.LittleEndian.Uint64(raw) } // pl_record.ts_ns, at offset 0

func statsDelta(t testing.TB, e *env, before []uint64) []uint64 {
	t.Helper()
	now, err := e.o.ReadStats()
	if err != nil {
		t.Fatal(err)
	}
	d := make([]uint64, len(now))
	for i := range now {
		d[i] = now[i] - before[i]
	}
	return d
}

func readStats(t testing.TB, e *env) []uint64 {
	t.Helper()
	s, err := e.o.ReadStats()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestLiveReplay attaches the programs to a veth in a test-made namespace, replays the Ethernet
// captures into its peer with tcpreplay, and requires one record per frame sent, equal to the
// record BPF_PROG_TEST_RUN gives for the same bytes (but ifindex and time). In TC the kernel has
// already moved the outer VLAN tag into the skb; the record must not show it.
func TestLiveReplay(t *testing.T) {
	v := nettest.NewVethPair(t, nettest.WithMTU(9000)) // dnssec.pcap has 3 KB frames
	e := newEnv(t, Config{})

	files, _ := filepath.Glob(filepath.Join(pcapDir, "*", "*.pcap*"))
	sort.Strings(files)
	var pcaps []string
	var frames [][]byte
	for _, f := range files {
		fr, lt, err := nettest.ReadPcap(f)
		if err != nil {
			t.Fatal(err)
		}
		if lt != layers.LinkTypeEthernet {
			continue // loopback captures would be garbage on Ethernet
		}
		pcaps = append(pcaps, f)
		for _, x := range fr {
			frames = append(frames, x.Data)
		}
	}
	// What the test run makes of each frame is the reference.
	var want []decoded
	for _, f := range frames {
		want = append(want, e.run(t, f, false))
	}

	attach := map[string]func() (link.Link, error){
		"xdp_native":  func() (link.Link, error) { return e.o.AttachXDP(v.Index, XDPNative) },
		"xdp_generic": func() (link.Link, error) { return e.o.AttachXDP(v.Index, XDPGeneric) },
		"tcx":         func() (link.Link, error) { return e.o.AttachTC(v.Index) },
	}
	for _, hook := range []string{"xdp_native", "xdp_generic", "tcx"} {
		t.Run(hook, func(t *testing.T) {
			var l link.Link
			if err := v.Do(func() (err error) { l, err = attach[hook](); return err }); err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			before := readStats(t, e)
			peerBefore := nettest.ReadLinkStats(t, v.PeerNS, v.PeerName)
			sent := 0
			for _, p := range pcaps {
				st := nettest.Replay(t, v.PeerNS, v.PeerName, p, 2000)
				if st.Failed != 0 {
					t.Errorf("tcpreplay %s: %d packets failed", p, st.Failed)
				}
				sent += st.Sent
			}
			got := e.collect(t, sent)
			// Each CPU batches its records: if the sender moved between CPUs, batches may reach
			// the ring out of send order. Capture time restores it.
			sort.SliceStable(got, func(i, j int) bool { return tsNanos(got[i]) < tsNanos(got[j]) })
			d := statsDelta(t, e, before)
			peer := nettest.ReadLinkStats(t, v.PeerNS, v.PeerName)
			if drops := peer.TxDropped - peerBefore.TxDropped; drops != 0 {
				t.Errorf("%d frames dropped by the veth before any program ran", drops)
			}
			if sent != len(frames) || len(got) != sent || d[record.StatSeen] != uint64(sent) ||
				d[record.StatEmitted] != uint64(sent) || d[record.StatRingFull] != 0 {
				t.Fatalf("sent %d of %d frames, read %d records; seen %d emitted %d ring_full %d",
					sent, len(frames), len(got), d[record.StatSeen], d[record.StatEmitted], d[record.StatRingFull])
			}
			for i, raw := range got {
				r := decode(t, raw)
				if r.p.Ifindex != uint32(v.Index) {
					t.Errorf("record %d: ifindex %d, want %d", i, r.p.Ifindex, v.Index)
				}
				w := want[i]
				r.p.Ifindex = w.p.Ifindex
				if diff := diffFields(r.p, w.p); diff != "" || r.k.L7Kind != w.k.L7Kind || !bytes.Equal(r.k.Snippet, w.k.Snippet) {
					t.Errorf("record %d differs from the test run of the same frame:%s (l7 %d/%d, snippet %d/%d bytes)",
						i, diff, r.k.L7Kind, w.k.L7Kind, len(r.k.Snippet), len(w.k.Snippet))
				}
			}
			t.Logf("%d frames from %d captures: %d records, all equal to the test run's", sent, len(pcaps), len(got))
		})
	}
}

// TestLiveKernelTraffic sends a DNS-looking UDP datagram with the namespaces' own IPv6 stack (not
// a replay) and finds its record on both hooks.
func TestLiveKernelTraffic(t *testing.T) {
	v := nettest.NewVethPair(t, nettest.WithIPv6())
	e := newEnv(t, Config{})
	var links []link.Link
	if err := v.Do(func() error {
		x, err := e.o.AttachXDP(v.Index, XDPAuto)
		if err != nil {
			return err
		}
		links = append(links, x)
		c, err := e.o.AttachTC(v.Index)
		links = append(links, c)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, l := range links {
			if l != nil {
				l.Close()
			}
		}
	}()
	var conn net.PacketConn
	if err := v.Do(func() (err error) {
		conn, err = net.ListenPacket("udp", netip.AddrPortFrom(v.Addr6, 53).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := nettest.Do(v.PeerNS, func() error {
		c, err := net.Dial("udp", netip.AddrPortFrom(v.Addr6, 53).String())
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write(dnsQuery)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, _, err := conn.ReadFrom(buf); err != nil {
		t.Fatalf("datagram did not arrive: %v", err)
	}
	found := 0
	var seen []string
	for _, raw := range e.collect(t, 1<<30) {
		r := decode(t, raw)
		seen = append(seen, fmt.Sprintf("%v->%v proto %d port %d", r.p.Src(), r.p.Dst(), r.p.IPProto, r.p.DstPort))
		if r.p.DstPort == 53 && r.p.Dst() == v.Addr6 && r.p.Src() == v.PeerAddr6 && r.k.L7Kind == schema.L7DNS &&
			bytes.Equal(r.k.Snippet, dnsQuery) && r.p.ParseError == "" {
			found++
		}
	}
	if found != 2 {
		t.Fatalf("found the datagram's record %d times, want 2 (XDP and TC); records: %v", found, seen)
	}
}
