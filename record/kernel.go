package record

import (
	"encoding/binary"
	"fmt"

	"github.com/packetlake/packetlake/schema"
)

// Kernel is the part of one ring-buffer sample the decoder needs besides the columns: where the
// payload snippet is and which L7 parser reads it.
type Kernel struct {
	TSNanos uint64 // bpf_ktime_get_ns() (monotonic) at capture
	L7Kind  uint8
	Snippet []byte // aliases the input
}

var le = binary.LittleEndian // the BPF program writes host order; packetlake runs on little-endian hosts

// A sample is struct pl_record, then struct pl_record_tunnel when tunnel_depth != 0 (the tunnel
// trailer: tunnel_src and tunnel_dst, zero on all other packets, so not paid for there), then
// snippet_len bytes of snippet.

// sampleParts returns the length of the trailer and of the snippet of the sample that starts b,
// or an error if b cannot hold them.
func sampleParts(b []byte) (trailer, snip int, err error) {
	if len(b) < KernelRecordSize {
		return 0, 0, fmt.Errorf("pl_record: %d bytes left, want at least %d", len(b), KernelRecordSize)
	}
	if b[off_tunnel_depth] != 0 {
		trailer = KernelTunnelSize
	}
	snip = int(le.Uint16(b[off_snippet_len:]))
	if snip > SnippetMax || len(b) < KernelRecordSize+trailer+snip {
		return 0, 0, fmt.Errorf("pl_record: %d-byte tunnel trailer and snippet_len %d do not fit the %d bytes left",
			trailer, snip, len(b))
	}
	return trailer, snip, nil
}

// DecodeKernel fills the kernel columns of p from one pl_record sample (header, tunnel trailer,
// snippet). It does not touch the frame or L7 columns. b must hold at least what the header
// announces; a shorter sample is an error and p is left partly filled.
func DecodeKernel(b []byte, p *Packet) (Kernel, error) {
	trailer, snip, err := sampleParts(b)
	if err != nil {
		return Kernel{}, err
	}
	p.Ifindex = le.Uint32(b[off_ifindex:])
	p.PktLen = le.Uint32(b[off_pkt_len:])
	p.SrcMAC = mac(b[off_src_mac:])
	p.DstMAC = mac(b[off_dst_mac:])
	p.EthType = le.Uint16(b[off_eth_type:])
	p.VlanID = le.Uint16(b[off_vlan_id:])
	p.InnerVlanID = le.Uint16(b[off_inner_vlan_id:])
	p.IPVersion = b[off_ip_version]
	copy(p.SrcAddr[:], b[off_src_addr:off_src_addr+16])
	copy(p.DstAddr[:], b[off_dst_addr:off_dst_addr+16])
	p.IPProto = b[off_ip_proto]
	p.TTL = b[off_ttl]
	p.TOS = b[off_tos]
	p.IPLen = le.Uint16(b[off_ip_len:])
	p.IPID = le.Uint32(b[off_ip_id:])
	p.IPFlags = b[off_ip_flags]
	p.FragOffset = le.Uint16(b[off_frag_offset:])
	p.FlowLabel = le.Uint32(b[off_flow_label:])
	p.IP6Ext = b[off_ip6_ext]
	p.SrcPort = le.Uint16(b[off_src_port:])
	p.DstPort = le.Uint16(b[off_dst_port:])
	p.TCPFlags = le.Uint16(b[off_tcp_flags:])
	p.TCPSeq = le.Uint32(b[off_tcp_seq:])
	p.TCPAck = le.Uint32(b[off_tcp_ack:])
	p.TCPWindow = le.Uint16(b[off_tcp_window:])
	p.ICMPType = b[off_icmp_type]
	p.ICMPCode = b[off_icmp_code]
	p.PayloadLen = le.Uint16(b[off_payload_len:])
	p.SampleRate = le.Uint32(b[off_sample_rate:])
	p.TunnelType = TunnelTypeName(b[off_tunnel_type])
	p.TunnelID = le.Uint32(b[off_tunnel_id:])
	if trailer != 0 {
		t := b[KernelRecordSize:]
		copy(p.TunnelSrc[:], t[offt_tunnel_src:offt_tunnel_src+16])
		copy(p.TunnelDst[:], t[offt_tunnel_dst:offt_tunnel_dst+16])
	} else {
		p.TunnelSrc, p.TunnelDst = [16]byte{}, [16]byte{}
	}
	p.TunnelTTL = b[off_tunnel_ttl]
	p.TunnelDepth = b[off_tunnel_depth]
	p.ParseError = ParseErrorName(b[off_parse_error])
	return Kernel{
		TSNanos: le.Uint64(b[off_ts_ns:]),
		L7Kind:  b[off_l7_kind],
		Snippet: b[KernelRecordSize+trailer : KernelRecordSize+trailer+snip],
	}, nil
}

// SampleLen returns the length of the pl_record sample that starts b (header, tunnel trailer if
// tunnel_depth says so, snippet), or an error if b is too short to tell or to hold it. It lets a
// frame, or a batch from the ring, be walked record by record.
func SampleLen(b []byte) (int, error) {
	trailer, snip, err := sampleParts(b)
	if err != nil {
		return 0, err
	}
	return KernelRecordSize + trailer + snip, nil
}

// SetTSNanos overwrites ts_ns in a raw sample: captures replayed from a pcap carry the capture's
// time instead of the time of the replay.
func SetTSNanos(b []byte, ts uint64) { le.PutUint64(b[off_ts_ns:], ts) }

func mac(b []byte) uint64 {
	return uint64(b[0])<<40 | uint64(b[1])<<32 | uint64(b[2])<<24 | uint64(b[3])<<16 | uint64(b[4])<<8 | uint64(b[5])
}

// ParseErrorName maps a reason code to the name stored in the parse_error column. An unknown code
// (a newer BPF program than this decoder) is kept visible rather than dropped.
func ParseErrorName(code uint8) string { return parseErrorTable[code] }

var parseErrorNames = schema.ParseErrors

// TunnelTypeName maps a tunnel_type code to the name stored in the column; an unknown code (a
// newer BPF program) is kept visible.
func TunnelTypeName(code uint8) string { return tunnelTypeTable[code] }

// Every row looks both names up: indexing a table costs nothing, where the two map lookups were
// a tenth of the ingester's decoding time (ingester/BENCH.md, ingcpu). The same strings are
// stored, "unknown_N" included, made once here instead of per row.
var parseErrorTable, tunnelTypeTable = nameTable(parseErrorNames), nameTable(schema.TunnelTypes)

func nameTable(names map[uint8]string) (t [256]string) {
	for code := range t {
		if name, ok := names[uint8(code)]; ok {
			t[code] = name
		} else {
			t[code] = fmt.Sprintf("unknown_%d", code)
		}
	}
	return t
}

// SetPktLen overwrites pkt_len in a raw sample: a capture cut by its snap length is replayed with
// fewer bytes than were on the wire, and the wire length is what the column means.
func SetPktLen(b []byte, n uint32) { le.PutUint32(b[off_pkt_len:], n) }
