// Package schema is the one definition of the packet record. Everything else is derived from the
// two tables below: the C struct the BPF program writes (bpf/pl_record.h, generated), the Go
// decoder's offsets (record/kernel_gen.go, generated), the Arrow schema and the ClickHouse
// CREATE TABLE (functions of this package). Tests fail on any drift between them and the
// compiled BPF object's BTF.
package schema

// Source says where a column's value comes from on its way to ClickHouse.
type Source int

const (
	// Kernel columns are members of struct pl_record, written by the BPF program.
	Kernel Source = iota
	// Frame columns come from the collector's Kafka frame header (who captured the packet).
	Frame
	// L7 columns are parsed in user space from the payload snippet the BPF program copies.
	L7
	// Derived columns are computed by the decoder from other fields (ts from ts_ns + clock offset).
	Derived
)

// Column is one column of the packets table, one Arrow field and one JSON key of `packetlake decode`.
type Column struct {
	Name   string // ClickHouse column, Arrow field and JSON key
	CHType string // ClickHouse type
	Source Source
	Doc    string
}

// Columns is the stored packet record, in table order.
var Columns = []Column{
	{"ts", "DateTime64(9)", Derived, "capture time, UTC (kernel monotonic clock + collector's wall-clock offset; pcap time for captures)"},
	{"host", "LowCardinality(String)", Frame, "host name of the collector"},
	{"iface", "LowCardinality(String)", Frame, "interface the packet arrived on"},
	{"collector_id", "UInt64", Frame, "random id of the collector run; (host, collector_id, seq) identifies a row"},
	{"seq", "UInt64", Frame, "per-collector-run sequence number of the record"},
	{"ifindex", "UInt32", Kernel, "kernel interface index"},
	{"pkt_len", "UInt32", Kernel, "length of the frame on the wire, bytes"},
	{"src_mac", "UInt64", Kernel, "source MAC as a 48-bit number (MACNumToString for text)"},
	{"dst_mac", "UInt64", Kernel, "destination MAC as a 48-bit number"},
	{"eth_type", "UInt16", Kernel, "EtherType after all VLAN tags"},
	{"vlan_id", "UInt16", Kernel, "outer VLAN id (802.1Q or 802.1ad), 0 if untagged"},
	{"inner_vlan_id", "UInt16", Kernel, "inner VLAN id of QinQ, 0 if none"},
	{"ip_version", "UInt8", Kernel, "4, 6, or 0 for non-IP"},
	{"src_addr", "IPv6", Kernel, "source address; IPv4 as IPv4-mapped IPv6"},
	{"dst_addr", "IPv6", Kernel, "destination address; IPv4 as IPv4-mapped IPv6"},
	{"ip_proto", "UInt8", Kernel, "transport protocol (after IPv6 extension headers)"},
	{"ttl", "UInt8", Kernel, "IPv4 TTL or IPv6 hop limit"},
	{"tos", "UInt8", Kernel, "IPv4 TOS or IPv6 traffic class"},
	{"ip_len", "UInt16", Kernel, "IPv4 total length, or IPv6 payload length + 40"},
	{"ip_id", "UInt32", Kernel, "IPv4 identification, or IPv6 fragment header identification"},
	{"ip_flags", "UInt8", Kernel, "bit 0 MF, bit 1 DF, bit 2 reserved (IPv4); bit 0 M for IPv6 fragments"},
	{"frag_offset", "UInt16", Kernel, "fragment offset in bytes"},
	{"flow_label", "UInt32", Kernel, "IPv6 flow label"},
	{"ip6_ext", "UInt8", Kernel, "IPv6 extension headers seen: 1 hop-by-hop, 2 routing, 4 fragment, 8 destination options, 16 AH, 32 other"},
	{"src_port", "UInt16", Kernel, "TCP/UDP source port"},
	{"dst_port", "UInt16", Kernel, "TCP/UDP destination port"},
	{"tcp_flags", "UInt16", Kernel, "TCP flags, 12 bits: FIN 0x1 SYN 0x2 RST 0x4 PSH 0x8 ACK 0x10 URG 0x20 ECE 0x40 CWR 0x80 AE 0x100, reserved 0xe00"},
	{"tcp_seq", "UInt32", Kernel, "TCP sequence number (raw)"},
	{"tcp_ack", "UInt32", Kernel, "TCP acknowledgment number (raw)"},
	{"tcp_window", "UInt16", Kernel, "TCP window (unscaled)"},
	{"icmp_type", "UInt8", Kernel, "ICMP or ICMPv6 type"},
	{"icmp_code", "UInt8", Kernel, "ICMP or ICMPv6 code"},
	{"payload_len", "UInt16", Kernel, "L4 payload length in bytes, from the headers"},
	{"tunnel_type", "LowCardinality(String)", Derived, "innermost encapsulation the recorded packet was found in: a name from TunnelTypes, '' if none; the L2-L7 columns are the inner packet's"},
	{"tunnel_id", "UInt32", Kernel, "VXLAN/Geneve VNI, GRE key, ERSPAN session id or MPLS bottom label of that encapsulation; 0 if it has none"},
	{"tunnel_src", "IPv6", Kernel, "source address of the IP header that carried that encapsulation; IPv4 as IPv4-mapped IPv6; :: for MPLS straight over Ethernet"},
	{"tunnel_dst", "IPv6", Kernel, "destination address of that IP header"},
	{"tunnel_ttl", "UInt8", Kernel, "TTL or hop limit of that IP header"},
	{"tunnel_depth", "UInt8", Kernel, "encapsulations walked to reach the recorded packet (0: not tunnelled; VXLAN in GRE: 2)"},
	{"dns_id", "UInt16", L7, "DNS transaction id"},
	{"dns_is_response", "UInt8", L7, "1 for a DNS response"},
	{"dns_qname", "LowCardinality(String)", L7, "first question's name, dotted, no trailing dot"},
	{"dns_qtype", "UInt16", L7, "first question's type"},
	{"dns_rcode", "UInt8", L7, "DNS response code"},
	{"dns_answers", "UInt16", L7, "DNS answer count"},
	{"dns_answer_addrs", "String", L7, "addresses of the A and AAAA answers of a response that the snippet holds whole, space-separated (IPv4 dotted): what passive DNS ties dns_qname to"},
	{"tls_sni", "LowCardinality(String)", L7, "TLS ClientHello server name (TLS over TCP, or QUIC's ClientHello)"},
	{"tls_ja4", "LowCardinality(String)", L7, "JA4 fingerprint of the ClientHello (FoxIO; 't' TLS over TCP, 'q' QUIC); '' unless the whole hello was read"},
	{"tls_alpn", "LowCardinality(String)", L7, "first ALPN protocol offered (the one JA4 encodes, the client's preference)"},
	{"tls_version_max", "UInt16", L7, "highest TLS version offered: supported_versions without GREASE, else the legacy version (0x0304 = 772 is TLS 1.3)"},
	{"quic_version", "UInt32", L7, "QUIC version of a client Initial packet (1, or 0x6b3343cf = 1798521807 for v2); 0 if not QUIC"},
	{"quic_dcid", "String", L7, "QUIC Destination Connection ID of a client Initial, hex (the Initial keys derive from it)"},
	{"quic_scid", "String", L7, "QUIC Source Connection ID of a client Initial, hex"},
	{"http_method", "LowCardinality(String)", L7, "HTTP/1.x request method"},
	{"http_host", "String", L7, "HTTP/1.x Host header"},
	{"http_path", "String", L7, "HTTP/1.x request target"},
	{"sample_rate", "UInt32", Kernel, "1 in N packets of this kind was recorded; scale counts by it"},
	{"parse_error", "LowCardinality(String)", Derived, "why parsing stopped early ('' if it did not): a reason from ParseErrors"},
}

