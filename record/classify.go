package record

import (
	"github.com/packetlake/packetlake/record/l7"
	"github.com/packetlake/packetlake/schema"
)

// ClassifyL7 is the kernel's choice of parser for an L4 payload (pl_classify in bpf/snippet.h),
// from package l7's byte tests in the kernel's order: DNS by port (either side, TCP or UDP);
// then for UDP a QUIC client Initial, an SSDP request; for TCP a TLS ClientHello (or
// ChangeCipherSpec and a handshake record), an HTTP request. Tests check the kernel against it.
func ClassifyL7(ipProto uint8, srcPort, dstPort uint16, b []byte) uint8 {
	switch {
	case (ipProto == ipProtoTCP || ipProto == ipProtoUDP) && (l7.IsDNSPort(srcPort) || l7.IsDNSPort(dstPort)):
		return schema.L7DNS
	case ipProto == ipProtoUDP && l7.LooksLikeQUICInitial(b):
		return schema.L7QUIC
	case ipProto == ipProtoUDP && l7.LooksLikeSSDPRequest(b):
		return schema.L7HTTP
	case ipProto != ipProtoTCP:
		return schema.L7None
	case l7.LooksLikeTLSClientHello(b) || l7.LooksLikeCCSThenHandshake(b):
		return schema.L7TLS
	case l7.LooksLikeHTTPRequest(b):
		return schema.L7HTTP
	}
	return schema.L7None
}

const ipProtoUDP = 17
