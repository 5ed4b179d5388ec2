package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/packetlake/packetlake/internal/testkit/nettest"
	"github.com/packetlake/packetlake/internal/testkit/testpcaps"
	"github.com/packetlake/packetlake/record"
	"github.com/packetlake/packetlake/schema"
)

var sharedPcaps = testpcaps.Dir()

// oracleMalformed are the frames of the shared captures that are broken on purpose, with the
// parse_error the kernel must record and the layer it stops comparing at (see oracleExpect).
// The kernel records the first failure only: in the two heap-overflow reproducers the IPv4 total
// length already claims more than the frame holds, so that is the reason, not the cut L4 header.
var oracleMalformed = map[string]struct {
	reason string
	stop   int
}{
	"tcpdump/ipv4_invalid_hdr_length.pcap#1":   {"ipv4_bad_ihl", 3},
	"tcpdump/ipv4_invalid_total_length.pcap#1": {"ipv4_bad_total_length", 0}, // parsed on: DNS inside
	"tcpdump/tcp_header_heapoverflow.pcap#1":   {"ipv4_bad_total_length", 5}, // ports of a cut TCP header
	"tcpdump/udp-length-heapoverflow.pcap#1":   {"ipv4_bad_total_length", 5},
	"tcpdump/ip6_frag_asan.pcap#1":             {"ipv6_truncated", 3},
	"tcpdump/ipv6-bad-version.pcap#2":          {"ipv6_bad_version", 3},
	"tcpdump/ipv6-bad-version.pcap#4":          {"ipv6_bad_version", 3},
}

// sharedCaptures lists every capture of the shared tcpdump/ and ja4/ sets, as "dir/name".
func sharedCaptures(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, dir := range []string{"tcpdump", "ja4"} {
		m, err := filepath.Glob(filepath.Join(sharedPcaps, dir, "*.pcap*"))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m {
			out = append(out, dir+"/"+filepath.Base(p))
		}
	}
	if len(out) < 25 {
		t.Fatalf("found %d captures under %s, expected the shared tcpdump/ and ja4/ sets", len(out), sharedPcaps)
	}
	return out
}

