package e2e

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os/exec"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/packetlake/packetlake/record"
	"github.com/packetlake/packetlake/schema"
)

// tshark is the oracle of the fidelity tests (live_test.go, decode_test.go): every record is
// compared, column by column, with tshark's dissection of the same frame.
//
// How tshark's fields become expected column values, and the deliberate differences:
//   - tshark runs with TCP reassembly and IP defragmentation off, so that it sees each frame on
//     its own, as the kernel does.
//   - Layers are taken from frame.protocols: the L3 header right after Ethernet and its VLAN tags,
//     the L4 header right after that (IPv6 extension headers in between). Through encapsulations
//     the kernel walks (VXLAN, Geneve, GRE, ERSPAN, IP in IP, MPLS) the innermost packet's
//     layers are taken instead, each field's occurrence numbered by the layers of its name before
//     it (oracleFrame.at), and tunnel_* from the innermost encapsulation and the IP header that
//     carried it. What an ICMP error quotes is ignored, as by the kernel.
//   - L7 columns are expected only where the kernel classifies the payload (record.ClassifyL7:
//     DNS ports 53, 5353, 5355 on either side; a TCP ClientHello; a TCP payload starting with an
//     HTTP method or a UDP one with M-SEARCH/NOTIFY; a UDP QUIC client Initial), with the rules of
//     l7/oracle_test.go: "<Root>" is "", HTTP Host is trimmed of trailing blanks, TLS and HTTP
//     strings are cut at 255 bytes, and a value beyond the 1024-byte snippet (1472 for QUIC) may
//     be missing (an L7 truncated reason instead). tls_alpn is tshark's first ALPN string,
//     tls_version_max its highest non-GREASE supported_version (else the handshake version);
//     tls_ja4 has no tshark field (4.0): FoxIO's reference outputs check it (record/l7). QUIC:
//     tshark decrypts Initials and shows the ClientHello in the packet that completes it, as the
//     decoder's L7State does.
//   - A column tshark gives no value for is expected to be zero, unless marked unknown: eth_type
//     after an 802.1ad tag as the innermost one (tshark has no etype field for it), payload_len of
//     an IPv6 packet whose extension headers tshark did not measure.
//   - Frames the kernel records with an L2-L4 parse error are compared only up to the layer that
//     failed (see stop in oracleExpect).

// oracleFields are what every comparison reads.
var oracleFields = []string{
	"frame.number", "frame.len", "frame.protocols",
	"eth.src", "eth.dst", "eth.type", "vlan.id", "vlan.etype", "ieee8021ad.id",
	"ip.src", "ip.dst", "ip.proto", "ip.ttl", "ip.dsfield", "ip.len", "ip.hdr_len", "ip.id",
	"ip.flags", "ip.frag_offset",
	"ipv6.src", "ipv6.dst", "ipv6.nxt", "ipv6.hlim", "ipv6.tclass", "ipv6.flow", "ipv6.plen",
	"ipv6.hopopts.nxt", "ipv6.hopopts.len", "ipv6.routing.nxt", "ipv6.routing.len",
	"ipv6.dstopts.nxt", "ipv6.dstopts.len",
	"ipv6.fraghdr.nxt", "ipv6.fraghdr.offset", "ipv6.fraghdr.more", "ipv6.fraghdr.ident",
	"tcp.srcport", "tcp.dstport", "tcp.flags", "tcp.seq_raw", "tcp.ack_raw",
	"tcp.window_size_value", "tcp.len", "tcp.payload",
	"udp.srcport", "udp.dstport", "udp.length", "udp.payload",
	"icmp.type", "icmp.code", "icmpv6.type", "icmpv6.code",
	"dns.id", "dns.flags.response", "dns.qry.name", "dns.qry.type", "dns.flags.rcode",
	"dns.count.answers", "dns.resp.type", "dns.resp.class", "dns.a", "dns.aaaa",
	"tls.handshake.type", "tls.handshake.extensions_server_name",
	"tls.handshake.extensions_alpn_str", "tls.handshake.extensions.supported_version", "tls.handshake.version",
	"quic.version", "quic.dcid", "quic.scid",
	"http.request.method", "http.host", "http.request.uri",
	"vxlan.vni", "geneve.vni", "gre.key", "erspan.version", "erspan.spanid", "mpls.label",
	"_ws.malformed",
}