// CField is one member of struct pl_record, the fixed header the BPF program writes into the ring
// buffer, or of struct pl_record_tunnel, the trailer that follows it only for tunnelled packets.
// A record is pl_record, then pl_record_tunnel if tunnel_depth != 0, then snippet_len bytes of L4
// payload for L7 parsing in user space. Members are ordered by alignment so the structs have no
// padding (a test checks it).
type CField struct {
	Name   string // C member name; the column it feeds unless Column says otherwise
	CType  string // __u8, __u16, __u32 or __u64
	Array  int    // > 0 for a byte array
	Column string // column fed by this member ("" = same name, "-" = none)
	Doc    string
}

// KernelRecord is struct pl_record, in member order.
var KernelRecord = []CField{
	{"ts_ns", "__u64", 0, "ts", "bpf_ktime_get_ns() at capture"},
	{"src_addr", "__u8", 16, "", "network order; IPv4 as ::ffff:a.b.c.d"},
	{"dst_addr", "__u8", 16, "", "network order; IPv4 as ::ffff:a.b.c.d"},
	{"src_mac", "__u8", 6, "", "network order"},
	{"dst_mac", "__u8", 6, "", "network order"},
	{"ifindex", "__u32", 0, "", ""},
	{"pkt_len", "__u32", 0, "", ""},
	{"flow_label", "__u32", 0, "", ""},
	{"ip_id", "__u32", 0, "", ""},
	{"tcp_seq", "__u32", 0, "", ""},
	{"tcp_ack", "__u32", 0, "", ""},
	{"sample_rate", "__u32", 0, "", ""},
	{"tunnel_id", "__u32", 0, "", ""},
	{"eth_type", "__u16", 0, "", ""},
	{"vlan_id", "__u16", 0, "", ""},
	{"inner_vlan_id", "__u16", 0, "", ""},
	{"ip_len", "__u16", 0, "", ""},
	{"frag_offset", "__u16", 0, "", ""},
	{"src_port", "__u16", 0, "", ""},
	{"dst_port", "__u16", 0, "", ""},
	{"tcp_flags", "__u16", 0, "", ""},
	{"tcp_window", "__u16", 0, "", ""},
	{"payload_len", "__u16", 0, "", ""},
	{"snippet_len", "__u16", 0, "-", "bytes of L4 payload at the end of the record (after the trailer, if any)"},
	{"ip_version", "__u8", 0, "", ""},
	{"ip_proto", "__u8", 0, "", ""},
	{"ttl", "__u8", 0, "", ""},
	{"tos", "__u8", 0, "", ""},
	{"ip_flags", "__u8", 0, "", ""},
	{"ip6_ext", "__u8", 0, "", ""},
	{"icmp_type", "__u8", 0, "", ""},
	{"icmp_code", "__u8", 0, "", ""},
	{"parse_error", "__u8", 0, "", "kernel reason code, index into ParseErrors"},
	{"l7_kind", "__u8", 0, "-", "what the snippet looks like: L7None, L7DNS, L7TLS, L7HTTP, L7QUIC"},
	{"tunnel_type", "__u8", 0, "", "index into TunnelTypes"},
	{"tunnel_ttl", "__u8", 0, "", ""},
	{"tunnel_depth", "__u8", 0, "", "0: no trailer follows; else struct pl_record_tunnel does"},
	{"reserved", "__u8", 0, "-", "zero (keeps the struct free of padding)"},
}

