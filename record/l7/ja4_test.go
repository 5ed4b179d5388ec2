package l7

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/packetlake/packetlake/internal/pcapfile"
	"github.com/packetlake/packetlake/schema"
)

// ja4Key names one ClientHello: capture, transport, addresses, ports and its rank among the
// hellos of its connection (from 1).
type ja4Key struct {
	capture, transport, src, srcPort, dst, dstPort string
	nth                                            int
}

// readJA4Expected reads testdata/ja4/expected.tsv (FoxIO's reference outputs; see its README).
func readJA4Expected(t *testing.T) map[ja4Key]string {
	f, err := os.Open("testdata/ja4/expected.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[ja4Key]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "#") {
			continue
		}
		c := strings.Split(sc.Text(), "\t")
		var k ja4Key
		k.capture, k.transport, k.src, k.srcPort, k.dst, k.dstPort = c[0], c[1], c[2], c[3], c[4], c[5]
		fmt.Sscan(c[6], &k.nth)
		want[k] = c[7]
	}
	return want
}

// helloPayloads returns, per ClientHello of a capture, its key and the bytes the kernel would
// copy (the first schema.SnippetHeadMax bytes of a TCP payload, SnippetMax of a QUIC one): TCP payloads the kernel classifies as a
// ClientHello, and UDP payloads to or from port 443 (QUIC).
func helloPayloads(t *testing.T, path string) (keys []ja4Key, payloads [][]byte) {
	frames, lt, err := pcapfile.ReadAll(path)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[ja4Key]int{}
	for _, fr := range frames {
		eth, ok := pcapfile.ToEthernet(lt, fr.Data)
		if !ok {
			continue
		}
		pkt := gopacket.NewPacket(eth, layers.LayerTypeEthernet, gopacket.NoCopy)
		nl := pkt.NetworkLayer()
		if nl == nil {
			continue
		}
		k := ja4Key{capture: filepath.Base(path), src: nl.NetworkFlow().Src().String(), dst: nl.NetworkFlow().Dst().String()}
		var payload []byte
		switch l4 := pkt.TransportLayer().(type) {
		case *layers.TCP:
			if !LooksLikeTLSClientHello(l4.Payload) && !LooksLikeCCSThenHandshake(l4.Payload) {
				continue
			}
			k.transport, k.srcPort, k.dstPort, payload = "tcp", fmt.Sprint(uint16(l4.SrcPort)), fmt.Sprint(uint16(l4.DstPort)), l4.Payload
		case *layers.UDP:
			if l4.DstPort != 443 {
				continue
			}
			k.transport, k.srcPort, k.dstPort, payload = "udp", fmt.Sprint(uint16(l4.SrcPort)), fmt.Sprint(uint16(l4.DstPort)), l4.Payload
		default:
			continue
		}
		seen[k]++
		k.nth = seen[k]
		keys = append(keys, k)
		cut := schema.SnippetHeadMax
		if k.transport == "udp" {
			cut = schema.SnippetMax
		}
		payloads = append(payloads, payload[:min(len(payload), cut)])
	}
	return keys, payloads
}

// TestJA4FoxIOReference: JA4 of every TLS-over-TCP ClientHello of the shared ja4 captures equals
// FoxIO's published value, computed from the bytes the kernel copies.
func TestJA4FoxIOReference(t *testing.T) {
	want := readJA4Expected(t)
	captures, _ := filepath.Glob(filepath.Join(pcapDir, "ja4", "*.pcap*"))
	if len(captures) == 0 {
		t.Fatalf("no captures under %s (the shared captures: $PACKETLAKE_PCAPS)", pcapDir)
	}
	matched, tcpWanted, others := 0, 0, 0
	for k := range want {
		if k.transport == "tcp" {
			tcpWanted++
		}
	}
	for _, c := range captures {
		keys, payloads := helloPayloads(t, c)
		for i, k := range keys {
			if k.transport != "tcp" {
				continue
			}
			h, err := ParseClientHelloRecord(payloads[i])
			w, ok := want[k]
			if !ok {
				others++
				t.Logf("%v: no reference; JA4 %q (err %v)", k, h.JA4, err)
				continue
			}
			if err != nil || h.JA4 != w {
				t.Errorf("%v: JA4 %q (err %v), FoxIO %q", k, h.JA4, err, w)
				continue
			}
			matched++
		}
	}
	t.Logf("TLS over TCP: %d of %d FoxIO references matched; %d hellos without a reference", matched, tcpWanted, others)
	if matched != tcpWanted {
		t.Errorf("matched %d of %d references", matched, tcpWanted)
	}
}

// TestJA4Rules: the parts of the specification the captures do not exercise.
func TestJA4Rules(t *testing.T) {
	for _, c := range []struct {
		alpn string
		want string
	}{
		{"", "00"}, {"h2", "h2"}, {"http/1.1", "h1"}, {"h", "hh"},
		{"\xab", "ab"}, {"\xab\xcd", "ad"}, {"0\xab", "3b"}, {"01\xab\xcd", "3d"}, {"0\xab\xcd1", "01"},
	} {
		if got := string(appendALPN(nil, []byte(c.alpn))); got != c.want {
			t.Errorf("ALPN %q: %q, want %q", c.alpn, got, c.want)
		}
	}
	// The specification's worked example (technical_details/JA4.md): its extension list and
	// signature algorithms hash to e5627efa2ab1, without signature algorithms to 6d807ffa2a79.
	exts := []uint16{0x0005, 0x000a, 0x000b, 0x000d, 0x0012, 0x0015, 0x0017, 0x001b, 0x0023, 0x002b, 0x002d, 0x0033, 0x4469, 0xff01}
	sig := []byte{4, 3, 8, 4, 4, 1, 5, 3, 8, 5, 5, 1, 8, 6, 6, 1}
	if got := string(appendHash12(nil, exts, sig)); got != "e5627efa2ab1" {
		t.Errorf("extension hash %s, want e5627efa2ab1", got)
	}
	if got := string(appendHash12(nil, exts, nil)); got != "6d807ffa2a79" {
		t.Errorf("extension hash without signature algorithms %s, want 6d807ffa2a79", got)
	}
	if !isGREASE(0x0a0a) || !isGREASE(0xfafa) || isGREASE(0x0a1a) || isGREASE(0x1301) {
		t.Error("GREASE test wrong")
	}
}