// Control bytes separate fields and occurrences: DNS names and HTTP values may hold commas,
// tabs and the like.
const (
	oracleSep = "\x1f"
	oracleAgg = "\x1e"
)

// oracleFrame is one frame as tshark dissects it: every occurrence of every field, in tree order
// (outer headers first).
type oracleFrame struct {
	num   int
	vals  map[string][]string
	proto []string // frame.protocols split at ':'
}

// first is the first occurrence of f, "" if none.
func (d oracleFrame) first(f string) string {
	if v := d.vals[f]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (d oracleFrame) nth(f string, i int) string {
	if v := d.vals[f]; i < len(v) {
		return v[i]
	}
	return ""
}

// layerOf is the frame.protocols name of the layer field f belongs to.
func layerOf(f string) string {
	for _, l := range []string{"ipv6.hopopts", "ipv6.routing", "ipv6.dstopts", "ipv6.fraghdr"} {
		if strings.HasPrefix(f, l+".") {
			return l
		}
	}
	l, _, _ := strings.Cut(f, ".")
	return l
}

// at is field f of the layer at index pos of frame.protocols: its occurrence numbered by the
// layers of the same name before pos (tshark lists occurrences in tree order, outer first).
func (d oracleFrame) at(f string, pos int) string {
	layer, n := layerOf(f), 0
	for _, l := range d.proto[:min(pos, len(d.proto))] {
		if l == layer {
			n++
		}
	}
	return d.nth(f, n)
}

// oracleDissect runs tshark over a capture and returns every frame's dissection, in order.
func oracleDissect(t testing.TB, capture string) []oracleFrame {
	t.Helper()
	bin, err := exec.LookPath("tshark")
	if err != nil {
		t.Fatalf("tshark not found in PATH: the fidelity tests use it as their oracle (make test installs it)")
	}
	args := []string{"-n", "-r", capture,
		"-o", "tcp.desegment_tcp_streams:FALSE", "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
		"-d", "udp.port==8472,vxlan", // Linux's VXLAN port, which the kernel also takes as VXLAN
		"-T", "fields", "-E", "separator=" + oracleSep, "-E", "aggregator=" + oracleAgg, "-E", "occurrence=a"}
	for _, f := range oracleFields {
		args = append(args, "-e", f)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tshark -r %s: %v\n%s", capture, err, stderr.String())
	}
	var out []oracleFrame
	for line := range strings.Lines(stdout.String()) {
		cols := strings.Split(strings.TrimSuffix(line, "\n"), oracleSep)
		if len(cols) != len(oracleFields) {
			t.Fatalf("tshark -r %s: %d fields in %q, want %d", capture, len(cols), line, len(oracleFields))
		}
		d := oracleFrame{vals: map[string][]string{}}
		for i, f := range oracleFields {
			if cols[i] != "" {
				d.vals[f] = strings.Split(cols[i], oracleAgg)
			}
		}
		d.num, err = strconv.Atoi(d.first("frame.number"))
		if err != nil {
			t.Fatalf("tshark -r %s: frame number %q", capture, d.first("frame.number"))
		}
		d.proto = strings.Split(d.first("frame.protocols"), ":")
		out = append(out, d)
	}
	return out
}

// oracleExpectation is what a record must hold for one tshark frame: column -> uint64 or string.
type oracleExpectation struct {
	want    map[string]any
	unknown map[string]bool // columns not compared, with the reason documented in oracleExpect
	// l7ErrOK are the L7 parse_error reasons allowed for this frame (a value beyond the snippet,
	// a message spread over TCP segments); a kernel reason is never allowed unless expected.
	l7ErrOK map[string]bool
	source  map[string]bool // columns whose value came from a tshark field (for the tallies)
	// malformed: tshark flags the frame malformed, so a parse_error must be expected for it.
	malformed bool
}

// oracleColumns are the record columns compared with tshark. Frame, derived and bookkeeping
// columns (ts, host, iface, collector_id, seq, ifindex, sample_rate) are checked by the tests
// themselves; parse_error separately.
var oracleColumns = func() []string {
	skip := map[string]bool{"ts": true, "host": true, "iface": true, "collector_id": true, "seq": true,
		"ifindex": true, "sample_rate": true, "parse_error": true}
	var cols []string
	for _, c := range schema.Columns {
		if !skip[c.Name] {
			cols = append(cols, c.Name)
		}
	}
	return cols
}()

// oracleExpect derives the expected record of frame d. stop is the layer at which the kernel is
// expected to stop parsing (a parse error the caller knows of): 0 compares every layer; 3 compares
// L2 and only the IP fields tshark shows (the kernel records an IPv4 header's fixed fields even
// when tshark rejects it); 4 compares L2 and L3 but not L4, whose header the kernel needs whole
// while tshark shows the fields of a part; 5 compares L2, L3 and the L4 fields tshark shows (a
// TCP or UDP header cut after its ports: the kernel keeps the ports).
func oracleExpect(t testing.TB, where string, d oracleFrame, stop int) oracleExpectation {
	e := oracleExpectation{want: map[string]any{}, unknown: map[string]bool{}, l7ErrOK: map[string]bool{}, source: map[string]bool{}}
	for _, c := range oracleColumns {
		switch reflect.TypeFor[record.Packet]().FieldByIndex(oraclePacketField[c]).Type.Kind() {
		case reflect.String:
			e.want[c] = ""
		default:
			e.want[c] = uint64(0)
		}
	}
	e.want["src_mac"], e.want["dst_mac"] = "00:00:00:00:00:00", "00:00:00:00:00:00"
	e.want["src_addr"], e.want["dst_addr"] = "::", "::"
	e.want["tunnel_src"], e.want["tunnel_dst"] = "::", "::"
	e.malformed = d.first("_ws.malformed") != ""

	num := func(f, s string) uint64 {
		v, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			t.Fatalf("%s: tshark %s = %q: %v", where, f, s, err)
		}
		return v
	}
	set := func(col string, v any) { e.want[col] = v; e.source[col] = true; delete(e.unknown, col) }
	setNum := func(col, f string) bool {
		s := d.first(f)
		if s == "" {
			return false
		}
		set(col, num(f, s))
		return true
	}
	unknown := func(cols ...string) {
		for _, c := range cols {
			e.unknown[c] = true
		}
	}
	onlyShown := func() oracleExpectation { // compare only what came from tshark
		for _, c := range oracleColumns {
			if !e.source[c] {
				e.unknown[c] = true
			}
		}
		return e
	}

	// L2: Ethernet and VLAN tags, in the order frame.protocols lists them.
	set("pkt_len", num("frame.len", d.first("frame.len")))
	set("src_mac", d.first("eth.src"))
	set("dst_mac", d.first("eth.dst"))
	if len(d.proto) < 2 || d.proto[0] != "eth" || d.proto[1] != "ethertype" {
		return onlyShown() // an 802.3 length frame and the like: addresses and length only
	}
	// l2 reads the Ethernet header at frame.protocols index at (0, or an inner frame's, whose MACs
	// and tags replace the outer ones) and its VLAN tags; it returns the index after them, or -1
	// when the kernel walks no further (a third tag leaves eth_type at its TPID and no L3).
	l2 := func(at int) int {
		set("src_mac", d.at("eth.src", at))
		set("dst_mac", d.at("eth.dst", at))
		e.want["vlan_id"], e.want["inner_vlan_id"] = uint64(0), uint64(0)
		i := at + 2
		var tagIDs []uint64
		etype := d.at("eth.type", at)
		for i+1 < len(d.proto) && (d.proto[i] == "vlan" || d.proto[i] == "ieee8021ad") && d.proto[i+1] == "ethertype" {
			if d.proto[i] == "vlan" {
				tagIDs = append(tagIDs, num("vlan.id", d.at("vlan.id", i)))
				etype = d.at("vlan.etype", i)
			} else {
				tagIDs = append(tagIDs, num("ieee8021ad.id", d.at("ieee8021ad.id", i)))
				etype = "" // tshark has no EtherType field for an 802.1ad tag
			}
			i += 2
		}
		if len(tagIDs) > 2 {
			return -1
		}
		if len(tagIDs) > 0 {
			set("vlan_id", tagIDs[0])
		}
		if len(tagIDs) > 1 {
			set("inner_vlan_id", tagIDs[1])
		}
		if etype != "" {
			set("eth_type", num("eth.type", etype))
		} else {
			unknown("eth_type")
		}
		return i
	}
	i := l2(0)
	if i < 0 {
		return onlyShown()
	}

	// Encapsulations (bpf/parse_tun.h): the innermost packet fills the ordinary columns; the
	// innermost encapsulation tunnel_type and tunnel_id, the IP header that carried it
	// tunnel_src/dst/ttl; tunnel_depth counts them. An inner IP packet without an Ethernet header
	// of its own keeps the outer MACs and has its own EtherType.
	isIP := func(l string) bool { return l == "ip" || l == "ipv6" }
	depth := uint64(0)
	tunnel := func(typ string, id uint64, carrier int) {
		depth++
		set("tunnel_type", typ)
		set("tunnel_id", id)
		set("tunnel_depth", depth)
		if carrier < 0 {
			return // MPLS straight after L2, or inside another encapsulation: the carrier stays
		}
		if d.proto[carrier] == "ip" {
			set("tunnel_src", d.at("ip.src", carrier))
			set("tunnel_dst", d.at("ip.dst", carrier))
			set("tunnel_ttl", num("ip.ttl", d.at("ip.ttl", carrier)))
		} else {
			set("tunnel_src", d.at("ipv6.src", carrier))
			set("tunnel_dst", d.at("ipv6.dst", carrier))
			set("tunnel_ttl", num("ipv6.hlim", d.at("ipv6.hlim", carrier)))
		}
	}
walk:
	for i < len(d.proto) {
		switch {
		case d.proto[i] == "mpls":
			j := i
			for j < len(d.proto) && d.proto[j] == "mpls" {
				j++
			}
			// tshark shows a label stack as one layer: the innermost stack's bottom label is
			// the last one.
			labels := d.vals["mpls.label"]
			tunnel("mpls", num("mpls.label", labels[len(labels)-1]), -1)
			i = j
			if i >= len(d.proto) || !isIP(d.proto[i]) {
				break walk
			}
		case d.proto[i] == "eth" && depth > 0:
			if i = l2(i); i < 0 {
				return onlyShown()
			}
		case isIP(d.proto[i]):
			j := i + 1
			for j < len(d.proto) && strings.HasPrefix(d.proto[j], "ipv6.") {
				j++
			}
			if j >= len(d.proto) {
				break walk
			}
			switch next := d.proto[j]; {
			case isIP(next):
				typ := map[string]string{"ip/ip": "ipip", "ip/ipv6": "6in4", "ipv6/ip": "4in6", "ipv6/ipv6": "ip6ip6"}[d.proto[i]+"/"+next]
				tunnel(typ, 0, i)
				i = j
			case next == "gre" && j+1 < len(d.proto):
				typ, id := "gre", uint64(0)
				if s := d.at("gre.key", j); s != "" {
					id = num("gre.key", s)
				}
				k := j + 1
				if d.proto[k] == "erspan" {
					typ = map[string]string{"1": "erspan2", "2": "erspan3"}[d.at("erspan.version", k)]
					id = num("erspan.spanid", d.at("erspan.spanid", k))
					k++
				}
				tunnel(typ, id, i)
				i = k
			case next == "udp" && j+1 < len(d.proto) && (d.proto[j+1] == "vxlan" || d.proto[j+1] == "geneve"):
				tunnel(d.proto[j+1], num(d.proto[j+1]+".vni", d.at(d.proto[j+1]+".vni", j+1)), i)
				i = j + 2
			default:
				break walk
			}
		default:
			break walk
		}
	}
	if depth > 0 && i < len(d.proto) && isIP(d.proto[i]) && d.proto[i-1] != "ethertype" {
		set("eth_type", map[string]uint64{"ip": 0x0800, "ipv6": 0x86dd}[d.proto[i]])
	}
	l3 := ""
	l3at := i
	if i < len(d.proto) {
		l3 = d.proto[i]
		i++
	}
	// From here on a field is the occurrence of the innermost packet's layer (d.at).
	first := func(f string) string { return d.at(f, l3at) }
	setNum = func(col, f string) bool {
		s := d.at(f, l3at)
		if s == "" {
			return false
		}
		set(col, num(f, s))
		return true
	}

	// L3.
	var ipPayload uint64 // bytes after the IP header and its extension headers, by the length fields
	ipPayloadKnown := false
	switch l3 {
	case "ip":
		set("ip_version", uint64(4))
		if s := first("ip.src"); s != "" {
			set("src_addr", s)
		}
		if s := first("ip.dst"); s != "" {
			set("dst_addr", s)
		}
		setNum("ip_proto", "ip.proto")
		setNum("ttl", "ip.ttl")
		setNum("tos", "ip.dsfield")
		setNum("ip_len", "ip.len")
		setNum("ip_id", "ip.id")
		setNum("ip_flags", "ip.flags")
		// tshark 4.0 shows the fragment offset field in 8-byte units; the column is in bytes.
		if s := first("ip.frag_offset"); s != "" {
			set("frag_offset", num("ip.frag_offset", s)*8)
		}
		if tot, hl := first("ip.len"), first("ip.hdr_len"); tot != "" && hl != "" {
			if a, b := num("ip.len", tot), num("ip.hdr_len", hl); a >= b {
				ipPayload, ipPayloadKnown = a-b, true
			}
		}
	case "ipv6":
		set("ip_version", uint64(6))
		set("src_addr", first("ipv6.src"))
		set("dst_addr", first("ipv6.dst"))
		setNum("ttl", "ipv6.hlim")
		setNum("tos", "ipv6.tclass")
		setNum("flow_label", "ipv6.flow")
		setNum("ip_proto", "ipv6.nxt")
		plen := num("ipv6.plen", first("ipv6.plen"))
		set("ip_len", min(plen+40, 0xffff))
		if stop == 3 {
			break // the kernel stopped before the extension headers
		}
		// Extension headers: their bits, their lengths, and the last next-header value.
		var ext, extLen uint64
		extKnown := true
		for ; i < len(d.proto) && strings.HasPrefix(d.proto[i], "ipv6."); i++ {
			hdr := d.proto[i]
			switch hdr {
			case "ipv6.hopopts", "ipv6.routing", "ipv6.dstopts":
				ext |= map[string]uint64{"ipv6.hopopts": 1, "ipv6.routing": 2, "ipv6.dstopts": 8}[hdr]
				setNum("ip_proto", hdr+".nxt")
				extLen += (num(hdr+".len", first(hdr+".len")) + 1) * 8
			case "ipv6.fraghdr":
				ext |= 4
				setNum("ip_proto", "ipv6.fraghdr.nxt")
				extLen += 8
				setNum("ip_id", "ipv6.fraghdr.ident")
				// tshark shows the offset field in 8-byte units, like IPv4's.
				set("frag_offset", num("ipv6.fraghdr.offset", first("ipv6.fraghdr.offset"))*8)
				setNum("ip_flags", "ipv6.fraghdr.more")
			default:
				extKnown = false
			}
		}
		if ext != 0 {
			set("ip6_ext", ext)
		}
		if extKnown && plen >= extLen {
			ipPayload, ipPayloadKnown = plen-extLen, true
		}
	default:
		return e // not IP: L2 only, every other column zero
	}
	if stop == 3 {
		return onlyShown()
	}
	if stop == 4 {
		// L4 is not compared; payload_len, the only L3-derived L4 column, neither.
		for _, c := range oracleColumns {
			if !e.source[c] || c == "payload_len" {
				e.unknown[c] = true
			}
		}
		return e
	}

	// L4.
	l4 := ""
	if i < len(d.proto) {
		l4 = d.proto[i]
	}
	var payload []byte
	switch l4 {
	case "tcp":
		setNum("src_port", "tcp.srcport")
		setNum("dst_port", "tcp.dstport")
		setNum("tcp_flags", "tcp.flags")
		setNum("tcp_seq", "tcp.seq_raw")
		setNum("tcp_ack", "tcp.ack_raw")
		setNum("tcp_window", "tcp.window_size_value")
		setNum("payload_len", "tcp.len")
		payload = oracleHex(t, where, first("tcp.payload"))
	case "udp":
		setNum("src_port", "udp.srcport")
		setNum("dst_port", "udp.dstport")
		if s := first("udp.length"); s != "" && num("udp.length", s) >= 8 {
			set("payload_len", num("udp.length", s)-8)
		}
		payload = oracleHex(t, where, first("udp.payload"))
	case "icmp", "icmpv6":
		setNum("icmp_type", l4+".type")
		setNum("icmp_code", l4+".code")
		if ipPayloadKnown && ipPayload >= 8 {
			set("payload_len", ipPayload-8)
		} else {
			unknown("payload_len")
		}
	default:
		// Another protocol, or a non-first fragment: everything after the IP headers.
		if ipPayloadKnown {
			set("payload_len", min(ipPayload, 0xffff))
		} else {
			unknown("payload_len")
		}
	}
	if stop == 5 {
		// A TCP/UDP header cut short: the kernel keeps its ports, tshark shows what it has.
		for _, c := range oracleColumns {
			if !e.source[c] || c == "payload_len" {
				e.unknown[c] = true
			}
		}
		return e
	}
	if l4 != "tcp" && l4 != "udp" || len(payload) == 0 {
		return e
	}

	// L7, where the kernel's classification sends the payload to a parser.
	var sport, dport uint16
	if v, ok := e.want["src_port"].(uint64); ok {
		sport = uint16(v)
	}
	if v, ok := e.want["dst_port"].(uint64); ok {
		dport = uint16(v)
	}
	proto := uint8(6)
	if l4 == "udp" {
		proto = 17
	}
	kind := record.ClassifyL7(proto, sport, dport, payload)
	max := schema.SnippetHeadMax
	if kind == schema.L7QUIC || kind == schema.L7TLS { // bpf/snippet.h: a ClientHello segment whole
		max = schema.SnippetMax
	}
	snip := payload[:min(len(payload), max)]
	cut := len(payload) > max
	// hello sets the ClientHello columns from tshark's dissection (TLS over TCP or in QUIC).
	hello := func() {
		set("tls_sni", oracleCapField(oracleASCII(d.first("tls.handshake.extensions_server_name"))))
		set("tls_alpn", oracleCapField(oracleASCII(d.first("tls.handshake.extensions_alpn_str"))))
		var vmax uint64
		for _, v := range d.vals["tls.handshake.extensions.supported_version"] {
			if n := num("supported_version", v); n&0x0f0f != 0x0a0a && n > vmax {
				vmax = n
			}
		}
		if vmax == 0 {
			vmax = num("tls.handshake.version", d.first("tls.handshake.version"))
		}
		set("tls_version_max", vmax)
		unknown("tls_ja4")
		if cut {
			unknown("tls_sni", "tls_alpn", "tls_version_max")
			e.l7ErrOK["tls_truncated"] = true
		}
	}
	switch {
	case kind == schema.L7QUIC:
		setNum("quic_version", "quic.version")
		set("quic_dcid", strings.ReplaceAll(d.first("quic.dcid"), ":", ""))
		set("quic_scid", strings.ReplaceAll(d.first("quic.scid"), ":", ""))
		if d.first("tls.handshake.type") == "1" {
			hello()
		} else if cut {
			unknown("tls_sni", "tls_alpn", "tls_version_max", "tls_ja4")
		}
		if d.first("quic.version") == "" {
			unknown("quic_version", "quic_dcid", "quic_scid") // tshark did not take it for QUIC
			e.l7ErrOK["quic_bad_packet"], e.l7ErrOK["quic_truncated"] = true, true
		}
	case kind == schema.L7DNS:
		if d.first("dns.id") == "" {
			// Not a DNS message to tshark either (a TCP segment without a message start).
			unknown("dns_id", "dns_is_response", "dns_qname", "dns_qtype", "dns_rcode", "dns_answers", "dns_answer_addrs")
			e.l7ErrOK["dns_truncated"], e.l7ErrOK["dns_bad_name"] = true, true
			return e
		}
		if d.first("dns.flags.response") == "1" {
			set("dns_answer_addrs", oracleAnswerAddrs(d))
		}
		setNum("dns_id", "dns.id")
		setNum("dns_is_response", "dns.flags.response")
		setNum("dns_answers", "dns.count.answers")
		if !setNum("dns_rcode", "dns.flags.rcode") {
			unknown("dns_rcode") // tshark shows the rcode of responses only
		}
		if q := d.first("dns.qry.name"); q != "" {
			if q == "<Root>" {
				q = ""
			}
			set("dns_qname", q)
			setNum("dns_qtype", "dns.qry.type")
		}
		if cut {
			unknown("dns_qname", "dns_qtype", "dns_answer_addrs")
			e.l7ErrOK["dns_truncated"] = true
		}
	case kind == schema.L7TLS:
		switch d.first("tls.handshake.type") {
		case "1":
			hello()
		case "":
			// tshark sees no handshake message here (an encrypted one, or a record continued
			// from another segment): we must not invent a name; the parser may find it short.
			e.l7ErrOK["tls_truncated"], e.l7ErrOK["tls_bad_record"] = true, true
		}
	case kind == schema.L7HTTP:
		if d.first("http.request.method") == "" {
			unknown("http_method", "http_host", "http_path")
			e.l7ErrOK["http_truncated"] = true
			return e
		}
		set("http_method", oracleCapField(oracleASCII(d.first("http.request.method"))))
		set("http_host", oracleCapField(strings.TrimRight(oracleASCII(d.first("http.host")), " \t")))
		set("http_path", oracleCapField(oracleASCII(d.first("http.request.uri"))))
		if d.first("http.host") == "" && !oracleHeadersEnd(snip) || cut {
			// The headers go on in the next segment (tshark shows no Host either), or past the
			// snippet: the parser reports them truncated.
			e.l7ErrOK["http_truncated"] = true
			if cut {
				unknown("http_host")
			}
		}
	}
	return e
}