// KernelTunnel is struct pl_record_tunnel, in member order: the tunnel columns too big to pay for
// on every packet (32 of the 40 bytes issue 17 added, ~4 ns a record in the kernel's memset and
// batch copy, bpf/BENCH.md). It follows pl_record exactly when tunnel_depth != 0 -- the kernel
// writes both together, also for a truncated MPLS stack (depth 1, addresses ::) -- and its
// columns are zero when it is absent, which is what they were on such packets before.
// tunnel_id, tunnel_type, tunnel_ttl and tunnel_depth stay in pl_record: they fill its last 8
// bytes, which 8-byte alignment would leave as padding anyway, and the flow and TLS maps key on
// tunnel_id.
var KernelTunnel = []CField{
	{"tunnel_src", "__u8", 16, "", "network order; IPv4 as ::ffff:a.b.c.d"},
	{"tunnel_dst", "__u8", 16, "", "network order; IPv4 as ::ffff:a.b.c.d"},
}

// KernelRecordSize is sizeof(struct pl_record): the bytes of KernelRecord laid out by Layout,
// which fails if they do not add up to it. bpf sizes its batches by it; record/kernel_gen.go is
// generated with the same number. 152 before the tunnel trailer (one struct with the tunnel
// addresses in it; record/legacy.go still reads frames of that layout), 112 before issue 17.
const KernelRecordSize = 120

// KernelTunnelSize is sizeof(struct pl_record_tunnel), the trailer of tunnelled packets.
const KernelTunnelSize = 32

// SnippetHeadMax bounds the L4 payload bytes the BPF program copies after the struct for DNS
// and HTTP. The HTTP Host header sits beyond 512 bytes in some real requests, so 1024.
const SnippetHeadMax = 1024

// SnippetMax bounds any snippet: a QUIC client Initial is copied whole up to the UDP payload of a
// 1500-byte IPv4 packet. Clients pad Initials to 1200 bytes or more (Chrome 1250) and scatter
// their CRYPTO frames over the whole packet, so a 1024-byte head loses parts of the ClientHello.
// TCP segments with (part of) a TLS ClientHello are copied up to it too: a post-quantum hello is
// ~2 KB, its first segment full, and every byte of it is needed for JA4.
const SnippetMax = 1472