// `packetlake decode` over every shared capture: exit 0, one JSON object per packet, every column
// equal to tshark's dissection, and the malformed frames carry their parse_error reason.
//
// Three ja4 captures are BSD loopback (link type NULL): decode gives their packets an Ethernet
// header with zero MACs (pcapfile.ToEthernet, wire length + 10); the test checks its output equals
// the decode of the same packets written out as an Ethernet capture, then compares those.
func TestDecodeFidelity(t *testing.T) {
	// A bound against a hung decode, not a speed claim: ~30 decodes and tshark runs take ~20 s on
	// an idle 2-core VM and several times that on a loaded one.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	tl := oracleTally{}
	var packets, captures, converted int
	seenMalformed := map[string]bool{}
	for _, name := range sharedCaptures(t) {
		path := filepath.Join(sharedPcaps, name)
		frames, lt, err := nettest.ReadPcap(path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var loopbackOut []byte // decode's own output for a loopback capture, if it takes one
		if lt != layers.LinkTypeEthernet {
			stdout, stderr, err := runDecode(ctx, path)
			if err != nil {
				t.Errorf("%s (link type %s): decode of a loopback capture failed: %v\n%s", name, lt, err, stderr)
			}
			loopbackOut = stdout
			path = toEthernetPcap(t, name, frames, lt)
			if frames, _, err = nettest.ReadPcap(path); err != nil {
				t.Fatal(err)
			}
			converted++
		}
		stdout, stderr, err := runDecode(ctx, path)
		if err != nil || stderr != "" {
			t.Errorf("%s: packetlake decode: %v\n%s", name, err, stderr)
			continue
		}
		lines := bytes.Split(bytes.TrimSuffix(stdout, []byte("\n")), []byte("\n"))
		if len(stdout) == 0 {
			lines = nil
		}
		dis := oracleDissect(t, path)
		if len(lines) != len(frames) || len(dis) != len(frames) {
			t.Errorf("%s: %d JSON objects, tshark %d frames, capture %d packets", name, len(lines), len(dis), len(frames))
			continue
		}
		captures++
		if loopbackOut != nil {
			// decode took the loopback capture itself: it must say what it says of the same
			// packets behind an Ethernet header of zero MACs, apart from the iface (file name).
			want := strings.ReplaceAll(string(stdout), `"iface":"`+filepath.Base(path)+`"`, `"iface":"`+filepath.Base(name)+`"`)
			if string(loopbackOut) != want {
				t.Errorf("%s: decode of the loopback capture differs from that of its Ethernet form", name)
			}
		}
		for i, line := range lines {
			where := fmt.Sprintf("%s frame %d", name, i+1)
			p := decodeJSONRecord(t, where, line)
			if p.Seq != uint64(i) || p.Iface != filepath.Base(path) || p.TS != frames[i].Time.UnixNano() ||
				p.SampleRate != 1 || p.Host != "" || p.CollectorID != 0 {
				t.Errorf("%s: seq %d iface %q ts %d sample_rate %d host %q collector_id %d; want seq %d, "+
					"the file name, the capture time %d, 1, empty, 0",
					where, p.Seq, p.Iface, p.TS, p.SampleRate, p.Host, p.CollectorID, i, frames[i].Time.UnixNano())
			}
			key := fmt.Sprintf("%s#%d", name, i+1)
			bad, ok := oracleMalformed[key]
			if ok {
				seenMalformed[key] = true
			}
			e := oracleExpect(t, where, dis[i], bad.stop)
			oracleCheck(t, where, &p, e, bad.reason, tl)
			packets++
		}
	}
	for key := range oracleMalformed {
		if !seenMalformed[key] {
			t.Errorf("malformed frame %s not decoded", key)
		}
	}
	t.Logf("%d captures (%d of them loopback, given an Ethernet header), "+
		"%d packets compared with tshark; non-zero matches by column: %v", captures, converted, packets, tl)
	for _, m := range []struct {
		col  string
		want int
	}{
		{"pkt_len", 650}, {"src_addr", 650}, {"ip_id", 350}, {"src_port", 550}, {"tcp_seq", 380},
		{"icmp_type", 50}, {"vlan_id", 3}, {"inner_vlan_id", 2}, {"flow_label", 20}, {"ip6_ext", 8},
		{"dns_qname", 80}, {"tls_sni", 170}, {"http_host", 8}, {"parse_error", len(oracleMalformed)},
		// TLS over TCP and the QUIC Initials tshark decrypts (41 client Initials with a ClientHello)
		{"tls_alpn", 165}, {"tls_version_max", 170}, {"quic_version", 41}, {"quic_dcid", 41},
		// the inner packets of vxlan.pcap, tcpdump-geneve.pcap and gre-sample.pcap (89; GRE without key)
		{"tunnel_type", 89}, {"tunnel_src", 89}, {"tunnel_depth", 89}, {"tunnel_id", 49},
	} {
		if tl[m.col] < m.want {
			t.Errorf("only %d %s values matched tshark, want at least %d", tl[m.col], m.col, m.want)
		}
	}
}

// runDecode runs `packetlake decode path`.
func runDecode(ctx context.Context, path string) (stdout []byte, stderr string, err error) {
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, env.Bin, "decode", path)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.Bytes(), errb.String(), err
}

// toEthernetPcap writes frames of a non-Ethernet capture as an Ethernet pcap in a test directory.
func toEthernetPcap(t testing.TB, name string, frames []nettest.Frame, lt layers.LinkType) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), strings.TrimSuffix(filepath.Base(name), filepath.Ext(name))+".eth.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(262144, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for i, fr := range frames {
		eth, ok := nettest.ToEthernet(lt, fr.Data)
		if !ok {
			t.Fatalf("%s frame %d: cannot be given an Ethernet header (link type %s)", name, i+1, lt)
		}
		ci := gopacket.CaptureInfo{Timestamp: fr.Time, CaptureLength: len(eth), Length: fr.WireLen - len(fr.Data) + len(eth)}
		if err := w.WritePacket(ci, eth); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// decodeJSONRecord reads one line of `packetlake decode` back into a record.Packet, requiring