// oracleTally counts, per column, the non-zero values that came from tshark and matched.
type oracleTally map[string]int

func (tl oracleTally) String() string {
	keys := make([]string, 0, len(tl))
	for k := range tl {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return slices.Index(oracleColumns, keys[i]) < slices.Index(oracleColumns, keys[j])
	})
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d ", k, tl[k])
	}
	return strings.TrimSpace(b.String())
}

// oracleCheck compares record p with e, reporting each differing column, and counts the matches in
// tl. wantErr is the parse_error the frame must carry (an expected reason), or "" for none
// beyond the L7 reasons e allows. It returns the number of differences.
func oracleCheck(t testing.TB, where string, p *record.Packet, e oracleExpectation, wantErr string, tl oracleTally) int {
	t.Helper()
	bad := 0
	for _, c := range oracleColumns {
		if e.unknown[c] {
			continue
		}
		got, want := oracleColumnValue(p, c), e.want[c]
		if got != want {
			bad++
			t.Errorf("%s: %s = %v, tshark says %v", where, c, got, want)
			continue
		}
		if e.source[c] && want != uint64(0) && want != "" {
			tl[c]++ // counted only when tshark gave a value that is not zero or empty
		}
	}
	if e.malformed && wantErr == "" {
		bad++
		t.Errorf("%s: tshark finds the frame malformed, but no parse error is expected for it", where)
	}
	switch {
	case p.ParseError == wantErr:
		if wantErr != "" {
			tl["parse_error"]++
		}
	case wantErr == "" && e.l7ErrOK[p.ParseError]:
		tl["l7_error_allowed"]++
	default:
		bad++
		t.Errorf("%s: parse_error %q, want %q (allowed L7 reasons: %v)", where, p.ParseError, wantErr, e.l7ErrOK)
	}
	return bad
}

