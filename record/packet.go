// Package record turns the bytes the BPF program writes into packets: the decoder of struct
// pl_record (offsets generated from schema/columns.go), the versioned Kafka frame that carries
// records from the collector to the ingester, and the L7 step that fills the DNS/TLS/HTTP
// columns from the payload snippet. The collector and the ingester both use it; it depends on
// nothing but schema and l7.
package record

import "net/netip"

// Packet is one row of the packets table. Its fields are the columns of schema.Columns, in order,
// each tagged with its column name; a test checks the two against each other.
type Packet struct {
	TS            int64    `col:"ts"` // ns since the Unix epoch, UTC
	Host          string   `col:"host"`
	Iface         string   `col:"iface"`
	CollectorID   uint64   `col:"collector_id"`
	Seq           uint64   `col:"seq"`
	Ifindex       uint32   `col:"ifindex"`
	PktLen        uint32   `col:"pkt_len"`
	SrcMAC        uint64   `col:"src_mac"`
	DstMAC        uint64   `col:"dst_mac"`
	EthType       uint16   `col:"eth_type"`
	VlanID        uint16   `col:"vlan_id"`
	InnerVlanID   uint16   `col:"inner_vlan_id"`
	IPVersion     uint8    `col:"ip_version"`
	SrcAddr       [16]byte `col:"src_addr"`
	DstAddr       [16]byte `col:"dst_addr"`
	IPProto       uint8    `col:"ip_proto"`
	TTL           uint8    `col:"ttl"`
	TOS           uint8    `col:"tos"`
	IPLen         uint16   `col:"ip_len"`
	IPID          uint32   `col:"ip_id"`
	IPFlags       uint8    `col:"ip_flags"`
	FragOffset    uint16   `col:"frag_offset"`
	FlowLabel     uint32   `col:"flow_label"`
	IP6Ext        uint8    `col:"ip6_ext"`
	SrcPort       uint16   `col:"src_port"`
	DstPort       uint16   `col:"dst_port"`
	TCPFlags      uint16   `col:"tcp_flags"`
	TCPSeq        uint32   `col:"tcp_seq"`
	TCPAck        uint32   `col:"tcp_ack"`
	TCPWindow     uint16   `col:"tcp_window"`
	ICMPType      uint8    `col:"icmp_type"`
	ICMPCode      uint8    `col:"icmp_code"`
	PayloadLen    uint16   `col:"payload_len"`
	TunnelType    string   `col:"tunnel_type"`
	TunnelID      uint32   `col:"tunnel_id"`
	TunnelSrc     [16]byte `col:"tunnel_src"`
	TunnelDst     [16]byte `col:"tunnel_dst"`
	TunnelTTL     uint8    `col:"tunnel_ttl"`
	TunnelDepth   uint8    `col:"tunnel_depth"`
	DNSID         uint16   `col:"dns_id"`
	DNSIsResponse uint8    `col:"dns_is_response"`
	DNSQName      string   `col:"dns_qname"`
	DNSQType      uint16   `col:"dns_qtype"`
	DNSRCode      uint8    `col:"dns_rcode"`
	DNSAnswers    uint16   `col:"dns_answers"`
	DNSAnswerIPs  string   `col:"dns_answer_addrs"`
	TLSSNI        string   `col:"tls_sni"`
	TLSJA4        string   `col:"tls_ja4"`
	TLSALPN       string   `col:"tls_alpn"`
	TLSVersionMax uint16   `col:"tls_version_max"`
	QUICVersion   uint32   `col:"quic_version"`
	QUICDCID      string   `col:"quic_dcid"`
	QUICSCID      string   `col:"quic_scid"`
	HTTPMethod    string   `col:"http_method"`
	HTTPHost      string   `col:"http_host"`
	HTTPPath      string   `col:"http_path"`
	SampleRate    uint32   `col:"sample_rate"`
	ParseError    string   `col:"parse_error"`
}

// Src returns the source address, IPv4 unmapped.
func (p *Packet) Src() netip.Addr { return netip.AddrFrom16(p.SrcAddr).Unmap() }

// Dst returns the destination address, IPv4 unmapped.
func (p *Packet) Dst() netip.Addr { return netip.AddrFrom16(p.DstAddr).Unmap() }
