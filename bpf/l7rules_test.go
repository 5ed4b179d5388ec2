package bpf

import (
	"bytes"
	"testing"

	"github.com/packetlake/packetlake/record/l7"
	"github.com/packetlake/packetlake/schema"
)

// TestL7RulesMatchUserSpace: the kernel's l7_kind must follow package l7's byte tests exactly,
// including near misses and payloads shorter than a method.
func TestL7RulesMatchUserSpace(t *testing.T) {
	e := newEnv(t, Config{})
	var payloads [][]byte
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"} {
		full := m + " / HTTP/1.1\r\n\r\n"
		for n := 1; n <= len(m)+2; n++ {
			payloads = append(payloads, []byte(full[:n])) // every prefix, with and without the space
		}
		payloads = append(payloads, []byte(m+"X / HTTP/1.1\r\n"), bytes.ToLower([]byte(full)), []byte(m+"\t/"))
	}
	payloads = append(payloads, []byte{0x16}, []byte{0x16, 0x03}, []byte{0x16, 0x03, 0x01, 0, 5}, []byte{0x16, 0x03, 0x01, 0, 5, 1}, []byte{0x16, 0x03, 0x03, 0, 0x5a, 2, 0, 0, 0x56}, []byte{0x16, 0x02, 0x01},
		[]byte{0x17, 0x03, 0x03}, []byte{0x15, 0x03}, []byte("GE T / HTTP/1.1"), []byte(" GET /"))
	for _, pl := range payloads {
		for _, port := range []uint16{8080, 53} {
			f := cat(ether(0x0800), ip4{ttl: 64, proto: ipProto.TCP}.build(tcp{sport: 40000, dport: port, flags: 0x018}.build(pl)))
			d := e.run(t, f, false)
			want := uint8(schema.L7None)
			switch {
			case port == 53:
				want = schema.L7DNS
			case l7.LooksLikeTLSClientHello(pl):
				want = schema.L7TLS
			case l7.LooksLikeHTTPRequest(pl):
				want = schema.L7HTTP
			}
			if d.k.L7Kind != want {
				t.Errorf("payload %q to port %d: l7_kind %d, user space says %d", pl, port, d.k.L7Kind, want)
			}
			if want != schema.L7None && !bytes.Equal(d.k.Snippet, pl) {
				t.Errorf("payload %q: snippet %q", pl, d.k.Snippet)
			}
		}
	}
}