// oracleColumnValue is column c of p in the form oracleExpect uses: MACs and addresses as text
// (IPv4 unmapped), numbers as uint64, strings as they are.
func oracleColumnValue(p *record.Packet, c string) any {
	switch c {
	case "src_mac":
		return oracleMAC(p.SrcMAC)
	case "dst_mac":
		return oracleMAC(p.DstMAC)
	case "src_addr":
		return netip.AddrFrom16(p.SrcAddr).Unmap().String()
	case "dst_addr":
		return netip.AddrFrom16(p.DstAddr).Unmap().String()
	case "tunnel_src":
		return netip.AddrFrom16(p.TunnelSrc).Unmap().String()
	case "tunnel_dst":
		return netip.AddrFrom16(p.TunnelDst).Unmap().String()
	}
	v := reflect.ValueOf(p).Elem()
	f := v.FieldByIndex(oraclePacketField[c])
	switch f.Kind() {
	case reflect.String:
		return f.String()
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return f.Uint()
	}
	panic("column " + c + " of unexpected kind " + f.Kind().String())
}

var oraclePacketField = func() map[string][]int {
	m := map[string][]int{}
	t := reflect.TypeFor[record.Packet]()
	for i := range t.NumField() {
		m[t.Field(i).Tag.Get("col")] = []int{i}
	}
	return m
}()

