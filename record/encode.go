package record

import (
	"fmt"

	"github.com/packetlake/packetlake/schema"
)

// AppendKernel appends the pl_record sample the BPF program would write for p (kernel columns
// only; ts_ns given separately): the struct, the tunnel trailer if p.TunnelDepth != 0, then
// snippet. It is the inverse of DecodeKernel, for tests, benchmarks and load generators that need
// samples without a kernel. Tunnel addresses without a tunnel_depth have no place in a record
// (the kernel sets them together): that is a bug of the caller, and panics.
func AppendKernel(b []byte, p *Packet, tsNanos uint64, l7Kind uint8, snippet []byte) []byte {
	if len(snippet) > SnippetMax {
		panic(fmt.Sprintf("record: snippet of %d bytes, max %d", len(snippet), SnippetMax))
	}
	if p.TunnelDepth == 0 && (p.TunnelSrc != [16]byte{} || p.TunnelDst != [16]byte{}) {
		panic("record: tunnel_src or tunnel_dst set with tunnel_depth 0: no trailer to carry them")
	}
	start := len(b)
	b = append(b, make([]byte, KernelRecordSize)...)
	s := b[start:]
	le.PutUint64(s[off_ts_ns:], tsNanos)
	le.PutUint32(s[off_ifindex:], p.Ifindex)
	le.PutUint32(s[off_pkt_len:], p.PktLen)
	putMAC(s[off_src_mac:], p.SrcMAC)
	putMAC(s[off_dst_mac:], p.DstMAC)
	le.PutUint16(s[off_eth_type:], p.EthType)
	le.PutUint16(s[off_vlan_id:], p.VlanID)
	le.PutUint16(s[off_inner_vlan_id:], p.InnerVlanID)
	s[off_ip_version] = p.IPVersion
	copy(s[off_src_addr:], p.SrcAddr[:])
	copy(s[off_dst_addr:], p.DstAddr[:])
	s[off_ip_proto] = p.IPProto
	s[off_ttl] = p.TTL
	s[off_tos] = p.TOS
	le.PutUint16(s[off_ip_len:], p.IPLen)
	le.PutUint32(s[off_ip_id:], p.IPID)
	s[off_ip_flags] = p.IPFlags
	le.PutUint16(s[off_frag_offset:], p.FragOffset)
	le.PutUint32(s[off_flow_label:], p.FlowLabel)
	s[off_ip6_ext] = p.IP6Ext
	le.PutUint16(s[off_src_port:], p.SrcPort)
	le.PutUint16(s[off_dst_port:], p.DstPort)
	le.PutUint16(s[off_tcp_flags:], p.TCPFlags)
	le.PutUint32(s[off_tcp_seq:], p.TCPSeq)
	le.PutUint32(s[off_tcp_ack:], p.TCPAck)
	le.PutUint16(s[off_tcp_window:], p.TCPWindow)
	s[off_icmp_type] = p.ICMPType
	s[off_icmp_code] = p.ICMPCode
	le.PutUint16(s[off_payload_len:], p.PayloadLen)
	le.PutUint32(s[off_sample_rate:], p.SampleRate)
	s[off_parse_error] = parseErrorCode(p.ParseError)
	s[off_tunnel_type] = tunnelTypeCode(p.TunnelType)
	le.PutUint32(s[off_tunnel_id:], p.TunnelID)
	s[off_tunnel_ttl] = p.TunnelTTL
	s[off_tunnel_depth] = p.TunnelDepth
	s[off_l7_kind] = l7Kind
	le.PutUint16(s[off_snippet_len:], uint16(len(snippet)))
	if p.TunnelDepth != 0 {
		start = len(b)
		b = append(b, make([]byte, KernelTunnelSize)...)
		t := b[start:]
		copy(t[offt_tunnel_src:], p.TunnelSrc[:])
		copy(t[offt_tunnel_dst:], p.TunnelDst[:])
	}
	return append(b, snippet...)
}

func putMAC(b []byte, m uint64) {
	for i := 5; i >= 0; i-- {
		b[i] = byte(m)
		m >>= 8
	}
}

func parseErrorCode(name string) uint8 {
	for code, n := range parseErrorNames {
		if n == name {
			return code
		}
	}
	return 0
}

func tunnelTypeCode(name string) uint8 {
	for code, n := range schema.TunnelTypes {
		if n == name {
			return code
		}
	}
	return 0
}