// Values of pl_record.l7_kind: which user-space parser reads the snippet.
const (
	L7None = 0
	L7DNS  = 1 // UDP or TCP with port 53, 5353 (mDNS) or 5355 (LLMNR) on either side
	L7TLS  = 2 // TCP payload starting with a TLS ClientHello record (or ChangeCipherSpec, then a handshake record)
	L7HTTP = 3 // TCP payload starting with an HTTP/1.x method and a space; UDP payload starting M-SEARCH or NOTIFY
	L7QUIC = 4 // UDP payload starting with a QUIC v1/v2 client Initial header
	// L7TLSCont: TCP payload that continues a TLS handshake record begun in an earlier segment of
	// the flow (bpf/tls_cont.h); user space joins it to that segment by tcp_seq (record.L7State).
	L7TLSCont = 5
)

// ParseErrors are the reasons a parse stopped early, by code. Codes below 64 are set by the BPF
// program; codes from 64 by the user-space L7 parsers. The column stores the name.
var ParseErrors = map[uint8]string{
	0:  "",
	1:  "eth_truncated",
	2:  "vlan_truncated",
	3:  "ipv4_truncated",
	4:  "ipv4_bad_ihl",
	5:  "ipv4_bad_total_length",
	6:  "ipv6_truncated",
	7:  "ipv6_bad_version",
	8:  "ipv6_ext_truncated",
	9:  "ipv6_ext_too_many",
	10: "tcp_truncated",
	11: "tcp_bad_data_offset",
	12: "udp_truncated",
	13: "udp_bad_length",
	14: "icmp_truncated",
	15: "ipv4_bad_version",
	16: "tunnel_truncated",
	17: "tunnel_too_deep",
	64: "dns_truncated",
	65: "dns_bad_name",
	66: "tls_truncated",
	67: "tls_bad_record",
	68: "http_truncated",
	69: "http_bad_request",
	70: "quic_truncated",
	71: "quic_bad_packet",
}

// TunnelTypes are the values of tunnel_type, by the kernel's code (pl_record.tunnel_type).
var TunnelTypes = map[uint8]string{
	0:  "",
	1:  "vxlan",  // UDP 4789 or 8472, the inner Ethernet frame after 8 bytes
	2:  "geneve", // UDP 6081, with options; Ethernet, IPv4 or IPv6 inside
	3:  "gre",    // GRE (key, checksum, sequence) carrying IPv4, IPv6, Ethernet (0x6558) or MPLS
	4:  "erspan2",
	5:  "erspan3",
	6:  "ipip",   // IPv4 in IPv4 (protocol 4)
	7:  "6in4",   // IPv6 in IPv4 (protocol 41)
	8:  "4in6",   // IPv4 in IPv6 (next header 4)
	9:  "ip6ip6", // IPv6 in IPv6 (next header 41)
	10: "mpls",   // an MPLS label stack (0x8847, 0x8848), IPv4 or IPv6 after the bottom label
}

// TunnelMaxDepth bounds the encapsulations the kernel walks; one more is tunnel_too_deep and the
// packet is recorded as found at that depth.
const TunnelMaxDepth = 3

// KernelCounters are the per-CPU counters of the BPF program (map pl_stats, one u64 per index per
// CPU), by index. Nothing the program sees is lost without one of these moving:
// seen == emitted + ring_full + sampled_out, and parse errors are counted by reason on top
// (index KernelCounterParseErrorBase + reason code).
var KernelCounters = []string{
	"seen",                // packets the program ran on
	"emitted",             // records written to the ring buffer
	"ring_full",           // records lost: the ring buffer had no room
	"sampled_out",         // packets deliberately not recorded (adaptive sampling)
	"snippet_copy_failed", // L7 snippet could not be copied (record still emitted, without it)
	"flow_counted",        // packets added to their entry of a flow map, pl_flows4 or pl_flows (every packet, before sampling)
	"flow_failed",         // packets of new flows the full flow table refused: in no flow
	"tls_cont_tracked",    // TLS handshake records longer than their segment: flow remembered for the rest (bpf/tls_cont.h)
	"tls_cont_copied",     // segments of a remembered flow inside the missing bytes: payload copied (l7_kind tls_cont)
	"tls_cont_outside",    // segments of a remembered flow outside the missing bytes (retransmission, later data): not copied
	"tls_cont_done",       // remembered flows whose missing bytes all came in order; tracked - done: given up (deadline, LRU eviction, out of order) or waiting
}

// KernelCounterParseErrorBase is the pl_stats index of parse error reason 0; reasons 1..63 follow.
const KernelCounterParseErrorBase = 16

// KernelCounterSlots is the size of the pl_stats map.
const KernelCounterSlots = KernelCounterParseErrorBase + 64