func oracleMAC(m uint64) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", byte(m>>40), byte(m>>32), byte(m>>24), byte(m>>16), byte(m>>8), byte(m))
}

func oracleHex(t testing.TB, where, s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, ":", ""))
	if err != nil {
		t.Fatalf("%s: payload hex: %v", where, err)
	}
	return b
}

// oracleCapField cuts a tshark value as the L7 parsers cut theirs: at 255 bytes, not inside a UTF-8
// sequence.
func oracleCapField(s string) string {
	const maxFieldLen = 255
	for i := 0; i < len(s); {
		_, w := utf8.DecodeRuneInString(s[i:])
		if i+w > maxFieldLen {
			return s[:i]
		}
		i += w
	}
	return s
}

// oracleASCII undoes the escape tshark's field output adds to TLS and HTTP strings (a tab
// becomes `\t`).
func oracleASCII(s string) string { return strings.ReplaceAll(s, `\t`, "\t") }

func oracleHeadersEnd(b []byte) bool {
	return bytes.Contains(b, []byte("\n\n")) || bytes.Contains(b, []byte("\n\r\n"))
}

// oracleAnswerAddrs is dns_answer_addrs as tshark shows the message: the A and AAAA values of
// the answer records of class IN, in record order, space-separated. tshark lists the records of
// all three sections in order (answers first) and the A/AAAA values in the same order.
func oracleAnswerAddrs(d oracleFrame) string {
	n, _ := strconv.Atoi(d.first("dns.count.answers"))
	types, classes := d.vals["dns.resp.type"], d.vals["dns.resp.class"]
	var out []string
	var ia, i6 int
	for i := 0; i < n && i < len(types); i++ {
		in := i < len(classes) && classes[i] == "0x0001"
		switch types[i] {
		case "1":
			if in && ia < len(d.vals["dns.a"]) {
				out = append(out, d.vals["dns.a"][ia])
			}
			ia++
		case "28":
			if in && i6 < len(d.vals["dns.aaaa"]) {
				out = append(out, d.vals["dns.aaaa"][i6])
			}
			i6++
		}
	}
	return strings.Join(out, " ")
}
