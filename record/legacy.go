package record

import "fmt"

// Frames written by collectors of earlier builds carry pl_records of two older layouts, told apart
// by the frame header field "sizeof(struct pl_record)":
//
//   - 120 bytes (the tunnel-address trailer, git main at c4ae9f2): this build's 112-byte struct
//     with tunnel_id (4 bytes) inserted at offset 80, before eth_type, and tunnel_type,
//     tunnel_ttl, tunnel_depth and a reserved byte appended; when tunnel_depth != 0 a 32-byte
//     trailer follows, tunnel_src and tunnel_dst; then snippet_len bytes of snippet.
//   - 152 bytes (one struct, before any trailer): the 120-byte struct with tunnel_src and
//     tunnel_dst inserted at offset 40 (after dst_addr), on every packet.
//
// ParseFrame converts their samples to the current layout rather than refusing them, so that an
// ingester upgraded first loses nothing from collectors not yet upgraded (their frames in Kafka
// would otherwise all go to dead letters). The layouts are frozen here, not generated: they are the
// past, and testdata/frame_120.bin and frame_152.bin, written by those builds' FrameBuilder and
// AppendKernel, are the tests of them. (Pre-17 frames, 112 bytes, are this build's layout without
// the trailer flag: they need no conversion.)
const (
	legacy120Size        = 120
	legacy120TunnelID    = 80  // __u32, where this build's eth_type starts
	legacy120TailStart   = 84  // eth_type .. l7_kind: this build's [80,112)
	legacy120TailEnd     = 116 // then tunnel_type, tunnel_ttl, tunnel_depth, reserved
	legacy120SnippetLen  = 104
	legacy120TunnelType  = 116
	legacy120TunnelTTL   = 117
	legacy120TunnelDepth = 118
	legacy120TrailerSize = 32 // tunnel_src, tunnel_dst

	legacy152Size       = 152
	legacy152TrailerOff = 40
)

// The conversion relies on this build's layout being the 120-byte one without its tunnel members
// (compile errors if the offsets stop matching; TestLegacyFrameDecoded checks every member).
var (
	_ = [1]struct{}{}[off_eth_type-legacy120TunnelID]
	_ = [1]struct{}{}[off_snippet_len-(legacy120SnippetLen-4)]
	_ = [1]struct{}{}[KernelRecordSize-(legacy120TunnelID+legacy120TailEnd-legacy120TailStart)]
	_ = [1]struct{}{}[offt_tunnel_src+offt_tunnel_dst-16]
	_ = [1]struct{}{}[offt_tunnel_id-legacy120TrailerSize]
	_ = [1]struct{}{}[KernelTunnelSize-(legacy120TrailerSize+8)]
	_ = [1]struct{}{}[legacy152Size-(legacy120Size+legacy120TrailerSize)]
)

// legacySamples rewrites the samples of a 120- or 152-byte frame (rs) into the current layout
// (base, trailer when the packet was tunnelled, snippet), checking that exactly count samples
// fill b.
func legacySamples(b []byte, rs uint16, count int) ([]byte, error) {
	// Sized by the bytes there are, never by the header's count (a damaged frame may claim
	// billions): at most one trailer's growth per smallest legacy sample.
	out := make([]byte, 0, len(b)+len(b)/legacy120Size*(KernelTunnelSize-legacy120TrailerSize))
	var rec [legacy120Size]byte // the sample's struct in the 120-byte layout
	n := 0
	for len(b) > 0 {
		var trailer []byte // tunnel_src, tunnel_dst; nil when not tunnelled
		var hdr int
		switch rs {
		case legacy152Size:
			if len(b) < legacy152Size {
				return nil, fmt.Errorf("sample %d: 152-byte pl_record: %d bytes left", n, len(b))
			}
			copy(rec[:], b[:legacy152TrailerOff])
			copy(rec[legacy152TrailerOff:], b[legacy152TrailerOff+legacy120TrailerSize:legacy152Size])
			if rec[legacy120TunnelDepth] != 0 {
				trailer = b[legacy152TrailerOff : legacy152TrailerOff+legacy120TrailerSize]
			}
			hdr = legacy152Size
		case legacy120Size:
			if len(b) < legacy120Size {
				return nil, fmt.Errorf("sample %d: 120-byte pl_record: %d bytes left", n, len(b))
			}
			copy(rec[:], b)
			hdr = legacy120Size
			if rec[legacy120TunnelDepth] != 0 {
				if len(b) < hdr+legacy120TrailerSize {
					return nil, fmt.Errorf("sample %d: 120-byte pl_record: tunnel trailer: %d bytes left", n, len(b))
				}
				trailer = b[hdr : hdr+legacy120TrailerSize]
				hdr += legacy120TrailerSize
			}
		default:
			return nil, fmt.Errorf("pl_record of %d bytes is no legacy layout", rs)
		}
		snip := int(le.Uint16(rec[legacy120SnippetLen:]))
		if snip > SnippetMax || len(b) < hdr+snip {
			return nil, fmt.Errorf("sample %d: %d-byte pl_record: snippet_len %d does not fit the %d bytes left", n, rs, snip, len(b))
		}
		at := len(out)
		out = append(out, rec[:legacy120TunnelID]...)
		out = append(out, rec[legacy120TailStart:legacy120TailEnd]...)
		if trailer != nil {
			le.PutUint16(out[at+off_snippet_len:], uint16(snip)|SnippetLenTunnel)
			at = len(out)
			out = append(out, make([]byte, KernelTunnelSize)...)
			t := out[at:]
			copy(t[offt_tunnel_src:], trailer[:16])
			copy(t[offt_tunnel_dst:], trailer[16:32])
			copy(t[offt_tunnel_id:offt_tunnel_id+4], rec[legacy120TunnelID:legacy120TunnelID+4])
			t[offt_tunnel_type] = rec[legacy120TunnelType]
			t[offt_tunnel_ttl] = rec[legacy120TunnelTTL]
			t[offt_tunnel_depth] = rec[legacy120TunnelDepth]
		}
		out = append(out, b[hdr:hdr+snip]...)
		b = b[hdr+snip:]
		n++
	}
	if n != count {
		return nil, fmt.Errorf("header says %d samples, found %d", count, n)
	}
	return out, nil
}