// exactly the schema's columns, in schema order.
func decodeJSONRecord(t testing.TB, where string, line []byte) record.Packet {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var keys []string
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		t.Fatalf("%s: not a JSON object: %s", where, line)
	}
	vals := map[string]any{}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatalf("%s: %v: %s", where, err, line)
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%s: %v: %s", where, err, line)
		}
		keys = append(keys, k.(string))
		vals[k.(string)] = v
	}
	var want []string
	for _, c := range schema.Columns {
		want = append(want, c.Name)
	}
	if strings.Join(keys, ",") != strings.Join(want, ",") {
		t.Fatalf("%s: keys %v, want the schema's columns in order %v", where, keys, want)
	}
	var p record.Packet
	pv := reflect.ValueOf(&p).Elem()
	for _, c := range schema.Columns {
		f := pv.FieldByIndex(oraclePacketField[c.Name])
		v := vals[c.Name]
		s, isStr := v.(string)
		switch {
		case c.Name == "ts":
			ts, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				t.Fatalf("%s: ts %q: %v", where, s, err)
			}
			f.SetInt(ts.UnixNano())
		case c.Name == "src_mac" || c.Name == "dst_mac":
			hw, err := net.ParseMAC(s)
			if err != nil || len(hw) != 6 {
				t.Fatalf("%s: %s %q: %v", where, c.Name, s, err)
			}
			var m uint64
			for _, b := range hw {
				m = m<<8 | uint64(b)
			}
			f.SetUint(m)
		case c.CHType == "IPv6":
			a, err := netip.ParseAddr(s)
			if err != nil {
				t.Fatalf("%s: %s %q: %v", where, c.Name, s, err)
			}
			b := a.As16()
			reflect.Copy(f, reflect.ValueOf(b[:]))
		case f.Kind() == reflect.String:
			if !isStr {
				t.Fatalf("%s: %s = %v, want a string", where, c.Name, v)
			}
			f.SetString(s)
		default:
			n, ok := v.(json.Number)
			if !ok {
				t.Fatalf("%s: %s = %v, want a number", where, c.Name, v)
			}
			if f.Kind() == reflect.Int64 {
				i, err := n.Int64()
				if err != nil {
					t.Fatalf("%s: %s = %v: %v", where, c.Name, v, err)
				}
				f.SetInt(i)
				continue
			}
			var u uint64
			if _, err := fmt.Sscan(n.String(), &u); err != nil || f.OverflowUint(u) {
				t.Fatalf("%s: %s = %v: not a %s", where, c.Name, v, f.Type())
			}
			f.SetUint(u)
		}
	}
	return p
}

// TestDecodeDamagedCapture: `packetlake decode` on a real capture with one record header made
// impossible (capture length above the original length) skips that record, names it on stderr,
// and prints every other packet exactly as for the intact file.
func TestDecodeDamagedCapture(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	path := testpcaps.Path("ja4/macos_tcp_flags.pcap")
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the shared captures (testpcaps, $PACKETLAKE_PCAPS): %v", err)
	}
	// The 22nd record header of the little-endian microsecond pcap.
	off, rec := 24, 1
	for ; rec < 22; rec++ {
		off += 16 + int(binary.LittleEndian.Uint32(orig[off+8:]))
	}
	b := bytes.Clone(orig)
	binary.LittleEndian.PutUint32(b[off+8:], binary.LittleEndian.Uint32(b[off+12:])+1)
	damaged := filepath.Join(t.TempDir(), "damaged.pcap")
	if err := os.WriteFile(damaged, b, 0o644); err != nil {
		t.Fatal(err)
	}
	want, _, err := runDecode(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	got, stderr, err := runDecode(ctx, damaged)
	if err != nil {
		t.Fatalf("decode of the damaged capture failed: %v\n%s", err, stderr)
	}
	name := fmt.Sprintf("skipped damaged record 22 at byte %d: capture length", off)
	if !strings.Contains(stderr, name) || !strings.Contains(stderr, "1 damaged records skipped") {
		t.Errorf("stderr does not name the damaged record (%q):\n%s", name, stderr)
	}
	wl, gl := bytes.Split(bytes.TrimSpace(want), []byte("\n")), bytes.Split(bytes.TrimSpace(got), []byte("\n"))
	if len(gl) != len(wl)-1 {
		t.Fatalf("%d packets decoded, want %d (all but the damaged one)", len(gl), len(wl)-1)
	}
	for i := range gl {
		j := i
		if i >= 21 {
			j = i + 1
		}
		w, g := decodeJSONRecord(t, "intact", wl[j]), decodeJSONRecord(t, "damaged", gl[i])
		w.Seq, g.Seq, w.Iface, g.Iface = 0, 0, "", ""
		if !reflect.DeepEqual(w, g) {
			t.Fatalf("packet %d of the damaged capture differs from packet %d of the intact one", i+1, j+1)
		}
	}
	t.Logf("%d packets decoded around the damaged record; stderr: %s", len(gl), strings.TrimSpace(stderr))
}
