package record

import "fmt"

// Frames written by a collector built before the tunnel trailer carry 152-byte pl_records (frame
// header field "sizeof(struct pl_record)" = 152): one struct with tunnel_src and tunnel_dst at
// offsets 40 and 56, on every packet. ParseFrame converts their samples to the current layout
// rather than refusing them, so that an ingester upgraded first loses nothing from collectors
// not yet upgraded (their frames in Kafka would otherwise all go to dead letters). The layout is
// frozen here, not generated: it is the past, and testdata/frame_152.bin, written by that
// build's FrameBuilder and AppendKernel, is the test of it.
const (
	legacyRecordSize = 152
	// The 152-byte struct is the current pl_record's members in the same order with the trailer's
	// 32 bytes inserted at offset 40 (after dst_addr): its bytes [0,40) and [72,152) are the
	// current pl_record, [40,72) the current pl_record_tunnel.
	legacyTrailerOff = 40
	legacySnippetLen = off_snippet_len + KernelTunnelSize
	legacyDepth      = off_tunnel_depth + KernelTunnelSize
)

// The conversion relies on the current layout still being the legacy one minus the trailer (a
// compile error if the sizes stop adding up; TestLegacyFrameDecoded checks every member).
var _ = [1]struct{}{}[KernelRecordSize+KernelTunnelSize-legacyRecordSize]

// legacySamples rewrites the samples of a 152-byte frame into the current layout (base, trailer
// when tunnel_depth != 0, snippet), checking that exactly count samples fill b.
func legacySamples(b []byte, count int) ([]byte, error) {
	out := make([]byte, 0, len(b))
	n := 0
	for len(b) > 0 {
		if len(b) < legacyRecordSize {
			return nil, fmt.Errorf("sample %d: 152-byte pl_record: %d bytes left", n, len(b))
		}
		snip := int(le.Uint16(b[legacySnippetLen:]))
		if snip > SnippetMax || len(b) < legacyRecordSize+snip {
			return nil, fmt.Errorf("sample %d: 152-byte pl_record: snippet_len %d does not fit the %d bytes left", n, snip, len(b))
		}
		out = append(out, b[:legacyTrailerOff]...)
		out = append(out, b[legacyTrailerOff+KernelTunnelSize:legacyRecordSize]...)
		if b[legacyDepth] != 0 {
			out = append(out, b[legacyTrailerOff:legacyTrailerOff+KernelTunnelSize]...)
		}
		out = append(out, b[legacyRecordSize:legacyRecordSize+snip]...)
		b = b[legacyRecordSize+snip:]
		n++
	}
	if n != count {
		return nil, fmt.Errorf("header says %d samples, found %d", count, n)
	}
	return out, nil
}
