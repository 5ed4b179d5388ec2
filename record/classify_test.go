package record

import (
	"testing"

	"github.com/packetlake/packetlake/schema"
)

// TestUDPHeuristics: SSDP requests over UDP go to the HTTP parser, mDNS and LLMNR to the DNS
// parser, and their columns come out as for their TCP/port-53 kin.
func TestUDPHeuristics(t *testing.T) {
	msearch := "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: ssdp:all\r\n\r\n"
	notify := "NOTIFY * HTTP/1.1\r\nHost: 239.255.255.250:1900\r\nNT: upnp:rootdevice\r\nNTS: ssdp:alive\r\n\r\n"
	// An mDNS query for _services._dns-sd._udp.local PTR with the unicast-response bit (RFC 6762 §5.4).
	mdns := []byte("\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x09_services\x07_dns-sd\x04_udp\x05local\x00\x00\x0c\x80\x01")
	// An LLMNR query for "wpad" A (RFC 4795: DNS header and question).
	llmnr := []byte("\x12\x34\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04wpad\x00\x00\x01\x00\x01")
	for _, c := range []struct {
		name             string
		sport, dport     uint16
		payload          []byte
		kind             uint8
		method, host, qn string
	}{
		{"ssdp m-search", 50000, 1900, []byte(msearch), schema.L7HTTP, "M-SEARCH", "239.255.255.250:1900", ""},
		{"ssdp notify", 1900, 1900, []byte(notify), schema.L7HTTP, "NOTIFY", "239.255.255.250:1900", ""},
		{"mdns", 5353, 5353, mdns, schema.L7DNS, "", "", "_services._dns-sd._udp.local"},
		{"llmnr", 50000, 5355, llmnr, schema.L7DNS, "", "", "wpad"},
		{"ssdp response is no request", 1900, 50000, []byte("HTTP/1.1 200 OK\r\n\r\n"), schema.L7None, "", "", ""},
	} {
		kind := ClassifyL7(ipProtoUDP, c.sport, c.dport, c.payload)
		if kind != c.kind {
			t.Errorf("%s: kind %d, want %d", c.name, kind, c.kind)
			continue
		}
		p := &Packet{IPProto: ipProtoUDP, SrcPort: c.sport, DstPort: c.dport}
		ParseL7(p, Kernel{L7Kind: kind, Snippet: c.payload})
		if p.HTTPMethod != c.method || p.HTTPHost != c.host || p.DNSQName != c.qn || p.ParseError != "" {
			t.Errorf("%s: method %q host %q qname %q error %q", c.name, p.HTTPMethod, p.HTTPHost, p.DNSQName, p.ParseError)
		}
	}
}
